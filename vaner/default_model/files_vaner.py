"""Writing a file whole or not at all: the one atomic writer of VANER's outputs (annotated documents, Ray shards
and their manifests, the dequantized-backbone cache of modeling_vaner.py, the knowledge-base embedding cache,
exported model folders). Standard library only, so that the Hub can serve it beside modeling_vaner.py.

A regular file is written under a temporary name beside it and renamed over it when complete, so a reader never
sees half a file and an interrupted run leaves any earlier file of that name whole. The temporary file has an
unpredictable name `.NAME.HOST.PID.RANDOM.tmp` (the host and process let `remove_stale_temporaries` tell a dead
writer's file from a live one's), is created exclusively without following a symlink, and is private (0600)
from its first byte: it holds the whole output (often the input text) before it is complete. It gets the final
mode just before the rename: the replaced file's mode (and owner, where permitted), else the umask's mode for a
new file. It is removed on every exit path (an exception, Ctrl-C, SIGTERM turned into SystemExit). A failure to
write raises `OutputError`, one line naming the output and the reason.
"""

import contextlib
import errno
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

TEMPORARY_SUFFIX = ".tmp"
# A folder being written (`folder_written_atomically`); never removed by `remove_stale_temporaries`: after a
# crash between its two renames it holds the only copy of the earlier folder, as `earlier/`.
STAGING_SUFFIX = ".staging"
# A temporary file of another host (whose process cannot be checked from here) counts as a dead writer's when it
# has not changed for this long: a live writer's file changes as each buffer of output is flushed, and a shard
# (or a huge document) takes minutes, not a day.
STALE_AFTER_SECONDS = 24 * 3600


class OutputError(OSError):
    """A write failure of an output, in one line: `cannot write the output PATH: reason`."""

    def __init__(self, output, error: OSError):
        super().__init__(f"cannot write the output {output}: {error.strerror or error}")
        self.errno, self.output = error.errno, output


@contextlib.contextmanager
def output_errors(output) -> Iterator[None]:
    """Turn an OSError of the block (a write, a flush, an open) into an `OutputError` naming `output`."""
    try:
        yield
    except OutputError:
        raise
    except OSError as error:
        raise OutputError(output, error) from error


def output_target(path) -> str:
    """The file an output path names: a symlink is followed (the file it points to is replaced, the link stays).
    A path that ends with a slash names a folder, never a file to create (IsADirectoryError), as does a folder."""
    target = os.path.realpath(path)
    if os.path.isdir(target):
        raise IsADirectoryError(errno.EISDIR, f"the output {path} is a folder: name a file in it")
    if str(path).endswith(("/", os.sep)):
        raise IsADirectoryError(errno.EISDIR, f"the output {path} ends with a slash, as a folder does: name a file")
    return target


def writes_in_place(target: str) -> bool:
    """A device or a pipe (/dev/null, /dev/stdout, a FIFO) is written in place, never replaced by a plain file."""
    return os.path.exists(target) and not os.path.isfile(target)


@contextlib.contextmanager
def open_output(path, mode: str = "w", encoding: str | None = "utf-8", newline: str | None = "\n") -> Iterator[IO]:
    """The output file `path` opened for writing (`mode` "w" or "wb"): a regular file atomically (see the module
    docstring), a device or pipe in place. Failures of opening, flushing, syncing and renaming raise
    `OutputError`; an exception of the block passes through as it is, and the temporary file is removed."""
    if "b" in mode:
        encoding = newline = None
    target = output_target(path)
    if writes_in_place(target):
        with output_errors(path):
            handle = open(target, mode, encoding=encoding, newline=newline)
        with _closed_on_every_path(handle, path):
            yield handle
        return
    with written_atomically(path) as (descriptor, _):
        handle = os.fdopen(descriptor, mode, encoding=encoding, newline=newline, closefd=False)
        with _closed_on_every_path(handle, path):
            yield handle


