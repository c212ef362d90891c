"""Document files in and out: plain text, JSONL and PubTator readers; JSONL, PubTator and HTML writers. BioC XML
and BioC JSON, read and written through the `bioc` package, are the format modules vaner.bioc_xml and
vaner.bioc_json (FORMAT_MODULES).

Readers are generators of `Document`s and writers take one `AnnotatedDocument` at a time, so files of
any size stream through in flat memory. A record that cannot be read (bad JSON, a lone surrogate escape,
undecodable line, a PubTator abstract without its title) becomes a `Document` with an `error` naming the file and line: it
flows through annotation with no entities, JSONL output keeps it with its message, the other writers
leave it out, and the command line reports it.

PubTator is read by vaner.pubtator in its tolerant mode (the corpus reader is its strict mode).
"""

from __future__ import annotations

import codecs
import contextlib
import html
import importlib
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from files_vaner import OutputError, check_output_folder, open_output, output_errors, output_target, writes_in_place

from .digests import DigestSet
from .documents import AnnotatedDocument, Document, Entity
from .pubtator import TEXT_LINE, read_pubtator_documents
from .textfiles import (
    READ_ERRORS,
    SNIFF_BYTES,
    STDIO,
    PipeCopy,
    decode,
    expand_inputs,
    head_bytes,
    input_name,
    is_pipe,
    open_binary,
    read_failure,
    text_lines,
    unreadable_reason,
)
from .xmlparsing import XML_INVALID

logger = logging.getLogger(__name__)



# --------------------------------------------------------------------------------------------
# The registry: predict_vaner.py's --input_format and --output_format choices come from it. A new format is a
# module that defines a reader or a DocumentWriter and registers it (see the end of this file for the
# built-in ones), imported in FORMAT_MODULES below.


@dataclass(frozen=True)
class InputFormat:
    """A document file format: `read(path, encoding)` yields `Document`s (records that cannot be read as
    `Document`s with an `error`); `--input_format auto` picks it by a file suffix or by `sniff(first line)`."""

    name: str
    read: Callable[[str | Path, str], Iterable[Document]]
    help: str
    suffixes: tuple[str, ...] = ()
    sniff: Callable[[str], bool] | None = None
    claims: Callable[[str], bool] | None = None  # for a suffix that formats share (.xml): does the file's head fit?
    uses_encoding: bool = True  # False: the file declares its own (XML), so --encoding is not applied to it


@dataclass(frozen=True)
class OutputFormat:
    """An output format: `writer(stream, entity_types, **options)` gives its `DocumentWriter`; `--output_format
    auto` picks it by the output file's suffix."""

    name: str
    writer: Callable[..., DocumentWriter]
    help: str
    suffixes: tuple[str, ...] = ()


INPUT_FORMATS: dict[str, InputFormat] = {}
OUTPUT_FORMATS: dict[str, OutputFormat] = {}
DEFAULT_INPUT_FORMAT = "text"  # what auto reads when no suffix or first line tells (and standard input)
DEFAULT_OUTPUT_FORMAT = "jsonl"


def register_input_format(input_format: InputFormat, before: str | None = None) -> InputFormat:
    """Auto detection tries the formats in registration order; `before` puts this one ahead of a registered
    format whose sniff would also accept its files (BioC JSON's first line starts with "{", as JSONL's does)."""
    formats = [(name, known) for name, known in INPUT_FORMATS.items() if name != input_format.name]
    at = next((index for index, (name, _) in enumerate(formats) if name == before), len(formats))
    formats.insert(at, (input_format.name, input_format))
    INPUT_FORMATS.clear()
    INPUT_FORMATS.update(formats)
    return input_format


def register_output_format(output_format: OutputFormat) -> OutputFormat:
    OUTPUT_FORMATS[output_format.name] = output_format
    return output_format

# A lone UTF-16 surrogate: JSON may escape one ("\\ud800"), but no UTF-8 file can hold it.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")



# --------------------------------------------------------------------------------------------
# Reading


def check_output_is_not_an_input(output: str | Path, inputs: Iterable[str | Path]) -> None:
    """ValueError when the output file is one of the input files (resolved paths compared): writing it
    would destroy the input before it is read."""
    if str(output) == STDIO:
        return
    target = Path(output).resolve()
    for path in inputs:
        if str(path) != STDIO and Path(path).resolve() == target:
            raise ValueError(f"the output {output} is also an input ({path}): choose another output file")


