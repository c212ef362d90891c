"""Phrase mining, dense retrieval and DBR sample assembly (tiny random sentence-transformers encoder)."""

from pathlib import Path

import numpy as np
import pytest
import torch

from vaner.corpora import Sentence, load_corpus
from vaner.dbr import DbrSampler, DbrSettings, dbr_row, dbr_rows, name_tokens, retrieval_pools
from vaner.knowledge_base import KnowledgeBase, KnowledgeBaseEntry
from vaner.phrases import BREAK, CONTENT, INNER, PhraseMiner, gold_spans, mining_recall, token_roles
from vaner.retrieval import DenseIndex, cached_kb_embeddings, encode_texts, encoder_fingerprint, load_encoder

WORDS = (
    "the of and in with after mice rats cancer breast ovarian tumour disease syndrome gene protein brca1 apc "
    "aspirin naloxone cisplatin clonidine kinase receptor coli risk expression patients"
).split()


def build_tiny_encoder(folder: Path) -> Path:
    """A random BERT (hidden 32, 2 layers) + WordPiece vocabulary + mean pooling, saved as a
    sentence-transformers folder: the same loading path as a real encoder, in a second."""
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertConfig, BertModel, BertTokenizerFast

    bert_dir = folder / "bert"
    bert_dir.mkdir(parents=True)
    letters = [chr(code) for code in range(ord("a"), ord("z") + 1)] + list("0123456789-;.,()/+'")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS + letters + [f"##{letter}" for letter in letters]
    tokenizer = BertTokenizerFast(vocab={token: index for index, token in enumerate(dict.fromkeys(vocab))},
                                  do_lower_case=True)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    BertModel(config).save_pretrained(bert_dir)
    tokenizer.save_pretrained(bert_dir)
    transformer = models.Transformer(str(bert_dir), max_seq_length=32)
    pooling = models.Pooling(transformer.get_embedding_dimension(), pooling_mode="mean")
    encoder_dir = folder / "encoder"
    SentenceTransformer(modules=[transformer, pooling], device="cpu").save(str(encoder_dir))
    return encoder_dir


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory) -> Path:
    return build_tiny_encoder(tmp_path_factory.mktemp("tiny_encoder"))


@pytest.fixture(scope="session")
def tiny_encoder(tiny_encoder_dir):
    return load_encoder(str(tiny_encoder_dir), device="cpu")


KB_ENTITIES = [
    KnowledgeBaseEntry("breast cancer", "Disease"),
    KnowledgeBaseEntry("ovarian cancer", "Disease"),
    KnowledgeBaseEntry("tumour", "Disease"),
    KnowledgeBaseEntry("Cowden syndrome", "Disease"),
    KnowledgeBaseEntry("aspirin", "Chemical"),
    KnowledgeBaseEntry("naloxone", "Chemical"),
    KnowledgeBaseEntry("cisplatin", "Chemical"),
    KnowledgeBaseEntry("BRCA1", "Gene"),
    KnowledgeBaseEntry("APC", "Gene"),
    KnowledgeBaseEntry("APC", "Disease"),  # also a Disease: never a negative of a Disease row
    KnowledgeBaseEntry("mice", "Species"),
    KnowledgeBaseEntry("rats", "Species"),
    KnowledgeBaseEntry("heart", "Anatomy"),
    KnowledgeBaseEntry("IL-2 receptor", "Gene"),
    KnowledgeBaseEntry("disease;generalized", "Disease"),  # holds the separator: never drawn
]


@pytest.fixture
def knowledge_base() -> KnowledgeBase:
    return KnowledgeBase(KB_ENTITIES)


def sentences() -> list[Sentence]:
    rows = [
        ("Germline mutations in BRCA1 cause breast cancer in mice .", "O O O O O B I O O O", "Disease"),
        ("APC mutations and ovarian cancer risk after aspirin .", "O O O B I O O O O", "Disease"),
        ("Naloxone reverses the effect of clonidine in rats .", "B O O O O B O O O", "Chemical"),
        ("Expression of the IL - 2 receptor in tumour cells .", "O O O O O O O O O O O", "Chemical"),
    ]
    return [Sentence(tuple(text.split()), tuple(tags.split()), entity_type, "toy") for text, tags, entity_type in rows]


