"""Predicting word tags for corpus tables and scoring them per corpus, for evaluation and training."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import torch
from datasets import Dataset
from tqdm.auto import tqdm

from .corpora import IOB_TAGS
from .features import IGNORE_INDEX, VanerDataCollator, predictions_to_sentence_tags, tokenize_dataset
from .metrics import corpus_scores


def predict_sentence_tags(
    model,
    tokenizer,
    dataset: Dataset,
    batch_size: int = 32,
    max_length: int | None = 128,
    use_dataset_names: bool = True,
    progress: bool = True,
) -> tuple[list[list[str]], int]:
    """"O"/"B"/"I" word tags for every row of a `DATASET_FEATURES` table, each row asking for its own
    entity type; with `use_dataset_names` the instruction names the row's corpus when the model knows
    it (VANER), else no dataset (VANER_adapt). Also returns how many sentences were split into windows.

    Rows are run in batches sorted by length, so padding stays small.
    """
    dataset_names = model.config.dataset_names if use_dataset_names else []
    tokenized, split_count = tokenize_dataset(dataset, tokenizer, max_length, model.config.entity_types, dataset_names)
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


def trainer_metrics(source_corpora: Sequence[str]):
    """A `compute_metrics` for the HF Trainer: per-corpus strict F1 on the words' first sub-tokens (the
    positions whose label is not -100) of each evaluated row, `source_corpora[row]` naming its corpus.
    Returns flat keys: macro_f1, macro_precision, macro_recall and {corpus}_f1."""

    def compute_metrics(evaluation) -> dict:
        predictions, labels = evaluation.predictions, evaluation.label_ids
        if predictions.ndim == 3:
            predictions = predictions.argmax(-1)
        per_corpus = defaultdict(lambda: ([], []))
        for row_predictions, row_labels, corpus in zip(predictions, labels, source_corpora):
            scored = row_labels != IGNORE_INDEX
            per_corpus[corpus][0].append([IOB_TAGS[tag] for tag in row_labels[scored]])
            per_corpus[corpus][1].append([IOB_TAGS[tag] for tag in row_predictions[scored]])
        scores = corpus_scores(dict(per_corpus))
        flat = {f"macro_{key}": scores["macro"][key] for key in ("precision", "recall", "f1")}
        flat.update({f"{corpus}_f1": corpus_scores_["f1"] for corpus, corpus_scores_ in scores["corpora"].items()})
        return flat

    return compute_metrics


def argmax_logits(logits, labels):
    """`preprocess_logits_for_metrics`: keep label ids, not logits, across evaluation batches."""
    return logits.argmax(-1)
