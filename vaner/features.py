"""Corpora as `datasets` tables, and their tokenization for VANER.

The table schema is shared by every stage (corpus sentences and DBR samples alike), so it is
defined once here.

Tokenization rule (training, evaluation and raw-text annotation must see identical tokens): a
sentence's words are joined with single spaces, the text is tokenized by a fast tokenizer with its
default special tokens and `return_offsets_mapping=True`, and each sub-token is mapped to the word
its characters fall in. The first sub-token of a word carries the word's label; other sub-tokens and
special tokens get -100. `is_split_into_words` is not used, so raw text and corpus sentences that
read the same tokenize the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from datasets import ClassLabel, Dataset, Features, List, Value

from .corpora import IOB_TAGS, Sentence, get_corpus_spec

SAMPLE_KINDS = ("sentence", "dbr")

IGNORE_INDEX = -100  # label of sub-tokens that are not scored (CrossEntropyLoss's ignore_index)
NO_WORD = -1  # word id stored in tables for special tokens and whitespace

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
# Tokenization


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


def _check_fast(tokenizer) -> None:
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(
            f"{type(tokenizer).__name__} is not a fast tokenizer; VANER maps sub-tokens to words by character offsets"
        )


def _word_ids_from_offsets(tokens: Sequence[str], offsets: Sequence[tuple[int, int]]) -> list[int | None]:
    """The word of each sub-token: the word of its first non-separator character, None for none."""
    character_word = []
    for word_index, token in enumerate(tokens):
        if word_index:
            character_word.append(None)  # the separating space
        character_word.extend([word_index] * len(token))
    word_ids: list[int | None] = []
    for start, end in offsets:
        word = None
        for position in range(start, min(end, len(character_word))):
            if character_word[position] is not None:
                word = character_word[position]
                break
        word_ids.append(word)
    return word_ids


def _align(tokens, input_ids, offsets, labels, word_offset=0) -> dict:
    word_ids = _word_ids_from_offsets(tokens, offsets)
    aligned_labels = None
    if labels is not None:
        label_ids = _label_ids(labels, len(tokens))
        aligned_labels = []
        seen = set()
        for word in word_ids:
            if word is None or word in seen:
                aligned_labels.append(IGNORE_INDEX)
            else:
                seen.add(word)
                aligned_labels.append(label_ids[word])
    return {
        "input_ids": list(input_ids),
        "attention_mask": [1] * len(input_ids),
        "word_ids": [None if word is None else word + word_offset for word in word_ids],
        "labels": aligned_labels,
    }


def tokenize_sentence(tokens: Sequence[str], tokenizer, labels: Sequence[int | str] | None = None) -> dict:
    """Tokenize one sentence by the module's rule.

    Returns input_ids, attention_mask, word_ids (word index per sub-token, None for special tokens
    and whitespace) and labels (the word's label id on its first sub-token, -100 elsewhere; None when
    `labels` is None). `labels` are IOB label ids or "O"/"B"/"I".
    """
    _check_fast(tokenizer)
    tokens = list(tokens)
    encoding = tokenizer(" ".join(tokens), return_offsets_mapping=True)
    return _align(tokens, encoding["input_ids"], encoding["offset_mapping"], labels)


def tokenize_sentence_windows(
    tokens: Sequence[str],
    tokenizer,
    max_length: int | None,
    labels: Sequence[int | str] | None = None,
    _encoding: dict | None = None,
) -> list[dict]:
    """`tokenize_sentence`, split into windows of whole words when it exceeds `max_length` sub-tokens.

    Each window is the tokenization of its own words (the same rule), with `word_ids` counted in the
    whole sentence, so predictions of all windows map back onto the sentence. Windows end before an
    `I` word where they can, so that entities stay whole. A single word longer than the limit is an
    error: the limit is never met by silent truncation.
    """
    tokens = list(tokens)
    whole = _encoding if _encoding is not None else tokenize_sentence(tokens, tokenizer, labels)
    if max_length is None or len(whole["input_ids"]) <= max_length:
        return [whole]
    label_ids = _label_ids(labels, len(tokens)) if labels is not None else None
    # Sub-tokens per word, counting whitespace-only sub-tokens with the word they precede; the
    # sub-tokens before the first word and after the last (special tokens) come with every window.
    sub_tokens_per_word = [0] * len(tokens)
    pending_whitespace = 0
    for word in whole["word_ids"]:
        if word is None:
            pending_whitespace += 1
        else:
            sub_tokens_per_word[word] += 1 + (pending_whitespace if word > 0 else 0)
            pending_whitespace = 0
    n_other = len(whole["input_ids"]) - sum(sub_tokens_per_word)
    windows = []
    start = 0
    while start < len(tokens):
        end, used = start, n_other
        while end < len(tokens) and used + sub_tokens_per_word[end] <= max_length:
            used += sub_tokens_per_word[end]
            end += 1
        if end < len(tokens) and label_ids is not None:
            # Prefer ending before the first word of an entity (or an O) to cutting an entity.
            for candidate in range(end, start, -1):
                if label_ids[candidate] != IOB_TAGS.index("I"):
                    end = candidate
                    break
        while True:
            if end == start:
                raise ValueError(
                    f"word {tokens[start]!r} alone needs more than max_length={max_length} sub-tokens; "
                    "raise max_length"
                )
            window = _align_window(tokens, start, end, tokenizer, label_ids)
            if len(window["input_ids"]) <= max_length:
                break
            end -= 1  # merges across the new window edge can differ from the whole sentence's
        windows.append(window)
        start = end
    return windows


def _align_window(tokens, start, end, tokenizer, label_ids) -> dict:
    window_tokens = tokens[start:end]
    encoding = tokenizer(" ".join(window_tokens), return_offsets_mapping=True)
    window_labels = None if label_ids is None else label_ids[start:end]
    return _align(window_tokens, encoding["input_ids"], encoding["offset_mapping"], window_labels, start)


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
) -> tuple[Dataset, int]:
    """Model inputs for a `DATASET_FEATURES` table, and the number of sentences split into windows.

    Columns: input_ids, attention_mask, labels, entity_type_ids (index in `entity_types`),
    dataset_ids (`dataset_index` of source_corpus in `dataset_names`; -1 when absent there and for DBR rows,
    which use the instruction without a dataset name), plus word_ids and sentence_index for mapping
    predictions back to words (`predictions_to_sentence_tags`).
    """
    _check_fast(tokenizer)
    entity_types = list(entity_types)
    dataset_names = list(dataset_names)
    columns = {name: [] for name in TOKENIZED_FEATURES}
    n_split = 0
    batch_size = 1000
    for batch_start in range(0, len(dataset), batch_size):
        batch = dataset[batch_start : batch_start + batch_size]
        encodings = tokenizer([" ".join(tokens) for tokens in batch["tokens"]], return_offsets_mapping=True)
        for offset, tokens in enumerate(batch["tokens"]):
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
            labels = batch["ner_tags"][offset]
            whole = _align(tokens, encodings["input_ids"][offset], encodings["offset_mapping"][offset], labels)
            windows = tokenize_sentence_windows(tokens, tokenizer, max_length, labels, _encoding=whole)
            n_split += len(windows) > 1
            for window in windows:
                columns["input_ids"].append(window["input_ids"])
                columns["attention_mask"].append(window["attention_mask"])
                columns["labels"].append(window["labels"])
                columns["word_ids"].append([NO_WORD if word is None else word for word in window["word_ids"]])
                columns["entity_type_ids"].append(entity_types.index(entity_type))
                columns["dataset_ids"].append(dataset_id)
                columns["sentence_index"].append(row_index)
    return Dataset.from_dict(columns, features=TOKENIZED_FEATURES), n_split


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


def predictions_to_word_tags(
    predictions,
    word_ids: Sequence[int | None],
    n_words: int | None = None,
    padding_side: str = "right",
) -> list[str]:
    """Word-level "O"/"B"/"I" tags from one row's sub-token logits or label ids: each word takes the
    prediction of its first sub-token. Rows longer than `word_ids` (padded) are cut on `padding_side`.
    Words with no sub-token (possible when a tokenizer drops a word's characters) get "O".
    """
    ids = _prediction_ids(predictions)
    if len(ids) < len(word_ids):
        raise ValueError(f"{len(ids)} predictions for {len(word_ids)} sub-tokens")
    if len(ids) > len(word_ids):
        ids = ids[len(ids) - len(word_ids) :] if padding_side == "left" else ids[: len(word_ids)]
    words = [word for word in word_ids if word is not None and word != NO_WORD]
    if n_words is None:
        n_words = max(words) + 1 if words else 0
    tags = ["O"] * n_words
    seen = set()
    for prediction, word in zip(ids, word_ids):
        if word is None or word == NO_WORD or word in seen:
            continue
        seen.add(word)
        tags[word] = IOB_TAGS[int(prediction)]
    return tags


def predictions_to_sentence_tags(
    predictions: Sequence,
    tokenized: Dataset,
    sentence_lengths: Sequence[int],
    padding_side: str = "right",
) -> list[list[str]]:
    """Word tags per source sentence from the predictions of every row of a `tokenize_dataset` table
    (windows of one sentence are stitched back together)."""
    if len(predictions) != len(tokenized):
        raise ValueError(f"{len(predictions)} prediction rows for {len(tokenized)} tokenized rows")
    tags = [["O"] * length for length in sentence_lengths]
    for row_predictions, word_ids, sentence_index in zip(
        predictions, tokenized["word_ids"], tokenized["sentence_index"]
    ):
        row_tags = predictions_to_word_tags(row_predictions, word_ids, sentence_lengths[sentence_index], padding_side)
        covered = {word for word in word_ids if word != NO_WORD}
        for word in covered:
            tags[sentence_index][word] = row_tags[word]
    return tags
