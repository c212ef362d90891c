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
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

logger = logging.getLogger(__name__)

try:  # as remote code (a package built by transformers)
    from .text_vaner import (
        IOB_TAGS,
        AnnotatedDocument,
        Document,
        Entity,
        document_sentences,
        tag_spans,
        tokenize_with_offsets,
        trim_span,
    )
    from .windows_vaner import DEFAULT_MAX_LENGTH, Window, WordWindows, plan_windows, window_owners
except ImportError:  # imported from the project root
    from text_vaner import (
        IOB_TAGS,
        AnnotatedDocument,
        Document,
        Entity,
        document_sentences,
        tag_spans,
        tokenize_with_offsets,
        trim_span,
    )
    from windows_vaner import DEFAULT_MAX_LENGTH, Window, WordWindows, plan_windows, window_owners

TOKENIZATIONS = ("words", "raw")
OVERLAP_POLICIES = ("keep", "best")


def dataset_index(dataset_name: str, dataset_names: Sequence[str]) -> int:
    """Index of a dataset name in the model's `dataset_names` (any case), -1 when absent."""
    lowered = [name.lower() for name in dataset_names]
    return lowered.index(dataset_name.lower()) if dataset_name.lower() in lowered else -1


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
        max_length: int = DEFAULT_MAX_LENGTH,
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
                    start, end = trim_span(text, sentence.units[first][0], sentence.units[last - 1][1])
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
        start, end = trim_span(text, *sentence.units[unit])
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



