"""Dense Bioentities Recognition (DBR) samples: knowledge-base names concatenated into one dense row.

For a training sentence of corpus D with entity type T, the phrases of the sentence retrieve
knowledge-base entities (`retrieval`); up to `max_target_entities` of type T and up to
`max_other_entities` of other types are drawn from them, shuffled and concatenated (T = Chemical):

    naloxone/B ;/O hypertension/O ;/O clonidine/B ;/O BRCA1/O ;/O rats/O

Each name is tokenized like the corpora (`\\w+` runs and single punctuation characters); names of
type T get B/I tags, every other name and the separator token (";") get O. A name that also carries
type T in the knowledge base is never drawn as an "other" entity, so no DBR row tags a T name as O;
names holding the separator are never drawn. The row's source_corpus is D, its sample_kind "dbr"
(training uses the instruction without dataset name for it) and dbr_entities lists the names in order.

Variants: `relevant` (the paper), `random` (the same counts per sentence, drawn uniformly from the
knowledge base: the paper's ablation), `none` (no DBR rows). Every draw uses a generator seeded by
(seed, corpus, sentence index), so a build is reproducible and a corpus's rows do not depend on the
other corpora.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from .corpora import IOB_TAGS, Sentence, tokenize_with_offsets
from .knowledge_base import KnowledgeBase
from .phrases import PhraseMiner
from .retrieval import DenseIndex, retrieve_for_phrases

logger = logging.getLogger(__name__)

DBR_VARIANTS = ("relevant", "random", "none")


@dataclass(frozen=True)
class DbrSettings:
    """How DBR samples are drawn (see the module docstring)."""

    variant: str = "relevant"
    max_target_entities: int = 10
    max_other_entities: int = 5
    top_k: int = 5
    seed: int = 42
    separator: str = ";"

    def __post_init__(self):
        if self.variant not in DBR_VARIANTS:
            raise ValueError(f"DBR variant must be one of {DBR_VARIANTS}, got {self.variant!r}")


def name_tokens(name: str) -> list[str]:
    """A knowledge-base name tokenized like the corpora ("IL-2" -> "IL", "-", "2")."""
    return [token for token, _, _ in tokenize_with_offsets(name)]


def dbr_row(names: Sequence[str], name_types: Sequence[str], entity_type: str, source_corpus: str, separator: str = ";") -> dict:
    """One `DATASET_FEATURES` row: the names concatenated with separators, B/I on names of `entity_type`."""
    tokens: list[str] = []
    entities = []
    for name, name_type in zip(names, name_types):
        words = name_tokens(name)
        if not words:
            continue
        if tokens:
            tokens.append(separator)
        tokens.extend(words)
        entities.append({"name": name, "entity_type": name_type})
    return {
        "tokens": tokens,
        "ner_tags": dbr_tags(entities, entity_type),
        "entity_type": entity_type,
        "source_corpus": source_corpus,
        "sample_kind": "dbr",
        "dbr_entities": entities,
    }


def dbr_tags(entities: Sequence[Mapping[str, str]], entity_type: str) -> list[int]:
    """IOB tag ids of a DBR sample's tokens for one entity type: B/I on the names of that type, O elsewhere (the
    separators too). A sample's `dbr_entities` give its tokens back (names joined by separators), so a
    multi-type model's row is labelled for every type from them."""
    tags: list[str] = []
    for entity in entities:
        words = name_tokens(entity["name"])
        if tags:
            tags.append("O")
        tags.extend(["B"] + ["I"] * (len(words) - 1) if entity["entity_type"] == entity_type else ["O"] * len(words))
    return [IOB_TAGS.index(tag) for tag in tags]


