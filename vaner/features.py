"""Corpora as `datasets` tables, and their tokenization for VANER.

The table schema is shared by every stage (corpus sentences and DBR samples alike), so it is
defined once here.
"""

from __future__ import annotations

from collections.abc import Iterable

from datasets import ClassLabel, Dataset, Features, List, Value

from .corpora import IOB_TAGS, Sentence

SAMPLE_KINDS = ("sentence", "dbr")

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
