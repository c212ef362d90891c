"""Document files: readers (text, JSONL, PubTator) and writers (JSONL, PubTator, BioC JSON, HTML); BioC XML and
BioC round trips are in test_distributed.py."""

import io
import json
import logging
import xml.etree.ElementTree as ElementTree
from html.parser import HTMLParser
from pathlib import Path

import pytest

from vaner.bioc_json import BioCJsonWriter
from vaner.corpora import read_pubtator
from vaner.documents import AnnotatedDocument, Document, Entity
from vaner.formats import (
    HtmlWriter,
    JsonlWriter,
    PubTatorWriter,
    detect_input_format,
    output_format_for,
    read_documents,
    read_jsonl,
    read_pubtator_documents,
    read_text_file,
    write_documents,
)

PUBTATOR = (
    "101|t|Cisplatin-induced nephrotoxicity in BRCA1 mice.\n"
    "101|a|TNF-\u03b1 and \u03b2-catenin rose | twice; the  risk of ovarian cancer rose.\n"
    "101\t0\t9\tCisplatin\tChemical\tD002945\n"
    "101\tCID\tD002945\tD007674\n"
    "\n"
    "102|t|No abstract here.\n"
    "102|a|\n"
    "\n"
)


def entity(text, substring, entity_type, score=0.9, occurrence=0):
    start = -1
    for _ in range(occurrence + 1):
        start = text.index(substring, start + 1)
    return Entity(start, start + len(substring), substring, entity_type, score)


def annotate_by_hand(document: Document) -> AnnotatedDocument:
    """Known entities for the test documents (the annotator is tested in test_documents.py)."""
    text = document.text
    entities = [entity(text, word, entity_type) for word, entity_type in
                (("Cisplatin", "Chemical"), ("BRCA1", "Gene"), ("TNF-\u03b1", "Gene"), ("ovarian cancer", "Disease"))
                if word in text]
    if "BRCA1" in text:
        entities.append(entity(text, "BRCA1", "Disease", 0.4))
    return AnnotatedDocument(document, tuple(sorted(entities, key=lambda e: (e.start, e.end))))


# --------------------------------------------------------------------------------------------
# Readers


def test_pubtator_round_trip_keeps_the_text(tmp_path):
    source = tmp_path / "in.pubtator"
    source.write_text(PUBTATOR, encoding="utf-8")
    documents = list(read_pubtator_documents(source))
    assert [d.document_id for d in documents] == ["101", "102"]
    first = documents[0]
    assert first.text.startswith("Cisplatin-induced") and first.passages[1].kind == "abstract"
    assert first.text[first.passages[1].start :].startswith("TNF-\u03b1")

    output = tmp_path / "out.pubtator"
    write_documents((annotate_by_hand(d) for d in documents), output, "pubtator")
    written = output.read_text(encoding="utf-8")
    title_lines = [line for line in written.splitlines() if "|t|" in line or "|a|" in line]
    assert title_lines == [line for line in PUBTATOR.splitlines() if "|t|" in line or "|a|" in line]
    # The project's strict PubTator reader checks every mention against the text at its offsets.
    reread = read_pubtator(output)
    assert [d.text for d in reread] == [d.text for d in documents]
    assert [(a.start, a.end, a.mention, a.entity_type) for a in reread[0].annotations] == [
        (0, 9, "Cisplatin", "Chemical"), (36, 41, "BRCA1", "Gene"), (36, 41, "BRCA1", "Disease"),
        (48, 53, "TNF-\u03b1", "Gene"), (95, 109, "ovarian cancer", "Disease")]


def test_plain_text_written_as_pubtator_keeps_offsets(tmp_path):
    text = "Cisplatin\tand BRCA1\r\nin ovarian cancer.\n"
    annotated = annotate_by_hand(Document("doc", text))
    stream = io.StringIO()
    with PubTatorWriter(stream) as writer:
        writer.write(annotated)
    path = tmp_path / "out.pubtator"
    path.write_text(stream.getvalue(), encoding="utf-8")
    (document,) = read_pubtator(path)
    assert len(document.title) == len(text)  # tabs and line breaks became spaces, one for one
    assert [(a.start, a.end) for a in document.annotations] == [(e.start, e.end) for e in annotated.entities]


