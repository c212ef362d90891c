"""Reading text files, in the two modes of the project: strict for corpora and knowledge bases (bytes that are not
UTF-8 raise `CorpusFormatError` naming file and line), tolerant for documents to annotate (undecodable bytes
become U+FFFD with a warning; "-" is standard input)."""

from __future__ import annotations

import gzip
import logging
import sys
from pathlib import Path
from typing import IO

logger = logging.getLogger(__name__)

STDIO = "-"


class CorpusFormatError(ValueError):
    """A corpus file that cannot be read; the message names the file and line."""


class Utf8Lines:
    """The lines of a UTF-8 text file, read as `open(path, encoding="utf-8")` reads them; bytes that are not
    UTF-8 (a UTF-16 or binary file) raise `error_class` naming the file and the line."""

    def __init__(self, path: str | Path, error_class: type[ValueError] = CorpusFormatError):
        self.path, self.error_class = Path(path), error_class
        self.handle = self.path.open(encoding="utf-8")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.close()
        return False

    def __iter__(self):
        try:
            yield from self.handle
        except UnicodeDecodeError:
            raise undecodable_file_error(self.path, self.error_class) from None


def undecodable_file_error(path: str | Path, error_class: type[ValueError] = CorpusFormatError) -> ValueError:
    """An error naming the first line of `path` that is not UTF-8, the byte, and a UTF-16 file as such."""
    with Path(path).open("rb") as handle:
        for line_number, raw in enumerate(handle, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as error:
                hint = ""
                if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
                    hint = "; it starts with a UTF-16 byte-order mark: convert it, e.g. iconv -f UTF-16 -t UTF-8"
                return error_class(
                    f"{path}:{line_number}: not UTF-8 text (byte {raw[error.start]:#04x} at column {error.start + 1}"
                    f"{hint})"
                )
    return error_class(f"{path}: not UTF-8 text")



# --------------------------------------------------------------------------------------------
# Tolerant reading


GZIP_MAGIC = b"\x1f\x8b"
# Other compressed and archive formats, by their first bytes: refused with their name, never read as text.
COMPRESSED_MAGIC = {b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"PK\x03\x04": "zip", b"(\xb5/\xfd": "zstd",
                    b"7z\xbc\xaf\x27\x1c": "7z"}
UNICODE_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")
SNIFF_BYTES = 8192


def open_binary(path: str | Path) -> IO[bytes]:
    """A binary stream of a document file ("-": standard input); gzip data (by its first bytes, whatever the
    file's name) is decompressed as it is read, so `.gz` inputs are read transparently."""
    if str(path) == STDIO:
        stream = sys.stdin.buffer
        if hasattr(stream, "peek") and stream.peek(2)[:2] == GZIP_MAGIC:
            return gzip.GzipFile(fileobj=stream, mode="rb")
        return _NoClose(stream)
    with Path(path).open("rb") as handle:
        compressed = handle.read(2) == GZIP_MAGIC
    return gzip.open(path, "rb") if compressed else Path(path).open("rb")


def head_bytes(path: str | Path, size: int = SNIFF_BYTES) -> bytes:
    """The first `size` bytes of a document file, decompressed (a file, not standard input)."""
    with open_binary(path) as handle:
        return handle.read(size)


def unreadable_reason(path: str | Path, encoding: str) -> str | None:
    """Why a document file is not text to annotate: compressed in a format other than gzip, or binary (NUL
    bytes in its first 8 KB, while `encoding` is no UTF-16/32 and no byte-order mark says so); None for text."""
    if str(path) == STDIO:
        return None
    try:
        head = head_bytes(path)
    except (OSError, EOFError) as error:  # a damaged gzip file
        return f"not readable ({error})"
    for magic, name in COMPRESSED_MAGIC.items():
        if head.startswith(magic):
            return f"{name}-compressed; only gzip (.gz) inputs are decompressed: decompress it first"
    wide = encoding.lower().replace("-", "").replace("_", "").startswith(("utf16", "utf32"))
    if b"\x00" in head and not wide and not head.startswith(UNICODE_BOMS):
        return "a binary file (it holds NUL bytes), not text"
    return None


class _NoClose:
    """A stream that a `with` block must not close (stdin, stdout)."""

    def __init__(self, stream):
        self.stream = stream

    def __enter__(self):
        return self.stream

    def __exit__(self, *exc):
        return False

    def __iter__(self):
        return iter(self.stream)


NEWLINE = b"\n"


def decode(data: bytes, encoding: str, where: str, whole_file: bool = False) -> str:
    """Text of `data`; undecodable bytes become U+FFFD with a warning naming the place (and, for a whole
    file, the line), and a UTF-16 file as such."""
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as error:
        text = data.decode(encoding, errors="replace")
        line = f"line {data.count(NEWLINE, 0, error.start) + 1}, " if whole_file else ""
        hint = ""
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            hint = " (the file starts with a UTF-16 byte-order mark: pass --encoding utf-16)"
        logger.warning("%s: bytes that are not %s (first at %sbyte %d) were replaced by U+FFFD%s", where, encoding,
                       line, error.start, hint)
        return text


def input_name(path: str | Path) -> str:
    return "<stdin>" if str(path) == STDIO else str(path)

