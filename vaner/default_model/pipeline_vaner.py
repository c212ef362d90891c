"""The annotation path of VANER: words, sentences, windows, stitching and entity spans with exact character
offsets, for texts of any length; and `VanerTokenClassificationPipeline`, which serves it as
`pipeline("token-classification", model=<a VANER folder or Hub id>, trust_remote_code=True)`.

Self-contained (torch, numpy and transformers only): every saved VANER folder carries this file (it is
copied beside modeling_vaner.py, which imports it) and its config names the pipeline class under
`custom_pipelines`, so the Hub serves it as remote code. The annotation CLI (predict_vaner.py, through
vaner/documents.py) runs this same code: there is one implementation of the path below.

Data flow of `DocumentAnnotator.annotate_documents`:

    Document -> sentences (character spans of the original text)
             -> units (words, or sub-tokens with `tokenization="raw"`), each with its character span
             -> windows of at most `max_length` sub-tokens (overlapping by `stride` when a sentence is longer)
             -> rows (window x entity type), sorted by length and run in batches
             -> O/B/I probabilities per unit, from the window where the unit is most central
             -> entity spans per type -> optional overlap resolution -> AnnotatedDocument

Units. With `tokenization="words"` (default) a sentence is cut into words as the corpora are (runs of
letters/digits, every other non-space character alone: `tokenize_with_offsets`, which the corpus readers
use too), the words are joined with single spaces and tokenized by `WordWindows`, the rule that training and
evaluation use too (vaner/features.py imports it): the model sees exactly the rows it was trained and scored on,
and each word takes the tag of its first sub-token.
With `tokenization="raw"` the sentence's own characters are tokenized and every sub-token is tagged and
grouped as the stock `TokenClassificationPipeline(aggregation_strategy="simple")` does.

Entity spans. Per type, a unit tagged B starts an entity, I continues one (an I after O starts one, as
conlleval and the stock pipeline read it). The score is the mean probability of the chosen tags over the
entity's units (the stock pipeline's "simple" score). Spans are character offsets into the original text
(end exclusive) with surrounding whitespace trimmed, so `text[start:end] == entity.text` always. The
same span may carry several types (one `Entity` each); `overlaps="best"` keeps, of overlapping
entities, the higher-scoring ones.
"""

from __future__ import annotations

import bisect
import logging
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from transformers import TokenClassificationPipeline

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# Words


IOB_TAGS = ("O", "B", "I")
# A word: a run of letters/digits, or any other non-space character alone (the corpora's tokenization).
WORD_PATTERN = re.compile(r"\w+|[^\w\s]")


def tokenize_with_offsets(text: str) -> list[tuple[str, int, int]]:
    """(word, start, end) for the words of `text`: the words of training, evaluation and annotation."""
    return [(match.group(), match.start(), match.end()) for match in WORD_PATTERN.finditer(text)]


def dataset_index(dataset_name: str, dataset_names: Sequence[str]) -> int:
    """Index of a dataset name in the model's `dataset_names` (any case), -1 when absent."""
    lowered = [name.lower() for name in dataset_names]
    return lowered.index(dataset_name.lower()) if dataset_name.lower() in lowered else -1


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

TOKENIZATIONS = ("words", "raw")
DEFAULT_STRIDE = 32  # sub-tokens shared by consecutive windows of a long sentence
OVERLAP_POLICIES = ("keep", "best")
DTYPES = ("auto", "bfloat16", "float16", "float32")


# --------------------------------------------------------------------------------------------
# Documents and entities


@dataclass(frozen=True)
class Passage:
    """A part of a document (title, abstract, paragraph): `text[start:end]`. Sentences never cross it."""

    start: int
    end: int
    kind: str = "text"


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
    end = len(text) if end is None else end
    blocks = []
    breaker = _LINE_BREAK if line_breaks else _BLANK_LINE
    position = start
    for match in breaker.finditer(text, start, end):
        blocks.append((position, match.start()))
        position = match.end()
    blocks.append((position, end))
    sentences = []
    for block_start, block_end in blocks:
        sentence_start = block_start
        for match in _SENTENCE_END.finditer(text, block_start, block_end):
            next_start = match.end()
            while next_start < block_end and text[next_start].isspace():
                next_start += 1
            if next_start < block_end and _is_sentence_end(text, match, next_start):
                sentences.append((sentence_start, match.end()))
                sentence_start = next_start
        sentences.append((sentence_start, block_end))
    return [span for span in (_trim(text, s, e) for s, e in sentences) if span[0] < span[1]]


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def document_sentences(document: Document, line_breaks: bool = True) -> list[tuple[int, int]]:
    """Sentence spans of every passage of a document."""
    spans = []
    for passage in document.passage_list():
        spans.extend(split_sentences(document.text, passage.start, passage.end, line_breaks))
    return spans


# --------------------------------------------------------------------------------------------
# Windows


