"""predict_vaner.py: every option documented, every format end to end, bad input reported without a crash."""

import dataclasses
import json
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

import predict_vaner
from vaner.corpora import read_pubtator

PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture
def inputs(tmp_path):
    folder = tmp_path / "inputs"
    folder.mkdir()
    (folder / "abstract.txt").write_bytes(
        "Cisplatin-induced nephrotoxicity in BRCA1 mutant mice.\r\nTNF-\u03b1\u00a0and  \u03b2-catenin rose.".encode()
    )
    (folder / "empty.txt").write_bytes(b"")
    (folder / "blank.txt").write_bytes(b"  \n\t\n")
    (folder / "undecodable.txt").write_bytes(b"Caf\xe9 \xff\xfe nephrotoxicity.")
    (folder / "docs.jsonl").write_text(
        '{"id": "j1", "text": "Naloxone reverses the effect of clonidine."}\nnot json\n', encoding="utf-8")
    (folder / "docs.pubtator").write_text(
        "77|t|Ovarian cancer in women.\n77|a|Mutations of the breast cancer gene.\n77\t0\t14\tOvarian cancer\tDisease\n\n",
        encoding="utf-8")
    return folder


def run(arguments):
    return predict_vaner.main([*map(str, arguments), "--no_progress", "--dtype", "float32"])


def test_help_documents_every_option():
    text = predict_vaner.parser().format_help()
    for dataclass in (predict_vaner.ModelArguments, predict_vaner.DataArguments, predict_vaner.AnnotationArguments):
        for option in dataclasses.fields(dataclass):
            assert f"--{option.name}" in text, option.name
            assert len(option.metadata.get("help", "")) > 20, f"--{option.name} needs a real help text"
    for word in ("jsonl", "pubtator", "bioc", "html", "words", "raw", "keep", "best", "bfloat16"):
        assert word in text


