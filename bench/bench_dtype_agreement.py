"""How far bf16 results are from float32's (issue 22): the entities of the same documents annotated by the same
model in both precisions. A measurement, not a test: on a CPU with native bf16 (AVX512-BF16, AMX) `--dtype auto`
picks bf16, and this says what that costs in agreement.

Documents as in bench_one_pass.py (20 abstract-sized documents of 12 NCBI-disease test sentences), every
entity type the model serves, `DocumentAnnotator` with the CLI's defaults. Agreement = entities found in both
precisions (document, type, start, end) / entities found in either. On a CPU without native bf16 the bf16 run
is emulated and slow (about 60x a float32 matmul on AVX2), and its rounding is that emulation's.

    python bench/bench_dtype_agreement.py                       # the default model
    python bench/bench_dtype_agreement.py --documents 5 --model outputs/runs/mixture_multi
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))
sys.path.insert(0, str(PROJECT / "bench"))

from bench_one_pass import cpu_kind, ncbi_documents  # noqa: E402


def entities(model_path: str, dtype: str, documents: list[dict], batch_size: int) -> tuple[set, float]:
    from vaner.documents import Document, DocumentAnnotator
    from vaner.loading import load_model

    model, tokenizer = load_model(model_path, dtype=dtype, device="cpu")
    annotator = DocumentAnnotator(model, tokenizer, batch_size=batch_size)
    started = time.perf_counter()
    annotated = list(annotator.annotate_documents([Document(d["id"], d["text"]) for d in documents]))
    seconds = time.perf_counter() - started
    return {(a.document_id, e.entity_type, e.start, e.end) for a in annotated for e in a.entities}, seconds


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(PROJECT / "vaner" / "default_model"))
    parser.add_argument("--documents", type=int, default=20)
    parser.add_argument("--sentences_per_document", type=int, default=12)
    parser.add_argument("--batch_size", type=int, default=32)
    args = parser.parse_args(argv)

    documents = ncbi_documents(args.documents, args.sentences_per_document)
    in_float32, float32_seconds = entities(args.model, "float32", documents, args.batch_size)
    in_bfloat16, bfloat16_seconds = entities(args.model, "bfloat16", documents, args.batch_size)
    both, either = in_float32 & in_bfloat16, in_float32 | in_bfloat16
    print(f"CPU: {cpu_kind()}; {args.model}; {len(documents)} documents of {args.sentences_per_document} "
          "NCBI-disease test sentences")
    print(f"float32: {len(in_float32)} entities in {float32_seconds:.1f} s; bfloat16: {len(in_bfloat16)} entities "
          f"in {bfloat16_seconds:.1f} s ({bfloat16_seconds / float32_seconds:.2f}x float32's time)")
    print(f"agreement: {len(both)} of {len(either)} = {100 * len(both) / max(len(either), 1):.2f} % "
          f"(only float32: {len(in_float32 - in_bfloat16)}, only bfloat16: {len(in_bfloat16 - in_float32)})")
    for entity in sorted(either - both)[:10]:
        print("  differs:", "float32" if entity in in_float32 else "bfloat16", entity)


if __name__ == "__main__":
    main()