# --------------------------------------------------------------------------------------------
# Phrase mining


def test_token_roles():
    tokens = ["E", ".", "coli", "and", "0", ".", "5", "mg", ",", "which", "showed", "IL", "-", "2", "."]
    assert token_roles(tokens) == [
        CONTENT, INNER, CONTENT, INNER, CONTENT, INNER, CONTENT, CONTENT, BREAK, BREAK, BREAK, CONTENT, INNER, CONTENT, BREAK,
    ]


def test_rule_spans_respect_boundaries():
    miner = PhraseMiner(max_tokens=4, max_inner_words=1, min_count=1)
    tokens = "The familial breast cancer gene ( BRCA1 ) was found in E . coli".split()
    phrases = miner.phrases(tokens)
    for expected in ["familial breast cancer", "breast cancer", "BRCA1", "gene ( BRCA1 )", "E . coli"]:
        assert expected in phrases
    # Never across "was"/"in", never starting or ending on connectors or open punctuation.
    assert not [phrase for phrase in phrases if "was" in phrase.split() or phrase.split()[0] in ("The", "(", ".")]
    assert "gene (" not in phrases and "( BRCA1" not in phrases
    # max_tokens counts words; "-" joins without counting.
    assert "IL - 2 receptor alpha" in PhraseMiner(max_tokens=4, min_count=1).phrases("the IL - 2 receptor alpha chain".split())
    # A number starts a multi-word phrase only as a locant.
    phrases = PhraseMiner(min_count=1).phrases("after 5 - fluorouracil for 21 days".split())
    assert "5 - fluorouracil" in phrases and "21 days" not in phrases


def test_min_count_keeps_segments_suffixes_and_frequent_phrases():
    text = [
        "familial breast cancer patients were studied".split(),
        "the breast cancer patients".split(),
        "a protein kinase C inhibitor".split(),
    ]
    miner = PhraseMiner(max_tokens=6, min_count=2).fit(text)
    phrases = miner.phrases(text[0])
    assert "familial breast cancer patients" in phrases  # the whole segment
    assert "cancer patients" in phrases  # a suffix
    assert "breast cancer" in phrases  # frequent (two sentences)
    assert "familial breast" not in phrases  # rare prefix
    assert PhraseMiner(min_count=1).fit(text).phrases(text[0]).count("familial breast") == 1


def test_gold_spans_and_recall():
    assert gold_spans(["B", "I", "O", "I", "B-Gene", "B-Gene"]) == [(0, 2), (3, 4), (4, 5), (5, 6)]
    report = mining_recall("toy", sentences(), PhraseMiner(min_count=1))
    assert report.mentions == 4 and report.mentions_found == 4
    assert report.recall == 1.0 and report.candidates_per_sentence > 1
    assert "recall 100.0%" in report.line()


def test_phrase_recall_on_ncbi_disease(shared_dir):
    path = shared_dir / "corpora" / "ncbi-disease" / "train.tsv"
    corpus = load_corpus("ncbi-disease", path)
    miner = PhraseMiner().fit(sentence.tokens for sentence in corpus)
    report = mining_recall("ncbi-disease", corpus, miner)
    assert report.recall >= 0.89, report.line()
    assert report.candidates_per_sentence < 25, report.line()


# --------------------------------------------------------------------------------------------
# Retrieval


@pytest.mark.parametrize("rows, chunk", [(23, 7), (50, 7), (5, 64)])
def test_dense_index_matches_brute_force(rows, chunk):
    generator = np.random.default_rng(0)
    matrix = generator.normal(size=(rows, 16)).astype(np.float16)
    queries = generator.normal(size=(11, 16)).astype(np.float32)
    scores, indices = DenseIndex(matrix, query_batch=4, kb_chunk_rows=chunk).search(queries, 4, show_progress=False)
    expected = queries @ matrix.astype(np.float32).T
    k = min(4, rows)
    assert indices.shape == (11, k)
    np.testing.assert_array_equal(indices, np.argsort(-expected, axis=1, kind="stable")[:, :k])
    np.testing.assert_allclose(scores, np.sort(expected, axis=1)[:, ::-1][:, :k], rtol=1e-5, atol=1e-5)


