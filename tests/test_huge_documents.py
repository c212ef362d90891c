"""Huge documents and many documents (issue 32 item 3): annotation memory does not grow with a document's length,
a document over the size limit is an error record naming it, and the id bookkeeping costs a few bytes a document."""

import tracemalloc

import predict_vaner
from vaner.documents import AnnotatedDocument, Document
from vaner.formats import PubTatorWriter


# --------------------------------------------------------------------------------------------
# Id bookkeeping


def annotated_documents(count: int, duplicate_every: int):
    for number in range(count):
        name = f"PMID{number - 1 if number % duplicate_every == 0 and number else number:08d}"
        yield AnnotatedDocument(Document(name, "x"))


def bookkeeping_bytes(consume) -> int:
    tracemalloc.start()
    try:
        consume()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_duplicate_ids_are_counted_in_a_few_bytes_a_document():
    counts = {"documents": 0, "entities": 0, "errors": 0, "duplicates": 0}
    used = bookkeeping_bytes(lambda: all(predict_vaner._report_errors(annotated_documents(100_000, 1000), counts)))
    assert counts["duplicates"] == 99 and counts["first_duplicate"] == "PMID00000999"
    assert used / 100_000 < 50, f"{used / 100_000:.0f} bytes a document (a set of the ids took about 110)"


class Sink:
    def write(self, text):
        return len(text)

    def flush(self):
        pass


def test_pubtator_ids_stay_apart_in_a_few_bytes_a_document():
    def write_all():
        with PubTatorWriter(Sink()) as writer:
            for annotated in annotated_documents(100_000, 100_000):
                writer.write(annotated)

    used = bookkeeping_bytes(write_all)
    assert used / 100_000 < 50, f"{used / 100_000:.0f} bytes a document (a dict of the ids took about 110)"
