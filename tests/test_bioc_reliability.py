"""BioC reading under bad input: an XML error in one document of a BioC XML collection costs that document
only (an error document in its place, naming `document N` and its line), and offsets that would lay out an
absurdly long text give an error document instead of gigabytes (BioC XML and BioC JSON)."""

import gzip
import io
import json
import logging
import sys
import tracemalloc

import pytest

bioc = pytest.importorskip("bioc")

from vaner import bioc_xml  # noqa: E402
from vaner.bioc_format import layout_problem  # noqa: E402
from vaner.bioc_json import read_bioc_json  # noqa: E402
from vaner.bioc_xml import read_bioc_xml  # noqa: E402
from vaner.formats import read_documents  # noqa: E402

HEADER = ("<?xml version='1.0' encoding='utf-8' standalone='yes'?>\n"
          "<!DOCTYPE collection SYSTEM 'BioC.dtd'>\n"
          "<collection><source>test</source><date>2025-01-01</date><key>BioC.key</key>\n")


def bioc_document(number: int, text: str | None = None) -> str:
    """Three lines: a document with a title and an abstract passage (the abstract text is XML as given)."""
    title = f"Title {number}."
    abstract = f"Abstract {number} &amp; more." if text is None else text
    return (f"<document><id>d{number}</id>\n"
            f"<passage><infon key=\"type\">title</infon><offset>0</offset><text>{title}</text></passage>\n"
            f"<passage><infon key=\"type\">abstract</infon><offset>{len(title) + 1}</offset><text>{abstract}</text>"
            "</passage></document>\n")


def expected_text(number: int) -> str:
    return f"Title {number}.\nAbstract {number} & more."


def collection(count: int, bad: dict[int, str], header: str = HEADER) -> str:
    return header + "".join(bioc_document(n, bad.get(n)) for n in range(1, count + 1)) + "</collection>\n"


def check_good(document, number):
    assert document.error is None, document.error
    assert (document.document_id, document.text) == (f"d{number}", expected_text(number))


def test_syntax_error_costs_its_own_document_only(tmp_path):
    path = tmp_path / "seven.xml"
    path.write_text(collection(7, {4: "Significant (p < 0.05)."}), encoding="utf-8")
    documents = list(read_documents([path], "bioc_xml"))  # through the registry: read(path, encoding)
    assert len(documents) == 7
    for number, document in enumerate(documents, start=1):
        if number != 4:
            check_good(document, number)
    broken = documents[3]
    assert broken.text == "" and broken.document_id == "seven.xml:4"
    assert broken.source == f"{path}:document 4"
    start_line = 3 + 3 * 3 + 1  # the header, three documents of three lines
    assert broken.error.startswith(f"{path}:document 4 (line {start_line}, id 'd4'): not readable as BioC XML (")
    assert f"line {start_line + 2}, column" in broken.error  # lxml's position, as a line of the file
    assert "invalid element name" in broken.error


def test_bad_1000th_of_2000_documents(tmp_path):
    path = tmp_path / "many.xml"
    path.write_text(collection(2000, {1000: "p < 0.05"}), encoding="utf-8")
    documents = list(read_bioc_xml(path))
    assert len(documents) == 2000
    assert [d.document_id for d in documents if d.error] == ["many.xml:1000"]
    for number, document in enumerate(documents, start=1):
        if number == 1000:
            assert f"document 1000 (line {3 + 3 * 999 + 1}, id 'd1000')" in document.error
        else:
            check_good(document, number)