def detect_input_format(path: str | Path) -> str:
    """The registered input format of a file's suffix (.jsonl, .pubtator, ...; a `.gz` after it is looked
    through), the one whose `claims` accepts the file's head where formats share the suffix (BioC and PubMed
    XML), else the first whose `sniff` accepts the first non-blank line ("{" for JSONL, "ID|t|title" for
    PubTator), else "text"."""
    if str(path) == STDIO:
        return DEFAULT_INPUT_FORMAT
    named = Path(path)  # the name only: `path` may be a pipe's copy (PipeCopy)
    suffix = Path(named.stem).suffix if named.suffix.lower() == ".gz" else named.suffix
    candidates = [name for name, input_format in INPUT_FORMATS.items() if suffix.lower() in input_format.suffixes]
    if len(candidates) > 1:
        head = head_bytes(path, SNIFF_BYTES).decode("utf-8", errors="replace")
        return next((name for name in candidates if INPUT_FORMATS[name].claims and INPUT_FORMATS[name].claims(head)),
                    candidates[0])
    if candidates:
        return candidates[0]
    with open_binary(path, check=False) as handle:
        for raw_line in handle:
            line = raw_line.decode("utf-8", errors="replace").lstrip("\ufeff").strip()
            if not line:
                continue
            for name, input_format in INPUT_FORMATS.items():
                if input_format.sniff is not None and input_format.sniff(line):
                    return name
            return DEFAULT_INPUT_FORMAT
    return DEFAULT_INPUT_FORMAT


def read_documents(paths: Iterable[str | Path], input_format: str = "auto", encoding: str = "utf-8") -> Iterator[Document]:
    """Documents of every input, in order, read lazily (`expand_inputs` says which files a path names)."""
    if input_format != "auto" and input_format not in INPUT_FORMATS:
        raise ValueError(f"input format must be one of {('auto', *INPUT_FORMATS)}, not {input_format!r}")
    for path in expand_inputs(paths):
        yield from _read_input(path, input_format, encoding)


def _read_input(path: str | Path, input_format: str, encoding: str) -> Iterator[Document]:
    """The documents of one input; whatever stops its reading (`READ_ERRORS`: a damaged gzip stream, which is
    checked before any document, an I/O error) is one error record of this input, after the documents read
    before it, and the next input is read as usual."""
    name, count = input_name(path), 0
    try:
        with PipeCopy(path) if is_pipe(path) else nullcontext(path) as source:
            for document in _documents_of(source, input_format, encoding):
                count += 1
                yield document
    except READ_ERRORS as error:
        rest = (f"{count} document(s) read before it, the rest of the file is not" if count
                else "none of its documents is annotated")
        yield Document(Path(name).name, "", source=name, error=f"{name}: {read_failure(error)}; {rest}")


def _documents_of(path: str | Path, input_format: str, encoding: str) -> Iterator[Document]:
    reason = unreadable_reason(path, encoding)
    if reason:  # a PNG or a .bz2 file annotated as text would give entities from noise
        name = input_name(path)
        yield Document(Path(name).name, "", source=name, error=f"{name}: {reason}; not annotated")
        return
    file_format = detect_input_format(path) if input_format == "auto" else input_format
    if not INPUT_FORMATS[file_format].uses_encoding and codecs.lookup(encoding).name != "utf-8":
        logger.warning("%s: %s declares its own encoding; --encoding %s is not used for it", input_name(path),
                       file_format, encoding)
    yield from INPUT_FORMATS[file_format].read(path, encoding)


def read_text_file(path: str | Path, encoding: str = "utf-8") -> Document:
    """A plain text file as one document, named after the file (without its suffix); a UTF-8 byte-order
    mark is dropped, everything else is kept as is (offsets index the decoded text)."""
    with open_binary(path) as handle:
        data = handle.read()
    text = decode(data, encoding, input_name(path), whole_file=True)
    if text.startswith("\ufeff"):
        text = text[1:]
    document_id = "stdin" if str(path) == STDIO else Path(path).stem
    if str(path) != STDIO and Path(path).suffix.lower() == ".gz":
        document_id = Path(document_id).stem  # notes.txt.gz is document "notes"
    return Document(document_id, text, source=input_name(path))


