"""VANER as a spaCy pipeline component: `nlp.add_pipe("vaner")`.

Registered as the factory "vaner" through the package's `spacy_factories` entry point, so it needs no import
after `pip install "vaner[spacy]"`. Documents go through the annotation CLI's `DocumentAnnotator` (same
sentences, windows and entities as `predict_vaner.py`); each entity becomes a `Span` of
`doc.spans[spans_key]` labelled with its type, its score on `span._.vaner_score`. Overlapping mentions stay
there; `doc.ents` gets a non-overlapping choice (`ents`). A mention whose characters do not fall on the
spaCy tokenizer's token boundaries is expanded to whole tokens and counted in one warning per batch.
Settings are checked when the component is added (a ValueError naming the setting), and a local model folder is
recorded by its absolute path, so that a saved pipeline loads from any working directory.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.util import filter_spans, minibatch

from files_vaner import folder_written_atomically
from windows_vaner import DEFAULT_MAX_LENGTH

from . import DEFAULT_MODEL
from .documents import Document, DocumentAnnotator, Entity, resolve_overlaps
from .export import check_model_path
from .loading import DTYPES, check_served_config, load_model, overrides_of, resolve_device

logger = logging.getLogger(__name__)

ENTS_POLICIES = ("replace", "merge", "keep")
SCORE_KEY = "vaner_score"
MODEL_FIELD = "model"  # what `to_disk` / `from_disk` serialize (copy_model): `exclude=["model"]` leaves it out


def _score(span: Span) -> float | None:
    """A span's score, keyed by its characters and label: spaCy keys span extensions by offsets alone, and
    one span may carry two types with two scores."""
    return span.doc.user_data.get((SCORE_KEY, span.start_char, span.end_char, span.label_))


if not Span.has_extension(SCORE_KEY):
    Span.set_extension(SCORE_KEY, getter=_score)


@Language.factory(
    "vaner",
    default_config={"model": None, "entity_types": None, "dataset_name": None, "dtype": "auto", "device": "auto",
                    "batch_size": 32, "max_length": DEFAULT_MAX_LENGTH, "spans_key": "vaner", "ents": "replace",
                    "copy_model": False},
)
def make_vaner(nlp: Language, name: str, model: str | None, entity_types: list[str] | None, dataset_name: str | None,
               dtype: str, device: str, batch_size: int, max_length: int, spans_key: str, ents: str,
               copy_model: bool) -> VanerComponent:
    """The "vaner" factory. `model`: a VANER folder or Hub id (null: the shipped default model); `entity_types`
    (null: all the model serves); `dataset_name` (null: no corpus named, the adapt form); `dtype`, `device` as
    `predict_vaner.py` takes them; `batch_size`: model rows per forward pass; `ents`: "replace" sets `doc.ents` to
    VANER's non-overlapping choice, "merge" keeps the entities already there and adds VANER's that overlap none
    of them, "keep" leaves `doc.ents` alone; `copy_model`: `nlp.to_disk` copies a local model folder into the
    pipeline folder (default: the pipeline refers to the model by its absolute path or Hub id). Bad settings are
    a ValueError naming the setting here, when the component is added, not at the first document."""
    return VanerComponent(nlp, name, model=model, entity_types=entity_types, dataset_name=dataset_name, dtype=dtype,
                          device=device, batch_size=batch_size, max_length=max_length, spans_key=spans_key, ents=ents,
                          copy_model=copy_model)


class VanerComponent:
    """The component `make_vaner` builds: call it on a `Doc`, or let `nlp.pipe` stream documents through it."""

    def __init__(self, nlp: Language, name: str = "vaner", *, model: str | None = None,
                 entity_types: list[str] | None = None, dataset_name: str | None = None, dtype: str = "auto",
                 device: str = "auto", batch_size: int = 32, max_length: int = DEFAULT_MAX_LENGTH,
                 spans_key: str = "vaner", ents: str = "replace", copy_model: bool = False):
        check_settings(dtype=dtype, device=device, batch_size=batch_size, max_length=max_length, ents=ents)
        self.nlp, self._name, self.spans_key, self.ents, self.copy_model = nlp, name, spans_key, ents, copy_model
        self.model_setting = absolute_model_path(model)  # what the pipeline's config records
        self.model_name = self.model_setting or DEFAULT_MODEL  # what loads: the setting, or a saved pipeline's copy
        self.options = {"entity_types": entity_types, "dataset_name": dataset_name, "dtype": dtype, "device": device,
                        "batch_size": batch_size, "max_length": max_length}
        self._annotator: DocumentAnnotator | None = None
        if not (copy_model and not Path(self.model_name).expanduser().exists()):
            self._check_model()  # else a saved pipeline's copy may stand in for a folder gone since: see from_disk

    @property
    def name(self) -> str:
        return self._name

    @name.setter
    def name(self, name: str) -> None:
        """spaCy names every component again once it has stored the component's config (add_pipe, spacy.load,
        rename_pipe): the moment to record the model's absolute path there, so that the saved config.cfg finds the
        model from any working directory."""
        self._name = name
        if name not in self.nlp.component_names or self.nlp.get_pipe(name) is not self:
            return  # not (or not yet) this pipeline's component of that name
        config = self.nlp.get_pipe_config(name)
        if config.get("model") is not None and config["model"] != self.model_setting:
            config["model"] = self.model_setting

    def _check_model(self) -> None:
        """ValueError naming the setting when the model folder is missing or does not serve `entity_types` or
        `dataset_name`: read from its config.json alone, without loading weights (a Hub id is checked when it loads)."""
        try:
            check_model_path(self.model_name)
        except OSError as error:
            raise ValueError(f"vaner setting model: {error}") from None
        entity_types, dataset_name = self.options["entity_types"], self.options["dataset_name"]
        for setting, overrides in (("entity_types", overrides_of(entity_types, None)),
                                   ("dataset_name", overrides_of(None, dataset_name))):
            try:
                check_served_config(self.model_name, overrides)
            except ValueError as error:
                raise ValueError(f"vaner setting {setting}: {error}") from None

    @property
    def annotator(self) -> DocumentAnnotator:
        """The model loads on first use, so that `spacy.load` of a pipeline with a copied model (`from_disk`)
        reads the copy, not the path the pipeline was built from."""
        if self._annotator is None:
            options = self.options
            model, tokenizer = load_model(self.model_name, options["entity_types"], options["dataset_name"],
                                          options["dtype"], options["device"])
            self._annotator = DocumentAnnotator(
                model, tokenizer, entity_types=options["entity_types"],
                dataset_name=None if options["dataset_name"] is None else model.config.dataset_name,
                batch_size=options["batch_size"], max_length=options["max_length"])
        return self._annotator

    def __call__(self, doc: Doc) -> Doc:
        return next(self.pipe([doc]))

    def pipe(self, docs: Iterable[Doc], batch_size: int = 64) -> Iterator[Doc]:
        """Documents in order, annotated `batch_size` documents at a time (the annotator batches their windows)."""
        for batch in minibatch(docs, size=batch_size):
            annotated = self.annotator.annotate_documents(Document(str(i), doc.text) for i, doc in enumerate(batch))
            expanded = 0
            for doc, result in zip(batch, annotated):
                if result.error is not None:
                    raise ValueError(result.error)
                expanded += self._set_annotations(doc, result.entities)
            if expanded:
                logger.warning("%d VANER mentions did not fall on token boundaries of the spaCy tokenizer and were "
                               "expanded to whole tokens (in doc.spans[%r] and doc.ents)", expanded, self.spans_key)
            yield from batch

    def _set_annotations(self, doc: Doc, entities: tuple[Entity, ...]) -> int:
        """Fill doc.spans[spans_key] (every entity) and doc.ents; the number of spans expanded to whole tokens."""
        spans, expanded = [], 0
        span_of = {}
        for entity in entities:
            span = doc.char_span(entity.start, entity.end, label=entity.entity_type)
            if span is None:
                span = doc.char_span(entity.start, entity.end, label=entity.entity_type, alignment_mode="expand")
                expanded += 1
            doc.user_data[(SCORE_KEY, span.start_char, span.end_char, span.label_)] = entity.score
            spans.append(span)
            span_of[entity] = span
        doc.spans[self.spans_key] = spans
        if self.ents != "keep":
            # The higher-scoring of overlapping entities (ties: earlier, then shorter), as --overlaps best
            # chooses; expansion to whole tokens may make two of them overlap, so spaCy's filter has the last word.
            chosen = [span_of[entity] for entity in resolve_overlaps(entities)]
            if self.ents == "merge":
                taken = {token.i for ent in doc.ents for token in ent}
                chosen = list(doc.ents) + [span for span in chosen if not taken & set(range(span.start, span.end))]
            doc.ents = filter_spans(chosen)
        return expanded

    # ---------------------------------------------------------------- serialization

    def to_disk(self, path, exclude=()) -> None:
        """With `copy_model`, a local model folder is copied into the pipeline folder (field "model"); otherwise the
        pipeline's config refers to the model (its absolute path or Hub id) and nothing is written. A pipeline saved
        back into the folder it was loaded from keeps its copy as it is; an earlier copy elsewhere is replaced only
        once the new one is complete."""
        if not self.copy_model or MODEL_FIELD in exclude:
            return
        source = Path(self.model_name).expanduser().resolve()
        if not source.is_dir():
            raise ValueError(f"copy_model: {self.model_name} is not a local folder (a Hub id is referred to, not copied)")
        target = Path(path).resolve() / MODEL_FIELD
        if target == source:
            return
        if target.is_relative_to(source):
            raise ValueError(f"copy_model: the pipeline folder {path} lies inside the model folder {source}: save it elsewhere")
        replace_with_copy(source, target)

    def from_disk(self, path, exclude=()) -> VanerComponent:
        """With `copy_model`, the pipeline folder's copy of the model (unless "model" is in `exclude`); the model is
        checked as `add_pipe` checks it."""
        copied = Path(path) / MODEL_FIELD
        if self.copy_model and MODEL_FIELD not in exclude and copied.is_dir():
            self.model_name, self._annotator = str(copied.resolve()), None
        self._check_model()
        return self


def check_settings(*, dtype: str, device: str, batch_size: int, max_length: int, ents: str) -> None:
    """ValueError naming the first setting that could only fail later, at the first document."""
    for setting, value in (("batch_size", batch_size), ("max_length", max_length)):
        if value < 1:
            raise ValueError(f"vaner setting {setting}: a positive number of sub-tokens, not {value}")
    if dtype not in DTYPES:
        raise ValueError(f"vaner setting dtype: one of {DTYPES}, not {dtype!r}")
    if ents not in ENTS_POLICIES:
        raise ValueError(f"vaner setting ents: one of {ENTS_POLICIES}, not {ents!r}")
    try:
        resolve_device(device)
    except ValueError as error:
        raise ValueError(f"vaner setting {error}") from None


def absolute_model_path(model: str | None) -> str | None:
    """A local folder's absolute path: a relative one would be read from the working directory of whoever loads
    the saved pipeline (where it is missing, or a Hub id). A Hub id or null as given."""
    if model is None or not Path(model).expanduser().exists():
        return model
    return str(Path(model).expanduser().resolve())


def replace_with_copy(source: Path, target: Path) -> None:
    """Copy the folder `source` to `target` with the project's folder writer (files_vaner), so that `target` is
    either the earlier folder or the complete copy, never a mix, and `source` is only read."""
    with folder_written_atomically(target) as copy:
        shutil.copytree(source, copy, dirs_exist_ok=True, ignore=shutil.ignore_patterns("checkpoint-*", "runs"))
