"""Tokenization with label alignment, windows, batching and decoding back to words."""

from pathlib import Path

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from vaner.corpora import Sentence, load_corpus
from vaner.features import (
    DATASET_FEATURES,
    IGNORE_INDEX,
    NO_WORD,
    VanerDataCollator,
    dataset_index,
    predictions_to_sentence_tags,
    predictions_to_word_tags,
    sentences_to_dataset,
    tokenize_dataset,
    tokenize_sentence,
    tokenize_sentence_windows,
)

SHARED_CORPORA = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"

TEXTS = [
    "Cisplatin-induced nephrotoxicity in BRCA1 mutant mice.",
    "The risk of ovarian cancer in women with mutations of the breast cancer gene was 12 %.",
    "IL-2 receptor alpha (CD25) expression in T cells; TNF-α and β-catenin levels rose.",
]


def byte_level_bpe(trim_offsets: bool) -> PreTrainedTokenizerFast:
    """Byte-level BPE; without trimmed offsets (as Llama-3 / SmolLM2 ship it) a sub-token's offsets
    include the space before it."""
    backend = Tokenizer(models.BPE(unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.train_from_iterator(
        TEXTS * 10,
        trainers.BpeTrainer(vocab_size=400, special_tokens=["<unk>", "<pad>", "<s>"],
                            initial_alphabet=pre_tokenizers.ByteLevel.alphabet()),
    )
    backend.post_processor = processors.Sequence(
        [processors.ByteLevel(trim_offsets=trim_offsets),
         processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", backend.token_to_id("<s>"))])]
    )
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", pad_token="<pad>", bos_token="<s>")


def word_piece() -> PreTrainedTokenizerFast:
    """A BERT-style WordPiece tokenizer with [CLS] ... [SEP] around the text."""
    backend = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=False)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.train_from_iterator(
        TEXTS * 10, trainers.WordPieceTrainer(vocab_size=200, special_tokens=["[UNK]", "[PAD]", "[CLS]", "[SEP]"])
    )
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        special_tokens=[("[CLS]", backend.token_to_id("[CLS]")), ("[SEP]", backend.token_to_id("[SEP]"))],
    )
    backend.decoder = decoders.WordPiece()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]"
    )


@pytest.fixture(scope="module", params=["conftest-bpe", "bpe-untrimmed", "wordpiece"])
def any_tokenizer(request):
    if request.param == "conftest-bpe":
        return request.getfixturevalue("tokenizer")
    return byte_level_bpe(trim_offsets=False) if request.param == "bpe-untrimmed" else word_piece()


WORDS = ["TNF-α", "and", "β-catenin", "in", "nephromutantoxic", "mice", "."]
LABELS = ["B", "O", "B", "O", "B", "I", "O"]


def test_alignment_labels_first_sub_token_of_each_word(any_tokenizer):
    encoding = tokenize_sentence(WORDS, any_tokenizer, LABELS)
    text = " ".join(WORDS)
    # The rule: the same ids as tokenizing the joined text with default special tokens.
    assert encoding["input_ids"] == any_tokenizer(text)["input_ids"]
    assert encoding["attention_mask"] == [1] * len(encoding["input_ids"])
    word_ids = encoding["word_ids"]
    assert [w for w in word_ids if w is not None] == sorted(w for w in word_ids if w is not None)
    assert {w for w in word_ids if w is not None} == set(range(len(WORDS)))
    special_mask = any_tokenizer(text, return_special_tokens_mask=True)["special_tokens_mask"]
    assert sum(special_mask) == any_tokenizer.num_special_tokens_to_add()
    for is_special, word in zip(special_mask, word_ids):
        if is_special:
            assert word is None
    # "nephromutantoxic" is unseen: several sub-tokens, only the first labelled.
    unseen = [i for i, w in enumerate(word_ids) if w == 4]
    assert len(unseen) > 1
    assert [encoding["labels"][i] for i in unseen] == [1] + [IGNORE_INDEX] * (len(unseen) - 1)
    # Labels: one per word, on its first sub-token, in order.
    labelled = [label for label in encoding["labels"] if label != IGNORE_INDEX]
    assert labelled == [("O", "B", "I").index(label) for label in LABELS]
    first_positions = [word_ids.index(w) for w in range(len(WORDS))]
    assert [i for i, label in enumerate(encoding["labels"]) if label != IGNORE_INDEX] == first_positions


