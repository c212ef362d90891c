"""pipeline("token-classification") on a VANER folder: the folder's own pipeline class, the annotation CLI's
entities and scores (whole words, exact offsets), texts of any length in windows, in time linear in length."""

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import tiny_vaner
from test_documents import rig, word_mode_tags
from transformers import pipeline

import predict_vaner
from vaner import DEFAULT_MODEL
from vaner.corpora import read_iob_file
from vaner.documents import DocumentAnnotator, load_model
from vaner.export import refresh_remote_code, save_adapter_folder

PROJECT = Path(__file__).resolve().parents[1]
# Greek letters, NBSP, a double space, CRLF, an emoji, full-width letters and digits, a zero-width space.
TRICKY = ("TNF-\u03b1\u00a0and  \u03b2-catenin rose\r\nin IL-2 mice \U0001f600 with \uff22\uff32\uff23\uff21\uff11 "
          "loss.\r\nZero\u200bwidth nephrotoxicity in BRCA1 mutant mice.")
TRICKY_ENTITIES = ["TNF-\u03b1", "\u03b2-catenin", "IL-2", "\uff22\uff32\uff23\uff21\uff11", "BRCA1"]


def as_tuples(records):
    return [(r["entity_group"], r["start"], r["end"], r["word"]) for r in records]


def annotator_tuples(entities):
    return [(e.entity_type, e.start, e.end, e.text) for e in entities]


def ner_of(folder, **kwargs):
    return pipeline("token-classification", model=str(folder), trust_remote_code=True, **kwargs)


def cli_entities(folder, texts, tmp_path, *options):
    """Entities the annotation CLI writes for `texts` (JSONL in, JSONL out)."""
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text("".join(json.dumps({"id": str(i), "text": t}) + "\n" for i, t in enumerate(texts)), encoding="utf-8")
    assert predict_vaner.main(["--model_name_or_path", str(folder), "--input", str(source), "--output", str(target),
                               "--no_progress", *options]) in (None, 0)
    records = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    return [[(e["type"], e["start"], e["end"], e["text"], e["score"]) for e in r["entities"]] for r in records]


# --------------------------------------------------------------------------------------------
# The folder serves the pipeline


def test_every_saved_folder_serves_the_vaner_pipeline(tiny_vaner_dir, llama_dir, tokenizer, tmp_path):
    from peft import LoraConfig, get_peft_model

    from modeling_vaner import VanerForTokenClassification

    config = json.loads((tiny_vaner_dir / "config.json").read_text())
    assert config["custom_pipelines"]["token-classification"]["impl"] == "pipeline_vaner.VanerTokenClassificationPipeline"
    from vaner.export import REMOTE_CODE_FILES

    for name in REMOTE_CODE_FILES:  # save_pretrained copies the pipeline's modules with it
        assert (tiny_vaner_dir / name).read_text() == (PROJECT / name).read_text(), name
    ner = ner_of(tiny_vaner_dir)
    assert type(ner).__name__ == "VanerTokenClassificationPipeline"
    assert type(ner).__module__.startswith("transformers_modules."), "the folder's copy runs, as the Hub serves it"

    # The trainer's adapter-only output.
    model = VanerForTokenClassification.from_pretrained(llama_dir)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear",
                                                  modules_to_save=["classifier"]))
    adapter = save_adapter_folder(peft_model, tokenizer, tmp_path / "adapter_only")
    assert (adapter / "pipeline_vaner.py").is_file()
    assert "custom_pipelines" in json.loads((adapter / "config.json").read_text())
    assert type(ner_of(adapter)).__name__ == "VanerTokenClassificationPipeline"
    in_bf16 = ner_of(adapter, dtype=torch.bfloat16).model  # a named precision is kept, not swallowed by the config
    assert in_bf16.dtype == torch.bfloat16 and in_bf16.model.rotary_emb.inv_freq.dtype == torch.float32

    # Saving the pipeline's model again (transformers rewrites the config entry it read in place).
    ner.save_pretrained(tmp_path / "again")
    assert type(ner_of(tmp_path / "again")).__name__ == "VanerTokenClassificationPipeline"


