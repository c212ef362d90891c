"""Reading and writing corpora: the registry, TSV/CoNLL, PubTator, repairs and errors."""

import logging
import re
from pathlib import Path

import pytest

from text_vaner import document_sentences
from vaner.corpora import (
    CORPORA,
    CorpusArgumentError,
    CorpusFormatError,
    DocumentSentence,
    RawSentence,
    Sentence,
    document_to_sentences,
    iob_spans,
    load_corpus,
    parse_corpus_argument,
    read_iob_file,
    read_pubtator,
    repair_iob2,
    resolve_split_path,
    tokenize_with_offsets,
    write_iob_file,
)

SHARED_CORPORA = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"

# (corpus, split): (sentences, entities after the registry's mapping). Sentence counts are those of
# ../shared/README.md, except JNLPBA, whose README counts also include its -DOCSTART- blocks (checked
# below). Entity counts were measured once with this reader and are pinned so that any change shows.
EXPECTED_COUNTS = {
    ("ncbi-disease", "train"): (5424, 5134),
    ("ncbi-disease", "devel"): (923, 787),
    ("ncbi-disease", "test"): (940, 960),
    ("bc5cdr-disease", "train"): (4560, 4182),
    ("bc5cdr-disease", "devel"): (4581, 4246),
    ("bc5cdr-disease", "test"): (4797, 4424),
    ("bc5cdr-chem", "train"): (4560, 5203),
    ("bc5cdr-chem", "devel"): (4581, 5347),
    ("bc5cdr-chem", "test"): (4797, 5385),
    ("bc2gm", "train"): (12574, 15197),
    ("bc2gm", "devel"): (2519, 3061),
    ("bc2gm", "test"): (5038, 6325),
    ("linnaeus", "train"): (11935, 2119),
    ("linnaeus", "devel"): (4078, 711),
    ("linnaeus", "test"): (7142, 1433),
    ("jnlpba", "devel"): (1739, 3625),
    ("jnlpba", "test"): (3856, 6241),
    ("s800", "devel"): (831, 384),
    ("s800", "test"): (1630, 767),
}
JNLPBA_README_BLOCKS = {"devel": 1939, "test": 4260}  # sentences + one block per -DOCSTART- line


def shared_file(corpus, split) -> Path:
    if not SHARED_CORPORA.is_dir():
        pytest.skip(f"../shared/corpora not found: {SHARED_CORPORA} holds the benchmark corpora")
    return SHARED_CORPORA / corpus / f"{split}.tsv"


