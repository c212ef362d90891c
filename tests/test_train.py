"""train_vaner.py end to end on a tiny backbone and a toy mixture: learning, output folder, resuming."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from datasets import Dataset
from safetensors.torch import load_file
from transformers import AutoModelForTokenClassification, Trainer, pipeline

import train_vaner
from vaner.documents import annotate_text
from vaner.export import write_model_card

ROOT = Path(__file__).resolve().parents[1]
IGNORE = -100


def train_arguments(llama_dir, toy_mixture_dir, output_dir, *extra):
    return [
        "--model_name_or_path", str(llama_dir),
        "--dataset_name_or_path", str(toy_mixture_dir),
        "--output_dir", str(output_dir),
        "--per_device_train_batch_size", "4",
        "--learning_rate", "5e-3",
        "--lora_r", "4",
        "--lora_alpha", "8",
        "--logging_steps", "1",
        "--bf16", "False",
        "--seed", "0",
        "--dataloader_num_workers", "0",
        *extra,
    ]


def test_training_learns_and_writes_a_folder_the_stock_api_loads(llama_dir, toy_mixture_dir, tmp_path):
    output = tmp_path / "model"
    result = train_vaner.main(
        train_arguments(llama_dir, toy_mixture_dir, output, "--max_steps", "40", "--eval_strategy", "steps",
                        "--eval_steps", "20", "--save_strategy", "steps", "--save_steps", "20")
    )
    losses = [entry["loss"] for entry in result["log_history"] if "loss" in entry]
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5
    assert any("eval_macro_f1" in entry and "eval_toy-disease_f1" in entry for entry in result["log_history"])

    assert (output / "adapter" / "adapter_model.safetensors").is_file()
    assert not list(output.glob("model*.safetensors"))
    card = (output / "README.md").read_text()
    metadata = yaml.safe_load(card.split("---")[1])
    assert "base_model" not in metadata and "datasets" not in metadata  # local paths: named in the text only
    assert str(llama_dir) in card and str(toy_mixture_dir) in card
    assert metadata["pipeline_tag"] == "token-classification"
    test_rows = {(row["corpus"], row["split"]) for row in result["results"]}
    assert ("toy-disease", "test") in test_rows and ("toy-chem", "validation") in test_rows
    f1_in_card = {r["dataset"]["name"]: r["metrics"][0]["value"] for r in metadata["model-index"][0]["results"]}
    assert set(f1_in_card) >= {"toy-disease", "toy-chem"}
    assert "python train_vaner.py --model_name_or_path" in card

    model = AutoModelForTokenClassification.from_pretrained(output, trust_remote_code=True)
    assert model.config.entity_types == ["Disease", "Chemical"]
    assert model.config.dataset_names == ["toy-chem", "toy-disease"]
    ner = pipeline("token-classification", model=str(output), trust_remote_code=True, aggregation_strategy="simple")
    text = "The risk of tumour after Naloxone in mice ."
    found = ner(text)
    assert found, "a model trained to a fifth of its first loss tags the training template"
    for group in found:
        assert group["entity_group"] in {"Disease", "Chemical"}
        assert text[group["start"] : group["end"]] == group["word"]


def adapter_weights(folder):
    return load_file(str(folder / "adapter" / "adapter_model.safetensors"))


def test_an_interrupted_run_resumes_to_the_same_state(llama_dir, toy_mixture_dir, tmp_path, monkeypatch):
    common = ("--max_steps", "8", "--save_strategy", "steps", "--save_steps", "4", "--eval_strategy", "no",
              "--no_load_best_model_at_end", "--no_evaluate_test")
    train_vaner.main(train_arguments(llama_dir, toy_mixture_dir, tmp_path / "straight", *common))

    interrupted = tmp_path / "interrupted"
    original_step = Trainer.training_step

    def crash_at_step_6(self, *args, **kwargs):
        if self.state.global_step == 6:
            raise KeyboardInterrupt("simulated interruption")
        return original_step(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "training_step", crash_at_step_6)
    with pytest.raises(KeyboardInterrupt):
        train_vaner.main(train_arguments(llama_dir, toy_mixture_dir, interrupted, *common))
    monkeypatch.undo()
    assert (interrupted / "checkpoint-4").is_dir() and not (interrupted / "checkpoint-8").exists()

    train_vaner.main(train_arguments(llama_dir, toy_mixture_dir, interrupted, *common, "--resume_from_checkpoint", "latest"))
    straight, resumed = adapter_weights(tmp_path / "straight"), adapter_weights(interrupted)
    assert straight.keys() == resumed.keys()
    for name in straight:
        torch.testing.assert_close(resumed[name], straight[name], atol=1e-6, rtol=1e-5)
    changed = load_file(str(interrupted / "checkpoint-4" / "adapter_model.safetensors"))  # the state moved after step 4
    assert any((changed[name] - resumed[name]).abs().max() > 1e-6 for name in resumed if name in changed)


def test_4bit_on_cpu_is_a_clear_error(llama_dir, toy_mixture_dir, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: 4-bit loading is allowed")
    with pytest.raises(SystemExit, match="needs a CUDA GPU"):
        train_vaner.main(train_arguments(llama_dir, toy_mixture_dir, tmp_path / "q", "--load_in_4bit"))


def test_time_limit_stops_training_with_a_final_checkpoint(llama_dir, toy_mixture_dir, tmp_path):
    output = tmp_path / "limited"
    result = train_vaner.main(
        train_arguments(llama_dir, toy_mixture_dir, output, "--max_steps", "1000", "--max_train_minutes", "0.0001",
                        "--eval_strategy", "steps", "--eval_steps", "500", "--save_strategy", "steps", "--save_steps", "500",
                        "--no_evaluate_test")
    )
    assert result["log_history"][-1]["step"] == 1
    assert (output / "checkpoint-1").is_dir()
    assert any("eval_macro_f1" in entry for entry in result["log_history"])


def test_two_cpu_processes_share_the_batches_under_torchrun(llama_dir, toy_mixture_dir, tmp_path):
    """The script runs unchanged under torchrun (--use_cpu: gloo): each process takes its own rows, so with
    two processes the same number of steps covers twice the epoch; one process writes the folder."""
    output = tmp_path / "torchrun"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
        "train_vaner.py",
        *train_arguments(llama_dir, toy_mixture_dir, output, "--max_steps", "3", "--eval_strategy", "no",
                         "--save_strategy", "no", "--no_load_best_model_at_end", "--no_evaluate_test", "--use_cpu"),
    ]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    finished = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-4000:]

    single = train_vaner.main(train_arguments(llama_dir, toy_mixture_dir, tmp_path / "single", "--max_steps", "3",
                                              "--eval_strategy", "no", "--save_strategy", "no",
                                              "--no_load_best_model_at_end", "--no_evaluate_test"))
    two_process_epoch = json.loads((output / "trainer_state.json").read_text())["epoch"]
    assert two_process_epoch == pytest.approx(2 * single["log_history"][-1]["epoch"], rel=0.05)
    assert (output / "adapter" / "adapter_model.safetensors").is_file()
    assert "batch 8," in (output / "README.md").read_text()  # 4 per process x 2 processes
    assert AutoModelForTokenClassification.from_pretrained(output, trust_remote_code=True).config.entity_types


def test_args_files_are_inlined_where_they_stand(tmp_path):
    preset = tmp_path / "preset.args"
    preset.write_text("--learning_rate 1e-3\n--max_steps 1200\n")
    assert train_vaner.expand_args_files(["--args_file", str(preset), "--max_steps", "5"]) == [
        "--learning_rate", "1e-3", "--max_steps", "1200", "--max_steps", "5"]
    assert train_vaner.expand_args_files([f"--args_file={preset}"]) == ["--learning_rate", "1e-3", "--max_steps", "1200"]
    with pytest.raises(SystemExit, match="no such file"):
        train_vaner.expand_args_files(["--args_file", str(tmp_path / "missing.args")])
    quoted = tmp_path / "quoted.args"
    quoted.write_text("# a comment\n--instruction_template '{entity_type} in {dataset}: '  # why\n")
    assert train_vaner.expand_args_files(["--args_file", str(quoted)]) == ["--instruction_template", "{entity_type} in {dataset}: "]


def test_the_cpu_preset_parses():
    parser = train_vaner.build_parser()
    argv = train_vaner.expand_args_files(["--args_file", str(ROOT / "presets" / "smollm2-135m-cpu.args"),
                                          "--model_name_or_path", "m", "--dataset_name_or_path", "d", "--max_steps", "7"])
    _, _, training_args = parser.parse_args_into_dataclasses(args=argv, look_for_args_file=False)
    assert training_args.learning_rate == 1e-3 and training_args.max_steps == 7


def test_card_metadata_names_hub_ids_only(tmp_path):
    rows = [{"corpus": "NCBI-disease", "split": "test", "precision": 0.8, "recall": 0.9, "f1": 0.847}]
    fields = dict(entity_types=["Disease"], dataset_names=["NCBI-disease"], weights_note="", split_note="",
                  train_rows=10, dbr_rows=5, method="LoRA.", learning_rate=2e-4, lr_scheduler_type="constant",
                  batch_size=8, epochs="1.00", max_length=128, seed=42, bidirectional=True, multi_type=True,
                  command="python train_vaner.py")
    card = write_model_card(tmp_path, repo_id="someone/vaner", results=rows, base_model="meta-llama/Llama-2-7b-hf",
                            dataset="someone/vaner-dbr", **fields)
    assert card.data.base_model == "meta-llama/Llama-2-7b-hf" and card.data.datasets == ["someone/vaner-dbr"]
    assert card.data.eval_results[0].metric_value == 0.847
    assert "one forward pass tags every type" in card.text


def test_validation_scores_follow_each_sentence_to_its_corpus_under_group_by_length(llama_dir, toy_mixture_dir, tmp_path):
    """group_by_length reorders evaluation in transformers 5.x: the F1 logged per corpus during training must
    still be the final scoring's F1 of the same weights, corpus by corpus, windows stitched alike."""
    result = train_vaner.main(
        train_arguments(llama_dir, toy_mixture_dir, tmp_path / "grouped", "--max_steps", "80",
                        "--train_sampling_strategy", "group_by_length", "--per_device_eval_batch_size", "3",
                        "--max_length", "12", "--eval_strategy", "steps", "--eval_steps", "80", "--save_strategy", "no",
                        "--no_load_best_model_at_end", "--no_evaluate_test")
    )
    logged = [entry for entry in result["log_history"] if "eval_macro_f1" in entry][-1]
    final = {row["corpus"]: row["f1"] for row in result["results"] if row["split"] == "validation"}
    assert set(final) == {"toy-disease", "toy-chem"}
    for corpus, f1 in final.items():
        assert logged[f"eval_{corpus}_f1"] == pytest.approx(f1, abs=1e-9), corpus


