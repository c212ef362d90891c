"""Strict entity-level precision, recall and F1 (the protocol of the VANER paper's Table 1).

An entity counts as found only when its type, first and last word all equal a gold entity's. Scores
are micro-averaged within a corpus (entity counts summed over its sentences) and macro-averaged
over corpora (the mean of the per-corpus figures), as BioBERT, PubMedBERT and VANER report them.

I- without B-: a tag `I-X` that does not continue an X entity (after `O`, or after another type)
starts a new entity, as in conlleval and seqeval's default mode. seqeval's strict IOB2 mode instead
drops such a tag, so a model emitting `O I I` would score a miss there and a hit here. We follow
conlleval because it is what the literature's figures were computed with and it does not punish a
tagger for a B/I confusion on an otherwise exact span. On valid IOB2 sequences the two modes agree,
and tests/test_metrics.py checks both equalities on random sequences.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .corpora import IOB_TAGS, iob_spans


def _as_tag(tag) -> str:
    return tag if isinstance(tag, str) else IOB_TAGS[int(tag)]


def entity_spans(tags: Sequence) -> set[tuple[str, int, int]]:
    """The entities of one tag sequence as (type, start, end) with end exclusive.

    Tags are typed ("B-Disease") or untyped ("B", or the label ids 0/1/2 of "O"/"B"/"I").
    """
    return set(iob_spans([_as_tag(tag) for tag in tags]))


def _ratios(n_gold: int, n_pred: int, n_correct: int) -> dict:
    # An empty denominator scores 0, as seqeval's default does.
    precision = n_correct / n_pred if n_pred else 0.0
    recall = n_correct / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def span_scores(gold_sequences: Sequence[Sequence], predicted_sequences: Sequence[Sequence]) -> dict:
    """Micro P/R/F1 over a corpus: {precision, recall, f1, n_gold, n_pred, n_correct}."""
    if len(gold_sequences) != len(predicted_sequences):
        raise ValueError(f"{len(gold_sequences)} gold sentences but {len(predicted_sequences)} predicted")
    n_gold = n_pred = n_correct = 0
    for index, (gold, predicted) in enumerate(zip(gold_sequences, predicted_sequences)):
        if len(gold) != len(predicted):
            raise ValueError(f"sentence {index}: {len(gold)} gold tags but {len(predicted)} predicted")
        gold_spans, predicted_spans = entity_spans(gold), entity_spans(predicted)
        n_gold += len(gold_spans)
        n_pred += len(predicted_spans)
        n_correct += len(gold_spans & predicted_spans)
    return {**_ratios(n_gold, n_pred, n_correct), "n_gold": n_gold, "n_pred": n_pred, "n_correct": n_correct}


def corpus_scores(per_corpus: Mapping[str, tuple[Sequence[Sequence], Sequence[Sequence]]]) -> dict:
    """Scores per corpus and their macro average.

    `per_corpus` maps a corpus name to (gold tag sequences, predicted tag sequences). Returns
    {"corpora": {name: span_scores(...)}, "macro": {precision, recall, f1, n_corpora}}, where each
    macro figure is the mean of the corpora's figures (macro F1 is the mean F1, as in Table 1).
    """
    corpora = {name: span_scores(gold, predicted) for name, (gold, predicted) in per_corpus.items()}
    n_corpora = len(corpora)
    macro = {
        key: (sum(scores[key] for scores in corpora.values()) / n_corpora if n_corpora else 0.0)
        for key in ("precision", "recall", "f1")
    }
    macro["n_corpora"] = n_corpora
    return {"corpora": corpora, "macro": macro}
