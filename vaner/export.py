"""Writing trained models as Hub folders that the stock Auto classes and pipeline load, with their cards."""

from __future__ import annotations

import importlib
import json
import shutil
import sys
from pathlib import Path

from huggingface_hub import EvalResult, HfApi, ModelCard, ModelCardData
from huggingface_hub.utils import HFValidationError, validate_repo_id
from transformers.dynamic_module_utils import custom_object_save

import hub_card
from files_vaner import folder_written_atomically, open_output

# Beside config.json, not at the root: see modeling_vaner.ADAPTER_CONFIG_NAME.
ADAPTER_SUBFOLDER = "adapter"
# Files of a training output folder that are not part of the model.
NOT_UPLOADED = ["checkpoint-*", "checkpoint-*/**", "runs/**", "*.log", "training_args.bin"]


def save_adapter_folder(peft_model, tokenizer, folder: str | Path) -> Path:
    """An adapter-only VANER folder: LoRA adapter with the head, config naming the backbone, the two
    remote-code files and the tokenizer; no backbone weights (they are fetched from
    `config.base_model_name_or_path` at load time)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = peft_model.get_base_model()
    if not model.config.base_model_name_or_path:
        raise ValueError("The model's config names no backbone (base_model_name_or_path): the folder could not be loaded.")
    for adapter_config in peft_model.peft_config.values():  # the backbone the config names, not a local path
        adapter_config.base_model_name_or_path = model.config.base_model_name_or_path
    peft_model.save_pretrained(folder / ADAPTER_SUBFOLDER)
    custom_object_save(model, folder, config=model.config)  # copies the .py files and sets config.auto_map
    model.config.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def copy_adapter_folder(source: str | Path, target: str | Path, dtype: str = "bfloat16", overwrite: bool = False) -> Path:
    """A copy of an adapter-only folder without training checkpoints, its adapter (LoRA and head) stored
    in `dtype`: how the default model ships in the repository at half the size of float32. The copy is built
    beside `target` and takes its place only when complete (files_vaner.folder_written_atomically): an
    interrupted export leaves an earlier `target` whole, and a folder exported onto itself is read first."""
    import torch
    from safetensors.torch import load_file, save_file

    source, target = Path(source), Path(target)
    weights = source / ADAPTER_SUBFOLDER / "adapter_model.safetensors"
    if not weights.is_file():
        raise FileNotFoundError(f"{source} is not an adapter-only VANER folder: {weights} is missing")
    check_not_nested(source, target)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists: pass overwrite=True (--overwrite) to replace it")
    with folder_written_atomically(target) as copy:
        shutil.copytree(source, copy, dirs_exist_ok=True, ignore=shutil.ignore_patterns(
            "checkpoint-*", "runs", "*.log", "training_args.bin", "trainer_state.json", "all_results.json"))
        refresh_remote_code(copy)  # the copy serves this checkout's code, e.g. a pipeline newer than the model
        (copy / ADAPTER_SUBFOLDER / "README.md").unlink(missing_ok=True)  # PEFT's blank card; the folder's README is the card
        adapter_config_file = copy / ADAPTER_SUBFOLDER / "adapter_config.json"
        adapter_config = json.loads(adapter_config_file.read_text(encoding="utf-8"))
        adapter_config["base_model_name_or_path"] = json.loads((copy / "config.json").read_text())["base_model_name_or_path"]
        write_json(adapter_config_file, adapter_config)
        tensors = {name: tensor.to(getattr(torch, dtype)) for name, tensor in load_file(str(weights)).items()}
        save_file(tensors, str(copy / ADAPTER_SUBFOLDER / "adapter_model.safetensors"), metadata={"format": "pt"})
    return target


def check_not_nested(source: Path, target: Path) -> None:
    """ValueError when one folder lies inside the other: a target inside the source would be copied into
    itself, a source inside the target removed with the target it replaces. The same folder is fine."""
    source_path, target_path = source.resolve(), target.resolve()
    if source_path != target_path and (target_path.is_relative_to(source_path) or source_path.is_relative_to(target_path)):
        raise ValueError(f"the target {target} and the source {source} lie one inside the other: choose a target "
                         "beside the source (or the source itself)")


def write_json(path: Path, data: dict, **options) -> None:
    """`data` as indented JSON, written atomically (files_vaner): an interrupted write leaves the earlier file."""
    with open_output(path) as handle:
        handle.write(json.dumps(data, indent=2, **options) + "\n")


# The files the Hub serves as remote code: every VANER folder carries them (custom_object_save copies them).
# The Hub-served files: the config and model classes, the pipeline and the modules of the annotation path it
# imports, and files_vaner (the atomic writer modeling_vaner's backbone cache uses), all imported relatively so
# that transformers fetches them with it.
REMOTE_CODE_FILES = ("configuration_vaner.py", "modeling_vaner.py", "pipeline_vaner.py", "annotator_vaner.py",
                     "text_vaner.py", "windows_vaner.py", "precision_vaner.py", "files_vaner.py")


def refresh_remote_code(folder: str | Path) -> Path:
    """Give a saved VANER folder the project's current remote code: the remote-code files (REMOTE_CODE_FILES) are copied in and
    config.json gains the `auto_map` and `custom_pipelines` entries (everything else in it is kept). A folder
    saved before pipeline_vaner.py existed gets the stock token-classification pipeline (sub-word fragments)
    until this is run on it."""
    from configuration_vaner import default_custom_pipelines

    folder = Path(folder)
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"{folder} is not a VANER folder: {config_file} is missing")
    for name in REMOTE_CODE_FILES:  # from wherever the modules are installed, not a source-tree path
        with open(importlib.import_module(name.removesuffix(".py")).__file__, "rb") as code, \
                open_output(folder / name, "wb") as copy:
            shutil.copyfileobj(code, copy)
    config = json.loads(config_file.read_text(encoding="utf-8"))
    config.setdefault("auto_map", {}).update({"AutoConfig": "configuration_vaner.VanerConfig",
                                              "AutoModelForTokenClassification": "modeling_vaner.VanerForTokenClassification"})
    config["custom_pipelines"] = default_custom_pipelines()
    write_json(config_file, config, sort_keys=True)
    return folder


def save_full_folder(model, tokenizer, folder: str | Path) -> Path:
    """A VANER folder with all weights (merged adapter or full fine-tuning)."""
    folder = Path(folder)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def hub_id(name: str | None) -> str | None:
    """The name if it is a Hub repo id, else None: the Hub rejects card metadata whose base_model or
    datasets are local paths, so those stay in the card's text only."""
    if not name or Path(name).exists():
        return None
    try:
        validate_repo_id(name)
    except HFValidationError:
        return None
    return name


