"""PubMed XML (vaner/medline.py): baseline and update files as documents (id = PMID, title and abstract passages
with exact offsets), gzip and auto detection beside BioC XML, errors as error documents, the command line, --ray."""

import gzip
import io
import json
import logging
import sys
from pathlib import Path

import pytest

import predict_vaner
import vaner.medline as medline
from vaner.corpora import read_pubtator
from vaner.formats import INPUT_FORMATS, detect_input_format, read_documents
from vaner.medline import read_medline

DOCTYPE = ('<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2025//EN" '
           '"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">')

STRUCTURED = """<PubmedArticle>
    <MedlineCitation Status="MEDLINE" Owner="NLM" IndexingMethod="Automated">
        <PMID Version="1">31000001</PMID>
        <DateCompleted><Year>2020</Year><Month>03</Month><Day>02</Day></DateCompleted>
        <Article PubModel="Print-Electronic">
            <Journal>
                <ISSN IssnType="Electronic">1471-2407</ISSN>
                <JournalIssue CitedMedium="Internet"><Volume>19</Volume><Issue>1</Issue><PubDate><Year>2019</Year><Month>Aug</Month></PubDate></JournalIssue>
                <Title>BMC cancer</Title>
                <ISOAbbreviation>BMC Cancer</ISOAbbreviation>
            </Journal>
            <ArticleTitle>Cisplatin-induced nephrotoxicity in <i>BRCA1</i> mutant mice.</ArticleTitle>
            <Pagination><StartPage>812</StartPage><MedlinePgn>812</MedlinePgn></Pagination>
            <ELocationID EIdType="doi" ValidYN="Y">10.1186/s12885-019-0000-0</ELocationID>
            <Abstract>
                <AbstractText Label="BACKGROUND" NlmCategory="BACKGROUND">Cisplatin damages the kidney of <i>Mus musculus</i> &amp; rats.</AbstractText>
                <AbstractText Label="METHODS" NlmCategory="METHODS">TNF-&#945; rose to 10<sup>-3</sup> M in CD4<sup>+</sup> cells.</AbstractText>
                <AbstractText Label="CONCLUSIONS" NlmCategory="CONCLUSIONS">The risk of ovarian cancer rose.</AbstractText>
                <CopyrightInformation>\u00a9 2019 The Authors.</CopyrightInformation>
            </Abstract>
            <AuthorList CompleteYN="Y">
                <Author ValidYN="Y"><LastName>Smith</LastName><ForeName>Jane</ForeName><Initials>J</Initials></Author>
            </AuthorList>
            <Language>eng</Language>
            <PublicationTypeList><PublicationType UI="D016428">Journal Article</PublicationType></PublicationTypeList>
            <ArticleDate DateType="Electronic"><Year>2019</Year><Month>08</Month><Day>20</Day></ArticleDate>
        </Article>
        <MedlineJournalInfo><Country>England</Country><MedlineTA>BMC Cancer</MedlineTA><NlmUniqueID>100967800</NlmUniqueID></MedlineJournalInfo>
        <CommentsCorrectionsList>
            <CommentsCorrections RefType="CommentIn"><RefSource>BMC Cancer. 2020;20:1</RefSource><PMID Version="1">32000009</PMID></CommentsCorrections>
        </CommentsCorrectionsList>
        <MeshHeadingList><MeshHeading><DescriptorName UI="D002945" MajorTopicYN="N">Cisplatin</DescriptorName></MeshHeading></MeshHeadingList>
    </MedlineCitation>
    <PubmedData>
        <History><PubMedPubDate PubStatus="received"><Year>2019</Year><Month>1</Month><Day>8</Day></PubMedPubDate></History>
        <PublicationStatus>epublish</PublicationStatus>
        <ArticleIdList><ArticleId IdType="pubmed">31000001</ArticleId><ArticleId IdType="doi">10.1186/s12885-019-0000-0</ArticleId></ArticleIdList>
    </PubmedData>
</PubmedArticle>
"""
TITLE_ONLY = """<PubmedArticle>
    <MedlineCitation Status="MEDLINE" Owner="NLM">
        <PMID Version="1">31000002</PMID>
        <Article PubModel="Print">
            <Journal><Title>Revue medicale</Title></Journal>
            <ArticleTitle>[Naloxone reverses the effect of clonidine].</ArticleTitle>
            <Pagination><MedlinePgn>1-3</MedlinePgn></Pagination>
            <Language>fre</Language>
            <VernacularTitle>La naloxone inverse l'effet de la clonidine.</VernacularTitle>
        </Article>
    </MedlineCitation>
    <PubmedData><PublicationStatus>ppublish</PublicationStatus></PubmedData>
</PubmedArticle>
"""
DELETIONS = """<DeleteCitation>
    <PMID Version="1">30000007</PMID>
    <PMID Version="1">30000008</PMID>
</DeleteCitation>
"""
MATHML = """<PubmedArticle>
    <MedlineCitation Status="PubMed-not-MEDLINE" Owner="NLM">
        <PMID Version="1">31000003</PMID>
        <Article PubModel="Electronic">
            <Journal><Title>Entropy</Title></Journal>
            <ArticleTitle></ArticleTitle>
            <Abstract>
                <AbstractText>A dose of <mml:math xmlns:mml="http://www.w3.org/1998/Math/MathML">
                    <mml:msub><mml:mi>x</mml:mi><mml:mn>2</mml:mn></mml:msub>
                </mml:math> and H<sub>2</sub>O<sub>2</sub> killed <b>E. coli</b>.</AbstractText>
            </Abstract>
            <VernacularTitle>Bakterien und <i>Wasserstoffperoxid</i>.</VernacularTitle>
        </Article>
    </MedlineCitation>
</PubmedArticle>
"""
BOOK = """<PubmedBookArticle>
    <BookDocument>
        <PMID Version="1">20301295</PMID>
        <ArticleIdList><ArticleId IdType="bookaccession">NBK1384</ArticleId></ArticleIdList>
        <Book><Publisher><PublisherName>University of Washington</PublisherName></Publisher><BookTitle book="gene">GeneReviews</BookTitle></Book>
        <ArticleTitle book="gene" part="fxs">FMR1 Disorders</ArticleTitle>
        <Abstract><AbstractText Label="CLINICAL CHARACTERISTICS" NlmCategory="BACKGROUND">Fragile X syndrome.</AbstractText></Abstract>
    </BookDocument>
    <PubmedBookData><PublicationStatus>ppublish</PublicationStatus></PubmedBookData>
</PubmedBookArticle>
"""


