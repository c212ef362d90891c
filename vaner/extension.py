"""Extending a trained one-pass (multi-type) model with new entity types, without forgetting the known ones.

- `grown_head`: the head gains O/B/I columns for the new types, started from the mean of the known types'
  columns (a prior for "some entity" rather than noise); the known columns are kept as they are, and the model
  keeps its instruction (`VanerConfig.instruction_types`), so the known types' outputs are unchanged at step 0.
- Distillation (ExtendNER-style, `teacher_soft_labels` + `soft_target_loss`): the user's documents annotate the
  new types only, so the known types' columns of their rows would teach nothing (the partial-label loss) and
  drift; instead they learn the starting model's own O/B/I probabilities on the same words. This needs no access
  to the data the model was trained on, which a user of a shipped model does not have.
- Replay (`replay_rows`): rows of the original training mixture (build_dbr_dataset.py's DatasetDict) mixed in
  with their own gold labels, where that mixture is at hand.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset, List, Value
from tqdm.auto import tqdm

from .evaluation import SequentialEvaluationTrainer
from .features import IGNORE_INDEX, NO_WORD, VanerDataCollator

logger = logging.getLogger(__name__)

IOB_COUNT = 3
SOFT_LABELS = "soft_labels"  # per row: (sub-tokens, head types, O/B/I) target probabilities, zeros where none
SOFT_LABEL_FEATURE = List(List(List(Value("float32"))))


def grown_head(tensor: torch.Tensor, known_count: int, new_count: int) -> torch.Tensor:
    """A multi-type head's weight or bias (O/B/I rows per type) for `known_count + new_count` types: the known
    types' rows as they are, each new type's the mean of the known types' O, B and I rows."""
    per_type = tensor.reshape(known_count, IOB_COUNT, *tensor.shape[1:])
    mean = per_type.mean(0, keepdim=True).expand(new_count, *per_type.shape[1:])
    return torch.cat([per_type, mean]).reshape(-1, *tensor.shape[1:]).contiguous()


def teacher_soft_labels(teacher, rows: Dataset, tokenizer, head_types: list[str], distilled_types: list[str],
                        batch_size: int = 32, progress: bool = True) -> list[list]:
    """The `SOFT_LABELS` of multi-type training rows: the teacher's O/B/I probabilities for `distilled_types`
    at each tagged word position whose label is -100 there (a type the row's source does not annotate); zeros
    elsewhere. The teacher runs on the rows' own sub-tokens with the instruction that names no corpus, asking
    every type it knows (one pass per window, or one per type for a per-type teacher)."""
    served = list(teacher.config.entity_types)
    pairs = [(head_types.index(t), served.index(t)) for t in distilled_types]
    collator = VanerDataCollator(tokenizer)
    left = getattr(tokenizer, "padding_side", "right") == "left"
    device = next(teacher.parameters()).device
    order = np.argsort([len(ids) for ids in rows["input_ids"]], kind="stable")
    inputs = rows.select_columns(["input_ids", "attention_mask"])
    soft: list[list | None] = [None] * len(rows)
    started = time.perf_counter()
    with torch.inference_mode():
        for start in tqdm(range(0, len(order), batch_size), desc="Teacher tags", unit="batch", disable=not progress):
            indices = order[start: start + batch_size].tolist()
            batch = collator([inputs[index] for index in indices])
            logits = teacher(input_ids=batch["input_ids"].to(device),
                             attention_mask=batch["attention_mask"].to(device)).logits.float().cpu()
            for row, index in enumerate(indices):
                length = len(inputs[index]["input_ids"])
                row_logits = logits[row, logits.shape[1] - length:] if left else logits[row, :length]
                soft[index] = _row_soft_labels(row_logits, rows[index]["word_ids"], rows[index]["labels"],
                                               len(head_types), pairs)
    logger.info("teacher tags for %s on %d rows in %.0f s", ", ".join(distilled_types), len(rows),
                time.perf_counter() - started)
    return soft


def _row_soft_labels(typed_logits: torch.Tensor, word_ids, labels, type_count: int, pairs) -> list:
    """One row's soft labels (sub-tokens, head types, 3) from the teacher's typed logits over O (0), B-T, I-T of
    each served type: its probabilities where the position tags a word and the row has no label for the type."""
    per_type = typed_logits[:, 1:].reshape(len(typed_logits), -1, 2)  # (sub-tokens, served types, B/I)
    probabilities = torch.cat([torch.zeros_like(per_type[..., :1]), per_type], -1).softmax(-1).numpy()
    soft = np.zeros((len(word_ids), type_count, IOB_COUNT), dtype=np.float32)
    tagged = np.asarray(word_ids) != NO_WORD
    labels = np.asarray(labels)
    for head_column, served_column in pairs:
        where = tagged & (labels[:, head_column] == IGNORE_INDEX)
        soft[where, head_column] = probabilities[where, served_column]
    return soft.tolist()


