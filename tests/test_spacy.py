"""The spaCy component: nlp.add_pipe("vaner") through the package's entry point, spans with the annotator's offsets
and scores, overlapping types, mentions that cut a spaCy token, long documents, settings checked at add_pipe,
to_disk / spacy.load (from any directory, into its own folder, with exclude), the CLI's entities."""

import importlib.metadata
import importlib.util
import logging
import shutil
import subprocess
import sys

import pytest
import torch

spacy = pytest.importorskip("spacy", reason='the spaCy component needs spaCy: pip install "vaner[spacy]"')

from conftest import tiny_vaner  # noqa: E402
from test_documents import word_mode_tags  # noqa: E402
from test_multi_type import TYPES, rig_multi_type  # noqa: E402
from test_pipeline import cli_entities  # noqa: E402

TEXT = "Cisplatin induced nephrotoxicity in BRCA1-mutant mice."
TEXTS = [
    TEXT,
    "Naloxone reverses the antihypertensive effect of clonidine in rats. The risk of ovarian cancer rose.",
    "IL-2 receptor alpha (CD25) expression in T cells; TNF-\u03b1 and \u03b2-catenin levels rose in Homo sapiens.",
    "",
    "BRCA1 mice. " * 3,
]


@pytest.fixture(scope="module")
def rigged_dir(tmp_path_factory, tokenizer):
    """A multi-type model whose tags are known: Gene "BRCA1", Disease "nephrotoxicity" and "BRCA1-mutant" (overlapping
    the gene), Species "mice"; its Disease head is damped, so Disease scores (about 0.6) differ from the others (1.0)."""
    folder = tmp_path_factory.mktemp("rigged")
    tables = {"Gene": word_mode_tags(tokenizer, TEXT, ["BRCA1"]),
              "Disease": word_mode_tags(tokenizer, TEXT, ["nephrotoxicity", "BRCA1-mutant"]),
              "Species": word_mode_tags(tokenizer, TEXT, ["mice"])}
    model = rig_multi_type(tiny_vaner(tokenizer, entity_types=TYPES, multi_type=True), tables)
    disease = model.config.head_types.index("Disease")
    with torch.no_grad():
        model.classifier.weight[3 * disease : 3 * disease + 3] *= 0.04
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def vaner_nlp(model_dir, tokenizer_rules=None, **config):
    nlp = spacy.blank("en")
    if tokenizer_rules is not None:
        nlp.tokenizer = tokenizer_rules(nlp)
    nlp.add_pipe("vaner", config={"model": str(model_dir), "dtype": "float32", **config})
    return nlp


def spans(doc, key="vaner"):
    return [(span.label_, span.start_char, span.end_char) for span in doc.spans[key]]


def annotator_entities(model_dir, text):
    """(type, start, end, score) of the entities VANER's own annotator (what predict_vaner.py runs) finds in `text`."""
    from vaner.documents import DocumentAnnotator, load_model

    model, tokenizer = load_model(str(model_dir), dtype="float32")
    return [(e.entity_type, e.start, e.end, e.score) for e in DocumentAnnotator(model, tokenizer).annotate(text).entities]


