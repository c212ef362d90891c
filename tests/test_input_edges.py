"""The input side at its edges (issue 32): damaged gzip inputs cost their own file only, and no document of a
file whose gzip stream does not check out is annotated; UTF-16 JSONL and PubTator; BioC JSON on standard
input; what a folder holds that is not read; named pipes; one XML parser policy; one input expansion."""

import gzip
import io
import json
import logging
import os
import sys
import threading
import zlib

import pytest
from test_medline import DOCTYPE, STRUCTURED, pubmed_xml
from test_predict_cli import run

import predict_vaner
from vaner.distributed import plan_shards
from vaner.formats import detect_input_format, expand_inputs, read_documents

DOCS = '{"id": "a", "text": "BRCA1 mutant mice."}\n{"id": "b", "text": "Ovarian cancer in women."}\n'


def records(path):
    return {record["id"]: record for record in map(json.loads, path.read_text(encoding="utf-8").splitlines())}


def garbled_deflate(text: bytes) -> bytes:
    """A gzip file whose first deflate block has the reserved type 3, so that zlib itself refuses it."""
    data = bytearray(gzip.compress(text, mtime=0))
    data[10] |= 0b110  # after the 10-byte header: BFINAL, then BTYPE
    with pytest.raises(zlib.error):
        gzip.decompress(bytes(data))
    return bytes(data)


def test_a_damaged_gzip_input_costs_its_own_documents_only(tiny_vaner_dir, tmp_path, caplog):
    """Item 1: a gzip cut short (EOFError) and one with broken deflate data (zlib.error) among good inputs: the
    good inputs are written, each damaged file is one error record, exit status 3 (it used to end the run)."""
    folder = tmp_path / "inputs"
    folder.mkdir()
    (folder / "a.jsonl").write_text(DOCS, encoding="utf-8")
    packed = gzip.compress(DOCS.encode() * 200)
    (folder / "b.jsonl.gz").write_bytes(packed[: len(packed) // 2])
    (folder / "c.txt.gz").write_bytes(garbled_deflate(b"Ovarian cancer in women. "))
    (folder / "d.txt").write_text("Cisplatin nephrotoxicity.", encoding="utf-8")
    output = tmp_path / "out.jsonl"
    with caplog.at_level(logging.WARNING):
        status = run(["--model_name_or_path", tiny_vaner_dir, "--input", folder, "--output", output])
    assert status == predict_vaner.EXIT_DOCUMENTS_LOST
    written = records(output)
    assert list(written) == ["a", "b", "b.jsonl.gz", "c.txt.gz", "d"]
    assert written["b.jsonl.gz"]["error"].startswith(f"{folder / 'b.jsonl.gz'}: damaged gzip data (Compressed file "
                                                     "ended before the end-of-stream marker was reached)")
    assert written["c.txt.gz"]["error"].startswith(f"{folder / 'c.txt.gz'}: damaged gzip data (Error -3 while")
    assert all(record["error"].endswith("none of its documents is annotated")
               for name, record in written.items() if name.endswith(".gz"))
    assert "2 of 5 documents could not be read or annotated" in caplog.text


def test_a_flipped_byte_in_a_gzip_file_costs_the_whole_file(tmp_path, monkeypatch):
    """Item 2: deflate data that still decodes, into wrong text, is caught by the CRC before any article is
    trusted: the file is one error record, no article of it a document (the corrupted one used to be
    annotated as good). The same on standard input."""
    text = pubmed_xml(*[STRUCTURED.replace("31000001", str(n)) for n in range(1, 101)]).encode()
    data = bytearray(gzip.compress(text, compresslevel=0))  # stored blocks: a flipped byte decodes as it is
    data[int(len(data) * 0.3)] ^= 0x20
    path = tmp_path / "pubmed25n0001.xml.gz"
    path.write_bytes(bytes(data))
    documents = list(read_documents([path]))
    assert [(d.document_id, d.text) for d in documents] == [("pubmed25n0001.xml.gz", "")]
    assert documents[0].error.startswith(f"{path}: damaged gzip data (CRC check failed")

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(bytes(data)))))
    (document,) = read_documents(["-"], input_format="pubmed_xml")
    assert document.error.startswith("<stdin>: damaged gzip data (CRC check failed")


