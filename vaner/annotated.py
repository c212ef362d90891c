"""Annotated documents as training and evaluation input: BioC XML and JSON, PubTator and brat standoff with
mentions of several types, and IOB TSV, in one internal form (`AnnotatedCorpus`).

Documents are read by the readers of vaner.formats (BioC through the `bioc` package, PubTator by vaner.pubtator
in its strict mode, brat by vaner.brat) and cut into sentences and words by the annotation path
(`vaner.corpora.sentence_words`); each type's mentions become IOB2 tags by the rule corpus evaluation follows
(`vaner.corpora.sentence_tags`): a mention whose edge falls inside a word covers the whole word, one across a
sentence boundary is tagged in each sentence, of overlapping mentions of one type the earliest (then longest)
is kept. Mentions of different types may overlap (the multi-type head tags each type apart). A discontinuous
mention (brat `start end;start end`, a BioC annotation with several locations) is joined into the span from
its first to its last character, as IOB corpora write such mentions (NCBI-disease's "breast and ovarian
cancer"): IOB2 cannot hold a gap, and refusing would make a whole export unusable for a few mentions. Every
case is counted in one warning for the whole input, none is dropped silently.

`--type_map raw=Type` (`parse_type_map`) maps a document's type names onto the model's; `raw=O` or `raw=-`
drops a type on purpose. A name not mapped takes the spelling of a type the model knows (any case), else it
stays as written (a new type).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .corpora import (
    MENTION_CASES,
    CorpusFormatError,
    Sentence,
    iob_spans,
    read_iob_file,
    read_pubtator,
    repair_iob2,
    sentence_tags,
    sentence_words,
)
from .documents import Document
from .features import sentences_to_dataset
from .formats import INPUT_FORMATS, detect_input_format, expand_inputs

logger = logging.getLogger(__name__)

IOB_SUFFIXES = (".tsv", ".conll", ".iob", ".bio")
DROPPED = ("O", "-")  # --type_map targets that drop a type
JOINED = "discontinuous (joined into one span)"


@dataclass(frozen=True)
class Mention:
    """A gold mention of a document: character offsets in its text and the (mapped) entity type."""

    start: int
    end: int
    entity_type: str


@dataclass(frozen=True)
class TypedSentence:
    """A sentence's words and, per entity type with a mention in its document, its O/B/I tags."""

    tokens: tuple[str, ...]
    tags: Mapping[str, tuple[str, ...]]
    location: str = ""


@dataclass
class AnnotatedCorpus:
    """Sentences of annotated documents, the types they annotate (those with a mention after `--type_map`, in
    the order first seen) and what was read: mentions per type, types dropped on purpose, files, documents."""

    sentences: list[TypedSentence] = field(default_factory=list)
    mentions: Counter = field(default_factory=Counter)
    dropped: Counter = field(default_factory=Counter)
    files: list[str] = field(default_factory=list)
    documents: int = 0

    @property
    def entity_types(self) -> list[str]:
        return list(self.mentions)

    def table(self, entity_types: Sequence[str] | None = None):
        """A `DATASET_FEATURES` table: a row per (sentence, type), `source_corpus` the type, so that scores come
        per type and a multi-type row teaches exactly the types the documents annotate."""
        types = list(self.entity_types if entity_types is None else entity_types)
        rows = []
        for sentence in self.sentences:
            for entity_type in types:
                tags = sentence.tags.get(entity_type, ("O",) * len(sentence.tokens))
                rows.append(Sentence(sentence.tokens, tags, entity_type, entity_type, sentence.location))
        return sentences_to_dataset(rows)

    def summary(self) -> str:
        """One line naming the files, documents, sentences and mentions per type (for logs and the model card)."""
        files = ", ".join(self.files[:3]) + (f" and {len(self.files) - 3} more" if len(self.files) > 3 else "")
        types = ", ".join(f"{entity_type} {count:,}" for entity_type, count in self.mentions.items())
        dropped = f"; dropped by --type_map: {', '.join(sorted(self.dropped))}" if self.dropped else ""
        return (f"{files}: {self.documents:,} documents, {len(self.sentences):,} sentences, mentions: {types}"
                f"{dropped}")


def parse_type_map(arguments: Iterable[str] | None) -> dict[str, str | None]:
    """{raw type: model type, or None to drop it} from `raw=Type` arguments (`raw=O` and `raw=-` drop)."""
    mapping: dict[str, str | None] = {}
    for argument in arguments or ():
        raw, separator, target = (part.strip() for part in argument.partition("="))
        if not separator or not raw or not target:
            raise ValueError(f"--type_map {argument!r}: expected raw=Type (raw=O or raw=- drops the type)")
        target = None if target in DROPPED else target
        if raw in mapping and mapping[raw] != target:
            raise ValueError(f"--type_map maps {raw!r} twice: to {mapping[raw] or 'O'} and to {target or 'O'}")
        mapping[raw] = target
    return mapping