def write(tmp_path, text, name="corpus.tsv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------
# Real corpora


@pytest.mark.parametrize("corpus, split", sorted(EXPECTED_COUNTS))
def test_real_corpus_counts(corpus, split):
    sentences = load_corpus(corpus, shared_file(corpus, split))
    n_sentences, n_entities = EXPECTED_COUNTS[corpus, split]
    assert len(sentences) == n_sentences
    assert sum(len(iob_spans(sentence.tags)) for sentence in sentences) == n_entities
    spec = CORPORA[corpus]
    assert {sentence.entity_type for sentence in sentences} == {spec.entity_type}
    assert {sentence.source_corpus for sentence in sentences} == {corpus}
    assert all(set(sentence.tags) <= {"O", "B", "I"} for sentence in sentences)


@pytest.mark.parametrize("split", ["devel", "test"])
def test_jnlpba_readme_counts_include_docstart_blocks(split):
    raw = read_iob_file(shared_file("jnlpba", split))
    documents = sum(sentence.document_start for sentence in raw)
    assert len(raw) + documents == JNLPBA_README_BLOCKS[split]


def test_jnlpba_maps_protein_dna_rna_to_gene_and_cell_types_to_o():
    path = shared_file("jnlpba", "test")
    raw = read_iob_file(path)
    sentences = load_corpus("jnlpba", path)
    expected = sum(
        1 for sentence in raw for tag in sentence.tags if tag in ("B-protein", "B-DNA", "B-RNA")
    )
    assert expected == 6241
    for raw_sentence, sentence in zip(raw, sentences):
        for raw_tag, tag in zip(raw_sentence.tags, sentence.tags):
            if raw_tag.endswith(("cell_type", "cell_line")) or raw_tag == "O":
                assert tag == "O"
            else:
                assert tag == raw_tag[0]


@pytest.mark.parametrize("corpus, split", sorted(EXPECTED_COUNTS))
def test_real_tsv_round_trip_is_byte_identical(corpus, split, tmp_path):
    path = shared_file(corpus, split)
    written = tmp_path / "copy.tsv"
    write_iob_file(read_iob_file(path), written)
    assert written.read_bytes() == path.read_bytes()


# --------------------------------------------------------------------------------------------
# Registry


def test_registry_holds_the_papers_eight_corpora():
    assert {name: (spec.display_name, spec.entity_type) for name, spec in CORPORA.items()} == {
        "ncbi-disease": ("NCBI-disease", "Disease"),
        "bc5cdr-disease": ("BC5CDR-disease", "Disease"),
        "bc5cdr-chem": ("BC5CDR-chem", "Chemical"),
        "bc2gm": ("BC2GM", "Gene"),
        "jnlpba": ("JNLPBA", "Gene"),
        "bc4chemd": ("BC4CHEMD", "Chemical"),
        "linnaeus": ("linnaeus", "Species"),
        "s800": ("s800", "Species"),
    }
    assert CORPORA["bc2gm"].map_type("GENE") == "Gene"
    assert [CORPORA["jnlpba"].map_type(t) for t in ("protein", "DNA", "RNA", "cell_type", "cell_line")] == [
        "Gene", "Gene", "Gene", None, None
    ]


TSV = "BRCA1\tB-Disease\nmutant\tI-Disease\ncarriers\tO\n\nSmall\tO\ncancers\tB-Disease\n\n"


def test_load_registered_corpus(tmp_path):
    sentences = load_corpus("NCBI-disease", write(tmp_path, TSV))  # display names resolve too
    assert sentences == [
        Sentence(("BRCA1", "mutant", "carriers"), ("B", "I", "O"), "Disease", "ncbi-disease"),
        Sentence(("Small", "cancers"), ("O", "B"), "Disease", "ncbi-disease"),
    ]
    assert sentences[1].location.endswith("corpus.tsv:5")


def test_unknown_type_in_registered_corpus_names_file_and_line(tmp_path):
    path = write(tmp_path, TSV.replace("cancers\tB-Disease", "cancers\tB-Chemical"))
    with pytest.raises(CorpusFormatError, match=r"corpus\.tsv:6: type 'Chemical'"):
        load_corpus("ncbi-disease", path)


def test_unregistered_corpus_needs_a_type_and_maps_all_types_to_it(tmp_path):
    path = write(tmp_path, "aspirin\tB-Drug\nand\tO\nNaCl\tB-Salt\n\n")
    with pytest.raises(ValueError, match="not registered"):
        load_corpus("my-drugs", path)
    [sentence] = load_corpus("my-drugs", path, entity_type="Chemical")
    assert sentence == Sentence(("aspirin", "and", "NaCl"), ("B", "O", "B"), "Chemical", "my-drugs")
    [mapped] = load_corpus("my-drugs", path, entity_type="Chemical", tag_mapping={"Drug": "Chemical", "Salt": None})
    assert mapped.tags == ("B", "O", "O")
    with pytest.raises(CorpusFormatError, match=r"corpus\.tsv:3: type 'Salt'"):
        load_corpus("my-drugs", path, entity_type="Chemical", tag_mapping={"Drug": "Chemical"})


def test_registered_corpus_refuses_another_type(tmp_path):
    with pytest.raises(ValueError, match="registered with entity type 'Disease'"):
        load_corpus("ncbi-disease", write(tmp_path, TSV), entity_type="Gene")


def test_i_without_b_is_repaired_and_counted_once_per_file(tmp_path, caplog):
    text = "a\tO\nb\tI-Disease\nc\tI-Disease\n\nd\tB-Chemical\ne\tI-Disease\n\nf\tI-Disease\n\n"
    path = write(tmp_path, text)
    with caplog.at_level(logging.WARNING, logger="vaner.corpora"):
        sentences = load_corpus("mixed", path, entity_type="Disease",
                                tag_mapping={"Disease": "Disease", "Chemical": None})
    assert [s.tags for s in sentences] == [("O", "B", "I"), ("O", "B"), ("B",)]
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 1 and "3 I- tags" in warnings[0] and "corpus.tsv" in warnings[0]


def test_repair_keeps_distinct_entities_of_merged_types():
    # JNLPBA: B-DNA I-protein are two entities; mapping both to Gene must not merge them.
    assert repair_iob2(["B-DNA", "I-protein", "I-protein"]) == (("B-DNA", "B-protein", "I-protein"), 1)
    assert repair_iob2(["O", "I", "I", "B", "I"]) == (("O", "B", "I", "B", "I"), 1)


# --------------------------------------------------------------------------------------------
# TSV / CoNLL files


def test_multi_column_conll_takes_token_first_and_tag_last(tmp_path):
    path = write(tmp_path, "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\nGerman JJ B-NP B-MISC\n\n")
    sentences = read_iob_file(path)
    assert sentences == [
        RawSentence(("EU", "rejects"), ("B-ORG", "O"), 3, True),
        RawSentence(("German",), ("B-MISC",), 6),
    ]


def test_tsv_round_trip_of_hand_made_file(tmp_path):
    text = "-DOCSTART-\tO\n\n" + TSV + "-DOCSTART-\tO\n\nTNF-α\tB-protein\nβ\tI-protein\n\n"
    path = write(tmp_path, text)
    raw = read_iob_file(path)
    assert [sentence.document_start for sentence in raw] == [True, False, True]
    copy = tmp_path / "copy.tsv"
    write_iob_file(raw, copy)
    assert copy.read_text(encoding="utf-8") == text


def test_sentences_round_trip_through_tsv(tmp_path):
    sentences = load_corpus("ncbi-disease", write(tmp_path, TSV))
    copy = tmp_path / "copy.tsv"
    write_iob_file(sentences, copy)
    assert copy.read_text(encoding="utf-8") == TSV
    assert load_corpus("ncbi-disease", copy) == sentences


@pytest.mark.parametrize(
    "text, line, message",
    [
        ("", None, "holds no sentences"),
        ("\n\n-DOCSTART-\tO\n\n", None, "holds no sentences"),
        ("a\tO\nb\tO\tX\n\n", 2, "3 columns where the file has 2"),
        ("a\tO\nb\n\n", 2, "expected a token and a tag"),
        ("a\tO\n\nb\tE-Disease\n\n", 3, "unknown tag 'E-Disease'"),
        ("a\tB\n", 1, "unknown tag 'B'"),
        ("a\tO\n\tO\n", 2, "empty token"),
    ],
)
def test_malformed_tsv_names_the_line(tmp_path, text, line, message):
    path = write(tmp_path, text)
    where = f"{path}:{line}:" if line else f"{path}:"
    with pytest.raises(CorpusFormatError) as error:
        read_iob_file(path)
    assert str(error.value).startswith(where)
    assert message in str(error.value)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CorpusFormatError, match="no such corpus file"):
        load_corpus("ncbi-disease", tmp_path / "absent.tsv")


