"""Annotating sharded corpora on a Ray cluster (Ray Data), with the single-process annotator.

    python predict_vaner.py --ray auto --input 'pubmed/*.xml' --output annotated/ --output_format bioc_xml

The unit of work is a shard (an input file): Ray Data streams the list of shards through a pool of
actors (`ShardAnnotator`), each of which loads the model once (`vaner.loading.load_model`, one actor
per GPU or N CPU actors of `--threads` threads each) and annotates a whole shard with the very code
`predict_vaner.py` runs in one process: `read_documents` -> `DocumentAnnotator.annotate_documents` (which
streams the shard's documents through the model in pools of windows, in flat memory) -> `write_documents`.
So document ids, character offsets and entities are those of the single process run on the same shard,
and each input shard gives exactly one output shard (same name, the output format's suffix), which can be
redone alone.

Failure handling:
- a document that cannot be read or annotated becomes an error record (as in the single process);
- a shard whose reading, annotation or writing raises is reported as a failed shard, the others go on;
- an actor that dies (killed, out of memory, node lost) is restarted by Ray and its shard retried
  (Ray Data's actor pool: `max_restarts=-1`, here `max_task_retries=3`); a shard is written under a
  temporary name and renamed when complete, so a dead attempt never leaves a partial or doubled shard;
- after the rename a manifest `.<output name>.done` records the output's size and the run's settings:
  with `--skip_existing` a shard is skipped only when its output exists with the recorded size and the
  settings match (a truncated or stale output is redone).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from files_vaner import open_output, remove_stale_temporaries

from .formats import OUTPUT_FORMATS, check_include_text, output_format_for, read_documents, write_documents
from .textfiles import expand_inputs

logger = logging.getLogger("vaner.distributed")

MANIFEST_VERSION = 1
# Options that change what a shard's output holds: a manifest written with others does not count as done.
OUTPUT_OPTIONS = ("model_name_or_path", "entity_types", "dataset_name", "base_model_name_or_path", "dtype",
                  "input_format", "encoding", "output_format", "include_text", "tokenization", "max_length", "stride",
                  "overlaps", "line_breaks", "max_document_length")


@dataclass
class RayArguments:
    ray: str | None = field(
        default=None,
        metadata={"nargs": "?", "const": "auto",
                  "help": "Annotate on Ray (Ray Data): --ray alone or --ray auto starts a local Ray instance (or "
                          "joins the one this machine runs); --ray ADDRESS joins a cluster (e.g. 10.0.0.1:6379, "
                          "ray://head:10001). --input then names shards (files, folders, globs), --output a folder "
                          "that receives one output shard per input shard (same name, the output format's suffix)."},
    )
    ray_actors: int | None = field(
        default=None,
        metadata={"help": "With --ray: actors, each loading the model once. Default: one per GPU of the cluster, "
                          "else the cluster's CPUs divided by --threads (1 when not given)."},
    )
    ray_actors_per_gpu: int = field(
        default=1,
        metadata={"help": "With --ray on GPUs: actors sharing each GPU (each asks for 1/K of a GPU and --threads "
                          "CPUs). One actor's CPU work (sentences, tokens, decoding: ~20 ms per abstract) caps it "
                          "near 50 abstracts/s, so several per GPU keep a GPU busy where the node has the cores."},
    )
    skip_existing: bool = field(
        default=False,
        metadata={"help": "With --ray: skip input shards whose output is complete (its manifest "
                          ".NAME.done matches the file's size and these settings); truncated or stale outputs are redone."},
    )


# --------------------------------------------------------------------------------------------
# Shards


def output_path(shard: Path, output_dir: Path, output_format: str) -> Path:
    """The output shard of an input shard: same name, the output format's first registered suffix (a `.gz`
    input loses both suffixes: pubmed25n0001.xml.gz -> pubmed25n0001.jsonl)."""
    stem = Path(shard.stem).stem if shard.suffix.lower() == ".gz" else shard.stem
    return output_dir / (stem + OUTPUT_FORMATS[output_format].suffixes[0])


def plan_shards(inputs: list[str], output_dir: str | Path, output_format: str) -> list[tuple[Path, Path]]:
    """(input shard, output shard) pairs; two inputs with the same output name are an error."""
    output_dir = Path(output_dir)
    pairs, seen = [], {}
    for shard in expand_inputs(inputs, pipes=False):
        target = output_path(shard, output_dir, output_format)
        if target in seen:
            raise ValueError(f"{shard} and {seen[target]} would both be written to {target}: give shards distinct names")
        if shard.resolve() == target.resolve():
            raise ValueError(f"the output {target} is also an input: choose another output folder")
        seen[target] = shard
        pairs.append((shard, target))
    return pairs


def manifest_path(output: Path) -> Path:
    return output.with_name(f".{output.name}.done")


def settings_digest(settings: dict) -> str:
    """A digest of the options that shape an output shard (model, types, formats, windows, ...)."""
    chosen = {key: settings.get(key) for key in OUTPUT_OPTIONS}
    return hashlib.sha256(json.dumps(chosen, sort_keys=True, default=str).encode()).hexdigest()[:16]


def is_complete(shard: Path, output: Path, digest: str) -> dict | None:
    """The manifest of a complete output shard: the output exists with the recorded size, written from
    this input (same size and modification time) with the same settings; else None."""
    try:
        manifest = json.loads(manifest_path(output).read_text(encoding="utf-8"))
        stat, source = output.stat(), shard.stat()
    except (OSError, ValueError):
        return None
    if (manifest.get("version") == MANIFEST_VERSION and manifest.get("settings") == digest
            and manifest.get("bytes") == stat.st_size and manifest.get("input_bytes") == source.st_size
            and manifest.get("input_mtime_ns") == source.st_mtime_ns):
        return manifest
    return None


# --------------------------------------------------------------------------------------------
# One shard


def annotate_shard(annotator, shard: Path, output: Path, settings: dict, digest: str, fault=None) -> dict:
    """Annotate one shard with the single-process code path and write its output and manifest; returns
    the shard's summary. `fault` (tests only) is called with the shard and the running document count."""
    started = time.perf_counter()
    counts = {"documents": 0, "entities": 0, "errors": 0}

    def counted(annotated):
        for document in annotated:
            counts["documents"] += 1
            counts["entities"] += len(document.entities)
            if document.error:
                counts["errors"] += 1
                logger.warning("%s", document.error)
            if fault is not None:
                fault(shard, counts["documents"])
            yield document

    manifest_path(output).unlink(missing_ok=True)  # the output is about to change: no manifest vouches for it
    remove_stale_temporaries(output)  # the partial file of an attempt whose actor died (see files_vaner)
    source = shard.stat()
    documents = read_documents([shard], settings["input_format"], settings["encoding"])
    write_documents(counted(annotator.annotate_documents(documents)), output, settings["output_format"],
                    annotator.entity_types, include_text=settings["include_text"],
                    infons={"model": settings["model_name_or_path"], "entity_types": " ".join(annotator.entity_types)})
    seconds = time.perf_counter() - started
    manifest = {"version": MANIFEST_VERSION, "input": str(shard), "output": str(output), **counts,
                "seconds": round(seconds, 3), "bytes": output.stat().st_size, "input_bytes": source.st_size,
                "input_mtime_ns": source.st_mtime_ns, "settings": digest}
    with open_output(manifest_path(output)) as handle:
        handle.write(json.dumps(manifest, indent=1) + "\n")
    return manifest


