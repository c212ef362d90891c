"""Annotating raw documents with a VANER model: exact character offsets, any length, batched and streamed.

The annotation path itself (sentences, words, windows, stitching, entity spans) lives in the root modules
`annotator_vaner`, `text_vaner`, `windows_vaner` and `precision_vaner`, the files every saved VANER folder
carries for `pipeline("token-classification")` (pipeline_vaner.py): the annotation CLI and the pipeline run
the same code. This module re-exports it and adds what only the
project's tools need: corpus-registry names for `dataset_name` ("ncbi-disease" = "NCBI-disease"). Models load
through `vaner.loading.load_model` (re-exported here).
"""

from __future__ import annotations

from annotator_vaner import (  # noqa: F401  (re-exported)
    OVERLAP_POLICIES,
    TOKENIZATIONS,
    decode_spans,
    resolve_entity_types,
    resolve_overlaps,
)
from annotator_vaner import DocumentAnnotator as _DocumentAnnotator
from precision_vaner import DTYPES, choose_dtype, cpu_supports_bf16  # noqa: F401  (re-exported)
from text_vaner import AnnotatedDocument, Document, Entity, Passage, document_sentences, split_sentences  # noqa: F401
from windows_vaner import most_central_window, plan_windows, special_affixes  # noqa: F401  (re-exported)

from .features import dataset_index
from .loading import load_model  # noqa: F401  (re-exported)


class DocumentAnnotator(_DocumentAnnotator):
    __doc__ = _DocumentAnnotator.__doc__
    # A registered corpus matches by its registry or display name.
    dataset_index = staticmethod(dataset_index)


def annotate_text(model, tokenizer, text: str, **options) -> list[Entity]:
    """Entities of one text (any length); `options` are those of `DocumentAnnotator`."""
    return list(DocumentAnnotator(model, tokenizer, **options).annotate(Document("text", text)).entities)


__all__ = [
    "AnnotatedDocument", "Document", "DocumentAnnotator", "Entity", "Passage", "annotate_text", "choose_dtype",
    "cpu_supports_bf16", "decode_spans", "document_sentences", "load_model", "plan_windows", "resolve_overlaps",
    "split_sentences",
]