# --------------------------------------------------------------------------------------------
# Command-line arguments


def test_parse_corpus_argument(tmp_path):
    argument = parse_corpus_argument(f"NCBI-disease={tmp_path}")
    assert (argument.name, argument.path, argument.entity_type) == ("ncbi-disease", tmp_path, None)
    argument = parse_corpus_argument("my-corpus:Chemical=data/a=b.tsv")  # '=' in a path is kept
    assert (argument.name, argument.path, argument.entity_type) == ("my-corpus", Path("data/a=b.tsv"), "Chemical")
    assert parse_corpus_argument("s800:Species=x").entity_type == "Species"


@pytest.mark.parametrize(
    "argument, message",
    [
        ("ncbi-disease", "expected name=path"),
        ("=corpus.tsv", "name before '=' is empty"),
        ("ncbi-disease=", "path after '=' is empty"),
        ("mine=corpus.tsv", "not registered"),
        ("mine:=corpus.tsv", "entity type after ':' is empty"),
        ("ncbi-disease:Gene=corpus.tsv", "registered as Disease"),
    ],
)
def test_parse_corpus_argument_errors(argument, message):
    with pytest.raises(CorpusArgumentError, match=message):
        parse_corpus_argument(argument)


def test_corpus_argument_loads_a_split_from_a_folder(tmp_path):
    write(tmp_path, TSV, "test.tsv")
    argument = parse_corpus_argument(f"ncbi-disease={tmp_path}")
    assert len(argument.load("test")) == 2
    assert resolve_split_path(tmp_path / "test.tsv", "devel") == tmp_path / "test.tsv"
    with pytest.raises(CorpusFormatError, match=r"no devel / validation / dev split file .* holds test\.tsv"):
        argument.load("devel")


@pytest.mark.parametrize("asked", ["validation", "devel", "dev"])
def test_validation_devel_and_dev_name_one_split(tmp_path, asked):
    write(tmp_path, TSV, "devel.tsv")
    assert len(parse_corpus_argument(f"ncbi-disease={tmp_path}").load(asked)) == 2
    write(tmp_path, TSV, "validation.tsv")
    expected = "devel.tsv" if asked == "devel" else "validation.tsv"
    assert resolve_split_path(tmp_path, asked).name == expected  # the name asked for wins


# --------------------------------------------------------------------------------------------
# PubTator

