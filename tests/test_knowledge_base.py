"""The DBR knowledge base: type normalisation, name<TAB>type files, UMLS RRF files, corpus mentions."""

import re
from pathlib import Path

import pytest

from vaner.corpora import CorpusFormatError, Sentence
from vaner.knowledge_base import (
    KnowledgeBase,
    KnowledgeBaseEntry,
    KnowledgeBaseFormatError,
    build_knowledge_base,
    find_umls_files,
    mentions_of_iob_file,
    mentions_of_sentences,
    normalize_entity_type,
    read_name_type_file,
    read_umls,
)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("Gene/Protein", "Gene"),
        ("Gene or Genome", "Gene"),
        ("Gene_or_gene_product", "Gene"),
        ("Protein", "Gene"),
        ("GENE", "Gene"),
        ("Disease or Syndrome", "Disease"),
        ("Neoplastic Process", "Disease"),
        ("Pharmacologic Substance", "Chemical"),
        ("Clinical Drug", "Chemical"),
        ("Simple_chemical", "Chemical"),
        ("Organism", "Species"),
        ("Mammal", "Species"),
        ("Anatomy", "Anatomy"),
        ("  Cell Function ", "Cell Function"),
    ],
)
def test_type_names_are_normalised_to_vaner_types(raw, expected):
    assert normalize_entity_type(raw) == expected


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_name_type_file_with_header_normalises_and_deduplicates(tmp_path):
    path = write(
        tmp_path / "kb.tsv",
        "name\ttype\n"
        "BRCA1\tGene/Protein\n"
        "brca1\tGene or Genome\n"  # same name and (normalised) type, other case: dropped
        "Aspirin\tPharmacologic Substance\n"
        "\n"
        "aspirin\tClinical Drug\n"
        "heart\tAnatomy\n"
        "Breast Cancer\tDisease or Syndrome\n"
        "BRCA1\tDisease\n"  # same name, other type: kept
        "1237\tGene\n",  # no letter: an identifier, left out
    )
    entities = read_name_type_file(path)
    assert entities[0] == KnowledgeBaseEntry("BRCA1", "Gene")
    knowledge_base = KnowledgeBase(entities)
    assert list(knowledge_base) == [
        KnowledgeBaseEntry("BRCA1", "Gene"),
        KnowledgeBaseEntry("Aspirin", "Chemical"),
        KnowledgeBaseEntry("heart", "Anatomy"),
        KnowledgeBaseEntry("Breast Cancer", "Disease"),
        KnowledgeBaseEntry("BRCA1", "Disease"),
    ]
    assert knowledge_base.counts_by_type() == {"Gene": 1, "Chemical": 1, "Anatomy": 1, "Disease": 2}
    assert knowledge_base.without_letters == 1
    assert knowledge_base.has("brca1", "Gene") and not knowledge_base.has("brca1", "Chemical")
    assert knowledge_base.summary_lines()[0] == "Disease: 2"
    assert "other types (negatives): 1" in knowledge_base.summary_lines()[-1]


def test_name_type_file_without_header(tmp_path):
    path = write(tmp_path / "kb.tsv", "naloxone\tChemical\nmice\tSpecies\n")
    assert read_name_type_file(path) == [KnowledgeBaseEntry("naloxone", "Chemical"), KnowledgeBaseEntry("mice", "Species")]


@pytest.mark.parametrize(
    "row, message",
    [
        ("\tDisease\n", "empty name"),
        ("aspirin\t\n", "missing type"),
        ("aspirin\n", "expected name<TAB>type"),
        ("aspirin\tChemical\textra\n", "expected name<TAB>type"),
    ],
)
def test_malformed_rows_name_file_and_line(tmp_path, row, message):
    path = write(tmp_path / "bad.tsv", "name\ttype\nBRCA1\tGene\n" + row)
    with pytest.raises(KnowledgeBaseFormatError, match=message) as error:
        read_name_type_file(path)
    assert f"{path}:3" in str(error.value)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(KnowledgeBaseFormatError, match="no such knowledge-base file"):
        read_name_type_file(tmp_path / "absent.tsv")


