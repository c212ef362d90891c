"""predict_vaner.py at the edges of files and processes (issue 24): outputs that are links, pipes or unwritable places,
signals, binary and compressed inputs, ids PubTator cannot hold, documents lost, early errors."""

import bz2
import gzip
import json
import logging
import os
import signal
import stat
import threading
import xml.etree.ElementTree as ElementTree

import pytest
from test_predict_cli import run

import predict_vaner
from vaner.corpora import read_pubtator

DOCS = '{"id": "a", "text": "BRCA1 mutant mice."}\n{"id": "b", "text": "Ovarian cancer."}\n'


@pytest.fixture
def docs(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text(DOCS, encoding="utf-8")
    return path


def ids(path):
    return [json.loads(line)["id"] for line in path.read_text(encoding="utf-8").splitlines()]


def test_a_symlinked_output_is_followed_and_the_mode_kept(tiny_vaner_dir, docs, tmp_path):
    target = tmp_path / "results" / "annotated.jsonl"
    target.parent.mkdir()
    target.write_text("stale\n", encoding="utf-8")
    os.chmod(target, 0o600)
    link = tmp_path / "latest.jsonl"
    link.symlink_to(target)
    assert run(["--model_name_or_path", tiny_vaner_dir, "--input", docs, "--output", link]) == 0
    assert link.is_symlink() and ids(target) == ["a", "b"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(path.name for path in target.parent.iterdir()) == ["annotated.jsonl"]


def test_a_pipe_or_device_output_is_written_in_place(tiny_vaner_dir, docs, tmp_path):
    fifo = tmp_path / "stream.jsonl"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text(encoding="utf-8")))
    reader.start()
    assert run(["--model_name_or_path", tiny_vaner_dir, "--input", docs, "--output", fifo]) == 0
    reader.join(timeout=60)
    assert stat.S_ISFIFO(fifo.stat().st_mode)  # still the pipe, not a file put in its place
    assert [json.loads(line)["id"] for line in received[0].splitlines()] == ["a", "b"]
    assert list(tmp_path.glob(".*.tmp")) == []


def test_unwritable_outputs_are_refused_before_the_model_loads(tiny_vaner_dir, docs, tmp_path, capsys, monkeypatch):
    import vaner.loading

    def no_loading(*args, **kwargs):
        raise AssertionError("the model loaded before the output was checked")

    monkeypatch.setattr(vaner.loading, "load_model", no_loading)
    cases = {tmp_path: "is a folder", tmp_path / "missing" / "out.jsonl": "does not exist"}
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        cases[locked / "out.jsonl"] = "no permission"
    for output, message in cases.items():
        with pytest.raises(SystemExit) as exit_info:
            run(["--model_name_or_path", tiny_vaner_dir, "--input", docs, "--output", output])
        assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_sigterm_leaves_no_temporary_output(tiny_vaner_dir, docs, tmp_path, monkeypatch):
    from vaner.documents import DocumentAnnotator

    annotate_documents = DocumentAnnotator.annotate_documents

    def terminated_after_one(self, documents, progress=False):
        yield next(annotate_documents(self, documents, progress))
        os.kill(os.getpid(), signal.SIGTERM)  # what Slurm, Kubernetes and kill send

    output = tmp_path / "out" / "annotated.jsonl"
    output.parent.mkdir()
    monkeypatch.setattr(DocumentAnnotator, "annotate_documents", terminated_after_one)
    previous = signal.getsignal(signal.SIGTERM)
    try:
        with pytest.raises(SystemExit) as exit_info:
            run(["--model_name_or_path", tiny_vaner_dir, "--input", docs, "--output", output])
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert exit_info.value.code == 128 + signal.SIGTERM
    assert list(output.parent.iterdir()) == []


def test_binary_and_compressed_inputs_and_subfolders(tiny_vaner_dir, tmp_path, caplog):
    folder = tmp_path / "inputs"
    (folder / "more").mkdir(parents=True)
    (folder / "figure.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00")
    (folder / "notes.txt.bz2").write_bytes(bz2.compress(b"BRCA1 mutant mice."))
    (folder / "docs.jsonl.gz").write_bytes(gzip.compress(DOCS.encode()))
    (folder / "notes.txt.gz").write_bytes(gzip.compress(b"Ovarian cancer in mice."))
    output = tmp_path / "out.jsonl"
    with caplog.at_level(logging.WARNING):
        status = run(["--model_name_or_path", tiny_vaner_dir, "--input", folder, "--output", output, "--include_text"])
    assert status == predict_vaner.EXIT_DOCUMENTS_LOST
    records = {record["id"]: record for record in map(json.loads, output.read_text(encoding="utf-8").splitlines())}
    assert list(records) == ["a", "b", "figure.png", "notes.txt.bz2", "notes"]
    assert records["a"]["text"] == "BRCA1 mutant mice." and records["notes"]["text"] == "Ovarian cancer in mice."
    assert "binary file" in records["figure.png"]["error"] and records["figure.png"]["entities"] == []
    assert "bzip2-compressed" in records["notes.txt.bz2"]["error"]
    assert "1 subfolder not read (more)" in caplog.text
    assert "2 of 5 documents could not be read or annotated" in caplog.text