class TypeNames:
    """Maps a document's type names onto the model's: by `type_map` (exact name, then any case) or as written,
    then in the spelling of a known type where one matches in any case (`cell_type=species` gives Species)."""

    def __init__(self, type_map: Mapping[str, str | None] | None = None, known_types: Sequence[str] = ()):
        self.type_map = dict(type_map or {})
        self.by_lower = {raw.lower(): target for raw, target in self.type_map.items()}
        self.known = {entity_type.lower(): entity_type for entity_type in known_types}
        self.seen: set[str] = set()  # the raw names met, in lower case

    def __call__(self, raw: str) -> str | None:
        self.seen.add(raw.lower())
        name = self.type_map[raw] if raw in self.type_map else self.by_lower.get(raw.lower(), raw)
        return None if name is None else self.known.get(name.lower(), name)


def read_annotated(paths: Iterable[str | Path], type_map: Mapping[str, str | None] | None = None,
                   known_types: Sequence[str] = (), encoding: str = "utf-8") -> AnnotatedCorpus:
    """The sentences of annotated files or folders (BioC XML or JSON, PubTator, brat `.ann` with its `.txt`,
    IOB TSV; the format of each file as `predict_vaner.py --input_format auto` tells it). Bad input raises
    `CorpusFormatError` naming the file and the line or document; mentions annotation cannot give as written
    are counted in one warning."""
    names = TypeNames(type_map, known_types)
    corpus = AnnotatedCorpus()
    counts = Counter(dict.fromkeys((*MENTION_CASES, JOINED, "I- tags read as B-"), 0))
    ignored: Counter = Counter()
    files = [Path(path) for path in expand_inputs(paths)]
    listed = {path.resolve() for path in files}
    for path in files:
        if path.suffix == ".txt" and (path.with_suffix(".ann").resolve() in listed):
            continue  # read with its .ann
        corpus.files.append(str(path))
        if path.suffix.lower() in IOB_SUFFIXES:
            _read_iob(path, names, corpus, counts)
            continue
        for document, mentions in _documents(path, encoding, ignored, counts):
            corpus.documents += 1
            _add_document(document, mentions, names, corpus, counts)
    if not corpus.sentences:
        raise CorpusFormatError(f"{', '.join(map(str, paths))}: no sentences in these files")
    if not corpus.mentions:
        dropped = f" (dropped by --type_map: {', '.join(sorted(corpus.dropped))})" if corpus.dropped else ""
        raise CorpusFormatError(f"{', '.join(map(str, paths))}: no mention of any type is left{dropped}")
    unused = [raw for raw in names.type_map if raw.lower() not in names.seen]
    if unused:
        logger.warning("--type_map: no mention of type %s in %s", ", ".join(unused), _where(corpus.files))
    if any(counts.values()):
        logger.warning("%s: mentions that annotation cannot give as written: %s", _where(corpus.files),
                       ", ".join(f"{count} {what}" for what, count in counts.items() if count))
    if ignored:
        logger.info("brat lines not read (relations, events, attributes, notes, ...): %s",
                    ", ".join(f"{count} {kind}" for kind, count in sorted(ignored.items())))
    logger.info("annotated documents: %s", corpus.summary())
    return corpus


def _where(files: Sequence[str]) -> str:
    return files[0] if len(files) == 1 else f"{len(files)} files ({files[0]}, ...)"


def _add_document(document: Document, mentions: Iterable[tuple[str, tuple[tuple[int, int], ...]]], names: TypeNames,
                  corpus: AnnotatedCorpus, counts: Counter) -> None:
    """Map and join the mentions of a document, then tag its sentences per type."""
    by_type: dict[str, list[Mention]] = {}
    for raw_type, fragments in mentions:
        entity_type = names(raw_type)
        if entity_type is None:
            corpus.dropped[raw_type] += 1
            continue
        counts[JOINED] += len(fragments) > 1
        by_type.setdefault(entity_type, []).append(Mention(fragments[0][0], fragments[-1][1], entity_type))
        corpus.mentions[entity_type] += 1
    for span, words in sentence_words(document):
        tags = {}
        for entity_type, typed in by_type.items():
            typed_tags = sentence_tags(words, span, typed, counts)
            tags[entity_type] = tuple(tag[0] for tag in typed_tags)  # "B-CellLine" -> "B"
        corpus.sentences.append(TypedSentence(tuple(word for word, _, _ in words), tags,
                                              f"{document.source or document.document_id}@{span[0]}"))