def test_metrics_refuse_rows_that_come_back_reordered():
    from conftest import toy_sentences
    from transformers import EvalPrediction

    from vaner.evaluation import trainer_metrics
    from vaner.features import sentences_to_dataset

    sentences = sentences_to_dataset(toy_sentences(1))  # one sentence, labelled for Disease then Chemical
    rows = Dataset.from_dict({"sentence_index": [0, 1], "word_ids": [[-1, *range(10)]] * 2})
    labels = np.array([[IGNORE, *tags] for tags in sentences["ner_tags"]])
    compute = trainer_metrics(sentences, rows)
    assert compute(EvalPrediction(predictions=labels, label_ids=labels))["macro_f1"] == 1.0
    with pytest.raises(ValueError, match="changed the row order"):
        compute(EvalPrediction(predictions=labels[::-1], label_ids=labels[::-1]))


def test_lower_layers_bf16_on_cpu_train_and_load_with_the_stock_api(llama_dir, toy_mixture_dir, tmp_path):
    """The CPU preset's levers: only the lower layers of the backbone, bf16 autocast without --use_cpu; the folder
    loads with those layers alone through the stock Auto and pipeline API."""
    output = tmp_path / "lower"
    arguments = train_arguments(llama_dir, toy_mixture_dir, output, "--max_steps", "4", "--eval_strategy", "no",
                                "--save_strategy", "no", "--no_load_best_model_at_end", "--no_evaluate_test",
                                "--num_hidden_layers", "1", "--lora_dropout", "0", "--attn_implementation", "sdpa_float32")
    arguments[arguments.index("--bf16") + 1] = "True"
    train_vaner.main(arguments)
    model = AutoModelForTokenClassification.from_pretrained(output, trust_remote_code=True)
    assert model.config.num_hidden_layers == len(model.model.layers) == 1
    assert json.loads((output / "config.json").read_text())["num_hidden_layers"] == 1
    assert "sdpa_float32" not in (output / "config.json").read_text()  # a training-time kernel only
    ner = pipeline("token-classification", model=str(output), trust_remote_code=True, dtype="float32")
    text = "The risk of tumour after Naloxone in mice ."
    expected = [(e.entity_type, e.start, e.end) for e in annotate_text(model.float(), ner.tokenizer, text)]
    assert [(r["entity_group"], r["start"], r["end"]) for r in ner(text)] == expected


