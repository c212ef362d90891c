"""Strict span-level P/R/F1: equal to seqeval on random sequences, conlleval on hand-made cases."""

import random
import warnings

import pytest
from seqeval.metrics import f1_score, precision_score, recall_score
from seqeval.metrics.sequence_labeling import get_entities
from seqeval.scheme import IOB2

from vaner.corpora import repair_iob2
from vaner.metrics import corpus_scores, entity_spans, span_scores

TYPES = ("Disease", "Chemical")


def random_sequence(rng: random.Random, length: int, valid: bool) -> list[str]:
    """A random typed tag sequence; `valid` keeps it IOB2 (no I- that does not continue its type)."""
    tags = []
    for _ in range(length):
        tag = rng.choice(["O", "O", "B", "I"])
        if tag != "O":
            tag = f"{tag}-{rng.choice(TYPES)}"
        tags.append(tag)
    return list(repair_iob2(tags)[0]) if valid else tags


def seqeval_scores(gold, predicted, **mode) -> tuple[float, float, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # seqeval warns when a denominator is zero, then scores 0
        return (
            precision_score(gold, predicted, **mode),
            recall_score(gold, predicted, **mode),
            f1_score(gold, predicted, **mode),
        )


def ours(gold, predicted) -> tuple[float, float, float]:
    scores = span_scores(gold, predicted)
    return scores["precision"], scores["recall"], scores["f1"]


@pytest.mark.parametrize("valid", [True, False])
def test_equals_seqeval_on_1000_random_sequences(valid):
    """Valid IOB2: equal to seqeval's strict IOB2 mode. Any sequence: equal to seqeval's default
    (conlleval) mode, and to strict mode on the IOB2-repaired sequences."""
    rng = random.Random(1234 + valid)
    lengths = [rng.randint(1, 12) for _ in range(1000)]
    gold = [random_sequence(rng, length, valid=True) for length in lengths]
    predicted = [random_sequence(rng, length, valid=valid) for length in lengths]
    strict = {"mode": "strict", "scheme": IOB2}
    repaired = [list(repair_iob2(tags)[0]) for tags in predicted]
    if valid:
        assert repaired == predicted
    else:
        assert repaired != predicted  # the random set does exercise I-without-B
    # Per sequence, then over the whole set (micro).
    for g, p, r in zip(gold, predicted, repaired):
        assert ours([g], [p]) == pytest.approx(seqeval_scores([g], [p]))
        assert ours([g], [p]) == pytest.approx(seqeval_scores([g], [r], **strict))
    assert ours(gold, predicted) == pytest.approx(seqeval_scores(gold, predicted))
    assert ours(gold, predicted) == pytest.approx(seqeval_scores(gold, repaired, **strict))
    # The counts behind the ratios are seqeval's entities.
    scores = span_scores(gold, predicted)
    gold_entities = {(i, *e) for i, tags in enumerate(gold) for e in get_entities(tags)}
    predicted_entities = {(i, *e) for i, tags in enumerate(predicted) for e in get_entities(tags)}
    assert (scores["n_gold"], scores["n_pred"], scores["n_correct"]) == (
        len(gold_entities), len(predicted_entities), len(gold_entities & predicted_entities)
    )


# Hand-made cases, scored as conlleval scores them (n_gold, n_pred, n_correct).
HAND_MADE = [
    # exact match of two entities of two types
    (["B-Disease", "I-Disease", "O", "B-Chemical"], ["B-Disease", "I-Disease", "O", "B-Chemical"], (2, 2, 2)),
    # boundary errors: too short, too long, shifted — no partial credit
    (["B-Disease", "I-Disease", "O"], ["B-Disease", "O", "O"], (1, 1, 0)),
    (["B-Disease", "O", "O"], ["B-Disease", "I-Disease", "O"], (1, 1, 0)),
    (["O", "B-Disease", "I-Disease"], ["B-Disease", "I-Disease", "O"], (1, 1, 0)),
    # type error on an exact span
    (["B-Disease", "I-Disease"], ["B-Chemical", "I-Chemical"], (1, 1, 0)),
    # a type change inside a span splits it: I-Chemical after B-Disease starts a Chemical entity
    (["B-Disease", "I-Disease"], ["B-Disease", "I-Chemical"], (1, 2, 0)),
    # I-without-B after O starts an entity (conlleval), so this is a hit
    (["O", "B-Disease", "I-Disease"], ["O", "I-Disease", "I-Disease"], (1, 1, 1)),
    # I-without-B at the start of the sentence, and in gold too
    (["I-Disease", "I-Disease", "O"], ["B-Disease", "I-Disease", "O"], (1, 1, 1)),
    # adjacent entities must stay apart
    (["B-Disease", "B-Disease"], ["B-Disease", "I-Disease"], (2, 1, 0)),
    # an entity ending at the last word
    (["O", "O", "B-Disease"], ["O", "O", "B-Disease"], (1, 1, 1)),
    # no entities predicted: precision 0 by convention
    (["B-Disease", "O"], ["O", "O"], (1, 0, 0)),
]


@pytest.mark.parametrize("gold, predicted, counts", HAND_MADE)
def test_hand_made_cases_score_as_conlleval(gold, predicted, counts):
    scores = span_scores([gold], [predicted])
    assert (scores["n_gold"], scores["n_pred"], scores["n_correct"]) == counts
    n_gold, n_pred, n_correct = counts
    precision = n_correct / n_pred if n_pred else 0.0
    recall = n_correct / n_gold if n_gold else 0.0
    assert scores["precision"] == pytest.approx(precision)
    assert scores["recall"] == pytest.approx(recall)
    assert scores["f1"] == pytest.approx(2 * precision * recall / (precision + recall) if n_correct else 0.0)


def test_i_without_b_is_where_seqeval_strict_differs():
    """The documented choice: seqeval strict drops `O I I`; we (and conlleval) read it as an entity."""
    gold, predicted = [["O", "B-Disease", "I-Disease"]], [["O", "I-Disease", "I-Disease"]]
    assert ours(gold, predicted) == (1.0, 1.0, 1.0)
    assert seqeval_scores(gold, predicted) == (1.0, 1.0, 1.0)
    assert seqeval_scores(gold, predicted, mode="strict", scheme=IOB2) == (0.0, 0.0, 0.0)


def test_untyped_and_id_tags_score_like_typed_tags():
    gold = [["B-Disease", "I-Disease", "O", "B-Disease"]]
    predicted = [["B-Disease", "I-Disease", "O", "O"]]
    untyped = span_scores([["B", "I", "O", "B"]], [["B", "I", "O", "O"]])
    label_ids = span_scores([[1, 2, 0, 1]], [[1, 2, 0, 0]])
    assert untyped == label_ids == span_scores(gold, predicted)
    assert entity_spans(["O", "B", "I", "I", "O", "I"]) == {("", 1, 4), ("", 5, 6)}


def test_corpus_scores_macro_is_the_mean_over_corpora():
    results = corpus_scores(
        {
            "ncbi-disease": ([["B", "I", "O", "B"]], [["B", "I", "O", "O"]]),  # P 1, R 0.5
            "bc5cdr-chem": ([["B", "O"], ["O", "B"]], [["B", "O"], ["B", "O"]]),  # P 0.5, R 0.5
        }
    )
    assert results["corpora"]["ncbi-disease"] == {
        "precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "n_gold": 2, "n_pred": 1, "n_correct": 1
    }
    assert results["corpora"]["bc5cdr-chem"]["f1"] == pytest.approx(0.5)
    assert results["macro"] == {
        "precision": pytest.approx(0.75), "recall": pytest.approx(0.5), "f1": pytest.approx((2 / 3 + 0.5) / 2),
        "n_corpora": 2,
    }
    assert corpus_scores({})["macro"]["n_corpora"] == 0


def test_mismatched_lengths_are_errors():
    with pytest.raises(ValueError, match="2 gold sentences but 1 predicted"):
        span_scores([["O"], ["O"]], [["O"]])
    with pytest.raises(ValueError, match="sentence 0: 2 gold tags but 1 predicted"):
        span_scores([["O", "O"]], [["O"]])
    with pytest.raises(ValueError, match="unknown IOB2 tag 'E-Disease'"):
        span_scores([["E-Disease"]], [["O"]])