def test_jsonl_reader_names_bad_lines(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_bytes(
        b'\xef\xbb\xbf{"id": 7, "text": "BRCA1 mice."}\n'
        b'\n'
        b'{"text": "no id"}\n'
        b'{"id": "broken", "text": \n'
        b'["a list"]\n'
        b'{"id": "no-text"}\n'
        b'{"id": "bytes", "text": "caf\xe9 \xff"}\n'
    )
    documents = list(read_jsonl(path))
    assert [d.document_id for d in documents] == ["7", "docs.jsonl:3", "docs.jsonl:4", "docs.jsonl:5", "no-text", "bytes"]
    assert documents[0].text == "BRCA1 mice." and documents[0].error is None
    assert documents[1].text == "no id"
    assert documents[2].error == f"{path}:4: not a JSON object (Expecting value)"
    assert "expected a JSON object" in documents[3].error
    assert documents[4].error == f"{path}:6: document 'no-text' has no \"text\" string"
    assert documents[5].text == "caf\ufffd \ufffd"


def test_text_files_empty_whitespace_and_undecodable(tmp_path, caplog):
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "blank.txt").write_bytes(b" \r\n\t\n")
    (tmp_path / "latin1.txt").write_bytes(b"Caf\xe9 au lait \xce\xb1-\xff.")
    (tmp_path / ".hidden").write_bytes(b"skipped")
    with caplog.at_level(logging.WARNING):
        documents = list(read_documents([tmp_path]))
    assert [d.document_id for d in documents] == ["blank", "empty", "latin1"]
    assert [d.text for d in documents[:2]] == [" \r\n\t\n", ""]
    assert documents[2].text == "Caf\ufffd au lait \u03b1-\ufffd."
    assert f"{tmp_path / 'latin1.txt'}: bytes that are not utf-8" in caplog.text
    assert read_text_file(tmp_path / "latin1.txt", encoding="latin-1").text.startswith("Caf\u00e9")


def test_pubtator_reader_survives_broken_structure(tmp_path):
    path = tmp_path / "broken.pubtator"
    path.write_text("9|a|abstract without title\n\n5|t|Title only\n\n6|t|T\n6|a|A\n6\t0\t1\tT\tGene\n", encoding="utf-8")
    documents = list(read_pubtator_documents(path))
    assert [d.document_id for d in documents] == ["9", "5", "6"]
    assert "abstract of document '9' without its title" in documents[0].error
    assert documents[1].text == "Title only" and documents[1].error is None
    assert documents[2].text == "T A"


def test_input_format_detection(tmp_path):
    (tmp_path / "a.txt").write_text("123|t|A title\n123|a|Text\n", encoding="utf-8")
    (tmp_path / "b.txt").write_text('\n{"id": 1, "text": "x"}\n', encoding="utf-8")
    (tmp_path / "c.txt").write_text("Just text {with braces}.", encoding="utf-8")
    (tmp_path / "d.jsonl").write_text("", encoding="utf-8")
    (tmp_path / "e.txt").write_text('{"source": "PubTator", "documents": []}\n', encoding="utf-8")  # not jsonl
    (tmp_path / "f.txt").write_text("<?xml version='1.0'?>\n<collection/>\n", encoding="utf-8")
    assert [detect_input_format(tmp_path / name) for name in ("a.txt", "b.txt", "c.txt", "d.jsonl", "e.txt", "f.txt")] == [
        "pubtator", "jsonl", "text", "jsonl", "bioc", "bioc_xml"]
    assert output_format_for("x.html") == "html" and output_format_for("x.json") == "bioc"
    assert output_format_for("x.xml") == "bioc_xml"
    assert output_format_for("-") == "jsonl" and output_format_for("x.txt", "pubtator") == "pubtator"
    with pytest.raises(FileNotFoundError, match="missing.txt: no such file"):
        list(read_documents([tmp_path / "missing.txt"]))


