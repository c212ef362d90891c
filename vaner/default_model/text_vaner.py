"""Words, documents and sentences of VANER's annotation path: the one tokenization of words
(`tokenize_with_offsets`, which the corpus readers use too), the document model (`Document` with its
`Passage`s, `Entity`, `AnnotatedDocument`) and the sentence splitter, linear in the text's length.

Served by the Hub as remote code beside modeling_vaner.py and pipeline_vaner.py (torch-free: re only).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# Words


IOB_TAGS = ("O", "B", "I")
# A word: a run of letters/digits, or any other non-space character alone (the corpora's tokenization).
WORD_PATTERN = re.compile(r"\w+|[^\w\s]")


def tokenize_with_offsets(text: str) -> list[tuple[str, int, int]]:
    """(word, start, end) for the words of `text`: the words of training, evaluation and annotation."""
    return [(match.group(), match.start(), match.end()) for match in WORD_PATTERN.finditer(text)]


def tag_spans(tags: Sequence[str]) -> list[tuple[int, int]]:
    """(first, last) unit ranges of the entities of an untyped O/B/I sequence, read as conlleval reads it: B
    starts an entity, I continues one (an I after O starts one)."""
    spans = []
    start = None
    for position, tag in enumerate(tags):
        if tag == "I" and start is not None:
            continue
        if start is not None:
            spans.append((start, position))
            start = None
        if tag != "O":
            start = position
    if start is not None:
        spans.append((start, len(tags)))
    return spans



# --------------------------------------------------------------------------------------------
# Documents and entities


@dataclass(frozen=True)
class Passage:
    """A part of a document (title, abstract, paragraph): `text[start:end]`. Sentences never cross it."""

    start: int
    end: int
    kind: str = "text"


# The longest document annotated, in characters (as spaCy's `nlp.max_length`): a longer one becomes an error record
# naming it. Annotation memory does not grow with a document's length, but its entities are kept until it is written.
DEFAULT_MAX_DOCUMENT_LENGTH = 1_000_000


@dataclass(frozen=True)
class Document:
    """A text to annotate. `passages` (empty = one passage, the whole text) record e.g. a PubTator
    title and abstract so that writers can give them back; `error` marks a record that could not be
    read (it is passed through with no entities and the message)."""

    document_id: str
    text: str
    passages: tuple[Passage, ...] = ()
    source: str = ""  # where it was read ("file:line"), for messages
    error: str | None = None

    def passage_list(self) -> tuple[Passage, ...]:
        return self.passages or (Passage(0, len(self.text), "text"),)


@dataclass(frozen=True)
class Entity:
    """A typed mention: `text == document.text[start:end]`, `score` in [0, 1]."""

    start: int
    end: int
    text: str
    entity_type: str
    score: float

    def to_dict(self) -> dict:
        return {"start": self.start, "end": self.end, "text": self.text, "type": self.entity_type,
                "score": round(float(self.score), 4)}


@dataclass(frozen=True)
class AnnotatedDocument:
    document: Document
    entities: tuple[Entity, ...] = ()
    error: str | None = None  # why the document has no entities, when it could not be annotated
    # With `DocumentAnnotator(word_tags=True)`: (index, tag) of every unit tagged B or I for a type, in text
    # order; `index` counts the document's units, `tag.entity_type` is "B-Disease", "I-Disease", ...
    word_tags: tuple[tuple[int, Entity], ...] = ()

    @property
    def document_id(self) -> str:
        return self.document.document_id


# --------------------------------------------------------------------------------------------
# Sentences


# Words before a "." that do not end a sentence (lower-cased, without the final dot).
ABBREVIATIONS = frozenset(
    "e.g i.e al fig figs vs ca cf approx dr mr mrs ms prof no nos vol ref refs eq eqs resp sp spp var subsp "
    "st jr sr inc ltd co corp dept univ tab suppl ed eds pp".split()
)
_SENTENCE_END = re.compile(r"[.!?]+[\"'\u201d\u2019)\]]*(?=\s)")
_LINE_BREAK = re.compile(r"\r\n|\r|\n|\u2028|\u2029")
_BLANK_LINE = re.compile(r"(?:\r\n|\r(?!\n)|\n)[^\S\r\n]*(?:\r\n|\r(?!\n)|\n)\s*")
_WORD_BEFORE = re.compile(r"([\w.]+)$")


_CLOSING = "\"'\u201d\u2019)]"


def _is_sentence_end(text: str, match: re.Match, next_start: int) -> bool:
    """Whether the punctuation `match`, followed by whitespace and the character at `next_start`, ends a sentence."""
    if text[next_start].islower():
        return False
    if match.group().rstrip(_CLOSING) == ".":
        # Only the last 64 characters are searched (linear in the text): longer words are no abbreviations.
        before = _WORD_BEFORE.search(text, max(0, match.start() - 64), match.start())
        if before:
            word = before.group(1)
            if word.lower().rstrip(".") in ABBREVIATIONS:
                return False
            if len(word) == 1 and word.isupper():  # an initial: "J. Smith"
                return False
    return True


def split_sentences(text: str, start: int = 0, end: int | None = None, line_breaks: bool = True) -> list[tuple[int, int]]:
    """(start, end) character spans of the sentences of `text[start:end]`, whitespace trimmed.

    A sentence ends at ".", "!" or "?" (and closing quotes or brackets) followed by whitespace and a
    character that is not a lower-case letter, unless the word before the dot is a known abbreviation
    ("e.g.", "et al.", "Fig.") or an initial. Line breaks end sentences when `line_breaks` (text with a
    sentence or paragraph per line); otherwise only blank lines do (hard-wrapped text).
    """
    return list(iter_sentences(text, start, end, line_breaks))


def iter_sentences(text: str, start: int = 0, end: int | None = None, line_breaks: bool = True) -> Iterator[tuple[int, int]]:
    """`split_sentences` one sentence at a time: the spans of a huge text are never all listed at once."""
    end = len(text) if end is None else end
    breaker = _LINE_BREAK if line_breaks else _BLANK_LINE
    position = start
    for match in breaker.finditer(text, start, end):
        yield from _block_sentences(text, position, match.start())
        position = match.end()
    yield from _block_sentences(text, position, end)


def _block_sentences(text: str, block_start: int, block_end: int) -> Iterator[tuple[int, int]]:
    """The sentences of a block (a line, or a paragraph), whitespace trimmed, empty ones left out."""
    sentence_start = block_start
    for match in _SENTENCE_END.finditer(text, block_start, block_end):
        next_start = match.end()
        while next_start < block_end and text[next_start].isspace():
            next_start += 1
        if next_start < block_end and _is_sentence_end(text, match, next_start):
            span = trim_span(text, sentence_start, match.end())
            if span[0] < span[1]:
                yield span
            sentence_start = next_start
    span = trim_span(text, sentence_start, block_end)
    if span[0] < span[1]:
        yield span


def trim_span(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def document_sentences(document: Document, line_breaks: bool = True) -> Iterator[tuple[int, int]]:
    """Sentence spans of every passage of a document, one at a time."""
    for passage in document.passage_list():
        yield from iter_sentences(document.text, passage.start, passage.end, line_breaks)


