"""How XML inputs are parsed, for every XML reader (PubMed XML: vaner.medline; BioC XML: vaner.bioc_xml): one
policy, set here.

- No entity is expanded and no DTD is loaded, validated or fetched (`resolve_entities=False`, `load_dtd=False`,
  `no_network=True`): a billion-laughs file costs nothing, an external entity reads no file (XXE), and parsing
  works offline although PubMed's DOCTYPE names a URL. A reference to an entity stays `&name;` text.
- libxml2's limits stand (`huge_tree=False`): a text node over 10,000,000 bytes, or elements nested deeper than
  256, is a syntax error of its document (libxml2 2.14), not gigabytes of memory.

The `bioc` library parses BioC documents with a parser of its own (lxml's defaults, which expand the entities
a DOCTYPE defines); vaner.bioc_xml hands it the documents without the file's DOCTYPE, so there is nothing to
expand or load, and a document referring to an entity is an error of its own ("Entity 'name' not defined").
"""

from __future__ import annotations

import re

from lxml import etree

PARSER_OPTIONS = {"resolve_entities": False, "load_dtd": False, "dtd_validation": False, "attribute_defaults": False,
                  "no_network": True, "huge_tree": False}
# Characters XML 1.0 does not allow: writers of XML and XHTML replace them (lxml refuses them).
XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def pull_parser(**options) -> etree.XMLPullParser:
    """A parser fed by hand whose events are read as they come, under the policy (`options`: events, tag,
    remove_comments, ...)."""
    return etree.XMLPullParser(**options, **PARSER_OPTIONS)


def parse(data: bytes) -> etree._Element:
    """The root element of a whole XML document, under the policy (`etree.XMLSyntaxError` if not well-formed)."""
    return etree.fromstring(data, etree.XMLParser(**PARSER_OPTIONS))


__all__ = ["PARSER_OPTIONS", "XML_INVALID", "parse", "pull_parser"]