@contextlib.contextmanager
def _closed_on_every_path(handle: IO, output) -> Iterator[None]:
    """Close `handle` after the block: a failure to flush it is an OutputError; after the block's own exception
    the close (which flushes again) must not replace that exception."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(OSError):
            handle.close()
        raise
    with output_errors(output):
        handle.close()


@contextlib.contextmanager
def written_atomically(path) -> Iterator[tuple[int, str]]:
    """(descriptor, name) of a new private temporary file beside the file `path` names, for a writer that takes a
    file name (safetensors) or a descriptor; renamed over that file when the block ends, removed if it raises."""
    target = output_target(path)
    folder, name = os.path.split(target)
    with output_errors(path):
        descriptor, temporary = tempfile.mkstemp(prefix=f".{name}.{socket.gethostname()}.{os.getpid()}.",
                                                 suffix=TEMPORARY_SUFFIX, dir=folder)
    try:
        yield descriptor, temporary
        with output_errors(path):
            os.fsync(descriptor)
            _give_final_mode(descriptor, target)
            os.close(descriptor)
            descriptor = None
            os.replace(temporary, target)
    except BaseException:
        if descriptor is not None:
            os.close(descriptor)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


@contextlib.contextmanager
def folder_written_atomically(path) -> Iterator[Path]:
    """A new empty folder to fill, inside a private (0700) staging folder `.NAME.HOST.PID.RANDOM.staging` beside
    the folder `path` names; when the block ends it takes the place of that folder (the earlier one, whose mode it
    gets, is moved aside and then removed), so that `path` holds the earlier folder or the complete new one, never
    a mix. If the block raises, the staging folder is removed and the earlier folder stays. The block may read the
    earlier folder: it is removed only after the swap. Only a process killed between the two renames leaves `path`
    missing, with the earlier folder whole in the staging folder's `earlier/`."""
    target = Path(os.path.realpath(path))
    with output_errors(path):
        if target.exists() and not target.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "it is a file, not a folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.{socket.gethostname()}.{os.getpid()}.",
                                        suffix=STAGING_SUFFIX, dir=target.parent))
    new, earlier = staging / "new", staging / "earlier"
    try:
        new.mkdir()
        yield new
        with output_errors(path):
            if target.exists():
                new.chmod(target.stat().st_mode & 0o7777)
                target.rename(earlier)
            try:
                new.rename(target)
            except BaseException:
                if earlier.exists() and not target.exists():
                    earlier.rename(target)
                raise
    finally:
        if target.exists() or not earlier.exists():  # else `earlier/` is the only copy of the earlier folder
            shutil.rmtree(staging, ignore_errors=True)


def _give_final_mode(descriptor: int, target: str) -> None:
    """The replaced file's mode and, where permitted, owner (an 0600 output stays 0600), else the mode the umask
    gives a new file. (Windows: the mode mkstemp gave.)"""
    if os.name != "posix":
        return
    try:
        status = os.stat(target)
    except FileNotFoundError:
        os.fchmod(descriptor, 0o666 & ~_umask())
        return
    with contextlib.suppress(PermissionError):
        os.fchown(descriptor, status.st_uid, status.st_gid)  # before the mode: a chown clears set-id bits
    os.fchmod(descriptor, status.st_mode & 0o7777)


def _umask() -> int:
    """The process's umask (read by setting it, briefly, to the private 077)."""
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def check_output_folder(path) -> None:
    """OutputError unless a file can be created beside the file `path` names (the probe is created and removed
    at once): os.access answers yes for root on /proc or a read-only mount; creating a file is the real test."""
    target = output_target(path)
    with output_errors(path):
        descriptor, probe = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", suffix=".probe",
                                             dir=os.path.dirname(target))
    os.close(descriptor)
    os.unlink(probe)


def remove_stale_temporaries(path, max_age_seconds: float = STALE_AFTER_SECONDS) -> list[str]:
    """Remove the temporary files of the output `path` that dead writers left (a process killed outright cannot
    remove its own); returns their names. A file counts as dead when its writer ran on this host and its
    process is gone, or when it has not changed for `max_age_seconds` (a writer on another host of a shared
    folder cannot be checked from here). Files of live writers and files of other naming are kept."""
    target = os.path.realpath(path)
    folder, name = os.path.split(target)
    prefix, removed = f".{name}.", []
    for entry in os.scandir(folder):
        if not (entry.name.startswith(prefix) and entry.name.endswith(TEMPORARY_SUFFIX)):
            continue
        writer = entry.name[len(prefix):-len(TEMPORARY_SUFFIX)].rsplit(".", 2)  # HOST.PID.RANDOM
        if len(writer) != 3 or not writer[1].isdigit():
            continue
        with contextlib.suppress(FileNotFoundError):
            if (_process_is_gone(writer[0], int(writer[1]))
                    or time.time() - entry.stat(follow_symlinks=False).st_mtime > max_age_seconds):
                os.unlink(entry.path)
                removed.append(entry.name)
    return removed


def _process_is_gone(host: str, pid: int) -> bool:
    if host != socket.gethostname() or os.name != "posix":  # (Windows' os.kill would stop the process)
        return False
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except PermissionError:  # it exists, run by another user
        pass
    return False


__all__ = ["OutputError", "check_output_folder", "folder_written_atomically", "open_output", "output_errors", "output_target",
           "remove_stale_temporaries", "writes_in_place", "written_atomically"]