def test_training_from_a_vaner_folder_runs_its_code_only_with_trust_remote_code(tiny_vaner_dir, toy_mixture_dir, tmp_path):
    from conftest import folder_with_tokenizer_code

    folder = folder_with_tokenizer_code(tiny_vaner_dir, tmp_path / "start")
    arguments = train_arguments(folder, toy_mixture_dir, tmp_path / "further", "--max_steps", "1", "--eval_strategy", "no",
                                "--save_strategy", "no", "--no_load_best_model_at_end", "--no_evaluate_test", "--full_finetune")
    train_vaner.main(arguments)
    assert not (folder / "CODE_RAN").exists()
    assert (tmp_path / "further" / "model.safetensors").is_file()


def test_an_output_folder_holding_a_model_or_checkpoints_is_refused(llama_dir, toy_mixture_dir, tmp_path):
    quick = ("--max_steps", "1", "--eval_strategy", "no", "--save_strategy", "no", "--no_load_best_model_at_end",
             "--no_evaluate_test")
    for name, held in (("full", "config.json"), ("adapter", "adapter/adapter_config.json"),
                       ("interrupted", "checkpoint-4/trainer_state.json")):
        output = tmp_path / name
        (output / held).parent.mkdir(parents=True, exist_ok=True)
        (output / held).write_text("{}")
        with pytest.raises(SystemExit, match="--overwrite_output_dir"):
            train_vaner.main(train_arguments(llama_dir, toy_mixture_dir, output, *quick))
        assert [path.relative_to(output).as_posix() for path in output.rglob("*") if path.is_file()] == [held]
    train_vaner.main(train_arguments(llama_dir, toy_mixture_dir, tmp_path / "full", *quick, "--overwrite_output_dir"))
    assert (tmp_path / "full" / "adapter" / "adapter_model.safetensors").is_file()


