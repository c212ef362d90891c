"""build_dbr_dataset.py end to end on tiny corpora, a tiny knowledge base and a tiny random encoder."""

from dataclasses import fields
from pathlib import Path

import pytest
from datasets import load_dataset
from test_dbr import build_tiny_encoder

import build_dbr_dataset
from vaner.corpora import CorpusFormatError
from vaner.features import DATASET_FEATURES

DISEASE_SENTENCES = [
    "Germline/O mutations/O in/O BRCA1/O cause/O familial/B breast/I cancer/I ./O",
    "The/O APC/O gene/O and/O ovarian/B cancer/I risk/O ./O",
    "Cowden/B syndrome/I in/O mice/O treated/O with/O aspirin/O ./O",
]
CHEMICAL_SENTENCES = [
    "Naloxone/B reverses/O the/O effect/O of/O clonidine/B in/O rats/O ./O",
    "Cisplatin/B nephrotoxicity/O in/O mice/O ./O",
]
KB = "name\ttype\nbreast cancer\tDisease or Syndrome\ntumour\tDisease\naspirin\tPharmacologic Substance\n" \
     "naloxone\tChemical\nBRCA1\tGene/Protein\nIL-2 receptor\tGene or Genome\nmice\tSpecies\nheart\tAnatomy\n" \
     "risk\tDisease\n"


def write_corpus(folder: Path, sentences: list[str], splits=("train", "devel", "test")) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for split in splits:
        lines = []
        for sentence in sentences:
            for item in sentence.split():
                token, tag = item.rsplit("/", 1)
                lines.append(f"{token}\t{tag}-{'Chemical' if 'chem' in folder.name else 'Disease'}" if tag != "O" else f"{token}\tO")
            lines.append("")
        (folder / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("dbr_build")
    write_corpus(root / "corpora" / "ncbi-disease", DISEASE_SENTENCES)
    # A user's own BC4CHEMD in the same layout (not in ../shared).
    write_corpus(root / "corpora" / "bc4chemd", CHEMICAL_SENTENCES)
    write_corpus(root / "corpora" / "s800-like-chem", CHEMICAL_SENTENCES[:1], splits=("devel", "test"))
    (root / "kb.tsv").write_text(KB)
    build_tiny_encoder(root / "model")
    return root


def arguments(workspace: Path, output: str, *extra: str) -> list[str]:
    return [
        "--corpus_dir", str(workspace / "corpora"),
        "--corpora", "ncbi-disease", "bc4chemd", "s800-like-chem:Chemical",
        "--kb_tsv", str(workspace / "kb.tsv"),
        "--encoder", str(workspace / "model" / "encoder"),
        "--embedding_cache_dir", str(workspace / "cache"),
        "--output_dir", str(workspace / output),
        "--max_target_entities", "3", "--max_other_entities", "2",
        "--phrase_min_count", "1",
        "--no_progress",
        *extra,
    ]


def test_build_writes_a_loadable_dataset_with_card(workspace, capsys):
    summary = build_dbr_dataset.main(arguments(workspace, "out"))
    output = workspace / "out"
    assert sorted(path.name for path in (output / "data").iterdir()) == [
        "test-00000-of-00001.parquet", "train-00000-of-00001.parquet", "validation-00000-of-00001.parquet"
    ]
    dataset = load_dataset(str(output))
    assert set(dataset) == {"train", "validation", "test"}
    assert dataset["train"].features == DATASET_FEATURES
    train = dataset["train"]
    kinds = list(zip(train["source_corpus"], train["sample_kind"]))
    assert kinds.count(("ncbi-disease", "sentence")) == 3 and kinds.count(("bc4chemd", "sentence")) == 2
    assert kinds.count(("ncbi-disease", "dbr")) == 3 and kinds.count(("bc4chemd", "dbr")) == 2
    # The corpus without a train split only adds validation / test rows.
    assert "s800-like-chem" not in train["source_corpus"]
    assert dataset["validation"]["source_corpus"].count("s800-like-chem") == 1
    assert set(dataset["validation"]["sample_kind"]) == {"sentence"}
    for row in train:
        if row["sample_kind"] == "dbr":
            tagged = [entity for entity in row["dbr_entities"] if entity["entity_type"] == row["entity_type"]]
            assert row["ner_tags"].count(1) == len(tagged) <= 3
            assert len(row["dbr_entities"]) - len(tagged) <= 2
    card = (output / "README.md").read_text()
    assert card.startswith("---\n") and "task_categories:" in card and "\n---\n" in card[3:]
    assert "python build_dbr_dataset.py --corpus_dir" in card
    assert "| ncbi-disease | 3 | 3 | 3 | 3 |" in card
    # Train mentions first, then the file: "naloxone" repeats "Naloxone" and is dropped.
    assert "- Disease: 6\n- Chemical: 4\n- Gene: 2\n- Species: 1\n- other types (negatives): 1" in card
    assert summary["dbr_rows"] == 5 and summary["phrase_mining"]["ncbi-disease"]["recall"] == 1.0
    assert summary["knowledge_base_dropped_unannotated"] == 0  # no name occurs 5 times here
    printed = capsys.readouterr().out
    assert "Rows per corpus and kind" in printed and "peak RAM" in printed and "ncbi-disease/dbr 3" in printed


def test_same_seed_same_dataset_other_seed_other_dbr_rows(workspace):
    first = build_dbr_dataset.main(arguments(workspace, "seed_a", "--seed", "5"))
    second = build_dbr_dataset.main(arguments(workspace, "seed_b", "--seed", "5"))
    third = build_dbr_dataset.main(arguments(workspace, "seed_c", "--seed", "6"))
    tables = {name: load_dataset(str(workspace / name))["train"].to_list() for name in ("seed_a", "seed_b", "seed_c")}
    assert tables["seed_a"] == tables["seed_b"]
    assert tables["seed_a"] != tables["seed_c"]
    assert first["rows"] == second["rows"] == third["rows"]
    # The knowledge-base embeddings were computed once and then read from the cache.
    assert len(list((workspace / "cache").glob("kb-*.npy"))) == 1


def test_unannotated_filter_drops_names_the_corpus_leaves_untagged(workspace):
    # "risk" (a Disease name of kb.tsv) occurs once in NCBI-disease, unannotated: dropped. "breast cancer"
    # occurs only inside the mention "familial breast cancer": no verdict, kept.
    summary = build_dbr_dataset.main(arguments(workspace, "filtered", "--kb_filter_min_occurrences", "1"))
    assert summary["knowledge_base_dropped_unannotated"] == 1
    assert summary["knowledge_base_size"] == 13
    unfiltered = build_dbr_dataset.main(arguments(workspace, "unfiltered", "--no_kb_filter_unannotated"))
    assert unfiltered["knowledge_base_size"] == 14


def test_rebuilding_a_folder_is_seen_by_load_dataset(workspace):
    build_dbr_dataset.main(arguments(workspace, "rebuilt", "--seed", "1"))
    first = load_dataset(str(workspace / "rebuilt"))["train"].to_list()
    build_dbr_dataset.main(arguments(workspace, "rebuilt", "--seed", "2"))
    second = load_dataset(str(workspace / "rebuilt"))["train"].to_list()
    assert first != second  # not the cached rows of the first build


def test_random_and_none_variants(workspace):
    relevant = build_dbr_dataset.main(arguments(workspace, "relevant"))
    random_summary = build_dbr_dataset.main(arguments(workspace, "random", "--variant", "random"))
    assert random_summary["mean_target_entities_per_dbr_row"] == relevant["mean_target_entities_per_dbr_row"]
    assert random_summary["dbr_rows"] == relevant["dbr_rows"]
    none = build_dbr_dataset.main(arguments(workspace, "none", "--variant", "none"))
    train = load_dataset(str(workspace / "none"))["train"]
    assert set(train["sample_kind"]) == {"sentence"} and len(train) == 5
    assert none["dbr_rows"] == 0 and none["knowledge_base_size"] == 0


def test_push_to_hub_uploads_the_folder(workspace, monkeypatch):
    from huggingface_hub import HfApi

    calls = []
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kwargs: calls.append(("create", repo_id, kwargs)))

    def upload_folder(self, **kwargs):
        calls.append(("upload", kwargs))
        assert (Path(kwargs["folder_path"]) / "README.md").is_file()
        assert list((Path(kwargs["folder_path"]) / "data").glob("train-*.parquet"))
        return "https://huggingface.co/datasets/someone/vaner-dbr/commit/0"

    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    summary = build_dbr_dataset.main(arguments(workspace, "pushed", "--push_to_hub", "someone/vaner-dbr", "--hub_private"))
    assert calls[0] == ("create", "someone/vaner-dbr", {"repo_type": "dataset", "private": True, "exist_ok": True})
    assert calls[1][1]["repo_id"] == "someone/vaner-dbr" and calls[1][1]["repo_type"] == "dataset"
    assert summary["hub_commit"].endswith("/commit/0")
    assert 'load_dataset("someone/vaner-dbr")' in (workspace / "pushed" / "README.md").read_text()


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_dbr_dataset.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for arguments_class in build_dbr_dataset.ARGUMENT_CLASSES:
        for option in fields(arguments_class):
            assert f"--{option.name}" in text
    assert text.count("(default:") >= sum(len(fields(cls)) for cls in build_dbr_dataset.ARGUMENT_CLASSES)


