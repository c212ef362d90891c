"""BioC documents to and from VANER's, through the `bioc` package (the field's library for BioC); the two
BioC formats (vaner.bioc_xml, vaner.bioc_json) read and write with these.

Reading: `bioc.get_text` lays the passages out at their document-level offsets (gaps filled with line
breaks), so the offsets of our entities are the document-level offsets of the file. Each passage becomes a
`Passage` (sentences never cross one), of the kind its `type` infon names. Offsets that would lay out an
absurdly long text (a passage at offset 300,000,000 in a file of 300 bytes) are refused before `bioc.get_text`
fills the gap: the document becomes one with an error (`layout_problem`).

Writing: a document read from BioC is written back as it was read, existing annotations and relations
included, with ours added to the passage where each entity starts: infons `type`, `score` and `model` (the
model id), a fresh annotation id, one location (document-level offset, length). Any other document becomes
one BioC passage per passage.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

import bioc

from .documents import AnnotatedDocument, Document, Passage
from .xmlparsing import XML_INVALID


@dataclass(frozen=True)
class BioCSourceDocument(Document):
    """A `Document` read from BioC: it keeps the `bioc.BioCDocument` it came from, so that a BioC writer
    gives it back with its own infons, annotations and relations."""

    bioc_document: Any = field(default=None, compare=False, repr=False)


def to_document(bioc_document: bioc.BioCDocument, where: str, fallback_id: str) -> Document:
    """The `Document` of a BioC document: text laid out by `bioc.get_text` (document-level offsets), one
    `Passage` per BioC passage (no id or an empty one: `fallback_id`). Overlapping passages, offsets that are
    no integers and offsets that would lay out an absurdly long text (`layout_problem`) make a document with
    an error."""
    document_id = fallback_id if bioc_document.id in (None, "") else str(bioc_document.id)
    problem = layout_problem(bioc_document)
    if problem:
        return Document(document_id, "", source=where, error=f"{where}: BioC document {document_id!r}: {problem}")
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


# A document's laid-out text may be this long whatever its passages hold, and TEXT_PER_CONTENT times as long
# as their text (gaps between passages are filled with line breaks).
MIN_TEXT_LIMIT = 1_000_000
TEXT_PER_CONTENT = 100


def layout_problem(bioc_document: bioc.BioCDocument) -> str | None:
    """Why `bioc.get_text` must not lay this document out, checked before it does (it fills the gaps before
    passage offsets, and before sentence offsets in a passage without text, with characters): an offset that
    is no integer, or a text that would end beyond max(MIN_TEXT_LIMIT, TEXT_PER_CONTENT x the characters of
    the passages' text); None where it may."""
    if bioc_document.text:  # a document-level text is taken as it is
        return None
    content = 0
    ends = []  # (where the passage's text ends, the offset that puts it there)
    for passage in bioc_document.passages:
        if not _is_offset(passage.offset):
            return f"passage offset {passage.offset!r} is not an integer"
        ends.append((passage.offset + len(passage.text or ""), f"passage offset {passage.offset:,}"))
        if passage.text:
            content += len(passage.text)
            continue
        for sentence in passage.sentences:
            if not _is_offset(sentence.offset):
                return f"sentence offset {sentence.offset!r} is not an integer"
            length = len(sentence.text or "")
            content += length
            ends.append((sentence.offset + length, f"sentence offset {sentence.offset:,} (passage offset "
                                                   f"{passage.offset:,})"))
    limit = max(MIN_TEXT_LIMIT, TEXT_PER_CONTENT * content)
    for end, offset in ends:
        if end > limit:
            return (f"{offset} would make a text of {end:,} characters, over the limit of {limit:,} (the larger "
                    f"of {MIN_TEXT_LIMIT:,} and {TEXT_PER_CONTENT} x its {content:,} characters of passage text); "
                    f"not annotated")
    return None


def _is_offset(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


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


__all__ = ["BioCSourceDocument", "collection_info", "layout_problem", "to_bioc", "to_document"]
