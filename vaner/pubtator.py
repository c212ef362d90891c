"""PubTator, read and written in one place: `ID|t|title`, `ID|a|abstract`, tab-separated mention lines
(`ID<TAB>start<TAB>end<TAB>mention<TAB>type[<TAB>identifier...]`) and relation lines, a blank line after
each document. Offsets index the document text, title + " " + abstract.

One parser, two modes:
- strict (corpora, `read_pubtator`): every mention is checked against the text at its offsets and the
  first fault raises `CorpusFormatError` naming file and line; the whole file is read.
- tolerant (annotation, `read_pubtator_documents`): streams `Document`s; mention lines are skipped (the
  documents are annotated anew), a title or abstract continued on a line of its own is joined to it with a
  warning, and a record that cannot be read becomes a `Document` with an `error` naming file and line.

`PubTatorWriter` (in vaner.formats, with the other writers) writes annotated documents back.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from text_vaner import Document, Passage

from .textfiles import STDIO, CorpusFormatError, input_name, open_binary, text_lines, undecodable_file_error

logger = logging.getLogger(__name__)

# A title or abstract line: "ID|t|text" or "ID|a|text".
TEXT_LINE = re.compile(r"^(?P<id>[^|\t]+)\|(?P<part>[ta])\|(?P<text>.*)$")


@dataclass(frozen=True)
class PubTatorAnnotation:
    """One mention line; `start`/`end` are character offsets in the document text."""

    start: int
    end: int
    mention: str
    entity_type: str
    identifier: str | None = None  # None: the line had no identifier column
    extra: tuple[str, ...] = ()  # further columns (BC5CDR composite mentions), as read


@dataclass(frozen=True)
class PubTatorDocument:
    """A title + abstract with its gold mentions, as a corpus holds it. Offsets index `text`."""

    document_id: str
    title: str
    abstract: str
    annotations: tuple[PubTatorAnnotation, ...] = ()
    # Lines other than mentions (BC5CDR's "CID" relations), as their columns.
    relations: tuple[tuple[str, ...], ...] = ()
    line: int = field(default=0, compare=False)  # 1-based line of the title, for messages

    @property
    def text(self) -> str:
        return f"{self.title} {self.abstract}"

    def document(self, source: str = "") -> Document:
        """The annotation path's `Document`: the same text, a title and an abstract passage."""
        passages = (Passage(0, len(self.title), "title"), Passage(len(self.title) + 1, len(self.text), "abstract"))
        return Document(self.document_id, self.text, passages, source)


def is_pubtator_file(path: str | Path) -> bool:
    """Whether the first non-blank line of a file is a PubTator title or abstract line."""
    with Path(path).open("rb") as handle:
        for raw in handle:
            line = raw.decode("utf-8", errors="replace").lstrip("\ufeff").strip()
            if line:
                return bool(TEXT_LINE.match(line))
    return False


def read_pubtator(path: str | Path) -> list[PubTatorDocument]:
    """A PubTator corpus file, strictly: every mention checked against the text at its offsets."""
    path = Path(path)
    if not path.is_file():
        raise CorpusFormatError(f"{path}: no such corpus file")
    documents = list(_parse(path, strict=True))
    if not documents:
        raise CorpusFormatError(f"{path}: the file holds no PubTator documents")
    return documents


def read_pubtator_documents(path: str | Path, encoding: str = "utf-8") -> Iterator[Document]:
    """PubTator documents to annotate, streamed and tolerantly ("-" reads standard input): a `Document` with
    the title and abstract as passages per record, or with an `error` for a record that cannot be read."""
    name = input_name(path)
    for record in _parse(path, strict=False, encoding=encoding):
        if isinstance(record, Document):
            yield record
        elif record.abstract is None:  # a title alone
            yield Document(record.document_id, record.title, (Passage(0, len(record.title), "title"),),
                           f"{name}:{record.line}")
        else:
            yield PubTatorDocument(record.document_id, record.title, record.abstract).document(f"{name}:{record.line}")


class _Record:
    """A document being read."""

    def __init__(self, document_id: str, title: str, line: int):
        self.document_id, self.title, self.line = document_id, title, line
        self.abstract: str | None = None
        self.annotations: list[PubTatorAnnotation] = []
        self.relations: list[tuple[str, ...]] = []
        self.mentions = False  # a mention or relation line was seen

    def finish(self, strict: bool):
        if not strict:
            return self
        return PubTatorDocument(self.document_id, self.title, self.abstract or "", tuple(self.annotations),
                                tuple(self.relations), self.line)