def test_documents_lost_give_their_own_exit_status_and_a_summary(tiny_vaner_dir, tmp_path, caplog):
    data = tmp_path / "docs.jsonl"
    data.write_text('{"id": "ok", "text": "BRCA1 mice."}\nnot json\n{"text": 5}\n', encoding="utf-8")
    output = tmp_path / "out.pubtator"
    with caplog.at_level(logging.INFO):
        assert run(["--model_name_or_path", tiny_vaner_dir, "--input", data, "--output", output]) == 3
    assert "2 of 3 documents could not be read or annotated (left out of the pubtator output" in caplog.text
    assert [document.document_id for document in read_pubtator(output)] == ["ok"]
    assert run(["--model_name_or_path", tiny_vaner_dir, "--input", data, "--output", tmp_path / "out.jsonl"]) == 3
    assert ids(tmp_path / "out.jsonl") == ["ok", "docs.jsonl:2", "docs.jsonl:3"]  # JSONL keeps the error records


def test_pubtator_ids_never_collide_and_an_empty_id_is_readable(tiny_vaner_dir, tmp_path, caplog):
    data = tmp_path / "docs.jsonl"
    data.write_text('{"id": "a\\tb", "text": "BRCA1 mice."}\n{"id": "a b", "text": "Ovarian cancer."}\n'
                    '{"id": "", "text": "Cancer."}\n{"id": "x|y", "text": "Mice."}\n', encoding="utf-8")
    output = tmp_path / "out.pubtator"
    with caplog.at_level(logging.WARNING):
        assert run(["--model_name_or_path", tiny_vaner_dir, "--input", data, "--output", output]) == 0
    documents = read_pubtator(output)  # the strict corpus reader accepts every record
    assert [document.document_id for document in documents] == ["a b", "a b_2", "document_3", "x_y"]
    assert [document.title for document in documents] == ["BRCA1 mice.", "Ovarian cancer.", "Cancer.", "Mice."]
    assert "4 document ids changed to fit the format" in caplog.text and "'a\\tb' -> 'a b'" in caplog.text


def test_unknown_type_or_dataset_name_is_reported_before_the_model_loads(tiny_vaner_dir, docs, capsys, monkeypatch):
    from modeling_vaner import VanerForTokenClassification

    def no_loading(*args, **kwargs):
        raise AssertionError("the model loaded before its entity types were checked")

    monkeypatch.setattr(VanerForTokenClassification, "from_pretrained", no_loading)
    for option, value, message in (("--entity_types", "Cell", "Unknown entity type(s) ['Cell']"),
                                   ("--dataset_name", "NCBI-disaese", "Unknown dataset name 'NCBI-disaese'")):
        with pytest.raises(SystemExit):
            run(["--model_name_or_path", tiny_vaner_dir, "--input", docs, option, value])
        assert message in capsys.readouterr().err


def test_no_progress_hides_the_loading_bars(tiny_vaner_dir, docs, tmp_path, capfd):
    from transformers.utils import logging as hf_logging

    try:
        assert run(["--model_name_or_path", tiny_vaner_dir, "--input", docs, "--output", tmp_path / "o.jsonl"]) == 0
        assert "Loading weights" not in capfd.readouterr().err
    finally:
        hf_logging.enable_progress_bar()


def test_a_bad_bioc_document_4_of_7_costs_itself_and_the_exit_status_says_so(tiny_vaner_dir, tmp_path):
    from test_bioc_reliability import collection

    data = tmp_path / "seven.xml"
    data.write_text(collection(7, {4: "Significant (p < 0.05)."}), encoding="utf-8")
    output = tmp_path / "out.xml"
    assert run(["--model_name_or_path", tiny_vaner_dir, "--input", data, "--output", output]) == 3
    written = ElementTree.parse(output).getroot().findall("document")
    assert [document.findtext("id") for document in written] == ["d1", "d2", "d3", "d5", "d6", "d7"]


