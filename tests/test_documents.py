"""Annotating raw documents: sentence splitting, exact offsets, windows, merging, the pipeline's agreement, bad input."""

from types import SimpleNamespace

import pytest
import torch
from conftest import tiny_config, tiny_vaner
from tokenizers import processors
from transformers import PreTrainedTokenizerFast, pipeline

from vaner.corpora import tokenize_with_offsets
from vaner.documents import (
    Document,
    DocumentAnnotator,
    Entity,
    Passage,
    annotate_text,
    choose_dtype,
    decode_spans,
    document_sentences,
    most_central_window,
    plan_windows,
    resolve_overlaps,
    split_sentences,
)
from vaner.features import NO_WORD, tokenize_sentence

TRICKY = "TNF-\u03b1\u00a0and  \u03b2-catenin rose\r\nin IL-2 mice."
TRICKY_ENTITIES = ["TNF-\u03b1", "\u03b2-catenin", "IL-2"]


# --------------------------------------------------------------------------------------------
# Models whose tags are known in advance


def rig(model, tag_of_token: dict[int, int]):
    """Make the model tag each sub-token by its id alone (0 O, 1 B, 2 I), whatever the context or instruction:
    attention and MLP outputs are zeroed, so the residual stream carries the token embedding to the head."""
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.model.embed_tokens.weight.zero_()
        for token_id in range(model.config.vocab_size):
            model.model.embed_tokens.weight[token_id, tag_of_token.get(token_id, 0)] = 1.0
        model.classifier.weight.zero_()
        model.classifier.bias.zero_()
        model.classifier.weight[:, :3] = torch.eye(3) * 10
    return model


def _tag(start, end, targets):
    inside = [target for target in targets if target[0] <= start and end <= target[1]]
    return 0 if not inside else (1 if start == inside[0][0] else 2)


def word_mode_tags(tokenizer, text, entity_texts) -> dict[int, int]:
    """Tags of the first sub-tokens of the words of each sentence (words joined with spaces, as trained)."""
    targets = _spans(text, entity_texts)
    tags = {}
    for start, end in split_sentences(text):
        words = [(word, start + s, start + e) for word, s, e in tokenize_with_offsets(text[start:end])]
        (encoding,) = tokenize_sentence([word for word, _, _ in words], tokenizer)
        for token_id, word in zip(encoding["input_ids"], encoding["word_ids"]):
            if word == NO_WORD:
                continue
            tag = _tag(words[word][1], words[word][2], targets)
            assert tags.setdefault(token_id, tag) == tag, f"token {token_id} is both inside and outside entities"
    return tags


def raw_mode_tags(tokenizer, text, entity_texts) -> dict[int, int]:
    targets = _spans(text, entity_texts)
    tags = {}
    for start, end in split_sentences(text):
        encoding = tokenizer(text[start:end], return_offsets_mapping=True)
        for token_id, (s, e) in zip(encoding["input_ids"], encoding["offset_mapping"]):
            s, e = start + s, start + e
            while s < e and text[s].isspace():
                s += 1
            tag = _tag(s, e, targets) if e > s else 0
            assert tags.setdefault(token_id, tag) == tag, f"token {token_id} is both inside and outside entities"
    return tags


def _spans(text, entity_texts):
    spans, position = [], 0
    for entity_text in entity_texts:
        position = text.index(entity_text, position)
        spans.append((position, position + len(entity_text)))
        position += len(entity_text)
    return spans


def found(entities):
    return [(entity.entity_type, entity.start, entity.end) for entity in entities]


class LookupTagger(torch.nn.Module):
    """A stand-in with VANER's interface whose O/B/I logits come from a table per entity type
    (token id -> tag) and a confidence per type: for tests of types, overlaps and speed-free bad input."""

    def __init__(self, config, tables: dict[str, dict[int, int]], confidence: dict[str, float]):
        super().__init__()
        self.config = config
        self.anchor = torch.nn.Parameter(torch.zeros(1))
        size = config.vocab_size
        self.register_buffer("tags", torch.zeros(len(config.entity_types), size, dtype=torch.long))
        self.register_buffer("strength", torch.ones(len(config.entity_types)))
        for index, entity_type in enumerate(config.entity_types):
            for token_id, tag in tables.get(entity_type, {}).items():
                self.tags[index, token_id] = tag
            self.strength[index] = confidence.get(entity_type, 1.0)
        self.calls = []

    def forward(self, input_ids, attention_mask=None, entity_type_ids=None, dataset_ids=None):
        self.calls.append({"input_ids": input_ids.clone(), "entity_type_ids": entity_type_ids.clone(),
                           "dataset_ids": None if dataset_ids is None else dataset_ids.clone(),
                           "attention_mask": attention_mask.clone()})
        tags = self.tags[entity_type_ids].gather(1, input_ids)
        logits = torch.nn.functional.one_hot(tags, 3).float() * self.strength[entity_type_ids, None, None]
        return SimpleNamespace(logits=logits)