PUBTATOR = """\
10001|t|Cisplatin-induced nephrotoxicity and acute kidney injury
10001|a|Cisplatin (CDDP) is widely used. Patients with St. Louis encephalitis were excluded. Rats received 3.5 mg of dexamethasone-21-phosphate daily! Renal failure was rare.
10001\t0\t9\tCisplatin\tChemical\tD002945
10001\t18\t32\tnephrotoxicity\tDisease\tD007674
10001\t37\t56\tacute kidney injury\tDisease\tD058186
10001\t57\t66\tCisplatin\tChemical\tD002945
10001\t68\t72\tCDDP\tChemical\tD002945
10001\t104\t126\tSt. Louis encephalitis\tDisease\tD004677
10001\t166\t192\tdexamethasone-21-phosphate\tChemical\tC012345
10001\t200\t213\tRenal failure\tDisease\tD051437
10001\tCID\tD002945\tD007674

10002|t|α-Synuclein aggregation in HIV1-infected Homo sapiens
10002|a|TNF-α and β-catenin levels rose in mice.
10002\t0\t11\tα-Synuclein\tGene\t6622
10002\t27\t30\tHIV\tSpecies\t11676
10002\t41\t53\tHomo sapiens\tSpecies\t9606
10002\t54\t59\tTNF-α\tGene\t7124
10002\t64\t73\tβ-catenin\tGene\t1499
10002\t89\t93\tmice\tSpecies

"""


@pytest.fixture
def pubtator_path(tmp_path) -> Path:
    return write(tmp_path, PUBTATOR, "corpus.pubtator")


def test_read_pubtator(pubtator_path):
    first, second = read_pubtator(pubtator_path)
    assert first.document_id == "10001" and second.document_id == "10002"
    assert first.text.startswith("Cisplatin-induced nephrotoxicity and acute kidney injury Cisplatin (CDDP)")
    assert len(first.annotations) == 8 and first.relations == (("10001", "CID", "D002945", "D007674"),)
    title_end = first.annotations[2]
    assert (title_end.start, title_end.end, title_end.end == len(first.title)) == (37, 56, True)
    assert second.annotations[-1].identifier is None
    assert all(second.text[a.start : a.end] == a.mention for a in second.annotations)


def test_document_sentences_are_those_annotation_sees(pubtator_path, caplog):
    first, second = read_pubtator(pubtator_path)
    sentences = document_to_sentences(first)
    assert [" ".join(s.tokens) for s in sentences] == [
        "Cisplatin - induced nephrotoxicity and acute kidney injury",
        "Cisplatin ( CDDP ) is widely used .",
        "Patients with St . Louis encephalitis were excluded .",  # no break after "St." inside the mention
        "Rats received 3 . 5 mg of dexamethasone - 21 - phosphate daily !",
        "Renal failure was rare .",
    ]
    for sentence in sentences:
        assert all(first.text[start:end] == token for token, (start, end) in zip(sentence.tokens, sentence.spans))
    for document in (first, second):  # the annotator's own sentences and words, whatever the gold mentions
        seen = [[(start + s, start + e) for _, s, e in tokenize_with_offsets(document.text[start:end])]
                for start, end in document_sentences(document.document())]
        assert [list(sentence.spans) for sentence in document_to_sentences(document)] == seen
    assert sentences[0].tags[-3:] == ("B-Disease", "I-Disease", "I-Disease")  # mention at the end of the title

    with caplog.at_level(logging.WARNING):
        [title, abstract] = document_to_sentences(second)
    assert title == DocumentSentence(  # "HIV" is a mention inside the word "HIV1": the whole word is tagged
        "10002",
        ("α", "-", "Synuclein", "aggregation", "in", "HIV1", "-", "infected", "Homo", "sapiens"),
        ((0, 1), (1, 2), (2, 11), (12, 23), (24, 26), (27, 31), (31, 32), (32, 40), (41, 45), (46, 53)),
        ("B-Gene", "I-Gene", "I-Gene", "O", "O", "B-Species", "O", "O", "B-Species", "I-Species"),
    )
    assert "document 10002: mentions that annotation cannot give as written: 1 widened to whole words" in caplog.text
    assert abstract.tokens[:3] == ("TNF", "-", "α")