def rrf(rows: list[list[str]]) -> str:
    return "".join("|".join(row) + "|\n" for row in rows)


def mrconso_row(cui, language, name, suppress="N"):
    # CUI|LAT|TS|LUI|STT|SUI|ISPREF|AUI|SAUI|SCUI|SDUI|SAB|TTY|CODE|STR|SRL|SUPPRESS|CVF
    return [cui, language, "P", "L1", "PF", "S1", "Y", "A1", "", "", "", "MSH", "PT", "D1", name, "0", suppress, ""]


@pytest.fixture
def umls_dir(tmp_path) -> Path:
    """A hand-written UMLS subset: five concepts, names in two languages, suppressed names."""
    meta = tmp_path / "2024AA" / "META"
    meta.mkdir(parents=True)
    write(
        meta / "MRCONSO.RRF",
        rrf(
            [
                mrconso_row("C0006142", "ENG", "Breast Cancer"),
                mrconso_row("C0006142", "ENG", "Malignant neoplasm of breast"),
                mrconso_row("C0006142", "FRE", "Cancer du sein"),  # not English
                mrconso_row("C0006142", "ENG", "CA - Carcinoma of breast", suppress="O"),  # obsolete
                mrconso_row("C0004057", "ENG", "Aspirin"),
                mrconso_row("C0004057", "ENG", "acetylsalicylic acid", suppress="E"),  # suppressed by editors
                mrconso_row("C0376571", "ENG", "BRCA1 gene"),
                mrconso_row("C0025914", "ENG", "Mus musculus"),
                mrconso_row("C0018787", "ENG", "Heart"),
                mrconso_row("C9999999", "ENG", "concept without semantic type"),
            ]
        ),
    )
    write(
        meta / "MRSTY.RRF",
        rrf(
            [
                # CUI|TUI|STN|STY|ATUI|CVF
                ["C0006142", "T191", "B2.2.1.2.1.2", "Neoplastic Process", "AT1", "256"],
                ["C0004057", "T109", "A1.4.1.2.1", "Organic Chemical", "AT2", "256"],
                ["C0004057", "T121", "A1.4.1.1.1", "Pharmacologic Substance", "AT3", "256"],
                ["C0376571", "T028", "A1.2.3.5", "Gene or Genome", "AT4", "256"],
                ["C0025914", "T015", "A1.1.3.1.1.4", "Mammal", "AT5", "256"],
                ["C0018787", "T023", "A1.2.3.1", "Body Part, Organ, or Organ Component", "AT6", "256"],
            ]
        ),
    )
    return tmp_path / "2024AA"


def test_umls_rrf_english_non_suppressed_names_with_mapped_types(umls_dir):
    mrconso, mrsty = find_umls_files(umls_dir)
    assert mrconso.parent.name == "META"
    entities = list(read_umls(mrconso, mrsty))
    assert entities == [
        KnowledgeBaseEntry("Breast Cancer", "Disease"),
        KnowledgeBaseEntry("Malignant neoplasm of breast", "Disease"),
        KnowledgeBaseEntry("Aspirin", "Chemical"),  # two chemical semantic types give one entry
        KnowledgeBaseEntry("BRCA1 gene", "Gene"),
        KnowledgeBaseEntry("Mus musculus", "Species"),
        KnowledgeBaseEntry("Heart", "Body Part, Organ, or Organ Component"),  # kept as a negative type
    ]
    assert KnowledgeBaseEntry("Heart", "Body Part, Organ, or Organ Component") not in list(read_umls(mrconso, mrsty, keep_other_types=False))