class Recorder(torch.nn.Module):
    """Passes calls to a model and keeps their inputs."""

    def __init__(self, model):
        super().__init__()
        self.inner = model
        self.config = model.config
        self.calls = []

    def forward(self, **inputs):
        self.calls.append({key: value.clone() for key, value in inputs.items()})
        return self.inner(**inputs)


# --------------------------------------------------------------------------------------------
# Sentences and windows


def test_sentences_keep_exact_offsets_and_skip_abbreviations():
    text = "  Mutations (e.g. in BRCA1) cause cancer.  Smith et al. found it in J. Doe's E. coli!\r\nWhy?\tFig. 2 shows p < 0.05.\n\n"
    spans = split_sentences(text)
    assert [text[s:e] for s, e in spans] == [
        "Mutations (e.g. in BRCA1) cause cancer.",
        "Smith et al. found it in J. Doe's E. coli!",
        "Why?",
        "Fig. 2 shows p < 0.05.",
    ]
    # Without line breaks as sentence ends, a hard-wrapped sentence stays whole.
    wrapped = "The BRCA1 gene\r\nis mutated.\n\nNew paragraph."
    assert [wrapped[s:e] for s, e in split_sentences(wrapped, line_breaks=False)] == [
        "The BRCA1 gene\r\nis mutated.", "New paragraph."]
    assert [wrapped[s:e] for s, e in split_sentences(wrapped)] == ["The BRCA1 gene", "is mutated.", "New paragraph."]
    assert split_sentences("") == [] and split_sentences(" \u00a0\r\n\t ") == []


def test_sentences_never_cross_passages():
    document = Document("1", "A title without a dot Abstract starts. Here.",
                        (Passage(0, 21, "title"), Passage(22, 44, "abstract")))
    assert [document.text[s:e] for s, e in document_sentences(document)] == [
        "A title without a dot", "Abstract starts.", "Here."]


def test_windows_cover_every_unit_within_budget_and_overlap():
    counts = [1, 3, 1, 2, 1, 1, 4, 1, 1, 2, 1, 1, 1, 3, 1]
    windows = plan_windows(counts, budget=6, stride=2)
    assert windows[0][0] == 0 and windows[-1][1] == len(counts)
    for (a, b), (c, _d) in zip(windows, windows[1:]):
        assert a < c <= b, "windows advance and leave no gap"
        assert sum(counts[c:b]) <= 2
    assert all(sum(counts[a:b]) <= 6 for a, b in windows)
    assert plan_windows([2, 2], budget=10, stride=3) == [(0, 2)]
    assert plan_windows([1, 9, 1], budget=4, stride=1) == [(0, 1), (1, 2), (2, 3)]  # a unit over budget: alone
    # Each unit is read in the window where it is farthest from an edge; ties go to the earlier window.
    assert most_central_window([(0, 6), (4, 10)], 10) == [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]
    assert most_central_window([(0, 5), (3, 8)], 8) == [0, 0, 0, 0, 1, 1, 1, 1]


def test_decoding_follows_the_pipeline_reading_of_tags():
    O, B, I = [0.8, 0.1, 0.1], [0.1, 0.7, 0.2], [0.1, 0.3, 0.6]
    probabilities = torch.tensor([I, I, O, B, I, B, O, I]).numpy()
    spans = decode_spans(probabilities)
    assert [(first, last) for first, last, _ in spans] == [(0, 2), (3, 5), (5, 6), (7, 8)]
    assert spans[1][2] == pytest.approx((0.7 + 0.6) / 2)