def test_a_folder_saved_before_the_pipeline_existed_is_refreshed(tiny_vaner_dir, tmp_path):
    import shutil

    folder = tmp_path / "old"
    shutil.copytree(tiny_vaner_dir, folder)
    (folder / "pipeline_vaner.py").unlink()
    modeling = (folder / "modeling_vaner.py").read_text()  # as it was before: without the pipeline's import
    (folder / "modeling_vaner.py").write_text("".join(
        line for line in modeling.splitlines(keepends=True) if "pipeline_vaner import" not in line))
    config = json.loads((folder / "config.json").read_text())
    del config["custom_pipelines"]
    (folder / "config.json").write_text(json.dumps(config))
    assert type(ner_of(folder)).__name__ == "TokenClassificationPipeline"  # the stock one: fragments
    refresh_remote_code(folder)
    refreshed = json.loads((folder / "config.json").read_text())
    assert {key: value for key, value in refreshed.items() if key != "custom_pipelines"} == config
    assert type(ner_of(folder)).__name__ == "VanerTokenClassificationPipeline"


# --------------------------------------------------------------------------------------------
# The same entities as the annotation CLI


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_pipeline_equals_the_cli_on_200_ncbi_test_sentences(shared_dir, tiny_vaner_dir, tmp_path, dtype):
    """In either precision: both batch a list of texts the same way (one DocumentAnnotator pool), so even bf16,
    whose results depend on what shares a batch, gives the CLI's entities and scores."""
    sentences = [" ".join(s.tokens) for s in read_iob_file(shared_dir / "corpora" / "ncbi-disease" / "test.tsv")[:200]]
    ner = ner_of(tiny_vaner_dir, dtype=getattr(torch, dtype))
    found = ner(sentences, batch_size=32)
    assert len(found) == 200 and sum(map(len, found)) > 100, "the random model should find many entities"
    for text, records in zip(sentences, found):
        assert all(text[r["start"] : r["end"]] == r["word"] for r in records)
    expected = cli_entities(tiny_vaner_dir, sentences, tmp_path, "--dtype", dtype, "--batch_size", "32")
    assert [[(*t, round(r["score"], 4)) for t, r in zip(as_tuples(rs), rs)] for rs in found] == expected
    # and exactly the scores of the annotator the CLI runs
    model, tokenizer = load_model(str(tiny_vaner_dir), dtype=dtype)
    annotated = list(DocumentAnnotator(model, tokenizer, batch_size=32).annotate_documents(sentences))
    assert [[(*t, r["score"]) for t, r in zip(as_tuples(rs), rs)] for rs in found] == [
        [(*t, e.score) for t, e in zip(annotator_tuples(a.entities), a.entities)] for a in annotated]


def test_pipeline_equals_the_cli_on_greek_nbsp_crlf_emoji_and_full_width_text(tiny_vaner_dir, tmp_path):
    ner = ner_of(tiny_vaner_dir, dtype=torch.float32)
    found = ner(TRICKY)
    assert found and all(TRICKY[r["start"] : r["end"]] == r["word"] for r in found)
    assert all(r["word"] == r["word"].strip() for r in found)
    [expected] = cli_entities(tiny_vaner_dir, [TRICKY], tmp_path, "--dtype", "float32")
    assert [(*t, round(r["score"], 4)) for t, r in zip(as_tuples(found), found)] == expected


