"""One forward pass for four entity types, start-up time and host work (issue 23). A measurement, not a test:
prints figures and ratios taken in one run, rounds of the compared commands taking turns.

1. `predict_vaner.py` end to end, as a user runs it, on abstract-sized documents (NCBI-disease test sentences,
   `--sentences_per_document` each) for every `--models` folder: start-up alone (a one-letter document),
   then Disease only and all four types. Time beyond start-up = annotation; four types / one type and
   abstracts/s for four types, each model against the first.
2. Start-up split: Python imports vs `vaner.loading.load_model` in a fresh process, with the backbone cache
   warm (the second load) and, with `--cold`, with an empty cache.
3. Host work per abstract: `DocumentAnnotator` with a stand-in model that returns zero logits at once, so what
   is timed is sentence splitting, tokenization, windows and decoding (goal: <= 5 ms per abstract).

    python bench/bench_one_pass.py --models outputs/default-per-type vaner/default_model
    python bench/bench_one_pass.py --models vaner/default_model --dtypes float32 bfloat16 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
NCBI_TEST = PROJECT.parent / "shared" / "corpora" / "ncbi-disease" / "test.tsv"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def cpu_kind() -> str:
    try:
        flags = next(line for line in open("/proc/cpuinfo", encoding="utf-8") if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"
    return "native bf16 (AVX512-BF16/AMX)" if {"avx512_bf16", "amx_bf16"} & set(flags) else "AVX2 only (no native bf16)"


def ncbi_documents(count: int, per_document: int) -> list[dict]:
    """`count` documents of `per_document` consecutive NCBI-disease test sentences (words joined by spaces)."""
    sentences, words = [], []
    for line in NCBI_TEST.read_text(encoding="utf-8").splitlines():
        if line.strip():
            words.append(line.split("\t")[0])
        elif words:
            sentences.append(" ".join(words))
            words = []
    if words:
        sentences.append(" ".join(words))
    if len(sentences) < count * per_document:
        raise SystemExit(f"{NCBI_TEST} has {len(sentences)} sentences, fewer than {count} x {per_document}")
    return [{"id": str(i), "text": " ".join(sentences[i * per_document : (i + 1) * per_document])} for i in range(count)]


def predict_seconds(model: str, input_file: Path, entity_types: list[str] | None, dtype: str, output: Path) -> float:
    command = [sys.executable, str(PROJECT / "predict_vaner.py"), "--model_name_or_path", model, "--input",
               str(input_file), "--output", str(output), "--dtype", dtype, "--no_progress"]
    if entity_types:
        command += ["--entity_types", *entity_types]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, cwd=PROJECT)
    return time.perf_counter() - started


def bench_predict(runs: list[tuple[str, str]], documents, rounds, workdir: Path) -> dict:
    """Seconds of predict_vaner.py per (model, dtype): start-up alone, Disease only, four types (best of `rounds`)."""
    corpus = workdir / "abstracts.jsonl"
    corpus.write_text("".join(json.dumps(d) + "\n" for d in documents), encoding="utf-8")
    tiny = workdir / "one-letter.jsonl"
    tiny.write_text(json.dumps({"id": "a", "text": "a"}) + "\n", encoding="utf-8")
    jobs = {(run, name): (path, types) for run in runs
            for name, path, types in (("start-up", tiny, None), ("Disease", corpus, ["Disease"]), ("four types", corpus, None))}
    best = {}
    for _ in range(rounds):  # each job once per round, so a busy moment does not hit one job only
        for ((model, dtype), name), (path, types) in jobs.items():
            seconds = predict_seconds(model, path, types, dtype, workdir / "out.jsonl")
            best[((model, dtype), name)] = min(best.get(((model, dtype), name), float("inf")), seconds)
    results = {}
    for run in runs:
        start = best[(run, "start-up")]
        one, four = best[(run, "Disease")] - start, best[(run, "four types")] - start
        results[run] = {"start-up s": start, "Disease s": one, "four types s": four, "four / one": four / one,
                        "abstracts/s (four types)": len(documents) / four}
    return results


LOAD_SNIPPET = """
import time
started = time.perf_counter()
import torch, transformers
from vaner.loading import load_model
imported = time.perf_counter()
load_model({model!r}, dtype={dtype!r})
print(imported - started, time.perf_counter() - imported)
"""


def bench_start(model: str, dtype: str, cold: bool, workdir: Path) -> dict:
    """Imports and model load in fresh processes: warm cache (a second load), and cold (an empty cache) if asked."""
    environment = dict(os.environ)
    workdir.mkdir(parents=True, exist_ok=True)
    figures = {}
    runs = [("cold", workdir / "cold-cache"), ("warm", workdir / "cold-cache")] if cold else [("warm", None)]
    for label, cache in runs:
        if cache is not None:
            environment["VANER_CACHE_DIR"] = str(cache)
        output = subprocess.run([sys.executable, "-c", LOAD_SNIPPET.format(model=model, dtype=dtype)], check=True,
                                capture_output=True, text=True, cwd=PROJECT, env=environment).stdout.split()
        figures[f"imports s ({label})"], figures[f"load s ({label})"] = float(output[-2]), float(output[-1])
    return figures


def bench_host_work(model: str, documents, multi_type: bool | None, rounds: int = 3) -> float:
    """ms per abstract of the annotator's own work, with a stand-in model that answers at once."""
    import torch
    from transformers.modeling_outputs import TokenClassifierOutput

    from configuration_vaner import VanerConfig
    from vaner.documents import Document, DocumentAnnotator
    from vaner.loading import load_tokenizer

    config = VanerConfig.from_pretrained(model)
    if multi_type is not None:
        config.multi_type = multi_type

    class Instant(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.config, self.anchor = config, torch.nn.Parameter(torch.zeros(1))

        def forward(self, input_ids, attention_mask=None, entity_type_ids=None, dataset_ids=None):
            width = 3 if entity_type_ids is not None else 1 + 2 * len(config.entity_types)
            return TokenClassifierOutput(logits=torch.zeros(*input_ids.shape, width))

    texts = [Document(d["id"], d["text"]) for d in documents]
    # bench_splitting.py times documents up to 2 MB: above the default size limit, which would refuse them at once
    annotator = DocumentAnnotator(Instant(), load_tokenizer(model), max_document_length=max(len(t.text) for t in texts))
    list(annotator.annotate_documents([Document("warm-up", text[:2000]) for text in [texts[0].text]]))
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        list(annotator.annotate_documents(texts))
        best = min(best, time.perf_counter() - started)
    return 1000 * best / len(texts)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=[str(PROJECT / "vaner" / "default_model")],
                        help="model folders; ratios are taken against the first")
    parser.add_argument("--documents", type=int, default=20)
    parser.add_argument("--sentences_per_document", type=int, default=12)
    parser.add_argument("--dtypes", nargs="+", default=["float32"], choices=["auto", "bfloat16", "float32"],
                        help="each model is run in each dtype")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--cold", action="store_true", help="also time a first load with an empty backbone cache")
    parser.add_argument("--skip", nargs="*", default=[], choices=["predict", "start", "host"])
    args = parser.parse_args(argv)
    if not NCBI_TEST.is_file():
        raise SystemExit(f"{NCBI_TEST} not found: the benchmark reads ../shared beside the project")
    documents = ncbi_documents(args.documents, args.sentences_per_document)
    words = sum(len(d["text"].split()) for d in documents) / len(documents)
    print(f"CPU: {cpu_kind()}, {os.cpu_count()} cores; dtypes {args.dtypes}; {len(documents)} documents of "
          f"{args.sentences_per_document} NCBI-disease test sentences ({words:.0f} words each)")
    with tempfile.TemporaryDirectory() as workdir:
        workdir = Path(workdir)
        if "host" not in args.skip:
            for model in args.models:
                config = json.loads((Path(model) / "config.json").read_text())
                print(f"host work, {model} ({'multi-type' if config.get('multi_type') else 'per-type'}): "
                      f"{bench_host_work(model, documents, None):.2f} ms per abstract")
        if "start" not in args.skip:
            for model in args.models:
                figures = bench_start(model, args.dtypes[0], args.cold, workdir / f"start-{args.models.index(model)}")
                print(f"start, {model}: " + ", ".join(f"{k} {v:.2f}" for k, v in figures.items()))
        if "predict" not in args.skip:
            runs = [(model, dtype) for model in args.models for dtype in args.dtypes]
            results = bench_predict(runs, documents, args.rounds, workdir)
            first = results[runs[0]]
            for (model, dtype), figures in results.items():
                speedup = figures["abstracts/s (four types)"] / first["abstracts/s (four types)"]
                print(f"predict_vaner.py, {model} ({dtype}): " + ", ".join(f"{k} {v:.2f}" for k, v in figures.items())
                      + f", four-type abstracts/s vs {runs[0][0]} ({runs[0][1]}): {speedup:.2f}x")


if __name__ == "__main__":
    main()
