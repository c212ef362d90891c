"""Writing trained models as Hub folders that the stock Auto classes and pipeline load."""

from __future__ import annotations

from pathlib import Path

from transformers.dynamic_module_utils import custom_object_save

# Beside config.json, not at the root: see modeling_vaner.ADAPTER_CONFIG_NAME.
ADAPTER_SUBFOLDER = "adapter"


def save_adapter_folder(peft_model, tokenizer, folder: str | Path) -> Path:
    """An adapter-only VANER folder: LoRA adapter with the head, config naming the backbone, the two
    remote-code files and the tokenizer; no backbone weights (they are fetched from
    `config.base_model_name_or_path` at load time)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = peft_model.get_base_model()
    if not model.config.base_model_name_or_path:
        raise ValueError("The model's config names no backbone (base_model_name_or_path): the folder could not be loaded.")
    peft_model.save_pretrained(folder / ADAPTER_SUBFOLDER)
    custom_object_save(model, folder, config=model.config)  # copies the .py files and sets config.auto_map
    model.config.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