def plan_windows(token_counts: Sequence[int], budget: int, stride: int) -> list[tuple[int, int]]:
    """Unit ranges [a, b) covering all units, each holding at most `budget` sub-tokens (a single unit
    larger than the budget gets a window of its own), consecutive windows overlapping by up to
    `stride` sub-tokens and always advancing by at least one unit."""
    count = len(token_counts)
    if sum(token_counts) <= budget:
        return [(0, count)]
    windows = []
    first = 0
    while True:
        last = _window_end(token_counts, first, budget)
        windows.append((first, last))
        if last >= count:
            return windows
        first = _next_window_start(token_counts, first, last, stride)


def _window_end(token_counts: Sequence[int], first: int, budget: int) -> int:
    """The end of the longest window from `first` within `budget` sub-tokens (at least one unit)."""
    last, used = first, 0
    while last < len(token_counts) and (last == first or used + token_counts[last] <= budget):
        used += token_counts[last]
        last += 1
    return last


def _next_window_start(token_counts: Sequence[int], first: int, last: int, stride: int) -> int:
    """The start of the window after [first, last): its last units, up to `stride` sub-tokens, are shared."""
    next_first, overlap = last, 0
    while next_first - 1 > first and overlap + token_counts[next_first - 1] <= stride:
        next_first -= 1
        overlap += token_counts[next_first]
    return next_first


def most_central_window(windows: Sequence[tuple[int, int]], count: int) -> list[int]:
    """For each unit, the index of the window covering it farthest from that window's edges (ties: the
    earlier window), so that every unit is tagged with as much context on both sides as possible."""
    best = [-1] * count
    best_margin = [-1] * count
    for index, (first, last) in enumerate(windows):
        for unit in range(first, last):
            margin = min(unit - first, last - 1 - unit)
            if margin > best_margin[unit]:
                best[unit], best_margin[unit] = index, margin
    return best


@dataclass
class Window:
    """One model row of a sentence: the sub-tokens of its units `first_unit ...` (special tokens included) and,
    per unit, the position of the sub-token that carries its tag (-1 when it has none)."""

    first_unit: int
    input_ids: list[int]
    label_positions: list[int]
    probabilities: dict[int, np.ndarray] = field(default_factory=dict)  # type index -> (units, 3), annotation only

    @property
    def last_unit(self) -> int:
        return self.first_unit + len(self.label_positions)


def window_owners(windows: Sequence[Window], count: int) -> list[int]:
    """For each of a sentence's `count` units, the window whose tag it takes: the most central one."""
    return most_central_window([(window.first_unit, window.last_unit) for window in windows], count)


