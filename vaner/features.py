"""Corpora as `datasets` tables, and their tokenization for VANER.

The table schema is shared by every stage (corpus sentences and DBR samples alike), so it is
defined once here.

Tokenization (training, evaluation and annotation see identical rows): `windows_vaner.WordWindows` joins
a sentence's words with single spaces, tokenizes them with the tokenizer's special tokens, tags each word
from its first sub-token, and cuts a sentence longer than `max_length` sub-tokens into windows overlapping
by `stride`; each word is labelled and scored in its most central window only (`window_rows`).
`is_split_into_words` is not used, so raw text and corpus sentences that read the same tokenize the same.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from datasets import ClassLabel, Dataset, Features, List, Value

from windows_vaner import DEFAULT_STRIDE, Window, WordWindows, window_owners  # noqa: F401 (DEFAULT_STRIDE re-exported)

from .corpora import IOB_TAGS, Sentence, get_corpus_spec

logger = logging.getLogger(__name__)

IGNORE_INDEX = -100  # label of sub-tokens that are not scored (CrossEntropyLoss's ignore_index)
NO_WORD = -1  # word id of the positions that carry no word's tag
UNLIMITED = 1 << 30  # max_length None: a sentence is never cut

DATASET_FEATURES = Features(
    {
        "tokens": List(Value("string")),
        "ner_tags": List(ClassLabel(names=list(IOB_TAGS))),
        "entity_type": Value("string"),
        "source_corpus": Value("string"),
        # "sentence": a corpus sentence; "dbr": a Dense Bioentities Recognition sample.
        "sample_kind": Value("string"),
        # The knowledge-base entities a DBR sample was built from (empty for corpus sentences).
        "dbr_entities": List({"name": Value("string"), "entity_type": Value("string")}),
    }
)

# Model inputs, one row per window of a sentence. `word_ids` (word index in the whole sentence,
# NO_WORD for special tokens) and `sentence_index` (row of the source table) let evaluation map
# predictions back to the sentence's words; the collator leaves them out of the batch.
TOKENIZED_FEATURES = Features(
    {
        "input_ids": List(Value("int32")),
        "attention_mask": List(Value("int8")),
        "labels": List(Value("int64")),
        "entity_type_ids": Value("int64"),
        "dataset_ids": Value("int64"),
        "word_ids": List(Value("int32")),
        "sentence_index": Value("int64"),
    }
)

MODEL_INPUT_COLUMNS = ("input_ids", "attention_mask", "labels", "entity_type_ids", "dataset_ids")


def sentence_row(sentence: Sentence) -> dict:
    """One table row for a corpus sentence."""
    return {
        "tokens": list(sentence.tokens),
        "ner_tags": [IOB_TAGS.index(tag) for tag in sentence.tags],
        "entity_type": sentence.entity_type,
        "source_corpus": sentence.source_corpus,
        "sample_kind": "sentence",
        "dbr_entities": [],
    }


def sentences_to_dataset(sentences: Iterable[Sentence]) -> Dataset:
    """A `datasets.Dataset` with `DATASET_FEATURES` from corpus sentences."""
    return Dataset.from_list([sentence_row(sentence) for sentence in sentences], features=DATASET_FEATURES)


# --------------------------------------------------------------------------------------------
# Tokenization: windows_vaner.WordWindows, the annotation path's rule


def _label_ids(labels: Sequence[int | str], n_words: int) -> list[int]:
    if len(labels) != n_words:
        raise ValueError(f"{len(labels)} labels for {n_words} words")
    ids = []
    for label in labels:
        if isinstance(label, str):
            if label not in IOB_TAGS:
                raise ValueError(f"label {label!r} is not one of {IOB_TAGS}")
            ids.append(IOB_TAGS.index(label))
        else:
            if not 0 <= int(label) < len(IOB_TAGS):
                raise ValueError(f"label id {label!r} is not an index of {IOB_TAGS}")
            ids.append(int(label))
    return ids


def window_rows(windows: Sequence[Window], labels: Sequence[int | str] | None = None) -> list[dict]:
    """Model rows of one sentence's `WordWindows` windows: input_ids, attention_mask, word_ids and labels.

    Each word is scored once, in the window that owns it (`window_owners`, the most central one): there its
    tagged sub-token carries the word's index in `word_ids` and its label in `labels`; every other position has
    NO_WORD and IGNORE_INDEX. `labels` (IOB ids or "O"/"B"/"I", one per word) None gives labels None.
    """
    count = windows[-1].last_unit if windows else 0
    label_ids = None if labels is None else _label_ids(labels, count)
    owners = window_owners(windows, count)
    rows = []
    for index, window in enumerate(windows):
        word_ids = [NO_WORD] * len(window.input_ids)
        row_labels = [IGNORE_INDEX] * len(window.input_ids)
        for offset, position in enumerate(window.label_positions):
            word = window.first_unit + offset
            if position >= 0 and owners[word] == index:
                word_ids[position] = word
                if label_ids is not None:
                    row_labels[position] = label_ids[word]
        rows.append({"input_ids": list(window.input_ids), "attention_mask": [1] * len(window.input_ids),
                     "word_ids": word_ids, "labels": None if labels is None else row_labels})
    return rows


def tokenize_sentence(tokens: Sequence[str], tokenizer, labels: Sequence[int | str] | None = None,
                      max_length: int | None = None, stride: int | None = None) -> list[dict]:
    """The model rows (`window_rows`) of one sentence: one row, or overlapping windows when the sentence is
    longer than `max_length` sub-tokens (None: never cut)."""
    windows = WordWindows(tokenizer, max_length or UNLIMITED, stride).sentences([list(tokens)])[0]
    return window_rows(windows, labels)


def dataset_index(source_corpus: str, dataset_names: Sequence[str]) -> int:
    """Index of a corpus in the model's `dataset_names`, -1 when absent (instruction without a name).

    A registered corpus matches by its registry or display name ("ncbi-disease" = "NCBI-disease").
    """
    if source_corpus in dataset_names:
        return list(dataset_names).index(source_corpus)
    spec = get_corpus_spec(source_corpus)
    if spec is not None:
        for index, name in enumerate(dataset_names):
            other = get_corpus_spec(name)
            if other is not None and other.name == spec.name:
                return index
    return -1


def tokenize_dataset(
    dataset: Dataset,
    tokenizer,
    max_length: int | None,
    entity_types: Sequence[str],
    dataset_names: Sequence[str],
    stride: int | None = None,
) -> tuple[Dataset, int]:
    """Model inputs for a `DATASET_FEATURES` table, and the number of sentences split into windows.

    Columns: input_ids, attention_mask, labels, entity_type_ids (index in `entity_types`),
    dataset_ids (`dataset_index` of source_corpus in `dataset_names`; -1 when absent there and for DBR rows,
    which use the instruction without a dataset name), plus word_ids and sentence_index for mapping
    predictions back to words (`predictions_to_sentence_tags`). Rows are `window_rows` of `WordWindows`
    (`max_length` sub-tokens, None: never cut; windows overlapping by `stride`), as annotation cuts them.
    """
    windower = WordWindows(tokenizer, max_length or UNLIMITED, stride)
    entity_types = list(entity_types)
    dataset_names = list(dataset_names)
    columns = {name: [] for name in TOKENIZED_FEATURES}
    n_split = 0
    batch_size = 1000
    for batch_start in range(0, len(dataset), batch_size):
        batch = dataset[batch_start : batch_start + batch_size]
        batch_windows = windower.sentences(batch["tokens"])
        for offset in range(len(batch["tokens"])):
            row_index = batch_start + offset
            entity_type = batch["entity_type"][offset]
            if entity_type not in entity_types:
                raise ValueError(
                    f"row {row_index} ({batch['source_corpus'][offset]}): entity type {entity_type!r} is not one "
                    f"of the model's entity types {entity_types}"
                )
            source_corpus = batch["source_corpus"][offset]
            kind = batch["sample_kind"][offset] if "sample_kind" in batch else "sentence"
            dataset_id = -1 if kind == "dbr" else dataset_index(source_corpus, dataset_names)
            windows = window_rows(batch_windows[offset], batch["ner_tags"][offset])
            n_split += len(windows) > 1
            for window in windows:
                for column in ("input_ids", "attention_mask", "labels", "word_ids"):
                    columns[column].append(window[column])
                columns["entity_type_ids"].append(entity_types.index(entity_type))
                columns["dataset_ids"].append(dataset_id)
                columns["sentence_index"].append(row_index)
    if windower.cut_words:
        logger.warning("%d words longer than max_length=%d sub-tokens were cut after their first sub-tokens",
                       windower.cut_words, max_length)
    return Dataset.from_dict(columns, features=TOKENIZED_FEATURES), n_split


# --------------------------------------------------------------------------------------------
# Multi-type rows: one row per sentence, a label column per type (-100 where its corpus does not annotate it)


MULTI_TYPE_FEATURES = Features(
    {
        "input_ids": List(Value("int32")),
        "attention_mask": List(Value("int8")),
        "labels": List(List(Value("int64"))),  # (sub-tokens, types)
        "dataset_ids": Value("int64"),
        "word_ids": List(Value("int32")),
        "sentence_index": Value("int64"),  # the first table row merged into it
    }
)


@dataclass
class _MergedSentence:
    tokens: list[str]
    tags: dict[str, list[int]]  # entity type -> tag ids of the words
    corpora: list[str]
    first_row: int
    kind: str = "sentence"


def merge_type_rows(dataset: Dataset, entity_types: Sequence[str]) -> list[_MergedSentence]:
    """The rows of a `DATASET_FEATURES` table as multi-type sentences: rows with the same words and sample kind
    (BC5CDR-disease and BC5CDR-chem share their sentences) become one sentence tagged for each of their types,
    unless it already holds that type (duplicates within a corpus stay apart); a DBR sample is tagged for
    every type from the names it holds (`dbr_tags`)."""
    from .dbr import dbr_tags

    entity_types = list(entity_types)
    merged: list[_MergedSentence] = []
    by_words: dict[tuple, list[int]] = {}
    columns = dataset.select_columns([c for c in ("tokens", "ner_tags", "entity_type", "source_corpus", "sample_kind",
                                                   "dbr_entities") if c in dataset.column_names])
    for index, row in enumerate(columns):
        if row["entity_type"] not in entity_types:
            raise ValueError(f"row {index} ({row['source_corpus']}): entity type {row['entity_type']!r} is not one of "
                             f"the model's entity types {entity_types}")
        kind = row.get("sample_kind", "sentence")
        if kind == "dbr" and row.get("dbr_entities"):
            tags = {entity_type: dbr_tags(row["dbr_entities"], entity_type) for entity_type in entity_types}
            if tags[row["entity_type"]] != list(row["ner_tags"]):
                raise ValueError(f"row {index} ({row['source_corpus']}): its dbr_entities do not give its tags back")
            merged.append(_MergedSentence(list(row["tokens"]), tags, [row["source_corpus"]], index, kind))
            continue
        key = (kind, tuple(row["tokens"]))
        target = next((merged[i] for i in by_words.get(key, ()) if row["entity_type"] not in merged[i].tags), None)
        if target is None:
            by_words.setdefault(key, []).append(len(merged))
            target = _MergedSentence(list(row["tokens"]), {}, [], index, kind)
            merged.append(target)
        target.tags[row["entity_type"]] = list(row["ner_tags"])
        if row["source_corpus"] not in target.corpora:
            target.corpora.append(row["source_corpus"])
    return merged


def tokenize_multi_type_dataset(
    dataset: Dataset,
    tokenizer,
    max_length: int | None,
    entity_types: Sequence[str],
    dataset_names: Sequence[str],
    stride: int | None = None,
    seed: int = 0,
    unnamed_fraction: float = 0.0,
) -> Dataset:
    """Multi-type model inputs (`MULTI_TYPE_FEATURES`) of a `DATASET_FEATURES` table: `merge_type_rows`, then the
    rows of `WordWindows` as for `tokenize_dataset`, with labels (sub-tokens, `entity_types`) and -100 in the
    columns of types the sentence's corpus does not annotate. A sentence merged from two corpora names one of
    them in its instruction, drawn with `seed`, so that both names learn both types. `unnamed_fraction` of the
    corpus sentences (drawn with `seed`) name no corpus, so that the instruction without a name, which unseen
    corpora get, learns from running text and not from DBR name lists alone."""
    if not 0.0 <= unnamed_fraction <= 1.0:
        raise ValueError(f"unnamed_fraction must be within [0, 1], got {unnamed_fraction}")
    import random

    rng = random.Random(seed)
    sentences = merge_type_rows(dataset, entity_types)
    windower = WordWindows(tokenizer, max_length or UNLIMITED, stride)
    columns = {name: [] for name in MULTI_TYPE_FEATURES}
    missing = [IGNORE_INDEX] * len(entity_types)
    for batch_start in range(0, len(sentences), 1000):
        batch = sentences[batch_start : batch_start + 1000]
        for sentence, windows in zip(batch, windower.sentences([sentence.tokens for sentence in batch])):
            corpus = rng.choice(sentence.corpora)
            dataset_id = -1 if sentence.kind == "dbr" else dataset_index(corpus, dataset_names)
            if unnamed_fraction and dataset_id >= 0 and rng.random() < unnamed_fraction:
                dataset_id = -1
            word_labels = [[sentence.tags[t][word] if t in sentence.tags else IGNORE_INDEX for t in entity_types]
                           for word in range(len(sentence.tokens))]
            for window in window_rows(windows):
                columns["labels"].append([missing if word == NO_WORD else word_labels[word] for word in window["word_ids"]])
                for column in ("input_ids", "attention_mask", "word_ids"):
                    columns[column].append(window[column])
                columns["dataset_ids"].append(dataset_id)
                columns["sentence_index"].append(sentence.first_row)
    return Dataset.from_dict(columns, features=MULTI_TYPE_FEATURES)


# --------------------------------------------------------------------------------------------
# Batching


@dataclass
class VanerDataCollator:
    """Pads tokenized rows into a batch of LongTensors for the model (HF Trainer `data_collator`).

    input_ids are padded with the tokenizer's pad token, attention_mask with 0, labels with -100, on
    the tokenizer's padding side; entity_type_ids and dataset_ids are stacked. Other columns
    (word_ids, sentence_index) are left out.
    """

    tokenizer: Any
    pad_to_multiple_of: int | None = None

    def __call__(self, features: Sequence[dict]) -> dict:
        import torch

        pad_token_id = self.tokenizer.pad_token_id
        if pad_token_id is None:
            raise ValueError("the tokenizer has no pad token; set tokenizer.pad_token (e.g. to its eos token)")
        left = getattr(self.tokenizer, "padding_side", "right") == "left"
        length = max(len(feature["input_ids"]) for feature in features)
        if self.pad_to_multiple_of:
            length = -(-length // self.pad_to_multiple_of) * self.pad_to_multiple_of

        def pad(values, value):
            values = values.tolist() if hasattr(values, "tolist") else list(values)
            if values and isinstance(values[0], list):  # multi-type labels: a column per type
                value = [value] * len(values[0])
            padding = [value] * (length - len(values))
            return padding + values if left else values + padding

        def attention_mask(feature):
            mask = feature.get("attention_mask")
            return [1] * len(feature["input_ids"]) if mask is None else mask

        batch = {
            "input_ids": torch.tensor([pad(f["input_ids"], pad_token_id) for f in features], dtype=torch.long),
            "attention_mask": torch.tensor(
                [pad(attention_mask(f), 0) for f in features], dtype=torch.long
            ),
        }
        if all(feature.get("labels") is not None for feature in features):
            batch["labels"] = torch.tensor([pad(f["labels"], IGNORE_INDEX) for f in features], dtype=torch.long)
        for column in ("entity_type_ids", "dataset_ids"):
            if all(column in feature for feature in features):
                batch[column] = torch.tensor([int(f[column]) for f in features], dtype=torch.long)
        return batch


# --------------------------------------------------------------------------------------------
# Decoding


def _prediction_ids(predictions) -> np.ndarray:
    if hasattr(predictions, "detach"):
        predictions = predictions.detach().float().cpu().numpy()
    predictions = np.asarray(predictions)
    if predictions.ndim == 2:
        predictions = predictions.argmax(-1)
    if predictions.ndim != 1:
        raise ValueError(f"expected logits (sequence, labels) or label ids (sequence,), got shape {predictions.shape}")
    return predictions


def predictions_to_sentence_tags(
    predictions: Sequence,
    tokenized: Dataset,
    sentence_lengths: Sequence[int],
    padding_side: str = "right",
) -> list[list[str]]:
    """Word tags per source sentence from the predictions (logits or label ids, unpadded or padded on
    `padding_side`) of every row of a `tokenize_dataset` table: each word takes the prediction at its tagged
    sub-token in the window that owns it; words without one stay "O"."""
    if len(predictions) != len(tokenized):
        raise ValueError(f"{len(predictions)} prediction rows for {len(tokenized)} tokenized rows")
    tags = [["O"] * length for length in sentence_lengths]
    for row_predictions, word_ids, sentence_index in zip(
        predictions, tokenized["word_ids"], tokenized["sentence_index"]
    ):
        ids = _prediction_ids(row_predictions)
        if len(ids) < len(word_ids):
            raise ValueError(f"{len(ids)} predictions for {len(word_ids)} sub-tokens")
        if len(ids) > len(word_ids):
            ids = ids[len(ids) - len(word_ids) :] if padding_side == "left" else ids[: len(word_ids)]
        for prediction, word in zip(ids, word_ids):
            if word != NO_WORD:
                tags[sentence_index][word] = IOB_TAGS[int(prediction)]
    return tags
