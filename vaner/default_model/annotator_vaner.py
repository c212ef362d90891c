"""The annotation path of VANER: words, sentences, windows, stitching and entity spans with exact character
offsets, for texts of any length: `DocumentAnnotator`, which `VanerTokenClassificationPipeline`
(pipeline_vaner.py) serves and the annotation CLI (predict_vaner.py, through vaner/documents.py) runs: there
is one implementation of the path below. Its parts: text_vaner.py (words, documents, sentences),
windows_vaner.py (windows), precision_vaner.py (the dtype policy).

Served by the Hub as remote code (torch, numpy and transformers only): every saved VANER folder carries these
files beside modeling_vaner.py, which imports pipeline_vaner.py, which imports them.

Data flow of `DocumentAnnotator.annotate_documents`:

    Document -> sentences (character spans of the original text)
             -> units (words, or sub-tokens with `tokenization="raw"`), each with its character span
             -> windows of at most `max_length` sub-tokens (overlapping by `stride` when a sentence is longer)
             -> rows (window x entity type), sorted by length and run in batches
             -> O/B/I probabilities per unit, from the window where the unit is most central
             -> entity spans per type -> optional overlap resolution -> AnnotatedDocument

A document goes through a part at a time (SENTENCE_BATCH_CHARS characters of sentences; a longer sentence in parts
of `pool_windows` windows, its words read as they are needed), and only its entities are kept between parts: the
memory of annotation does not grow with a document's length. A document over `max_document_length` characters
(DEFAULT_MAX_DOCUMENT_LENGTH) is not annotated: it comes back with an error naming it.

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
import re
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

logger = logging.getLogger(__name__)

try:  # as remote code (a package built by transformers)
    from .text_vaner import (
        DEFAULT_MAX_DOCUMENT_LENGTH,
        IOB_TAGS,
        WORD_PATTERN,
        AnnotatedDocument,
        Document,
        Entity,
        document_sentences,
        tag_spans,
        tokenize_with_offsets,
        trim_span,
    )
    from .windows_vaner import DEFAULT_MAX_LENGTH, Window, WordWindows, most_central_window, plan_windows
except ImportError:  # imported from the project root
    from text_vaner import (
        DEFAULT_MAX_DOCUMENT_LENGTH,
        IOB_TAGS,
        WORD_PATTERN,
        AnnotatedDocument,
        Document,
        Entity,
        document_sentences,
        tag_spans,
        tokenize_with_offsets,
        trim_span,
    )
    from windows_vaner import DEFAULT_MAX_LENGTH, Window, WordWindows, most_central_window, plan_windows

TOKENIZATIONS = ("words", "raw")
OVERLAP_POLICIES = ("keep", "best")
# Characters of consecutive sentences prepared and run at a time; a longer sentence is streamed in parts of
# `pool_windows` windows. Annotation memory follows these, not the length of a document.
SENTENCE_BATCH_CHARS = 1 << 15
# Where the text of a long sentence is cut for `tokenization="raw"`: at a space after a non-space and before a letter,
# where tokenizers that pre-tokenize at spaces cut too.
_RAW_CUT = re.compile(r"(?<=\S) (?=[^\W\d_])")


def dataset_index(dataset_name: str, dataset_names: Sequence[str]) -> int:
    """Index of a dataset name in the model's `dataset_names` (any case), -1 when absent."""
    lowered = [name.lower() for name in dataset_names]
    return lowered.index(dataset_name.lower()) if dataset_name.lower() in lowered else -1


@dataclass
class _Sentence:
    """A sentence, or a part of a long one: its units and the windows that cover them. Of a part, the units in
    `decode` get their tags here; `closes`: the sentence ends with them."""

    units: list[tuple[int, int]]  # character spans in the document text of the sentence's units `base`, `base + 1`, ...
    windows: list[Window]  # `first_unit` counts the sentence's units
    fresh: list[Window] | None = None  # the windows still to run (the others ran with the part before); None: all
    base: int = 0
    decode: tuple[int, int] | None = None  # (first, last) into `units`; None: all
    closes: bool = True

    @property
    def windows_to_run(self) -> list[Window]:
        return self.windows if self.fresh is None else self.fresh