def test_load_corpus_reads_pubtator_with_the_registry_mapping(pubtator_path):
    one_document = pubtator_path.read_text(encoding="utf-8").split("\n\n")[0] + "\n\n"
    path = pubtator_path.with_name("cdr.pubtator")
    path.write_text(one_document, encoding="utf-8")
    sentences = load_corpus("bc5cdr-chem", path)
    assert [sum(tag == "B" for tag in s.tags) for s in sentences] == [1, 2, 0, 1, 0]
    assert {s.entity_type for s in sentences} == {"Chemical"}
    with pytest.raises(CorpusFormatError, match=r"cdr\.pubtator:1: type 'Chemical'"):
        load_corpus("linnaeus", path)
    only_genes = {"Gene": "Gene", "Species": None, "Chemical": None, "Disease": None}
    genes = load_corpus("genes", pubtator_path, "Gene", only_genes)
    assert sum(tag == "B" for s in genes for tag in s.tags) == 3


@pytest.mark.parametrize(
    "text, line, message",
    [
        ("", None, "no PubTator documents"),
        ("1|t|A title\n1|a|Text\n1\t0\t3\tB t\tDisease\n", 3, "mention 'B t' differs from the text at 0-3: 'A t'"),
        ("1|t|A title\n1|a|Text\n1\t0\t99\tA\tDisease\n", 3, "outside the document text"),
        ("1|t|A title\n1|a|Text\n2\t0\t1\tA\tDisease\n", 3, "line of document '2' inside document '1'"),
        ("1|t|A title\n1|a|Text\n1\t0\t1\tA\n", 3, "expected a mention"),
        ("1|t|A title\n1|a|Text\n\n1\t0\t1\tA\tDisease\n", 4, "expected a title line"),
        ("1|a|Text\n", 1, "abstract line without the title line"),
    ],
)
def test_malformed_pubtator_names_the_line(tmp_path, text, line, message):
    path = write(tmp_path, text, "bad.pubtator")
    with pytest.raises(CorpusFormatError) as error:
        read_pubtator(path)
    assert str(error.value).startswith(f"{path}:{line}:" if line else f"{path}:")
    assert message in str(error.value)


def test_pubtator_abstract_continued_without_its_prefix_names_file_and_line(tmp_path):
    path = write(tmp_path, "1|t|A title\n1|a|Text of the abstract,\ncontinued on a line of its own.\n", "wrapped.pubtator")
    with pytest.raises(CorpusFormatError, match=rf"^{re.escape(str(path))}:3: .*without the 'ID\|a\|' prefix"):
        read_pubtator(path)


def test_non_utf8_corpus_files_name_file_and_line(tmp_path):
    utf16 = tmp_path / "utf16.tsv"
    utf16.write_text("Cisplatin\tB-Chemical\n.\tO\n", encoding="utf-16")
    with pytest.raises(CorpusFormatError, match=rf"^{re.escape(str(utf16))}:1: not UTF-8 text .*UTF-16"):
        load_corpus("bc5cdr-chem", utf16)
    binary = tmp_path / "binary.tsv"
    binary.write_bytes(b"A\tO\nB\tO\n\x89PNG\x00\xff\tO\n")
    with pytest.raises(CorpusFormatError, match=rf"^{re.escape(str(binary))}:3: not UTF-8 text"):
        read_iob_file(binary)
    latin1 = tmp_path / "latin1.pubtator"
    latin1.write_bytes(b"1|t|Title\n1|a|Caf\xe9 au lait.\n")
    with pytest.raises(CorpusFormatError, match=rf"^{re.escape(str(latin1))}:2: not UTF-8 text"):
        load_corpus("ncbi-disease", latin1)
    with pytest.raises(CorpusFormatError, match=rf"^{re.escape(str(latin1))}:2: not UTF-8 text"):
        read_pubtator(latin1)


def test_a_corpus_format_is_one_registration(tmp_path, monkeypatch):
    """The seam for a new corpus format: register a reader of typed IOB2 sentences; load_corpus uses it."""
    import json

    from vaner import corpora

    def read_jsonl_corpus(path):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            record = json.loads(line)
            yield record["tokens"], record["tags"], number, 0

    monkeypatch.setattr(corpora, "CORPUS_FORMATS", dict(corpora.CORPUS_FORMATS))
    corpora.register_corpus_format(
        corpora.CorpusFormat("jsonl", lambda path: path.suffix == ".jsonl", read_jsonl_corpus), first=True)
    assert list(corpora.CORPUS_FORMATS)[0] == "jsonl"
    path = tmp_path / "corpus.jsonl"
    path.write_text(json.dumps({"tokens": ["BRCA1", "mice"], "tags": ["I-Gene", "O"]}) + "\n", encoding="utf-8")
    (sentence,) = load_corpus("bc2gm", path)
    assert sentence.tags == ("B", "O") and sentence.entity_type == "Gene" and sentence.location == f"{path}:1"
