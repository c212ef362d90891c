"""PubMed's own XML ("pubmed_xml", `.xml` / `.xml.gz` whose head holds `<PubmedArticleSet`): the baseline and
update files (`pubmed25n0001.xml.gz`, about 30,000 citations each) and efetch output, streamed in flat memory by
lxml's pull parser (the parser of `iterparse`, fed by hand), each article freed once read.

Each `PubmedArticle` (and `PubmedBookArticle`) is one `Document`:
- id: the PMID (`MedlineCitation/PMID`, `BookDocument/PMID`), without its version;
- text: the title, a line break, the abstract. The title is `ArticleTitle` (`VernacularTitle` when it is
  empty; a book chapter without one: `BookTitle`); the abstract is the `AbstractText` sections in order, each
  on a line of its own, a labelled section as "LABEL: text" ("BACKGROUND: ..."). Passages: the title (kind
  "title") and the whole abstract (kind "abstract", labels inline). As in PubTator (title + " " + abstract),
  one character parts them, so PubTator output gives back a title line and an abstract line with the same
  offsets. An article without an abstract is its title alone (one passage);
- inline markup (`<i>`, `<sup>`, `<sub>`, `<b>`, MathML) is flattened to its text; a line break inside an
  element (pretty-printed MathML) becomes a space, so that line breaks only part the title and the sections.
  `OtherAbstract` (other languages, plain-language summaries) is not read.

`DeleteCitation` blocks (update files) are not documents: the PMIDs they list are counted in an info line.
An article without a PMID, a syntax error (the documents before it are kept) and a file that breaks off (a
cut download; the article cut short is dropped) become documents with an `error` naming the file, the
article's position and the line. A damaged `.xml.gz` is one error record and none of its articles a document
(vaner.textfiles checks the gzip stream before it is read). Parsing follows vaner.xmlparsing: the DOCTYPE's DTD
is never fetched and no entity is expanded (a reference stays `&name;` text), so it works offline.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

from lxml import etree

from .documents import Document, Passage
from .formats import InputFormat, register_input_format
from .textfiles import READ_ERRORS, input_name, open_binary
from .xmlparsing import pull_parser

logger = logging.getLogger(__name__)

ARTICLE_TAGS = ("PubmedArticle", "PubmedBookArticle")
DELETE_TAG = "DeleteCitation"
ROOT_TAGS = ("PubmedArticleSet", "BookDocumentSet", "PubmedBookArticleSet")
CHUNK_BYTES = 1 << 16  # fed to the parser at a time
# What `claims` looks for in a file's first 8 KB: the root or an article element, or a DOCTYPE naming one (its
# internal subset can push the root out of the 8 KB).
PUBMED_HEAD = re.compile(r"<(?:!DOCTYPE\s+)?(?:PubmedArticleSet|PubmedArticle|PubmedBookArticle|BookDocumentSet|"
                         r"PubmedBookArticleSet)[\s>\[]")
# Whitespace around a line break inside one element.
_LINE_BREAK = re.compile(r"\s*[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]\s*")


def element_text(element) -> str:
    """The text content of an element, markup flattened, line breaks made spaces, ends stripped."""
    if element is None:
        return ""
    return _LINE_BREAK.sub(" ", "".join(element.itertext())).strip()


def article_parts(article) -> tuple[str, str, list[str]]:
    """(PMID, title, abstract sections) of a `PubmedArticle` or `PubmedBookArticle` element."""
    if article.tag == "PubmedBookArticle":
        record = article.find("BookDocument")
        record = article if record is None else record
        titles = [record.find("ArticleTitle"), record.find("VernacularTitle"), record.find("Book/BookTitle")]
    else:
        record = article.find("MedlineCitation")
        record = article if record is None else record
        titles = [record.find("Article/ArticleTitle"), record.find("Article/VernacularTitle")]
    pmid = element_text(record.find("PMID"))
    title = next((text for text in map(element_text, titles) if text), "")
    abstract = record.find("Abstract") if article.tag == "PubmedBookArticle" else record.find("Article/Abstract")
    sections = []
    for section in () if abstract is None else abstract.iterfind("AbstractText"):
        text = element_text(section)
        if not text:
            continue
        label = _LINE_BREAK.sub(" ", section.get("Label") or "").strip()
        sections.append(f"{label}{'' if label.endswith(':') else ':'} {text}" if label else text)
    return pmid, title, sections


def medline_document(document_id: str, title: str, sections: list[str], source: str) -> Document:
    """Title, a line break, the abstract sections one per line; a title passage and an abstract passage."""
    abstract = "\n".join(sections)
    if not title:
        return Document(document_id, abstract, (Passage(0, len(abstract), "abstract"),) if abstract else (), source)
    if not abstract:
        return Document(document_id, title, (Passage(0, len(title), "title"),), source)
    text = f"{title}\n{abstract}"
    return Document(document_id, text, (Passage(0, len(title), "title"), Passage(len(title) + 1, len(text), "abstract")),
                    source)


def _release(element) -> None:
    """Free a handled element and the siblings before it, so that the tree never grows."""
    element.clear(keep_tail=True)
    parent = element.getparent()
    if parent is not None:
        while element.getprevious() is not None:
            del parent[0]


def read_medline(path: str | Path, encoding: str = "utf-8") -> Iterator[Document]:
    """The documents of a PubMed XML file ("-": standard input; gzip is decompressed), streamed. The XML
    declaration gives the encoding (`encoding` is not used)."""
    name = input_name(path)
    file_name = Path(name).name
    state = {"position": 0, "deletions": 0, "line": 1}  # articles seen, PMIDs of DeleteCitation blocks, last line
    # A pull parser fed by hand rather than iterparse: after a syntax error it still hands out the articles
    # parsed before it in the same chunk (iterparse drops them).
    parser = pull_parser(events=("end",), tag=(*ARTICLE_TAGS, DELETE_TAG), remove_comments=True, remove_pis=True)
    with open_binary(path) as handle:
        while True:
            failure = root = None
            try:
                chunk = handle.read(CHUNK_BYTES)
            except READ_ERRORS as error:  # an I/O error (a gzip stream is checked before it is read)
                failure, chunk = error, None
            if chunk is not None:
                try:
                    if chunk:
                        parser.feed(chunk)
                    else:
                        root = parser.close()
                except etree.XMLSyntaxError as error:
                    failure = error
            if isinstance(failure, etree.XMLSyntaxError) and not chunk:
                # a file that breaks off: the end events that closing it made up are of articles cut short
                for _ in parser.read_events():
                    pass
            else:
                yield from _documents(parser.read_events(), name, state)
            position, line = state["position"], state["line"]
            if isinstance(failure, etree.XMLSyntaxError):
                line = failure.lineno or line
                where = f"{name}:{line}"
                yield Document(f"{file_name}:{position + 1}", "", source=where,
                               error=f"{where}: not well-formed PubMed XML ({failure.msg}); {position} article(s) read "
                                     "before it, the rest of the file is not")
            elif failure is not None:
                yield Document(f"{file_name}:{position + 1}", "", source=f"{name}:{line}",
                               error=f"{name}: not readable after line {line} ({failure}); {position} article(s) read "
                                     "before it, the rest of the file is not")
            elif chunk:
                continue
            elif position == 0 and state["deletions"] == 0 and root is not None and root.tag not in ROOT_TAGS:
                yield Document(file_name, "", source=name,
                               error=f"{name}: no PubmedArticle in it and its root element is <{root.tag}>, not "
                                     "<PubmedArticleSet>: not PubMed XML (choose another --input_format)")
            break
    deletions = state["deletions"]
    if deletions:
        logger.info("%s: %d deleted citation%s (DeleteCitation) skipped: they are no documents; drop these PMIDs "
                    "from earlier outputs", name, deletions, "s" * (deletions > 1))


def _documents(events, name: str, state: dict) -> Iterator[Document]:
    """The documents of parsed `PubmedArticle`/`PubmedBookArticle` elements; `DeleteCitation` PMIDs counted."""
    file_name = Path(name).name
    for _, element in events:
        state["line"] = element.sourceline or state["line"]
        if element.tag == DELETE_TAG:
            state["deletions"] += len(element.findall("PMID"))
            _release(element)
            continue
        state["position"] += 1
        position, tag, where = state["position"], element.tag, f"{name}:{state['line']}"
        pmid, title, sections = article_parts(element)
        _release(element)
        if not pmid:
            yield Document(f"{file_name}:{position}", "", source=where,
                           error=f"{where}: article {position} ({tag}) has no PMID; not annotated")
            continue
        yield medline_document(pmid, title, sections, where)


def claims_pubmed_xml(head: str) -> bool:
    """Whether the first 8 KB of an .xml file are PubMed XML (its root or an article element)."""
    return bool(PUBMED_HEAD.search(head))


register_input_format(InputFormat(
    "pubmed_xml", read_medline, "PubMed/MEDLINE XML, the baseline and update files (pubmed25n0001.xml.gz): one "
    "document per PubmedArticle, id = PMID, title and abstract passages (structured abstracts with their labels "
    "inline), DeleteCitation entries skipped; streamed; the XML declares its encoding (--encoding is not used)",
    (".xml",), claims=claims_pubmed_xml, uses_encoding=False,
))

__all__ = ["claims_pubmed_xml", "read_medline"]