class WordWindows:
    """Words to model rows, the one rule of training, evaluation and annotation.

    A sentence's words are joined with single spaces and tokenized by the fast tokenizer with its special
    tokens; each word is tagged from its first sub-token. A sentence longer than `max_length` sub-tokens
    (special tokens included; the instruction comes on top) is cut into windows of whole words that overlap by
    up to `stride` sub-tokens (None: `DEFAULT_STRIDE`, or half a window if that is less), each tokenized on its
    own; `window_owners` gives each word the window where it is most central. A word longer than a window gets a
    window of its own, cut after its first sub-tokens (counted in `cut_words`)."""

    def __init__(self, tokenizer, max_length: int = 128, stride: int | None = None):
        if not getattr(tokenizer, "is_fast", False):
            raise ValueError(f"{type(tokenizer).__name__} is not a fast tokenizer: character offsets need one")
        self.tokenizer = tokenizer
        self.prefix_ids, self.suffix_ids = special_affixes(tokenizer)
        self.max_length = max_length
        self.budget = max_length - len(self.prefix_ids) - len(self.suffix_ids)
        if self.budget < 1:
            raise ValueError(f"max_length={max_length} leaves no room beside the tokenizer's special tokens")
        if stride is None:  # the default: 32 sub-tokens, at most half a window
            stride = min(DEFAULT_STRIDE, self.budget // 2)
        if not 0 <= stride <= self.budget // 2:
            raise ValueError(f"stride must be between 0 and half the window ({self.budget // 2}), not {stride}")
        self.stride = stride
        self.cut_words = 0  # words longer than a window met so far

    def encode(self, texts: list[str]):
        return self.tokenizer(texts, return_offsets_mapping=True, return_special_tokens_mask=True,
                              add_special_tokens=True)

    def sentences(self, word_lists: Sequence[Sequence[str]]) -> list[list[Window]]:
        """The windows of each sentence (a list of words), in one tokenizer call for the whole sentences."""
        if not word_lists:
            return []
        encoding = self.encode([" ".join(words) for words in word_lists])
        result = []
        for index, words in enumerate(word_lists):
            ids = encoding["input_ids"][index]
            special = encoding["special_tokens_mask"][index]
            word_of_token = _words_of_sub_tokens([len(word) for word in words], encoding["offset_mapping"][index], special)
            if len(ids) <= self.max_length:
                result.append([Window(0, list(ids), _first_positions(word_of_token, len(words)))])
                continue
            counts = [0] * len(words)
            pending = 0
            for position, word in enumerate(word_of_token):
                if word is None:
                    pending += not special[position]
                else:
                    counts[word] += 1 + pending
                    pending = 0
            result.append(self._windows(words, counts))
        return result

    def _windows(self, words: Sequence[str], counts: Sequence[int]) -> list[Window]:
        """`plan_windows` for words, each window tokenized on its own as a sentence of its words (in one
        batch). The first word of a window loses its leading space, which can change its sub-tokens: if a
        window comes out longer than `max_length`, the windows are planned again one at a time, each
        giving up its last words until it fits."""
        planned = plan_windows(counts, self.budget, self.stride)
        encoding = self.encode([" ".join(words[first:last]) for first, last in planned])
        windows = [self._aligned(words, first, last, encoding, index) for index, (first, last) in enumerate(planned)]
        if all(len(w.input_ids) <= self.max_length or len(w.label_positions) == 1 for w in windows):
            return windows
        windows = []
        first = 0
        while True:
            last = _window_end(counts, first, self.budget)
            window = self._window(words, first, last)
            while len(window.input_ids) > self.max_length and last - first > 1:
                last -= 1
                window = self._window(words, first, last)
            windows.append(window)
            if last >= len(words):
                return windows
            first = _next_window_start(counts, first, last, self.stride)

    def _aligned(self, words, first, last, encoding, index) -> Window:
        window_words = words[first:last]
        ids = list(encoding["input_ids"][index])
        word_of_token = _words_of_sub_tokens([len(word) for word in window_words], encoding["offset_mapping"][index],
                                             encoding["special_tokens_mask"][index])
        positions = _first_positions(word_of_token, len(window_words))
        if len(ids) > self.max_length and len(window_words) == 1:
            # One word longer than a window: its first sub-tokens carry its tag, the rest is cut.
            self.cut_words += 1
            ids = ids[: self.max_length - len(self.suffix_ids)] + list(self.suffix_ids)
        return Window(first, ids, positions)

    def _window(self, words, first, last) -> Window:
        return self._aligned(words, first, last, self.encode([" ".join(words[first:last])]), 0)


@dataclass
class _Sentence:
    units: list[tuple[int, int]]  # character spans of the units in the document text
    windows: list[Window]


@dataclass
class _PreparedDocument:
    document: Document
    sentences: list[_Sentence]
    error: str | None = None


# --------------------------------------------------------------------------------------------
# The annotator


class DocumentAnnotator:
    """Annotate documents of any length with a VANER model and its fast tokenizer.

    `entity_types`: types to extract (default: the model's `config.entity_types`); `dataset_name`: the
    dataset the instruction names (default: the model's load-time choice, usually none). See the module
    docstring for `tokenization`, windows (`max_length` sub-tokens of sentence, consecutive windows
    overlapping by `stride`), scores and `overlaps`. `batch_size` rows (window x type; a window for a multi-type
    model) go through the model at once; `pool_windows` windows are gathered and sorted by length before batching, which
    bounds memory while streaming.
    """

    # How a dataset name is found among the model's `dataset_names` (vaner.documents adds corpus aliases).
    dataset_index = staticmethod(dataset_index)

    def __init__(
        self,
        model,
        tokenizer,
        entity_types: Sequence[str] | None = None,
        dataset_name: str | None = None,
        tokenization: str = "words",
        max_length: int = 128,
        stride: int | None = None,
        batch_size: int = 32,
        overlaps: str = "keep",
        line_breaks: bool = True,
        pool_windows: int | None = None,
        word_tags: bool = False,
    ):
        if not getattr(tokenizer, "is_fast", False):
            raise ValueError(f"{type(tokenizer).__name__} is not a fast tokenizer: character offsets need one")
        if tokenization not in TOKENIZATIONS:
            raise ValueError(f"tokenization must be one of {TOKENIZATIONS}, not {tokenization!r}")
        if overlaps not in OVERLAP_POLICIES:
            raise ValueError(f"overlaps must be one of {OVERLAP_POLICIES}, not {overlaps!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, not {batch_size}")
        self.model = model
        self.tokenizer = tokenizer
        self.tokenization = tokenization
        self.overlaps = overlaps
        self.line_breaks = line_breaks
        self.batch_size = batch_size
        self.pool_windows = pool_windows or max(16 * batch_size, 256)
        self.word_tags = word_tags
        self.entity_types = resolve_entity_types(model.config, entity_types)
        self.type_indices = [list(model.config.entity_types).index(t) for t in self.entity_types]
        self.dataset_id = resolve_dataset_id(model.config, dataset_name, type(self).dataset_index)
        # A multi-type model yields every type from one row per window; a per-type one needs a row per type.
        self.row_slots = [None] if getattr(model.config, "multi_type", False) else list(range(len(self.entity_types)))
        self.instruction_lengths = [self._instruction_length(t, dataset_name) for t in self.entity_types]
        self.pad_token_id = _pad_token_id(tokenizer, model.config)
        self.windows = WordWindows(tokenizer, max_length, stride)
        self.max_length, self.budget, self.stride = max_length, self.windows.budget, self.windows.stride

    def _instruction_length(self, entity_type: str, dataset_name: str | None) -> int:
        config = self.model.config
        dataset = dataset_name if dataset_name is not None else getattr(config, "dataset_name", None)
        try:
            return len(config.instruction_token_ids.get(config.row_instruction(entity_type, dataset), ()))
        except AttributeError:  # a model without instructions in its config
            return 0

    # ---------------------------------------------------------------- public API

    def annotate(self, document: Document | str) -> AnnotatedDocument:
        """One document (or a string, as document "text")."""
        return next(self.annotate_documents([document]))

    def annotate_documents(self, documents: Iterable[Document | str], progress: bool = False) -> Iterator[AnnotatedDocument]:
        """Annotated documents in input order, computed `pool_windows` windows at a time: memory stays
        flat however many documents stream through."""
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(unit="doc", desc="annotating", dynamic_ncols=True)
        pool: list[_PreparedDocument] = []
        pooled_windows = 0
        try:
            for number, document in enumerate(documents):
                if isinstance(document, str):
                    document = Document(str(number), document)
                prepared = self._prepare(document)
                pool.append(prepared)
                pooled_windows += sum(len(sentence.windows) for sentence in prepared.sentences)
                if pooled_windows >= self.pool_windows:
                    yield from self._finish_pool(pool, bar)
                    pool, pooled_windows = [], 0
            if pool:
                yield from self._finish_pool(pool, bar)
        finally:
            if bar is not None:
                bar.close()

    # ---------------------------------------------------------------- preparation

    def _prepare(self, document: Document) -> _PreparedDocument:
        if document.error is not None:
            return _PreparedDocument(document, [], document.error)
        try:
            spans = document_sentences(document, self.line_breaks)
            if not spans:
                return _PreparedDocument(document, [])
            self.windows.cut_words = 0
            if self.tokenization == "words":
                sentences = self._word_sentences(document.text, spans)
            else:
                sentences = self._raw_sentences(document.text, spans)
            if self.windows.cut_words:
                logger.warning("document %r%s: %d words longer than max_length=%d sub-tokens were tagged from "
                               "their first %d sub-tokens", document.document_id, _where(document),
                               self.windows.cut_words, self.max_length, self.max_length)
            return _PreparedDocument(document, sentences)
        except Exception as error:  # one bad document must not stop a stream of thousands
            message = f"document {document.document_id!r}{_where(document)}: could not be prepared: {error}"
            logger.error(message)
            return _PreparedDocument(document, [], message)

    def _word_sentences(self, text: str, spans: list[tuple[int, int]]) -> list[_Sentence]:
        """Sentences cut into words (`tokenize_with_offsets`), windowed by `WordWindows`."""
        unit_lists = []
        for start, end in spans:
            words = tokenize_with_offsets(text[start:end])
            if words:
                unit_lists.append([(start + s, start + e) for _, s, e in words])
        windows = self.windows.sentences([[text[s:e] for s, e in units] for units in unit_lists])
        return [_Sentence(units, sentence_windows) for units, sentence_windows in zip(unit_lists, windows)]

    def _raw_sentences(self, text: str, spans: list[tuple[int, int]]) -> list[_Sentence]:
        """Sentences tokenized as they are written; every sub-token is a unit (the pipeline's view)."""
        encoding = self.windows.encode([text[start:end] for start, end in spans])
        sentences = []
        for index, (start, _) in enumerate(spans):
            ids = encoding["input_ids"][index]
            special = encoding["special_tokens_mask"][index]
            # Every non-special sub-token is a unit, zero-width ones included (the pipeline tags them too).
            positions = [p for p in range(len(ids)) if not special[p]]
            if not positions:
                continue
            units = [(start + encoding["offset_mapping"][index][p][0], start + encoding["offset_mapping"][index][p][1])
                     for p in positions]
            if len(ids) <= self.max_length:
                windows = [Window(0, list(ids), positions)]
            else:
                prefix, suffix = ids[: positions[0]], ids[positions[-1] + 1 :]
                windows = []
                for first, last in plan_windows([1] * len(units), self.budget, self.stride):
                    body = ids[positions[first] : positions[last - 1] + 1]
                    windows.append(Window(first, [*prefix, *body, *suffix],
                                           [len(prefix) + positions[u] - positions[first] for u in range(first, last)]))
            sentences.append(_Sentence(units, windows))
        return sentences

    # ---------------------------------------------------------------- inference

    def _finish_pool(self, pool: list[_PreparedDocument], bar) -> Iterator[AnnotatedDocument]:
        rows = [
            (window, slot)
            for prepared in pool
            for sentence in prepared.sentences
            for window in sentence.windows
            for slot in self.row_slots
        ]
        rows.sort(key=lambda row: len(row[0].input_ids) + self.instruction_lengths[row[1] or 0])
        shown = 0  # the bar moves with the rows done, in the pool's share of documents, not only at its end
        for batch_start in range(0, len(rows), self.batch_size):
            self._run_batch(rows[batch_start : batch_start + self.batch_size])
            done = len(pool) * min(batch_start + self.batch_size, len(rows)) // len(rows)
            if bar is not None and done > shown:
                bar.update(done - shown)
                shown = done
        if bar is not None and len(pool) > shown:
            bar.update(len(pool) - shown)
        for prepared in pool:
            annotated = self._decode_document(prepared)
            for sentence in prepared.sentences:  # free the probabilities as soon as they are used
                for window in sentence.windows:
                    window.probabilities.clear()
            yield annotated

    def _run_batch(self, rows: list[tuple[Window, int | None]]) -> None:
        """Run rows (window, slot) through the model and store each window's O/B/I probabilities per slot; a
        slot None (multi-type model) asks every type at once and fills all slots."""
        lengths = np.array([len(window.input_ids) for window, _ in rows])
        padded = np.full((len(rows), lengths.max()), self.pad_token_id, dtype=np.int64)
        for row, (window, _) in enumerate(rows):
            padded[row, : lengths[row]] = window.input_ids
        input_ids = torch.from_numpy(padded)
        attention_mask = torch.from_numpy((np.arange(padded.shape[1]) < lengths[:, None]).astype(np.int64))
        device = _model_device(self.model)
        inputs = {"input_ids": input_ids.to(device), "attention_mask": attention_mask.to(device)}
        one_pass = rows[0][1] is None
        if not one_pass:
            entity_type_ids = torch.tensor([self.type_indices[slot] for _, slot in rows], dtype=torch.long)
            inputs["entity_type_ids"] = entity_type_ids.to(device)
        if self.dataset_id is not None:
            inputs["dataset_ids"] = torch.full((len(rows),), self.dataset_id, dtype=torch.long, device=device)
        with torch.inference_mode():
            logits = self.model(**inputs).logits
        # Only the positions that carry a unit's tag are read: gather them, then softmax the few left in numpy.
        counts = [len(window.label_positions) for window, _ in rows]
        row_of_unit = np.repeat(np.arange(len(rows)), counts)
        positions = np.fromiter((p for window, _ in rows for p in window.label_positions), dtype=np.int64,
                                count=sum(counts))
        has_token = positions >= 0
        gathered = logits[torch.from_numpy(row_of_unit[has_token]).to(logits.device),
                          torch.from_numpy(positions[has_token]).to(logits.device)].float().cpu().numpy()
        if one_pass:  # typed logits: type k's O/B/I probabilities are softmax([0, B-k, I-k])
            scores = np.stack([gathered[:, [0, 1 + 2 * k, 2 + 2 * k]] for k in self.type_indices], axis=1)
        else:
            scores = gathered[:, None, :]
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        probabilities = np.zeros((len(positions), scores.shape[1], 3), dtype=np.float32)
        probabilities[:, :, 0] = 1.0  # a unit with no sub-token reads as O
        probabilities[has_token] = scores / scores.sum(-1, keepdims=True)
        first = 0
        for (window, slot), count in zip(rows, counts):
            for column, filled in enumerate(range(len(self.entity_types)) if one_pass else [slot]):
                window.probabilities[filled] = probabilities[first : first + count, column]
            first += count

    # ---------------------------------------------------------------- decoding

    def _decode_document(self, prepared: _PreparedDocument) -> AnnotatedDocument:
        if prepared.error is not None:
            return AnnotatedDocument(prepared.document, (), prepared.error)
        text = prepared.document.text
        entities = []
        word_tags = []
        units_before = 0
        for sentence in prepared.sentences:
            for slot, entity_type in enumerate(self.entity_types):
                probabilities = _sentence_probabilities(sentence, slot)
                if self.word_tags:
                    word_tags.extend(_unit_tags(text, sentence, probabilities, entity_type, units_before))
                for first, last, score in decode_spans(probabilities):
                    start, end = _trim(text, sentence.units[first][0], sentence.units[last - 1][1])
                    if start < end:
                        entities.append(Entity(start, end, text[start:end], entity_type, score))
            units_before += len(sentence.units)
        order = {entity_type: index for index, entity_type in enumerate(self.entity_types)}
        entities.sort(key=lambda entity: (entity.start, entity.end, order[entity.entity_type]))
        if self.overlaps == "best":
            entities = resolve_overlaps(entities)
        word_tags.sort(key=lambda item: (item[0], order[item[1].entity_type[2:]]))
        return AnnotatedDocument(prepared.document, tuple(entities), word_tags=tuple(word_tags))


def _unit_tags(text: str, sentence: _Sentence, probabilities: np.ndarray, entity_type: str, units_before: int):
    """(index, tag) of the units of a sentence tagged B or I for one type (whitespace-only units skipped)."""
    tags = probabilities.argmax(-1)
    found = []
    for unit, tag in enumerate(tags.tolist()):
        start, end = _trim(text, *sentence.units[unit])
        if tag and start < end:
            label = f"{IOB_TAGS[tag]}-{entity_type}"
            found.append((units_before + unit, Entity(start, end, text[start:end], label, float(probabilities[unit, tag]))))
    return found


def _sentence_probabilities(sentence: _Sentence, slot: int) -> np.ndarray:
    """(units, 3) O/B/I probabilities of a sentence for one type, each unit from its most central window."""
    if len(sentence.windows) == 1:
        return sentence.windows[0].probabilities[slot]
    chosen = window_owners(sentence.windows, len(sentence.units))
    result = np.empty((len(sentence.units), 3), dtype=np.float32)
    for unit, window_index in enumerate(chosen):
        window = sentence.windows[window_index]
        result[unit] = window.probabilities[slot][unit - window.first_unit]
    return result


def decode_spans(probabilities: np.ndarray) -> list[tuple[int, int, float]]:
    """(first, last, score) unit ranges of the entities in (units, 3) O/B/I probabilities.

    The tag of a unit is its most probable one; B starts an entity, I continues the previous one or
    starts one after O; the score is the mean probability of the chosen tags (the pipeline's rule).
    """
    tags = probabilities.argmax(-1)
    chosen = probabilities[np.arange(len(tags)), tags]
    return [(first, last, float(chosen[first:last].mean())) for first, last in tag_spans([IOB_TAGS[t] for t in tags])]


def resolve_overlaps(entities: Sequence[Entity]) -> list[Entity]:
    """Of entities that share characters (the same span with several types, or crossing spans), keep
    the higher-scoring ones: greedy by score (ties: earlier, then shorter, then input order)."""
    ranked = sorted(range(len(entities)), key=lambda i: (-entities[i].score, entities[i].start, entities[i].end, i))
    kept_starts: list[int] = []
    kept: list[Entity] = []
    for index in ranked:
        entity = entities[index]
        position = bisect.bisect_left(kept_starts, entity.start)
        if position > 0 and kept[position - 1].end > entity.start:
            continue
        if position < len(kept) and kept[position].start < entity.end:
            continue
        kept_starts.insert(position, entity.start)
        kept.insert(position, entity)
    return kept


# --------------------------------------------------------------------------------------------
# Helpers


def _words_of_sub_tokens(word_lengths: Sequence[int], offsets, special_mask) -> list[int | None]:
    """The word (index) of each sub-token of words joined with single spaces: the word of its first
    non-space character; None for special tokens and whitespace."""
    starts = []
    position = 0
    for length in word_lengths:
        starts.append(position)
        position += length + 1
    words: list[int | None] = []
    for (start, end), special in zip(offsets, special_mask):
        word = None
        if not special and end > start:
            index = bisect.bisect_right(starts, start) - 1
            if index >= 0 and start < starts[index] + word_lengths[index]:
                word = index
            elif index + 1 < len(starts) and starts[index + 1] < end:
                word = index + 1
        words.append(word)
    return words


def _first_positions(word_of_token: Sequence[int | None], word_count: int) -> list[int]:
    positions = [-1] * word_count
    for position, word in enumerate(word_of_token):
        if word is not None and positions[word] < 0:
            positions[word] = position
    return positions


def special_affixes(tokenizer) -> tuple[list[int], list[int]]:
    """The special token ids the tokenizer puts before and after a text (e.g. BOS / [CLS] and [SEP])."""
    encoding = tokenizer("a b", return_special_tokens_mask=True)
    mask = encoding["special_tokens_mask"]
    ids = encoding["input_ids"]
    content = [position for position, special in enumerate(mask) if not special]
    if not content:
        return list(ids), []
    return list(ids[: content[0]]), list(ids[content[-1] + 1 :])


def _pad_token_id(tokenizer, config) -> int:
    for candidate in (tokenizer.pad_token_id, getattr(config, "pad_token_id", None), tokenizer.eos_token_id):
        if candidate is not None:
            return int(candidate)
    return 0


def _model_device(model) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def _where(document: Document) -> str:
    return f" ({document.source})" if document.source else ""


def resolve_entity_types(config, entity_types: Sequence[str] | None) -> list[str]:
    """The requested types as the model spells them (`VanerConfig.spell_entity_types`); a clear error for
    unknown ones."""
    served = list(config.entity_types)
    if entity_types is None:
        return served
    resolved, unknown = config.spell_entity_types(entity_types, served)
    if unknown:
        known = list(getattr(config, "known_entity_types", None) or served)
        hint = ""
        if any(t.lower() in {k.lower() for k in known} for t in unknown):
            hint = " (load the model with entity_types=[...] to serve the other known types)"
        raise ValueError(f"Unknown entity type(s) {unknown}: this model serves {served}{hint}; it knows {known}.")
    if not resolved:
        raise ValueError(f"No entity type chosen: choose from {served}.")
    return resolved


def resolve_dataset_id(config, dataset_name: str | None, index_of=dataset_index) -> int | None:
    """`dataset_ids` value for the instruction naming `dataset_name`; None = the model's load-time choice.
    `index_of(name, dataset_names)` finds a name (-1: absent)."""
    if dataset_name is None:
        return None
    index = index_of(dataset_name, list(getattr(config, "dataset_names", None) or []))
    if index >= 0:
        return index
    if dataset_name == getattr(config, "dataset_name", None):
        return None
    raise ValueError(
        f"Dataset name {dataset_name!r} is not one the model knows ({list(config.dataset_names)}): load the "
        f"model with dataset_name={dataset_name!r} to tokenize its instruction."
    )



# --------------------------------------------------------------------------------------------
# Loading and precision


def cpu_supports_bf16() -> bool:
    """Whether this CPU has native bf16 arithmetic (AVX512-BF16 or AMX): from the CPU flags on Linux,
    else a quick probe (a bf16 matmul faster than fp32 means the hardware does it)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return _bf16_probe()


def _bf16_probe(size: int = 512, repeats: int = 3) -> bool:
    import time

    timings = {}
    for dtype in (torch.float32, torch.bfloat16):
        a = torch.randn(size, size, dtype=dtype)
        a @ a
        started = time.perf_counter()
        for _ in range(repeats):
            a @ a
        timings[dtype] = time.perf_counter() - started
    return timings[torch.bfloat16] < timings[torch.float32]


# Names the precision "auto" picks on a CPU ("bfloat16" or "float32") instead of the CPU's flags: runs the
# tests, or a comparison, as on the other kind of CPU.
AUTO_CPU_DTYPE_VARIABLE = "VANER_AUTO_CPU_DTYPE"


def choose_dtype(dtype: str, device: torch.device | str) -> torch.dtype:
    """"bfloat16", "float16", "float32", or "auto": bf16 on CUDA devices (fp16 where bf16 is missing) and on CPUs
    with native bf16 (AVX512-BF16 or AMX; elsewhere bf16 matmuls are about 100x slower), else fp32, unless
    `$VANER_AUTO_CPU_DTYPE` names the CPU's choice. The one precision policy of the pipeline and the command-line
    tools; what "auto" chose, and why, is logged."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, not {dtype!r}")
    if dtype != "auto":
        return getattr(torch, dtype)
    device = torch.device(device)
    if device.type == "cuda":
        chosen, reason = (torch.bfloat16, "a CUDA GPU with bf16") if torch.cuda.is_bf16_supported() else (
            torch.float16, "a CUDA GPU without bf16")
    elif device.type == "cpu":
        forced = os.environ.get(AUTO_CPU_DTYPE_VARIABLE, "").strip()
        if forced:
            if forced not in ("bfloat16", "float32"):
                raise ValueError(f"{AUTO_CPU_DTYPE_VARIABLE}={forced!r}: name bfloat16 or float32")
            chosen, reason = getattr(torch, forced), f"${AUTO_CPU_DTYPE_VARIABLE}"
        elif cpu_supports_bf16():
            chosen, reason = torch.bfloat16, "this CPU has native bf16 (AVX512-BF16 or AMX)"
        else:
            chosen, reason = torch.float32, "this CPU has no native bf16 (AVX512-BF16 or AMX)"
    else:
        chosen, reason = torch.float32, f"device {device.type}"
    logger.info("precision auto: %s (%s)", str(chosen).removeprefix("torch."), reason)
    return chosen



