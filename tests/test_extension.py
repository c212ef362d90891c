"""Extending a trained multi-type model with new types from annotated documents: the grown head, distillation,
replay, and training on documents in one command (`train_vaner.py --init_adapter M --train_files ...`)."""

import json
import logging
from pathlib import Path

import pytest
import torch
from conftest import toy_sentences
from datasets import DatasetDict
from test_annotated_documents import TITLE, TYPE_MAP, write_brat
from transformers import AutoModelForTokenClassification, pipeline

import evaluate_vaner
import train_vaner
from vaner.extension import grown_head, soft_target_loss, teacher_soft_labels
from vaner.features import IGNORE_INDEX, sentences_to_dataset, tokenize_multi_type_dataset


@pytest.fixture(scope="module")
def multi_type_folder(tmp_path_factory, llama_dir, toy_mixture_dir) -> Path:
    """A trained multi-type adapter folder knowing Disease and Chemical (a few steps on the toy mixture)."""
    folder = tmp_path_factory.mktemp("multi") / "model"
    train_vaner.main(["--model_name_or_path", str(llama_dir), "--dataset_name_or_path", str(toy_mixture_dir),
                      "--output_dir", str(folder), "--multi_type", "--max_steps", "8", "--learning_rate", "5e-3",
                      "--lora_r", "4", "--lora_alpha", "8", "--per_device_train_batch_size", "4", "--bf16", "False",
                      "--eval_strategy", "no", "--save_strategy", "no", "--no_load_best_model_at_end",
                      "--no_evaluate_test", "--dataloader_num_workers", "0"])
    return folder


def test_grown_head_keeps_the_known_columns_and_starts_new_ones_from_their_mean():
    weight = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(6, 4)
    grown = grown_head(weight, 2, 2)
    assert grown.shape == (12, 4) and torch.equal(grown[:6], weight)
    torch.testing.assert_close(grown[6:9], (weight[:3] + weight[3:6]) / 2)
    torch.testing.assert_close(grown[9:], grown[6:9])
    assert torch.equal(grown_head(torch.ones(6), 2, 1)[6:], torch.ones(3))


def test_extension_keeps_the_known_types_outputs_at_step_0_and_adds_two_columns(multi_type_folder, tokenizer):
    source = AutoModelForTokenClassification.from_pretrained(multi_type_folder, trust_remote_code=True).eval()
    model_args = train_vaner.ModelArguments(init_adapter=str(multi_type_folder), multi_type=True)
    train_vaner.adopt_source(model_args)
    extended = train_vaner.build_model(model_args, ["Disease", "Chemical", "CellLine", "CellType"],
                                       source.config.dataset_names, tokenizer, ["Disease", "Chemical"]).eval()
    assert extended.get_base_model().classifier.out_features == source.classifier.out_features + 6
    assert extended.config.type_set == source.config.type_set == "Disease, Chemical"  # the instruction is kept
    ids = tokenizer(["The risk of tumour after Naloxone in HeLa cells .", "Cisplatin in mice ."], return_tensors="pt",
                    padding=True)
    labels = torch.zeros((*ids["input_ids"].shape, 4), dtype=torch.long)
    with torch.no_grad():
        before = source(**ids, labels=labels[..., :2]).logits
        after = extended(**ids, labels=labels).logits
    torch.testing.assert_close(after[:, :, :2], before, atol=1e-5, rtol=1e-5)  # merged vs unmerged LoRA: rounding only
    torch.testing.assert_close(after[:, :, 2], before.mean(2), atol=1e-5, rtol=1e-5)  # the head is linear: mean in, mean out
    assert torch.equal(after[:, :, 2], after[:, :, 3])


def test_distillation_targets_the_types_the_documents_do_not_annotate(multi_type_folder, tokenizer):
    from vaner.loading import load_model

    teacher, _ = load_model(str(multi_type_folder), dtype="float32", device="cpu", all_known_types=True)
    types = ["Disease", "Chemical", "CellLine"]
    rows = tokenize_multi_type_dataset(sentences_to_dataset(toy_sentences(2)), tokenizer, 128, types, [])
    soft = teacher_soft_labels(teacher, rows, tokenizer, types, ["Chemical"], progress=False)
    row = torch.tensor(soft[0])
    tagged = torch.tensor(rows[0]["word_ids"]) >= 0
    assert torch.all(row == 0)  # Chemical has gold labels in this row (the gold wins); the others are not distilled
    labels = torch.tensor(rows[0]["labels"])[None]
    labels[..., 1] = IGNORE_INDEX
    (soft_chemical,) = teacher_soft_labels(teacher, rows.select([0]).map(lambda r: {"labels": labels[0].tolist()}),
                                           tokenizer, types, ["Chemical"], progress=False)
    soft_chemical = torch.tensor(soft_chemical)
    torch.testing.assert_close(soft_chemical[tagged][:, 1].sum(-1), torch.ones(int(tagged.sum())))
    logits = torch.randn(1, labels.shape[1], 3, 3, requires_grad=True)
    plain = torch.nn.functional.cross_entropy(logits.reshape(-1, 3), labels.reshape(-1), ignore_index=IGNORE_INDEX)
    torch.testing.assert_close(soft_target_loss(logits, labels, torch.zeros(*labels.shape, 3)), plain)
    soft_target_loss(logits, labels, soft_chemical[None]).backward()
    assert logits.grad[0, tagged, 1].abs().sum() > 0 and logits.grad[0, :, 2].abs().sum() == 0