def test_sub_tokens_cover_their_words_greek_letters_included(any_tokenizer):
    text = " ".join(WORDS)
    encoding = any_tokenizer(text, return_offsets_mapping=True)
    word_ids = tokenize_sentence(WORDS, any_tokenizer)["word_ids"]
    for word_index, word in enumerate(WORDS):
        spans = [encoding["offset_mapping"][i] for i, w in enumerate(word_ids) if w == word_index]
        covered = text[min(s for s, _ in spans) : max(e for _, e in spans)].strip()
        assert covered == word


def test_without_labels_and_with_label_ids(tokenizer):
    assert tokenize_sentence(WORDS, tokenizer)["labels"] is None
    with_ids = tokenize_sentence(WORDS, tokenizer, [1, 0, 1, 0, 1, 2, 0])
    assert with_ids["labels"] == tokenize_sentence(WORDS, tokenizer, LABELS)["labels"]
    with pytest.raises(ValueError, match="6 labels for 7 words"):
        tokenize_sentence(WORDS, tokenizer, LABELS[:-1])
    with pytest.raises(ValueError, match="'B-Disease' is not one of"):
        tokenize_sentence(["a"], tokenizer, ["B-Disease"])


def assert_not_inside_a_fitting_entity(words, labels, start, tokenizer, max_length):
    """A window may start inside an entity only when the entity alone exceeds the limit."""
    if labels[start] != "I":
        return
    first = max(i for i in range(start) if labels[i] == "B")
    last = next((i for i in range(start, len(labels)) if labels[i] != "I"), len(labels))
    assert len(tokenizer(" ".join(words[first:last]))["input_ids"]) > max_length, "a window cut a short entity"


def test_windows_split_at_word_boundaries_and_keep_every_word(any_tokenizer):
    words = WORDS * 4
    labels = LABELS * 4
    whole = tokenize_sentence(words, any_tokenizer, labels)
    max_length = 14
    assert len(whole["input_ids"]) > max_length
    windows = tokenize_sentence_windows(words, any_tokenizer, max_length, labels)
    assert len(windows) > 1
    assert all(len(window["input_ids"]) <= max_length for window in windows)
    covered = []
    for window in windows:
        window_words = sorted({w for w in window["word_ids"] if w is not None})
        assert window_words == list(range(window_words[0], window_words[-1] + 1))
        # Each window is the rule applied to its own words.
        assert window["input_ids"] == any_tokenizer(" ".join(words[window_words[0] : window_words[-1] + 1]))["input_ids"]
        assert_not_inside_a_fitting_entity(words, labels, window_words[0], any_tokenizer, max_length)
        covered += window_words
    assert covered == list(range(len(words)))
    labelled = [label for window in windows for label in window["labels"] if label != IGNORE_INDEX]
    assert labelled == [("O", "B", "I").index(label) for label in labels]
    assert tokenize_sentence_windows(words, any_tokenizer, None, labels) == [whole]


def test_a_word_longer_than_the_limit_is_an_error(tokenizer):
    with pytest.raises(ValueError, match="alone needs more than max_length=3"):
        tokenize_sentence_windows(["a", "xyzzyquxquux", "b"], tokenizer, 3)


def sentences():
    return [
        Sentence(tuple(WORDS), tuple(LABELS), "Gene", "ncbi-disease"),
        Sentence(tuple(WORDS * 3), tuple(LABELS * 3), "Disease", "bc5cdr-chem"),
        Sentence(("BRCA1", "mice"), ("B", "O"), "Species", "my-corpus"),
    ]


