"""The BioC XML format ("bioc_xml", `.xml`), in and out, streamed document by document through the `bioc`
package (vaner.bioc_format): `BioCXMLDocumentReader` in, `BioCXMLDocumentWriter` out.

Reading splits the byte stream at the collection's `<document>` elements first (`_DocumentSplitter`, a linear
scan in flat memory: one document at a time) and parses the documents apart from each other (in groups, one by
one where a group fails), so that an XML error costs its own document only: it becomes a document with an
`error` naming the file, the document's position and the line where it starts, in its place in the stream;
every other document is read as usual.
"""

from __future__ import annotations

import codecs
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from bioc.biocxml.decoder import BioCXMLDocumentReader
from bioc.biocxml.encoder import BioCXMLDocumentWriter
from lxml import etree

from .bioc_format import collection_info, to_bioc, to_document
from .documents import Document
from .formats import (
    INPUT_FORMATS,
    DocumentWriter,
    InputFormat,
    OutputFormat,
    register_input_format,
    register_output_format,
)
from .textfiles import READ_ERRORS, input_name, open_binary
from .xmlparsing import parse, pull_parser

CHUNK_BYTES = 1 << 20
# Documents parsed together while none is broken (one parse per document is four times as slow).
BATCH_DOCUMENTS = 256
BATCH_BYTES = 1 << 20
# Bytes before the first <document> beyond which a file is not taken for a BioC collection.
HEADER_LIMIT = 4 << 20
# A token is only taken this far from the end of what has been read (a chunk may cut "<document />").
_MARGIN = 64
_TOKEN = re.compile(rb"<!--|<!\[CDATA\[|<document\s*/>|<document[\s>]|</document\s*>|</collection\s*>")
_SKIP_TO = {b"<!--": b"-->", b"<![CDATA[": b"]]>"}
_COLLECTION_START = re.compile(rb"<!--.*?-->|<collection(?:\s[^>]*)?>", re.S)
_DECLARED_ENCODING = re.compile(rb"""^(\s*<\?xml[^>]*?encoding\s*=\s*)(["'])[^"']*\2""")
_DOCUMENT_ID = re.compile(rb"<id>([^<]{1,200})</id>")
_LXML_LINE = re.compile(r"\bline (\d+)(, column (\d+))?")
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_XML_DECLARATION = re.compile(rb"^(?:\xef\xbb\xbf)?\s*<\?xml\s[^>]*\?>")


@dataclass
class _Piece:
    """What the splitter cuts: the header (the bytes before the first document), a document, or the end."""

    kind: str  # "header", "document" or "end"
    data: bytes = b""
    line: int = 1  # where it starts in the file: line (1-based) and column (0-based, in bytes)
    column: int = 0
    unterminated: str | None = None  # a document: what came before its </document>
    closed: bool = False  # the end: a </collection> followed the last document
    documents_follow: bool = False  # the header: a <document> ends it
    capped: bool = False  # the header: no <document> in its first HEADER_LIMIT bytes