def check_model_path(model_name_or_path: str | Path) -> None:
    """FileNotFoundError naming a model folder that does not exist, where transformers would report a malformed
    Hub id or a failed download: the name is not a folder here and is a path (absolute, ./, ../, ~, under a
    folder that exists here) or not of the Hub's form 'name' / 'namespace/name'."""
    name = str(model_name_or_path)
    path = Path(name).expanduser()
    if path.is_file():
        raise NotADirectoryError(f"{name} is a file: a model is a folder (config.json, weights or adapter/) or a Hub id")
    if path.exists():
        return
    looks_local = name.startswith((".", "~")) or path.is_absolute() or (path.parent != Path(".") and path.parent.is_dir())
    if looks_local or hub_id(name) is None:
        raise FileNotFoundError(f"{name}: no such model folder (and not a Hub id of the form name or namespace/name)")


def write_model_card(folder: str | Path, *, repo_id: str, results: list[dict], **fields) -> ModelCard:
    """README.md with YAML metadata (base model, datasets, model-index of the measured F1 per corpus).

    `results` rows: {corpus, split, precision, recall, f1}; `fields` fill hub_card/model_card.md.
    """
    eval_results = [
        EvalResult(
            task_type="token-classification",
            task_name="Named entity recognition",
            dataset_type=row["corpus"],
            dataset_name=row["corpus"],
            dataset_split=row["split"],
            metric_type="f1",
            metric_name="strict entity-level F1",
            metric_value=round(row["f1"], 4),
        )
        for row in results
    ]
    dataset_id = hub_id(fields["dataset"])
    card_data = ModelCardData(
        model_name=repo_id.split("/")[-1],
        base_model=hub_id(fields["base_model"]),
        datasets=[dataset_id] if dataset_id else None,
        library_name="transformers",
        pipeline_tag="token-classification",
        tags=["biomedical", "named-entity-recognition", "vaner", "bioner"],
        eval_results=eval_results or None,
    )
    card = ModelCard(hub_card.render("model_card.md", card_data=card_data.to_yaml(), repo_id=repo_id,
                                     model_name=card_data.model_name, results=results, **fields))
    Path(folder).mkdir(parents=True, exist_ok=True)
    with open_output(Path(folder) / "README.md", newline="") as handle:  # ModelCard.save writes in place
        handle.write(str(card))
    return card


def push_folder(folder: str | Path, repo_id: str, repo_type: str = "model", token: str | None = None,
                private: bool | None = None, commit_message: str | None = None) -> str:
    """Upload a model folder or a dataset folder (`repo_type="dataset"`) to the Hub, creating the repo; training
    checkpoints and logs are left out. Returns the commit URL."""
    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
    commit = api.upload_folder(repo_id=repo_id, repo_type=repo_type, folder_path=str(folder),
                               ignore_patterns=NOT_UPLOADED, commit_message=commit_message or f"Upload VANER {repo_type}")
    return str(getattr(commit, "commit_url", commit))


def main(argv: list[str] | None = None) -> None:
    """`python -m vaner.export SOURCE TARGET [--dtype D] [--overwrite]`: prints TARGET, or one line saying why not."""
    import argparse

    parser = argparse.ArgumentParser(description="Copy an adapter-only VANER folder without its checkpoints, the "
                                                 "adapter in a smaller dtype (python -m vaner.export SOURCE TARGET).")
    parser.add_argument("source")
    parser.add_argument("target")
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    parser.add_argument("--overwrite", action="store_true", help="replace TARGET if it exists (it may be SOURCE)")
    arguments = parser.parse_args(argv)
    try:
        print(copy_adapter_folder(arguments.source, arguments.target, arguments.dtype, arguments.overwrite))
    except (OSError, ValueError) as error:
        sys.exit(f"vaner.export: {error}")


if __name__ == "__main__":
    main()