def test_tokenize_dataset_columns_ids_and_split_count(tokenizer):
    dataset = sentences_to_dataset(sentences())
    dbr = dataset.cast(DATASET_FEATURES).map(lambda row: {"sample_kind": "dbr"}).select([0])
    from datasets import concatenate_datasets

    dataset = concatenate_datasets([dataset, dbr])
    tokenized, n_split = tokenize_dataset(
        dataset, tokenizer, 24, ["Disease", "Chemical", "Gene", "Species"], ["NCBI-disease", "bc5cdr-chem"]
    )
    assert n_split == 1
    assert {"input_ids", "attention_mask", "labels", "entity_type_ids", "dataset_ids"} <= set(tokenized.column_names)
    rows_per_sentence = np.bincount(tokenized["sentence_index"])
    assert rows_per_sentence[0] == 1 and rows_per_sentence[1] > 1 and rows_per_sentence[2:].tolist() == [1, 1]
    by_sentence = {row["sentence_index"]: row for row in tokenized}
    assert [by_sentence[i]["entity_type_ids"] for i in range(4)] == [2, 0, 3, 2]
    # display and registry names match ("ncbi-disease" = "NCBI-disease"); absent and DBR rows get -1
    assert [by_sentence[i]["dataset_ids"] for i in range(4)] == [0, 1, -1, -1]
    assert all(len(row["input_ids"]) <= 24 for row in tokenized)
    single = tokenize_sentence(WORDS, tokenizer, LABELS)
    assert tokenized[0]["input_ids"] == single["input_ids"] and tokenized[0]["labels"] == single["labels"]
    assert tokenized[0]["word_ids"] == [NO_WORD if w is None else w for w in single["word_ids"]]


def test_unknown_entity_type_lists_the_known_ones(tokenizer):
    dataset = sentences_to_dataset(sentences())
    with pytest.raises(ValueError, match=r"entity type 'Species' is not one of the model's entity types \['Disease', 'Gene'\]"):
        tokenize_dataset(dataset, tokenizer, 64, ["Disease", "Gene"], [])


def test_dataset_index():
    assert dataset_index("bc2gm", ["BC2GM", "s800"]) == 0
    assert dataset_index("mine", ["mine"]) == 0
    assert dataset_index("s800", ["BC2GM"]) == -1


@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_collator_pads_on_the_tokenizers_side(padding_side):
    tokenizer = byte_level_bpe(trim_offsets=True)
    tokenizer.padding_side = padding_side
    pad = tokenizer.pad_token_id
    features = [
        {"input_ids": [5, 6, 7], "attention_mask": [1, 1, 1], "labels": [-100, 1, 2], "entity_type_ids": 2,
         "dataset_ids": -1, "word_ids": [-1, 0, 1], "sentence_index": 0},
        {"input_ids": [8], "attention_mask": [1], "labels": [0], "entity_type_ids": 0, "dataset_ids": 1,
         "word_ids": [0], "sentence_index": 1},
    ]
    batch = VanerDataCollator(tokenizer)(features)
    assert set(batch) == {"input_ids", "attention_mask", "labels", "entity_type_ids", "dataset_ids"}
    assert all(tensor.dtype == torch.long for tensor in batch.values())
    if padding_side == "right":
        assert batch["input_ids"].tolist() == [[5, 6, 7], [8, pad, pad]]
        assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
        assert batch["labels"].tolist() == [[-100, 1, 2], [0, -100, -100]]
    else:
        assert batch["input_ids"].tolist() == [[5, 6, 7], [pad, pad, 8]]
        assert batch["attention_mask"].tolist() == [[1, 1, 1], [0, 0, 1]]
        assert batch["labels"].tolist() == [[-100, 1, 2], [-100, -100, 0]]
    assert batch["entity_type_ids"].tolist() == [2, 0] and batch["dataset_ids"].tolist() == [-1, 1]
    assert VanerDataCollator(tokenizer, pad_to_multiple_of=8)(features)["input_ids"].shape == (2, 8)
    without_labels = [{k: v for k, v in f.items() if k != "labels"} for f in features]
    assert "labels" not in VanerDataCollator(tokenizer)(without_labels)


def test_collator_needs_a_pad_token():
    tokenizer = byte_level_bpe(trim_offsets=True)
    tokenizer.pad_token = None
    with pytest.raises(ValueError, match="no pad token"):
        VanerDataCollator(tokenizer)([{"input_ids": [1]}])


