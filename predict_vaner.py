"""Annotate documents with a VANER model: plain text, JSONL, PubTator or BioC in; JSONL, PubTator, BioC or HTML out.

    python predict_vaner.py --model_name_or_path vaner-smollm2 --input abstracts.pubtator \
        --output annotated.pubtator --entity_types Disease Chemical

Documents of any length are split into sentences (and sentences longer than the window into overlapping
windows); offsets are exact character offsets into the text as read. Input and output stream, so memory
stays flat on large files. `--ray` annotates sharded corpora on a Ray cluster, one output shard per
input shard (vaner/distributed.py, docs/ray.md). `--help` lists every option.
"""

from __future__ import annotations

import codecs
import logging
import os
import signal
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal

from transformers import HfArgumentParser
from transformers.utils.logging import disable_progress_bar

from text_vaner import DEFAULT_MAX_DOCUMENT_LENGTH
from vaner import DEFAULT_MODEL
from vaner.digests import DigestSet
from vaner.formats import INPUT_FORMATS, OUTPUT_FORMATS
from windows_vaner import DEFAULT_MAX_LENGTH, DEFAULT_STRIDE

logger = logging.getLogger("predict_vaner")
EXIT_DOCUMENTS_LOST = 3  # the run finished, but some documents could not be read or annotated (see the log)


@dataclass
class ModelArguments:
    model_name_or_path: str = field(
        default=DEFAULT_MODEL,
        metadata={"help": "VANER model: a folder (full weights or adapter only) or a Hugging Face Hub id. Default: "
                          "the shipped four-type model (Disease, Chemical, Gene, Species)."},
    )
    entity_types: list[str] | None = field(
        default=None,
        metadata={"help": "Entity types to extract, e.g. Disease Chemical (any case). Default: the types the model "
                          "serves (config.entity_types). An unknown type is an error listing the known ones."},
    )
    dataset_name: str | None = field(
        default=None,
        metadata={"help": "Dataset (corpus) named in the instruction, e.g. NCBI-disease. Default: none, the "
                          "instruction without a dataset name, for text unlike any training corpus."},
    )
    base_model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "For an adapter-only folder: where its backbone is (e.g. a local copy when offline), "
                          "instead of the one its config records."},
    )
    dtype: Literal["auto", "bfloat16", "float32"] = field(
        default="auto",
        metadata={"help": "Precision of the model: auto = bfloat16 on GPUs and on CPUs with native bf16 "
                          "(AVX512-BF16, AMX), else float32."},
    )
    device: str = field(default="auto", metadata={"help": "Device: auto (cuda when available), cpu, cuda, cuda:1, ..."})
    threads: int | None = field(default=None, metadata={"help": "CPU threads for torch (default: torch's choice)."})
    trust_remote_code: bool = field(
        default=False,
        metadata={"help": "Run code stored in the model folder (e.g. a tokenizer class of its own). Off by default: "
                          "this project's VANER classes load the folder, and its stock tokenizer is used."},
    )


@dataclass
class DataArguments:
    input: list[str] = field(
        metadata={"help": "Input files, folders (the files of a folder, sorted; a warning names its subfolders, hidden "
                          "files, broken links and pipes, which are not read) or globs ('docs/*.jsonl'); - reads "
                          "standard input, a named pipe (<(zcat docs.jsonl.gz)) is read as a file. gzip data is "
                          "checked whole, then read: a damaged .gz is one error record; binary files and other "
                          "compressions are error records."}
    )
    input_format: str = field(
        default="auto",
        metadata={"choices": ["auto", *INPUT_FORMATS],
                  "help": "; ".join(f"{name}: {fmt.help}" for name, fmt in INPUT_FORMATS.items())
                  + "; auto: by the file suffix ("
                  + ", ".join(f"{suffix} {name}" for name, fmt in INPUT_FORMATS.items() for suffix in fmt.suffixes)
                  + "), else by the first line (tried in the order above), else text (standard input: text)."},
    )
    encoding: str = field(default="utf-8", metadata={"help": "Encoding of the inputs; undecodable bytes become "
                                                               "U+FFFD with a warning naming the file. XML inputs "
                                                               "(BioC, PubMed) declare their own: a warning says it "
                                                               "is not used for them."})
    output: str = field(default="-", metadata={"help": "Output file; - writes standard output."})
    output_format: str = field(
        default="auto",
        metadata={"choices": ["auto", *OUTPUT_FORMATS],
                  "help": "; ".join(f"{name}: {fmt.help}" for name, fmt in OUTPUT_FORMATS.items())
                  + "; auto: from the output suffix ("
                  + ", ".join(suffix for fmt in OUTPUT_FORMATS.values() for suffix in fmt.suffixes) + "), else jsonl."},
    )
    include_text: bool = field(default=False, metadata={"help": "JSONL output: also write each document's text."})