def _read_iob(path: Path, names: TypeNames, corpus: AnnotatedCorpus, counts: Counter) -> None:
    """An IOB TSV file: its sentences as written, each raw type's spans mapped."""
    sentences = read_iob_file(path)
    corpus.documents += sum(raw.document_start for raw in sentences) or 1  # -DOCSTART- blocks, else one
    for raw in sentences:
        repaired, repairs = repair_iob2(raw.tags)
        counts["I- tags read as B-"] += repairs
        tags: dict[str, list[str]] = {}
        for raw_type, start, end in iob_spans(repaired):
            entity_type = names(raw_type)
            if entity_type is None:
                corpus.dropped[raw_type] += 1
                continue
            corpus.mentions[entity_type] += 1
            typed = tags.setdefault(entity_type, ["O"] * len(raw.tokens))
            typed[start: end] = ["B"] + ["I"] * (end - start - 1)
        corpus.sentences.append(TypedSentence(raw.tokens, {t: tuple(v) for t, v in tags.items()}, f"{path}:{raw.line}"))


def _documents(path: Path, encoding: str, ignored: Counter,
               counts: Counter) -> Iterator[tuple[Document, list[tuple[str, tuple[tuple[int, int], ...]]]]]:
    """(document, [(raw type, fragments)]) of an annotated file, by the format auto detection gives it."""
    file_format = detect_input_format(path)
    if file_format == "pubtator":
        for document in read_pubtator(path):
            yield (document.document(f"{path}:{document.line}"),
                   [(a.entity_type, ((a.start, a.end),)) for a in document.annotations])
    elif file_format in ("bioc_xml", "bioc"):
        for document in _readable(INPUT_FORMATS[file_format].read(path, encoding)):
            yield document, _bioc_mentions(document)
    elif file_format == "brat" or (path.suffix == ".txt" and path.with_suffix(".ann").is_file()):
        from .brat import read_brat_entities

        ann_path = path if file_format == "brat" else path.with_suffix(".ann")
        for document in _readable(INPUT_FORMATS["brat"].read(ann_path, encoding)):
            entities, other_lines = read_brat_entities(ann_path, document.text, encoding)
            ignored.update(other_lines)
            yield document, [(entity.entity_type, entity.fragments) for entity in entities]
    else:
        raise CorpusFormatError(f"{path}: read as {file_format}, which holds no annotations; annotated documents are "
                                "BioC XML or JSON, PubTator, brat (.ann beside its .txt) or IOB TSV (.tsv, .conll)")


def _readable(documents: Iterable[Document]) -> Iterator[Document]:
    """The documents of a reader; the first that could not be read raises its error (training and evaluation
    refuse bad input rather than learn from a part of it)."""
    for document in documents:
        if document.error:
            raise CorpusFormatError(document.error)
        yield document


def _bioc_mentions(document: Document) -> list[tuple[str, tuple[tuple[int, int], ...]]]:
    """(type infon, locations as (start, end)) of every annotation of a BioC document (document, passage and
    sentence level), each checked against the text at its offsets."""
    import bioc

    mentions = []
    for result in bioc.annotations(document.bioc_document):
        annotation = result.annotation
        where = f"{document.source}: annotation {annotation.id!r}"
        entity_type = (annotation.infons or {}).get("type")
        if not entity_type:
            raise CorpusFormatError(f"{where} has no 'type' infon")
        fragments = tuple(sorted((location.offset, location.offset + location.length)
                                 for location in annotation.locations))
        if not fragments:
            raise CorpusFormatError(f"{where} has no location")
        for start, end in fragments:
            if not 0 <= start < end <= len(document.text):
                raise CorpusFormatError(f"{where}: location {start}-{end} outside the document text "
                                        f"({len(document.text)} characters)")
        joined = " ".join(document.text[start:end] for start, end in fragments)
        if annotation.text and annotation.text not in (joined, document.text[fragments[0][0]:fragments[-1][1]]):
            raise CorpusFormatError(f"{where}: text {annotation.text!r} differs from the document text at its "
                                    f"location: {joined!r}")
        mentions.append((entity_type, fragments))
    return mentions


__all__ = ["AnnotatedCorpus", "Mention", "TypeNames", "TypedSentence", "parse_type_map", "read_annotated"]
