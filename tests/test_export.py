"""vaner.export writes model folders with files_vaner's writer (issue 32, item 13): an export is built beside its
target and takes its place only when complete, so an interrupted export or one onto its own source loses nothing."""

import json
import os
import subprocess
import sys

import pytest
import safetensors.torch
import torch

from vaner import export
from vaner.export import copy_adapter_folder

WEIGHTS = {"head.weight": torch.arange(6, dtype=torch.float32).reshape(2, 3) / 7}


@pytest.fixture
def run_folder(tmp_path):
    """A training output folder of the adapter-only kind, with a checkpoint and a log the export leaves out."""
    folder = tmp_path / "run"
    (folder / "adapter").mkdir(parents=True)
    (folder / "checkpoint-4").mkdir()
    (folder / "train.log").write_text("step 4\n", encoding="utf-8")
    (folder / "config.json").write_text(json.dumps({"base_model_name_or_path": "someone/backbone"}), encoding="utf-8")
    (folder / "adapter" / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "/local/copy"}),
                                                            encoding="utf-8")
    safetensors.torch.save_file(WEIGHTS, str(folder / "adapter" / "adapter_model.safetensors"))
    return folder


def contents(folder):
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def exported_weights(folder):
    return safetensors.torch.load_file(str(folder / "adapter" / "adapter_model.safetensors"))


def test_an_export_onto_its_own_source_keeps_the_model(run_folder):
    """`--overwrite` with TARGET = SOURCE used to remove the source, then copy from nothing."""
    copy_adapter_folder(run_folder, run_folder, overwrite=True)
    assert torch.equal(exported_weights(run_folder)["head.weight"], WEIGHTS["head.weight"].to(torch.bfloat16))
    assert not (run_folder / "checkpoint-4").exists() and (run_folder / "modeling_vaner.py").is_file()
    adapter_config = json.loads((run_folder / "adapter" / "adapter_config.json").read_text(encoding="utf-8"))
    assert adapter_config["base_model_name_or_path"] == "someone/backbone"
    assert [path.name for path in run_folder.parent.iterdir()] == ["run"]  # no staging folder left


def test_an_interrupted_export_leaves_the_earlier_folder_whole(run_folder, tmp_path, monkeypatch):
    target = tmp_path / "model"
    copy_adapter_folder(run_folder, target)
    earlier = contents(target)

    def interrupted(tensors, filename, metadata=None):
        with open(filename, "wb") as handle:
            handle.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(safetensors.torch, "save_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        copy_adapter_folder(run_folder, target, dtype="float16", overwrite=True)
    assert contents(target) == earlier
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model", "run"]


def test_an_export_refuses_folders_one_inside_the_other(run_folder, tmp_path):
    """A source inside the target used to be removed with the target it replaced; the command says why in one line."""
    earlier = contents(run_folder)
    with pytest.raises(ValueError, match="lie one inside the other"):
        copy_adapter_folder(run_folder, tmp_path, overwrite=True)
    assert contents(run_folder) == earlier
    with pytest.raises(SystemExit, match=f"^vaner.export: {run_folder} exists: pass overwrite=True"):
        export.main([str(run_folder), str(run_folder)])


def test_the_export_command_replaces_a_model_folder(run_folder, tmp_path):
    """The command that ships the default model: `python -m vaner.export RUN TARGET --dtype bfloat16 --overwrite`."""
    target = tmp_path / "default_model"
    (target / "adapter").mkdir(parents=True)
    (target / "adapter" / "stale.bin").write_bytes(b"old")
    os.chmod(target, 0o750)
    command = [sys.executable, "-m", "vaner.export", str(run_folder), str(target), "--dtype", "bfloat16", "--overwrite"]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.strip() == str(target)
    assert not (target / "adapter" / "stale.bin").exists()
    assert exported_weights(target)["head.weight"].dtype == torch.bfloat16
    assert (os.stat(target).st_mode & 0o777) == 0o750
    assert sorted(path.name for path in tmp_path.iterdir()) == ["default_model", "run"]


def test_a_refresh_that_cannot_write_leaves_the_folder_whole(run_folder, monkeypatch):
    """refresh_remote_code rewrites each file atomically: a full disk (reported at fsync, as NFS does) costs no file."""
    import errno

    import files_vaner

    earlier = contents(run_folder)

    def full_disk(descriptor):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files_vaner.os, "fsync", full_disk)
    with pytest.raises(OSError, match="cannot write the output .*: No space left on device"):
        export.refresh_remote_code(run_folder)
    assert contents(run_folder) == earlier