@dataclass
class AnnotationArguments:
    tokenization: Literal["words", "raw"] = field(
        default="words",
        metadata={"help": "words: sentences are cut into words as the training corpora are and joined with "
                          "spaces (the tokens the model was trained on), entities cover whole words. raw: the "
                          "text is tokenized as written and every sub-token is tagged, as the transformers "
                          "token-classification pipeline does."},
    )
    max_length: int = field(
        default=DEFAULT_MAX_LENGTH,
        metadata={"help": "Window size in sub-tokens of sentence (the instruction comes on top). Longer sentences "
                          "are split into overlapping windows; each sub-token keeps the prediction of the "
                          "window where it is most central."},
    )
    stride: int | None = field(default=None, metadata={"help": f"Overlap of consecutive windows, in sub-tokens (default {DEFAULT_STRIDE}, "
                                                       "at most half a window: the rule of training and evaluation)."})
    batch_size: int = field(default=32, metadata={"help": "Rows (window x entity type) per forward pass; rows are sorted by length first."})
    overlaps: Literal["keep", "best"] = field(
        default="keep",
        metadata={"help": "keep: a span may carry several types (one entity each) and spans may overlap; best: of "
                          "overlapping entities keep the higher-scoring ones."},
    )
    line_breaks: bool = field(
        default=True,
        metadata={"help": "Line breaks end sentences (text with a sentence or paragraph per line). Use "
                          "--no_line_breaks for hard-wrapped text: then only blank lines do."},
    )
    max_document_length: int = field(
        default=DEFAULT_MAX_DOCUMENT_LENGTH,
        metadata={"help": f"Longest document annotated, in characters (default {DEFAULT_MAX_DOCUMENT_LENGTH:,}, as "
                          "spaCy's): a longer one becomes an error record naming it (exit status 3), the others are "
                          "annotated. Annotation memory does not grow with a document's length; its entities are "
                          "kept until it is written."},
    )
    progress: bool = field(default=True, metadata={"help": "Show a progress bar on standard error (--no_progress to hide it)."})


def parser() -> HfArgumentParser:
    from vaner.distributed import RayArguments

    return HfArgumentParser((ModelArguments, DataArguments, AnnotationArguments, RayArguments),
                            description=__doc__.split("\n\n")[0],
                            epilog="Scores are the mean probability of the chosen O/B/I tags over an entity's units.")


def _report_errors(annotated: Iterable, counts: dict) -> Iterator:
    seen_ids = DigestSet()  # digests, not the ids: a few bytes a document (see vaner/digests.py for the trade)
    for document in annotated:
        counts["documents"] += 1
        if not seen_ids.add(document.document_id):
            counts["duplicates"] += 1
            counts.setdefault("first_duplicate", document.document_id)
        counts["entities"] += len(document.entities)
        if document.error:
            counts["errors"] += 1
            logger.warning("%s", document.error)
        yield document