def test_corpus_arguments_errors(workspace):
    with pytest.raises(CorpusFormatError, match="give --corpus_dir"):
        build_dbr_dataset.resolve_corpora(build_dbr_dataset.CorpusArguments(corpora=["ncbi-disease"]))
    with pytest.raises(ValueError, match="given twice"):
        build_dbr_dataset.resolve_corpora(
            build_dbr_dataset.CorpusArguments(corpora=["ncbi-disease", f"ncbi-disease={workspace}"], corpus_dir=str(workspace))
        )
    only_devel = build_dbr_dataset.resolve_corpora(
        build_dbr_dataset.CorpusArguments(corpora=["s800-like-chem:Chemical"], corpus_dir=str(workspace / "corpora"))
    )
    with pytest.raises(CorpusFormatError, match="none of the corpora has a train split"):
        build_dbr_dataset.load_splits(only_devel)


def test_malformed_kb_row_stops_the_build(workspace):
    bad = workspace / "bad_kb.tsv"
    bad.write_text("name\ttype\naspirin\tChemical\n\tDisease\n")
    argv = arguments(workspace, "bad")
    argv[argv.index(str(workspace / "kb.tsv"))] = str(bad)
    with pytest.raises(ValueError, match=r"bad_kb.tsv:3: empty name"):
        build_dbr_dataset.main(argv)