@dataclass
class _PreparedDocument:
    """A document on its way through the annotator: its entities (and tags) so far, gathered part by part."""

    document: Document
    error: str | None = None
    complete: bool = False  # all its parts are in the pool
    entities: list[Entity] = field(default_factory=list)
    word_tags: list[tuple[int, Entity]] = field(default_factory=list)
    units_before: int = 0  # units decoded so far
    # type slot -> (start, end, scores) of an entity reaching the end of the part decoded last, which the next part of
    # its sentence may continue
    open_entities: dict[int, tuple[int, int, np.ndarray]] = field(default_factory=dict)


class _UnitSpans:
    """Character spans of a streamed sentence's units, from unit `base` on (the earlier ones are dropped)."""

    def __init__(self):
        self.spans: list[tuple[int, int]] = []
        self.base = 0

    @property
    def end(self) -> int:
        return self.base + len(self.spans)

    def words(self, text: str, start: int, end: int) -> Iterator[str]:
        """The words of `text[start:end]` (those of `tokenize_with_offsets`), their spans kept as they are read."""
        for match in WORD_PATTERN.finditer(text, start, end):
            self.spans.append(match.span())
            yield match.group()

    def between(self, first: int, last: int) -> list[tuple[int, int]]:
        return self.spans[first - self.base : last - self.base]

    def drop_before(self, unit: int) -> None:
        del self.spans[: unit - self.base]
        self.base = unit


# --------------------------------------------------------------------------------------------
# The annotator