class _DocumentSplitter:
    """The `<document>` elements of a BioC XML byte stream, cut out one at a time in flat memory (the current
    document and one chunk), by a linear scan for `<document>`, `<document/>`, `</document>` and
    `</collection>`.

    The scan assumes what BioC files are: an ASCII-compatible encoding (UTF-8, ISO-8859-x; UTF-16 with a
    byte-order mark is transcoded to UTF-8 first), documents that do not nest and a `<document>` tag without
    attributes. Comments and CDATA sections are skipped, so a `</document>` inside them does not count; a
    processing instruction holding `<document>` would. A document without `</document>` ends where the next
    `<document>` or `</collection>` starts (or at the end of the file) and is reported as such.
    """

    def __init__(self, handle: IO[bytes]):
        read = getattr(handle, "read1", handle.read)
        first = read(CHUNK_BYTES)
        self.transcoded = first.startswith(_UTF16_BOMS)
        self.read: Callable[[int], bytes] = _utf8_from_utf16(read, first) if self.transcoded else read
        self.buffer = bytearray() if self.transcoded else bytearray(first)
        self.eof = not first
        self.limit: int | None = HEADER_LIMIT
        self.capped = False  # the header passed HEADER_LIMIT
        self.line, self.column = 1, 0  # of buffer[0]

    def _more(self) -> bool:
        if self.eof or self.capped:
            return False
        if self.limit is not None and len(self.buffer) > self.limit:
            self.capped = True
            return False
        chunk = self.read(CHUNK_BYTES)
        if not chunk:
            self.eof = True
            return False
        self.buffer += chunk
        return True

    def _drop(self, count: int) -> None:
        """Forget the first `count` bytes, keeping the line and column of what follows."""
        newlines = self.buffer.count(b"\n", 0, count)
        if newlines:
            self.line += newlines
            self.column = count - self.buffer.rfind(b"\n", 0, count) - 1
        else:
            self.column += count
        del self.buffer[:count]

    def _token(self, scan: int, trim: bool = False) -> re.Match | None:
        """The next token at or after `scan` outside comments and CDATA sections (None at the end of the
        input); `trim` forgets what was scanned before reading more."""
        while True:
            match = _TOKEN.search(self.buffer, scan)
            done = self.eof or self.capped
            if match and (done or match.start() + _MARGIN <= len(self.buffer)):
                skip_to = _SKIP_TO.get(match.group())
                if skip_to is None:
                    return match
                scan = match.end()
                while (end := self.buffer.find(skip_to, scan)) < 0:
                    scan = max(scan, len(self.buffer) - len(skip_to) + 1)
                    if not self._more():
                        return None
                scan = end + len(skip_to)
                continue
            scan = match.start() if match else max(scan, len(self.buffer) - _MARGIN)
            if trim:
                self._drop(scan)
                scan = 0
            if not self._more() and not match:
                return None

    def pieces(self) -> Iterator[_Piece]:
        """The header, then each document, then the end."""
        match = self._token(0)
        while match is not None and not match.group().startswith(b"<document"):
            match = self._token(match.end())
        header_end = match.start() if match else len(self.buffer)
        if self.transcoded:
            header = _DECLARED_ENCODING.sub(rb"\1\2utf-8\2", bytes(self.buffer[:header_end]), count=1)
        else:
            header = bytes(self.buffer[:header_end])
        yield _Piece("header", header, documents_follow=match is not None, capped=self.capped)
        if match is None:
            return
        self.limit = None
        self._drop(header_end)
        while True:  # a document starts at buffer[0]
            closed = False
            line, column = self.line, self.column
            start = _TOKEN.match(self.buffer)
            unterminated = None
            if start.group().endswith(b"/>"):
                end = start.end()
                following = None
            else:
                following = self._token(start.end())  # <document>, <document/>, </document> or </collection>
                if following is None:
                    end, unterminated = len(self.buffer), "the end of the file"
                elif following.group().startswith(b"</document"):
                    end = following.end()
                    following = None
                else:
                    end = following.start()
                    unterminated = ("the next <document>" if following.group().startswith(b"<document")
                                    else "</collection>")
            yield _Piece("document", bytes(self.buffer[:end]), line, column, unterminated)
            self._drop(end)
            if following is None and unterminated:
                return  # the document's error says that the file ends there
            scan = 0
            if following is not None and following.group().startswith(b"<document"):
                continue
            # Between documents: find the next one, note </collection>.
            while True:
                token = self._token(scan, trim=True)
                if token is None:
                    yield _Piece("end", closed=closed)
                    return
                if token.group().startswith(b"<document"):
                    self._drop(token.start())
                    break
                closed = closed or token.group().startswith(b"</collection")
                scan = token.end()


def _utf8_from_utf16(read: Callable[[int], bytes], first: bytes) -> Callable[[int], bytes]:
    """A `read` giving UTF-8 for a UTF-16 stream (byte-order mark in `first`, its first bytes)."""
    decoder = codecs.getincrementaldecoder("utf-16")(errors="replace")
    pending = [first]

    def read_utf8(size: int) -> bytes:
        while True:
            data = pending.pop() if pending else read(size)
            text = decoder.decode(data, final=not data)
            if text or not data:
                return text.encode("utf-8")

    return read_utf8