def main(argv: list[str] | None = None) -> int:
    arguments = parser()
    model_args, data_args, annotation_args, ray_args = arguments.parse_args_into_dataclasses(args=argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if ray_args.ray is not None:  # shards on a Ray cluster: vaner/distributed.py, same annotator per shard
        from vaner.distributed import run_distributed, settings_from_arguments

        try:
            summary = run_distributed(settings_from_arguments(model_args, data_args, annotation_args, ray_args),
                                      progress=annotation_args.progress)
        except (ValueError, OSError) as error:
            arguments.error(str(error))
        lost = summary["errors"] + summary["skipped_errors"]  # skipped shards' manifests count their lost documents
        return 1 if summary["failed"] else EXIT_DOCUMENTS_LOST if lost else 0
    if ray_args.ray_actors is not None or ray_args.skip_existing or ray_args.ray_actors_per_gpu != 1:
        arguments.error("--ray_actors, --ray_actors_per_gpu and --skip_existing go with --ray")

    import torch

    from files_vaner import OutputError
    from vaner.documents import DocumentAnnotator
    from vaner.formats import (
        check_include_text,
        check_output_is_not_an_input,
        check_output_path,
        expand_inputs,
        output_format_for,
        read_documents,
        write_documents,
    )
    from vaner.loading import load_model
    from vaner.textfiles import STDIO

    if model_args.threads:
        torch.set_num_threads(model_args.threads)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)  # Slurm, Kubernetes, kill: no temporary output left behind
    try:
        codecs.lookup(data_args.encoding)  # an unknown --encoding is an error here, not after the model loads
    except LookupError as error:
        arguments.error(f"--encoding {data_args.encoding}: {error}")
    try:
        output_format = output_format_for(data_args.output, data_args.output_format)
        check_include_text(output_format, data_args.include_text)
        check_output_path(data_args.output)  # a folder, a missing folder, no permission: before the model loads
        inputs = expand_inputs(data_args.input)  # a missing input fails here, before the model loads
        check_output_is_not_an_input(data_args.output, inputs)
        if not annotation_args.progress:
            disable_progress_bar()  # the model's loading bars (GGUF de-quantizing, weights) too
        model, tokenizer = load_model(model_args.model_name_or_path, model_args.entity_types, model_args.dataset_name,
                                      model_args.dtype, model_args.device, model_args.trust_remote_code,
                                      base_model_name_or_path=model_args.base_model_name_or_path)
        annotator = DocumentAnnotator(
            model, tokenizer, entity_types=model_args.entity_types,
            dataset_name=None if model_args.dataset_name is None else model.config.dataset_name,  # the model's spelling
            tokenization=annotation_args.tokenization, max_length=annotation_args.max_length,
            stride=annotation_args.stride, batch_size=annotation_args.batch_size, overlaps=annotation_args.overlaps,
            line_breaks=annotation_args.line_breaks, max_document_length=annotation_args.max_document_length,
        )
    except (ValueError, OSError) as error:
        arguments.error(str(error))
    logger.info("model %s: %s, %s on %s; types %s", model_args.model_name_or_path, type(model).__name__,
                next(model.parameters()).dtype, next(model.parameters()).device, ", ".join(annotator.entity_types))
    counts = {"documents": 0, "entities": 0, "errors": 0, "duplicates": 0}
    documents = read_documents(inputs, data_args.input_format, data_args.encoding)
    annotated = _report_errors(annotator.annotate_documents(documents, progress=annotation_args.progress), counts)
    try:
        write_documents(annotated, data_args.output, output_format, annotator.entity_types,
                        include_text=data_args.include_text,
                        infons={"model": model_args.model_name_or_path, "entity_types": " ".join(annotator.entity_types)})
    except OutputError as error:  # a full disk, a closed pipe, a read-only place: one line, no traceback
        logger.error("%s", error)
        if data_args.output == STDIO:
            _drop_standard_output()
        return 1
    logger.info("%d documents annotated, %d entities, written to %s (%s)", counts["documents"] - counts["errors"],
                counts["entities"], data_args.output, output_format)
    if counts["duplicates"]:
        logger.warning("%d documents have the id of an earlier document (first: %r): their output records share ids",
                       counts["duplicates"], counts["first_duplicate"])
    if counts["errors"]:
        kept = ("kept as records with an \"error\" field" if output_format == "jsonl"
                else f"left out of the {output_format} output (JSONL output keeps them as error records)")
        logger.error("%d of %d documents could not be read or annotated (%s; see the warnings above): exit status %d",
                     counts["errors"], counts["documents"], kept, EXIT_DOCUMENTS_LOST)
        return EXIT_DOCUMENTS_LOST
    return 0


def _drop_standard_output() -> None:
    """Point standard output at /dev/null once writing it failed (a closed pipe): Python's flush at exit would
    otherwise fail again with an "Exception ignored" traceback."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _exit_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


def cli() -> None:
    """The console script (pyproject.toml [project.scripts]): exit status 0 on success, 3 when documents could
    not be read or annotated (the others are written), 2 for bad options, 1 for a failure."""
    sys.exit(main())


if __name__ == "__main__":
    cli()
