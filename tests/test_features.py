"""Tokenization with label alignment, windows, batching and decoding back to words."""

from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import Dataset
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
    sentences_to_dataset,
    tokenize_dataset,
    tokenize_sentence,
)
from windows_vaner import WordWindows

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
    (row,) = tokenize_sentence(WORDS, any_tokenizer, LABELS)
    text = " ".join(WORDS)
    encoding = any_tokenizer(text, return_offsets_mapping=True, return_special_tokens_mask=True)
    # The rule: the same ids as tokenizing the joined text with default special tokens.
    assert row["input_ids"] == encoding["input_ids"]
    assert row["attention_mask"] == [1] * len(row["input_ids"])
    # One labelled position per word, in order, never a special token; word_ids name the word there only.
    labelled = [i for i, label in enumerate(row["labels"]) if label != IGNORE_INDEX]
    assert [i for i, word in enumerate(row["word_ids"]) if word != NO_WORD] == labelled
    assert [row["word_ids"][i] for i in labelled] == list(range(len(WORDS)))
    assert [row["labels"][i] for i in labelled] == [("O", "B", "I").index(label) for label in LABELS]
    assert not any(encoding["special_tokens_mask"][i] for i in labelled)
    # The labelled sub-token is the word's first: it starts the word, and no earlier sub-token reaches into it.
    position = 0
    for word, i in zip(WORDS, labelled):
        start = text.index(word, position)
        first_start, first_end = encoding["offset_mapping"][i]
        assert text[first_start:first_end].strip() and word.startswith(text[first_start:first_end].strip())
        assert all(end <= start for _, end in encoding["offset_mapping"][:i] if end > 0)
        position = start + len(word)
    # "nephromutantoxic" is unseen: several sub-tokens, only the first labelled.
    after = labelled[WORDS.index("nephromutantoxic") + 1]
    assert after - labelled[WORDS.index("nephromutantoxic")] > 1


def test_without_labels_and_with_label_ids(tokenizer):
    assert tokenize_sentence(WORDS, tokenizer)[0]["labels"] is None
    with_ids = tokenize_sentence(WORDS, tokenizer, [1, 0, 1, 0, 1, 2, 0])
    assert with_ids[0]["labels"] == tokenize_sentence(WORDS, tokenizer, LABELS)[0]["labels"]
    with pytest.raises(ValueError, match="6 labels for 7 words"):
        tokenize_sentence(WORDS, tokenizer, LABELS[:-1])
    with pytest.raises(ValueError, match="'B-Disease' is not one of"):
        tokenize_sentence(["a"], tokenizer, ["B-Disease"])


def test_windows_overlap_and_label_every_word_once(any_tokenizer):
    words = WORDS * 4
    labels = LABELS * 4
    (whole,) = tokenize_sentence(words, any_tokenizer, labels)
    max_length = 14
    assert len(whole["input_ids"]) > max_length
    windows = WordWindows(any_tokenizer, max_length, stride=4).sentences([words])[0]
    rows = tokenize_sentence(words, any_tokenizer, labels, max_length, stride=4)
    assert len(rows) == len(windows) > 1
    assert all(len(row["input_ids"]) <= max_length for row in rows)
    for window, row in zip(windows, rows):
        # Each window is the rule applied to its own words.
        assert row["input_ids"] == any_tokenizer(" ".join(words[window.first_unit : window.last_unit]))["input_ids"]
    # Windows advance, leave no gap, and share words where the stride holds them.
    assert all(a.first_unit < b.first_unit <= a.last_unit for a, b in zip(windows, windows[1:]))
    assert any(b.first_unit < a.last_unit for a, b in zip(windows, windows[1:]))
    owned = [word for row in rows for word in row["word_ids"] if word != NO_WORD]
    assert owned == list(range(len(words))), "every word is labelled once, in its most central window"
    labelled = [label for row in rows for label in row["labels"] if label != IGNORE_INDEX]
    assert labelled == [("O", "B", "I").index(label) for label in labels]
    assert tokenize_sentence(words, any_tokenizer, labels, None) == [whole]


def test_a_word_longer_than_a_window_is_cut_after_its_first_sub_tokens(tokenizer):
    rows = tokenize_sentence(["a", "xyzzyquxquux", "b"], tokenizer, ["O", "B", "O"], max_length=3, stride=0)
    assert all(len(row["input_ids"]) <= 3 for row in rows)
    labelled = [label for row in rows for label in row["labels"] if label != IGNORE_INDEX]
    assert labelled == [0, 1, 0]


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
    (single,) = tokenize_sentence(WORDS, tokenizer, LABELS)
    assert tokenized[0]["input_ids"] == single["input_ids"] and tokenized[0]["labels"] == single["labels"]
    assert tokenized[0]["word_ids"] == single["word_ids"]


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


@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_predictions_to_sentence_tags_reads_the_owned_positions(padding_side):
    tokenized = Dataset.from_dict({"word_ids": [[NO_WORD, 0, NO_WORD, 1], [NO_WORD, NO_WORD, 2]],
                                   "sentence_index": [0, 0]})
    ids = [[2, 1, 2, 0], [1, 1, 2]]  # only the positions that carry a word decide
    padded = [row + [1] * (5 - len(row)) if padding_side == "right" else [1] * (5 - len(row)) + row for row in ids]
    assert predictions_to_sentence_tags(padded, tokenized, [4], padding_side) == [["B", "O", "I", "O"]]
    logits = [torch.tensor(np.eye(3)[row]) for row in ids]
    assert predictions_to_sentence_tags(logits, tokenized, [3]) == [["B", "O", "I"]]
    with pytest.raises(ValueError, match="2 predictions for 4 sub-tokens"):
        predictions_to_sentence_tags([[0, 1], [0, 1, 2]], tokenized, [3])


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


def test_collator_takes_torch_formatted_rows(tokenizer):
    tokenized, _ = tokenize_dataset(sentences_to_dataset(sentences()), tokenizer, 64, ["Disease", "Gene", "Species"], [])
    tokenized.set_format("torch")
    batch = VanerDataCollator(tokenizer)([tokenized[0], tokenized[2]])
    assert batch["input_ids"][0].tolist() == tokenized[0]["input_ids"].tolist()
    assert batch["labels"][1].tolist()[: len(tokenized[2]["labels"])] == tokenized[2]["labels"].tolist()