def test_overlaps_best_keeps_the_higher_scores():
    entities = [Entity(0, 5, "BRCA1", "Disease", 0.6), Entity(0, 5, "BRCA1", "Gene", 0.9),
                Entity(3, 9, "A1 mut", "Chemical", 0.8), Entity(10, 14, "mice", "Species", 0.5)]
    assert found(resolve_overlaps(entities)) == [("Gene", 0, 5), ("Species", 10, 14)]


# --------------------------------------------------------------------------------------------
# Offsets


def test_offsets_exact_on_greek_nbsp_double_spaces_and_crlf(tokenizer):
    for tokenization, tags in (("words", word_mode_tags(tokenizer, TRICKY, TRICKY_ENTITIES)),
                               ("raw", raw_mode_tags(tokenizer, TRICKY, TRICKY_ENTITIES))):
        model = rig(tiny_vaner(tokenizer, entity_types=["Gene"]), tags)
        entities = annotate_text(model, tokenizer, TRICKY, tokenization=tokenization)
        assert [entity.text for entity in entities] == TRICKY_ENTITIES, tokenization
        assert all(TRICKY[e.start : e.end] == e.text for e in entities)
        assert entities[1].start == TRICKY.index("\u03b2")
        assert all(e.score > 0.99 for e in entities)


def test_offsets_trimmed_when_the_tokenizer_keeps_leading_spaces(tokenizer):
    """Tokenizers without offset trimming (e.g. SmolLM2's from GGUF) put the space before a word in its
    sub-token's span; entities still start on the word."""
    untrimmed = PreTrainedTokenizerFast(tokenizer_object=tokenizer.backend_tokenizer.__class__.from_str(
        tokenizer.backend_tokenizer.to_str()), pad_token="<pad>", unk_token="<unk>")
    untrimmed.backend_tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    text = "Cisplatin  nephrotoxicity in BRCA1 mutant mice."
    assert untrimmed(text, return_offsets_mapping=True)["offset_mapping"][1][0] == 9  # the spaces are included
    tags = raw_mode_tags(untrimmed, text, ["nephrotoxicity", "BRCA1"])
    model = rig(tiny_vaner(tokenizer, entity_types=["Disease"]), tags)
    entities = annotate_text(model, untrimmed, text, tokenization="raw")
    assert [(e.start, e.end, e.text) for e in entities] == [(11, 25, "nephrotoxicity"), (29, 34, "BRCA1")]


def test_word_mode_feeds_the_tokens_of_training(tokenizer):
    """Words mode gives the model exactly what training gave it for the same words."""
    recorder = Recorder(tiny_vaner(tokenizer, entity_types=["Disease"]))
    sentence = "IL-2 receptor (CD25) expression;TNF-\u03b1 rose."
    DocumentAnnotator(recorder, tokenizer).annotate(sentence)
    words = [word for word, _, _ in tokenize_with_offsets(sentence)]
    expected = tokenize_sentence(words, tokenizer)[0]["input_ids"]
    assert recorder.calls[0]["input_ids"][0].tolist() == expected


# --------------------------------------------------------------------------------------------
# The pipeline and this path agree


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pipeline_and_raw_mode_agree_on_short_texts(tokenizer, seed):
    """A random (untrained) model gives many entities, B-after-I and I-after-O cases included. The pipeline's
    spans keep the whitespace of zero-width or space sub-tokens at their edges; ours are trimmed (and a
    group of whitespace alone is no entity)."""
    model = tiny_vaner(tokenizer, seed=seed, entity_types=["Disease"])
    ner = pipeline("token-classification", model=model, tokenizer=tokenizer, aggregation_strategy="simple")
    for text in ("Cisplatin-induced nephrotoxicity in BRCA1 mutant mice.",
                 "Naloxone reverses the antihypertensive effect of clonidine in Homo sapiens and rats.",
                 "The risk of ovarian cancer in women with mutations was 12 %"):
        expected = []
        for group in ner(text):
            start, end = group["start"], group["end"]
            while start < end and text[start].isspace():
                start += 1
            while end > start and text[end - 1].isspace():
                end -= 1
            if start < end:
                expected.append((group["entity_group"], start, end, float(group["score"])))
        entities = annotate_text(model, tokenizer, text, tokenization="raw")
        assert expected, "the random model should find something"
        assert found(entities) == [(t, s, e) for t, s, e, _ in expected]
        assert [e.score for e in entities] == pytest.approx([score for *_, score in expected], abs=1e-5)