def test_help_runs_as_a_script():
    result = subprocess.run([sys.executable, "predict_vaner.py", "--help"], cwd=PROJECT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0 and "--model_name_or_path" in result.stdout


def test_every_input_and_output_format(tiny_vaner_dir, inputs, tmp_path, caplog):
    outputs = {name: tmp_path / f"out.{name}" for name in ("jsonl", "pubtator", "json", "html")}
    for name, output in outputs.items():
        text = ["--include_text"] if name == "jsonl" else []  # the other formats carry the text themselves
        assert run(["--model_name_or_path", tiny_vaner_dir, "--input", inputs, "--output", output,  # docs.jsonl:2
                    "--entity_types", "disease", "Gene", *text]) == predict_vaner.EXIT_DOCUMENTS_LOST

    records = [json.loads(line) for line in outputs["jsonl"].read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in records] == ["abstract", "blank", "j1", "docs.jsonl:2", "77", "empty", "undecodable"]
    by_id = {r["id"]: r for r in records}
    assert by_id["empty"]["entities"] == [] and by_id["blank"]["entities"] == []
    assert "docs.jsonl:2: not a JSON object" in by_id["docs.jsonl:2"]["error"]
    assert "undecodable.txt: bytes that are not utf-8" in caplog.text
    for record in records:
        for entity in record["entities"]:
            assert record["text"][entity["start"] : entity["end"]] == entity["text"]
            assert entity["type"] in ("Disease", "Gene") and 0 <= entity["score"] <= 1
    assert sum(len(r["entities"]) for r in records) > 0

    documents = {d.document_id: d for d in read_pubtator(outputs["pubtator"])}  # checks mentions against the text
    assert list(documents) == [r["id"] for r in records if "error" not in r]
    assert documents["77"].title == "Ovarian cancer in women."
    assert documents["77"].abstract == "Mutations of the breast cancer gene."

    collection = json.loads(outputs["json"].read_text(encoding="utf-8"))
    assert collection["infons"]["entity_types"] == "Disease Gene"
    assert [d["id"] for d in collection["documents"]] == [r["id"] for r in records if "error" not in r]

    ElementTree.fromstring(outputs["html"].read_text(encoding="utf-8").split("\n", 1)[1])


def test_stdin_to_stdout(tiny_vaner_dir, tmp_path, monkeypatch, capsys):
    import io

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b'{"id": "s", "text": "BRCA1 mice."}\n')))
    assert run(["--model_name_or_path", tiny_vaner_dir, "--input", "-", "--input_format", "jsonl"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line)["id"] == "s"


def test_unknown_entity_type_is_a_clear_error(tiny_vaner_dir, inputs, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run(["--model_name_or_path", tiny_vaner_dir, "--input", inputs, "--entity_types", "Cell"])
    assert exit_info.value.code == 2
    assert "Unknown entity type(s) ['Cell']" in capsys.readouterr().err


def test_missing_input_is_a_clear_error(tiny_vaner_dir, tmp_path, capsys):
    with pytest.raises(SystemExit):
        run(["--model_name_or_path", tiny_vaner_dir, "--input", tmp_path / "nothing.txt"])
    assert "nothing.txt: no such file or folder" in capsys.readouterr().err


def test_long_single_line_document(tiny_vaner_dir, tmp_path):
    """A document of 200,000 characters on one line, no sentence end: windows, not truncation."""
    text = " ".join(["BRCA1 mutant mice and ovarian cancer"] * 5500)[:200_000]
    (tmp_path / "long.txt").write_text(text, encoding="utf-8")
    output = tmp_path / "long.jsonl"
    assert run(["--model_name_or_path", tiny_vaner_dir, "--input", tmp_path / "long.txt", "--output", output,
                "--entity_types", "Gene", "--batch_size", "64"]) == 0
    (record,) = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert record["entities"] and max(e["end"] for e in record["entities"]) > 190_000
    assert all(text[e["start"] : e["end"]] == e["text"] for e in record["entities"])


def test_model_folder_code_runs_only_with_trust_remote_code(tiny_vaner_dir, tmp_path):
    """A folder whose tokenizer maps to its own .py file: predict_vaner.py loads it with the stock tokenizer
    and never imports that file unless --trust_remote_code says so."""
    from conftest import folder_with_tokenizer_code

    folder = folder_with_tokenizer_code(tiny_vaner_dir, tmp_path / "model")
    (tmp_path / "in.txt").write_text("BRCA1 mutant mice.", encoding="utf-8")
    output = tmp_path / "out.jsonl"
    assert run(["--model_name_or_path", folder, "--input", tmp_path / "in.txt", "--output", output]) == 0
    assert not (folder / "CODE_RAN").exists()
    assert json.loads(output.read_text(encoding="utf-8"))["id"] == "in"
    assert run(["--model_name_or_path", folder, "--input", tmp_path / "in.txt", "--output", output,
                "--trust_remote_code"]) == 0
    assert (folder / "CODE_RAN").exists()


def test_output_never_destroys_an_input_or_a_complete_output(tiny_vaner_dir, tmp_path, monkeypatch, capsys):
    data = tmp_path / "docs.jsonl"
    content = '{"id": "a", "text": "BRCA1 mice."}\n{"id": "b", "text": "Ovarian cancer."}\n'
    data.write_text(content, encoding="utf-8")
    (tmp_path / "sub").mkdir()
    for same in (data, tmp_path / "sub" / ".." / "docs.jsonl"):
        with pytest.raises(SystemExit):
            run(["--model_name_or_path", tiny_vaner_dir, "--input", tmp_path, "--output", same])
        assert "is also an input" in capsys.readouterr().err
        assert data.read_text(encoding="utf-8") == content

    # An interrupted run leaves the previous output as it was, and no temporary file behind.
    output = tmp_path / "out" / "annotated.jsonl"
    output.parent.mkdir()
    output.write_text("a complete earlier output\n", encoding="utf-8")
    from vaner.documents import DocumentAnnotator

    annotate_documents = DocumentAnnotator.annotate_documents

    def interrupted_after_one(self, documents, progress=False):
        yield next(annotate_documents(self, documents, progress))
        raise KeyboardInterrupt("simulated interruption")

    monkeypatch.setattr(DocumentAnnotator, "annotate_documents", interrupted_after_one)
    with pytest.raises(KeyboardInterrupt):
        run(["--model_name_or_path", tiny_vaner_dir, "--input", data, "--output", output])
    assert output.read_text(encoding="utf-8") == "a complete earlier output\n"
    assert [path.name for path in output.parent.iterdir()] == ["annotated.jsonl"]
    monkeypatch.undo()
    assert run(["--model_name_or_path", tiny_vaner_dir, "--input", data, "--output", output]) == 0
    assert [json.loads(line)["id"] for line in output.read_text(encoding="utf-8").splitlines()] == ["a", "b"]
    assert [path.name for path in output.parent.iterdir()] == ["annotated.jsonl"]


def test_lone_surrogates_become_error_records_and_the_run_goes_on(tiny_vaner_dir, tmp_path):
    data = tmp_path / "docs.jsonl"
    data.write_text('{"id": "ok1", "text": "BRCA1 mice."}\n'
                    '{"id": "bad\\ud800", "text": "BRCA1 mice."}\n'
                    '{"id": "t", "text": "Ovarian \\udc00 cancer."}\n'
                    '{"id": "ok2", "text": "Ovarian cancer \\ud83d\\ude00."}\n', encoding="utf-8")
    output = tmp_path / "out.jsonl"
    assert run(["--model_name_or_path", tiny_vaner_dir, "--input", data, "--output", output,
                "--include_text"]) == predict_vaner.EXIT_DOCUMENTS_LOST
    records = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert [record["id"] for record in records] == ["ok1", "docs.jsonl:2", "t", "ok2"]
    assert "docs.jsonl:2:" in records[1]["error"] and "surrogate" in records[1]["error"]
    assert "docs.jsonl:3:" in records[2]["error"] and "surrogate" in records[2]["error"]
    assert "error" not in records[0] and "error" not in records[3]
    assert records[3]["text"] == "Ovarian cancer \U0001f600."  # a paired escape is one character


def test_unknown_input_encoding_is_a_clear_error(tiny_vaner_dir, inputs, capsys):
    with pytest.raises(SystemExit):
        run(["--model_name_or_path", tiny_vaner_dir, "--input", inputs, "--encoding", "utf-42"])
    assert "unknown encoding" in capsys.readouterr().err


def test_missing_model_folder_is_named(inputs, tmp_path, capsys, monkeypatch):
    for missing in (tmp_path / "no" / "such" / "model", "outputs-of-nothing/../no-model-here"):
        with pytest.raises(SystemExit):
            run(["--model_name_or_path", missing, "--input", inputs])
        error = capsys.readouterr().err
        assert f"{missing}: no such model folder" in error and "Repo id" not in error
    monkeypatch.chdir(tmp_path)
    (tmp_path / "outputs").mkdir()
    with pytest.raises(SystemExit):  # a valid Hub id in form, but under a folder that exists here: a local path
        run(["--model_name_or_path", "outputs/vaner-ncbi", "--input", inputs])
    assert "outputs/vaner-ncbi: no such model folder" in capsys.readouterr().err


def test_duplicate_document_ids_are_counted_in_one_warning(tiny_vaner_dir, tmp_path, caplog):
    data = tmp_path / "docs.jsonl"
    data.write_text("".join(f'{{"id": "{name}", "text": "BRCA1 mice."}}\n' for name in "aabcab"), encoding="utf-8")
    output = tmp_path / "out.jsonl"
    assert run(["--model_name_or_path", tiny_vaner_dir, "--input", data, "--output", output]) == 0
    assert len(output.read_text(encoding="utf-8").splitlines()) == 6
    warnings = [record.getMessage() for record in caplog.records if "id of an earlier document" in record.getMessage()]
    assert len(warnings) == 1 and warnings[0].startswith("3 documents have the id of an earlier document (first: 'a')")


def test_include_text_is_refused_where_the_output_carries_the_text(tiny_vaner_dir, tmp_path, capsys):
    data = tmp_path / "docs.jsonl"
    data.write_text('{"id": "a", "text": "BRCA1 mice."}\n', encoding="utf-8")
    with pytest.raises(SystemExit):
        run(["--model_name_or_path", tiny_vaner_dir, "--input", data, "--output", tmp_path / "out.pubtator",
             "--include_text"])
    assert "--include_text adds the text to JSONL records; pubtator output" in capsys.readouterr().err


def test_a_short_window_that_trains_also_annotates(tiny_vaner_dir, tmp_path):
    """--max_length 16 with the default stride: training and evaluation take min(32, half a window), and so does
    annotation (a fixed 32 was refused here)."""
    data = tmp_path / "docs.jsonl"
    data.write_text(json.dumps({"id": "a", "text": "The risk of ovarian cancer in women with BRCA1 mutations rose. " * 3})
                    + "\n", encoding="utf-8")
    output = tmp_path / "out.jsonl"
    assert run(["--model_name_or_path", tiny_vaner_dir, "--input", data, "--output", output, "--max_length", "16"]) == 0
    assert json.loads(output.read_text(encoding="utf-8"))["id"] == "a"