def read_jsonl(path: str | Path, encoding: str = "utf-8") -> Iterator[Document]:
    """One document per line, `{"id": ..., "text": ...}` (the id defaults to "<file>:<line>"); blank lines
    are skipped, a bad line becomes a document with an error."""
    name = input_name(path)
    with open_binary(path) as handle:
        for line_number, line in text_lines(handle, encoding, name):
            where = f"{name}:{line_number}"
            if line_number == 1:
                line = line.lstrip("\ufeff")
            if not line.strip():
                continue
            fallback_id = f"{Path(name).name}:{line_number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                yield Document(fallback_id, "", source=where, error=f"{where}: not a JSON object ({error.msg})")
                continue
            if not isinstance(record, dict):
                yield Document(fallback_id, "", source=where, error=f"{where}: expected a JSON object {{\"id\", \"text\"}}")
                continue
            document_id = record.get("id")
            document_id = fallback_id if document_id is None else str(document_id)
            if _LONE_SURROGATE.search(document_id):
                yield Document(fallback_id, "", source=where,
                               error=f"{where}: the id holds a lone surrogate (an unpaired \\ud800-\\udfff escape)")
                continue
            text = record.get("text")
            if not isinstance(text, str):
                yield Document(document_id, "", source=where,
                               error=f"{where}: document {document_id!r} has no \"text\" string")
                continue
            surrogate = _LONE_SURROGATE.search(text)
            if surrogate:
                yield Document(document_id, "", source=where,
                               error=f"{where}: the text of document {document_id!r} holds a lone surrogate (an "
                                     f"unpaired \\ud800-\\udfff escape) at character {surrogate.start()}")
                continue
            yield Document(document_id, text, source=where)


# --------------------------------------------------------------------------------------------
# Writing


class DocumentWriter:
    """Writes annotated documents one at a time to a text stream; `close()` writes any closing part
    (and closes the stream when the writer opened it)."""

    def __init__(self, stream: IO[str]):
        self.stream = stream
        self.count = 0

    def write(self, annotated: AnnotatedDocument) -> None:
        self._write(annotated)
        self.count += 1

    def _write(self, annotated: AnnotatedDocument) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.stream.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class JsonlWriter(DocumentWriter):
    """`{"id", "entities": [{"start", "end", "text", "type", "score"}]}` per line (plus "text" when asked,
    and "error" for a document that could not be read or annotated)."""

    def __init__(self, stream: IO[str], include_text: bool = False):
        super().__init__(stream)
        self.include_text = include_text

    def _write(self, annotated):
        record = {"id": annotated.document_id}
        if self.include_text:
            record["text"] = annotated.document.text
        record["entities"] = [entity.to_dict() for entity in annotated.entities]
        if annotated.error:
            record["error"] = annotated.error
        self.stream.write(json.dumps(record, ensure_ascii=False) + "\n")