def with_soft_labels(rows: Dataset, soft: list[list] | None) -> Dataset:
    """`rows` with a `SOFT_LABELS` column (`soft`, or empty lists: no targets)."""
    values = soft if soft is not None else [[] for _ in range(len(rows))]
    return rows.add_column(SOFT_LABELS, values, feature=SOFT_LABEL_FEATURE)


def soft_target_loss(logits: torch.Tensor, labels: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of multi-type O/B/I logits (batch, sequence, types, 3) against a target per (token, type):
    the gold label where there is one (-100: none), else the teacher's probabilities where there are any; the
    mean over every (token, type) with a target. Without teacher targets this is the partial-label loss."""
    targets = soft.float().clone()
    gold = labels >= 0
    targets[gold] = torch.nn.functional.one_hot(labels[gold], IOB_COUNT).float()
    scored = targets.sum(-1) > 0
    per_entry = -(targets * logits.float().log_softmax(-1)).sum(-1)
    return per_entry[scored].mean()


@dataclass
class SoftLabelCollator(VanerDataCollator):
    """`VanerDataCollator` that also pads `SOFT_LABELS` (zeros: no target) when the rows carry them."""

    def __call__(self, features):
        batch = super().__call__([{k: v for k, v in f.items() if k != SOFT_LABELS} for f in features])
        if all(SOFT_LABELS in feature for feature in features) and "labels" in batch:
            shape = (*batch["labels"].shape, IOB_COUNT)
            soft = torch.zeros(shape)
            left = getattr(self.tokenizer, "padding_side", "right") == "left"
            for row, feature in enumerate(features):
                values = feature[SOFT_LABELS]
                if len(values):
                    values = torch.as_tensor(np.asarray(values, dtype=np.float32))
                    if left:
                        soft[row, shape[1] - len(values):] = values
                    else:
                        soft[row, : len(values)] = values
            batch[SOFT_LABELS] = soft
        return batch


class DistillationTrainer(SequentialEvaluationTrainer):
    """A Trainer whose training loss is `soft_target_loss` where the batch carries teacher targets."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        soft = inputs.pop(SOFT_LABELS, None)
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch)
        if soft is not None and outputs.logits.dim() == 4:
            loss = soft_target_loss(outputs.logits, inputs["labels"], soft)
        return (loss, outputs) if return_outputs else loss


def replay_rows(mixture_path: str, fraction: float, own_rows: int, seed: int) -> Dataset:
    """Rows of a training mixture's train split (build_dbr_dataset.py's folder) to mix with `own_rows` rows of
    documents so that they make `fraction` of the training rows (all of them where it has fewer)."""
    from datasets import load_dataset, load_from_disk

    if not 0 < fraction < 1:
        raise ValueError(f"--replay_fraction {fraction}: a share of the training rows, between 0 and 1")
    path = Path(mixture_path)
    mixture = load_from_disk(str(path)) if (path / "dataset_dict.json").is_file() else load_dataset(mixture_path)
    if "train" not in mixture:
        raise ValueError(f"--replay_dataset {mixture_path}: no train split (splits: {list(mixture)})")
    wanted = min(len(mixture["train"]), round(own_rows * fraction / (1 - fraction)))
    return mixture["train"].shuffle(seed=seed).select(range(wanted))


def timed_probe(model, rows: Dataset, collator, batch_size: int, steps: int = 2, seed: int = 0) -> float:
    """Seconds per training step (forward and backward of a batch of `batch_size` random rows), from `steps`
    steps after one to warm up; gradients are cleared and random number generators restored afterwards, so
    training goes on as if the probe had not run."""
    rng = np.random.default_rng(seed)
    device = next(model.parameters()).device
    model.train()
    seconds = []
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        for _ in range(steps + 1):
            indices = rng.choice(len(rows), size=min(batch_size, len(rows)), replace=False).tolist()
            batch = collator([rows[index] for index in indices])
            batch.pop(SOFT_LABELS, None)
            started = time.perf_counter()
            model(**{name: tensor.to(device) for name, tensor in batch.items()}).loss.backward()
            seconds.append(time.perf_counter() - started)
    model.zero_grad(set_to_none=True)
    return float(np.mean(seconds[1:]))


__all__ = ["DistillationTrainer", "SOFT_LABELS", "SoftLabelCollator", "grown_head", "replay_rows",
           "soft_target_loss", "teacher_soft_labels", "timed_probe", "with_soft_labels"]