def read_bioc_xml(path: str | Path) -> Iterator[Document]:
    """Documents of a BioC XML collection, streamed one document at a time (the XML declaration gives the
    encoding; `open_binary` reads standard input for "-" and decompresses gzip).

    Each `<document>` is cut out of the stream (`_DocumentSplitter`) and parsed by `bioc`'s
    `BioCXMLDocumentReader` after the file's prolog and `<collection>` tag, in groups of up to 256 documents
    (1 MiB) and, where a group fails, one by one: a document that does not parse becomes a document with an
    `error` (file, `document N`, the line where it starts, its id where one is seen, the parser's message
    with the file's line numbers) in its place, and the others are read as usual. A header (the bytes before
    the first `<document>`) that is no `<collection>` start is one error document for the file; a file that
    ends without `</collection>` after a document, or that stops being readable (an I/O error), adds one after
    the documents read. A damaged gzip stream raises `DamagedGzip` before any document (vaner.textfiles)."""
    name = input_name(path)
    base = Path(name).name
    number = 0
    with open_binary(path) as handle:  # a damaged gzip stream raises here, before any document is read
        try:
            pieces = _DocumentSplitter(handle).pieces()
            header = next(pieces)
            problem = _header_problem(header)
            if problem:
                yield Document(base, "", source=name, error=f"{name}: not readable as BioC XML ({problem})")
                return
            prefix = _collection_prefix(header.data)
            for group in _groups(pieces):
                if group[0].kind == "end":
                    if not group[0].closed:
                        where = f"{name}:document {number + 1}"
                        yield Document(f"{base}:{number + 1}", "", source=where, error=(
                            f"{name}: not readable as BioC XML (the file ends without </collection> after "
                            f"document {number}: is it cut short?)"))
                    return
                for piece, parsed in zip(group, _parse_group(prefix, group)):
                    number += 1
                    where = f"{name}:document {number}"
                    fallback_id = f"{base}:{number}"
                    if isinstance(parsed, Exception):  # lxml.etree.XMLSyntaxError, an <offset> that is no number, ...
                        yield Document(fallback_id, "", source=where, error=(
                            f"{where} ({_describe(piece)}): not readable as BioC XML "
                            f"({_explain(parsed, prefix, piece)})"))
                    else:
                        yield to_document(parsed, where, fallback_id)
        except READ_ERRORS as error:
            where = f"{name}:document {number + 1}"
            yield Document(f"{base}:{number + 1}", "", source=where, error=f"{where}: not readable ({error})")


class _Unterminated(ValueError):
    pass


def _header_problem(header: _Piece) -> str | None:
    """Why the bytes before the first `<document>` (all of them where there is none) are no BioC collection
    start; None where they are."""
    data = header.data
    if not data.strip():
        return "the file is empty" if not header.documents_follow else "no <collection> before the first <document>"
    tag = _root_tag(data)
    if tag is not None and tag != "collection":
        return f"its root element is <{tag}>, not <collection>{_format_hint(data)}"
    if header.capped:
        return f"no <document> in its first {HEADER_LIMIT >> 20} MiB"
    if tag is None and header.documents_follow:
        return "no <collection> before the first <document>"
    try:
        parse(data + b"</collection>" if header.documents_follow else data)
    except etree.XMLSyntaxError as error:
        where = " before the first <document>" if header.documents_follow else ""
        return f"{'no <collection>' if tag is None else 'its collection header'}{where}: {error.msg}"
    return None


def _root_tag(data: bytes) -> str | None:
    """The name of the first element of `data`, if its start is readable."""
    parser = pull_parser(events=("start",))
    try:
        parser.feed(data)
    except etree.XMLSyntaxError:
        pass
    for _, element in parser.read_events():
        return element.tag
    return None


def _format_hint(head: bytes) -> str:
    """": pass --input_format NAME" where another registered format claims the file's head (PubMed XML whose
    DOCTYPE or comments hid its root from auto detection), else ""."""
    text = head.decode("utf-8", errors="replace")
    claiming = [name for name, input_format in INPUT_FORMATS.items()
                if name != "bioc_xml" and input_format.claims is not None and input_format.claims(text)]
    return f": pass --input_format {claiming[0]}" if claiming else ""


def _collection_prefix(header: bytes) -> bytes:
    """The XML declaration (which names the encoding) and the `<collection>` tag: what each document is parsed
    after, by the bioc library's parser. The DOCTYPE is left out, as that parser would expand the entities it
    defines (the policy of vaner.xmlparsing: none is)."""
    declaration = _XML_DECLARATION.match(header)
    for match in _COLLECTION_START.finditer(header):
        if match.group().startswith(b"<collection"):
            return (declaration.group() if declaration else b"") + b"\n" + match.group()
    return header  # pragma: no cover (the header was checked)


def _groups(pieces: Iterator[_Piece]) -> Iterator[list[_Piece]]:
    """The documents in groups to parse together (up to BATCH_DOCUMENTS documents and BATCH_BYTES bytes, in
    their order); a document without </document> and the end alone."""
    group: list[_Piece] = []
    size = 0
    try:
        for piece in pieces:
            if piece.kind == "document" and not piece.unterminated:
                group.append(piece)
                size += len(piece.data)
                if len(group) < BATCH_DOCUMENTS and size < BATCH_BYTES:
                    continue
                piece = None
            if group:
                yield group
                group, size = [], 0
            if piece is not None:
                yield [piece]
    except READ_ERRORS:  # the documents read before it are documents all the same
        if group:
            yield group
        raise
    if group:
        yield group