class DocumentAnnotator:
    """Annotate documents of any length with a VANER model and its fast tokenizer.

    `entity_types`: types to extract (default: the model's `config.entity_types`); `dataset_name`: the
    dataset the instruction names (default: the model's load-time choice, usually none). See the module
    docstring for `tokenization`, windows (`max_length` sub-tokens of sentence, consecutive windows
    overlapping by `stride`), scores and `overlaps`. `batch_size` rows (window x type; a window for a multi-type
    model) go through the model at once; `pool_windows` windows are gathered and sorted by length before batching, which
    bounds memory while streaming. A document longer than `max_document_length` characters is not annotated: it
    comes back with an error naming it.
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
        max_length: int = DEFAULT_MAX_LENGTH,
        stride: int | None = None,
        batch_size: int = 32,
        overlaps: str = "keep",
        line_breaks: bool = True,
        pool_windows: int | None = None,
        word_tags: bool = False,
        max_document_length: int = DEFAULT_MAX_DOCUMENT_LENGTH,
    ):
        if not getattr(tokenizer, "is_fast", False):
            raise ValueError(f"{type(tokenizer).__name__} is not a fast tokenizer: character offsets need one")
        if tokenization not in TOKENIZATIONS:
            raise ValueError(f"tokenization must be one of {TOKENIZATIONS}, not {tokenization!r}")
        if overlaps not in OVERLAP_POLICIES:
            raise ValueError(f"overlaps must be one of {OVERLAP_POLICIES}, not {overlaps!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, not {batch_size}")
        if max_document_length < 1:
            raise ValueError(f"max_document_length must be positive, not {max_document_length}")
        self.model = model
        self.tokenizer = tokenizer
        self.tokenization = tokenization
        self.overlaps = overlaps
        self.line_breaks = line_breaks
        self.batch_size = batch_size
        self.pool_windows = pool_windows or max(16 * batch_size, 256)
        self.word_tags = word_tags
        self.max_document_length = max_document_length
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
        """Annotated documents in input order, computed `pool_windows` windows at a time: memory stays flat however
        many documents stream through and however long one is (its sentences are prepared and run a part at a
        time, its entities gathered as they come)."""
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(unit="doc", desc="annotating", dynamic_ncols=True)
        waiting: deque[_PreparedDocument] = deque()  # documents not given back yet, in input order
        pool: list[tuple[_PreparedDocument, _Sentence]] = []
        pooled_windows = 0
        try:
            for number, document in enumerate(documents):
                if isinstance(document, str):
                    document = Document(str(number), document)
                prepared = _PreparedDocument(document)
                waiting.append(prepared)
                parts = self._parts(prepared)
                part = next(parts, None)
                while part is not None:
                    following = next(parts, None)  # known before the pool runs, so that a full pool gives it back
                    prepared.complete = following is None
                    pool.extend((prepared, sentence) for sentence in part)
                    pooled_windows += sum(len(sentence.windows_to_run) for sentence in part)
                    if pooled_windows >= self.pool_windows:
                        yield from self._finish_pool(pool, waiting, bar)
                        pooled_windows = 0
                    part = following
                prepared.complete = True
            yield from self._finish_pool(pool, waiting, bar)
        finally:
            if bar is not None:
                bar.close()

    # ---------------------------------------------------------------- preparation

    def _parts(self, prepared: _PreparedDocument) -> Iterator[list[_Sentence]]:
        """A document's sentences, prepared a part at a time: consecutive sentences of about SENTENCE_BATCH_CHARS
        characters, a longer sentence in parts of `pool_windows` windows. A document over `max_document_length`
        characters, or one whose preparation fails, gets its error instead."""
        document = prepared.document
        if document.error is not None:
            prepared.error = document.error
            return
        if len(document.text) > self.max_document_length:
            prepared.error = (f"document {document.document_id!r}{_where(document)}: {len(document.text):,} characters, "
                              f"over the limit of {self.max_document_length:,} characters (max_document_length); "
                              "not annotated")
            return
        try:
            self.windows.cut_words = 0
            batch: list[tuple[int, int]] = []
            size = 0
            for start, end in document_sentences(document, self.line_breaks):
                if end - start > SENTENCE_BATCH_CHARS:
                    if batch:
                        yield self._sentences(document.text, batch)
                        batch, size = [], 0
                    yield from self._streamed_sentence(document.text, start, end)
                    continue
                batch.append((start, end))
                size += end - start
                if size >= SENTENCE_BATCH_CHARS:
                    yield self._sentences(document.text, batch)
                    batch, size = [], 0
            if batch:
                yield self._sentences(document.text, batch)
            if self.windows.cut_words:
                logger.warning("document %r%s: %d words longer than max_length=%d sub-tokens were tagged from "
                               "their first %d sub-tokens", document.document_id, _where(document),
                               self.windows.cut_words, self.max_length, self.max_length)
        except Exception as error:  # one bad document must not stop a stream of thousands
            message = f"document {document.document_id!r}{_where(document)}: could not be prepared: {error}"
            logger.error(message)
            prepared.error = message

    def _sentences(self, text: str, spans: list[tuple[int, int]]) -> list[_Sentence]:
        if self.tokenization == "words":
            return self._word_sentences(text, spans)
        return self._raw_sentences(text, spans)

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

    def _streamed_sentence(self, text: str, start: int, end: int) -> Iterator[list[_Sentence]]:
        """A sentence longer than SENTENCE_BATCH_CHARS in parts of `pool_windows` windows, its words (or sub-tokens)
        read as they are needed: the windows are those of the whole sentence; a part decodes the units that no later
        window covers, with the earlier windows that cover them too (run with the part before)."""
        units = _UnitSpans()
        if self.tokenization == "words":
            windows = self.windows.stream(units.words(text, start, end))
        else:
            windows = self._raw_windows(text, start, end, units)
        carried: list[Window] = []
        fresh: list[Window] = []
        decoded = 0  # the sentence's units before this one have their tags
        for window in windows:
            if len(fresh) >= self.pool_windows:
                yield [_part(units, carried, fresh, decoded, window.first_unit, closes=False)]
                decoded = window.first_unit
                carried = [earlier for earlier in (*carried, *fresh) if earlier.last_unit > decoded]
                fresh = []
                units.drop_before(min([decoded, *(earlier.first_unit for earlier in carried)]))
            fresh.append(window)
        if fresh:
            yield [_part(units, carried, fresh, decoded, units.end, closes=True)]

    def _raw_windows(self, text: str, start: int, end: int, units: _UnitSpans) -> Iterator[Window]:
        """The `tokenization="raw"` windows of a long sentence (those of `_raw_sentences`), its text tokenized a chunk
        at a time, each chunk cut at a `_RAW_CUT` (or, with none in twice SENTENCE_BATCH_CHARS, where that ends)."""
        prefix, suffix = self.windows.prefix_ids, self.windows.suffix_ids
        chunks = _raw_chunks(text, start, end)
        ids: list[int] = []  # the sub-tokens of units `ids_base`, `ids_base + 1`, ...
        ids_base = first = 0
        exhausted = False
        while True:
            while not exhausted and units.end <= first + self.budget:
                chunk = next(chunks, None)
                if chunk is None:
                    exhausted = True
                    continue
                encoding = self.windows.encode([text[chunk[0] : chunk[1]]])
                for token, (token_start, token_end), special in zip(encoding["input_ids"][0], encoding["offset_mapping"][0],
                                                                    encoding["special_tokens_mask"][0]):
                    if not special:
                        ids.append(token)
                        units.spans.append((chunk[0] + token_start, chunk[0] + token_end))
            last = min(first + self.budget, units.end)
            if last == first:
                return
            body = ids[first - ids_base : last - ids_base]
            yield Window(first, [*prefix, *body, *suffix], list(range(len(prefix), len(prefix) + len(body))))
            if exhausted and last >= units.end:
                return
            first = max(first + 1, last - self.stride)  # `plan_windows` with one sub-token a unit
            del ids[: first - ids_base]
            ids_base = first

    # ---------------------------------------------------------------- inference

    def _finish_pool(self, pool: list[tuple[_PreparedDocument, _Sentence]], waiting: deque[_PreparedDocument],
                     bar) -> Iterator[AnnotatedDocument]:
        """Run the pool's windows, add its sentences' entities to their documents and empty it; then give back
        the documents that are complete, in input order."""
        rows = [(window, slot) for _, sentence in pool for window in sentence.windows_to_run for slot in self.row_slots]
        rows.sort(key=lambda row: len(row[0].input_ids) + self.instruction_lengths[row[1] or 0])
        finishing = sum(prepared.complete for prepared in waiting)
        shown = 0  # the bar moves with the rows done, in the share of documents this pool completes
        for batch_start in range(0, len(rows), self.batch_size):
            self._run_batch(rows[batch_start : batch_start + self.batch_size])
            done = finishing * min(batch_start + self.batch_size, len(rows)) // len(rows)
            if bar is not None and done > shown:
                bar.update(done - shown)
                shown = done
        if bar is not None and finishing > shown:
            bar.update(finishing - shown)
        for prepared, sentence in pool:
            if prepared.error is None:
                self._decode_sentence(prepared, sentence)
        pool.clear()  # the windows and their probabilities go now
        while waiting and waiting[0].complete:
            yield self._annotated(waiting.popleft())

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

    def _decode_sentence(self, prepared: _PreparedDocument, sentence: _Sentence) -> None:
        """Add the tags and entities of a sentence's units (of a part: those in `decode`) to its document's."""
        text = prepared.document.text
        first, last = sentence.decode or (0, len(sentence.units))
        units = sentence.units[first:last]
        for slot, entity_type in enumerate(self.entity_types):
            probabilities = _sentence_probabilities(sentence, slot)[first:last]
            if self.word_tags:
                prepared.word_tags.extend(_unit_tags(text, units, probabilities, entity_type, prepared.units_before))
            for start, end, score in self._entity_spans(prepared, units, probabilities, slot, sentence.closes):
                start, end = trim_span(text, start, end)
                if start < end:
                    prepared.entities.append(Entity(start, end, text[start:end], entity_type, score))
        prepared.units_before += len(units)

    @staticmethod
    def _entity_spans(prepared: _PreparedDocument, units: list[tuple[int, int]], probabilities: np.ndarray, slot: int,
                      closes: bool) -> list[tuple[int, int, float]]:
        """(start, end, score) of the entities of one type in these units (`decode_spans`' rule): an entity open
        from the part before goes on if the first unit is tagged I, and one reaching the last unit stays open
        unless the sentence ends here."""
        tags, chosen = _chosen_tags(probabilities)
        unit_spans = tag_spans([IOB_TAGS[tag] for tag in tags])
        spans = [(units[first][0], units[last - 1][1], chosen[first:last]) for first, last in unit_spans]
        held = prepared.open_entities.pop(slot, None)
        if held is not None and tags[0] == IOB_TAGS.index("I"):
            spans[0] = (held[0], spans[0][1], np.concatenate([held[2], spans[0][2]]))
        elif held is not None:
            spans.insert(0, held)
        if not closes and unit_spans and unit_spans[-1][1] == len(tags):
            prepared.open_entities[slot] = spans.pop()
        return [(start, end, float(scores.mean())) for start, end, scores in spans]

    def _annotated(self, prepared: _PreparedDocument) -> AnnotatedDocument:
        if prepared.error is not None:
            return AnnotatedDocument(prepared.document, (), prepared.error)
        order = {entity_type: index for index, entity_type in enumerate(self.entity_types)}
        entities = sorted(prepared.entities, key=lambda entity: (entity.start, entity.end, order[entity.entity_type]))
        if self.overlaps == "best":
            entities = resolve_overlaps(entities)
        word_tags = sorted(prepared.word_tags, key=lambda item: (item[0], order[item[1].entity_type[2:]]))
        return AnnotatedDocument(prepared.document, tuple(entities), word_tags=tuple(word_tags))


def _part(units: _UnitSpans, carried: list[Window], fresh: list[Window], first: int, last: int,
          closes: bool) -> _Sentence:
    """A part of a streamed sentence: units `first` to `last` decoded, from `fresh` and the `carried` windows."""
    windows = [*carried, *fresh]
    base = windows[0].first_unit
    top = max(last, *(window.last_unit for window in windows))
    return _Sentence(units.between(base, top), windows, fresh, base, (first - base, last - base), closes)


def _raw_chunks(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    """(start, end) of the chunks of a long sentence's text that `_raw_windows` tokenizes one at a time."""
    while end - start > 2 * SENTENCE_BATCH_CHARS:
        cut = _RAW_CUT.search(text, start + SENTENCE_BATCH_CHARS, start + 2 * SENTENCE_BATCH_CHARS)
        stop = cut.start() if cut else start + 2 * SENTENCE_BATCH_CHARS
        yield start, stop
        start = stop
    yield start, end


def _unit_tags(text: str, units: list[tuple[int, int]], probabilities: np.ndarray, entity_type: str, units_before: int):
    """(index, tag) of the units tagged B or I for one type (whitespace-only units skipped)."""
    tags = probabilities.argmax(-1)
    found = []
    for unit, tag in enumerate(tags.tolist()):
        start, end = trim_span(text, *units[unit])
        if tag and start < end:
            label = f"{IOB_TAGS[tag]}-{entity_type}"
            found.append((units_before + unit, Entity(start, end, text[start:end], label, float(probabilities[unit, tag]))))
    return found


def _sentence_probabilities(sentence: _Sentence, slot: int) -> np.ndarray:
    """(units, 3) O/B/I probabilities of a sentence's units for one type, each unit from its most central window."""
    if len(sentence.windows) == 1:
        return sentence.windows[0].probabilities[slot]
    ranges = [(window.first_unit - sentence.base, window.last_unit - sentence.base) for window in sentence.windows]
    result = np.empty((len(sentence.units), 3), dtype=np.float32)
    for unit, window_index in enumerate(most_central_window(ranges, len(sentence.units))):
        window = sentence.windows[window_index]
        result[unit] = window.probabilities[slot][unit + sentence.base - window.first_unit]
    return result


def _chosen_tags(probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each unit's most probable tag (0 O, 1 B, 2 I) and that tag's probability."""
    tags = probabilities.argmax(-1)
    return tags, probabilities[np.arange(len(tags)), tags]


def decode_spans(probabilities: np.ndarray) -> list[tuple[int, int, float]]:
    """(first, last, score) unit ranges of the entities in (units, 3) O/B/I probabilities.

    The tag of a unit is its most probable one; B starts an entity, I continues the previous one or
    starts one after O; the score is the mean probability of the chosen tags (the pipeline's rule).
    """
    tags, chosen = _chosen_tags(probabilities)
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