def test_broken_documents_keep_their_place_and_the_others_their_numbers(tmp_path):
    """A document without </document>, one with a bad <offset>, one with a syntax error: each is an error in
    its place; the file cut short after its last document says so."""
    text = collection(6, {2: "x < y", 5: "fine"})
    text = text.replace("<offset>9</offset><text>fine", "<offset>nine</offset><text>fine")  # document 5
    text = text.replace("</passage></document>\n<document><id>d4</id>", "</passage>\n<document><id>d4</id>")
    text = text.replace("</collection>\n", "")
    path = tmp_path / "mixed.xml"
    path.write_text(text, encoding="utf-8")
    documents = list(read_bioc_xml(path))
    assert [d.document_id for d in documents] == ["d1", "mixed.xml:2", "mixed.xml:3", "d4", "mixed.xml:5", "d6",
                                                   "mixed.xml:7"]
    check_good(documents[0], 1)
    check_good(documents[3], 4)
    check_good(documents[5], 6)
    assert "document 2 (line 7, id 'd2')" in documents[1].error
    assert "document 3 (line 10, id 'd3')" in documents[2].error
    assert "no </document> before the next <document>" in documents[2].error
    assert "document 5 (line 16, id 'd5')" in documents[4].error and "ValueError" in documents[4].error
    assert documents[6].error == f"{path}: not readable as BioC XML (the file ends without </collection> after " \
                                 "document 6: is it cut short?)"


def test_truncated_inside_a_document(tmp_path):
    path = tmp_path / "cut.xml"
    text = collection(3, {})
    path.write_text(text[: text.index("<document><id>d3") + 30], encoding="utf-8")
    documents = list(read_bioc_xml(path))
    check_good(documents[0], 1)
    check_good(documents[1], 2)
    assert documents[2].error == f"{path}:document 3 (line 10, id 'd3'): not readable as BioC XML (no </document> " \
                                 "before the end of the file)"
    assert len(documents) == 3


def test_one_line_file_cdata_and_comments(tmp_path):
    """A collection on one line: lxml's column is the file's; </document> in CDATA or comments cuts nothing."""
    documents = [bioc_document(1), bioc_document(2, "<![CDATA[a </document> <document> b]]>"),
                 "<!-- <document> </document> -->", bioc_document(3, "a < b"), bioc_document(4)]
    text = (HEADER + "".join(documents) + "</collection>").replace("\n", "")
    path = tmp_path / "line.xml"
    path.write_text(text, encoding="utf-8")
    read = list(read_bioc_xml(path))
    assert [d.document_id for d in read] == ["d1", "d2", "line.xml:3", "d4"]
    assert read[1].text == "Title 2.\na </document> <document> b"
    column = text.index("a < b") + len("a <") + 1  # where lxml stops, 1-based
    assert f"(line 1, id 'd3'): not readable as BioC XML (StartTag: invalid element name, line 1, column {column})" \
        in read[2].error


def test_small_chunks_give_the_same_documents(tmp_path, monkeypatch):
    """Tokens cut by chunk boundaries are found all the same, and the buffer holds about one document."""
    path = tmp_path / "chunks.xml"
    path.write_text(collection(40, {7: "p < 0.05", 8: "<![CDATA[</document>]]>"}), encoding="utf-8")
    whole = [(d.document_id, d.text, d.error) for d in read_bioc_xml(path)]
    monkeypatch.setattr(bioc_xml, "CHUNK_BYTES", 5)
    assert [(d.document_id, d.text, d.error) for d in read_bioc_xml(path)] == whole
    assert [d[0] for d in whole if d[2]] == ["chunks.xml:7"]
    with open(path, "rb") as handle:
        splitter = bioc_xml._DocumentSplitter(handle)
        sizes = [len(splitter.buffer) for _ in splitter.pieces()]
    assert max(sizes) < 2 * len(bioc_document(40)) + 64