def test_utf16_jsonl_and_pubtator_are_decoded_before_they_are_split(tmp_path):
    """Item 8: UTF-16 holds b"\\n" bytes inside characters (U+0A00-U+0AFF, U+010A, ...) and two-byte line breaks."""
    jsonl = tmp_path / "docs.jsonl"
    jsonl.write_text('{"id": "\u010a1", "text": "BRCA1 \u0a05 mice."}\n{"id": "j2", "text": "Cancer."}\n',
                     encoding="utf-16")
    pubtator = tmp_path / "docs.pubtator"
    pubtator.write_text("7|t|Ovarian \u010a cancer.\n7|a|In women.\n\n8|t|Mice.\n", encoding="utf-16")
    documents = list(read_documents([jsonl, pubtator], encoding="utf-16"))
    assert [(d.document_id, d.text, d.error) for d in documents] == [
        ("\u010a1", "BRCA1 \u0a05 mice.", None), ("j2", "Cancer.", None),
        ("7", "Ovarian \u010a cancer. In women.", None), ("8", "Mice.", None)]


def test_utf16_bytes_that_do_not_decode_are_named_by_line(tmp_path, caplog):
    broken = tmp_path / "broken.jsonl"
    broken.write_bytes('{"id": "j1", "text": "Mice."}\n{"id": "j2", "text": "'.encode("utf-16")
                       + b"\x00\xd8" + '"}\n'.encode("utf-16-le"))  # a lone high surrogate
    with caplog.at_level(logging.WARNING):
        documents = list(read_documents([broken], encoding="utf-16"))
    assert [(d.document_id, d.text) for d in documents] == [("j1", "Mice."), ("j2", "\ufffd")]
    assert f"{broken}: bytes that are not utf-16 (first at line 2) were replaced by U+FFFD" in caplog.text


def test_bioc_json_on_standard_input_honours_encoding_and_gzip(monkeypatch):
    collection = {"source": "s", "date": "d", "key": "k", "infons": {}, "relations": [], "annotations": [],
                  "documents": [{"id": "d1", "infons": {}, "relations": [], "annotations": [], "passages": [
                      {"offset": 0, "text": "BRCA1 \u03b1 mice.", "infons": {}, "sentences": [], "annotations": [],
                       "relations": []}]}]}
    data = gzip.compress(json.dumps(collection, ensure_ascii=False).encode("utf-16"))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(data))))
    (document,) = read_documents(["-"], input_format="bioc", encoding="utf-16")
    assert (document.document_id, document.text, document.error) == ("d1", "BRCA1 \u03b1 mice.", None)


def test_a_folder_names_what_it_does_not_read(tmp_path, caplog):
    """Item 9: hidden files, broken links and pipes of an input folder are named in warnings, not skipped in
    silence."""
    folder = tmp_path / "inputs"
    folder.mkdir()
    (folder / "good.txt").write_text("Mice.", encoding="utf-8")
    (folder / ".notes.txt").write_text("Hidden.", encoding="utf-8")
    (folder / "gone.txt").symlink_to(folder / "missing.txt")
    os.mkfifo(folder / "pipe")
    with caplog.at_level(logging.WARNING):
        assert expand_inputs([folder]) == [folder / "good.txt"]
    assert f"{folder}: 1 hidden file not read (.notes.txt)" in caplog.text
    assert f"{folder}: 1 broken link not read (gone.txt)" in caplog.text
    assert f"{folder}: 1 named pipe not read (pipe)" in caplog.text


def test_a_named_pipe_given_as_an_input_is_read(tmp_path):
    """Item 9: `--input <(zcat docs.jsonl.gz)` names a pipe (/dev/fd/N); it is read once, its format sniffed and
    its gzip checked as a file's (it used to be 'no such file or folder')."""
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)

    def feed():
        with open(pipe, "wb") as handle:
            handle.write(gzip.compress(DOCS.encode()))

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    try:
        documents = list(read_documents([pipe]))
    finally:
        for _ in range(50):  # where nothing read the pipe, the writer's open waits for a reader
            writer.join(timeout=0.1)
            if not writer.is_alive():
                break
            os.close(os.open(pipe, os.O_RDONLY | os.O_NONBLOCK))
    assert [(d.document_id, d.text) for d in documents] == [("a", "BRCA1 mutant mice."),
                                                            ("b", "Ovarian cancer in women.")]


