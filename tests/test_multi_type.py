"""The multi-type mode: one forward pass per window for every entity type, trained with partial labels."""

import pytest
import torch
from conftest import tiny_vaner, toy_sentences
from test_documents import Recorder, found, word_mode_tags
from transformers import AutoModelForTokenClassification, pipeline

from vaner.corpora import Sentence
from vaner.dbr import dbr_row
from vaner.documents import DocumentAnnotator, annotate_text
from vaner.features import (
    IGNORE_INDEX,
    VanerDataCollator,
    merge_type_rows,
    sentences_to_dataset,
    tokenize_multi_type_dataset,
)

TYPES = ["Disease", "Chemical", "Gene", "Species"]
TEXTS = [
    "Cisplatin-induced nephrotoxicity in BRCA1 mutant mice.",
    "Naloxone reverses the antihypertensive effect of clonidine in rats. The risk of ovarian cancer rose.",
    "IL-2 receptor alpha (CD25) expression in T cells; TNF-\u03b1 and \u03b2-catenin levels rose in Homo sapiens.",
]


def multi_vaner(tokenizer, seed=0):
    return tiny_vaner(tokenizer, seed=seed, entity_types=TYPES, multi_type=True)


def rig_multi_type(model, tables: dict[str, dict[int, int]]):
    """A multi-type model that tags each sub-token by its id alone, per type: attention and MLP outputs are
    zeroed so that the embedding reaches the head, whose columns of type k read embedding dims 3k..3k+2."""
    types = model.config.head_types
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.model.embed_tokens.weight.zero_()
        for k, entity_type in enumerate(types):
            for token_id in range(model.config.vocab_size):
                model.model.embed_tokens.weight[token_id, 3 * k + tables.get(entity_type, {}).get(token_id, 0)] = 1.0
        model.classifier.weight.zero_()
        model.classifier.bias.zero_()
        model.classifier.weight[:, : 3 * len(types)] = torch.eye(3 * len(types)) * 10
    return model


def test_config_names_the_type_set_and_the_head_scores_every_type(tokenizer):
    model = multi_vaner(tokenizer)
    assert model.config.row_instruction("Gene", "NCBI-disease") == model.config.row_instruction("Disease", "NCBI-disease")
    assert "Disease, Chemical, Gene, Species" in model.config.row_instruction("Gene")
    assert model.classifier.out_features == 3 * len(TYPES)
    per_type = tiny_vaner(tokenizer, entity_types=TYPES)
    assert per_type.classifier.out_features == 3
    assert per_type.config.row_instruction("Gene") != per_type.config.row_instruction("Disease")


def test_partial_label_loss_teaches_only_the_labelled_types(tokenizer):
    """An NCBI-disease row labels Disease only: the other types' head columns get no gradient from it."""
    model = multi_vaner(tokenizer).train()
    ids = tokenizer([TEXTS[0]], return_tensors="pt").input_ids
    labels = torch.full((1, ids.shape[1], len(TYPES)), IGNORE_INDEX)
    labels[0, :, 0] = 0
    labels[0, 2, 0] = 1
    model(input_ids=ids, labels=labels).loss.backward()
    grad = model.classifier.weight.grad
    assert grad[0:3].abs().sum() > 0
    assert grad[3:].abs().sum() == 0
    with pytest.raises(ValueError, match="one column per known type"):
        model(input_ids=ids, labels=labels[..., :2])


def test_typed_logits_give_every_types_probabilities_back(tokenizer):
    model = multi_vaner(tokenizer)
    ids = tokenizer(TEXTS[:2], return_tensors="pt", padding=True)
    with torch.no_grad():
        typed = model(**ids).logits
        for k in range(len(TYPES)):
            own = model(**ids, entity_type_ids=torch.full((2,), k)).logits
            from_typed = typed[..., [0, 1 + 2 * k, 2 + 2 * k]].softmax(-1)
            torch.testing.assert_close(from_typed, own.float().softmax(-1), atol=1e-5, rtol=1e-4)
    assert typed.shape[-1] == 1 + 2 * len(TYPES)


