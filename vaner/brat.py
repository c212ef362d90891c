"""brat standoff ("brat", `.ann`): the format of the brat annotation tool and of the BioNLP shared tasks, a
document being a `.txt` file and its annotations in an `.ann` file of the same name beside it.

Annotation (`predict_vaner.py --input doc.ann`) reads the text of `doc.txt` as document `doc`; the `.ann` lines
are not read (the document is annotated anew), as PubTator mentions are not. Training and evaluation read the
entity lines strictly (`read_brat_entities`): `T1<TAB>Type start end<TAB>text`, a discontinuous entity as
`Type start end;start end` with its fragments' texts joined by a space. Other lines (relations R, events E,
attributes A and M, normalizations N, notes #, equivalences *) are counted, not read.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .documents import Document
from .formats import InputFormat, read_text_file, register_input_format
from .textfiles import CorpusFormatError, decode, input_name, open_binary

_FRAGMENT = re.compile(r"^(\d+) (\d+)$")


@dataclass(frozen=True)
class BratEntity:
    """A `T` line: `fragments` are (start, end) character offsets in the `.txt` text, several for a
    discontinuous entity; `line` is its line in the `.ann` file."""

    entity_id: str
    entity_type: str
    fragments: tuple[tuple[int, int], ...]
    text: str
    line: int

    @property
    def start(self) -> int:
        return self.fragments[0][0]

    @property
    def end(self) -> int:
        return self.fragments[-1][1]


def text_file_of(ann_path: str | Path) -> Path | None:
    """The `.txt` (or `.txt.gz`) file beside an `.ann` (or `.ann.gz`) file, None when there is none."""
    path = Path(ann_path)
    stem = path.name.removesuffix(".gz").removesuffix(".ann")
    for name in (f"{stem}.txt", f"{stem}.txt.gz"):
        if (path.parent / name).is_file():
            return path.parent / name
    return None


def read_brat(path: str | Path, encoding: str = "utf-8") -> Iterator[Document]:
    """The document of an `.ann` file: the text of the `.txt` beside it, id its name without suffix; a
    document with an error where that file is missing."""
    name = input_name(path)
    text_path = text_file_of(path)
    if text_path is None:
        stem = Path(name).name.removesuffix(".gz").removesuffix(".ann")
        yield Document(stem, "", source=name, error=f"{name}: no {stem}.txt beside it (brat keeps a document's "
                                                    "text in a .txt file of the same name)")
        return
    yield read_text_file(text_path, encoding)


def read_brat_entities(ann_path: str | Path, text: str, encoding: str = "utf-8") -> tuple[list[BratEntity], Counter]:
    """The entities of an `.ann` file, each checked against `text` (its `.txt`), and the count of the other
    lines by kind ("R", "E", "A", "#", ...). A malformed `T` line, offsets outside the text or a text that
    differs from the text at its offsets raise `CorpusFormatError` naming the file and line."""
    name = input_name(ann_path)
    entities: list[BratEntity] = []
    ignored: Counter = Counter()
    with open_binary(ann_path) as handle:  # an .ann file is small: read whole
        lines = decode(handle.read(), encoding, name, whole_file=True).removeprefix("\ufeff").split("\n")
    for number, line in enumerate(lines, start=1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        if line.startswith("T"):
            entities.append(_entity(line, text, f"{name}:{number}", number))
        else:
            ignored[line[:1]] += 1
    return entities, ignored


def _entity(line: str, text: str, where: str, number: int) -> BratEntity:
    fields = line.split("\t")
    if len(fields) < 3 or " " not in fields[1]:
        raise CorpusFormatError(f"{where}: expected an entity line 'T1<TAB>Type start end<TAB>text', got {line[:80]!r}")
    entity_type, _, offsets = fields[1].partition(" ")
    fragments = []
    for fragment in offsets.split(";"):
        match = _FRAGMENT.match(fragment.strip())
        if not match:
            raise CorpusFormatError(f"{where}: offsets {offsets!r} are not 'start end' pairs separated by ';'")
        start, end = int(match[1]), int(match[2])
        if not 0 <= start < end <= len(text):
            raise CorpusFormatError(f"{where}: offsets {start}-{end} outside the text ({len(text)} characters)")
        fragments.append((start, end))
    written = "\t".join(fields[2:])
    found = " ".join(text[start:end] for start, end in fragments)
    if written != found:
        raise CorpusFormatError(f"{where}: entity text {written!r} differs from the text at {offsets}: {found!r}")
    return BratEntity(fields[0], entity_type, tuple(sorted(fragments)), written, number)


register_input_format(InputFormat(
    "brat", read_brat, "brat standoff: the text of the .txt beside each .ann file (its annotations are not read)",
    (".ann",),
))

__all__ = ["BratEntity", "read_brat", "read_brat_entities", "text_file_of"]
