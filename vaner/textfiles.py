"""Reading text files, in the two modes of the project: strict for corpora and knowledge bases (bytes that are not
UTF-8 raise `CorpusFormatError` naming file and line), tolerant for documents to annotate (undecodable bytes
become U+FFFD with a warning; "-" is standard input).

Document inputs have one policy, here: which paths are inputs (`expand_inputs`: files, folders, globs, standard
input, named pipes), how they are opened (`open_binary`: gzip decompressed and checked whole before any of it is
used; a pipe copied once, `PipeCopy`) and what a failure to read them may raise (`READ_ERRORS`), which
vaner.formats.read_documents turns into an error record of that input alone."""

from __future__ import annotations

import codecs
import glob
import gzip
import logging
import os
import shutil
import stat
import sys
import tempfile
import zlib
from collections.abc import Iterable, Iterator
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
# Tolerant reading: the one opener of document inputs


GZIP_MAGIC = b"\x1f\x8b"
# Other compressed and archive formats, by their first bytes: refused with their name, never read as text.
COMPRESSED_MAGIC = {b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"PK\x03\x04": "zip", b"(\xb5/\xfd": "zstd",
                    b"7z\xbc\xaf\x27\x1c": "7z"}
UNICODE_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")
SNIFF_BYTES = 8192
CHUNK_BYTES = 1 << 20
# What reading a document input may raise, whatever its format: unreadable (OSError, gzip.BadGzipFile among them),
# a gzip stream cut short (EOFError) or broken (zlib.error).
READ_ERRORS = (OSError, EOFError, zlib.error)


class DamagedGzip(OSError):
    """A gzip input whose stream does not check out (CRC, length, cut short, broken deflate data)."""


def open_binary(path: str | Path | PipeCopy, check: bool = True) -> IO[bytes]:
    """A binary stream of a document input from its start ("-": standard input): the opener of every reader.
    gzip data (by its first bytes, whatever the name) is decompressed; with `check` its whole stream is checked
    first, since a flipped bit can decode into wrong text that only the CRC at the end reveals: a damaged one
    raises `DamagedGzip` before any of it is used. `check=False` is for a look at the head."""
    if isinstance(path, PipeCopy):
        return _open_file(path.copy, check)
    if str(path) == STDIO:
        stream = sys.stdin.buffer
        if hasattr(stream, "peek") and stream.peek(2)[:2] == GZIP_MAGIC:
            copy = tempfile.SpooledTemporaryFile(max_size=CHUNK_BYTES * 16)
            _read_gzip(gzip.GzipFile(fileobj=stream, mode="rb"), copy)  # read once: checked as it is copied
            copy.seek(0)
            return copy
        return _NoClose(stream)
    return _open_file(path, check)


def _open_file(path: str | Path, check: bool) -> IO[bytes]:
    with open(path, "rb") as handle:
        compressed = handle.read(2) == GZIP_MAGIC
    if not compressed:
        return open(path, "rb")
    if check:
        with gzip.open(path, "rb") as stream:
            _read_gzip(stream)
    return gzip.open(path, "rb")


def _read_gzip(stream: IO[bytes], copy: IO[bytes] | None = None) -> None:
    """Read a gzip stream to its end (into `copy`), which checks its CRC and length; `DamagedGzip` if they fail."""
    while True:
        try:
            chunk = stream.read(CHUNK_BYTES)
        except READ_ERRORS as error:
            raise DamagedGzip(f"damaged gzip data ({error or type(error).__name__})") from error
        if not chunk:
            return
        if copy is not None:
            copy.write(chunk)


def is_pipe(path: str | Path) -> bool:
    """A named pipe: a FIFO, or the /dev/fd/N that `--input <(zcat docs.jsonl.gz)` names."""
    try:
        return str(path) != STDIO and stat.S_ISFIFO(os.stat(path).st_mode)
    except OSError:
        return False


