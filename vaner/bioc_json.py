"""The BioC JSON format ("bioc", `.json`), in and out, through the `bioc` package (vaner.bioc_format).

The library reads a JSON collection only whole (`biocjson.load`) and writes one only whole, from memory; the
writer here streams the collection envelope itself and encodes each document with `biocjson.toJSON` as it
comes, in flat memory. A collection that cannot be read becomes a document with an `error`, as in the other
readers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from bioc import biocjson

from .bioc_format import collection_info, to_bioc, to_document
from .documents import Document
from .formats import DocumentWriter, InputFormat, OutputFormat, register_input_format, register_output_format
from .textfiles import decode, input_name, open_binary


def read_bioc_json(path: str | Path, encoding: str = "utf-8") -> Iterator[Document]:
    """Documents of a BioC JSON collection ("-": standard input; gzip is decompressed), read whole: the library
    has no streaming JSON reader."""
    name = input_name(path)
    with open_binary(path) as handle:
        text = decode(handle.read(), encoding, name, whole_file=True)
    try:
        collection = biocjson.loads(text.removeprefix("\ufeff"))
    except (ValueError, KeyError, TypeError) as error:
        yield Document(Path(name).name, "", source=name, error=f"{name}: not readable as a BioC JSON collection "
                                                                 f"({type(error).__name__}: {error})")
        return
    for number, bioc_document in enumerate(collection.documents, start=1):
        yield to_document(bioc_document, f"{name}:document {number}", f"{Path(name).name}:{number}")


def looks_like_bioc_json(first_line: str) -> bool:
    """True for the first line of a BioC JSON collection: a bare "{" or an object with "documents"."""
    if first_line == "{":
        return True
    try:
        record = json.loads(first_line)
    except ValueError:
        return False
    return isinstance(record, dict) and "documents" in record and "text" not in record


class BioCJsonWriter(DocumentWriter):
    """A BioC JSON collection: the envelope (source, date, key, infons) written here, each document encoded
    by `bioc.biocjson.toJSON` as it comes. Documents with an error are left out."""

    def __init__(self, stream: IO[str], source: str = "VANER", date: str | None = None, infons: dict | None = None):
        super().__init__(stream)
        self.model = (infons or {}).get("model")
        self._written = False
        collection = collection_info(source, date, infons)
        header = {"source": collection.source, "date": collection.date, "key": collection.key,
                  "infons": collection.infons}
        self.stream.write(json.dumps(header, ensure_ascii=False)[:-1] + ', "documents": [')

    def _write(self, annotated):
        if annotated.error:
            return
        record = biocjson.toJSON(to_bioc(annotated, self.model))
        self.stream.write((",\n" if self._written else "\n") + json.dumps(record, ensure_ascii=False))
        self._written = True

    def close(self):
        self.stream.write("\n]}\n")
        super().close()


# Before jsonl: a collection's first line starts with "{" too.
register_input_format(InputFormat(
    "bioc", read_bioc_json, "a BioC JSON collection (passages keep their document-level offsets; its annotations "
    "are kept in BioC output)", (".json",), sniff=looks_like_bioc_json,
), before="jsonl")
register_output_format(OutputFormat(
    "bioc", lambda stream, entity_types, **options: BioCJsonWriter(stream, infons=options.get("infons"),
                                                                   date=options.get("date")),
    "a BioC JSON collection (our annotations with infons type, score and model)", (".json", ".bioc"),
))

__all__ = ["BioCJsonWriter", "looks_like_bioc_json", "read_bioc_json"]