@dataclass
class RetrievalPools:
    """For each distinct sentence (its token tuple), the knowledge-base rows its phrases retrieved,
    best score first, without repeats; plus the mining figures of the run."""

    rows: dict[tuple[str, ...], np.ndarray] = field(default_factory=dict)
    phrases: int = 0  # distinct phrases retrieved for
    encoded_phrases: int = 0  # of which were not knowledge-base names (those reuse the name's embedding)
    candidates: int = 0  # phrase occurrences over all sentences


def mine_phrases(sentences: Sequence[Sequence[str]], miner: PhraseMiner, progress: bool = True) -> tuple[list[str], list[np.ndarray]]:
    """Distinct phrases of all sentences and, per sentence, the ids of its phrases in that list."""
    phrase_ids: dict[str, int] = {}
    per_sentence = []
    for tokens in tqdm(sentences, desc="mining phrases", unit="sentence", disable=not progress):
        ids = [phrase_ids.setdefault(phrase, len(phrase_ids)) for phrase in miner.phrases(tokens)]
        per_sentence.append(np.asarray(ids, dtype=np.int64))
    return list(phrase_ids), per_sentence


def retrieval_pools(
    sentences: Sequence[Sequence[str]],
    knowledge_base: KnowledgeBase,
    encoder,
    index: DenseIndex,
    miner: PhraseMiner,
    top_k: int,
    batch_size: int = 128,
    progress: bool = True,
) -> RetrievalPools:
    """Mine the phrases of each distinct sentence and retrieve the top-K entities of every phrase."""
    distinct = list(dict.fromkeys(tuple(tokens) for tokens in sentences))
    if miner.min_count > 1 and not miner.counts:
        miner.fit(distinct)
    phrases, per_sentence = mine_phrases(distinct, miner, progress)
    known_rows: dict[str, int] = {}
    for row, name in enumerate(knowledge_base.names):
        known_rows.setdefault(name, row)
    scores, indices = retrieve_for_phrases(
        encoder, phrases, index, top_k, batch_size, known_rows, progress=progress
    )
    pools = RetrievalPools(
        phrases=len(phrases),
        encoded_phrases=sum(phrase not in known_rows for phrase in phrases),
        candidates=sum(len(ids) for ids in per_sentence),
    )
    for tokens, ids in zip(distinct, per_sentence):
        if len(ids) == 0:
            pools.rows[tokens] = np.zeros(0, dtype=np.int64)
            continue
        sentence_scores = scores[ids].ravel()
        sentence_rows = indices[ids].ravel()
        order = np.argsort(-sentence_scores, kind="stable")
        pools.rows[tokens] = np.asarray(list(dict.fromkeys(sentence_rows[order].tolist())), dtype=np.int64)
    return pools


class DbrSampler:
    """Draws the entities of DBR samples from retrieval pools (relevant) or the whole knowledge base (random)."""

    def __init__(self, knowledge_base: KnowledgeBase, settings: DbrSettings):
        self.knowledge_base = knowledge_base
        self.settings = settings
        # Names holding the separator ("disease;generalized") would read as two names: never drawn.
        self._unusable = {row for row, name in enumerate(knowledge_base.names) if settings.separator in name}
        self._by_type = {
            entity_type: [row for row in rows if row not in self._unusable]
            for entity_type, rows in knowledge_base.indices_by_type().items()
        }

    def _target(self, row: int, entity_type: str) -> bool:
        return self.knowledge_base.entity_types[row] == entity_type and row not in self._unusable

    def _negative(self, row: int, entity_type: str) -> bool:
        knowledge_base = self.knowledge_base
        return (
            knowledge_base.entity_types[row] != entity_type
            and row not in self._unusable
            and not knowledge_base.has(knowledge_base.names[row], entity_type)
        )

    def relevant(self, pool: Sequence[int], entity_type: str, rng: random.Random) -> tuple[list[int], list[int]]:
        """Up to the maximum of type-T rows and of negative rows, drawn from a sentence's pool."""
        targets = [row for row in pool if self._target(row, entity_type)]
        others = [row for row in pool if self._negative(row, entity_type)]
        return (
            rng.sample(targets, min(self.settings.max_target_entities, len(targets))),
            rng.sample(others, min(self.settings.max_other_entities, len(others))),
        )

    def random(self, n_targets: int, n_others: int, entity_type: str, rng: random.Random) -> tuple[list[int], list[int]]:
        """`n_targets` type-T rows and `n_others` negative rows drawn uniformly from the whole knowledge base."""
        target_rows = self._by_type.get(entity_type, [])
        targets = rng.sample(target_rows, min(n_targets, len(target_rows)))
        negatives_available = len(self.knowledge_base) - len(target_rows)
        others: list[int] = []
        attempts = 0
        while len(others) < min(n_others, negatives_available) and attempts < 100 * max(1, n_others):
            row = rng.randrange(len(self.knowledge_base))
            attempts += 1
            if row not in others and self._negative(row, entity_type):
                others.append(row)
        return targets, others

    def row(self, targets: list[int], others: list[int], entity_type: str, source_corpus: str, rng: random.Random) -> dict:
        chosen = targets + others
        rng.shuffle(chosen)
        names = [self.knowledge_base.names[row] for row in chosen]
        types = [self.knowledge_base.entity_types[row] for row in chosen]
        return dbr_row(names, types, entity_type, source_corpus, self.settings.separator)


