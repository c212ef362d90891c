"""`VanerTokenClassificationPipeline`, which serves VANER's annotation path (annotator_vaner.py) as
`pipeline("token-classification", model=<a VANER folder or Hub id>, trust_remote_code=True)`: the config of
every saved VANER folder names it under `custom_pipelines`, and the folder carries it with the modules it
imports, so the Hub serves it as remote code. """

from __future__ import annotations

import copy
import logging

import torch
from transformers import TokenClassificationPipeline

logger = logging.getLogger(__name__)

try:  # as remote code (a package built by transformers)
    from .annotator_vaner import DocumentAnnotator
    from .precision_vaner import choose_dtype, to_precision
    from .text_vaner import AnnotatedDocument
except ImportError:  # imported from the project root
    from annotator_vaner import DocumentAnnotator
    from precision_vaner import choose_dtype, to_precision
    from text_vaner import AnnotatedDocument


# --------------------------------------------------------------------------------------------
# The token-classification pipeline


def _as_dtype(dtype: torch.dtype | str) -> torch.dtype:
    """A precision as `pipeline(dtype=...)` takes it: a torch.dtype or its name ("bfloat16")."""
    return getattr(torch, dtype) if isinstance(dtype, str) else dtype


# Each word is tagged from its first sub-token (as trained), so "first" is "simple"; "average" and "max", which
# pool the scores of a word's sub-tokens, have nothing to pool and are refused.
AGGREGATION_STRATEGIES = ("none", "simple", "first")
# Options of `DocumentAnnotator` the pipeline takes, at construction or per call.
ANNOTATOR_OPTIONS = ("entity_types", "dataset_name", "tokenization", "max_length", "stride", "overlaps", "line_breaks",
                     "max_document_length")
DEFAULT_BATCH_SIZE = 32  # rows (window x entity type) per forward pass: predict_vaner.py's default