def test_a_corrupt_checkpoint_is_named_and_the_previous_intact_one_resumed(llama_dir, toy_mixture_dir, tmp_path, caplog):
    import shutil

    common = ("--max_steps", "6", "--save_strategy", "steps", "--save_steps", "2", "--save_total_limit", "3",
              "--eval_strategy", "no", "--no_load_best_model_at_end", "--no_evaluate_test")
    run_dir = tmp_path / "run"
    original_step = Trainer.training_step

    def crash_at_step_5(self, *args, **kwargs):
        if self.state.global_step == 5:
            raise KeyboardInterrupt("simulated interruption")
        return original_step(self, *args, **kwargs)

    Trainer.training_step = crash_at_step_5
    try:
        with pytest.raises(KeyboardInterrupt):
            train_vaner.main(train_arguments(llama_dir, toy_mixture_dir, run_dir, *common))
    finally:
        Trainer.training_step = original_step
    assert sorted(path.name for path in run_dir.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]

    def truncate(path):
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    for case, corrupt_file, resume in (("weights", "adapter_model.safetensors", "latest"),
                                       ("optimizer", "optimizer.pt", "latest"),
                                       ("state", "trainer_state.json", "checkpoint-4")):
        output = tmp_path / case
        shutil.copytree(run_dir, output)
        truncate(output / "checkpoint-4" / corrupt_file)
        caplog.clear()
        argument = resume if resume == "latest" else str(output / resume)
        result = train_vaner.main(train_arguments(llama_dir, toy_mixture_dir, output, *common,
                                                  "--resume_from_checkpoint", argument))
        assert f"checkpoint-4/{corrupt_file}" in caplog.text and "checkpoint-2" in caplog.text, case
        assert result["log_history"][-1]["step"] == 6
        assert (output / "adapter" / "adapter_model.safetensors").is_file()

    truncate(run_dir / "checkpoint-4" / "scheduler.pt")
    truncate(run_dir / "checkpoint-2" / "rng_state.pth")
    with pytest.raises(SystemExit, match=r"checkpoint-2/rng_state\.pth"):
        train_vaner.main(train_arguments(llama_dir, toy_mixture_dir, run_dir, *common, "--resume_from_checkpoint", "latest"))