def test_umls_malformed_line_is_named(umls_dir):
    mrsty = umls_dir / "META" / "MRSTY.RRF"
    mrsty.write_text(mrsty.read_text() + "C0000001|T047\n")
    with pytest.raises(KnowledgeBaseFormatError, match=r"MRSTY.RRF:7: expected at least 4"):
        list(read_umls(umls_dir / "META" / "MRCONSO.RRF", mrsty))
    with pytest.raises(KnowledgeBaseFormatError, match="no MRCONSO.RRF"):
        find_umls_files(umls_dir / "META" / "absent")


def test_typed_mentions_of_kb_corpora(tmp_path):
    path = write(
        tmp_path / "train.tsv",
        "Expression\tO\nof\tO\nBRCA1\tB-Gene_or_gene_product\nprotein\tI-Gene_or_gene_product\nin\tO\n"
        "cisplatin\tB-Simple_chemical\n-\tO\ntreated\tO\nmice\tB-Organism\n.\tO\n\n"
        "E\tB-Organism\n.\tI-Organism\ncoli\tI-Organism\n",
    )
    assert mentions_of_iob_file(path) == [
        KnowledgeBaseEntry("BRCA1 protein", "Gene"),
        KnowledgeBaseEntry("cisplatin", "Chemical"),
        KnowledgeBaseEntry("mice", "Species"),
        KnowledgeBaseEntry("E . coli", "Species"),
    ]
    untyped = write(tmp_path / "untyped.tsv", "BRCA1\tB\n")
    with pytest.raises(CorpusFormatError):
        mentions_of_iob_file(untyped)


def test_corpus_mentions_take_the_sentence_type():
    sentence = Sentence(("Familial", "breast", "cancer", "and", "APC", "."), ("B", "I", "I", "O", "B", "O"), "Disease", "ncbi-disease")
    assert mentions_of_sentences([sentence]) == [KnowledgeBaseEntry("Familial breast cancer", "Disease"), KnowledgeBaseEntry("APC", "Disease")]


def test_build_knowledge_base_orders_sources_and_hash_follows_content(tmp_path, umls_dir):
    tsv = write(tmp_path / "kb.tsv", "name\ttype\nbreast cancer\tDisease\nnaloxone\tChemical\n")
    sentence = Sentence(("Breast", "cancer", "."), ("B", "I", "O"), "Disease", "ncbi-disease")
    knowledge_base = build_knowledge_base([tsv], [umls_dir], corpus_sentences=[sentence])
    # The corpus spelling comes first and wins over the file's and UMLS's.
    assert knowledge_base[0] == KnowledgeBaseEntry("Breast cancer", "Disease")
    assert knowledge_base.names.count("Breast Cancer") == 0
    assert knowledge_base.sources["corpus mentions"] == 1
    assert len(knowledge_base) == 1 + 1 + 6 - 1
    other = build_knowledge_base([tsv], [umls_dir])
    assert other.content_hash() != knowledge_base.content_hash()
    assert build_knowledge_base([tsv], [umls_dir]).content_hash() == other.content_hash()
    without_negatives = build_knowledge_base([tsv], [umls_dir], keep_other_types=False)
    assert set(without_negatives.counts_by_type()) == {"Disease", "Chemical", "Gene", "Species"}


def test_umls_sample_of_shared(shared_dir):
    path = shared_dir / "kb-sources" / "umls-sample.tsv"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    knowledge_base = KnowledgeBase(read_name_type_file(path))
    counts = knowledge_base.counts_by_type()
    assert len(knowledge_base) > 60000
    # Gene/Protein + Gene + Gene or Genome, Disease + Disease or Syndrome + ...: all merged.
    assert counts["Gene"] > 20000 and counts["Disease"] > 10000
    assert "Gene/Protein" not in counts and "Disease or Syndrome" not in counts
    assert counts["Anatomy"] > 1000


