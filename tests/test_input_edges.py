"""The input side at its edges (issue 32): one XML parser policy for every XML reader."""

from test_medline import DOCTYPE, STRUCTURED, pubmed_xml

from vaner.formats import detect_input_format, read_documents

BIOC_WITH_ENTITY = """<?xml version='1.0' encoding='utf-8'?>
<!DOCTYPE collection [<!ENTITY e "EXPANDED">]>
<collection><source>s</source><date>d</date><key>k</key>
<document><id>d1</id><passage><offset>0</offset><text>BRCA1 &e; mice.</text></passage></document>
<document><id>d2</id><passage><offset>0</offset><text>Ovarian cancer &amp; &#945;.</text></passage></document>
</collection>
"""


def test_no_xml_reader_expands_an_entity(tmp_path):
    """Item 10: the BioC path parsed with lxml's defaults, which expand internal entities; under the one policy
    nothing is expanded: the PubMed reader keeps the reference as text, a BioC document holding one is an error
    of its own."""
    bioc_file = tmp_path / "collection.xml"
    bioc_file.write_text(BIOC_WITH_ENTITY, encoding="utf-8")
    first, second = read_documents([bioc_file])
    assert first.error is not None and "Entity 'e' not defined" in first.error and "EXPANDED" not in first.text
    assert (second.document_id, second.text, second.error) == ("d2", "Ovarian cancer & \u03b1.", None)

    pubmed_file = tmp_path / "pubmed.xml"
    pubmed_file.write_text(pubmed_xml(STRUCTURED.replace("BRCA1</i>", "BRCA1</i> &e;")).replace(
        DOCTYPE, '<!DOCTYPE PubmedArticleSet [<!ENTITY e "EXPANDED">]>'), encoding="utf-8")
    (article,) = read_documents([pubmed_file])
    assert "BRCA1 &e; mutant" in article.text and "EXPANDED" not in article.text


def test_a_long_doctype_does_not_hide_pubmed_xml(tmp_path, caplog):
    """Item 10: a DOCTYPE over 8 KB pushed <PubmedArticleSet> out of the head that auto detection reads, and the
    file was read as BioC; the DOCTYPE names the root. Where the head says nothing (a long comment), the BioC
    reader's error names the format to pass."""
    subset = "".join(f'<!ENTITY e{n} "entity number {n}">\n' for n in range(400))
    long_doctype = tmp_path / "pubmed.xml"
    long_doctype.write_text(pubmed_xml(STRUCTURED).replace(DOCTYPE, f"<!DOCTYPE PubmedArticleSet [\n{subset}]>"),
                            encoding="utf-8")
    assert len(subset) > 8192 and detect_input_format(long_doctype) == "pubmed_xml"
    assert [d.document_id for d in read_documents([long_doctype])] == ["31000001"]

    long_comment = tmp_path / "commented.xml"
    long_comment.write_text(pubmed_xml(STRUCTURED).replace(DOCTYPE, f"<!--{'x' * 9000}-->"), encoding="utf-8")
    assert detect_input_format(long_comment) == "bioc_xml"
    (document,) = read_documents([long_comment])
    assert document.error.endswith("its root element is <PubmedArticleSet>, not <collection>: pass --input_format "
                                   "pubmed_xml)")
