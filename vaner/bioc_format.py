"""BioC documents to and from VANER's, through the `bioc` package (the field's library for BioC); the two
BioC formats (vaner.bioc_xml, vaner.bioc_json) read and write with these.

Reading: `bioc.get_text` lays the passages out at their document-level offsets (gaps filled with line
breaks), so the offsets of our entities are the document-level offsets of the file. Each passage becomes a
`Passage` (sentences never cross one), of the kind its `type` infon names.

Writing: a document read from BioC is written back as it was read, existing annotations and relations
included, with ours added to the passage where each entity starts: infons `type`, `score` and `model` (the
model id), a fresh annotation id, one location (document-level offset, length). Any other document becomes
one BioC passage per passage.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from typing import Any

import bioc

from .documents import AnnotatedDocument, Document, Passage

# Characters XML 1.0 does not allow (lxml refuses them).
XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass(frozen=True)
class BioCSourceDocument(Document):
    """A `Document` read from BioC: it keeps the `bioc.BioCDocument` it came from, so that a BioC writer
    gives it back with its own infons, annotations and relations."""

    bioc_document: Any = field(default=None, compare=False, repr=False)


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


def to_bioc(annotated: AnnotatedDocument, model: str | None = None, xml_safe: bool = False) -> bioc.BioCDocument:
    """The BioC document of an annotated document: the one it was read from (annotations kept) or a new
    one with a passage per passage; our entities are added as annotations of the passage they start in.
    `xml_safe` replaces XML-invalid characters (lxml refuses them) one for one, so offsets do not move."""
    document = annotated.document
    clean = (lambda text: XML_INVALID.sub("\ufffd", text)) if xml_safe else (lambda text: text)
    bioc_document = getattr(document, "bioc_document", None)
    if bioc_document is None:
        bioc_document = _new_bioc_document(document, clean)
    used = {result.annotation.id for result in bioc.annotations(bioc_document)}
    number = 0
    passages = bioc_document.passages
    spans = [(p.offset, p.offset + len(bioc.get_text(p)[1] or "")) for p in passages]
    for entity in annotated.entities:
        index = next((i for i, (start, end) in enumerate(spans) if start <= entity.start < end), None)
        target = bioc_document if index is None else passages[index]  # outside every passage: on the document
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


def _new_bioc_document(document: Document, clean) -> bioc.BioCDocument:
    bioc_document = bioc.BioCDocument()
    bioc_document.id = clean(document.document_id)
    for passage in document.passage_list():
        bioc_passage = bioc.BioCPassage()
        bioc_passage.offset = passage.start
        bioc_passage.infons["type"] = passage.kind
        bioc_passage.text = clean(document.text[passage.start : passage.end])
        bioc_document.add_passage(bioc_passage)
    return bioc_document


def collection_info(source: str, date: str | None, infons: dict | None) -> bioc.BioCCollection:
    """An empty collection carrying the header a writer puts before the documents."""
    collection = bioc.BioCCollection()
    collection.source = source
    collection.date = date or datetime.date.today().isoformat()
    collection.key = "vaner.key"
    collection.infons = {key: str(value) for key, value in (infons or {}).items()}
    return collection


__all__ = ["BioCSourceDocument", "collection_info", "to_bioc", "to_document"]
