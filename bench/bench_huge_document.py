"""Peak memory of predict_vaner.py above its loaded model, on one huge document (issue 32 item 3).

Each case runs `predict_vaner.main` in a process of its own on one single-line JSONL document; the process's
high-water mark is reset once the model is loaded, so the figure is what reading, annotating and writing the
document took on top of the model:

    refused  a 30,000,000-character document, over the default --max_document_length (1,000,000): refused,
             with an error record naming it (exit status 3);
    limit    a document of exactly the limit, with sentences: the largest one the limit admits, annotated;
    no_end   a document with no sentence end (--no_end_chars, default 130,000 as in the issue): one sentence,
             streamed in windows.

The model is by default a small random VANER (hidden 64, 2 layers, the shipped model's four types and its
SmolLM2 tokenizer): the memory measured is the annotation path's, not the model's, and it runs in seconds. Its
O logit is raised by --o_bias (0.4) so that it tags about one entity per 30 characters of this text, as the
shipped model does (one per 25); unbiased, it tags one word in three and the entities dominate. --model
vaner/default_model measures the shipped model (slow on a CPU: pick the cases).

    nice -n 10 python bench/bench_huge_document.py
    nice -n 10 python bench/bench_huge_document.py --model vaner/default_model --cases refused no_end
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from text_vaner import DEFAULT_MAX_DOCUMENT_LENGTH  # noqa: E402

SENTENCES = [
    "Cisplatin-induced nephrotoxicity was reduced in BRCA1 mutant mice treated with amifostine.",
    "Mutations of the APC gene cause familial adenomatous polyposis in humans.",
    "Naloxone reversed the antihypertensive effect of clonidine in spontaneously hypertensive rats.",
    "Expression of TNF-alpha and IL-6 rose in patients with rheumatoid arthritis (n = 42, p < 0.05).",
    "The risk of ovarian cancer was 12 % higher in women carrying BRCA2 variants.",
    "Escherichia coli strains resistant to ciprofloxacin were isolated from 17 of 60 samples.",
    "Long-term lithium therapy was associated with hypothyroidism and nephrogenic diabetes insipidus.",
    "Knockdown of beta-catenin by siRNA suppressed the growth of HCT116 colorectal cancer cells.",
]

# Runs in the measured process: the high-water mark starts again once the model is loaded.
_CHILD = """
import json, sys, time
import predict_vaner, vaner.loading

def status_kb(field):
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith(field + ":"))

marks = {{}}
load_model = vaner.loading.load_model

def load_and_mark(*args, **kwargs):
    loaded = load_model(*args, **kwargs)
    marks["model_kb"] = status_kb("VmRSS")
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")  # reset VmHWM to the current resident size
    marks["started"] = time.perf_counter()
    return loaded

vaner.loading.load_model = load_and_mark
marks["status"] = predict_vaner.main({argv!r})
marks["seconds"] = time.perf_counter() - marks["started"]
marks["peak_kb"] = status_kb("VmHWM")
print("BENCH", json.dumps(marks), file=sys.stderr)
"""


def document_text(characters: int, sentence_ends: bool, seed: int = 0) -> str:
    """Exactly `characters` characters of biomedical sentences in random order; without sentence ends the
    full stops are left out, so the whole text is one sentence."""
    generator = random.Random(seed)
    pieces, size = [], 0
    while size < characters:
        sentence = generator.choice(SENTENCES)
        if not sentence_ends:
            sentence = sentence.rstrip(".")
        pieces.append(sentence)
        size += len(sentence) + 1
    return " ".join(pieces)[:characters]


def small_model(folder: Path, o_bias: float) -> Path:
    """A small random VANER with the shipped model's tokenizer and entity types, its O logit raised by `o_bias`."""
    import torch

    from configuration_vaner import VanerConfig
    from modeling_vaner import VanerForTokenClassification
    from vaner import DEFAULT_MODEL
    from vaner.loading import load_tokenizer

    tokenizer = load_tokenizer(DEFAULT_MODEL)
    shipped = json.loads((Path(DEFAULT_MODEL) / "config.json").read_text())
    config = VanerConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                         pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, entity_types=shipped["entity_types"],
                         dataset_names=shipped["dataset_names"])
    torch.manual_seed(0)
    model = VanerForTokenClassification(config).eval()
    model.prepare_instructions(tokenizer)
    with torch.no_grad():
        model.classifier.bias[0] = o_bias
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def run_case(name: str, characters: int, sentence_ends: bool, model: str, workdir: Path, args) -> dict:
    source = workdir / f"{name}.jsonl"
    text = document_text(characters, sentence_ends)
    source.write_text(json.dumps({"id": name, "text": text}) + "\n", encoding="utf-8")
    del text
    output = workdir / f"{name}.out.jsonl"
    argv = ["--model_name_or_path", model, "--input", str(source), "--output", str(output), "--no_progress",
            "--max_document_length", str(args.max_document_length), "--batch_size", str(args.batch_size),
            "--dtype", args.dtype, "--threads", str(args.threads)]
    process = subprocess.run([sys.executable, "-c", _CHILD.format(argv=argv)], cwd=PROJECT, capture_output=True,
                             text=True)
    if "BENCH" not in process.stderr:
        raise SystemExit(f"case {name} failed:\n{process.stderr[-3000:]}")
    marks = json.loads(process.stderr.rsplit("BENCH", 1)[1])
    (record,) = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    return {"case": name, "characters": characters, "input_mb": source.stat().st_size / 1e6, "status": marks["status"],
            "entities": len(record["entities"]), "error": record.get("error"), "seconds": marks["seconds"],
            "model_mb": marks["model_kb"] / 1024, "peak_above_model_mb": (marks["peak_kb"] - marks["model_kb"]) / 1024}


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a VANER folder or Hub id (default: a small random VANER)")
    parser.add_argument("--cases", nargs="+", default=["refused", "limit", "no_end"],
                        choices=["refused", "limit", "no_end"])
    parser.add_argument("--refused_chars", type=int, default=30_000_000)
    parser.add_argument("--no_end_chars", type=int, default=130_000)
    parser.add_argument("--max_document_length", type=int, default=DEFAULT_MAX_DOCUMENT_LENGTH)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--dtype", default="auto", choices=["auto", "bfloat16", "float32"])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 when other jobs load the cores)")
    parser.add_argument("--o_bias", type=float, default=0.4, help="the small model's O logit bias (0: unbiased)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    sizes = {"refused": (args.refused_chars, True), "limit": (args.max_document_length, True),
             "no_end": (args.no_end_chars, False)}
    with tempfile.TemporaryDirectory(prefix="bench-huge-") as workdir:
        model = args.model or str(small_model(Path(workdir) / "small-vaner", args.o_bias))
        results = [run_case(name, *sizes[name], model, Path(workdir), args) for name in args.cases]
    small = f"small random VANER (hidden 64, 2 layers, SmolLM2 tokenizer, 4 types, O bias {args.o_bias})"
    print(f"model {args.model or small}; "
          f"--max_document_length {args.max_document_length:,}; dtype {args.dtype}; {args.threads} thread(s)")
    print("| case | characters | JSONL MB | exit | entities | seconds | model RSS MB | peak above model MB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for result in results:
        print(f"| {result['case']} | {result['characters']:,} | {result['input_mb']:.1f} | {result['status']} | "
              f"{result['entities']:,} | {result['seconds']:.1f} | {result['model_mb']:.0f} | "
              f"{result['peak_above_model_mb']:.0f} |")
        if result["error"]:
            print(f"  error record: {result['error']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")
    return results


if __name__ == "__main__":
    main()
