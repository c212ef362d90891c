"""Annotated documents as training and evaluation input: BioC XML and JSON, PubTator and brat read into one form
(the annotation path's sentences and words, a tag sequence per type), --type_map, and evaluate_vaner.py --files."""

import logging
from pathlib import Path

import bioc
import pytest
from bioc import biocjson, biocxml

import evaluate_vaner
from vaner.annotated import TypeNames, parse_type_map, read_annotated
from vaner.corpora import CorpusFormatError
from vaner.formats import read_documents

TITLE = "HeLa229 and Jurkat T cells express IL-2 ."
ABSTRACT = "Primary B and T lymphocytes were compared ."
TEXT = f"{TITLE} {ABSTRACT}"
TYPE_MAP = ["cell_line=CellLine", "cell_type=CellType", "protein=O"]


def at(substring: str, start: int = 0) -> tuple[int, int]:
    begin = TEXT.index(substring, start)
    return begin, begin + len(substring)


# (raw type, fragments): "HeLa" ends inside the word "HeLa229"; "B ... lymphocytes" is discontinuous and, joined,
# overlaps "T lymphocytes" of its own type; "T cells" (cell_type) and "Jurkat" (cell_line) do not overlap.
MENTIONS = [
    ("cell_line", (at("HeLa"),)),
    ("cell_line", (at("Jurkat"),)),
    ("cell_type", (at("T cells"),)),
    ("protein", (at("IL-2"),)),
    ("cell_type", (at("B", len(TITLE)), at("lymphocytes"))),
    ("cell_type", (at("T lymphocytes"),)),
]
EXPECTED_TAGS = {
    "CellLine": ("B", "O", "B", "O", "O", "O", "O", "O", "O", "O"),
    "CellType": ("O", "O", "O", "B", "I", "O", "O", "O", "O", "O"),
}
EXPECTED_ABSTRACT = {"CellLine": ("O",) * 8, "CellType": ("O", "B", "I", "I", "I", "O", "O", "O")}


def write_brat(folder: Path, name: str = "doc") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.txt").write_text(f"{TITLE}\n{ABSTRACT}", encoding="utf-8")
    lines = []
    for number, (raw_type, fragments) in enumerate(MENTIONS, start=1):
        offsets = ";".join(f"{start} {end}" for start, end in fragments)
        lines.append(f"T{number}\t{raw_type} {offsets}\t{' '.join(TEXT[s:e] for s, e in fragments)}")
    lines += ["R1\tPart_of Arg1:T1 Arg2:T2", "A1\tNegated T3", "#1\tAnnotatorNotes T1\tchecked"]
    (folder / f"{name}.ann").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder / f"{name}.ann"


def bioc_collection(document_id: str = "doc") -> bioc.BioCCollection:
    collection, document = bioc.BioCCollection(), bioc.BioCDocument()
    document.id = document_id
    for offset, text, kind in ((0, TITLE, "title"), (len(TITLE) + 1, ABSTRACT, "abstract")):
        passage = bioc.BioCPassage()
        passage.offset, passage.text, passage.infons["type"] = offset, text, kind
        for number, (raw_type, fragments) in enumerate(MENTIONS):
            if offset <= fragments[0][0] < offset + len(text):
                annotation = bioc.BioCAnnotation()
                annotation.id, annotation.infons["type"] = str(number), raw_type
                annotation.text = " ".join(TEXT[s:e] for s, e in fragments)
                for start, end in fragments:
                    annotation.add_location(bioc.BioCLocation(start, end - start))
                passage.add_annotation(annotation)
        document.add_passage(passage)
    collection.add_document(document)
    return collection


