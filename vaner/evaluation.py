"""Predicting word tags for corpus tables and scoring them per corpus, for evaluation and training."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import torch
from datasets import Dataset
from torch.utils.data import SequentialSampler
from tqdm.auto import tqdm
from transformers import Trainer

from windows_vaner import DEFAULT_MAX_LENGTH

from .corpora import IOB_TAGS
from .features import (
    IGNORE_INDEX,
    NO_WORD,
    VanerDataCollator,
    predictions_to_sentence_tags,
    tokenize_dataset,
)
from .metrics import corpus_scores


def predict_sentence_tags(
    model,
    tokenizer,
    dataset: Dataset,
    batch_size: int = 32,
    max_length: int | None = DEFAULT_MAX_LENGTH,
    use_dataset_names: bool = True,
    progress: bool = True,
    stride: int | None = None,
) -> tuple[list[list[str]], int]:
    """"O"/"B"/"I" word tags for every row of a `DATASET_FEATURES` table, each row asking for its own
    entity type; with `use_dataset_names` the instruction names the row's corpus when the model knows
    it (VANER), else no dataset (VANER_adapt). Also returns how many sentences were split into windows.

    Sentences longer than `max_length` sub-tokens run in windows overlapping by `stride`, each word tagged
    from its most central window, as the annotation path does. Rows are run in batches sorted by length, so
    padding stays small.
    """
    dataset_names = model.config.dataset_names if use_dataset_names else []
    tokenized, split_count = tokenize_dataset(dataset, tokenizer, max_length, model.config.entity_types, dataset_names,
                                                stride)
    collator = VanerDataCollator(tokenizer)
    order = np.argsort([len(ids) for ids in tokenized["input_ids"]], kind="stable")
    columns = ("input_ids", "attention_mask", "entity_type_ids", "dataset_ids")
    rows = tokenized.select_columns(list(columns))
    device = next(model.parameters()).device
    predictions: list[np.ndarray | None] = [None] * len(tokenized)
    batches = range(0, len(order), batch_size)
    with torch.inference_mode():
        for start in tqdm(batches, desc="Predicting", unit="batch", disable=not progress):
            indices = order[start : start + batch_size].tolist()
            batch = collator([rows[index] for index in indices])
            logits = model(**{name: tensor.to(device) for name, tensor in batch.items()}).logits
            label_ids = logits.argmax(-1).cpu().numpy()
            mask = batch["attention_mask"].numpy().astype(bool)
            for row, index in enumerate(indices):
                predictions[index] = label_ids[row][mask[row]]
    lengths = [len(tokens) for tokens in dataset["tokens"]]
    return predictions_to_sentence_tags(predictions, tokenized, lengths), split_count


def score_by_corpus(dataset: Dataset, predicted_tags: Sequence[Sequence[str]]) -> dict:
    """Strict span P/R/F1 per `source_corpus` of the table and the macro average (see vaner.metrics)."""
    per_corpus = defaultdict(lambda: ([], []))
    for gold, predicted, corpus in zip(dataset["ner_tags"], predicted_tags, dataset["source_corpus"]):
        per_corpus[corpus][0].append([IOB_TAGS[tag] for tag in gold])
        per_corpus[corpus][1].append(list(predicted))
    return corpus_scores(dict(per_corpus))


def trainer_metrics(sentences: Dataset, tokenized: Dataset):
    """A `compute_metrics` for the HF Trainer that scores what `predict_sentence_tags` + `score_by_corpus`
    would: each evaluated row's first-sub-token predictions (the positions whose label is not -100) go
    back to its words, windows are stitched into their sentences of `sentences`, and every sentence is
    scored under its own `source_corpus`. `tokenized` is the `tokenize_dataset` table of `sentences`
    whose rows were evaluated, in the order the Trainer returns them.

    Rows are matched by position, so the evaluation must keep that order (`SequentialEvaluationTrainer`);
    each row's gold labels are checked against its sentence, so a reordering is an error, not a wrong score.
    Returns flat keys: macro_f1, macro_precision, macro_recall and {corpus}_f1."""
    sentence_indices = tokenized["sentence_index"]
    row_words = [[word for word in word_ids if word != NO_WORD] for word_ids in tokenized["word_ids"]]
    gold = sentences["ner_tags"]

    def compute_metrics(evaluation) -> dict:
        predictions, labels = evaluation.predictions, evaluation.label_ids
        if predictions.ndim == 3:
            predictions = predictions.argmax(-1)
        if len(predictions) != len(row_words):
            raise ValueError(f"{len(predictions)} evaluated rows for {len(row_words)} tokenized validation rows")
        tags = [["O"] * len(tags) for tags in gold]
        for row, (row_predictions, row_labels) in enumerate(zip(predictions, labels)):
            scored = row_labels != IGNORE_INDEX
            sentence, words = sentence_indices[row], row_words[row]
            if [gold[sentence][word] for word in words] != row_labels[scored].tolist():
                raise ValueError(
                    f"evaluation row {row} does not hold the labels of validation sentence {sentence}: the "
                    "evaluation changed the row order, so its scores cannot be attributed to corpora"
                )
            for word, label in zip(words, row_predictions[scored]):
                tags[sentence][word] = IOB_TAGS[int(label)]
        scores = score_by_corpus(sentences, tags)
        flat = {f"macro_{key}": scores["macro"][key] for key in ("precision", "recall", "f1")}
        flat.update({f"{corpus}_f1": corpus_scores_["f1"] for corpus, corpus_scores_ in scores["corpora"].items()})
        return flat

    return compute_metrics


class SequentialEvaluationTrainer(Trainer):
    """A `Trainer` whose evaluation keeps the rows in order even when training batches are grouped by
    length (`train_sampling_strategy="group_by_length"` also reorders evaluation in transformers 5.x),
    so that `trainer_metrics` can give each prediction its sentence and corpus."""

    def _get_eval_sampler(self, eval_dataset):
        if self.args.train_sampling_strategy != "group_by_length":
            return super()._get_eval_sampler(eval_dataset)
        return SequentialSampler(eval_dataset)


def argmax_logits(logits, labels):
    """`preprocess_logits_for_metrics`: keep label ids, not logits, across evaluation batches."""
    return logits.argmax(-1)
