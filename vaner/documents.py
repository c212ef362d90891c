"""Annotating raw documents with a VANER model: exact character offsets, any length, batched and streamed.

The annotation path itself (sentences, words, windows, stitching, entity spans) lives in the root module
`pipeline_vaner`, the file every saved VANER folder carries for `pipeline("token-classification")`: the
annotation CLI and the pipeline run the same code. This module re-exports it and adds what only the
project's tools need: corpus-registry names for `dataset_name` ("ncbi-disease" = "NCBI-disease") and
`load_model`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from pipeline_vaner import (  # noqa: F401  (re-exported)
    DTYPES,
    OVERLAP_POLICIES,
    TOKENIZATIONS,
    AnnotatedDocument,
    Document,
    Entity,
    Passage,
    choose_dtype,
    cpu_supports_bf16,
    decode_spans,
    document_sentences,
    most_central_window,
    plan_windows,
    resolve_entity_types,
    resolve_overlaps,
    special_affixes,
    split_sentences,
)
from pipeline_vaner import DocumentAnnotator as _DocumentAnnotator
from pipeline_vaner import resolve_dataset_id as _resolve_dataset_id

from .features import dataset_index


class DocumentAnnotator(_DocumentAnnotator):
    __doc__ = _DocumentAnnotator.__doc__
    # A registered corpus matches by its registry or display name.
    dataset_index = staticmethod(dataset_index)


def resolve_dataset_id(config, dataset_name: str | None) -> int | None:
    """`dataset_ids` value for the instruction naming `dataset_name`; None = the model's load-time choice."""
    return _resolve_dataset_id(config, dataset_name, dataset_index)


def annotate_text(model, tokenizer, text: str, **options) -> list[Entity]:
    """Entities of one text (any length); `options` are those of `DocumentAnnotator`."""
    return list(DocumentAnnotator(model, tokenizer, **options).annotate(Document("text", text)).entities)


# --------------------------------------------------------------------------------------------
# Loading


def load_model(
    model_name_or_path: str,
    entity_types: Sequence[str] | None = None,
    dataset_name: str | None = None,
    dtype: str = "auto",
    device: str = "auto",
    trust_remote_code: bool = False,
    **from_pretrained_kwargs,
):
    """A VANER model (full folder, adapter-only folder or Hub id) and its tokenizer, ready for inference
    in the chosen precision on the chosen device. Code stored in the folder (a tokenizer class of its
    own; the model classes when this project's are not importable) runs only with `trust_remote_code`."""
    from transformers import AutoTokenizer

    from .export import check_model_path

    check_model_path(model_name_or_path)
    from_pretrained_kwargs["trust_remote_code"] = trust_remote_code
    tokenizer_kwargs = {"trust_remote_code": trust_remote_code}
    try:  # the project's own classes (run from the project root): no remote code to trust
        from transformers import AutoConfig

        from configuration_vaner import VanerConfig
        from modeling_vaner import VanerForTokenClassification as model_class

        # AutoTokenizer reads the folder's config; with the class registered it needs no remote code.
        AutoConfig.register(VanerConfig.model_type, VanerConfig, exist_ok=True)
    except ImportError:
        from transformers import AutoModelForTokenClassification as model_class
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    overrides = dict(from_pretrained_kwargs)
    if entity_types is not None:
        overrides["entity_types"] = _spelled_as_known(model_name_or_path, entity_types)
    if dataset_name is not None:
        overrides["dataset_name"] = dataset_name
    model = model_class.from_pretrained(model_name_or_path, **overrides)
    model = model.to(device=device, dtype=choose_dtype(dtype, device)).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_name_or_path, **tokenizer_kwargs)
    return model, tokenizer


def _spelled_as_known(model_name_or_path: str, entity_types: Sequence[str]) -> list[str]:
    """The types as the model's config spells them ("disease" -> "Disease"); unknown ones unchanged, for the
    model's own error message."""
    from transformers import PretrainedConfig

    if isinstance(entity_types, str):
        entity_types = [entity_types]
    try:
        config_dict, _ = PretrainedConfig.get_config_dict(model_name_or_path)
    except (OSError, ValueError):
        return list(entity_types)
    known = config_dict.get("known_entity_types") or config_dict.get("entity_types") or []
    by_lower = {entity_type.lower(): entity_type for entity_type in known}
    return [by_lower.get(entity_type.strip().lower(), entity_type) for entity_type in entity_types]


__all__ = [
    "AnnotatedDocument", "Document", "DocumentAnnotator", "Entity", "Passage", "annotate_text", "choose_dtype",
    "cpu_supports_bf16", "decode_spans", "document_sentences", "load_model", "plan_windows", "resolve_overlaps",
    "split_sentences",
]
