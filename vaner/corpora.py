"""Corpora in one internal form: a `Sentence` is tokens + IOB2 tags for one entity type.

Readers turn files into `Sentence` lists; every other stage works on that form only, so a new
corpus format is one reader here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

IOB_TAGS = ("O", "B", "I")


class CorpusFormatError(ValueError):
    """A corpus file that cannot be read; the message names the file and line."""


@dataclass(frozen=True)
class Sentence:
    """One sentence of a corpus, labelled for a single entity type.

    `tags` are untyped IOB2 tags ("O", "B", "I") aligned with `tokens`: the type is `entity_type`,
    because VANER asks for one type at a time.
    """

    tokens: tuple[str, ...]
    tags: tuple[str, ...]
    entity_type: str
    source_corpus: str
    location: str = field(default="", compare=False)  # "file:line" of the first token, for messages


@dataclass(frozen=True)
class RawSentence:
    """A sentence as written in a file: tokens with their typed tags ("B-Disease", "O", ...)."""

    tokens: tuple[str, ...]
    tags: tuple[str, ...]
    line: int  # 1-based line of the first token


def read_iob_file(path: str | Path) -> list[RawSentence]:
    """Read a CoNLL-style file: token in the first column, IOB2 tag in the last, blank line between
    sentences; `-DOCSTART-` lines are skipped. Two-column TSV (MTL-Bioinformatics-2016) is the common case.
    """
    path = Path(path)
    if not path.is_file():
        raise CorpusFormatError(f"{path}: no such corpus file")
    sentences: list[RawSentence] = []
    tokens: list[str] = []
    tags: list[str] = []
    first_line = 0
    columns = None
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                if tokens:
                    sentences.append(RawSentence(tuple(tokens), tuple(tags), first_line))
                    tokens, tags = [], []
                continue
            fields = line.split("\t") if "\t" in line else line.split()
            if fields[0] == "-DOCSTART-":
                continue
            if len(fields) < 2:
                raise CorpusFormatError(f"{path}:{line_number}: expected a token and a tag, got {line!r}")
            if columns is None:
                columns = len(fields)
            elif len(fields) != columns:
                raise CorpusFormatError(
                    f"{path}:{line_number}: {len(fields)} columns where the file has {columns}: {line!r}"
                )
            tag = fields[-1]
            if tag != "O" and not (tag[:2] in ("B-", "I-") and len(tag) > 2):
                raise CorpusFormatError(f"{path}:{line_number}: unknown tag {tag!r} (expected O, B-Type or I-Type)")
            if not tokens:
                first_line = line_number
            tokens.append(fields[0])
            tags.append(tag)
    if tokens:
        sentences.append(RawSentence(tuple(tokens), tuple(tags), first_line))
    if not sentences:
        raise CorpusFormatError(f"{path}: the file holds no sentences")
    return sentences