def _parse_group(prefix: bytes, group: list[_Piece]) -> list:
    """The `bioc.BioCDocument` of each document of a group, or the exception that its parse raised: the
    group is parsed as one collection (as fast as the library's own streaming), and where that fails each
    document on its own, so that an error costs its own document only and names lines of its own."""
    if len(group) > 1:
        try:
            documents = _parse(prefix, b"\n".join(piece.data for piece in group))
            if len(documents) == len(group):
                return documents
        except Exception:  # one of them is broken: find which, below
            pass
    results = []
    for piece in group:
        try:
            if piece.unterminated:
                raise _Unterminated(f"no </document> before {piece.unterminated}")
            (document,) = _parse(prefix, piece.data)
            results.append(document)
        except Exception as error:
            results.append(error)
    return results


def _parse(prefix: bytes, documents: bytes) -> list:
    """The BioC documents of `<document>` elements, parsed by the library as a collection after `prefix`
    (the file's XML declaration, DOCTYPE and `<collection>` tag); the first starts on a line of its own."""
    return list(BioCXMLDocumentReader(io.BytesIO(prefix + b"\n" + documents + b"\n</collection>\n")))


def _describe(piece: _Piece) -> str:
    """Where a document starts, and its id when its `<id>` element is readable."""
    match = _DOCUMENT_ID.search(piece.data, 0, 4096)
    document_id = f", id {match.group(1).decode('utf-8', 'replace')!r}" if match else ""
    return f"line {piece.line}{document_id}"


def _explain(error: Exception, prefix: bytes, piece: _Piece) -> str:
    """The error of a document, lxml's line numbers turned into the file's."""
    if isinstance(error, _Unterminated):
        return str(error)
    if not isinstance(error, etree.XMLSyntaxError):
        return f"{type(error).__name__}: {error}"
    first = prefix.count(b"\n") + 2  # the document's first line in what lxml parsed

    def file_position(match: re.Match) -> str:
        line = int(match.group(1))
        if line < first:
            return match.group()
        text = f"line {piece.line + line - first}"
        if match.group(2):
            text += f", column {int(match.group(3)) + (piece.column if line == first else 0)}"
        return text

    return _LXML_LINE.sub(file_position, error.msg or str(error))


class _TextSink:
    """A binary write() for lxml that decodes UTF-8 (chunks may cut a character) into a text stream."""

    def __init__(self, stream: IO[str]):
        self.stream = stream
        self.decoder = codecs.getincrementaldecoder("utf-8")()

    def write(self, data: bytes) -> None:
        self.stream.write(self.decoder.decode(bytes(data)))

    def flush(self) -> None:
        self.stream.flush()


class BioCXmlWriter(DocumentWriter):
    """A BioC XML collection, streamed with `bioc`'s document writer: collection infons (model, entity
    types), then one document at a time. Documents with an error are left out."""

    def __init__(self, stream: IO[str], source: str = "VANER", date: str | None = None, infons: dict | None = None):
        super().__init__(stream)
        self.model = (infons or {}).get("model")
        self._writer = BioCXMLDocumentWriter(_TextSink(stream), encoding="utf-8", standalone=True)
        self._writer.write_collection_info(collection_info(source, date, infons))

    def _write(self, annotated):
        if annotated.error:
            return
        self._writer.write_document(to_bioc(annotated, self.model, xml_safe=True))

    def close(self):
        self._writer.close()
        super().close()


register_input_format(InputFormat(
    "bioc_xml", lambda path, encoding: read_bioc_xml(path), "a BioC XML collection, streamed (passages keep their document-level offsets; its "
    "annotations are kept in BioC output; the XML declares its encoding, --encoding is not used)", (".xml",),
    sniff=lambda line: line.startswith("<"), claims=lambda head: "<collection" in head, uses_encoding=False,
))
register_output_format(OutputFormat(
    "bioc_xml", lambda stream, entity_types, **options: BioCXmlWriter(stream, infons=options.get("infons"),
                                                                      date=options.get("date")),
    "a BioC XML collection (our annotations with infons type, score and model)", (".xml",),
))

__all__ = ["BioCXmlWriter", "read_bioc_xml"]
