"""Training, evaluation and annotation cut sentences into the same rows and read the same tags back."""

import pytest
from conftest import tiny_vaner

from annotator_vaner import DocumentAnnotator
from text_vaner import tokenize_with_offsets
from vaner.corpora import Sentence
from vaner.evaluation import predict_sentence_tags
from vaner.features import sentences_to_dataset, tokenize_dataset
from windows_vaner import WordWindows

WORDS = ("Cisplatin induced nephrotoxicity in BRCA1 mutant mice and the risk of ovarian cancer in women with "
         "mutations of the breast cancer gene rose while Naloxone reverses the antihypertensive effect of clonidine "
         "in Homo sapiens and rats with IL 2 receptor alpha CD25 expression in T cells").split()


@pytest.mark.parametrize(("max_length", "stride"), [(16, 4), (24, 8), (40, 0)])
def test_evaluation_and_annotation_tag_a_long_sentence_alike(tokenizer, max_length, stride):
    text = " ".join(WORDS)
    assert [word for word, _, _ in tokenize_with_offsets(text)] == WORDS  # one sentence, these words
    model = tiny_vaner(tokenizer, seed=3, entity_types=["Disease", "Chemical"])
    model.config.dataset_name = None
    dataset = sentences_to_dataset([Sentence(tuple(WORDS), ("O",) * len(WORDS), "Chemical", "unseen-corpus")])
    evaluated, split_count = predict_sentence_tags(model, tokenizer, dataset, batch_size=4, max_length=max_length,
                                                   use_dataset_names=False, progress=False, stride=stride)
    assert split_count == 1, "the sentence is longer than one window"
    annotator = DocumentAnnotator(model, tokenizer, entity_types=["Chemical"], max_length=max_length, stride=stride,
                                  batch_size=3, word_tags=True)
    annotated = annotator.annotate(text)
    annotation_tags = ["O"] * len(WORDS)
    for index, tag in annotated.word_tags:
        annotation_tags[index] = tag.entity_type.split("-")[0]
    assert evaluated[0] == annotation_tags
    assert {"B", "I"} & set(annotation_tags), "a random model tags some words, so the comparison says something"


def test_training_rows_are_the_annotation_windows(tokenizer):
    windows = WordWindows(tokenizer, 16, 4).sentences([list(WORDS)])[0]
    dataset = sentences_to_dataset([Sentence(tuple(WORDS), ("O",) * len(WORDS), "Disease", "unseen-corpus")])
    rows, split_count = tokenize_dataset(dataset, tokenizer, 16, ["Disease"], [], stride=4)
    assert split_count == 1
    assert rows["input_ids"] == [window.input_ids for window in windows]