def test_kb_embeddings_cached_on_disk(tmp_path, tiny_encoder, tiny_encoder_dir, knowledge_base):
    key = f"{encoder_fingerprint(str(tiny_encoder_dir), 'auto', 32, 'float32')}|{knowledge_base.content_hash()}"
    matrix = cached_kb_embeddings(tiny_encoder, knowledge_base.names, tmp_path, key, progress=False)
    assert matrix.shape == (len(knowledge_base), 32) and matrix.dtype == np.float16
    np.testing.assert_allclose(np.linalg.norm(matrix.astype(np.float32), axis=1), 1.0, atol=2e-3)
    assert len(list(tmp_path.glob("kb-*.npy"))) == 1

    class NoEncoder:
        def encode(self, *args, **kwargs):
            raise AssertionError("the cache should have been used")

    again = cached_kb_embeddings(NoEncoder(), knowledge_base.names, tmp_path, key, progress=False)
    np.testing.assert_array_equal(np.asarray(again), np.asarray(matrix))
    # Another knowledge base (or encoder) is another key.
    cached_kb_embeddings(tiny_encoder, knowledge_base.names[:-1], tmp_path, key + "x", progress=False)
    assert len(list(tmp_path.glob("kb-*.npy"))) == 2


def test_an_interrupted_kb_embedding_cache_write_leaves_no_file(tmp_path, tiny_encoder, knowledge_base, monkeypatch):
    """Issue 32, item 13: the cache is written by files_vaner's writer (it had a `.PID.tmp.npy` of its own, left
    behind by an interrupted write); the next run computes the matrix again and caches it whole."""
    def interrupted(file, array, **options):
        with open(file, "wb") if isinstance(file, (str, Path)) else file as handle:  # a name, or a file object
            handle.write(b"\x93NUMPY partial")
            raise KeyboardInterrupt

    monkeypatch.setattr(np, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        cached_kb_embeddings(tiny_encoder, knowledge_base.names, tmp_path, "key", progress=False)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    matrix = cached_kb_embeddings(tiny_encoder, knowledge_base.names, tmp_path, "key", progress=False)
    assert sorted(path.suffix for path in tmp_path.iterdir()) == [".json", ".npy"]
    assert matrix.shape == (len(knowledge_base), 32)


def test_encode_texts_normalises(tiny_encoder):
    embeddings = encode_texts(tiny_encoder, ["breast cancer", "aspirin"], progress=False)
    assert embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)


# --------------------------------------------------------------------------------------------
# Assembly


def test_dbr_row_tags_only_the_row_type():
    row = dbr_row(["breast cancer", "IL-2", "aspirin"], ["Disease", "Gene", "Disease"], "Disease", "toy", ";")
    assert row["tokens"] == ["breast", "cancer", ";", "IL", "-", "2", ";", "aspirin"]
    assert row["ner_tags"] == [1, 2, 0, 0, 0, 0, 0, 1]
    assert row["sample_kind"] == "dbr" and row["source_corpus"] == "toy" and row["entity_type"] == "Disease"
    assert row["dbr_entities"][1] == {"name": "IL-2", "entity_type": "Gene"}
    assert name_tokens("5-HT2 receptor (human)") == ["5", "-", "HT2", "receptor", "(", "human", ")"]


def test_a_name_typed_t_is_never_a_negative_of_a_t_row(knowledge_base):
    sampler = DbrSampler(knowledge_base, DbrSettings(max_target_entities=10, max_other_entities=10))
    import random

    everything = list(range(len(knowledge_base)))
    targets, others = sampler.relevant(everything, "Disease", random.Random(0))
    assert {knowledge_base.names[row] for row in targets} >= {"APC", "tumour"}
    assert "APC" not in {knowledge_base.names[row] for row in others}
    targets, others = sampler.random(3, 20, "Disease", random.Random(1))
    assert len(targets) == 3 and all(knowledge_base.entity_types[row] == "Disease" for row in targets)
    assert "APC" not in {knowledge_base.names[row] for row in others}
    # Every negative once: 15 names - 6 Disease names - the Gene "APC" (also a Disease).
    assert len(others) == 8
    assert "disease;generalized" not in {knowledge_base.names[row] for row in targets}
    targets, _ = sampler.random(10, 0, "Disease", random.Random(2))
    assert len(targets) == 5 and "disease;generalized" not in {knowledge_base.names[row] for row in targets}