# --------------------------------------------------------------------------------------------
# Writers


def test_jsonl_writer_records():
    stream = io.StringIO()
    writer = JsonlWriter(stream)
    writer.write(annotate_by_hand(Document("1", "BRCA1 mice")))
    writer.write(AnnotatedDocument(Document("2", ""), (), "x.jsonl:2: not a JSON object"))
    writer.close()
    first, second = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert first == {"id": "1", "entities": [
        {"start": 0, "end": 5, "text": "BRCA1", "type": "Gene", "score": 0.9},
        {"start": 0, "end": 5, "text": "BRCA1", "type": "Disease", "score": 0.4}]}
    assert second == {"id": "2", "entities": [], "error": "x.jsonl:2: not a JSON object"}


def test_bioc_json_passages_and_locations(tmp_path):
    (tmp_path / "docs.pubtator").write_text(PUBTATOR, encoding="utf-8")
    documents = list(read_pubtator_documents(tmp_path / "docs.pubtator"))
    stream = io.StringIO()
    writer = BioCJsonWriter(stream, date="2025-01-01")
    for document in documents:
        writer.write(annotate_by_hand(document))
    writer.write(AnnotatedDocument(Document("bad", ""), (), "broken"))
    writer.close()
    collection = json.loads(stream.getvalue())
    assert collection["date"] == "2025-01-01" and [d["id"] for d in collection["documents"]] == ["101", "102"]
    title, abstract = collection["documents"][0]["passages"]
    assert title["infons"]["type"] == "title" and abstract["offset"] == len(title["text"]) + 1
    for passage in (title, abstract):
        for annotation in passage["annotations"]:
            (location,) = annotation["locations"]
            local = location["offset"] - passage["offset"]
            assert passage["text"][local : local + location["length"]] == annotation["text"]
            assert set(annotation["infons"]) == {"type", "score"}
    assert [a["text"] for a in abstract["annotations"]] == ["TNF-\u03b1", "ovarian cancer"]
    ids = [a["id"] for p in (title, abstract) for a in p["annotations"]]
    assert len(ids) == len(set(ids)) == 5


class _TextCollector(HTMLParser):
    """The page's text inside passages, without the type labels, and the tags still open at the end."""

    def __init__(self):
        super().__init__()
        self.open, self.passages, self.in_passage, self.in_label = [], [], False, False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.open.append(tag)  # <meta/> comes back through handle_endtag too
        if tag == "p" and "passage" in (attrs.get("class") or ""):
            self.in_passage = True
            self.passages.append("")
        self.in_label = tag == "span" and attrs.get("class") == "label" or self.in_label

    def handle_endtag(self, tag):
        assert self.open and self.open[-1] == tag, f"</{tag}> closes <{self.open[-1] if self.open else None}>"
        self.open.pop()
        if tag == "p":
            self.in_passage = False
        if tag == "span":
            self.in_label = False

    def handle_data(self, data):
        if self.in_passage and not self.in_label:
            self.passages[-1] += data


def test_html_is_well_formed_and_shows_every_character():
    text = "BRCA1 <script>alert(1)</script> & TNF-\u03b1 in ovarian cancer\x0b\r\nrose."
    entities = (entity(text, "BRCA1", "Gene", 0.91), entity(text, "BRCA1", "Disease", 0.42),
                entity(text, "TNF-\u03b1", "Gene"), entity(text, "ovarian cancer", "Disease"),
                entity(text, "cancer", "Cell line", 0.3))
    stream = io.StringIO()
    with HtmlWriter(stream, ["Disease", "Gene"]) as writer:
        writer.write(AnnotatedDocument(Document("d<1>", text), tuple(sorted(entities, key=lambda e: (e.start, e.end)))))
        writer.write(AnnotatedDocument(Document("empty", ""), ()))
        writer.write(AnnotatedDocument(Document("bad", ""), (), "x.jsonl:3: not a JSON object"))
    page = stream.getvalue()
    ElementTree.fromstring(page.split("\n", 1)[1])  # XML well-formed (after the doctype line)
    collector = _TextCollector()
    collector.feed(page)
    collector.close()
    assert collector.open == []
    assert collector.passages[0] == text.replace("\x0b", "\ufffd")  # the text, all of it, in order
    assert "<script>" not in page and "&lt;script&gt;" in page
    legend = page[page.index('class="legend"') : page.index("</header>")]
    assert "Disease" in legend and "Gene" in legend and "Cell line" not in legend
    assert "repeating-linear-gradient" in page  # BRCA1 is both Gene and Disease
    assert 'title="Gene 0.91: BRCA1; Disease 0.42: BRCA1"' in page
    assert "(empty document)" in page and "x.jsonl:3: not a JSON object" in page