def test_rows_of_one_sentence_in_two_corpora_become_one_row(tokenizer):
    sentences = toy_sentences(2)  # each sentence twice: toy-disease (Disease) and toy-chem (Chemical)
    ncbi_only = Sentence(("BRCA1", "mutant", "mice", "."), ("B", "I", "O", "O"), "Disease", "NCBI-disease")
    table = sentences_to_dataset([*sentences, ncbi_only]).add_item(
        dbr_row(["cisplatin", "breast cancer", "mice"], ["Chemical", "Disease", "Species"], "Chemical", "NCBI-disease"))
    merged = merge_type_rows(table, TYPES)
    assert len(merged) == 4
    assert [sorted(m.tags) for m in merged[:2]] == [["Chemical", "Disease"], ["Chemical", "Disease"]]
    assert merged[0].corpora == ["toy-disease", "toy-chem"]
    assert merged[2].tags == {"Disease": [1, 2, 0, 0]}
    assert merged[3].tags == {"Disease": [0, 0, 1, 2, 0, 0], "Chemical": [1, 0, 0, 0, 0, 0],
                              "Gene": [0] * 6, "Species": [0, 0, 0, 0, 0, 1]}

    rows = tokenize_multi_type_dataset(table, tokenizer, 128, TYPES, ["NCBI-disease", "toy-chem", "toy-disease"])
    assert len(rows) == 4
    ncbi_labels = [label for label, word in zip(rows[2]["labels"], rows[2]["word_ids"]) if word >= 0]
    assert ncbi_labels == [[1, -100, -100, -100], [2, -100, -100, -100], [0, -100, -100, -100], [0, -100, -100, -100]]
    assert rows[2]["dataset_ids"] == 0 and rows[3]["dataset_ids"] == -1  # a DBR sample names no corpus
    assert rows[0]["dataset_ids"] in (1, 2)
    dbr_labels = [label for label, word in zip(rows[3]["labels"], rows[3]["word_ids"]) if word >= 0]
    assert [label[3] for label in dbr_labels] == [0, 0, 0, 0, 0, 1]
    batch = VanerDataCollator(tokenizer)([{k: rows[i][k] for k in ("input_ids", "attention_mask", "labels", "dataset_ids")}
                                          for i in range(4)])
    assert batch["labels"].shape == (4, batch["input_ids"].shape[1], len(TYPES))
    assert "entity_type_ids" not in batch


def test_one_pass_per_window_and_overlapping_types_kept(tokenizer):
    text = TEXTS[0]
    tables = {
        "Gene": word_mode_tags(tokenizer, text, ["BRCA1"]),
        "Disease": word_mode_tags(tokenizer, text, ["nephrotoxicity", "BRCA1 mutant"]),
        "Species": word_mode_tags(tokenizer, text, ["mice"]),
    }
    model = Recorder(rig_multi_type(multi_vaner(tokenizer), tables))
    entities = annotate_text(model, tokenizer, text)
    assert found(entities) == [("Disease", 18, 32), ("Gene", 36, 41), ("Disease", 36, 48), ("Species", 49, 53)]
    assert len(model.calls) == 1 and model.calls[0]["input_ids"].shape[0] == 1  # one row, not one per type
    assert "entity_type_ids" not in model.calls[0]
    only = annotate_text(model, tokenizer, text, entity_types=["gene"])
    assert found(only) == [("Gene", 36, 41)]


def test_one_type_asked_alone_equals_that_type_of_all_types(tokenizer):
    model = multi_vaner(tokenizer, seed=3)
    every = [list(a.entities) for a in DocumentAnnotator(model, tokenizer, max_length=24).annotate_documents(TEXTS)]
    assert sum(map(len, every)) > 0, "the random model tags something, so the comparison is not empty"
    for entity_type in TYPES:
        alone = DocumentAnnotator(model, tokenizer, entity_types=[entity_type], max_length=24).annotate_documents(TEXTS)
        for entities, annotated in zip(every, alone):
            assert list(annotated.entities) == [e for e in entities if e.entity_type == entity_type]


def test_stock_api_loads_a_multi_type_folder(tokenizer, tmp_path):
    model = multi_vaner(tokenizer, seed=5)
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    loaded = AutoModelForTokenClassification.from_pretrained(tmp_path, trust_remote_code=True)
    assert loaded.config.multi_type and loaded.classifier.out_features == 12
    ner = pipeline("token-classification", model=str(tmp_path), trust_remote_code=True, dtype="float32")
    expected = [(e.entity_type, e.start, e.end) for e in annotate_text(model, tokenizer, TEXTS[1])]
    assert [(r["entity_group"], r["start"], r["end"]) for r in ner(TEXTS[1])] == expected
    subset = AutoModelForTokenClassification.from_pretrained(tmp_path, trust_remote_code=True, entity_types=["Gene"])
    assert subset.classifier.out_features == 12 and subset.config.id2label == {0: "O", 1: "B-Gene", 2: "I-Gene"}


def test_unnamed_fraction_drops_corpus_names_from_corpus_sentences_only(tokenizer):
    ncbi = [Sentence(("BRCA1", "mutant", f"mice{i}", "."), ("B", "I", "O", "O"), "Disease", "NCBI-disease")
            for i in range(200)]
    table = sentences_to_dataset(ncbi).add_item(
        dbr_row(["cisplatin", "mice"], ["Chemical", "Species"], "Chemical", "NCBI-disease"))
    named = tokenize_multi_type_dataset(table, tokenizer, 128, TYPES, ["NCBI-disease"])
    assert named["dataset_ids"][:200] == [0] * 200
    rows = tokenize_multi_type_dataset(table, tokenizer, 128, TYPES, ["NCBI-disease"], seed=3, unnamed_fraction=0.25)
    unnamed = rows["dataset_ids"][:200].count(-1)
    assert 30 <= unnamed <= 70 and rows["dataset_ids"][200] == -1
    assert rows["labels"] == named["labels"]  # a name is dropped, never a label
    assert rows["dataset_ids"] == tokenize_multi_type_dataset(
        table, tokenizer, 128, TYPES, ["NCBI-disease"], seed=3, unnamed_fraction=0.25)["dataset_ids"]
    with pytest.raises(ValueError, match="unnamed_fraction"):
        tokenize_multi_type_dataset(table, tokenizer, 128, TYPES, ["NCBI-disease"], unnamed_fraction=1.5)
