"""Loading a VANER model for the command-line tools: one path for predict, evaluate and the benchmarks.

The model always loads through this project's classes (configuration_vaner / modeling_vaner, the same files
every saved folder carries), so a VANER folder needs no remote code; code stored in a folder (a tokenizer
class of its own) runs only with `trust_remote_code=True`. Precision follows one policy
(`precision_vaner.choose_dtype`): "auto" is bf16 on CUDA and on CPUs with native bf16, else float32.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch
from transformers import AutoConfig, AutoTokenizer

from configuration_vaner import VanerConfig
from modeling_vaner import VanerForTokenClassification
from precision_vaner import DTYPES, choose_dtype, to_precision

from .export import check_model_path

__all__ = ["DTYPES", "load_model", "load_tokenizer", "resolve_device"]


def resolve_device(device: str = "auto") -> str:
    """"auto": cuda when available, else cpu; anything else as given, once torch knows the device type and, for
    CUDA, has that GPU: ValueError naming the device (torch's own report comes at the first cast, a bare
    AssertionError "Torch not compiled with CUDA enabled")."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"device {device!r}: {error}") from None
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"device {device!r}: torch sees no CUDA GPU here (torch {torch.__version__}); "
                             "use device cpu, or auto (a GPU when there is one)")
        if parsed.index is not None and parsed.index >= count:
            raise ValueError(f"device {device!r}: torch sees {count} CUDA GPU(s), numbered from 0")
    return device


def load_tokenizer(model_name_or_path: str, trust_remote_code: bool = False, gguf_file: str | None = None):
    """The folder's tokenizer (its eos token as pad token when it has none). A VANER config is read with this
    project's class, so only a tokenizer class stored in the folder needs `trust_remote_code`."""
    AutoConfig.register(VanerConfig.model_type, VanerConfig, exist_ok=True)
    kwargs = {"gguf_file": gguf_file} if gguf_file else {}
    tokenizer = AutoTokenizer.from_pretrained(model_name_or_path, trust_remote_code=trust_remote_code, **kwargs)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def overrides_of(entity_types: Sequence[str] | str | None, dataset_name: str | None) -> dict:
    overrides = {}
    if entity_types is not None:
        overrides["entity_types"] = [entity_types] if isinstance(entity_types, str) else list(entity_types)
    if dataset_name is not None:
        overrides["dataset_name"] = dataset_name
    return overrides


def check_served_config(model_name_or_path: str, overrides: dict) -> None:
    """ValueError for an entity type or dataset name a local VANER folder does not know, from its config.json
    alone: before the backbone loads, not after (a Hub id is checked when it loads)."""
    config_file = Path(model_name_or_path) / "config.json"
    if not overrides or not config_file.is_file():
        return
    if json.loads(config_file.read_text(encoding="utf-8")).get("model_type") != VanerConfig.model_type:
        return  # a backbone folder: a new VANER, checked when it is built
    config = VanerConfig.from_pretrained(model_name_or_path)
    for name, value in overrides.items():
        setattr(config, name, value)
    config.check_entity_types()
    config.check_dataset_name()


def load_model(
    model_name_or_path: str,
    entity_types: Sequence[str] | None = None,
    dataset_name: str | None = None,
    dtype: str = "auto",
    device: str = "auto",
    trust_remote_code: bool = False,
    gguf_file: str | None = None,
    base_model_name_or_path: str | None = None,
    all_known_types: bool = False,
):
    """A VANER model (full folder, adapter-only folder or Hub id; a backbone folder with `gguf_file` gives a new,
    untrained VANER) and its tokenizer, in eval mode, in precision `dtype` (`DTYPES`) on `device`.

    `entity_types` (any case) and `dataset_name` choose what the model serves and names in its instruction;
    `all_known_types` serves every type the model knows (evaluation asks each corpus for its own type);
    `base_model_name_or_path` overrides the backbone of an adapter-only folder (e.g. a local copy)."""
    check_model_path(model_name_or_path)
    check_served_config(model_name_or_path, overrides_of(entity_types, dataset_name))
    device = resolve_device(device)
    torch_dtype = choose_dtype(dtype, device)
    overrides = {"dtype": torch_dtype, "trust_remote_code": trust_remote_code, **overrides_of(entity_types, dataset_name)}
    if gguf_file:
        overrides["gguf_file"] = gguf_file
    if base_model_name_or_path:
        overrides["base_model_name_or_path"] = base_model_name_or_path
    model = VanerForTokenClassification.from_pretrained(model_name_or_path, **overrides)
    if all_known_types:
        model.config.entity_types = list(model.config.known_entity_types)
    model = to_precision(model.to(device=device), torch_dtype).eval()
    return model, load_tokenizer(model_name_or_path, trust_remote_code, gguf_file)