def test_standard_input_gzip_and_utf16(tmp_path, monkeypatch):
    text = collection(3, {2: "p < 0.05"})
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode("utf-8"))))
    documents = list(read_bioc_xml("-"))
    assert [d.document_id for d in documents] == ["d1", "<stdin>:2", "d3"]
    assert documents[1].error.startswith("<stdin>:document 2 (line 7, id 'd2'): not readable as BioC XML")

    packed = tmp_path / "c.xml.gz"
    packed.write_bytes(gzip.compress(text.encode("utf-8")))
    assert [d.document_id for d in read_bioc_xml(packed)] == ["d1", "c.xml.gz:2", "d3"]

    damaged = tmp_path / "damaged.xml.gz"  # a gzip stream cut short: checked before any document is trusted
    damaged.write_bytes(gzip.compress(collection(400, {}).encode("utf-8"))[:2000])
    assert [(d.document_id, d.error) for d in read_documents([damaged])] == [("damaged.xml.gz", (
        f"{damaged}: damaged gzip data (Compressed file ended before the end-of-stream marker was reached); none of "
        "its documents is annotated"))]

    wide = tmp_path / "wide.xml"
    wide.write_bytes(text.replace("utf-8", "utf-16").replace("Title 3", "Title \u03b1").encode("utf-16"))
    documents = list(read_bioc_xml(wide))
    assert [d.document_id for d in documents] == ["d1", "wide.xml:2", "d3"]
    assert documents[2].text == "Title \u03b1.\nAbstract 3 & more."
    assert "(line 7, id 'd2')" in documents[1].error


@pytest.mark.parametrize("content, problem", [
    ("<html><body><p>not BioC</p></body></html>\n", "its root element is <html>, not <collection>"),
    ("<?xml version='1.0'?>\n" + bioc_document(1), "no <collection> before the first <document>"),
    ("", "the file is empty"),
])
def test_no_collection_is_one_error(tmp_path, content, problem):
    path = tmp_path / "odd.xml"
    path.write_text(content, encoding="utf-8")
    documents = list(read_bioc_xml(path))
    assert [(d.document_id, d.error) for d in documents] == [
        ("odd.xml", f"{path}: not readable as BioC XML ({problem})")]


def test_other_xml_is_refused_without_reading_it_whole(tmp_path, monkeypatch):
    """PubMed XML read as BioC: one error once HEADER_LIMIT bytes hold no <document>; <document/> is a document."""
    monkeypatch.setattr(bioc_xml, "HEADER_LIMIT", 1000)
    monkeypatch.setattr(bioc_xml, "CHUNK_BYTES", 100)
    path = tmp_path / "pubmed.xml"
    path.write_text("<?xml version='1.0'?>\n<PubmedArticleSet>" + "<PubmedArticle>x</PubmedArticle>\n" * 10_000
                    + "</PubmedArticleSet>\n", encoding="utf-8")
    assert [d.error for d in read_bioc_xml(path)] == [
        f"{path}: not readable as BioC XML (its root element is <PubmedArticleSet>, not <collection>: pass "
        "--input_format pubmed_xml)"]
    empty = tmp_path / "empty.xml"
    empty.write_text(HEADER + "<document/>" + bioc_document(2) + "<document />\n</collection>\n", encoding="utf-8")
    documents = list(read_bioc_xml(empty))
    assert [(d.document_id, d.text, d.error) for d in documents] == [
        ("empty.xml:1", "", None), ("d2", expected_text(2), None), ("empty.xml:3", "", None)]


# --------------------------------------------------------------------------------------------
# Huge offsets

FAR = 300_000_000


def far_xml() -> str:
    return ("<?xml version='1.0' encoding='utf-8'?>\n<collection><source>s</source><date>d</date><key>k</key>"
            "<document><id>far</id><passage><offset>0</offset><text>Title.</text></passage>"
            f"<passage><offset>{FAR}</offset><text>Abstract.</text></passage></document>"
            + bioc_document(2) + "</collection>\n")


def check_far(documents, where):
    assert len(documents) == 2
    far, good = documents
    assert (far.document_id, far.text) == ("far", "")
    assert far.error == (f"{where}:document 1: BioC document 'far': passage offset 300,000,000 would make a text of "
                         "300,000,009 characters, over the limit of 1,000,000 (the larger of 1,000,000 and 100 x its "
                         "15 characters of passage text); not annotated")
    check_good(good, 2)