@pytest.fixture
def pools(tiny_encoder, knowledge_base):
    matrix = cached_kb_embeddings(tiny_encoder, knowledge_base.names, None, "", dtype="float32", progress=False)
    index = DenseIndex(matrix, kb_chunk_rows=5)
    return retrieval_pools([s.tokens for s in sentences()], knowledge_base, tiny_encoder, index,
                           PhraseMiner(min_count=1), top_k=3, progress=False)


def test_pools_hold_exact_names_first(pools, knowledge_base):
    first = pools.rows[sentences()[0].tokens]
    # "BRCA1", "breast cancer" and "mice" are phrases of the sentence and names of the knowledge base:
    # they reuse the name's embedding, so the names themselves come first (cosine 1).
    assert {knowledge_base.names[row] for row in first[:3]} == {"BRCA1", "breast cancer", "mice"}
    assert len(set(first.tolist())) == len(first)
    assert pools.phrases > pools.encoded_phrases > 0


def build_rows(pools, knowledge_base, **settings):
    corpora = {"toy": sentences()}
    return dbr_rows(corpora, knowledge_base, pools, DbrSettings(**settings), progress=False)


def test_relevant_rows_are_reproducible(pools, knowledge_base):
    rows, statistics = build_rows(pools, knowledge_base, seed=7, max_target_entities=2, max_other_entities=2)
    again, _ = build_rows(pools, knowledge_base, seed=7, max_target_entities=2, max_other_entities=2)
    other_seed, _ = build_rows(pools, knowledge_base, seed=8, max_target_entities=2, max_other_entities=2)
    assert rows == again
    assert rows != other_seed
    assert statistics.samples["toy"] == len(rows) == 4
    for row in rows:
        assert row["sample_kind"] == "dbr"
        assert 1 <= len(row["dbr_entities"]) <= 4
        target = [entity for entity in row["dbr_entities"] if entity["entity_type"] == row["entity_type"]]
        assert len(target) <= 2 and row["ner_tags"].count(1) == len(target)
    assert statistics.mean_entities("toy")[0] <= 2


def test_random_variant_draws_the_same_counts(pools, knowledge_base):
    relevant, relevant_statistics = build_rows(pools, knowledge_base, seed=3)
    random_rows, random_statistics = build_rows(pools, knowledge_base, seed=3, variant="random")
    assert relevant_statistics.target_entities == random_statistics.target_entities
    assert relevant_statistics.other_entities == random_statistics.other_entities
    assert [row["dbr_entities"] for row in relevant] != [row["dbr_entities"] for row in random_rows]
    assert random_rows == build_rows(pools, knowledge_base, seed=3, variant="random")[0]


def test_none_variant_and_bad_variant(knowledge_base):
    rows, statistics = dbr_rows({"toy": sentences()}, None, None, DbrSettings(variant="none"))
    assert rows == [] and statistics.samples == {}
    with pytest.raises(ValueError, match="DBR variant"):
        DbrSettings(variant="dense")
    with pytest.raises(ValueError, match="needs a knowledge base"):
        dbr_rows({"toy": sentences()}, knowledge_base, None, DbrSettings())


def test_bfloat16_encoder_stays_close_to_float32(tiny_encoder, tiny_encoder_dir):
    names = [entity.name for entity in KB_ENTITIES]
    reference = encode_texts(tiny_encoder, names, progress=False)
    bfloat16 = encode_texts(load_encoder(str(tiny_encoder_dir), dtype="bfloat16"), names, progress=False)
    assert bfloat16.dtype == np.float32
    assert (reference * bfloat16).sum(axis=1).min() > 0.99
    with pytest.raises(ValueError, match="encoder dtype"):
        load_encoder(str(tiny_encoder_dir), dtype="int4")
