"""Huge documents and many documents (issue 32 item 3): annotation memory does not grow with a document's length,
a document over the size limit is an error record naming it, and the id bookkeeping costs a few bytes a document."""

import json
import random
import tracemalloc
from types import SimpleNamespace

import pytest
import torch
from conftest import tiny_config, tiny_vaner
from transformers import pipeline

import annotator_vaner
import predict_vaner
from pipeline_vaner import VanerTokenClassificationPipeline
from vaner.documents import AnnotatedDocument, Document, DocumentAnnotator
from vaner.formats import PubTatorWriter
from windows_vaner import WordWindows

SENTENCE = "Cisplatin-induced nephrotoxicity in BRCA1 mutant mice and TNF-\u03b1 levels rose"


class InstantTagger(torch.nn.Module):
    """VANER's interface at no cost: the sub-tokens of "BRCA1" (with or without its leading space) are tagged B,
    every other one O; one row per window and type."""

    def __init__(self, tokenizer):
        super().__init__()
        self.config = tiny_config(tokenizer, entity_types=["Gene"])
        self.anchor = torch.nn.Parameter(torch.zeros(1))
        self.gene_ids = torch.tensor([tokenizer(word, add_special_tokens=False)["input_ids"][0]
                                      for word in ("BRCA1", " BRCA1")])

    def forward(self, input_ids, attention_mask, entity_type_ids=None, dataset_ids=None):
        logits = torch.zeros(*input_ids.shape, 3)
        logits[..., 1] = torch.isin(input_ids, self.gene_ids) * 10.0
        return SimpleNamespace(logits=logits)


def working_memory(annotator, text):
    """The annotated document and the peak Python memory that annotating it took above what it keeps (its entities)."""
    tracemalloc.start()
    try:
        annotated = annotator.annotate(Document("huge", text))
        kept, peak = tracemalloc.get_traced_memory()
        return annotated, peak - kept
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("sentence_end", [". ", " "], ids=["sentences", "no-sentence-end"])
def test_annotation_memory_does_not_grow_with_the_document(tokenizer, monkeypatch, sentence_end):
    # It used to hold every sentence's words, sub-tokens and windows at once: 113 bytes a character of Python
    # objects, more in the tokenizer, so a 30 MB line took gigabytes. Small parts and pools make the test quick.
    monkeypatch.setattr(annotator_vaner, "SENTENCE_BATCH_CHARS", 4000, raising=False)
    annotator = DocumentAnnotator(InstantTagger(tokenizer), tokenizer, max_length=64, pool_windows=64)
    block = (SENTENCE + sentence_end) * 250  # 20,000 characters
    _, small = working_memory(annotator, block)
    annotated, large = working_memory(annotator, block * 8)
    assert [entity.text for entity in annotated.entities] == ["BRCA1"] * 2000
    assert large < 1.5 * small, f"{large:,} bytes for 160,000 characters against {small:,} for 20,000"


@pytest.mark.parametrize("tokenization", ["words", "raw"])
@pytest.mark.parametrize("sentence_end", [". ", " "], ids=["sentences", "no-sentence-end"])
def test_a_document_annotated_in_parts_equals_it_annotated_whole(tokenizer, monkeypatch, tokenization, sentence_end):
    """Parts of a few sentences, and a sentence with no end in parts of a few windows, give the entities, scores and
    tags of the whole at once: the same windows, each word read from its most central one, entities across parts."""
    text = (SENTENCE + sentence_end) * 40
    model = tiny_vaner(tokenizer)
    options = dict(tokenization=tokenization, max_length=24, stride=6, batch_size=8, word_tags=True)
    whole = DocumentAnnotator(model, tokenizer, **options).annotate(text)
    monkeypatch.setattr(annotator_vaner, "SENTENCE_BATCH_CHARS", 200)
    parts = DocumentAnnotator(model, tokenizer, pool_windows=5, **options).annotate(text)
    assert len(whole.entities) > 50 and any(e.end - e.start > 12 for e in whole.entities), "long entities cross parts"
    assert [(e.start, e.end, e.entity_type) for e in parts.entities] == [(e.start, e.end, e.entity_type)
                                                                         for e in whole.entities]
    assert [e.score for e in parts.entities] == pytest.approx([e.score for e in whole.entities], abs=1e-6)
    assert [(index, tag.entity_type, tag.start) for index, tag in parts.word_tags] == [
        (index, tag.entity_type, tag.start) for index, tag in whole.word_tags]