# Characters that would break a PubTator line; each becomes one space, so offsets do not move.
_PUBTATOR_UNSAFE = re.compile(r"[\t\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


def pubtator_safe(text: str) -> str:
    return _PUBTATOR_UNSAFE.sub(" ", text)


class PubTatorWriter(DocumentWriter):
    """PubTator: title and abstract lines, then one `ID<TAB>start<TAB>end<TAB>mention<TAB>type` line per
    entity, a blank line after each document. A document read from PubTator gets its title and abstract
    back unchanged; any other document is written whole as its title (with an empty abstract), which
    keeps its offsets. Tabs and line breaks in a text become spaces (same offsets). Documents with an
    error are left out.

    An id the format cannot hold as it is (tabs, line breaks, "|", empty) is changed so that it can, and never
    into an id that another document of the output has: a changed id that is taken gets "_2", "_3", ... The
    changes are logged (a count and the first) when the writer closes."""

    def __init__(self, stream: IO[str]):
        super().__init__(stream)
        # Digests, not the ids (a few bytes a document, vaner/digests.py): every id written, and the changed ones
        # with the document id each was written for.
        self.written = DigestSet()
        self.changed_ids = DigestSet()
        self.changed_pairs = DigestSet()
        self.changes = 0
        self.first_change: tuple[str, str] | None = None

    def _taken(self, written: str, document_id: str) -> bool:
        """Whether `written` is already the id of a document whose own id is not `document_id`."""
        if written in self.changed_ids:
            return (written, document_id) not in self.changed_pairs
        return written != document_id and written in self.written

    def _pubtator_id(self, document_id: str) -> str:
        base = pubtator_safe(document_id).replace("|", "_").strip() or f"document_{self.count + 1}"
        written, number = base, 1
        while self._taken(written, document_id):
            number += 1
            written = f"{base}_{number}"
        if written != document_id:
            self.changes += 1
            self.first_change = self.first_change or (document_id, written)
            self.changed_ids.add(written)
            self.changed_pairs.add((written, document_id))
        self.written.add(written)
        return written

    def _write(self, annotated):
        document = annotated.document
        if annotated.error:
            return
        passages = document.passage_list()
        if (len(passages) == 2 and passages[0].kind == "title" and passages[0].start == 0
                and passages[1].start == passages[0].end + 1 and passages[1].end == len(document.text)):
            title, abstract = document.text[: passages[0].end], document.text[passages[1].start :]
        else:
            title, abstract = document.text, ""
        document_id = self._pubtator_id(document.document_id)
        lines = [f"{document_id}|t|{pubtator_safe(title)}\n"]
        if not (len(passages) == 1 and passages[0].kind == "title"):
            lines.append(f"{document_id}|a|{pubtator_safe(abstract)}\n")
        for entity in annotated.entities:
            lines.append(f"{document_id}\t{entity.start}\t{entity.end}\t{pubtator_safe(entity.text)}\t{entity.entity_type}\n")
        lines.append("\n")
        self.stream.write("".join(lines))

    def close(self):
        if self.changes:
            original, written = self.first_change
            logger.warning("PubTator output: %d document ids changed to fit the format (tabs, line breaks and | "
                           "become spaces and _, an empty id a number, a taken id gets _2, _3, ...); first: %r -> %r",
                           self.changes, original, written)
        super().close()


# Background colours of the entity types, then a palette for any other type.
TYPE_COLOURS = {"Disease": "#fca5a5", "Chemical": "#93c5fd", "Gene": "#86efac", "Species": "#fcd34d"}
EXTRA_COLOURS = ("#c4b5fd", "#f9a8d4", "#5eead4", "#fdba74", "#d9f99d", "#a5b4fc", "#fda4af", "#bef264")

_HTML_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 60em; line-height: 1.9; color: #1f2937; }
header { border-bottom: 1px solid #d1d5db; margin-bottom: 1em; }
h1 { font-size: 1.4em; }
h2 { font-size: 1.05em; margin: 1.5em 0 0.3em; color: #374151; }
.legend { display: flex; flex-wrap: wrap; gap: 0.6em; margin: 0.5em 0 1em; }
.legend span { padding: 0.1em 0.6em; border-radius: 0.3em; font-size: 0.9em; }
.passage { white-space: pre-wrap; margin: 0.3em 0; }
.passage.title { font-weight: 600; }
mark { padding: 0.1em 0.15em; border-radius: 0.25em; color: inherit; }
mark .label { font-size: 0.65em; font-weight: 700; text-transform: uppercase; margin-left: 0.3em; vertical-align: middle; opacity: 0.75; }
.error { color: #b91c1c; font-style: italic; }
.empty { color: #6b7280; font-style: italic; }
"""


class HtmlWriter(DocumentWriter):
    """An HTML page (well-formed XHTML syntax) with a legend of the entity types and each document's text
    with its entities highlighted in their type's colour, the type after each entity and type and score
    in the tooltip. Characters covered by entities of several types are striped in their colours."""

    def __init__(self, stream: IO[str], entity_types: Sequence[str] = (), title: str = "VANER annotations"):
        super().__init__(stream)
        self.colours: dict[str, str] = {}
        for entity_type in entity_types:
            self._colour(entity_type)
        legend = "".join(
            f'<span style="background:{colour}">{_escape(entity_type)}</span>' for entity_type, colour in self.colours.items()
        )
        self.stream.write(
            "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n"
            f"<title>{_escape(title)}</title>\n<style>{_HTML_STYLE}</style>\n</head>\n<body>\n<header>\n"
            f"<h1>{_escape(title)}</h1>\n<div class=\"legend\">{legend}</div>\n</header>\n"
        )

    def _colour(self, entity_type: str) -> str:
        if entity_type not in self.colours:
            extra = sum(1 for known in self.colours if known not in TYPE_COLOURS)
            self.colours[entity_type] = TYPE_COLOURS.get(entity_type, EXTRA_COLOURS[extra % len(EXTRA_COLOURS)])
        return self.colours[entity_type]

    def _write(self, annotated):
        document = annotated.document
        parts = [f'<article id="document-{self.count}">\n<h2>{_escape(document.document_id)}</h2>\n']
        if annotated.error:
            parts.append(f'<p class="error">{_escape(annotated.error)}</p>\n')
        elif not document.text.strip():
            parts.append('<p class="empty">(empty document)</p>\n')
        else:
            for passage in document.passage_list():
                entities = [e for e in annotated.entities if passage.start <= e.start < passage.end]
                parts.append(f'<p class="passage {_escape(passage.kind)}">')
                parts.append(self._highlight(document.text, passage.start, passage.end, entities))
                parts.append("</p>\n")
        parts.append("</article>\n")
        self.stream.write("".join(parts))

    def _highlight(self, text: str, start: int, end: int, entities: list[Entity]) -> str:
        """`text[start:end]` escaped, cut at every entity edge; each piece covered by entities is a <mark>."""
        edges = sorted({start, end, *(e.start for e in entities), *(min(e.end, end) for e in entities)})
        starting: dict[int, list[Entity]] = {}
        for entity in entities:
            starting.setdefault(entity.start, []).append(entity)
        active: list[Entity] = []
        pieces = []
        for left, right in zip(edges, edges[1:]):
            active = [e for e in active if e.end > left] + starting.get(left, [])
            piece = _escape(text[left:right])
            if not active:
                pieces.append(piece)
                continue
            colours = [self._colour(e.entity_type) for e in active]
            if len(set(colours)) == 1:
                background = colours[0]
            else:
                stripes = ", ".join(f"{c} {i * 6}px {(i + 1) * 6}px" for i, c in enumerate(dict.fromkeys(colours)))
                background = f"repeating-linear-gradient(135deg, {stripes})"
            tooltip = "; ".join(f"{e.entity_type} {e.score:.2f}: {e.text}" for e in active)
            labels = "".join(f'<span class="label">{_escape(e.entity_type)}</span>' for e in active if e.end <= right)
            pieces.append(f'<mark style="background:{background}" title="{_escape(tooltip)}">{piece}{labels}</mark>')
        return "".join(pieces)

    def close(self):
        self.stream.write("</body>\n</html>\n")
        super().close()


def _escape(text: str) -> str:
    return html.escape(XML_INVALID.sub("\ufffd", text), quote=True)  # the page stays well-formed XHTML


def check_include_text(output_format: str, include_text: bool) -> None:
    """--include_text adds the text to JSONL records only; the other formats carry it already, so asking for it
    there is refused rather than ignored (single-process and --ray runs alike)."""
    if include_text and output_format != "jsonl":
        raise ValueError(f"--include_text adds the text to JSONL records; {output_format} output carries each "
                         "document's text already")


def output_format_for(path: str | Path, output_format: str | None = None) -> str:
    """The output format asked for, else the registered one of the file's suffix (.jsonl, .pubtator, .json,
    .xml, .html), else JSONL."""
    if output_format and output_format != "auto":
        if output_format not in OUTPUT_FORMATS:
            raise ValueError(f"output format must be one of {tuple(OUTPUT_FORMATS)}, not {output_format!r}")
        return output_format
    if str(path) == STDIO:
        return DEFAULT_OUTPUT_FORMAT
    suffix = Path(path).suffix.lower()
    return next((name for name, fmt in OUTPUT_FORMATS.items() if suffix in fmt.suffixes), DEFAULT_OUTPUT_FORMAT)


def make_writer(output_format: str, stream: IO[str], entity_types: Sequence[str] = (), **options) -> DocumentWriter:
    """A writer of `output_format` on an open text stream."""
    if output_format not in OUTPUT_FORMATS:
        raise ValueError(f"output format must be one of {tuple(OUTPUT_FORMATS)}, not {output_format!r}")
    return OUTPUT_FORMATS[output_format].writer(stream, entity_types, **options)


def check_output_path(path: str | Path) -> None:
    """ValueError, before any work, for an output that cannot be written: a folder (or a path ending with a
    slash), a missing folder, a file or folder without write permission, a folder where no file can be created
    (tried: os.access lets root through on /proc or a read-only mount). A symlink is judged by what it points to."""
    if str(path) == STDIO:
        return
    try:
        target = Path(output_target(path))
    except IsADirectoryError as error:
        raise ValueError(error.strerror) from None
    if not target.parent.is_dir():
        raise ValueError(f"the output {path}: its folder {target.parent} does not exist")
    if target.exists():
        if not os.access(target, os.W_OK):
            raise ValueError(f"the output {path}: no permission to write to it")
        if writes_in_place(str(target)):
            return
    if not os.access(target.parent, os.W_OK | os.X_OK):
        raise ValueError(f"the output {path}: no permission to create files in {target.parent}")
    try:
        check_output_folder(path)
    except OutputError as error:
        raise ValueError(f"the output {path}: no file can be created in {target.parent} "
                         f"({error.__cause__.strerror})") from None


def write_documents(annotated: Iterable[AnnotatedDocument], path: str | Path, output_format: str | None = None,
                    entity_types: Sequence[str] = (), **options) -> int:
    """Write annotated documents to a file ("-": stdout) as they come; returns how many were written.

    A regular file is written by files_vaner's atomic writer: under a private temporary name beside it, renamed
    when complete, so an interrupted run leaves any earlier file of that name whole (and no cut-off file); the
    file it replaces keeps its mode and, where permitted, its owner. A symlink is followed (the file it points to
    is replaced, the link stays); a device or a pipe (/dev/null, /dev/stdout) is written in place. A failure to
    write raises `OutputError` naming the output; errors of reading the documents pass through as they are."""
    output_format = output_format_for(path, output_format)
    with contextlib.nullcontext(sys.stdout) if str(path) == STDIO else open_output(path) as stream:
        with output_errors(path):
            writer = make_writer(output_format, stream, entity_types, **options)
        for document in annotated:  # reading and annotating happen here, outside output_errors
            with output_errors(path):
                writer.write(document)
        with output_errors(path):
            writer.close()
    return writer.count


# --------------------------------------------------------------------------------------------
# The built-in formats (registration order is the order auto detection tries them)


register_input_format(InputFormat(
    "jsonl", read_jsonl, 'one {"id": ..., "text": ...} object per line', (".jsonl", ".ndjson"),
    sniff=lambda line: line.startswith("{"),
))
register_input_format(InputFormat(
    "pubtator", read_pubtator_documents, "ID|t|title, ID|a|abstract blocks (existing mentions are ignored)",
    (".pubtator",), sniff=lambda line: bool(TEXT_LINE.match(line)),
))
register_input_format(InputFormat(
    "text", lambda path, encoding: [read_text_file(path, encoding)], "a file is one document (id = file name "
    "without suffix)",
))
register_output_format(OutputFormat(
    "jsonl", lambda stream, entity_types, **options: JsonlWriter(stream, options.get("include_text", False)),
    '{"id", "entities": [{"start", "end", "text", "type", "score"}]} per line', (".jsonl", ".ndjson"),
))
register_output_format(OutputFormat(
    "pubtator", lambda stream, entity_types, **options: PubTatorWriter(stream),
    "title/abstract lines and ID<TAB>start<TAB>end<TAB>mention<TAB>type lines", (".pubtator",),
))
register_output_format(OutputFormat(
    "html", lambda stream, entity_types, **options: HtmlWriter(stream, entity_types),
    "a page with coloured entities and a legend", (".html", ".htm"),
))
# Modules that register further formats: a new format is one module, named here.
FORMAT_MODULES: tuple[str, ...] = ("vaner.bioc_json", "vaner.bioc_xml", "vaner.medline", "vaner.brat")
for _module in FORMAT_MODULES:
    importlib.import_module(_module)


__all__ = [
    "INPUT_FORMATS", "OUTPUT_FORMATS", "InputFormat", "OutputFormat", "register_input_format",
    "register_output_format", "DocumentWriter", "HtmlWriter", "JsonlWriter", "PubTatorWriter", "check_output_is_not_an_input",
    "check_output_path",
    "detect_input_format",
    "expand_inputs", "make_writer", "output_format_for", "read_documents", "read_jsonl", "read_pubtator_documents",
    "read_text_file", "write_documents",
]