def test_write_failures_end_in_one_line_naming_the_output(tiny_vaner_dir, docs, tmp_path, capsys, caplog):
    """Issue 32, item 4: a full disk, /proc as root (which os.access lets through) and a trailing slash."""
    with caplog.at_level(logging.ERROR):
        assert run(["--model_name_or_path", tiny_vaner_dir, "--input", docs, "--output", "/dev/full"]) == 1
    assert [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR] == [
        "cannot write the output /dev/full: No space left on device"]
    cases = {"/proc/version": "/proc", f"{tmp_path / 'newdir'}/": "ends with a slash"}
    for output, message in cases.items():
        with pytest.raises(SystemExit) as exit_info:
            run(["--model_name_or_path", tiny_vaner_dir, "--input", docs, "--output", output])
        error = capsys.readouterr().err
        assert exit_info.value.code == 2 and message in error and "Traceback" not in error
    assert not (tmp_path / "newdir").exists()


def test_a_closed_standard_output_is_one_line_and_exit_1(tiny_vaner_dir, docs):
    """Issue 32, item 4: `--output -` into a pipe whose reader has gone (EPIPE)."""
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "predict_vaner.py", "--model_name_or_path", str(tiny_vaner_dir),
                                "--input", str(docs), "--no_progress", "--dtype", "float32"],
                               cwd=predict_vaner.__file__.rsplit("/", 1)[0], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    process.stdout.close()  # the reader is gone before anything is written
    error = process.stderr.read()
    assert process.wait(timeout=300) == 1
    assert "ERROR predict_vaner: cannot write the output -: Broken pipe" in error
    assert "Traceback" not in error and "Exception ignored" not in error


def test_the_temporary_output_is_private_unpredictable_and_follows_no_link(tiny_vaner_dir, docs, tmp_path,
                                                                           monkeypatch):
    """Issue 32, item 5: 0600 from its first byte, then the umask's mode; a link planted at the old predictable
    name `.NAME.PID.tmp` is neither followed nor used."""
    from vaner.documents import DocumentAnnotator

    output = tmp_path / "out" / "annotated.jsonl"
    output.parent.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    (output.parent / f".{output.name}.{os.getpid()}.tmp").symlink_to(victim)
    annotate_documents, seen = DocumentAnnotator.annotate_documents, {}

    def looking_at_the_temporary(self, documents, progress=False):
        for document in annotate_documents(self, documents, progress):
            yield document
            seen.update({path.name: stat.S_IMODE(path.lstat().st_mode) for path in output.parent.iterdir()
                         if not path.is_symlink()})

    monkeypatch.setattr(DocumentAnnotator, "annotate_documents", looking_at_the_temporary)
    previous = os.umask(0o022)
    try:
        assert run(["--model_name_or_path", tiny_vaner_dir, "--input", docs, "--output", output]) == 0
    finally:
        os.umask(previous)
    assert victim.read_text() == "keep me\n"
    assert list(seen.values()) == [0o600], seen
    assert stat.S_IMODE(output.stat().st_mode) == 0o644 and ids(output) == ["a", "b"]


def test_stale_temporaries_are_those_of_dead_writers_only(tmp_path):
    """Issue 32, item 5: `remove_stale_temporaries` keeps the temporary file of a live writer (this process)
    and files of other naming; it removes a dead process's file and one of another host untouched for a day."""
    import socket
    import subprocess

    from vaner.distributed import remove_stale_temporaries

    host, output = socket.gethostname(), tmp_path / "a.jsonl"
    dead = subprocess.Popen(["true"])
    dead.wait()
    names = {"live": f".a.jsonl.{host}.{os.getpid()}.x1y2z3ab.tmp", "dead": f".a.jsonl.{host}.{dead.pid}.x1y2z3ab.tmp",
             "old": ".a.jsonl.elsewhere.12.x1y2z3ab.tmp", "recent": ".a.jsonl.elsewhere.13.x1y2z3ab.tmp",
             "other": ".a.jsonl.notes.tmp"}
    for name in names.values():
        (tmp_path / name).write_text("partial")
    os.utime(tmp_path / names["old"], (0, 0))
    remove_stale_temporaries(output)
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        names[key] for key in ("live", "recent", "other"))



def test_an_interrupted_backbone_cache_write_leaves_no_temporary(tmp_path, monkeypatch):
    """Issue 32, item 13: modeling_vaner.py writes its cache with the same writer (Ctrl-C included)."""
    import safetensors.torch
    import torch

    import modeling_vaner

    def interrupted(tensors, filename, metadata=None):
        with open(filename, "wb") as handle:
            handle.write(b"partial")
        raise KeyboardInterrupt

    cache = modeling_vaner.BackboneCache(str(tmp_path / "backbones" / "b.safetensors"), {"gguf_sha256": "0"})
    monkeypatch.setattr(safetensors.torch, "save_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        cache.save({"w": torch.zeros(2)})
    assert list((tmp_path / "backbones").iterdir()) == []
    monkeypatch.undo()
    cache.save({"w": torch.ones(2)})
    assert [path.name for path in (tmp_path / "backbones").iterdir()] == ["b.safetensors"]
    assert torch.equal(cache.load()["w"], torch.ones(2))
