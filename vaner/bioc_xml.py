"""The BioC XML format ("bioc_xml", `.xml`), in and out, streamed document by document through the `bioc`
package (vaner.bioc_format): `BioCXMLDocumentReader` in, `BioCXMLDocumentWriter` out.

Broken XML becomes a document with an `error`, as in the other readers, instead of an exception that stops
the run; the library reads one document ahead, so the document before a syntax error is lost with it.
"""

from __future__ import annotations

import codecs
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from bioc.biocxml.decoder import BioCXMLDocumentReader
from bioc.biocxml.encoder import BioCXMLDocumentWriter

from .bioc_format import collection_info, to_bioc, to_document
from .documents import Document
from .formats import DocumentWriter, InputFormat, OutputFormat, register_input_format, register_output_format
from .textfiles import STDIO, input_name


def read_bioc_xml(path: str | Path) -> Iterator[Document]:
    """Documents of a BioC XML collection, streamed (the XML declaration gives the encoding)."""
    name = input_name(path)
    source = sys.stdin.buffer if str(path) == STDIO else str(path)
    number = 0
    try:
        for number, bioc_document in enumerate(BioCXMLDocumentReader(source), start=1):
            yield to_document(bioc_document, f"{name}:document {number}", f"{Path(name).name}:{number}")
    except Exception as error:  # lxml.etree.XMLSyntaxError and friends
        where = f"{name}:document {number + 1}"
        yield Document(f"{Path(name).name}:{number + 1}", "", source=where,
                       error=f"{where}: not readable as BioC XML ({error})")


class _TextSink:
    """A binary write() for lxml that decodes UTF-8 (chunks may cut a character) into a text stream."""

    def __init__(self, stream: IO[str]):
        self.stream = stream
        self.decoder = codecs.getincrementaldecoder("utf-8")()

    def write(self, data: bytes) -> None:
        self.stream.write(self.decoder.decode(bytes(data)))

    def flush(self) -> None:
        self.stream.flush()


class BioCXmlWriter(DocumentWriter):
    """A BioC XML collection, streamed with `bioc`'s document writer: collection infons (model, entity
    types), then one document at a time. Documents with an error are left out."""

    def __init__(self, stream: IO[str], source: str = "VANER", date: str | None = None, infons: dict | None = None):
        super().__init__(stream)
        self.model = (infons or {}).get("model")
        self._writer = BioCXMLDocumentWriter(_TextSink(stream), encoding="utf-8", standalone=True)
        self._writer.write_collection_info(collection_info(source, date, infons))

    def _write(self, annotated):
        if annotated.error:
            return
        self._writer.write_document(to_bioc(annotated, self.model, xml_safe=True))

    def close(self):
        self._writer.close()
        super().close()


register_input_format(InputFormat(
    "bioc_xml", lambda path, encoding: read_bioc_xml(path), "a BioC XML collection, streamed (passages keep their document-level offsets; its "
    "annotations are kept in BioC output)", (".xml",), sniff=lambda line: line.startswith("<"),
))
register_output_format(OutputFormat(
    "bioc_xml", lambda stream, entity_types, **options: BioCXmlWriter(stream, infons=options.get("infons"),
                                                                      date=options.get("date")),
    "a BioC XML collection (our annotations with infons type, score and model)", (".xml",),
))

__all__ = ["BioCXmlWriter", "read_bioc_xml"]
