"""BioC XML and BioC JSON in and out, through the `bioc` package (the field's library for BioC).

Reading: `bioc.biocxml.iterparse` streams an XML collection document by document; `bioc.biocjson.load`
reads a JSON collection; `bioc.get_text` lays the passages out at their document-level offsets (gaps
filled with line breaks), so the offsets of our entities are the document-level offsets of the file.
Each passage becomes a `Passage` (sentences never cross one), of the kind its `type` infon names.

Writing: `bioc.biocxml.encoder.BioCXMLDocumentWriter` streams XML; BioC JSON uses the library's encoder
(`bioc.biocjson.toJSON`) for every document. A document read from BioC is written back as it was read,
existing annotations and relations included, with ours added to the passage where each entity starts:
infons `type`, `score` and `model` (the model id), a fresh annotation id, one location (document-level
offset, length). Any other document becomes one BioC passage per passage.

What stays hand-written, and why:
- the JSON collection envelope: the library writes a JSON collection only whole (`biocjson.dump` of a
  `BioCCollection` in memory); we stream it, one `toJSON` document at a time, in flat memory;
- XML-invalid control characters (possible in plain text or JSONL input) are replaced by U+FFFD before
  writing XML (lxml refuses them; one character for one, so offsets do not move);
- a read error (broken XML, overlapping passages) becomes a document with an `error`, as the other
  readers do, instead of an exception that stops the run.
"""

from __future__ import annotations

import codecs
import datetime
import json
import logging
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import bioc
from bioc import biocjson
from bioc.biocxml.decoder import BioCXMLDocumentReader
from bioc.biocxml.encoder import BioCXMLDocumentWriter

from .documents import AnnotatedDocument, Document, Passage

logger = logging.getLogger(__name__)

STDIO = "-"
# Characters XML 1.0 does not allow.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass(frozen=True)
class BioCSourceDocument(Document):
    """A `Document` read from BioC: it keeps the `bioc.BioCDocument` it came from, so that a BioC writer
    gives it back with its own infons, annotations and relations."""

    bioc_document: Any = field(default=None, compare=False, repr=False)


def _name(path) -> str:
    return "<stdin>" if str(path) == STDIO else str(path)


def to_document(bioc_document: bioc.BioCDocument, where: str, fallback_id: str) -> Document:
    """The `Document` of a BioC document: text laid out by `bioc.get_text` (document-level offsets), one
    `Passage` per BioC passage. Overlapping passages make a document with an error."""
    document_id = fallback_id if bioc_document.id is None else str(bioc_document.id)
    try:
        _, text = bioc.get_text(bioc_document)
    except (ValueError, AssertionError) as error:
        return Document(document_id, "", source=where, error=f"{where}: BioC document {document_id!r}: {error}")
    passages = []
    for passage in bioc_document.passages:
        _, passage_text = bioc.get_text(passage)
        kind = (passage.infons.get("type") or "text") if passage.infons else "text"
        passages.append(Passage(passage.offset, passage.offset + len(passage_text or ""), kind))
    return BioCSourceDocument(document_id, text or "", tuple(passages), where, bioc_document=bioc_document)


def read_bioc_xml(path: str | Path) -> Iterator[Document]:
    """Documents of a BioC XML collection, streamed (the XML declaration gives the encoding). Broken XML
    ends the file with a document that carries the parser's error."""
    name = _name(path)
    source = sys.stdin.buffer if str(path) == STDIO else str(path)
    number = 0
    try:
        for number, bioc_document in enumerate(BioCXMLDocumentReader(source), start=1):
            yield to_document(bioc_document, f"{name}:document {number}", f"{Path(name).name}:{number}")
    except Exception as error:  # lxml.etree.XMLSyntaxError and friends
        where = f"{name}:document {number + 1}"
        yield Document(f"{Path(name).name}:{number + 1}", "", source=where,
                       error=f"{where}: not readable as BioC XML ({error})")


def read_bioc_json(path: str | Path, encoding: str = "utf-8") -> Iterator[Document]:
    """Documents of a BioC JSON collection (read whole: the library has no streaming JSON reader)."""
    name = _name(path)
    try:
        if str(path) == STDIO:
            collection = biocjson.load(sys.stdin)
        else:
            with open(path, encoding=encoding) as handle:
                collection = biocjson.load(handle)
    except (ValueError, KeyError, TypeError) as error:
        yield Document(Path(name).name, "", source=name, error=f"{name}: not readable as a BioC JSON collection "
                                                                 f"({type(error).__name__}: {error})")
        return
    for number, bioc_document in enumerate(collection.documents, start=1):
        yield to_document(bioc_document, f"{name}:document {number}", f"{Path(name).name}:{number}")


def looks_like_bioc_json(first_line: str) -> bool:
    """True for the first line of a BioC JSON collection: a bare "{" or an object with "documents"."""
    if first_line == "{":
        return True
    try:
        record = json.loads(first_line)
    except ValueError:
        return False
    return isinstance(record, dict) and "documents" in record and "text" not in record


# --------------------------------------------------------------------------------------------
# Writing