def test_one_input_expansion_for_both_paths(tmp_path):
    """Item 13: globs, folders and files expand alike for one process and for --ray; --ray refuses standard
    input and pipes, which are no shards."""
    for name in ("b.txt", "a.txt", "c.jsonl"):
        (tmp_path / name).write_text("Mice.", encoding="utf-8")
    assert expand_inputs([str(tmp_path / "*.txt")]) == [tmp_path / "a.txt", tmp_path / "b.txt"]
    assert [shard for shard, _ in plan_shards([str(tmp_path / "*.txt")], tmp_path / "out", "jsonl")] == [
        tmp_path / "a.txt", tmp_path / "b.txt"]
    with pytest.raises(FileNotFoundError, match="no file matches"):
        expand_inputs([str(tmp_path / "*.xml")])
    os.mkfifo(tmp_path / "pipe")
    for given in ("-", str(tmp_path / "pipe")):
        with pytest.raises(ValueError, match="--ray reads shards from files"):
            plan_shards([given], tmp_path / "out", "jsonl")


BIOC_WITH_ENTITY = """<?xml version='1.0' encoding='utf-8'?>
<!DOCTYPE collection [<!ENTITY e "EXPANDED">]>
<collection><source>s</source><date>d</date><key>k</key>
<document><id>d1</id><passage><offset>0</offset><text>BRCA1 &e; mice.</text></passage></document>
<document><id>d2</id><passage><offset>0</offset><text>Ovarian cancer &amp; &#945;.</text></passage></document>
</collection>
"""


def test_no_xml_reader_expands_an_entity(tmp_path):
    """Item 10: the BioC path parsed with lxml's defaults, which expand internal entities; under the one policy
    nothing is expanded: the PubMed reader keeps the reference as text, a BioC document holding one is an error
    of its own."""
    bioc_file = tmp_path / "collection.xml"
    bioc_file.write_text(BIOC_WITH_ENTITY, encoding="utf-8")
    first, second = read_documents([bioc_file])
    assert first.error is not None and "Entity 'e' not defined" in first.error and "EXPANDED" not in first.text
    assert (second.document_id, second.text, second.error) == ("d2", "Ovarian cancer & \u03b1.", None)

    pubmed_file = tmp_path / "pubmed.xml"
    pubmed_file.write_text(pubmed_xml(STRUCTURED.replace("BRCA1</i>", "BRCA1</i> &e;")).replace(
        DOCTYPE, '<!DOCTYPE PubmedArticleSet [<!ENTITY e "EXPANDED">]>'), encoding="utf-8")
    (article,) = read_documents([pubmed_file])
    assert "BRCA1 &e; mutant" in article.text and "EXPANDED" not in article.text


def test_a_long_doctype_does_not_hide_pubmed_xml(tmp_path, caplog):
    """Item 10: a DOCTYPE over 8 KB pushed <PubmedArticleSet> out of the head that auto detection reads, and the
    file was read as BioC; the DOCTYPE names the root. Where the head says nothing (a long comment), the BioC
    reader's error names the format to pass."""
    subset = "".join(f'<!ENTITY e{n} "entity number {n}">\n' for n in range(400))
    long_doctype = tmp_path / "pubmed.xml"
    long_doctype.write_text(pubmed_xml(STRUCTURED).replace(DOCTYPE, f"<!DOCTYPE PubmedArticleSet [\n{subset}]>"),
                            encoding="utf-8")
    assert len(subset) > 8192 and detect_input_format(long_doctype) == "pubmed_xml"
    assert [d.document_id for d in read_documents([long_doctype])] == ["31000001"]

    long_comment = tmp_path / "commented.xml"
    long_comment.write_text(pubmed_xml(STRUCTURED).replace(DOCTYPE, f"<!--{'x' * 9000}-->"), encoding="utf-8")
    assert detect_input_format(long_comment) == "bioc_xml"
    (document,) = read_documents([long_comment])
    assert document.error.endswith("its root element is <PubmedArticleSet>, not <collection>: pass --input_format "
                                   "pubmed_xml)")