def test_missing_model_folder_is_named(toy_mixture_dir, tmp_path):
    missing = tmp_path / "no" / "such" / "backbone"
    with pytest.raises(SystemExit, match=f"{missing}: no such model folder"):
        train_vaner.main(train_arguments(missing, toy_mixture_dir, tmp_path / "model", "--max_steps", "1"))


def test_4bit_config_leaves_the_trained_head_unquantized(llama_dir):
    """The head is a modules_to_save copy trained in full: quantized, peft's forward asserts (seen on an H100)."""
    from transformers.quantizers.base import HfQuantizer

    from modeling_vaner import VanerForTokenClassification

    model = VanerForTokenClassification.from_pretrained(str(llama_dir), entity_types=["Disease"])
    config = train_vaner.qlora_quantization_config()
    skipped = HfQuantizer.get_modules_to_not_convert(model, config.llm_int8_skip_modules, model._keep_in_fp32_modules)
    assert "classifier" in skipped
    assert config.load_in_4bit and config.bnb_4bit_quant_type == "nf4"


def test_lora_from_layer_stops_the_backward_pass_there_and_the_folder_loads(llama_dir, toy_mixture_dir, tokenizer, tmp_path):
    """--lora_from_layer N: LoRA only in layers N and up, so nothing below them is differentiated (the step's
    saving); the adapter-only folder loads through the stock API with only layers N and up changed."""
    output = tmp_path / "upper"
    train_vaner.main(train_arguments(llama_dir, toy_mixture_dir, output, "--max_steps", "2", "--eval_strategy", "no",
                                     "--save_strategy", "no", "--no_load_best_model_at_end", "--no_evaluate_test",
                                     "--lora_from_layer", "1"))
    assert json.loads((output / "adapter" / "adapter_config.json").read_text())["layers_to_transform"] == [1]
    model = AutoModelForTokenClassification.from_pretrained(output, trust_remote_code=True)
    base = AutoModelForTokenClassification.from_pretrained(llama_dir).model
    for index, changed in ((0, False), (1, True)):  # the adapter, merged on loading, touched layer 1 only
        differs = not torch.equal(model.model.layers[index].mlp.down_proj.weight, base.layers[index].mlp.down_proj.weight)
        assert differs == changed

    model_args = train_vaner.ModelArguments(model_name_or_path=str(llama_dir), lora_from_layer=1)
    peft_model = train_vaner.build_model(model_args, ["Disease"], ["toy-disease"], tokenizer)
    lora_layers = {name.split(".layers.")[1].split(".")[0] for name, p in peft_model.named_parameters()
                   if p.requires_grad and "lora_" in name}
    assert lora_layers == {"1"}
    outputs_need_grad = []
    for layer in peft_model.get_base_model().model.layers:
        layer.register_forward_hook(lambda module, args, output: outputs_need_grad.append(
            (output[0] if isinstance(output, tuple) else output).requires_grad))
    ids = tokenizer("tumour after naloxone", return_tensors="pt")
    peft_model(**ids, labels=torch.zeros_like(ids["input_ids"]), entity_type_ids=torch.zeros(1, dtype=torch.long)).loss.backward()
    assert outputs_need_grad == [False, True]
    with pytest.raises(ValueError, match="layers 0 to 1"):
        train_vaner.build_model(train_vaner.ModelArguments(model_name_or_path=str(llama_dir), lora_from_layer=2),
                                ["Disease"], ["toy-disease"], tokenizer)