@dataclass
class DbrStatistics:
    """What a DBR build produced, per corpus."""

    samples: dict[str, int] = field(default_factory=dict)
    target_entities: dict[str, int] = field(default_factory=dict)
    other_entities: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)  # sentences whose pool gave no entity

    def mean_entities(self, corpus: str | None = None) -> tuple[float, float]:
        """(mean type-T entities, mean other entities) per DBR sample, of one corpus or all."""
        corpora = [corpus] if corpus else list(self.samples)
        samples = sum(self.samples.get(name, 0) for name in corpora)
        if not samples:
            return 0.0, 0.0
        return (
            sum(self.target_entities.get(name, 0) for name in corpora) / samples,
            sum(self.other_entities.get(name, 0) for name in corpora) / samples,
        )


def dbr_rows(
    corpora: Mapping[str, Sequence[Sentence]],
    knowledge_base: KnowledgeBase | None,
    pools: RetrievalPools | None,
    settings: DbrSettings,
    progress: bool = True,
) -> tuple[list[dict], DbrStatistics]:
    """One DBR row per training sentence with a non-empty draw, corpus by corpus, in sentence order."""
    statistics = DbrStatistics()
    if settings.variant == "none":
        return [], statistics
    if knowledge_base is None or pools is None:
        raise ValueError(f"the {settings.variant!r} DBR variant needs a knowledge base and retrieval pools")
    sampler = DbrSampler(knowledge_base, settings)
    rows = []
    for corpus, sentences in corpora.items():
        statistics.samples[corpus] = statistics.target_entities[corpus] = 0
        statistics.other_entities[corpus] = statistics.skipped[corpus] = 0
        for position, sentence in enumerate(tqdm(sentences, desc=f"DBR samples {corpus}", unit="sentence", disable=not progress)):
            rng = random.Random(f"{settings.seed}:{corpus}:{position}")
            pool = pools.rows.get(tuple(sentence.tokens))
            if pool is None:
                raise KeyError(f"{sentence.location or corpus}: sentence without retrieval pool")
            targets, others = sampler.relevant(pool.tolist(), sentence.entity_type, rng)
            if settings.variant == "random":
                targets, others = sampler.random(len(targets), len(others), sentence.entity_type, rng)
            if not targets and not others:
                statistics.skipped[corpus] += 1
                continue
            rows.append(sampler.row(targets, others, sentence.entity_type, sentence.source_corpus, rng))
            statistics.samples[corpus] += 1
            statistics.target_entities[corpus] += len(targets)
            statistics.other_entities[corpus] += len(others)
    return rows, statistics