class PipeCopy(os.PathLike):
    """A named pipe's bytes, copied once into a private temporary file, which `open_binary` then opens as often as
    a reader needs (its head decides its format and its gzip is checked, as a file's); `str` and `os.fspath` give
    the pipe's name, for ids and messages. A context manager: leaving it removes the copy."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        handle, self.copy = tempfile.mkstemp(prefix="vaner-pipe-")
        try:
            with open(self.path, "rb") as pipe, os.fdopen(handle, "wb") as copy:
                shutil.copyfileobj(pipe, copy, CHUNK_BYTES)
        except BaseException:
            os.unlink(self.copy)
            raise

    def __fspath__(self) -> str:
        return self.path

    def __str__(self) -> str:
        return self.path

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        os.unlink(self.copy)
        return False


def head_bytes(path: str | Path, size: int = SNIFF_BYTES) -> bytes:
    """The first `size` bytes of a document file, decompressed (a file, not standard input); `DamagedGzip` where
    they are gzip data that does not decode."""
    with open_binary(path, check=False) as handle:
        if not isinstance(handle, gzip.GzipFile):
            return handle.read(size)
        try:
            return handle.read(size)
        except READ_ERRORS as error:
            raise DamagedGzip(f"damaged gzip data ({error or type(error).__name__})") from error


def unreadable_reason(path: str | Path, encoding: str) -> str | None:
    """Why a document file is not text to annotate: compressed in a format other than gzip, or binary (NUL
    bytes in its first 8 KB, while `encoding` is no UTF-16/32 and no byte-order mark says so); None for text.
    What cannot be read at all raises (`READ_ERRORS`)."""
    if str(path) == STDIO:
        return None
    head = head_bytes(path)
    for magic, name in COMPRESSED_MAGIC.items():
        if head.startswith(magic):
            return f"{name}-compressed; only gzip (.gz) inputs are decompressed: decompress it first"
    wide = encoding.lower().replace("-", "").replace("_", "").startswith(("utf16", "utf32"))
    if b"\x00" in head and not wide and not head.startswith(UNICODE_BOMS):
        return "a binary file (it holds NUL bytes), not text"
    return None


def read_failure(error: BaseException) -> str:
    """What an error record says of a `READ_ERRORS` error."""
    return str(error) if isinstance(error, DamagedGzip) else f"not readable ({error or type(error).__name__})"


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



def text_lines(handle: IO[bytes], encoding: str, name: str) -> Iterator[tuple[int, str]]:
    """(line number, line with its line break) of a document stream in `encoding`. Where the line break is the
    byte b"\\n" (UTF-8, Latin-1, ...) each line is decoded apart, a warning naming each line with bytes it cannot
    decode; any other encoding (UTF-16, UTF-32, where a b"\\n" byte can be half of a character) is decoded before
    it is split into lines."""
    if "\n".encode(encoding) == NEWLINE:
        for number, raw in enumerate(handle, start=1):
            yield number, decode(raw, encoding, f"{name}:{number}")
    else:
        yield from enumerate(_decoded_lines(handle, encoding, name), start=1)


def _decoded_lines(handle: IO[bytes], encoding: str, name: str) -> Iterator[str]:
    """The lines of a stream decoded a chunk at a time; undecodable bytes become U+FFFD, and one warning names
    the line of the first."""
    decoder = codecs.getincrementaldecoder(encoding)()
    pending, lines, replacing = "", 0, False
    while True:
        data = handle.read(CHUNK_BYTES)
        state = decoder.getstate()
        try:
            text = pending + decoder.decode(data, final=not data)
        except UnicodeDecodeError:
            decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
            decoder.setstate(state)
            text = pending + decoder.decode(data, final=not data)
            if not replacing:
                line = lines + text.count("\n", 0, max(text.find("\ufffd"), 0)) + 1
                logger.warning("%s: bytes that are not %s (first at line %d) were replaced by U+FFFD", name, encoding,
                               line)
            replacing = True
        *complete, pending = text.split("\n")
        lines += len(complete)
        yield from (line + "\n" for line in complete)
        if not data:
            break
    if pending:
        yield pending


def expand_inputs(paths: Iterable[str | Path], pipes: bool = True) -> list[str | Path]:
    """The inputs to read: each file as given, a folder's files (sorted), a glob's matching files (sorted), "-"
    for standard input and named pipes (`<(zcat ...)`) where `pipes` allows them (--ray shards are files only).
    A folder is one level, as a shard folder of --ray is; warnings name what a folder holds that is not read."""
    files: list[str | Path] = []
    for given in paths:
        path = Path(given)
        if str(given) == STDIO or is_pipe(path):
            if not pipes:
                raise ValueError(f"{input_name(given)}: --ray reads shards from files, not from standard input or "
                                 "a pipe")
            files.append(STDIO if str(given) == STDIO else path)
        elif path.is_dir():
            files.extend(_folder_files(path))
        elif path.is_file():
            files.append(path)
        elif glob.has_magic(str(given)):
            matches = sorted(Path(match) for match in glob.glob(str(given), recursive=True) if Path(match).is_file())
            if not matches:
                raise FileNotFoundError(f"{given}: no file matches")
            files.extend(matches)
        else:
            raise FileNotFoundError(f"{path}: no such file or folder")
    return files


# What a folder holds that is not read, and why.
_NOT_READ = {"subfolder": "a folder's own files are the inputs; name a subfolder as an input to read it",
             "hidden file": "name one as an input to read it",
             "broken link": "they point to nothing",
             "named pipe": "a folder's pipes are not waited for; name one as an input to read it",
             "other entry": "sockets and devices are no files"}


def _folder_files(folder: Path) -> list[Path]:
    """A folder's visible files, sorted; a warning per kind of entry that is not read, naming them."""
    files, skipped = [], {kind: [] for kind in _NOT_READ}
    for child in sorted(folder.iterdir()):
        if child.is_dir():
            skipped["subfolder"].append(child.name)
        elif child.name.startswith("."):
            skipped["hidden file"].append(child.name)
        elif child.is_file():
            files.append(child)
        elif not child.exists():
            skipped["broken link"].append(child.name)
        else:
            skipped["named pipe" if is_pipe(child) else "other entry"].append(child.name)
    for kind, names in skipped.items():
        if names:
            logger.warning("%s: %d %s%s not read (%s): %s", folder, len(names), kind, "s" * (len(names) > 1),
                           ", ".join(names[:5]) + (", ..." if len(names) > 5 else ""), _NOT_READ[kind])
    return files