def test_multi_type_training_warm_started_from_a_per_type_folder(llama_dir, toy_mixture_dir, tmp_path, tokenizer):
    per_type = tmp_path / "per-type"
    train_vaner.main(train_arguments(llama_dir, toy_mixture_dir, per_type, "--max_steps", "12", "--eval_strategy", "no",
                                     "--save_strategy", "no", "--no_evaluate_test"))
    source = adapter_weights(per_type)

    model_args = train_vaner.ModelArguments(model_name_or_path=str(llama_dir), lora_r=4, lora_alpha=8,
                                            multi_type=True, init_adapter=str(per_type))
    warm = train_vaner.build_model(model_args, ["Disease", "Chemical"], ["toy-chem", "toy-disease"], tokenizer)
    parameters = dict(warm.named_parameters())
    lora_a = next(key for key in source if ".lora_A." in key)
    torch.testing.assert_close(parameters[lora_a.replace(".lora_A.", ".lora_A.default.")], source[lora_a])
    head = parameters["base_model.model.classifier.modules_to_save.default.weight"]
    assert head.shape[0] == 6  # O/B/I for Disease and Chemical, each started from the per-type head
    torch.testing.assert_close(head, source["base_model.model.classifier.weight"].repeat(2, 1))

    output = tmp_path / "multi"
    result = train_vaner.main(train_arguments(llama_dir, toy_mixture_dir, output, "--multi_type", "--init_adapter",
                                              str(per_type), "--max_steps", "30", "--eval_strategy", "steps",
                                              "--eval_steps", "30", "--save_strategy", "steps", "--save_steps", "30"))
    assert any("eval_toy-chem_f1" in entry for entry in result["log_history"])
    model = AutoModelForTokenClassification.from_pretrained(output, trust_remote_code=True)
    assert model.config.multi_type and model.classifier.out_features == 6
    ner = pipeline("token-classification", model=str(output), trust_remote_code=True)
    text = "The risk of tumour after Naloxone in mice ."
    assert {(group["entity_group"], group["word"]) for group in ner(text)} == {("Disease", "tumour"), ("Chemical", "Naloxone")}


@pytest.mark.parametrize("options, message", [(["--full_finetune", "--merge"], "drop --merge"),
                                              (["--full_finetune", "--init_adapter", "x"], "trains no adapter"),
                                              (["--unnamed_fraction", "0.25"], "is a --multi_type option")])
def test_options_that_would_be_ignored_are_refused(llama_dir, toy_mixture_dir, tmp_path, options, message):
    with pytest.raises(SystemExit, match=message):
        train_vaner.main(train_arguments(llama_dir, toy_mixture_dir, tmp_path / "model", *options))