def to_bioc(annotated: AnnotatedDocument, model: str | None = None, xml_safe: bool = False) -> bioc.BioCDocument:
    """The BioC document of an annotated document: the one it was read from (annotations kept) or a new
    one with a passage per passage; our entities are added as annotations of the passage they start in."""
    document = annotated.document
    original = getattr(document, "bioc_document", None)
    clean = (lambda text: _XML_INVALID.sub("\ufffd", text)) if xml_safe else (lambda text: text)
    if original is not None:
        bioc_document = original
    else:
        bioc_document = bioc.BioCDocument()
        bioc_document.id = clean(document.document_id)
        for passage in document.passage_list():
            bioc_passage = bioc.BioCPassage()
            bioc_passage.offset = passage.start
            bioc_passage.infons["type"] = passage.kind
            bioc_passage.text = clean(document.text[passage.start : passage.end])
            bioc_document.add_passage(bioc_passage)
    used = {result.annotation.id for result in bioc.annotations(bioc_document)}
    number = 0
    passages = bioc_document.passages
    spans = [(p.offset, p.offset + len(bioc.get_text(p)[1] or "")) for p in passages]
    for entity in annotated.entities:
        index = next((i for i, (start, end) in enumerate(spans) if start <= entity.start < end), None)
        if index is None:  # an entity outside every passage cannot happen; keep it on the document then
            target = bioc_document
        else:
            target = passages[index]
        while str(number) in used:
            number += 1
        annotation = bioc.BioCAnnotation()
        annotation.id = str(number)
        used.add(annotation.id)
        annotation.infons["type"] = entity.entity_type
        annotation.infons["score"] = f"{entity.score:.4f}"
        if model:
            annotation.infons["model"] = model
        annotation.text = clean(entity.text)
        annotation.add_location(bioc.BioCLocation(entity.start, entity.end - entity.start))
        target.add_annotation(annotation)
    return bioc_document


class _TextSink:
    """A binary write() for lxml that decodes UTF-8 (chunks may cut a character) into a text stream."""

    def __init__(self, stream: IO[str]):
        self.stream = stream
        self.decoder = codecs.getincrementaldecoder("utf-8")()

    def write(self, data: bytes) -> None:
        self.stream.write(self.decoder.decode(bytes(data)))

    def flush(self) -> None:
        self.stream.flush()


def _collection_info(source: str, date: str | None, infons: dict | None) -> bioc.BioCCollection:
    collection = bioc.BioCCollection()
    collection.source = source
    collection.date = date or datetime.date.today().isoformat()
    collection.key = "vaner.key"
    collection.infons = {key: str(value) for key, value in (infons or {}).items()}
    return collection


class _Writer:
    """The interface of `vaner.formats.DocumentWriter` (write one annotated document, close), kept here so
    that this module does not import `vaner.formats`, which imports it."""

    def __init__(self, stream: IO[str]):
        self.stream = stream
        self.count = 0

    def write(self, annotated: AnnotatedDocument) -> None:
        self._write(annotated)
        self.count += 1

    def close(self) -> None:
        self.stream.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class BioCXmlWriter(_Writer):
    """A BioC XML collection, streamed with `bioc`'s document writer: collection infons (model, entity
    types), then one document at a time. Documents with an error are left out."""

    def __init__(self, stream: IO[str], source: str = "VANER", date: str | None = None, infons: dict | None = None):
        super().__init__(stream)
        self.model = (infons or {}).get("model")
        self._sink = _TextSink(stream)
        self._writer = BioCXMLDocumentWriter(self._sink, encoding="utf-8", standalone=True)
        self._writer.write_collection_info(_collection_info(source, date, infons))

    def _write(self, annotated):
        if annotated.error:
            return
        self._writer.write_document(to_bioc(annotated, self.model, xml_safe=True))

    def close(self):
        self._writer.close()
        super().close()


class BioCJsonWriter(_Writer):
    """A BioC JSON collection: the envelope (source, date, key, infons) written here, each document encoded
    by `bioc.biocjson.toJSON` as it comes (flat memory). Documents with an error are left out."""

    def __init__(self, stream: IO[str], source: str = "VANER", date: str | None = None, infons: dict | None = None):
        super().__init__(stream)
        self.model = (infons or {}).get("model")
        self._written = False
        collection = _collection_info(source, date, infons)
        header = {"source": collection.source, "date": collection.date, "key": collection.key,
                  "infons": collection.infons}
        self.stream.write(json.dumps(header, ensure_ascii=False)[:-1] + ', "documents": [')

    def _write(self, annotated):
        if annotated.error:
            return
        record = biocjson.toJSON(to_bioc(annotated, self.model))
        self.stream.write((",\n" if self._written else "\n") + json.dumps(record, ensure_ascii=False))
        self._written = True

    def close(self):
        self.stream.write("\n]}\n")
        super().close()


__all__ = ["BioCJsonWriter", "BioCSourceDocument", "BioCXmlWriter", "looks_like_bioc_json", "read_bioc_json",
           "read_bioc_xml", "to_bioc", "to_document"]