def pubmed_xml(*articles: str) -> str:
    return f'<?xml version="1.0" ?>\n{DOCTYPE}\n<PubmedArticleSet>\n{"".join(articles)}</PubmedArticleSet>\n'


SAMPLE = pubmed_xml(STRUCTURED, TITLE_ONLY, DELETIONS)
TITLE = "Cisplatin-induced nephrotoxicity in BRCA1 mutant mice."
ABSTRACT = ("BACKGROUND: Cisplatin damages the kidney of Mus musculus & rats.\n"
            "METHODS: TNF-\u03b1 rose to 10-3 M in CD4+ cells.\n"
            "CONCLUSIONS: The risk of ovarian cancer rose.")
BIOC_XML = """<?xml version='1.0' encoding='utf-8' standalone='yes'?>
<collection><source>PubTator</source><date>2024-01-01</date><key>BioC.key</key>
<document><id>123</id><passage><infon key="type">title</infon><offset>0</offset><text>Ovarian cancer.</text></passage></document>
</collection>
"""


def write(path: Path, text: str) -> Path:
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as handle:
            handle.write(text.encode("utf-8"))
    else:
        path.write_text(text, encoding="utf-8")
    return path


def passages(document):
    return [(passage.kind, document.text[passage.start : passage.end]) for passage in document.passages]


# --------------------------------------------------------------------------------------------
# Reading


def test_articles_become_documents_with_exact_offsets(tmp_path, caplog):
    path = write(tmp_path / "pubmed25n0001.xml", SAMPLE)
    with caplog.at_level(logging.INFO, logger="vaner.medline"):
        documents = list(read_medline(path))
    # the PMID of MedlineCitation, not the one of CommentsCorrections; DeleteCitation is no document
    assert [d.document_id for d in documents] == ["31000001", "31000002"]
    assert all(d.error is None for d in documents)
    structured, title_only = documents
    assert structured.text == f"{TITLE}\n{ABSTRACT}"
    assert passages(structured) == [("title", TITLE), ("abstract", ABSTRACT)]
    assert structured.passages[1].start == len(TITLE) + 1  # PubTator's layout: one character between them
    assert structured.source == f"{path}:{SAMPLE.splitlines().index('<PubmedArticle>') + 1}"
    assert title_only.text == "[Naloxone reverses the effect of clonidine]."  # ArticleTitle first
    assert passages(title_only) == [("title", title_only.text)]
    assert "2 deleted citations (DeleteCitation) skipped" in caplog.text


def test_markup_mathml_vernacular_title_and_book_articles(tmp_path):
    documents = list(read_medline(write(tmp_path / "more.xml", pubmed_xml(MATHML, BOOK))))
    mathml, book = documents
    assert mathml.document_id == "31000003"
    # empty ArticleTitle: the VernacularTitle; pretty-printed MathML: its text, line breaks as spaces
    assert passages(mathml) == [("title", "Bakterien und Wasserstoffperoxid."),
                                ("abstract", "A dose of x2 and H2O2 killed E. coli.")]
    assert book.document_id == "20301295"
    assert passages(book) == [("title", "FMR1 Disorders"), ("abstract", "CLINICAL CHARACTERISTICS: Fragile X syndrome.")]