def test_the_factory_is_registered_through_the_entry_point(tiny_vaner_dir):
    assert "vaner" in {entry.name for entry in importlib.metadata.entry_points(group="spacy_factories")}
    code = ("import spacy, sys; nlp = spacy.blank('en'); nlp.add_pipe('vaner', config={'model': sys.argv[1]}); "
            "print(nlp.pipe_names, 'vaner' in sys.modules, 'vaner.spacy_component' in sys.modules)")
    finished = subprocess.run([sys.executable, "-c", code, str(tiny_vaner_dir)], capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert finished.stdout.split() == ["['vaner']", "True", "True"]  # loaded by spaCy, not imported by the caller


def test_overlapping_types_are_spans_and_ents_a_non_overlapping_choice(rigged_dir):
    doc = vaner_nlp(rigged_dir)(TEXT)
    assert spans(doc) == [("Disease", 18, 32), ("Gene", 36, 41), ("Disease", 36, 48), ("Species", 49, 53)]
    expected = annotator_entities(rigged_dir, TEXT)
    assert spans(doc) == [entity[:3] for entity in expected]
    assert [span._.vaner_score for span in doc.spans["vaner"]] == pytest.approx([entity[3] for entity in expected])
    assert {round(entity[3], 1) for entity in expected} == {0.6, 1.0}, "the scores say which entity they belong to"
    # doc.ents: of overlapping entities the higher-scoring one (ties: the earlier, then the shorter one)
    assert [(e.label_, e.start_char, e.end_char) for e in doc.ents] == [("Disease", 18, 32), ("Gene", 36, 41),
                                                                          ("Species", 49, 53)]


def test_a_mention_that_cuts_a_spacy_token_is_expanded_and_reported(rigged_dir, caplog):
    """scispaCy's tokenizer keeps "BRCA1-mutant" one token: the Gene mention "BRCA1" is expanded to it, counted."""
    custom = pytest.importorskip("scispacy.custom_tokenizer", reason="scispaCy (pip install --no-deps scispacy)")
    nlp = vaner_nlp(rigged_dir, custom.combined_rule_tokenizer)
    assert "BRCA1-mutant" in [token.text for token in nlp.make_doc(TEXT)]
    with caplog.at_level(logging.WARNING, logger="vaner.spacy_component"):
        doc = nlp(TEXT)
    assert ("Gene", 36, 48) in spans(doc) and ("Disease", 36, 48) in spans(doc)
    assert "1 VANER mentions did not fall on token boundaries" in caplog.text
    # the two types of one expanded span keep their own scores: the annotator's Gene "BRCA1", Disease "BRCA1-mutant"
    own = {entity_type: score for entity_type, start, _, score in annotator_entities(rigged_dir, TEXT) if start == 36}
    assert own["Gene"] == pytest.approx(1.0, abs=1e-3) and own["Disease"] < 0.9
    assert {span.label_: span._.vaner_score for span in doc.spans["vaner"] if span.start_char == 36} == pytest.approx(own)


def test_entities_already_there_are_merged_only_when_asked(rigged_dir):
    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns([{"label": "ANIMAL", "pattern": "mice"}, {"label": "DRUG", "pattern": "Cisplatin"}])
    nlp.add_pipe("vaner", config={"model": str(rigged_dir), "dtype": "float32", "ents": "merge"})
    doc = nlp(TEXT)
    assert [(e.label_, e.text) for e in doc.ents] == [("DRUG", "Cisplatin"), ("Disease", "nephrotoxicity"),
                                                      ("Gene", "BRCA1"), ("ANIMAL", "mice")]
    nlp.get_pipe("vaner").ents = "keep"
    assert [e.label_ for e in nlp(TEXT).ents] == ["DRUG", "ANIMAL"]
    nlp.get_pipe("vaner").ents = "replace"
    assert [e.label_ for e in nlp(TEXT).ents] == ["Disease", "Gene", "Species"]
    with pytest.raises(ValueError, match="vaner setting ents: one of"):
        spacy.blank("en").add_pipe("vaner", config={"model": str(rigged_dir), "ents": "all"})


def test_the_same_entities_as_the_cli_with_nlp_and_nlp_pipe(tiny_vaner_dir, tmp_path):
    """Texts whose words are spaCy's tokens too (as the corpora's sentences are, words joined by spaces): every
    entity falls on token boundaries, so the spans are exactly the CLI's entities."""
    from vaner.corpora import tokenize_with_offsets

    texts = [" ".join(word for word, _, _ in tokenize_with_offsets(text)) for text in TEXTS]
    long_text = " ".join(texts[:3] * 60)  # about 15,000 characters: many sentences and windows
    texts.append(long_text)
    expected = [[(t, s, e) for t, s, e, *_ in entities] for entities in cli_entities(tiny_vaner_dir, texts, tmp_path)]
    assert sum(map(len, expected)) > 0, "the random model tags something"
    nlp = vaner_nlp(tiny_vaner_dir)
    assert [sorted(spans(doc)) for doc in nlp.pipe(texts, batch_size=3)] == [sorted(e) for e in expected]
    assert sorted(spans(nlp(long_text))) == sorted(expected[-1])


def test_to_disk_and_spacy_load_refer_to_the_model_or_copy_it(rigged_dir, tmp_path):
    nlp = vaner_nlp(rigged_dir)
    nlp.to_disk(tmp_path / "referring")
    assert not (tmp_path / "referring" / "vaner" / "model").exists()
    assert spans(spacy.load(tmp_path / "referring")(TEXT)) == spans(nlp(TEXT))

    moved = tmp_path / "model-elsewhere"
    shutil.copytree(rigged_dir, moved)
    copying = vaner_nlp(moved, copy_model=True)
    copying.to_disk(tmp_path / "copying")
    shutil.rmtree(moved)  # the pipeline folder holds its own copy now
    assert (tmp_path / "copying" / "vaner" / "model" / "config.json").is_file()
    assert spans(spacy.load(tmp_path / "copying")(TEXT)) == spans(nlp(TEXT))


@pytest.mark.parametrize(("setting", "value", "message"), [
    ("entity_types", ["Foo"], r"entity_types: Unknown entity type\(s\) \['Foo'\]"),
    ("dataset_name", "NCBI-disaese", "dataset_name: Unknown dataset name 'NCBI-disaese'"),
    ("model", "missing/model-folder", "model: missing/model-folder: no such model folder"),
    ("batch_size", 0, "batch_size: a positive number"),
    ("max_length", 0, "max_length: a positive number"),
    ("dtype", "fp8", "dtype: one of"),
    ("device", "cuda", "device 'cuda': torch sees no CUDA GPU here"),
])
def test_bad_settings_are_refused_when_the_component_is_added(rigged_dir, tmp_path, monkeypatch, setting, value,
                                                               message):
    """At add_pipe, naming the setting, not at the first document (nor as torch's bare AssertionError for CUDA)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "missing").mkdir()  # a folder that exists, so that "missing/model-folder" is plainly a path
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=f"^vaner setting {message}"):
        spacy.blank("en").add_pipe("vaner", config={"model": str(rigged_dir), setting: value})


def test_a_relative_model_path_is_saved_absolute_and_loads_from_anywhere(rigged_dir, tmp_path, monkeypatch):
    shutil.copytree(rigged_dir, tmp_path / "work" / "models" / "rigged")
    monkeypatch.chdir(tmp_path / "work")
    nlp = vaner_nlp("models/rigged")
    nlp.to_disk(tmp_path / "pipeline")
    assert spacy.util.load_config(tmp_path / "pipeline" / "config.cfg")["components"]["vaner"]["model"] == \
        str(tmp_path / "work" / "models" / "rigged")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert spans(spacy.load(tmp_path / "pipeline")(TEXT)) == spans(nlp(TEXT))


def test_a_copying_pipeline_saved_into_its_own_folder_keeps_its_model(rigged_dir, tmp_path):
    vaner_nlp(rigged_dir, copy_model=True).to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")  # its model is the copy in tmp_path / "pipeline"
    expected = spans(loaded(TEXT))
    loaded.to_disk(tmp_path / "pipeline")
    assert spans(spacy.load(tmp_path / "pipeline")(TEXT)) == expected
    loaded.to_disk(tmp_path / "other")
    loaded.to_disk(tmp_path / "other")  # an earlier copy is replaced whole, no staging folder left
    assert sorted(path.name for path in (tmp_path / "other" / "vaner").iterdir()) == ["model"]
    assert spans(spacy.load(tmp_path / "other")(TEXT)) == expected


def test_to_disk_and_from_disk_honour_exclude(rigged_dir, tmp_path):
    component = vaner_nlp(rigged_dir, copy_model=True).get_pipe("vaner")
    component.to_disk(tmp_path / "slim", exclude=["model"])
    assert not (tmp_path / "slim" / "model").exists()
    component.to_disk(tmp_path / "full")
    assert (tmp_path / "full" / "model" / "config.json").is_file()
    assert component.from_disk(tmp_path / "full", exclude=["model"]).model_name == str(rigged_dir.resolve())
    assert component.from_disk(tmp_path / "full").model_name == str((tmp_path / "full" / "model").resolve())


def test_the_core_package_does_not_need_spacy():
    finished = subprocess.run(
        [sys.executable, "-c", "import sys; sys.modules['spacy'] = None; import vaner.documents, predict_vaner; print('ok')"],
        capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0 and finished.stdout.strip() == "ok", finished.stderr[-2000:]
    assert importlib.util.find_spec("vaner.spacy_component") is not None


def test_after_scispacys_tokenizer_and_abbreviation_detector(tiny_vaner_dir):
    """The pipeline of docs/spacy.md: VANER's spans beside scispaCy's abbreviations, entities already there kept."""
    pytest.importorskip("scispacy.abbreviation", reason="scispaCy (pip install --no-deps scispacy)")
    from scispacy.abbreviation import AbbreviationDetector  # noqa: F401  (registers the factory)
    from scispacy.custom_tokenizer import combined_rule_tokenizer

    nlp = vaner_nlp(tiny_vaner_dir, combined_rule_tokenizer, ents="merge")
    nlp.add_pipe("sentencizer", first=True)
    nlp.add_pipe("abbreviation_detector", after="sentencizer")
    text = ("Spinal and bulbar muscular atrophy (SBMA) is caused by a polyglutamine tract in the androgen receptor (AR). "
            "SBMA is rare.")
    doc = nlp(text)
    assert [(a.text, a._.long_form.text) for a in doc._.abbreviations][0] == ("SBMA", "Spinal and bulbar muscular atrophy")
    expected = annotator_entities(tiny_vaner_dir, text)  # on scispaCy's token boundaries here: none expanded
    assert expected, "the random model tags something"
    assert spans(doc) == [(entity_type, start, end) for entity_type, start, end, _ in expected]