def test_pipeline_and_word_mode_agree_on_the_rigged_model(tokenizer):
    text = "Cisplatin-induced nephrotoxicity in BRCA1 mutant mice."
    word_tags = word_mode_tags(tokenizer, text, ["Cisplatin", "BRCA1", "mutant mice"])
    raw_tags = raw_mode_tags(tokenizer, text, ["Cisplatin", "BRCA1", "mutant mice"])
    assert all(raw_tags[token] == tag for token, tag in word_tags.items() if token in raw_tags)
    model = rig(tiny_vaner(tokenizer, entity_types=["Chemical"]), {**raw_tags, **word_tags})
    ner = pipeline("token-classification", model=model, tokenizer=tokenizer, aggregation_strategy="simple")
    expected = [(group["entity_group"], group["start"], group["end"]) for group in ner(text)]
    assert expected == [("Chemical", 0, 9), ("Chemical", 36, 41), ("Chemical", 42, 53)]
    assert found(annotate_text(model, tokenizer, text)) == expected


# --------------------------------------------------------------------------------------------
# Long documents


def test_long_document_equals_its_sentences_one_by_one(tokenizer):
    sentences = [
        "Cisplatin-induced nephrotoxicity in BRCA1 mutant mice.",
        "Identification of APC2, a homologue of the adenomatous polyposis coli tumour suppressor.",
        "The risk of ovarian cancer in women with mutations of the breast cancer gene was 12 %.",
        "Naloxone reverses the antihypertensive effect of clonidine in Homo sapiens and rats.",
        "IL-2 receptor alpha (CD25) expression in T cells; TNF-\u03b1 and \u03b2-catenin levels rose.",
    ] * 3
    text = "  ".join(sentences)
    model = tiny_vaner(tokenizer)
    annotator = DocumentAnnotator(model, tokenizer, max_length=40, stride=8, batch_size=7)
    recorder = Recorder(model)
    whole = DocumentAnnotator(recorder, tokenizer, max_length=40, stride=8, batch_size=7).annotate(text).entities
    assert sum(call["input_ids"].shape[0] for call in recorder.calls) == 4 * len(sentences)  # no sentence was split
    assert len(tokenizer(text)["input_ids"]) > 5 * 40, "the document is much longer than a window"
    one_by_one = []
    position = 0
    for sentence in sentences:
        position = text.index(sentence, position)
        for entity in annotator.annotate(sentence).entities:
            one_by_one.append(Entity(entity.start + position, entity.end + position, entity.text,
                                     entity.entity_type, entity.score))
        position += len(sentence)
    key = lambda e: (e.start, e.end, e.entity_type)  # noqa: E731
    assert len(whole) > 20
    assert sorted(map(key, whole)) == sorted(map(key, one_by_one))
    assert [e.score for e in sorted(whole, key=key)] == pytest.approx([e.score for e in sorted(one_by_one, key=key)], abs=1e-4)


@pytest.mark.parametrize("tokenization", ["words", "raw"])
def test_sentence_longer_than_the_window_is_split_and_merged(tokenizer, tokenization):
    sentence = " ".join(["Cisplatin-induced nephrotoxicity in BRCA1 mutant mice and TNF-\u03b1 levels"] * 12) + "."
    targets = ["BRCA1"] * 12
    tags = (word_mode_tags if tokenization == "words" else raw_mode_tags)(tokenizer, sentence, targets)
    recorder = Recorder(rig(tiny_vaner(tokenizer, entity_types=["Gene"]), tags))
    windowed = DocumentAnnotator(recorder, tokenizer, tokenization=tokenization, max_length=24, stride=6)
    entities = windowed.annotate(sentence).entities
    assert max(call["input_ids"].shape[1] for call in recorder.calls) <= 24
    assert sum(call["input_ids"].shape[0] for call in recorder.calls) >= 5
    assert [e.text for e in entities] == targets
    whole = DocumentAnnotator(recorder.inner, tokenizer, tokenization=tokenization, max_length=4096).annotate(sentence)
    assert found(whole.entities) == found(entities)