def _parse(path: str | Path, strict: bool, encoding: str = "utf-8"):
    """PubTatorDocuments (strict) or _Records and error Documents (tolerant), in file order."""
    name = input_name(path)
    current: _Record | None = None

    def fault(where: str, message: str, document_id: str | None = None) -> Document:
        if strict:
            raise CorpusFormatError(f"{where}: {message}")
        return Document(document_id or f"{Path(name).name}:{where.rsplit(':', 1)[1]}", "", source=where,
                        error=f"{where}: {message}")

    with open_binary(path) as handle:
        for line_number, line in _utf8_lines(handle, path) if strict else text_lines(handle, encoding, name):
            where = f"{name}:{line_number}"
            line = line.rstrip("\r\n")
            if line_number == 1:
                line = line.lstrip("\ufeff")
            if not line.strip():
                if current is not None:
                    yield current.finish(strict)
                    current = None
                continue
            text_line = TEXT_LINE.match(line)
            if text_line and text_line["part"] == "t":
                if current is not None:
                    yield current.finish(strict)
                current = _Record(text_line["id"], text_line["text"], line_number)
            elif text_line:  # an abstract line
                document_id = text_line["id"]
                if current is None or current.document_id != document_id or current.abstract is not None:
                    message = (f"abstract line without the title line of document {document_id!r} before it" if strict
                               else f"abstract of document {document_id!r} without its title line before it")
                    yield fault(where, message, document_id)
                    continue
                if strict and current.mentions:
                    fault(where, f"abstract line after the mentions of document {document_id!r}")
                current.abstract = text_line["text"]
            elif current is None:
                prefix = "expected a title line" if strict else "expected a PubTator title line"
                yield fault(where, f"{prefix} 'ID|t|title', got {line if strict else line[:60]!r}")
            elif "\t" in line:  # a mention or relation line of the current document
                if strict:
                    _check_mention(current, line, where)
                current.mentions = True
            elif current.mentions:
                if strict:  # a stray line is read as a mention line, which names what is wrong
                    _check_mention(current, line, where)
                yield fault(where, f"a line without the 'ID|a|' prefix after the mentions of document "
                                   f"{current.document_id!r}: {line[:60]!r}")
            elif strict:
                fault(where, f"a line without the 'ID|a|' prefix in document {current.document_id!r}, an abstract "
                             f"continued on a line of its own? PubTator holds the title and the abstract on one line "
                             f"each: {line[:60]!r}")
            else:  # the title or abstract continued on a line of its own
                part = "abstract" if current.abstract is not None else "title"
                logger.warning("%s: a line without the 'ID|a|' prefix continues the %s of document %r; joined to it "
                               "with a space", where, part, current.document_id)
                setattr(current, part, f"{getattr(current, part)} {line}")
    if current is not None:
        yield current.finish(strict)


def _utf8_lines(handle, path: str | Path) -> Iterator[tuple[int, str]]:
    """(line number, line) of a corpus file, strictly UTF-8: the first line that is not raises naming it."""
    for line_number, raw_line in enumerate(handle, start=1):
        try:
            yield line_number, raw_line.decode("utf-8")
        except UnicodeDecodeError:
            raise undecodable_file_error(path) from None


def _check_mention(current: _Record, line: str, where: str) -> None:
    """Add a mention or relation line to the document (strict mode), or raise naming what is wrong."""
    fields = line.split("\t")
    if fields[0] != current.document_id:
        raise CorpusFormatError(f"{where}: line of document {fields[0]!r} inside document {current.document_id!r}")
    if len(fields) >= 5 and fields[1].isdigit() and fields[2].isdigit():
        document_text = f"{current.title} {current.abstract or ''}"
        start, end = int(fields[1]), int(fields[2])
        if not 0 <= start < end <= len(document_text):
            raise CorpusFormatError(
                f"{where}: offsets {start}-{end} outside the document text ({len(document_text)} characters)"
            )
        if document_text[start:end] != fields[3]:
            raise CorpusFormatError(
                f"{where}: mention {fields[3]!r} differs from the text at {start}-{end}: {document_text[start:end]!r}"
            )
        if not fields[4]:
            raise CorpusFormatError(f"{where}: mention {fields[3]!r} has no type")
        identifier = fields[5] if len(fields) > 5 else None
        current.annotations.append(PubTatorAnnotation(start, end, fields[3], fields[4], identifier, tuple(fields[6:])))
    elif len(fields) >= 4 and not fields[1].isdigit():
        current.relations.append(tuple(fields))
    else:
        raise CorpusFormatError(
            f"{where}: expected a mention 'ID<TAB>start<TAB>end<TAB>mention<TAB>type[<TAB>identifier]', got {line!r}"
        )


__all__ = ["STDIO", "TEXT_LINE", "PubTatorAnnotation", "PubTatorDocument", "is_pubtator_file", "read_pubtator",
           "read_pubtator_documents"]