def test_rigged_model_gives_whole_words_on_tricky_text(tokenizer, tmp_path):
    """Tags known per token: the pipeline finds exactly the whole-word entities, none of the stock pipeline's
    fragments, leading spaces or lone spaces; every aggregation strategy that groups gives the same."""
    model = rig(tiny_vaner(tokenizer, entity_types=["Gene"]), word_mode_tags(tokenizer, TRICKY, TRICKY_ENTITIES))
    model.save_pretrained(tmp_path / "rigged")
    tokenizer.save_pretrained(tmp_path / "rigged")
    ner = ner_of(tmp_path / "rigged")
    found = ner(TRICKY)
    assert [r["word"] for r in found] == TRICKY_ENTITIES
    assert {r["entity_group"] for r in found} == {"Gene"} and all(r["score"] > 0.99 for r in found)
    assert all(TRICKY[r["start"] : r["end"]] == r["word"] for r in found)
    assert as_tuples(found) == annotator_tuples(DocumentAnnotator(model, tokenizer).annotate(TRICKY).entities)
    for strategy in ("simple", "first"):
        assert as_tuples(ner(TRICKY, aggregation_strategy=strategy)) == as_tuples(found)
    for strategy in ("average", "max"):  # a word's score is its first sub-token's: nothing to pool
        with pytest.raises(ValueError, match="first sub-token"):
            ner(TRICKY, aggregation_strategy=strategy)
    for option in ({"num_workers": 2}, {"delimiter": " "}):
        with pytest.raises(ValueError, match="takes neither num_workers"):
            ner(TRICKY, **option)
    assert ner(TRICKY, ignore_labels=["Gene"]) == []
    tags = ner(TRICKY, aggregation_strategy="none")  # one record per word tagged B or I
    assert [(t["entity"], t["word"]) for t in tags] == [
        ("B-Gene", "TNF"), ("I-Gene", "-"), ("I-Gene", "\u03b1"), ("B-Gene", "\u03b2"), ("I-Gene", "-"),
        ("I-Gene", "catenin"), ("B-Gene", "IL"), ("I-Gene", "-"), ("I-Gene", "2"),
        ("B-Gene", "\uff22\uff32\uff23\uff21\uff11"), ("B-Gene", "BRCA1")]
    assert all(TRICKY[t["start"] : t["end"]] == t["word"] for t in tags)
    assert [t["index"] for t in tags] == sorted(t["index"] for t in tags)
    # a list gives one list per text, a generator streams
    assert [as_tuples(r) for r in ner([TRICKY, "Loss in BRCA1 mice."], batch_size=4)] == [as_tuples(found), [("Gene", 8, 13, "BRCA1")]]
    assert [as_tuples(r) for r in ner(text for text in [TRICKY])] == [as_tuples(found)]


def test_num_workers_at_construction_is_refused(tiny_vaner_dir):
    with pytest.raises(ValueError, match="num_workers is not used"):
        ner_of(tiny_vaner_dir, num_workers=4)


def test_load_time_choice_of_types_and_a_clear_error_for_words_in(tiny_vaner_dir):
    ner = ner_of(tiny_vaner_dir, model_kwargs={"entity_types": ["Disease"], "dataset_name": "NCBI-disease"})
    assert ner.model.config.entity_types == ["Disease"] and ner.model.config.dataset_name == "NCBI-disease"
    assert {r["entity_group"] for r in ner(TRICKY)} <= {"Disease"}
    with pytest.raises(ValueError, match="raw text"):
        ner(["BRCA1", "mice"], is_split_into_words=True)
    with pytest.raises(TypeError, match="Unknown option"):
        ner(TRICKY, no_such_option=1)


def test_precision_follows_the_cli_choice_unless_named(tiny_vaner_dir, monkeypatch):
    from test_documents import native_bf16_cpu

    monkeypatch.delenv("VANER_AUTO_CPU_DTYPE", raising=False)
    assert ner_of(tiny_vaner_dir).model.dtype == (torch.bfloat16 if native_bf16_cpu() else torch.float32)
    monkeypatch.setenv("VANER_AUTO_CPU_DTYPE", "bfloat16")
    assert ner_of(tiny_vaner_dir).model.dtype == torch.bfloat16
    monkeypatch.setenv("VANER_AUTO_CPU_DTYPE", "float32")
    assert ner_of(tiny_vaner_dir, dtype=torch.bfloat16).model.dtype == torch.bfloat16