@dataclass
class KillOnce:
    """A fault for tests: the process handling shard `shard_name` dies (os._exit, as a killed actor would)
    after `after_documents` documents, once (the file `flag` records that it happened)."""

    shard_name: str
    after_documents: int
    flag: str

    def __call__(self, shard: Path, documents: int) -> None:
        if shard.name == self.shard_name and documents >= self.after_documents and not Path(self.flag).exists():
            Path(self.flag).write_text(str(os.getpid()))
            os._exit(1)


class ShardAnnotator:
    """A Ray Data actor: loads the model once, then annotates the shards it is handed, one at a time."""

    def __init__(self, settings: dict, digest: str, fault=None):
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        import torch

        from vaner.documents import DocumentAnnotator
        from vaner.loading import load_model

        if settings.get("threads"):
            torch.set_num_threads(settings["threads"])
        model, tokenizer = load_model(settings["model_name_or_path"], settings.get("entity_types"),
                                      settings.get("dataset_name"), settings["dtype"], settings["device"],
                                      settings["trust_remote_code"],
                                      base_model_name_or_path=settings.get("base_model_name_or_path"))
        self.annotator = DocumentAnnotator(
            model, tokenizer, entity_types=settings.get("entity_types"),
            dataset_name=None if settings.get("dataset_name") is None else model.config.dataset_name,
            tokenization=settings["tokenization"], max_length=settings["max_length"], stride=settings["stride"],
            batch_size=settings["batch_size"], overlaps=settings["overlaps"], line_breaks=settings["line_breaks"],
            max_document_length=settings["max_document_length"],
        )
        self.settings, self.digest, self.fault = settings, digest, fault
        self.node = os.uname().nodename

    def __call__(self, batch: dict) -> dict:
        results = {key: [] for key in ("input", "output", "documents", "entities", "errors", "seconds", "status",
                                       "message", "node")}
        for shard, output in zip(batch["input"], batch["output"]):
            shard, output = Path(shard), Path(output)
            row = {"input": str(shard), "output": str(output), "documents": 0, "entities": 0, "errors": 0,
                   "seconds": 0.0, "status": "done", "message": "", "node": self.node}
            try:
                if self.settings.get("skip_existing") and (manifest := is_complete(shard, output, self.digest)):
                    # a retry of a shard whose first attempt finished before its actor died
                    row.update({key: manifest[key] for key in ("documents", "entities", "errors", "seconds")})
                else:
                    manifest = annotate_shard(self.annotator, shard, output, self.settings, self.digest, self.fault)
                    row.update({key: manifest[key] for key in ("documents", "entities", "errors", "seconds")})
            except Exception as error:  # noqa: BLE001 - one bad shard must not stop the others
                logger.exception("shard %s failed", shard)
                row.update(status="failed", message=f"{type(error).__name__}: {error}")
            for key, value in row.items():
                results[key].append(value)
        return results