def test_gzip_and_auto_detection_beside_bioc_xml(tmp_path):
    plain = write(tmp_path / "pubmed25n0001.xml", SAMPLE)
    packed = write(tmp_path / "pubmed25n0002.xml.gz", SAMPLE)
    bioc = write(tmp_path / "collection.xml", BIOC_XML)
    assert "pubmed_xml" in INPUT_FORMATS
    assert detect_input_format(plain) == detect_input_format(packed) == "pubmed_xml"
    assert detect_input_format(bioc) == "bioc_xml"
    from_gz = list(read_documents([packed]))
    assert [(d.document_id, d.text, d.passages) for d in from_gz] == [
        (d.document_id, d.text, d.passages) for d in read_medline(plain)]
    assert [d.document_id for d in read_documents([bioc])] == ["123"]


def test_gzip_on_standard_input(monkeypatch):
    stdin = io.TextIOWrapper(io.BufferedReader(io.BytesIO(gzip.compress(SAMPLE.encode("utf-8")))))
    monkeypatch.setattr(sys, "stdin", stdin)
    documents = list(read_documents(["-"], input_format="pubmed_xml"))
    starts = [number for number, line in enumerate(SAMPLE.splitlines(), start=1) if line == "<PubmedArticle>"]
    assert [(d.document_id, d.source) for d in documents] == [("31000001", f"<stdin>:{starts[0]}"),
                                                              ("31000002", f"<stdin>:{starts[1]}")]


def test_syntax_error_keeps_the_documents_before_it(tmp_path):
    broken = pubmed_xml(STRUCTURED, TITLE_ONLY).replace("</PubmedArticleSet>\n", "<PubmedArticle><MedlineCitation>\n"
                                                        "<PMID>31000004</PMID></Article>\n")
    path = write(tmp_path / "broken.xml", broken)
    line = broken.splitlines().index("<PMID>31000004</PMID></Article>") + 1
    documents = list(read_medline(path))
    assert [d.document_id for d in documents] == ["31000001", "31000002", "broken.xml:3"]
    assert documents[0].text == f"{TITLE}\n{ABSTRACT}"
    error = documents[-1]
    assert error.text == "" and error.source == f"{path}:{line}"
    assert error.error.startswith(f"{path}:{line}: not well-formed PubMed XML (Opening and ending tag mismatch")
    assert error.error.endswith("; 2 article(s) read before it, the rest of the file is not")


@pytest.mark.parametrize("cut", ["in an article", "after an article"])
def test_a_file_that_breaks_off_keeps_its_complete_articles(tmp_path, cut):
    """A cut download: a half article is no document (its text would be cut short), the ones before it are."""
    text = SAMPLE[: SAMPLE.index(DELETIONS)]
    if cut == "in an article":
        text += "<PubmedArticle><MedlineCitation><PMID>31000009</PMID><Article><ArticleTitle>Cut sh"
    path = write(tmp_path / "cut.xml", text)
    documents = list(read_medline(path))
    assert [d.document_id for d in documents] == ["31000001", "31000002", "cut.xml:3"]
    last_line = text.count("\n") + 1
    assert documents[-1].error.startswith(f"{path}:{last_line}: not well-formed PubMed XML (Premature end of data")


def test_cut_gzip_download_is_one_error_document(tmp_path):
    """A cut .xml.gz: its gzip stream is checked whole before any article is trusted, so the file is one error
    record and none of its articles a document (a stream damaged inside a block can decode into wrong text)."""
    path = write(tmp_path / "pubmed25n0003.xml.gz", pubmed_xml(*[STRUCTURED.replace("31000001", str(n))
                                                                 for n in range(1, 201)]))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    documents = list(read_documents([path]))
    assert [(d.document_id, d.text) for d in documents] == [("pubmed25n0003.xml.gz", "")]
    assert documents[0].error == (f"{path}: damaged gzip data (Compressed file ended before the end-of-stream marker "
                                  "was reached); none of its documents is annotated")


def test_article_without_pmid_is_an_error_document(tmp_path):
    text = pubmed_xml(TITLE_ONLY.replace('<PMID Version="1">31000002</PMID>', ""), STRUCTURED)
    path = write(tmp_path / "nopmid.xml", text)
    documents = list(read_medline(path))
    assert [d.document_id for d in documents] == ["nopmid.xml:1", "31000001"]
    line = text.splitlines().index("<PubmedArticle>") + 1
    assert documents[0].source == f"{path}:{line}"
    assert documents[0].error == f"{path}:{line}: article 1 (PubmedArticle) has no PMID; not annotated"


