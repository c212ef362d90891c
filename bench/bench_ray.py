"""Documents/s of predict_vaner.py in one process against predict_vaner.py --ray with 1 and 2 CPU actors.

All three annotate the same abstract-sized documents (consecutive test sentences of the benchmark corpora,
tokens joined with spaces, grouped until a document holds --tokens words: real abstracts' text, cut to
abstract size), written as --shards JSONL shards, with the shipped default model (four types) unless
--model names another. Each is timed end to end as a user runs it (a fresh process: model loading, and
for Ray starting a local instance and its actors, included), on the same machine, one after the other:

    single        predict_vaner.py --input SHARDS --output out.jsonl --threads T
    ray, 1 actor  predict_vaner.py --ray --ray_actors 1 --threads T --input SHARDS --output folder/
    ray, 2 actors predict_vaner.py --ray --ray_actors 2 --threads T/2 ...

The Ray outputs must hold the single process's documents and entities exactly (checked). With --rounds
the three take turns going first and each one's best round counts (other jobs share the machine).

    python bench/bench_ray.py --documents 2000 --shards 8 --threads 2 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
CORPORA = PROJECT.parent / "shared" / "corpora"
# Test splits with distinct texts (bc5cdr-chem shares bc5cdr-disease's texts).
SOURCES = ("ncbi-disease", "bc5cdr-disease", "bc2gm", "linnaeus", "jnlpba", "s800")


def test_sentences(corpus: str):
    tokens = []
    for line in (CORPORA / corpus / "test.tsv").open(encoding="utf-8"):
        line = line.rstrip("\n")
        if not line.strip():
            if tokens:
                yield tokens
            tokens = []
        elif not line.startswith("-DOCSTART-"):
            tokens.append(line.split("\t")[0])
    if tokens:
        yield tokens


def abstracts(count: int, words: int) -> list[dict]:
    """`count` documents of about `words` words, from consecutive test sentences of the corpora in turn."""
    documents = []
    for corpus in SOURCES:
        sentences, size = [], 0
        for tokens in test_sentences(corpus):
            sentences.append(" ".join(tokens))
            size += len(tokens)
            if size >= words:
                documents.append({"id": f"{corpus}-{len(documents)}", "text": " ".join(sentences)})
                sentences, size = [], 0
                if len(documents) == count:
                    return documents
    raise SystemExit(f"the test splits hold only {len(documents)} documents of {words} words")


def run(command: list[str], log: Path) -> float:
    environment = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    started = time.perf_counter()
    with log.open("w") as handle:
        result = subprocess.run(command, cwd=PROJECT, stdout=handle, stderr=subprocess.STDOUT, env=environment)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed, see {log}:\n{log.read_text()[-3000:]}")
    return seconds


def entities(records) -> dict:
    return {record["id"]: record["entities"] for record in records}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=2000)
    parser.add_argument("--tokens", type=int, default=250, help="words per document (an abstract: about 250)")
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the single process and of the "
                                                               "1-actor run; the 2 actors get half each")
    parser.add_argument("--model", help="default: the shipped default model (what predict_vaner.py uses)")
    parser.add_argument("--workdir", type=Path, help="keep shards, outputs and logs here (default: a temp folder)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--rounds", type=int, default=1, help="rounds, each running the three in another order "
                                                               "(rotated); the figure is each one's best round")
    args = parser.parse_args(argv)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_ray_"))
    shards = workdir / "shards"
    shards.mkdir(parents=True, exist_ok=True)
    documents = abstracts(args.documents, args.tokens)
    per_shard = -(-len(documents) // args.shards)
    for number in range(args.shards):
        part = documents[number * per_shard : (number + 1) * per_shard]
        (shards / f"shard{number:03d}.jsonl").write_text("".join(json.dumps(d) + "\n" for d in part), encoding="utf-8")
    words = sum(len(d["text"].split()) for d in documents)
    print(f"{len(documents)} documents ({words / len(documents):.0f} words each on average) in {args.shards} shards; "
          f"{os.cpu_count()} CPUs", flush=True)

    base = [sys.executable, "predict_vaner.py", "--input", str(shards), "--no_progress"]
    if args.model:
        base += ["--model_name_or_path", args.model]
    half = max(1, args.threads // 2)
    runs = {
        "single process": base + ["--output", str(workdir / "single.jsonl"), "--threads", str(args.threads)],
        "ray, 1 actor": base + ["--output", str(workdir / "ray1"), "--ray", "auto", "--ray_actors", "1",
                                "--threads", str(args.threads)],
        "ray, 2 actors": base + ["--output", str(workdir / "ray2"), "--ray", "auto", "--ray_actors", "2",
                                 "--threads", str(half)],
    }
    results = {"documents": len(documents), "words_per_document": round(words / len(documents), 1),
               "shards": args.shards, "threads": args.threads, "runs": {}}
    names = list(runs)
    for round_number in range(args.rounds):
        order = names[round_number % len(names):] + names[: round_number % len(names)]
        for name in order:
            seconds = run(runs[name], workdir / f"{name.replace(' ', '_').replace(',', '')}.{round_number}.log")
            entry = results["runs"].setdefault(name, {"rounds": []})
            entry["rounds"].append(round(seconds, 1))
            entry["seconds"] = min(entry["rounds"])
            entry["documents_per_second"] = round(len(documents) / entry["seconds"], 4)
            print(f"round {round_number + 1}: {name:15s} {seconds:8.1f} s  {len(documents) / seconds:8.3f} documents/s",
                  flush=True)

    single = [json.loads(line) for line in (workdir / "single.jsonl").read_text(encoding="utf-8").splitlines()]
    for folder in ("ray1", "ray2"):
        records = [json.loads(line) for path in sorted((workdir / folder).glob("*.jsonl"))
                   for line in path.read_text(encoding="utf-8").splitlines()]
        assert [r["id"] for r in records] == [r["id"] for r in single], f"{folder}: other documents"
        assert entities(records) == entities(single), f"{folder}: other entities than the single process"
    reference = results["runs"]["single process"]["documents_per_second"]
    for name in ("ray, 1 actor", "ray, 2 actors"):
        results["runs"][name]["vs_single"] = round(results["runs"][name]["documents_per_second"] / reference, 3)
    print("entities identical; Ray / single process:",
          ", ".join(f"{name} {results['runs'][name]['vs_single']:.3f}" for name in ("ray, 1 actor", "ray, 2 actors")))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return results


if __name__ == "__main__":
    main()