def test_a_model_object_passed_in_keeps_its_precision(tokenizer, monkeypatch):
    """Where "auto" picks bf16, or a dtype is named, the pipeline runs a bf16 copy: the caller's float32 object stays
    float32 (it used to be cast in place, under the caller's feet)."""
    from pipeline_vaner import VanerTokenClassificationPipeline

    monkeypatch.setenv("VANER_AUTO_CPU_DTYPE", "bfloat16")
    model = tiny_vaner(tokenizer)
    weights = {name: value.clone() for name, value in model.state_dict().items()}
    for options in ({}, {"dtype": torch.bfloat16}):
        ner = pipeline("token-classification", model=model, tokenizer=tokenizer,
                       pipeline_class=VanerTokenClassificationPipeline, **options)
        assert ner.model.dtype == torch.bfloat16 and ner.model is not model
        assert ner.model.model.rotary_emb.inv_freq.dtype == torch.float32
        assert model.dtype == torch.float32
        assert all(torch.equal(value, weights[name]) for name, value in model.state_dict().items())
    monkeypatch.setenv("VANER_AUTO_CPU_DTYPE", "float32")
    assert pipeline("token-classification", model=model, tokenizer=tokenizer,
                    pipeline_class=VanerTokenClassificationPipeline).model is model  # nothing to cast: no copy


# --------------------------------------------------------------------------------------------
# Any length, in windows, in linear time


def test_a_20k_token_text_runs_in_windows_in_linear_time(tiny_vaner_dir, tokenizer):
    ner = ner_of(tiny_vaner_dir, dtype=torch.float32, model_kwargs={"entity_types": ["Disease"]})
    shapes = []
    ner.model.register_forward_pre_hook(lambda module, args, kwargs: shapes.append(kwargs["input_ids"].shape),
                                        with_kwargs=True)
    piece = "Cisplatin-induced nephrotoxicity in BRCA1 mutant mice and TNF-\u03b1\u00a0levels rose "
    text = piece * 1010  # one sentence with no end: only windows can cut it
    assert len(tokenizer(text)["input_ids"]) > 20_000 > ner.model.config.max_position_embeddings

    def best_time(text):  # CPU time of this process: other jobs on the machine do not inflate it
        timings = []
        for _ in range(2):
            started = time.process_time()
            found = ner(text, batch_size=32)
            timings.append(time.process_time() - started)
        return min(timings), found

    once, found = best_time(text)
    windows = sum(shape[0] for shape in shapes) // 2  # two runs
    assert max(shape[1] for shape in shapes) <= 128 and windows > 20_000 // 128, "windows of at most max_length sub-tokens"
    assert found and all(text[r["start"] : r["end"]] == r["word"] for r in found)
    twice, found_twice = best_time(text + text)
    assert twice <= 2.5 * once, f"{twice:.2f} s for twice the text against {once:.2f} s"
    assert len(found_twice) >= 2 * len(found) - 5


# --------------------------------------------------------------------------------------------
# The README's quickstart


def quickstart_blocks() -> tuple[str, str]:
    readme = (PROJECT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    shown = re.search(r"```text\n(.*?)```", section, re.S).group(1)
    return code, shown


def test_readme_quickstart_runs_as_written_on_the_default_model():
    code, shown = quickstart_blocks()
    assert "vaner/default_model" in code
    if not Path(DEFAULT_MODEL, "config.json").is_file():
        pytest.skip(f"{DEFAULT_MODEL} (the shipped default model) is not there")
    result = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, capture_output=True, text=True, timeout=900,
                            env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    # Entities, offsets and words must be those shown; the scores were printed in float32 and move by a rounding
    # step where "auto" picks bf16 (a CPU with native bf16), so they are compared to within 0.03.
    printed, expected = [line.rsplit(" ", 1) for line in result.stdout.splitlines()], [
        line.rsplit(" ", 1) for line in shown.splitlines()]
    assert [words for words, _ in printed] == [words for words, _ in expected], (
        f"paste the quickstart's real output into the README:\n{result.stdout}")
    for (words, score), (_, shown_score) in zip(printed, expected):
        assert abs(float(score) - float(shown_score)) <= 0.03, f"{words}: score {score}, the README shows {shown_score}"
