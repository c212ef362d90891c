"""evaluate_vaner.py on a tiny model: per-corpus table, JSON and chart, both instruction modes."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import toy_sentences

import evaluate_vaner
from vaner.corpora import write_iob_file

PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture
def toy_corpus(tmp_path):
    folder = tmp_path / "toy"
    folder.mkdir()
    write_iob_file([s for s in toy_sentences(12) if s.entity_type == "Disease"], folder / "test.tsv")
    return folder


@pytest.mark.parametrize("mode", ["--use_dataset_name", "--no_use_dataset_name"])
def test_evaluation_writes_the_per_corpus_table(tiny_vaner_dir, toy_corpus, tmp_path, mode):
    output = tmp_path / "results"
    results = evaluate_vaner.main([
        "--model_name_or_path", str(tiny_vaner_dir), "--corpora", f"toy:Disease={toy_corpus}",
        "--output_dir", str(output), "--batch_size", "5", "--no_progress", mode,
    ])
    scores = results["corpora"]["toy"]
    assert scores["n_gold"] == 12 and scores["sentences"] == 12 and scores["entity_type"] == "Disease"
    assert 0.0 <= scores["f1"] <= 1.0 and results["macro"]["f1"] == scores["f1"]
    table = (output / "results.md").read_text()
    assert "| toy | Disease | 12 |" in table and "Macro average" in table
    assert json.loads((output / "results.json").read_text())["corpora"]["toy"]["n_gold"] == 12
    assert (output / "results.png").read_bytes()[:4] == b"\x89PNG"


def test_unknown_corpus_type_for_the_model_is_a_clear_error(tiny_vaner_dir, toy_corpus, tmp_path):
    with pytest.raises(ValueError, match="Cell.*does not know"):
        evaluate_vaner.main(["--model_name_or_path", str(tiny_vaner_dir), "--corpora", f"toy:Cell={toy_corpus}",
                             "--output_dir", str(tmp_path), "--no_progress"])


def test_help_documents_every_option():
    help_text = subprocess.run([sys.executable, "evaluate_vaner.py", "--help"], cwd=PROJECT, capture_output=True,
                               text=True, check=True).stdout
    for option in ("--model_name_or_path", "--corpora", "--split", "--no_use_dataset_name", "--entity_types",
                   "--batch_size", "--device", "--dtype", "--output_dir"):
        assert option in help_text


def test_model_folder_code_runs_only_with_trust_remote_code(tiny_vaner_dir, toy_corpus, tmp_path):
    from conftest import folder_with_tokenizer_code

    folder = folder_with_tokenizer_code(tiny_vaner_dir, tmp_path / "model")
    arguments = ["--model_name_or_path", str(folder), "--corpora", f"toy:Disease={toy_corpus}",
                 "--output_dir", str(tmp_path / "results"), "--no_progress", "--max_sentences", "2"]
    assert evaluate_vaner.main(arguments)["corpora"]["toy"]["sentences"] == 2
    assert not (folder / "CODE_RAN").exists()
    evaluate_vaner.main([*arguments, "--trust_remote_code"])
    assert (folder / "CODE_RAN").exists()


def test_missing_model_folder_is_named(toy_corpus, tmp_path):
    missing = tmp_path / "no" / "such" / "model"
    with pytest.raises(FileNotFoundError, match=f"{missing}: no such model folder"):
        evaluate_vaner.main(["--model_name_or_path", str(missing), "--corpora", f"toy:Disease={toy_corpus}",
                             "--output_dir", str(tmp_path / "results"), "--no_progress"])


def test_instruction_modes_name_the_corpus_or_none(tiny_vaner_dir, toy_corpus, tmp_path, monkeypatch):
    """A corpus the model names (NCBI-disease is its dataset 0): --use_dataset_name sends its index with every row,
    --no_use_dataset_name sends -1 (the instruction without a name)."""
    from modeling_vaner import VanerForTokenClassification

    sent = []
    forward = VanerForTokenClassification.forward

    def recording(self, *args, dataset_ids=None, **kwargs):
        sent.append(set(dataset_ids.tolist()))
        return forward(self, *args, dataset_ids=dataset_ids, **kwargs)

    monkeypatch.setattr(VanerForTokenClassification, "forward", recording)
    for mode, expected in (("--use_dataset_name", {0}), ("--no_use_dataset_name", {-1})):
        sent.clear()
        evaluate_vaner.main(["--model_name_or_path", str(tiny_vaner_dir), "--corpora", f"ncbi-disease={toy_corpus}",
                             "--output_dir", str(tmp_path / mode), "--no_progress", mode])
        assert sent and all(ids == expected for ids in sent)