def test_predictions_to_word_tags_from_logits_and_ids():
    word_ids = [None, 0, 0, 1, None, 2]
    ids = [2, 1, 2, 0, 1, 2]  # the word's first sub-token decides; specials and later sub-tokens do not
    assert predictions_to_word_tags(ids, word_ids) == ["B", "O", "I"]
    logits = np.eye(3)[ids]
    assert predictions_to_word_tags(torch.tensor(logits), word_ids) == ["B", "O", "I"]
    padded = np.concatenate([logits, np.eye(3)[[1, 1]]])
    assert predictions_to_word_tags(padded, word_ids) == ["B", "O", "I"]
    left_padded = np.concatenate([np.eye(3)[[1, 1]], logits])
    assert predictions_to_word_tags(left_padded, word_ids, padding_side="left") == ["B", "O", "I"]
    assert predictions_to_word_tags(ids, [NO_WORD, 0, 0, 2, NO_WORD, 3], n_words=5) == ["B", "O", "O", "I", "O"]
    with pytest.raises(ValueError, match="2 predictions for 6 sub-tokens"):
        predictions_to_word_tags([0, 1], word_ids)


def test_gold_labels_decode_back_to_the_words_tags_through_windows(tokenizer):
    dataset = sentences_to_dataset(sentences())
    tokenized, n_split = tokenize_dataset(dataset, tokenizer, 20, ["Disease", "Gene", "Species"], [])
    assert n_split == 1
    batch = VanerDataCollator(tokenizer)([tokenized[i] for i in range(len(tokenized))])
    # A perfect model: logits that put each sub-token's gold label first (-100 -> "I", never read).
    labels = batch["labels"].clone()
    labels[labels == IGNORE_INDEX] = 2
    logits = torch.nn.functional.one_hot(labels, 3).float()
    tags = predictions_to_sentence_tags(logits, tokenized, [len(tokens) for tokens in dataset["tokens"]])
    assert tags == [list(sentence.tags) for sentence in sentences()]


def test_real_corpus_round_trips_through_tokenization(tokenizer):
    path = SHARED_CORPORA / "ncbi-disease" / "test.tsv"
    if not path.is_file():
        pytest.skip(f"../shared/corpora not found: {path} is needed")
    corpus = load_corpus("ncbi-disease", path)[:300]
    dataset = sentences_to_dataset(corpus)
    tokenized, n_split = tokenize_dataset(dataset, tokenizer, 96, ["Disease"], ["NCBI-disease"])
    assert n_split > 0 and len(tokenized) == len(corpus) + sum(
        count - 1 for count in np.bincount(tokenized["sentence_index"]) if count > 1
    )
    predictions = [[label if label != IGNORE_INDEX else 0 for label in row] for row in tokenized["labels"]]
    tags = predictions_to_sentence_tags(predictions, tokenized, [len(s.tokens) for s in corpus])
    assert tags == [list(sentence.tags) for sentence in corpus]


@pytest.mark.parametrize("max_length", [5, 8, 9])
def test_windows_end_before_an_entity_rather_than_inside_it(tokenizer, max_length):
    words = ["the", "risk", "of", "ovarian", "cancer", "in", "breast", "cancer", "gene", "mutations", "was", "12", "%", "."]
    labels = ["O", "O", "O", "B", "I", "O", "B", "I", "I", "O", "O", "O", "O", "O"]
    windows = tokenize_sentence_windows(words, tokenizer, max_length, labels)
    starts = [min(w for w in window["word_ids"] if w is not None) for window in windows]
    assert len(starts) > 1
    for start in starts:
        assert_not_inside_a_fitting_entity(words, labels, start, tokenizer, max_length)
    assert all(len(window["input_ids"]) <= max_length for window in windows)


def test_collator_takes_torch_formatted_rows(tokenizer):
    tokenized, _ = tokenize_dataset(sentences_to_dataset(sentences()), tokenizer, 64, ["Disease", "Gene", "Species"], [])
    tokenized.set_format("torch")
    batch = VanerDataCollator(tokenizer)([tokenized[0], tokenized[2]])
    assert batch["input_ids"][0].tolist() == tokenized[0]["input_ids"].tolist()
    assert batch["labels"][1].tolist()[: len(tokenized[2]["labels"])] == tokenized[2]["labels"].tolist()