def test_pubtator_abstract_continued_without_its_prefix_is_kept_with_a_warning(tmp_path, caplog):
    path = tmp_path / "wrapped.pubtator"
    path.write_text("7|t|Title of seven.\n7|a|First part of the abstract,\nits second part on a line of its own.\n"
                    "7\t0\t5\tTitle\tGene\n\n8|t|Eight.\n8|a|A.\n8\t0\t1\tE\tGene\nstray text after the mentions\n",
                    encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        documents = list(read_pubtator_documents(path))
    assert [d.document_id for d in documents] == ["7", "wrapped.pubtator:9", "8"]
    assert documents[0].text == "Title of seven. First part of the abstract, its second part on a line of its own."
    assert documents[0].error is None and documents[0].passage_list()[1].kind == "abstract"
    assert f"{path}:3:" in caplog.text and "continues the abstract of document '7'" in caplog.text
    assert documents[1].error.startswith(f"{path}:9: ") and documents[2].text == "Eight. A."


def test_non_utf8_inputs_are_named_with_file_and_line(tmp_path, caplog):
    (tmp_path / "utf16.txt").write_text("BRCA1 mice.\nSecond line.\n", encoding="utf-16")
    (tmp_path / "binary.txt").write_bytes(b"first line\nsecond\n\x89PNG\xff\n")
    with caplog.at_level(logging.WARNING):
        documents = list(read_documents([tmp_path]))
    assert [d.document_id for d in documents] == ["binary", "utf16"]
    assert f"{tmp_path / 'binary.txt'}: bytes that are not utf-8 (first at line 3, byte 18)" in caplog.text
    assert f"{tmp_path / 'utf16.txt'}: bytes that are not utf-8 (first at line 1, byte 0)" in caplog.text
    assert "UTF-16 byte-order mark" in caplog.text and "--encoding utf-16" in caplog.text
    assert read_text_file(tmp_path / "utf16.txt", encoding="utf-16").text == "BRCA1 mice.\nSecond line.\n"


def test_a_format_is_one_registration(tmp_path, monkeypatch):
    """The seam for a new format: register a reader or a writer; auto detection and the writers find it."""
    from vaner import formats

    def read_lines(path, encoding):
        for number, line in enumerate(Path(path).read_text(encoding=encoding).splitlines(), start=1):
            yield Document(f"line{number}", line)

    class CountWriter(formats.DocumentWriter):
        def _write(self, annotated):
            self.stream.write(f"{annotated.document_id}\t{len(annotated.entities)}\n")

    monkeypatch.setitem(formats.INPUT_FORMATS, "lines", formats.InputFormat("lines", read_lines, "a document per line",
                                                                           (".lines",)))
    monkeypatch.setitem(formats.OUTPUT_FORMATS, "counts", formats.OutputFormat(
        "counts", lambda stream, entity_types, **options: CountWriter(stream), "entities per document", (".counts",)))
    source = tmp_path / "in.lines"
    source.write_text("BRCA1 mice.\nCisplatin.\n", encoding="utf-8")
    documents = list(read_documents([source]))
    assert [(d.document_id, d.text) for d in documents] == [("line1", "BRCA1 mice."), ("line2", "Cisplatin.")]
    output = tmp_path / "out.counts"
    assert output_format_for(output) == "counts"
    write_documents((AnnotatedDocument(d) for d in documents), output)
    assert output.read_text(encoding="utf-8") == "line1\t0\nline2\t0\n"