def test_windows_of_a_random_model_keep_each_units_most_central_prediction(tokenizer):
    """With overlapping windows, an entity near a window edge is read from the neighbouring window: the
    result must differ from plain cutting only through context, never by losing or duplicating units."""
    sentence = " ".join(["BRCA1 mutant mice"] * 40)
    model = tiny_vaner(tokenizer, entity_types=["Disease"])
    entities = annotate_text(model, tokenizer, sentence, max_length=20, stride=6)
    covered = [i for e in entities for i in range(e.start, e.end)]
    assert len(covered) == len(set(covered)), "entities of one type never overlap"
    assert all(sentence[e.start : e.end] == e.text and e.text == e.text.strip() for e in entities)


# --------------------------------------------------------------------------------------------
# Types, datasets, overlaps


def lookup_tagger(tokenizer, tables, confidence=None, **config):
    return LookupTagger(tiny_config(tokenizer, **config), tables, confidence or {})


def test_a_span_may_carry_several_types_and_best_resolves_them(tokenizer):
    text = "Cisplatin-induced nephrotoxicity in BRCA1 mutant mice."
    tables = {
        "Gene": word_mode_tags(tokenizer, text, ["BRCA1"]),
        "Disease": word_mode_tags(tokenizer, text, ["nephrotoxicity", "BRCA1 mutant"]),
        "Species": word_mode_tags(tokenizer, text, ["mice"]),
    }
    model = lookup_tagger(tokenizer, tables, {"Gene": 6.0, "Disease": 3.0, "Species": 5.0})
    kept = annotate_text(model, tokenizer, text)
    assert found(kept) == [("Disease", 18, 32), ("Gene", 36, 41), ("Disease", 36, 48), ("Species", 49, 53)]
    best = annotate_text(model, tokenizer, text, overlaps="best")
    assert found(best) == [("Disease", 18, 32), ("Gene", 36, 41), ("Species", 49, 53)]
    only = annotate_text(model, tokenizer, text, entity_types=["gene", "SPECIES"])
    assert found(only) == [("Gene", 36, 41), ("Species", 49, 53)]
    assert set(model.calls[-1]["entity_type_ids"].tolist()) == {2, 3}


def test_dataset_name_reaches_the_model(tokenizer):
    model = lookup_tagger(tokenizer, {})
    annotate_text(model, tokenizer, "BRCA1 mice.", dataset_name="ncbi-disease")
    assert model.calls[-1]["dataset_ids"].tolist() == [0, 0, 0, 0]
    annotate_text(model, tokenizer, "BRCA1 mice.")
    assert model.calls[-1]["dataset_ids"] is None
    with pytest.raises(ValueError, match="'BC2GM' is not one the model knows"):
        annotate_text(model, tokenizer, "BRCA1 mice.", dataset_name="BC2GM")


def test_unknown_entity_type_is_a_clear_error(tokenizer):
    model = lookup_tagger(tokenizer, {}, entity_types=["Disease", "Gene"], known_entity_types=["Disease", "Gene", "Species"])
    with pytest.raises(ValueError, match=r"Unknown entity type\(s\) \['Cell'\]: this model serves \['Disease', 'Gene'\]"):
        DocumentAnnotator(model, tokenizer, entity_types=["Cell"])
    with pytest.raises(ValueError, match="load the model with entity_types"):
        DocumentAnnotator(model, tokenizer, entity_types=["Species"])


# --------------------------------------------------------------------------------------------
# Bad input and streaming


def test_empty_whitespace_and_error_documents_give_empty_results(tokenizer):
    model = lookup_tagger(tokenizer, {"Disease": {token: 1 for token in range(len(tokenizer))}})
    annotator = DocumentAnnotator(model, tokenizer)
    documents = [Document("empty", ""), Document("blank", " \u00a0\r\n\t  \n"),
                 Document("bad", "", source="x.jsonl:3", error="x.jsonl:3: not a JSON object"), Document("ok", "BRCA1.")]
    results = list(annotator.annotate_documents(documents))
    assert [r.document_id for r in results] == ["empty", "blank", "bad", "ok"]
    assert [len(r.entities) for r in results[:3]] == [0, 0, 0]
    assert results[2].error == "x.jsonl:3: not a JSON object" and results[0].error is None
    assert results[3].entities


