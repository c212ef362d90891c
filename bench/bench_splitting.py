"""Sentence splitting and the annotator's whole host path against document size (issue 24): linear, not
quadratic. A measurement, not a test: prints seconds and seconds per MB for each size, in one run.

Documents are NCBI-disease test sentences (tokens joined with spaces) repeated up to each size, in two layouts:
one line (sentences joined with a space) and one sentence per line. For each: `split_sentences` alone (best of
--rounds), and the annotator's host work (splitting, tokenization, windows, decoding: `DocumentAnnotator` with
a stand-in model that answers at once, bench_one_pass.py's, best of 2) on the default model's tokenizer.

    python bench/bench_splitting.py --sizes_kb 25 50 100 200 400 800 1600 2000
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))
sys.path.insert(0, str(PROJECT / "bench"))

from bench_one_pass import NCBI_TEST, bench_host_work, cpu_kind  # noqa: E402


def document_of(sentences: list[str], size: int, separator: str) -> str:
    parts, length = [], 0
    while length < size:
        for sentence in sentences:
            parts.append(sentence)
            length += len(sentence) + 1
            if length >= size:
                break
    return separator.join(parts)[:size]


def best_of(rounds: int, function) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - started)
    return best


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes_kb", type=int, nargs="+", default=[25, 50, 100, 200, 400, 800, 1600, 2000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip_host", action="store_true", help="time split_sentences only")
    args = parser.parse_args(argv)

    from text_vaner import split_sentences
    from vaner import DEFAULT_MODEL
    from vaner.corpora import load_corpus

    sentences = [" ".join(sentence.tokens) for sentence in load_corpus("ncbi-disease", NCBI_TEST)]
    print(f"CPU: {cpu_kind()}; documents of NCBI-disease test sentences")
    print("| layout | size | characters | sentences | split s | split s/MB | host s | host s/MB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for layout, separator in (("one line", " "), ("a sentence per line", "\n")):
        for size_kb in args.sizes_kb:
            text = document_of(sentences, size_kb * 1000, separator)
            spans = split_sentences(text)
            split = best_of(args.rounds, lambda text=text: split_sentences(text))
            megabytes = len(text.encode()) / 1e6
            host = "" if args.skip_host else bench_host_work(str(DEFAULT_MODEL), [{"id": "d", "text": text}], None,
                                                             rounds=2) / 1000
            host_cells = "| |" if args.skip_host else f"| {host:.2f} | {host / megabytes:.2f} |"
            print(f"| {layout} | {size_kb} KB | {len(text):,} | {len(spans):,} | {split:.3f} | {split / megabytes:.3f} "
                  f"{host_cells}", flush=True)


if __name__ == "__main__":
    main()