def test_one_command_extends_a_model_and_vaner_evaluate_scores_documents(multi_type_folder, tmp_path, capsys):
    documents = tmp_path / "docs"
    for number in range(6):
        write_brat(documents, f"doc{number}")
    output = tmp_path / "extended"
    result = train_vaner.main([
        "--init_adapter", str(multi_type_folder), "--train_files", str(documents), "--validation_files", str(documents),
        "--type_map", *TYPE_MAP, "--output_dir", str(output), "--max_steps", "6", "--learning_rate", "5e-3",
        "--per_device_train_batch_size", "4", "--eval_strategy", "steps", "--eval_steps", "6", "--save_strategy",
        "steps", "--save_steps", "6", "--no_evaluate_test", "--dataloader_num_workers", "0"])
    assert "training: 6 steps of 4 rows" in capsys.readouterr().out  # the estimate, printed before training
    assert any("eval_CellLine_f1" in entry for entry in result["log_history"])
    config = json.loads((output / "config.json").read_text())
    assert config["known_entity_types"] == config["entity_types"] == ["Disease", "Chemical", "CellLine", "CellType"]
    assert config["instruction_types"] == ["Disease", "Chemical"] and config["multi_type"]
    card = (output / "README.md").read_text()
    assert "Entity types: Disease, Chemical, CellLine, CellType." in card and "(distillation)" in card
    assert "6 documents, 12 sentences, mentions: CellLine 12, CellType 18" in card
    model = AutoModelForTokenClassification.from_pretrained(output, trust_remote_code=True)
    assert model.classifier.out_features == 12
    ner = pipeline("token-classification", model=str(output), trust_remote_code=True)
    assert all(group["entity_group"] in config["entity_types"] for group in ner(TITLE))

    results = evaluate_vaner.main(["--model_name_or_path", str(output), "--files", str(documents), "--type_map",
                                   *TYPE_MAP, "--output_dir", str(tmp_path / "scores"), "--no_progress"])
    assert list(results["corpora"]) == ["CellLine", "CellType"]
    assert results["corpora"]["CellLine"]["n_gold"] == 12 and results["corpora"]["CellType"]["sentences"] == 12
    with pytest.raises(ValueError, match="cell_line, cell_type, protein, which this model does not know"):
        evaluate_vaner.main(["--model_name_or_path", str(output), "--files", str(documents), "--output_dir",
                             str(tmp_path / "unmapped"), "--no_progress"])


def test_replay_mixes_the_original_mixture_in(multi_type_folder, toy_mixture_dir, tmp_path, caplog):
    write_brat(tmp_path / "docs")
    with caplog.at_level(logging.INFO, logger="train_vaner"):
        train_vaner.main(["--init_adapter", str(multi_type_folder), "--train_files", str(tmp_path / "docs"),
                          "--type_map", *TYPE_MAP, "--replay_dataset", str(toy_mixture_dir), "--replay_fraction", "0.5",
                          "--no_distill", "--output_dir", str(tmp_path / "model"), "--max_steps", "1",
                          "--eval_strategy", "no", "--save_strategy", "no", "--no_load_best_model_at_end",
                          "--dataloader_num_workers", "0"])
    assert "replaying 4 rows of" in caplog.text  # as many rows as the documents' 4 (2 sentences x 2 types)
    assert "had no training signal on the documents (--no_distill)" in (tmp_path / "model" / "README.md").read_text()


@pytest.mark.parametrize("options, message", [
    (["--dataset_name_or_path", "x", "--train_files", "y"], "one of the two"),
    (["--dataset_name_or_path", "x", "--model_name_or_path", "m", "--type_map", "a=B"], "--type_map goes with --train_files"),
    (["--dataset_name_or_path", "x"], "--model_name_or_path is needed"),
])
def test_document_options_that_would_be_ignored_are_refused(options, message, tmp_path):
    with pytest.raises(SystemExit, match=message):
        train_vaner.main([*options, "--output_dir", str(tmp_path / "model")])


def test_training_documents_with_a_bad_line_stop_before_any_model_loads(tmp_path):
    ann = write_brat(tmp_path / "docs")
    ann.write_text(ann.read_text().replace("\tcell_line 0 4\t", "\tcell_line 0 x\t"))
    with pytest.raises(SystemExit, match=r"doc\.ann:1: offsets '0 x' are not 'start end' pairs"):
        train_vaner.main(["--model_name_or_path", "unused", "--train_files", str(tmp_path / "docs"),
                          "--output_dir", str(tmp_path / "model")])


def test_a_mixture_table_is_unchanged_by_the_document_options(toy_mixture_dir):
    """--dataset_name_or_path keeps its meaning: the mixture path reads the DatasetDict as before."""
    mixture = train_vaner.load_mixture(train_vaner.DataArguments(dataset_name_or_path=str(toy_mixture_dir)), 0)
    assert isinstance(mixture, DatasetDict) and set(mixture["train"].unique("source_corpus")) == {"toy-disease", "toy-chem"}
