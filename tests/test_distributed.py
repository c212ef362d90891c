"""predict_vaner.py --ray: shards on a local Ray instance (2 CPUs, started once for the module) give the
single process's entities, survive a killed actor, skip complete shards and redo truncated ones; BioC in
and out."""

import json
import logging
from pathlib import Path

import pytest

import predict_vaner

ray = pytest.importorskip("ray")
bioc = pytest.importorskip("bioc")

from vaner import distributed  # noqa: E402

TEXTS = [
    "Cisplatin-induced nephrotoxicity in BRCA1 mutant mice.",
    "Identification of APC2, a homologue of the adenomatous polyposis coli tumour suppressor. TNF-\u03b1 rose.",
    "The risk of ovarian cancer in women with mutations of the breast cancer gene was 12 %.",
    "Naloxone reverses the antihypertensive effect of clonidine in Homo sapiens and rats.",
]


@pytest.fixture(scope="module")
def ray_instance():
    """One local Ray instance for the whole module (start-up takes seconds)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
                                       "HF_HUB_OFFLINE": "1"}})
    yield ray
    ray.shutdown()


def write_shards(folder: Path) -> Path:
    """Four shards: JSONL (with a broken line), PubTator, plain text and BioC XML (with an existing annotation)."""
    folder.mkdir(parents=True)
    (folder / "a.jsonl").write_text(
        "".join(json.dumps({"id": f"a{i}", "text": text}) + "\n" for i, text in enumerate(TEXTS)) + "not json\n",
        encoding="utf-8")
    (folder / "b.pubtator").write_text(
        "77|t|Ovarian cancer in women.\n77|a|Mutations of the breast cancer gene and BRCA1.\n\n"
        "78|t|Clonidine and naloxone.\n78|a|" + TEXTS[0] + "\n\n", encoding="utf-8")
    (folder / "c.txt").write_text(" ".join(TEXTS), encoding="utf-8")
    (folder / "d.xml").write_text(BIOC_XML, encoding="utf-8")
    return folder


@pytest.fixture
def shards(tmp_path):
    return write_shards(tmp_path / "shards")


BIOC_XML = """<?xml version='1.0' encoding='utf-8' standalone='yes'?>
<collection><source>PubTator</source><date>2024-01-01</date><key>BioC.key</key>
<document><id>123</id>
<passage><infon key="type">title</infon><offset>0</offset><text>Ovarian cancer in BRCA1 carriers.</text>
<annotation id="7"><infon key="type">Disease</infon><location offset="0" length="14"/><text>Ovarian cancer</text></annotation>
</passage>
<passage><infon key="type">abstract</infon><offset>34</offset><text>Cisplatin caused nephrotoxicity &amp; TNF-\u03b1 rose.\nNaloxone too.</text></passage>
</document>
<document><id>124</id>
<passage><infon key="type">abstract</infon><offset>5</offset><text>Clonidine in rats.</text></passage>
</document>
</collection>
"""


def options(model, inputs, output, *extra):
    return ["--model_name_or_path", str(model), "--input", *map(str, inputs), "--output", str(output),
            "--no_progress", "--dtype", "float32", "--threads", "1", "--entity_types", "Disease", "Chemical", *extra]


def entities_by_document(records):
    return {record["id"]: [json.dumps(entity, sort_keys=True) for entity in record["entities"]] for record in records}


def read_jsonl(path):
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def ray_run(ray_instance, tiny_vaner_dir, tmp_path_factory):
    """One Ray run (actor start-up is the slow part) that the tests below examine: 4 shards, 2 CPU actors,
    --skip_existing with shard c complete already and shard b's output truncated, and the actor that
    annotates shard a killed after its second document. Beside it, the single process on each shard."""
    root = tmp_path_factory.mktemp("ray_run")
    shards = write_shards(root / "shards")
    single = root / "single"
    single.mkdir()
    for shard in sorted(shards.iterdir()):
        lost = predict_vaner.EXIT_DOCUMENTS_LOST if shard.name == "a.jsonl" else 0  # its "not json" line
        assert predict_vaner.main(options(tiny_vaner_dir, [shard], single / f"{shard.stem}.jsonl")) == lost
    whole = root / "whole.jsonl"  # the single process on all shards at once
    assert predict_vaner.main(options(tiny_vaner_dir, [shards], whole)) == predict_vaner.EXIT_DOCUMENTS_LOST

    out = root / "out"
    arguments = options(tiny_vaner_dir, [shards / "*"], out, "--ray", "auto", "--ray_actors", "2", "--skip_existing")
    settings = distributed.settings_from_arguments(*predict_vaner.parser().parse_args_into_dataclasses(args=arguments))
    settings["output_format"] = "jsonl"
    out.mkdir()
    from vaner.documents import DocumentAnnotator
    from vaner.loading import load_model

    model, tokenizer = load_model(str(tiny_vaner_dir), ["Disease", "Chemical"], dtype="float32", device="cpu")
    annotator = DocumentAnnotator(model, tokenizer, entity_types=["Disease", "Chemical"])
    digest = distributed.settings_digest(settings)
    for name, shard in (("b", shards / "b.pubtator"), ("c", shards / "c.txt")):  # a run that stopped half-way
        distributed.annotate_shard(annotator, shard, out / f"{name}.jsonl", settings, digest)
    complete_b = (out / "b.jsonl").read_bytes()
    with (out / "b.jsonl").open("r+b") as handle:  # cut short, as an interrupted copy would
        handle.truncate(len(complete_b) // 2)
    c_mtime = (out / "c.jsonl").stat().st_mtime_ns

    flag = root / "killed"
    summary = distributed.run_distributed(settings, progress=True,
                                          fault=distributed.KillOnce("a.jsonl", after_documents=2, flag=str(flag)))
    return {"summary": summary, "out": out, "single": single, "whole": whole, "flag": flag, "c_mtime": c_mtime,
            "complete_b": complete_b}


def test_ray_gives_the_single_process_entities(ray_run):
    out, single = ray_run["out"], ray_run["single"]
    assert sorted(path.name for path in out.iterdir() if not path.name.startswith(".")) == [
        "a.jsonl", "b.jsonl", "c.jsonl", "d.jsonl"]
    for name in "abcd":  # byte for byte: each output shard is the single process's output of that shard
        assert (out / f"{name}.jsonl").read_bytes() == (single / f"{name}.jsonl").read_bytes(), name
    records = [record for name in "abcd" for record in read_jsonl(out / f"{name}.jsonl")]
    whole = read_jsonl(ray_run["whole"])
    assert [r["id"] for r in records] == [r["id"] for r in whole]
    assert entities_by_document(records) == entities_by_document(whole)
    assert sum(len(r["entities"]) for r in records) > 0
    assert any("not a JSON object" in r.get("error", "") for r in records)  # the error record
    manifest = json.loads((out / ".a.jsonl.done").read_text())
    assert manifest["documents"] == 5 and manifest["errors"] == 1 and manifest["bytes"] == (out / "a.jsonl").stat().st_size


def test_killed_actor_still_gives_every_document_once(ray_run):
    summary, out = ray_run["summary"], ray_run["out"]
    assert ray_run["flag"].exists(), "the actor was not killed"
    assert not summary["failed"] and summary["done"] == 3
    records = [record for path in sorted(out.glob("*.jsonl")) for record in read_jsonl(path)]
    ids = [record["id"] for record in records]
    assert len(ids) == len(set(ids)) == 5 + 2 + 1 + 2
    assert not list(out.glob(".*.tmp"))  # the dead attempt's partial file is gone


def test_skip_existing_skips_complete_shards_and_redoes_a_truncated_one(ray_run):
    summary, out = ray_run["summary"], ray_run["out"]
    assert summary["skipped"] == 1 and summary["documents"] == 5 + 2 + 2  # a, b (redone) and d; not c
    assert (out / "c.jsonl").stat().st_mtime_ns == ray_run["c_mtime"]  # not rewritten
    assert (out / "b.jsonl").read_bytes() == ray_run["complete_b"]


def test_a_manifest_counts_only_for_the_same_settings_and_input(ray_run):
    out, shard = ray_run["out"], ray_run["out"].parent / "shards" / "c.txt"
    settings = json.loads((out / ".c.jsonl.done").read_text())
    assert distributed.is_complete(shard, out / "c.jsonl", settings["settings"])
    assert not distributed.is_complete(shard, out / "c.jsonl", "another digest")
    with (out / "c.jsonl").open("ab") as handle:
        handle.write(b"\n")
    assert not distributed.is_complete(shard, out / "c.jsonl", settings["settings"])


def test_bioc_xml_round_trip_keeps_text_offsets_and_annotations(tiny_vaner_dir, shards, tmp_path):
    """Read BioC XML, annotate, write BioC XML, read back: same passages and text, the input's annotation
    kept, ours located at document-level offsets (single process: the Ray path writes with the same code)."""
    source = shards / "d.xml"
    output = tmp_path / "d.out.xml"
    assert predict_vaner.main(options(tiny_vaner_dir, [source], output)) == 0
    with open(source, "rb") as handle:
        original = bioc.biocxml.load(handle)
    with open(output, "rb") as handle:
        annotated = bioc.biocxml.load(handle)
    assert annotated.infons["entity_types"] == "Disease Chemical"
    assert [d.id for d in annotated.documents] == ["123", "124"]
    ours = 0
    for before, after in zip(original.documents, annotated.documents):
        assert [(p.offset, p.text, p.infons) for p in before.passages] == [
            (p.offset, p.text, p.infons) for p in after.passages]
        _, text = bioc.get_text(after)
        ids = [r.annotation.id for r in bioc.annotations(after)]
        assert len(ids) == len(set(ids))
        for passage in after.passages:
            for annotation in passage.annotations:
                (location,) = annotation.locations
                assert text[location.offset : location.end] == annotation.text
                assert passage.offset <= location.offset < passage.offset + len(passage.text)
                if "model" in annotation.infons:
                    ours += 1
                    assert annotation.infons["model"] == str(tiny_vaner_dir)
                    assert annotation.infons["type"] in ("Disease", "Chemical")
                    assert 0 <= float(annotation.infons["score"]) <= 1
    existing = annotated.documents[0].passages[0].annotations[0]
    assert (existing.id, existing.infons, existing.text) == ("7", {"type": "Disease"}, "Ovarian cancer")
    assert ours > 0

    # The same documents as JSONL give the same entities at the same offsets.
    jsonl = tmp_path / "d.jsonl"
    assert predict_vaner.main(options(tiny_vaner_dir, [source], jsonl, "--include_text")) == 0
    records = read_jsonl(jsonl)
    assert sum(len(r["entities"]) for r in records) == ours
    for record, document in zip(records, annotated.documents):
        assert record["text"] == bioc.get_text(document)[1]

    # BioC JSON out, read back by the library
    as_json = tmp_path / "d.json"
    assert predict_vaner.main(options(tiny_vaner_dir, [output], as_json)) == 0
    with open(as_json, encoding="utf-8") as handle:
        collection = bioc.biocjson.load(handle)
    assert [(p.offset, p.text) for d in collection.documents for p in d.passages] == [
        (p.offset, p.text) for d in annotated.documents for p in d.passages]


def test_pubtator_and_bioc_give_the_same_entities(tiny_vaner_dir, shards, tmp_path):
    """A PubTator document written as BioC XML and read back annotates exactly as the PubTator one."""
    from vaner.formats import read_documents

    xml = tmp_path / "b.xml"
    assert predict_vaner.main(options(tiny_vaner_dir, [shards / "b.pubtator"], xml)) == 0
    documents = list(read_documents([xml]))
    assert [(d.document_id, [(p.start, p.end, p.kind) for p in d.passages]) for d in documents] == [
        (d.document_id, [(p.start, p.end, p.kind) for p in d.passages]) for d in read_documents([shards / "b.pubtator"])]
    first, second = tmp_path / "1.jsonl", tmp_path / "2.jsonl"
    assert predict_vaner.main(options(tiny_vaner_dir, [shards / "b.pubtator"], first)) == 0
    assert predict_vaner.main(options(tiny_vaner_dir, [xml], second)) == 0
    assert first.read_bytes() == second.read_bytes()


def test_shard_planning_errors(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "s.txt").write_text("a")
    (tmp_path / "s.jsonl").write_text("{}")
    with pytest.raises(ValueError, match="both be written"):
        distributed.plan_shards([str(tmp_path / "x"), str(tmp_path / "s.jsonl")], tmp_path / "out", "jsonl")
    with pytest.raises(FileNotFoundError, match="no file matches"):
        distributed.plan_shards([str(tmp_path / "*.nothing")], tmp_path / "out", "jsonl")
    pairs = distributed.plan_shards([str(tmp_path / "x" / "*.txt")], tmp_path / "out", "bioc_xml")
    assert pairs == [(tmp_path / "x" / "s.txt", tmp_path / "out" / "s.xml")]


def test_broken_bioc_xml_is_an_error_record(tmp_path):
    from vaner.formats import read_documents

    path = tmp_path / "broken.xml"
    path.write_text(BIOC_XML[: BIOC_XML.index("<document><id>124")] + "<document><id>124</id><passage>", encoding="utf-8")
    documents = list(read_documents([path]))  # the reader reads one document ahead: 123 may be lost with it
    assert documents[-1].error and "broken.xml" in documents[-1].error
    assert "not readable as BioC XML" in documents[-1].error


def test_skip_existing_exits_3_when_the_skipped_shards_lost_documents(tiny_vaner_dir, shards, tmp_path, caplog):
    """Issue 32, item 6: a rerun that skips every shard still reports the documents their manifests record as
    lost (exit 3, as the run that annotated them), and needs no Ray for it."""
    from vaner.documents import DocumentAnnotator
    from vaner.loading import load_model

    out = tmp_path / "out"
    arguments = options(tiny_vaner_dir, [shards / "a.jsonl"], out, "--ray", "auto", "--skip_existing")
    settings = distributed.settings_from_arguments(*predict_vaner.parser().parse_args_into_dataclasses(args=arguments))
    settings["output_format"] = "jsonl"  # what run_distributed makes of auto for a folder
    out.mkdir()
    model, tokenizer = load_model(str(tiny_vaner_dir), ["Disease", "Chemical"], dtype="float32", device="cpu")
    annotator = DocumentAnnotator(model, tokenizer, entity_types=["Disease", "Chemical"])
    manifest = distributed.annotate_shard(annotator, shards / "a.jsonl", out / "a.jsonl", settings,
                                          distributed.settings_digest(settings))
    assert manifest["errors"] == 1  # its "not json" line
    with caplog.at_level(logging.INFO):
        assert predict_vaner.main(arguments) == predict_vaner.EXIT_DOCUMENTS_LOST
    assert "1 skipped" in caplog.text and "1 document error in skipped shards" in caplog.text