def write_formats(folder: Path) -> dict[str, Path]:
    """The same annotated document as brat, BioC XML, BioC JSON and PubTator (whose discontinuous mention is
    written as its joined span, the one span PubTator can hold)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"brat": write_brat(folder / "brat")}
    paths["bioc_xml"] = folder / "doc.xml"
    paths["bioc_xml"].write_text(biocxml.dumps(bioc_collection()), encoding="utf-8")
    paths["bioc_json"] = folder / "doc.json"
    paths["bioc_json"].write_text(biocjson.dumps(bioc_collection()), encoding="utf-8")
    lines = [f"7|t|{TITLE}", f"7|a|{ABSTRACT}"]
    for raw_type, fragments in MENTIONS:
        start, end = fragments[0][0], fragments[-1][1]
        lines.append(f"7\t{start}\t{end}\t{TEXT[start:end]}\t{raw_type}")
    paths["pubtator"] = folder / "doc.pubtator"
    paths["pubtator"].write_text("\n".join(lines) + "\n\n", encoding="utf-8")
    return paths


# --------------------------------------------------------------------------------------------
# Reading annotated documents


@pytest.mark.parametrize("file_format", ["brat", "bioc_xml", "bioc_json", "pubtator"])
def test_each_format_gives_the_annotation_paths_sentences_with_a_tag_sequence_per_type(file_format, tmp_path, caplog):
    path = write_formats(tmp_path)[file_format]
    with caplog.at_level(logging.INFO, logger="vaner.annotated"):
        corpus = read_annotated([path, path], parse_type_map(TYPE_MAP))  # the document twice: counts add up
    title, abstract = corpus.sentences[:2]
    assert title.tokens == ("HeLa229", "and", "Jurkat", "T", "cells", "express", "IL", "-", "2", ".")
    assert dict(title.tags) == EXPECTED_TAGS  # HeLa widened to the word HeLa229; IL-2 (protein) dropped
    assert dict(abstract.tags) == EXPECTED_ABSTRACT  # "B ... lymphocytes" joined, "T lymphocytes" inside it left out
    assert corpus.entity_types == ["CellLine", "CellType"] and corpus.dropped == {"protein": 2}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings  # every case of the whole input in one warning
    assert "2 widened to whole words" in warnings[0] and "2 overlapping (left out)" in warnings[0]
    assert ("2 discontinuous (joined into one span)" in warnings[0]) == (file_format != "pubtator")
    if file_format == "brat":
        assert "2 #, 2 A, 2 R" in caplog.text  # other line kinds counted, not read
    table = corpus.table()
    assert table["entity_type"] == ["CellLine", "CellType"] * 4 and table["source_corpus"] == table["entity_type"]
    assert table["ner_tags"][2] == [0] * len(abstract.tokens)  # no CellLine in the abstract: all O, still taught


def test_a_brat_document_is_annotated_from_its_text_and_a_folder_reads_each_pair_once(tmp_path):
    ann = write_brat(tmp_path / "export")
    (document,) = read_documents([ann])
    assert (document.document_id, document.text) == ("doc", f"{TITLE}\n{ABSTRACT}")
    corpus = read_annotated([tmp_path / "export", ann.with_suffix(".txt")], parse_type_map(TYPE_MAP))
    assert corpus.documents == 1 and len(corpus.sentences) == 2
    write_brat(tmp_path / "lone")
    (tmp_path / "lone" / "doc.txt").unlink()
    (lone,) = read_documents([tmp_path / "lone" / "doc.ann"])
    assert "no doc.txt beside it" in lone.error


def test_type_names_map_drop_and_take_the_models_spelling():
    names = TypeNames(parse_type_map(["cell_line=CellLine", "DNA=-", "RNA=O"]), ["Disease", "Gene"])
    assert [names(raw) for raw in ("cell_line", "CELL_LINE", "DNA", "RNA", "disease", "mutation")] == [
        "CellLine", "CellLine", None, None, "Disease", "mutation"]
    for arguments, message in ((["cell_line"], "expected raw=Type"), (["a=B", "a=C"], "maps 'a' twice")):
        with pytest.raises(ValueError, match=message):
            parse_type_map(arguments)


def test_bad_annotated_input_names_the_file_and_line(tmp_path):
    ann = write_brat(tmp_path / "brat")
    lines = ann.read_text().splitlines()
    lines[1] = lines[1].replace("Jurkat", "Jurkas")
    ann.write_text("\n".join(lines) + "\n")
    with pytest.raises(CorpusFormatError, match=r"doc\.ann:2: entity text 'Jurkas' differs"):
        read_annotated([ann])
    plain = tmp_path / "plain.txt"
    plain.write_text("No annotations here.")
    with pytest.raises(CorpusFormatError, match="plain.txt: read as text, which holds no annotations"):
        read_annotated([plain])
    collection = bioc_collection()
    collection.documents[0].passages[0].annotations[0].infons.clear()
    untyped = tmp_path / "untyped.xml"
    untyped.write_text(biocxml.dumps(collection))
    with pytest.raises(CorpusFormatError, match="untyped.xml:document 1: annotation '0' has no 'type' infon"):
        read_annotated([untyped])
    with pytest.raises(CorpusFormatError, match=r"no mention of any type is left \(dropped by --type_map: cell_line"):
        read_annotated([write_formats(tmp_path / "all")["pubtator"]], parse_type_map(
            ["cell_line=O", "cell_type=O", "protein=O"]))


def test_evaluate_scores_documents_per_type_and_names_types_the_model_does_not_know(tiny_vaner_dir, tmp_path):
    paths = write_formats(tmp_path / "docs")
    arguments = ["--model_name_or_path", str(tiny_vaner_dir), "--files", str(paths["bioc_xml"]), str(paths["brat"]),
                 "--output_dir", str(tmp_path / "scores"), "--no_progress"]
    results = evaluate_vaner.main([*arguments, "--type_map", "cell_line=Gene", "CELL_TYPE=species", "protein=O"])
    assert list(results["corpora"]) == ["Gene", "Species"]  # the model's spelling, any case
    assert results["corpora"]["Gene"]["n_gold"] == 4 and results["corpora"]["Species"]["sentences"] == 4
    assert "| Gene | Gene | 4 |" in (tmp_path / "scores" / "results.md").read_text()
    with pytest.raises(ValueError, match="cell_line, cell_type, protein, which this model does not know"):
        evaluate_vaner.main(arguments)
    with pytest.raises(SystemExit, match="one of the two"):
        evaluate_vaner.main([*arguments, "--corpora", f"toy:Disease={paths['pubtator']}"])


def test_the_jnlpba_converter_writes_documents_that_read_back_with_their_mentions(tmp_path):
    """bench/jnlpba_to_user_docs.py (the walk-through's data): -DOCSTART- blocks become documents whose BioC XML
    and brat files read back to the corpus's own words and tags for the kept types, the others left out."""
    import runpy

    corpus = tmp_path / "jnlpba"
    corpus.mkdir()
    block = ("-DOCSTART-\tO\n\nIL-2\tB-protein\nin\tO\nJurkat\tB-cell_line\nT\tI-cell_line\ncells\tI-cell_line\n.\tO\n\n"
             "Primary\tB-cell_type\nT\tI-cell_type\nlymphocytes\tI-cell_type\nrespond\tO\n.\tO\n\n")
    for split in ("devel", "test"):
        (corpus / f"{split}.tsv").write_text(block * 2, encoding="utf-8")
    converter = runpy.run_path(str(Path(__file__).resolve().parents[1] / "bench" / "jnlpba_to_user_docs.py"))
    counts = converter["main"](["--jnlpba", str(corpus), "--output_dir", str(tmp_path / "docs")])
    assert counts["devel"] == {"documents": 2, "cell_line": 2, "cell_type": 2}
    mapping = parse_type_map(["cell_line=CellLine", "cell_type=CellType"])
    for path in (tmp_path / "docs" / "bioc" / "devel.xml", tmp_path / "docs" / "brat" / "devel"):
        read = read_annotated([path], mapping)
        assert read.documents == 2 and read.mentions == {"CellLine": 2, "CellType": 2} and not read.dropped
        title, abstract = read.sentences[:2]
        assert title.tokens == ("IL", "-", "2", "in", "Jurkat", "T", "cells", ".")
        assert title.tags["CellLine"] == ("O", "O", "O", "O", "B", "I", "I", "O")
        assert abstract.tags["CellType"] == ("B", "I", "I", "O", "O")
    iob = (tmp_path / "docs" / "iob" / "cell_line" / "train.tsv").read_text()
    assert "Jurkat\tB-cell_line\nT\tI-cell_line\n" in iob and "IL\tO\n" in iob