def test_one_megabyte_single_line_document(tokenizer):
    """No sentence ends in it: it is one sentence of many windows; every word is still tagged once."""
    words = ["BRCA1", "mutant", "mice", "cancer", "\u03b1-catenin", "IL-2", "x" * 300]
    text = " ".join(words[i % len(words)] for i in range(130_000))[:1_000_000]
    assert "\n" not in text and len(text) == 1_000_000
    gene = word_mode_tags(tokenizer, "BRCA1 mutant mice cancer", ["BRCA1"])
    model = lookup_tagger(tokenizer, {"Gene": gene})
    entities = DocumentAnnotator(model, tokenizer, entity_types=["Gene"], batch_size=256).annotate(text).entities
    assert len(entities) == text.count("BRCA1")
    assert all(text[e.start : e.end] == "BRCA1" for e in entities)


def test_streaming_keeps_order_and_bounded_pools(tokenizer):
    model = lookup_tagger(tokenizer, {"Gene": word_mode_tags(tokenizer, "BRCA1 mice.", ["BRCA1"])})
    annotator = DocumentAnnotator(model, tokenizer, entity_types=["Gene"], batch_size=4, pool_windows=8)
    consumed = []

    def documents():
        for number in range(50):
            consumed.append(number)
            yield Document(str(number), "mice. " * (number % 3) + "BRCA1 mice.")

    stream = annotator.annotate_documents(documents())
    first = next(stream)
    assert first.document_id == "0" and len(consumed) < 20, "documents are read as they are needed"
    rest = list(stream)
    assert [r.document_id for r in [first, *rest]] == [str(n) for n in range(50)]
    assert all(len(r.entities) == 1 and r.entities[0].text == "BRCA1" for r in [first, *rest])
    # Rows were sorted by length within each pool (in document order they would alternate 4, 9, 4, ... tokens).
    assert all(call["input_ids"].shape[0] <= 4 for call in model.calls)
    lengths = [call["attention_mask"].sum(1).tolist() for call in model.calls]
    assert all(row == sorted(row) for row in lengths) and len({length for row in lengths for length in row}) > 1


def native_bf16_cpu() -> bool:
    """Read from the CPU flags here, apart from the code under test."""
    flags = next(line for line in open("/proc/cpuinfo", encoding="utf-8") if line.startswith("flags")).split()
    return "avx512_bf16" in flags or "amx_bf16" in flags


def test_dtype_choice(monkeypatch):
    assert choose_dtype("float32", "cpu") == torch.float32
    assert choose_dtype("bfloat16", "cpu") == torch.bfloat16
    monkeypatch.delenv("VANER_AUTO_CPU_DTYPE", raising=False)
    assert choose_dtype("auto", "cpu") == (torch.bfloat16 if native_bf16_cpu() else torch.float32)
    for forced in ("bfloat16", "float32"):
        monkeypatch.setenv("VANER_AUTO_CPU_DTYPE", forced)
        assert choose_dtype("auto", "cpu") == getattr(torch, forced)
    monkeypatch.setenv("VANER_AUTO_CPU_DTYPE", "fp8")
    with pytest.raises(ValueError, match="name bfloat16 or float32"):
        choose_dtype("auto", "cpu")
    with pytest.raises(ValueError, match="dtype must be one of"):
        choose_dtype("float8", "cpu")


def test_bf16_model_annotates_the_entities_of_float32(tokenizer):
    """Where the tags are clear (a rigged model), bf16 gives float32's entities and offsets; scores may move by a
    bf16 rounding step, so they are compared to within 0.01."""
    text = "Cisplatin-induced nephrotoxicity in BRCA1 mutant mice."
    model = rig(tiny_vaner(tokenizer, entity_types=["Disease"]), word_mode_tags(tokenizer, text, ["nephrotoxicity", "mice"]))
    in_float32 = annotate_text(model, tokenizer, text)
    in_bf16 = annotate_text(model.to(torch.bfloat16), tokenizer, text)
    assert found(in_float32) == [("Disease", 18, 32), ("Disease", 49, 53)]
    assert found(in_bf16) == found(in_float32)
    assert all(abs(a.score - b.score) <= 0.01 for a, b in zip(in_bf16, in_float32))