def test_other_xml_read_as_pubmed_is_an_error_document(tmp_path):
    path = write(tmp_path / "collection.xml", BIOC_XML)
    (document,) = read_documents([path], input_format="pubmed_xml")
    assert "root element is <collection>, not <PubmedArticleSet>: not PubMed XML" in document.error


def test_the_tree_does_not_grow(tmp_path, monkeypatch):
    """Flat memory: every handled article and the siblings before it are freed (a baseline file is ~30,000)."""
    sizes = []
    release = medline._release

    def watched(element):
        release(element)
        sizes.append(len(element.getparent()) + len(element))

    monkeypatch.setattr(medline, "_release", watched)
    article = TITLE_ONLY.replace("31000002", "{}")
    path = write(tmp_path / "many.xml.gz", pubmed_xml(*[article.format(n) for n in range(1, 3001)]))
    assert sum(1 for _ in read_medline(path)) == 3000
    assert len(sizes) == 3000 and max(sizes) < 300  # what one read-ahead chunk holds, not the file


# --------------------------------------------------------------------------------------------
# The command line


def run(arguments):
    return predict_vaner.main([*map(str, arguments), "--no_progress", "--dtype", "float32", "--threads", "1",
                               "--entity_types", "Disease", "Chemical"])


def test_command_line_ids_are_pmids_and_offsets_index_the_text(tiny_vaner_dir, tmp_path):
    packed = write(tmp_path / "pubmed25n0001.xml.gz", SAMPLE)
    out = tmp_path / "out.jsonl"
    assert run(["--model_name_or_path", tiny_vaner_dir, "--input", packed, "--output", out, "--include_text"]) == 0
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in records] == ["31000001", "31000002"]
    assert records[0]["text"] == f"{TITLE}\n{ABSTRACT}"
    for record in records:
        for entity in record["entities"]:
            assert record["text"][entity["start"] : entity["end"]] == entity["text"]
    assert sum(len(r["entities"]) for r in records) > 0

    # PubTator output: title and abstract lines, mentions checked against title + " " + abstract
    pubtator = tmp_path / "out.pubtator"
    assert run(["--model_name_or_path", tiny_vaner_dir, "--input", packed, "--input_format", "pubmed_xml",
                "--output", pubtator]) == 0
    documents = {d.document_id: d for d in read_pubtator(pubtator)}
    assert documents["31000001"].title == TITLE and documents["31000001"].abstract == ABSTRACT.replace("\n", " ")
    assert [(a.start, a.end) for a in documents["31000001"].annotations] == [
        (e["start"], e["end"]) for e in records[0]["entities"]]

    # a broken file: the documents before the error, an error record, exit status 3
    broken = write(tmp_path / "broken.xml", SAMPLE[: SAMPLE.index(TITLE_ONLY)] + "<PubmedArticle><oops>")
    out = tmp_path / "broken.jsonl"
    assert run(["--model_name_or_path", tiny_vaner_dir, "--input", broken, "--output", out]) == 3
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in records] == ["31000001", "broken.xml:2"]
    assert "not well-formed PubMed XML (Premature end of data" in records[1]["error"]
    assert records[1]["error"].endswith("; 1 article(s) read before it, the rest of the file is not")


def test_ray_annotates_a_folder_of_baseline_files(tiny_vaner_dir, tmp_path):
    ray = pytest.importorskip("ray")
    folder = tmp_path / "baseline"
    folder.mkdir()
    write(folder / "pubmed25n0001.xml.gz", SAMPLE)
    write(folder / "pubmed25n0002.xml.gz", pubmed_xml(MATHML, BOOK))
    single = tmp_path / "single.jsonl"
    assert run(["--model_name_or_path", tiny_vaner_dir, "--input", folder, "--output", single]) == 0

    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
                                           "HF_HUB_OFFLINE": "1"}})
    try:
        out = tmp_path / "out"
        assert run(["--model_name_or_path", tiny_vaner_dir, "--input", folder, "--output", out, "--ray", "auto",
                    "--ray_actors", "2"]) == 0
    finally:
        if started:
            ray.shutdown()
    shards = sorted(path for path in out.iterdir() if path.suffix == ".jsonl")
    assert [shard.name for shard in shards] == ["pubmed25n0001.jsonl", "pubmed25n0002.jsonl"]  # .xml.gz dropped
    records = [json.loads(line) for shard in shards for line in shard.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in records] == ["31000001", "31000002", "31000003", "20301295"]
    assert "".join(shard.read_text(encoding="utf-8") for shard in shards) == single.read_text(encoding="utf-8")
