"""The first ten minutes: the README's benchmark commands parse, .ci/setup installs the CPU build of torch, and
examples/annotate.sh reads relative file arguments from the caller's working directory."""

import importlib
import json
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def readme_benchmark_commands() -> list[str]:
    """The `python bench/....py ...` commands of the README, a line break inside one read as a space; the
    placeholder NAME (one run per corpus) as one of the corpora."""
    text = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    return [command.replace("NAME", "ncbi-disease") for command in re.findall(r"`python (bench/\w+\.py[^`]*)`", text)]


@pytest.mark.parametrize("command", readme_benchmark_commands(), ids=lambda command: command.split()[0])
def test_the_readmes_benchmark_commands_parse(command, monkeypatch, capsys):
    """Every option value is one the script takes (`--dtypes float32 int8` failed once int8 was dropped):
    argparse checks each option as it reads it, so --help at the end exits 0 only if all before it parse."""
    script, *arguments = shlex.split(command)
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    with pytest.raises(SystemExit) as stop:
        importlib.import_module(Path(script).stem).main([*arguments, "--help"])
    assert stop.value.code == 0, capsys.readouterr().err


def test_ci_setup_asks_for_the_cpu_build_of_torch():
    """On Linux PyPI's torch wheel is the CUDA build (triton and 18 nvidia-*/cuda-* packages); the CPU build exists
    only under its local version, +cpu, so .ci/setup must name it, at a version requirements.txt allows."""
    from packaging.requirements import Requirement

    setup = (ROOT / ".ci" / "setup").read_text(encoding="utf-8")
    variables = dict(re.findall(r"^(\w+)=(\S+)$", setup, re.MULTILINE))
    expanded = re.sub(r"\$(\w+)", lambda match: variables.get(match.group(1), match.group(0)), setup)
    versions = re.findall(r"pip install [^\n]*\btorch==([\w.+]+)", expanded)
    assert any(version.endswith("+cpu") for version in versions), versions
    (torch,) = [Requirement(line.split("#")[0]) for line in (ROOT / "requirements.txt").read_text().splitlines()
                if line.startswith("torch")]
    assert all(torch.specifier.contains(version.removesuffix("+cpu")) for version in versions), (versions, torch)
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in setup  # where pip finds no local wheel


def test_annotate_sh_reads_relative_arguments_from_the_callers_directory(tiny_vaner_dir, tmp_path):
    """It used to change to the repository root first, so `bash ~/vaner/examples/annotate.sh notes.txt` looked for
    the repository's notes.txt."""
    if not (ROOT / ".venv" / "bin" / "vaner-predict").is_file():
        pytest.skip("no .venv: examples/annotate.sh would run .ci/setup first")
    (tmp_path / "notes.txt").write_text("Cisplatin induced nephrotoxicity in BRCA1 mutant mice.\n", encoding="utf-8")
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}  # this checkout's modules, whatever the install maps
    finished = subprocess.run(
        ["bash", str(ROOT / "examples" / "annotate.sh"), "notes.txt", "--model_name_or_path", str(tiny_vaner_dir),
         "--dtype", "float32", "--output", "notes.jsonl"],
        cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert [json.loads(line)["id"] for line in (tmp_path / "notes.jsonl").read_text().splitlines()] == ["notes"]