# --------------------------------------------------------------------------------------------
# The token-classification pipeline


# Each word is tagged from its first sub-token (as trained), so "first" is "simple"; "average" and "max", which
# pool the scores of a word's sub-tokens, have nothing to pool and are refused.
AGGREGATION_STRATEGIES = ("none", "simple", "first")
# Options of `DocumentAnnotator` the pipeline takes, at construction or per call.
ANNOTATOR_OPTIONS = ("entity_types", "dataset_name", "tokenization", "max_length", "stride", "overlaps", "line_breaks")
DEFAULT_BATCH_SIZE = 32  # rows (window x entity type) per forward pass: predict_vaner.py's default


class VanerTokenClassificationPipeline(TokenClassificationPipeline):
    """`pipeline("token-classification")` for VANER: whole words with exact offsets, for texts of any length,
    through the same `DocumentAnnotator` as the annotation CLI (same entities, same scores).

        ner = pipeline("token-classification", model="path/or/hub-id", trust_remote_code=True)
        ner("Cisplatin-induced nephrotoxicity ...")   # [{"entity_group", "score", "word", "start", "end"}, ...]
        ner([text1, text2], batch_size=32)            # one list per text; a generator or dataset streams

    `text[start:end] == word` always. A text is cut into sentences and words as the model was trained, a
    sentence longer than `max_length` sub-tokens runs in overlapping windows, and every configured entity
    type is asked (`model_kwargs={"entity_types": [...], "dataset_name": ...}` choose at load time).

    `aggregation_strategy`: unset, "simple" or "first" give whole-word entities (the words are whole already:
    each word is tagged from its first sub-token, as in training, and an entity's score is the mean probability
    of its words' tags, the "simple" rule; "average" and "max" are refused: there is nothing to pool); "none" gives the tag of every word tagged B
    or I ({"entity": "B-Disease", "score", "index" (word number in the text), "word", "start", "end"}).
    Other options (construction or call): `ignore_labels` (entity types or tags to leave out), `entity_types`
    (a subset of the loaded types), `dataset_name`, `tokenization`, `max_length`, `stride` (sub-tokens shared
    by consecutive windows), `overlaps`, `line_breaks`: see `DocumentAnnotator`. `batch_size` counts rows
    (window x entity type) per forward pass (default 32).

    Unless `dtype=` names a precision, the model runs in the precision the annotation CLI picks: bf16 on CUDA
    and on CPUs with native bf16, else float32.
    """

    def __init__(self, *args, **kwargs):
        dtype = kwargs.get("dtype", kwargs.get("torch_dtype"))
        super().__init__(*args, **kwargs)
        if self._num_workers is not None:
            raise ValueError("VANER's pipeline runs in the calling process: num_workers is not used (batch_size sets "
                             "the rows per forward pass)")
        if not getattr(self.tokenizer, "is_fast", False):
            raise ValueError("VANER's pipeline needs a fast tokenizer: character offsets come from it")
        if (dtype is None or dtype == "auto") and getattr(self.model, "hf_device_map", None) is None:
            chosen = choose_dtype("auto", self.model.device)
            if self.model.dtype != chosen:
                self.model.to(dtype=chosen)
        self.model.eval()
        # transformers turns the class names of the config's custom_pipelines entry into classes in place: back
        # to names, so that the model's config can still be saved.
        for info in (getattr(self.model.config, "custom_pipelines", None) or {}).values():
            if isinstance(info, dict) and "pt" in info:
                info["pt"] = [name if isinstance(name, str) else name.__name__ for name in info["pt"]]

    def _sanitize_parameters(self, aggregation_strategy=None, ignore_labels=None, is_split_into_words=False,
                             offset_mapping=None, delimiter=None, num_workers=None, **options):
        if num_workers is not None or delimiter is not None:
            raise ValueError("VANER's pipeline takes neither num_workers (it runs in the calling process; batch_size "
                             "sets the rows per forward pass) nor delimiter (it reads raw text, not words)")
        if is_split_into_words or offset_mapping is not None:
            raise ValueError("VANER's pipeline reads raw text (it finds the words and their offsets itself): "
                             "pass the text, not words or an offset_mapping")
        unknown = sorted(set(options) - set(ANNOTATOR_OPTIONS))
        if unknown:
            raise TypeError(f"Unknown option(s) {unknown} of VANER's pipeline: it takes aggregation_strategy, "
                            f"ignore_labels, batch_size and {', '.join(ANNOTATOR_OPTIONS)}")
        params = {key: value for key, value in options.items() if value is not None}
        if aggregation_strategy is not None:
            name = str(getattr(aggregation_strategy, "value", aggregation_strategy)).lower()
            if name not in AGGREGATION_STRATEGIES:
                raise ValueError(f"aggregation_strategy must be one of {AGGREGATION_STRATEGIES}, not {aggregation_strategy!r}: "
                                 "VANER tags each word from its first sub-token, so there are no sub-token scores to "
                                 "average or take the max of")
            params["aggregation_strategy"] = name
        if ignore_labels is not None:
            params["ignore_labels"] = list(ignore_labels)
        return {}, {}, params

    def __call__(self, inputs, **kwargs):
        """Entities of one text (a list of dicts), of a list of texts (a list of lists), or of an iterable
        of texts (a generator of lists, computed as they are consumed)."""
        batch_size = kwargs.pop("batch_size", None) or self._batch_size or DEFAULT_BATCH_SIZE
        params = {**self._postprocess_params, **self._sanitize_parameters(**kwargs)[2]}
        annotator = self.annotator(batch_size=batch_size, **params)
        strategy = params.get("aggregation_strategy")
        ignore = set(params.get("ignore_labels", ["O"]))

        def results(annotated: AnnotatedDocument) -> list[dict]:
            return self._records(annotated, strategy, ignore)

        if isinstance(inputs, str):
            return results(next(annotator.annotate_documents([inputs])))
        if inputs is None:
            raise ValueError("At least one input is required.")
        if isinstance(inputs, (list, tuple)):
            return [results(annotated) for annotated in annotator.annotate_documents(inputs)]
        return (results(annotated) for annotated in annotator.annotate_documents(inputs))

    def annotator(self, batch_size: int = DEFAULT_BATCH_SIZE, **params) -> DocumentAnnotator:
        """The `DocumentAnnotator` this pipeline runs, with its options."""
        options = {key: params[key] for key in ANNOTATOR_OPTIONS if key in params}
        return DocumentAnnotator(self.model, self.tokenizer, batch_size=batch_size,
                                 word_tags=params.get("aggregation_strategy") == "none", **options)

    @staticmethod
    def _records(annotated: AnnotatedDocument, strategy: str | None, ignore: set) -> list[dict]:
        if annotated.error is not None:
            raise ValueError(annotated.error)
        if strategy == "none":
            return [
                {"entity": tag.entity_type, "score": tag.score, "index": index, "word": tag.text,
                 "start": tag.start, "end": tag.end}
                for index, tag in annotated.word_tags
                if tag.entity_type not in ignore and tag.entity_type[2:] not in ignore
            ]
        return [
            {"entity_group": entity.entity_type, "score": entity.score, "word": entity.text,
             "start": entity.start, "end": entity.end}
            for entity in annotated.entities
            if entity.entity_type not in ignore
        ]