def read_with_peak_memory(reader, path):
    """The documents of `path` and the peak of Python allocations while reading them."""
    tracemalloc.start()
    try:
        documents = list(reader(path))
        return documents, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_huge_passage_offset_in_bioc_xml_is_an_error_in_small_memory(tmp_path):
    path = tmp_path / "far.xml"
    path.write_text(far_xml(), encoding="utf-8")
    documents, peak = read_with_peak_memory(read_bioc_xml, path)
    check_far(documents, path)
    assert peak < 20_000_000


def test_huge_passage_offset_in_bioc_json_is_an_error(tmp_path):
    record = {"source": "s", "date": "d", "key": "k", "infons": {}, "documents": [
        {"id": "far", "infons": {}, "relations": [], "annotations": [], "passages": [
            {"offset": 0, "text": "Title.", "infons": {}, "sentences": [], "annotations": [], "relations": []},
            {"offset": FAR, "text": "Abstract.", "infons": {}, "sentences": [], "annotations": [], "relations": []},
        ]},
        {"id": "d2", "infons": {}, "relations": [], "annotations": [], "passages": [
            {"offset": 0, "text": "Title 2.", "infons": {}, "sentences": [], "annotations": [], "relations": []},
            {"offset": 9, "text": "Abstract 2 & more.", "infons": {}, "sentences": [], "annotations": [],
             "relations": []},
        ]},
    ]}
    path = tmp_path / "far.json"
    path.write_text(json.dumps(record), encoding="utf-8")
    documents, peak = read_with_peak_memory(read_bioc_json, path)
    check_far(documents, path)
    assert peak < 20_000_000


def test_offset_limits(tmp_path):
    """Up to the limit a gap is laid out as before; a far sentence offset and an offset that is no integer are
    errors too."""
    def document(*passages):
        result = bioc.BioCDocument()
        result.id = "x"
        for offset, text in passages:
            passage = bioc.BioCPassage()
            passage.offset, passage.text = offset, text
            result.add_passage(passage)
        return result

    assert layout_problem(document((0, "a"), (999_999, "b"))) is None
    assert "1,000,001 characters" in layout_problem(document((0, "a"), (1_000_000, "b")))
    assert layout_problem(document((0, "a" * 20_000), (1_999_999, "b"))) is None  # 100 x 20,001 characters
    assert "passage offset '12' is not an integer" in layout_problem(document((0, "a"), ("12", "b")))
    with_sentence = document((0, "a"), (5, ""))
    sentence = bioc.BioCSentence()
    sentence.offset, sentence.text = FAR, "far"
    with_sentence.passages[1].add_sentence(sentence)
    assert layout_problem(with_sentence).startswith("sentence offset 300,000,000 (passage offset 5) would make")


def test_xml_formats_are_told_apart_and_say_that_encoding_is_not_theirs(tmp_path, caplog):
    from vaner.formats import detect_input_format, read_documents

    bioc_file = tmp_path / "collection.xml"
    bioc_file.write_text('<?xml version="1.0" encoding="UTF-8"?>\n<collection><source>s</source><date>d</date>'
                         '<key>k</key><document><id>d1</id><passage><offset>0</offset><text>BRCA1 mice.</text>'
                         '</passage></document></collection>\n', encoding="utf-8")
    pubmed_file = tmp_path / "pubmed.xml"
    pubmed_file.write_text('<?xml version="1.0"?>\n<PubmedArticleSet></PubmedArticleSet>\n', encoding="utf-8")
    assert detect_input_format(bioc_file) == "bioc_xml" and detect_input_format(pubmed_file) == "pubmed_xml"
    with caplog.at_level(logging.WARNING):
        documents = list(read_documents([bioc_file], encoding="latin-1"))
    assert [document.document_id for document in documents] == ["d1"]
    assert "bioc_xml declares its own encoding; --encoding latin-1 is not used for it" in caplog.text