def test_names_the_corpora_of_their_type_leave_unannotated_are_dropped():
    from vaner.knowledge_base import annotation_consistency, drop_unannotated_names

    knowledge_base = KnowledgeBase(
        [KnowledgeBaseEntry("complex", "Gene"), KnowledgeBaseEntry("BRCA1", "Gene"), KnowledgeBaseEntry("complex", "Disease"), KnowledgeBaseEntry("IL-2", "Gene")]
    )
    gene_sentences = [
        Sentence(("The", "Complex", "binds", "BRCA1", "."), ("O", "O", "O", "B", "O"), "Gene", "bc2gm"),
        Sentence(("A", "complex", "of", "IL", "-", "2", "."), ("O", "O", "O", "B", "I", "I", "O"), "Gene", "bc2gm"),
        # Inside a longer mention: no verdict on "BRCA1" or "complex".
        Sentence(("the", "BRCA1", "complex", "gene"), ("O", "B", "I", "I"), "Gene", "bc2gm"),
    ] * 3
    counts = annotation_consistency(knowledge_base, gene_sentences)
    # Repeated sentences count once; "Complex" matches "complex" in any case; no Disease corpus: not judged.
    assert (counts[0].occurrences, counts[0].annotated) == (2, 0)
    assert (counts[1].occurrences, counts[1].annotated) == (1, 1)
    assert (counts[3].occurrences, counts[3].annotated) == (1, 1)  # "IL-2" tokenized as "IL - 2"
    assert 2 not in counts
    kept, dropped = drop_unannotated_names(knowledge_base, gene_sentences, min_occurrences=2, min_annotated_share=0.1)
    assert dropped == [KnowledgeBaseEntry("complex", "Gene")]
    assert list(kept) == [KnowledgeBaseEntry("BRCA1", "Gene"), KnowledgeBaseEntry("complex", "Disease"), KnowledgeBaseEntry("IL-2", "Gene")]
    kept, dropped = drop_unannotated_names(knowledge_base, gene_sentences, min_occurrences=3)
    assert dropped == [] and len(kept) == 4


def test_non_utf8_knowledge_base_files_name_file_and_line(tmp_path, umls_dir):
    utf16 = tmp_path / "names.tsv"
    utf16.write_text("name\ttype\naspirin\tChemical\n", encoding="utf-16")
    with pytest.raises(KnowledgeBaseFormatError, match=rf"^{re.escape(str(utf16))}:1: not UTF-8 text .*UTF-16"):
        read_name_type_file(utf16)
    mrsty = umls_dir / "META" / "MRSTY.RRF"
    mrsty.write_bytes(mrsty.read_bytes().split(b"\n", 1)[0] + b"\n\x00\xff\xfe binary\n")
    with pytest.raises(KnowledgeBaseFormatError, match=rf"^{re.escape(str(mrsty))}:2: not UTF-8 text"):
        list(read_umls(umls_dir / "META" / "MRCONSO.RRF", mrsty))


def test_a_knowledge_base_source_is_one_registration(tmp_path, monkeypatch):
    """The seam for a new source: register a reader of entities; build_knowledge_base and --kb_source reach it."""
    from vaner import knowledge_base

    def read_comma_file(path, keep_other_types):
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            name, entity_type = line.rsplit(",", 1)
            yield KnowledgeBaseEntry(name, knowledge_base.normalize_entity_type(entity_type))

    monkeypatch.setitem(knowledge_base.KB_SOURCES, "csv", knowledge_base.KnowledgeBaseSource(
        "csv", read_comma_file, "name,type lines"))
    path = tmp_path / "names.csv"
    path.write_text("cisplatin,Pharmacologic Substance\nBRCA1,Gene/Protein\n", encoding="utf-8")
    built = build_knowledge_base(sources=[("csv", path)])
    assert sorted(zip(built.names, built.entity_types)) == [("BRCA1", "Gene"), ("cisplatin", "Chemical")]
    with pytest.raises(KnowledgeBaseFormatError, match="unknown knowledge-base source 'tsv'"):
        build_knowledge_base(sources=[("tsv", path)])