class VanerTokenClassificationPipeline(TokenClassificationPipeline):
    """`pipeline("token-classification")` for VANER: whole words with exact offsets, for texts of any length,
    through the same `DocumentAnnotator` as the annotation CLI (same entities, same scores).

        ner = pipeline("token-classification", model="path/or/hub-id", trust_remote_code=True)
        ner("Cisplatin-induced nephrotoxicity ...")   # [{"entity_group", "score", "word", "start", "end"}, ...]
        ner([text1, text2], batch_size=32)            # one list per text; a generator or dataset streams

    `text[start:end] == word` always. A text is cut into sentences and words as the model was trained, a
    sentence longer than `max_length` sub-tokens runs in overlapping windows, and every configured entity
    type is asked (`model_kwargs={"entity_types": [...], "dataset_name": ...}` choose at load time).

    `aggregation_strategy`: unset, "simple" or "first" give whole-word entities (the words are whole already:
    each word is tagged from its first sub-token, as in training, and an entity's score is the mean probability
    of its words' tags, the "simple" rule; "average" and "max" are refused: there is nothing to pool); "none" gives the tag of every word tagged B
    or I ({"entity": "B-Disease", "score", "index" (word number in the text), "word", "start", "end"}).
    Other options (construction or call): `ignore_labels` (entity types or tags to leave out), `entity_types`
    (a subset of the loaded types), `dataset_name`, `tokenization`, `max_length`, `stride` (sub-tokens shared
    by consecutive windows), `overlaps`, `line_breaks`: see `DocumentAnnotator`. `batch_size` counts rows
    (window x entity type) per forward pass (default 32). A text longer than `max_document_length` characters
    (default 1,000,000) is refused with a ValueError naming its length and the limit.

    Unless `dtype=` names a precision, the model runs in the precision the annotation CLI picks: bf16 on CUDA and
    on CPUs with native bf16, else float32. A model object passed in is never cast in place: where its precision
    differs, the pipeline runs a cast copy (for a moment both are in memory) and the caller's object stays as it was.
    """

    def __init__(self, *args, **kwargs):
        dtype = kwargs.get("dtype", kwargs.get("torch_dtype"))
        super().__init__(*args, **kwargs)
        if self._num_workers is not None:
            raise ValueError("VANER's pipeline runs in the calling process: num_workers is not used (batch_size sets "
                             "the rows per forward pass)")
        if not getattr(self.tokenizer, "is_fast", False):
            raise ValueError("VANER's pipeline needs a fast tokenizer: character offsets come from it")
        if getattr(self.model, "hf_device_map", None) is None:
            chosen = choose_dtype("auto", self.model.device) if dtype in (None, "auto") else _as_dtype(dtype)
            if self.model.dtype != chosen:
                # A copy: the model may be an object the caller holds (transformers' pipeline() gives no sign of
                # whether it loaded the model itself), which must not change precision under them.
                self.model = to_precision(copy.deepcopy(self.model), chosen)
        self.model.eval()
        # transformers turns the class names of the config's custom_pipelines entry into classes in place: back
        # to names, so that the model's config can still be saved.
        for info in (getattr(self.model.config, "custom_pipelines", None) or {}).values():
            if isinstance(info, dict) and "pt" in info:
                info["pt"] = [name if isinstance(name, str) else name.__name__ for name in info["pt"]]

    def _sanitize_parameters(self, aggregation_strategy=None, ignore_labels=None, is_split_into_words=False,
                             offset_mapping=None, delimiter=None, num_workers=None, **options):
        if num_workers is not None or delimiter is not None:
            raise ValueError("VANER's pipeline takes neither num_workers (it runs in the calling process; batch_size "
                             "sets the rows per forward pass) nor delimiter (it reads raw text, not words)")
        if is_split_into_words or offset_mapping is not None:
            raise ValueError("VANER's pipeline reads raw text (it finds the words and their offsets itself): "
                             "pass the text, not words or an offset_mapping")
        unknown = sorted(set(options) - set(ANNOTATOR_OPTIONS))
        if unknown:
            raise TypeError(f"Unknown option(s) {unknown} of VANER's pipeline: it takes aggregation_strategy, "
                            f"ignore_labels, batch_size and {', '.join(ANNOTATOR_OPTIONS)}")
        params = {key: value for key, value in options.items() if value is not None}
        if aggregation_strategy is not None:
            name = str(getattr(aggregation_strategy, "value", aggregation_strategy)).lower()
            if name not in AGGREGATION_STRATEGIES:
                raise ValueError(f"aggregation_strategy must be one of {AGGREGATION_STRATEGIES}, not {aggregation_strategy!r}: "
                                 "VANER tags each word from its first sub-token, so there are no sub-token scores to "
                                 "average or take the max of")
            params["aggregation_strategy"] = name
        if ignore_labels is not None:
            params["ignore_labels"] = list(ignore_labels)
        return {}, {}, params

    def __call__(self, inputs, **kwargs):
        """Entities of one text (a list of dicts), of a list of texts (a list of lists), or of an iterable
        of texts (a generator of lists, computed as they are consumed)."""
        batch_size = kwargs.pop("batch_size", None) or self._batch_size or DEFAULT_BATCH_SIZE
        params = {**self._postprocess_params, **self._sanitize_parameters(**kwargs)[2]}
        annotator = self.annotator(batch_size=batch_size, **params)
        strategy = params.get("aggregation_strategy")
        ignore = set(params.get("ignore_labels", ["O"]))

        def results(annotated: AnnotatedDocument) -> list[dict]:
            return self._records(annotated, strategy, ignore)

        if isinstance(inputs, str):
            return results(next(annotator.annotate_documents([inputs])))
        if inputs is None:
            raise ValueError("At least one input is required.")
        if isinstance(inputs, (list, tuple)):
            return [results(annotated) for annotated in annotator.annotate_documents(inputs)]
        return (results(annotated) for annotated in annotator.annotate_documents(inputs))

    def annotator(self, batch_size: int = DEFAULT_BATCH_SIZE, **params) -> DocumentAnnotator:
        """The `DocumentAnnotator` this pipeline runs, with its options."""
        options = {key: params[key] for key in ANNOTATOR_OPTIONS if key in params}
        return DocumentAnnotator(self.model, self.tokenizer, batch_size=batch_size,
                                 word_tags=params.get("aggregation_strategy") == "none", **options)

    @staticmethod
    def _records(annotated: AnnotatedDocument, strategy: str | None, ignore: set) -> list[dict]:
        if annotated.error is not None:
            raise ValueError(annotated.error)
        if strategy == "none":
            return [
                {"entity": tag.entity_type, "score": tag.score, "index": index, "word": tag.text,
                 "start": tag.start, "end": tag.end}
                for index, tag in annotated.word_tags
                if tag.entity_type not in ignore and tag.entity_type[2:] not in ignore
            ]
        return [
            {"entity_group": entity.entity_type, "score": entity.score, "word": entity.text,
             "start": entity.start, "end": entity.end}
            for entity in annotated.entities
            if entity.entity_type not in ignore
        ]

