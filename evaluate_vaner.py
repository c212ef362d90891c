"""Evaluate a VANER model on BioNER corpora: strict entity-level P/R/F1 per corpus, as in the paper's Table 1.

    python evaluate_vaner.py --model_name_or_path path/or/repo \
        --corpora ncbi-disease=../shared/corpora/ncbi-disease bc5cdr-chem=../shared/corpora/bc5cdr-chem \
        --split test --output_dir results/

    python evaluate_vaner.py --model_name_or_path my-model --files test/*.xml --type_map cell_line=CellLine

scores annotated documents (BioC XML or JSON, PubTator, brat .ann, IOB TSV) per entity type instead.
Writes results.md (a Markdown table), results.json and results.png (a bar chart) to --output_dir.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from transformers import HfArgumentParser

from vaner import DEFAULT_MODEL
from vaner.annotated import parse_type_map, read_annotated
from vaner.corpora import parse_corpus_argument
from vaner.evaluation import predict_sentence_tags, score_by_corpus
from vaner.features import sentences_to_dataset
from vaner.loading import load_model
from windows_vaner import DEFAULT_MAX_LENGTH, DEFAULT_STRIDE

logger = logging.getLogger("evaluate_vaner")

@dataclass
class EvaluationArguments:
    corpora: list[str] | None = field(
        default=None,
        metadata={
            "help": "Corpora as name=path, path being a corpus file or a folder of split files "
            "(train.tsv, devel.tsv, test.tsv). Registered names: ncbi-disease, bc5cdr-disease, bc5cdr-chem, "
            "bc2gm, jnlpba, bc4chemd, linnaeus, s800. A new corpus: name:EntityType=path."
        }
    )
    files: list[str] | None = field(
        default=None,
        metadata={"help": "Instead of --corpora: annotated documents (files or folders: BioC XML or JSON, PubTator, "
                          "brat .ann beside its .txt, IOB TSV), scored per entity type they annotate."},
    )
    type_map: list[str] | None = field(
        default=None,
        metadata={"help": "With --files: the documents' type names as the model's, raw=Type (e.g. cell_line=CellLine); "
                          "raw=O or raw=- leaves a type out. Names not mapped match the model's types in any case."},
    )
    model_name_or_path: str = field(
        default=DEFAULT_MODEL,
        metadata={"help": "A VANER folder or Hub repo id (full or adapter-only), or a backbone folder with --gguf_file. "
                          "Default: the shipped four-type model."},
    )
    split: str = field(default="test", metadata={"help": "Split file read from corpus folders: train, devel (or validation, dev) or test."})
    output_dir: str = field(default="evaluation", metadata={"help": "Folder for results.md, results.json, results.png."})
    use_dataset_name: bool = field(
        default=True,
        metadata={
            "help": "Name the corpus in the instruction when the model was trained on it (VANER). "
            "--no_use_dataset_name asks without any dataset name (VANER_adapt, for unseen corpora)."
        },
    )
    entity_types: list[str] | None = field(
        default=None, metadata={"help": "Evaluate only corpora of these entity types (default: all given)."}
    )
    gguf_file: str | None = field(
        default=None, metadata={"help": "GGUF file inside --model_name_or_path: a new VANER on that backbone."}
    )
    base_model_name_or_path: str | None = field(
        default=None, metadata={"help": "Override the backbone of an adapter-only folder (e.g. a local copy)."}
    )
    batch_size: int = field(default=32, metadata={"help": "Model rows per forward pass: a row is one window of a sentence "
                                                          "(a sentence longer than --max_length has several) for one "
                                                          "entity type; rows are sorted by length first."})
    max_length: int = field(default=DEFAULT_MAX_LENGTH, metadata={"help": "Sentence sub-tokens per window; longer sentences are split."})
    stride: int | None = field(default=None, metadata={"help": f"Sub-tokens shared by consecutive windows (default {DEFAULT_STRIDE}, "
                                                              "at most half a window); each word is tagged from its most "
                                                              "central window, as predict_vaner.py does."})
    max_sentences: int | None = field(default=None, metadata={"help": "Evaluate only the first N sentences per corpus."})
    device: str = field(default="auto", metadata={"help": "auto (cuda when available), cpu, cuda, cuda:1, ..."})
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = field(
        default="float32",
        metadata={"help": "Weights dtype; auto = bfloat16 on GPUs and on CPUs with native bf16, else float32 "
                          "(predict_vaner.py's default)."},
    )
    progress: bool = field(default=True, metadata={"help": "Show progress bars (--no_progress to hide them)."})
    trust_remote_code: bool = field(
        default=False,
        metadata={"help": "Run code stored in the model folder (e.g. a tokenizer class of its own). Off by default: "
                  "this project's VANER classes load the folder, and its stock tokenizer is used."},
    )


def load_corpora(args: EvaluationArguments, config) -> dict:
    known_entity_types = list(config.known_entity_types)
    wanted = None
    if args.entity_types:
        wanted, unknown = config.spell_entity_types(args.entity_types)
        if unknown:
            raise ValueError(f"--entity_types {unknown}: this model knows {known_entity_types}")
    if args.files:
        return document_tables(args, known_entity_types, wanted)
    corpora = {}
    for argument in map(parse_corpus_argument, args.corpora):
        entity_type = argument.spec.entity_type
        if wanted is not None and entity_type not in wanted:
            continue
        if entity_type not in known_entity_types:
            raise ValueError(f"corpus {argument.name} is {entity_type}, which this model does not know: {known_entity_types}")
        sentences = argument.load(args.split)[: args.max_sentences]
        corpora[argument.spec.display_name] = sentences_to_dataset(sentences)
    if not corpora:
        raise ValueError("no corpus left to evaluate (check --corpora and --entity_types)")
    return corpora


def document_tables(args: EvaluationArguments, known_entity_types: list[str], wanted: list[str] | None) -> dict:
    """A table per entity type of the annotated documents of --files (named by the type)."""
    documents = read_annotated(args.files, parse_type_map(args.type_map), known_entity_types)
    unknown = [entity_type for entity_type in documents.entity_types if entity_type not in known_entity_types]
    if unknown:
        raise ValueError(f"the documents hold {', '.join(unknown)}, which this model does not know "
                         f"({', '.join(known_entity_types)}): map them with --type_map {unknown[0]}=Type, or leave "
                         f"them out with --type_map {unknown[0]}=O")
    types = [entity_type for entity_type in documents.entity_types if wanted is None or entity_type in wanted]
    if not types:
        raise ValueError(f"no entity type left to evaluate: the documents hold {documents.entity_types}")
    tables = {}
    for entity_type in types:
        table = documents.table([entity_type])
        tables[entity_type] = table.select(range(min(args.max_sentences or len(table), len(table))))
    return tables


def check_inputs(args: EvaluationArguments) -> None:
    if bool(args.corpora) == bool(args.files):
        raise SystemExit("evaluate_vaner.py: give --corpora (corpus files in folders) or --files (annotated "
                         "documents), one of the two")
    if args.type_map and not args.files:
        raise SystemExit("--type_map maps the type names of --files documents; --corpora name their type as name:Type")


def evaluate(args: EvaluationArguments) -> dict:
    model, tokenizer = load_model(
        args.model_name_or_path, dtype=args.dtype, device=args.device, trust_remote_code=args.trust_remote_code,
        gguf_file=args.gguf_file, base_model_name_or_path=args.base_model_name_or_path, all_known_types=True,
    )
    corpora = load_corpora(args, model.config)
    split = "annotated documents" if args.files else args.split
    results = {"model": args.model_name_or_path, "split": split, "use_dataset_name": args.use_dataset_name, "corpora": {}}
    total_sentences, started = 0, time.perf_counter()
    for name, dataset in corpora.items():
        corpus_started = time.perf_counter()
        tags, split_count = predict_sentence_tags(
            model, tokenizer, dataset, args.batch_size, args.max_length, args.use_dataset_name, args.progress,
            args.stride,
        )
        seconds = time.perf_counter() - corpus_started
        scores = score_by_corpus(dataset, tags)["corpora"]
        (corpus_scores,) = scores.values()
        corpus_scores.update(
            entity_type=dataset[0]["entity_type"],
            sentences=len(dataset),
            split_sentences=split_count,
            sentences_per_second=len(dataset) / seconds,
        )
        results["corpora"][name] = corpus_scores
        total_sentences += len(dataset)
        logger.info("%s: F1 %.4f, %d sentences at %.1f sentences/s", name, corpus_scores["f1"], len(dataset), len(dataset) / seconds)
    corpus_f1 = [scores["f1"] for scores in results["corpora"].values()]
    results["macro"] = {
        key: sum(scores[key] for scores in results["corpora"].values()) / len(corpus_f1)
        for key in ("precision", "recall", "f1")
    }
    results["sentences_per_second"] = total_sentences / (time.perf_counter() - started)
    return results


def markdown_table(results: dict) -> str:
    """Per-corpus strict P/R/F1 (%) shaped like Table 1 of the VANER paper."""
    mode = "VANER (corpus named when the model knows it)" if results["use_dataset_name"] else "VANER_adapt (no dataset name)"
    lines = [
        f"Model: `{results['model']}`, split: {results['split']}, instruction: {mode}",
        "",
        "| Corpus | Entity type | Sentences | P | R | F1 |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name, scores in results["corpora"].items():
        lines.append(
            f"| {name} | {scores['entity_type']} | {scores['sentences']} | {100 * scores['precision']:.2f} "
            f"| {100 * scores['recall']:.2f} | {100 * scores['f1']:.2f} |"
        )
    macro = results["macro"]
    lines.append(f"| **Macro average** | | | {100 * macro['precision']:.2f} | {100 * macro['recall']:.2f} | {100 * macro['f1']:.2f} |")
    return "\n".join(lines) + "\n"


def bar_chart(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results["corpora"])
    figure, axes = plt.subplots(figsize=(max(4, 1.2 * len(names) + 2), 3.5))
    width = 0.27
    for offset, key in enumerate(("precision", "recall", "f1")):
        values = [100 * results["corpora"][name][key] for name in names]
        axes.bar([index + (offset - 1) * width for index in range(len(names))], values, width, label=key.capitalize())
    axes.set_xticks(range(len(names)), names, rotation=20, ha="right")
    axes.set_ylim(0, 100)
    axes.set_ylabel("strict entity-level %")
    axes.set_title(f"{Path(results['model']).name}: {results['split']} (macro F1 {100 * results['macro']['f1']:.1f})")
    axes.legend(loc="upper right", fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main(argv: list[str] | None = None) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    (args,) = HfArgumentParser(EvaluationArguments).parse_args_into_dataclasses(args=argv)
    check_inputs(args)
    results = evaluate(args)
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    table = markdown_table(results)
    (output_dir / "results.md").write_text(table, encoding="utf-8")
    (output_dir / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    bar_chart(results, output_dir / "results.png")
    print(table)
    print(f"{results['sentences_per_second']:.1f} sentences/s; results in {output_dir}/results.{{md,json,png}}")
    return results


def cli() -> None:
    """The console script (pyproject.toml [project.scripts]): exit status 0 on success; bad input (a corpus or
    document file, a type the model does not know) is one line naming it."""
    try:
        main(sys.argv[1:])
    except (ValueError, FileNotFoundError) as error:
        raise SystemExit(f"evaluate_vaner.py: {error}") from None


if __name__ == "__main__":
    cli()
