"""Windows of VANER's annotation path: words joined with single spaces, tokenized by the model's fast
tokenizer and cut into windows of at most `max_length` sub-tokens, overlapping by `stride` when a sentence is
longer; each word is owned by the window where it is most central. Training, evaluation and annotation all
use `WordWindows` (vaner/features.py imports it), so the model sees exactly the rows it was trained on. A
sentence with no end in a huge text is windowed as a stream of words (`WordWindows.stream`), into the same windows.

Served by the Hub as remote code beside modeling_vaner.py and pipeline_vaner.py.
"""

from __future__ import annotations

import bisect
import itertools
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

logger = logging.getLogger(__name__)



# --------------------------------------------------------------------------------------------
# Windows

# The window defaults of training, evaluation and annotation (the CLIs, the pipeline, the spaCy component).
DEFAULT_MAX_LENGTH = 128  # sub-tokens of a sentence per window (special tokens included; the instruction comes on top)
STREAM_CHUNK_WINDOWS = 8  # a streamed sentence: windows planned (and tokenized in one call) at a time
DEFAULT_STRIDE = 32  # sub-tokens shared by consecutive windows of a long sentence


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

    def __init__(self, tokenizer, max_length: int = DEFAULT_MAX_LENGTH, stride: int | None = None):
        if not getattr(tokenizer, "is_fast", False):
            raise ValueError(f"{type(tokenizer).__name__} is not a fast tokenizer: character offsets need one")
        self.tokenizer = tokenizer
        self.prefix_ids, self.suffix_ids = special_affixes(tokenizer)
        self.max_length = max_length
        self.budget = max_length - len(self.prefix_ids) - len(self.suffix_ids)
        if self.budget < 1:
            raise ValueError(f"max_length={max_length} leaves no room beside the tokenizer's special tokens")
        if stride is None:  # the default: DEFAULT_STRIDE sub-tokens, at most half a window
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
            result.append(self._windows(words, _sub_token_counts(word_of_token, special, len(words))))
        return result

    def stream(self, words: Iterable[str]) -> Iterator[Window]:
        """The windows of one sentence given as a stream of words, the ones `sentences` gives (`first_unit` counts
        the sentence's words), holding only a few windows' words at a time: for a sentence with no end in a huge
        text. The words' sub-tokens are counted a chunk at a time, each chunk tokenized after the word before it,
        which gives the whole sentence's counts with tokenizers that pre-tokenize at spaces (byte-level BPE,
        SentencePiece); the counts only place the windows, each window is tokenized on its own as always."""
        held = _HeldWords(self, iter(words), chunk=STREAM_CHUNK_WINDOWS * self.budget)
        if held.window_end(0, self.budget) == 0:
            return  # no words
        first = 0
        while True:
            planned = []  # up to STREAM_CHUNK_WINDOWS windows, planned by the counts, tokenized in one call
            start = first
            while len(planned) < STREAM_CHUNK_WINDOWS:
                last = held.window_end(start, self.budget)
                planned.append((start, last))
                if held.exhausted and last >= held.end:
                    break
                start = held.next_window_start(start, last, self.stride)
            encoding = self.encode([" ".join(held.words(a, b)) for a, b in planned])
            for index, (start, last) in enumerate(planned):
                window = self._aligned(held.words(start, last), 0, last - start, encoding, index)
                if len(window.input_ids) > self.max_length and last - start > 1:  # as `_windows`: give up words
                    while len(window.input_ids) > self.max_length and last - start > 1:
                        last -= 1
                        window = self._window(held.words(start, last), 0, last - start)
                    window.first_unit = start
                    yield window
                    first = held.next_window_start(start, last, self.stride)
                    break
                window.first_unit = start
                yield window
                if held.exhausted and last >= held.end:
                    return
                first = held.next_window_start(start, last, self.stride)
            held.drop_before(first)

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


def _sub_token_counts(word_of_token: Sequence[int | None], special_mask, word_count: int) -> list[int]:
    """Sub-tokens per word; a whitespace sub-token counts with the word after it."""
    counts = [0] * word_count
    pending = 0
    for position, word in enumerate(word_of_token):
        if word is None:
            pending += not special_mask[position]
        else:
            counts[word] += 1 + pending
            pending = 0
    return counts


class _HeldWords:
    """The words of a streamed sentence from `base` on, with their sub-token counts, read a chunk at a time."""

    def __init__(self, windows: WordWindows, source: Iterator[str], chunk: int):
        self.windows, self.source, self.chunk = windows, source, chunk
        self.held: list[str] = []
        self.counts: list[int] = []
        self.base = 0
        self.previous: str | None = None  # the last word read: the context of the next chunk
        self.exhausted = False

    @property
    def end(self) -> int:
        return self.base + len(self.held)

    def words(self, first: int, last: int) -> list[str]:
        return self.held[first - self.base : last - self.base]

    def window_end(self, first: int, budget: int) -> int:
        """`_window_end` over the sentence's words, reading more until the window ends before the words held."""
        while True:
            last = _window_end(self.counts, first - self.base, budget) + self.base
            if last < self.end or self.exhausted:
                return last
            self._read()

    def next_window_start(self, first: int, last: int, stride: int) -> int:
        return _next_window_start(self.counts, first - self.base, last - self.base, stride) + self.base

    def drop_before(self, first: int) -> None:
        del self.held[: first - self.base], self.counts[: first - self.base]
        self.base = first

    def _read(self) -> None:
        chunk = list(itertools.islice(self.source, self.chunk))
        if not chunk:
            self.exhausted = True
            return
        context = [] if self.previous is None else [self.previous]
        words = context + chunk
        encoding = self.windows.encode([" ".join(words)])
        special = encoding["special_tokens_mask"][0]
        word_of_token = _words_of_sub_tokens([len(word) for word in words], encoding["offset_mapping"][0], special)
        self.held.extend(chunk)
        self.counts.extend(_sub_token_counts(word_of_token, special, len(words))[len(context):])
        self.previous = chunk[-1]


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