# --------------------------------------------------------------------------------------------
# The run


def _init_ray(address: str | None, num_cpus: int | None = None):
    import ray

    if ray.is_initialized():
        return ray
    if address in (None, "", "auto", "local"):
        # Join the instance this machine runs (ray start), else start a local one.
        try:
            ray.init(address="auto", log_to_driver=True)
        except (ConnectionError, RuntimeError):
            ray.init(num_cpus=num_cpus, log_to_driver=True)
    else:
        ray.init(address=address, log_to_driver=True)
    return ray


def run_distributed(settings: dict[str, Any], progress: bool = True, fault=None) -> dict:
    """Annotate every input shard on Ray; returns the summary (documents, entities, errors, documents/s,
    done / skipped / failed shards, and the document errors the skipped shards' manifests record). `settings`: predict_vaner.py's options as a dict (see `OUTPUT_OPTIONS`,
    plus input, output, ray, ray_actors, skip_existing, threads, device, batch_size, trust_remote_code)."""
    started = time.perf_counter()
    settings = dict(settings)
    if settings["output_format"] == "auto":
        settings["output_format"] = "jsonl" if Path(settings["output"]).suffix == "" else output_format_for(
            settings["output"], "auto")
    check_include_text(settings["output_format"], settings["include_text"])
    output_dir = Path(settings["output"])
    if output_dir.exists() and not output_dir.is_dir():
        raise ValueError(f"--ray writes one output shard per input shard: --output must be a folder, not {output_dir}")
    pairs = plan_shards(settings["input"], output_dir, settings["output_format"])
    output_dir.mkdir(parents=True, exist_ok=True)
    digest = settings_digest(settings)

    to_do, skipped = [], []
    for shard, output in pairs:
        manifest = is_complete(shard, output, digest) if settings.get("skip_existing") else None
        if manifest is not None:
            skipped.append(manifest)
        else:
            remove_stale_temporaries(output)
            to_do.append((shard, output))
    summary = {"shards": len(pairs), "done": 0, "skipped": len(skipped), "failed": [], "documents": 0,
               "entities": 0, "errors": 0, "skipped_errors": sum(manifest["errors"] for manifest in skipped),
               "seconds": 0.0, "documents_per_second": 0.0}
    logger.info("%d shards: %d to annotate, %d complete already (skipped)", len(pairs), len(to_do), len(skipped))
    if to_do:
        ray = _init_ray(settings.get("ray"))
        resources = ray.cluster_resources()
        threads = settings.get("threads") or 1
        gpus = int(resources.get("GPU", 0))
        use_gpu = settings["device"].startswith("cuda") or (settings["device"] == "auto" and gpus > 0)
        per_gpu = max(1, settings.get("ray_actors_per_gpu") or 1)
        actors = settings.get("ray_actors") or (gpus * per_gpu if use_gpu
                                                else max(1, int(resources.get("CPU", 1)) // threads))
        actors = max(1, min(actors, len(to_do)))
        logger.info("Ray %s: %d %s actors (%s)", ray.__version__, actors,
                    "GPU" if use_gpu else f"CPU ({threads} threads each)",
                    ", ".join(f"{key} {value:g}" for key, value in sorted(resources.items())
                              if key in ("CPU", "GPU", "memory")))
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # a line per finished shard instead (below)
        context.max_errored_blocks = -1  # a shard that exhausts its retries is reported, the others go on
        dataset = ray.data.from_items([{"input": str(shard), "output": str(output)} for shard, output in to_do],
                                      override_num_blocks=len(to_do))
        resource_args = {"num_gpus": 1 / per_gpu, "num_cpus": threads} if use_gpu else {"num_cpus": threads}
        annotated = dataset.map_batches(
            ShardAnnotator, fn_constructor_kwargs={"settings": settings, "digest": digest, "fault": fault},
            batch_size=1, concurrency=actors, max_restarts=-1, max_task_retries=3, **resource_args,
        )
        finished = set()
        for row in annotated.iter_rows():
            finished.add(row["input"])
            if row["status"] == "failed":
                summary["failed"].append({"input": row["input"], "message": row["message"]})
                logger.error("shard %s failed: %s", row["input"], row["message"])
                continue
            summary["done" if row["status"] == "done" else "skipped"] += 1
            for key in ("documents", "entities", "errors"):
                summary[key] += row[key]
            if progress:
                elapsed = time.perf_counter() - started
                logger.info("[%d/%d shards] %s: %d documents, %d entities (%.1f s on %s); %d documents so far, "
                            "%.2f documents/s", len(finished) + len(skipped), len(pairs), row["input"], row["documents"],
                            row["entities"], row["seconds"], row["node"], summary["documents"],
                            summary["documents"] / elapsed)
        for shard, _ in to_do:
            if str(shard) not in finished:
                summary["failed"].append({"input": str(shard), "message": "no result (its task failed after retries)"})
    summary["seconds"] = round(time.perf_counter() - started, 3)
    summary["documents_per_second"] = round(summary["documents"] / summary["seconds"], 3) if summary["seconds"] else 0.0
    logger.info("done: %d documents, %d entities, %d document errors in %.1f s (%.2f documents/s); shards: %d "
                "annotated, %d skipped (%d document error%s in skipped shards), %d failed%s", summary["documents"],
                summary["entities"], summary["errors"], summary["seconds"], summary["documents_per_second"],
                summary["done"], summary["skipped"], summary["skipped_errors"], "s" * (summary["skipped_errors"] != 1),
                len(summary["failed"]),
                "".join(f"\n  failed: {item['input']}: {item['message']}" for item in summary["failed"]))
    return summary


def settings_from_arguments(*dataclasses) -> dict:
    """predict_vaner.py's parsed argument dataclasses as one settings dict."""
    settings = {}
    for arguments in dataclasses:
        settings.update(asdict(arguments))
    return settings


__all__ = ["KillOnce", "RayArguments", "ShardAnnotator", "annotate_shard", "is_complete", "manifest_path",
           "plan_shards", "run_distributed", "settings_digest", "settings_from_arguments"]