def test_a_sentence_streamed_as_words_gets_the_windows_of_the_whole(tokenizer):
    """Random word sequences, windows of 8 to 24 sub-tokens: long words cut, windows given up words when their
    first word, without its leading space, takes more sub-tokens (the re-planning rule), counts read in chunks."""
    generator = random.Random(1)
    vocabulary = (SENTENCE + " ( CD25 ) ; supercalifragilisticexpialidocious").split()
    for _ in range(40):
        words = [generator.choice(vocabulary) for _ in range(generator.randint(1, 300))]
        windows = WordWindows(tokenizer, generator.choice([8, 12, 24]), generator.choice([None, 0, 2]))
        whole = windows.sentences([words])[0]
        assert [(w.first_unit, w.input_ids, w.label_positions) for w in windows.stream(iter(words))] == [
            (w.first_unit, w.input_ids, w.label_positions) for w in whole]


def test_a_document_over_the_size_limit_is_an_error_record(tokenizer):
    annotator = DocumentAnnotator(InstantTagger(tokenizer), tokenizer, max_document_length=100)
    documents = [Document("a", "BRCA1 mice. " * 8), Document("big", "BRCA1 " * 20, source="in.jsonl:2"),
                 Document("c", "x" * 100)]
    first, big, last = annotator.annotate_documents(documents)
    assert big.error == ("document 'big' (in.jsonl:2): 120 characters, over the limit of 100 characters "
                         "(max_document_length); not annotated") and big.entities == ()
    assert first.error is None and len(first.entities) == 8 and last.error is None


def test_the_pipeline_refuses_a_text_over_the_limit(tokenizer):
    ner = pipeline("token-classification", model=tiny_vaner(tokenizer), tokenizer=tokenizer,
                   pipeline_class=VanerTokenClassificationPipeline, max_document_length=50)
    assert ner("BRCA1 mice.") is not None
    with pytest.raises(ValueError, match="60 characters, over the limit of 50 characters"):
        ner("BRCA1 mice. " * 5)


def test_predict_reports_a_document_over_the_limit_and_goes_on(tiny_vaner_dir, tmp_path, caplog):
    data = tmp_path / "docs.jsonl"
    texts = ["BRCA1 mice.", "BRCA1 mice. " * 10, "Naloxone in rats."]
    data.write_text("".join(json.dumps({"id": f"d{n}", "text": text}) + "\n" for n, text in enumerate(texts)))
    output = tmp_path / "out.jsonl"
    status = predict_vaner.main(["--model_name_or_path", str(tiny_vaner_dir), "--input", str(data), "--output",
                                 str(output), "--max_document_length", "100", "--no_progress", "--dtype", "float32"])
    assert status == predict_vaner.EXIT_DOCUMENTS_LOST
    records = [json.loads(line) for line in output.read_text().splitlines()]
    assert [record["id"] for record in records] == ["d0", "d1", "d2"]
    assert records[1]["error"] == (f"document 'd1' ({data}:2): 120 characters, over the limit of 100 characters "
                                   "(max_document_length); not annotated")
    assert "error" not in records[0] and "error" not in records[2]
    assert any(records[1]["error"] in record.getMessage() for record in caplog.records)


def test_the_size_limit_has_one_home():
    assert predict_vaner.AnnotationArguments.max_document_length == annotator_vaner.DEFAULT_MAX_DOCUMENT_LENGTH
    assert annotator_vaner.DEFAULT_MAX_DOCUMENT_LENGTH == 1_000_000


# --------------------------------------------------------------------------------------------
# Id bookkeeping


def annotated_documents(count: int, duplicate_every: int):
    for number in range(count):
        name = f"PMID{number - 1 if number % duplicate_every == 0 and number else number:08d}"
        yield AnnotatedDocument(Document(name, "x"))


def bookkeeping_bytes(consume) -> int:
    tracemalloc.start()
    try:
        consume()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_duplicate_ids_are_counted_in_a_few_bytes_a_document():
    counts = {"documents": 0, "entities": 0, "errors": 0, "duplicates": 0}
    used = bookkeeping_bytes(lambda: all(predict_vaner._report_errors(annotated_documents(40_000, 1000), counts)))
    assert counts["duplicates"] == 39 and counts["first_duplicate"] == "PMID00000999"
    assert used / 40_000 < 50, f"{used / 40_000:.0f} bytes a document (a set of the ids took about 110)"


class Sink:
    def write(self, text):
        return len(text)

    def flush(self):
        pass


def test_pubtator_ids_stay_apart_in_a_few_bytes_a_document():
    def write_all():
        with PubTatorWriter(Sink()) as writer:
            for annotated in annotated_documents(40_000, 40_000):
                writer.write(annotated)

    used = bookkeeping_bytes(write_all)
    assert used / 40_000 < 50, f"{used / 40_000:.0f} bytes a document (a dict of the ids took about 110)"
