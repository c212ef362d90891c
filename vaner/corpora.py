"""Corpora in one internal form: a `Sentence` is tokens + IOB2 tags for one entity type.

Readers turn files into `Sentence` lists; every other stage works on that form only, so a new
corpus format is one reader here. Three layouts are read:

- CoNLL-style IOB files (token first, tag last, blank line between sentences): the two-column TSV of
  the MTL-Bioinformatics-2016 / BioBERT releases, and multi-column CoNLL;
- PubTator (``id|t|title``, ``id|a|abstract``, tab-separated mentions with character offsets), whose
  documents are tokenized here with the character offsets of every token kept, so that word-level
  predictions can be written back as PubTator.

The registry (`CORPORA`) knows the eight corpora of the VANER paper: their entity type, the name the
paper's tables use, and how the raw type names of their files map to the entity type.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# The one word tokenizer and sentence splitter: corpora, training and annotation.
from text_vaner import document_sentences, tokenize_with_offsets

from .pubtator import PubTatorAnnotation, PubTatorDocument, is_pubtator_file, read_pubtator  # noqa: F401
from .textfiles import CorpusFormatError, Utf8Lines, undecodable_file_error  # noqa: F401  (re-exported)

logger = logging.getLogger(__name__)

IOB_TAGS = ("O", "B", "I")

# The entity types of the VANER paper, in the order its model serves them.
ENTITY_TYPES = ("Disease", "Chemical", "Gene", "Species")


@dataclass(frozen=True)
class Sentence:
    """One sentence of a corpus, labelled for a single entity type.

    `tags` are untyped IOB2 tags ("O", "B", "I") aligned with `tokens`: the type is `entity_type`,
    because VANER asks for one type at a time.
    """

    tokens: tuple[str, ...]
    tags: tuple[str, ...]
    entity_type: str
    source_corpus: str
    location: str = field(default="", compare=False)  # "file:line" of the first token, for messages


@dataclass(frozen=True)
class RawSentence:
    """A sentence as written in a file: tokens with their typed tags ("B-Disease", "O", ...)."""

    tokens: tuple[str, ...]
    tags: tuple[str, ...]
    line: int  # 1-based line of the first token
    # A `-DOCSTART-` line came before this sentence (JNLPBA has them); kept so files round-trip.
    document_start: bool = False


# --------------------------------------------------------------------------------------------
# IOB tags


def split_tag(tag: str) -> tuple[str, str]:
    """("B", "Disease") for "B-Disease", ("B", "") for an untyped "B", ("O", "") for "O"."""
    if tag == "O":
        return "O", ""
    if tag in ("B", "I"):
        return tag, ""
    if tag[:2] in ("B-", "I-") and len(tag) > 2:
        return tag[0], tag[2:]
    raise ValueError(f"unknown IOB2 tag {tag!r} (expected O, B, I, B-Type or I-Type)")


def iob_spans(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """The entities of a tag sequence as (type, start, end) word spans, end exclusive.

    Chunks follow conlleval: an entity starts at `B-X`, and also at an `I-X` that does not continue an
    entity of type X (after `O` or after another type). Untyped tags give entities of type "".
    """
    spans: list[tuple[str, int, int]] = []
    start = None
    current_type = None
    for position, tag in enumerate(tags):
        prefix, entity_type = split_tag(tag)
        continues = prefix == "I" and current_type == entity_type
        if continues:
            continue
        if start is not None:
            spans.append((current_type, start, position))
            start, current_type = None, None
        if prefix != "O":
            start, current_type = position, entity_type
    if start is not None:
        spans.append((current_type, start, len(tags)))
    return spans


def repair_iob2(tags: Sequence[str]) -> tuple[tuple[str, ...], int]:
    """Tags with every `I-X` that does not continue an X entity turned into `B-X`, and their count.

    This is the conlleval reading of such tags (they start an entity), written as valid IOB2.
    """
    repaired = []
    count = 0
    previous_prefix, previous_type = "O", ""
    for tag in tags:
        prefix, entity_type = split_tag(tag)
        if prefix == "I" and (previous_prefix == "O" or previous_type != entity_type):
            tag = f"B-{entity_type}" if entity_type else "B"
            prefix = "B"
            count += 1
        repaired.append(tag)
        previous_prefix, previous_type = prefix, entity_type
    return tuple(repaired), count


# --------------------------------------------------------------------------------------------
# CoNLL / TSV files


def read_iob_file(path: str | Path) -> list[RawSentence]:
    """Read a CoNLL-style file: token in the first column, IOB2 tag in the last, blank line between
    sentences; `-DOCSTART-` lines are skipped. Two-column TSV (MTL-Bioinformatics-2016) is the common case.
    """
    path = Path(path)
    if not path.is_file():
        raise CorpusFormatError(f"{path}: no such corpus file")
    sentences: list[RawSentence] = []
    tokens: list[str] = []
    tags: list[str] = []
    first_line = 0
    columns = None
    document_start = False
    with Utf8Lines(path) as handle:
        for line_number, line in enumerate(handle, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                if tokens:
                    sentences.append(RawSentence(tuple(tokens), tuple(tags), first_line, document_start))
                    tokens, tags, document_start = [], [], False
                continue
            fields = line.split("\t") if "\t" in line else line.split()
            if fields[0] == "-DOCSTART-":
                document_start = True
                continue
            if len(fields) < 2:
                raise CorpusFormatError(f"{path}:{line_number}: expected a token and a tag, got {line!r}")
            if columns is None:
                columns = len(fields)
            elif len(fields) != columns:
                raise CorpusFormatError(
                    f"{path}:{line_number}: {len(fields)} columns where the file has {columns}: {line!r}"
                )
            if not fields[0].strip():
                raise CorpusFormatError(f"{path}:{line_number}: empty token in {line!r}")
            tag = fields[-1]
            if tag != "O" and not (tag[:2] in ("B-", "I-") and len(tag) > 2):
                raise CorpusFormatError(f"{path}:{line_number}: unknown tag {tag!r} (expected O, B-Type or I-Type)")
            if not tokens:
                first_line = line_number
            tokens.append(fields[0])
            tags.append(tag)
    if tokens:
        sentences.append(RawSentence(tuple(tokens), tuple(tags), first_line, document_start))
    if not sentences:
        raise CorpusFormatError(f"{path}: the file holds no sentences")
    return sentences


def write_iob_file(sentences: Iterable[RawSentence | Sentence], path: str | Path) -> None:
    """Write sentences as two-column TSV (token, tag), a blank line after each sentence.

    `RawSentence`s are written with their typed tags (and `-DOCSTART-` lines where they had one), so a
    two-column file read with `read_iob_file` is written back byte for byte. `Sentence`s get typed tags
    from their entity type ("B" -> "B-Disease").
    """
    path = Path(path)
    lines: list[str] = []
    for sentence in sentences:
        if len(sentence.tokens) != len(sentence.tags):
            raise ValueError(f"{len(sentence.tokens)} tokens but {len(sentence.tags)} tags in {sentence!r}")
        if isinstance(sentence, Sentence):
            tags = [tag if tag == "O" else f"{tag}-{sentence.entity_type}" for tag in sentence.tags]
        else:
            tags = list(sentence.tags)
            if sentence.document_start:
                lines.append("-DOCSTART-\tO\n\n")
        for token, tag in zip(sentence.tokens, tags):
            if not token or any(character in token for character in "\t\r\n"):
                raise ValueError(f"token {token!r} cannot be written to a TSV file")
            lines.append(f"{token}\t{tag}\n")
        lines.append("\n")
    path.write_text("".join(lines), encoding="utf-8")


# --------------------------------------------------------------------------------------------
# PubTator documents to sentences


@dataclass(frozen=True)
class DocumentSentence:
    """A sentence of a PubTator document: tokens, their character spans in `document.text`, typed tags."""

    document_id: str
    tokens: tuple[str, ...]
    spans: tuple[tuple[int, int], ...]
    tags: tuple[str, ...]


MENTION_CASES = ("widened to whole words", "across a sentence boundary", "overlapping (left out)")


def document_to_sentences(document: PubTatorDocument) -> list[DocumentSentence]:
    """Split a document into sentences of words with typed IOB2 tags from its mentions.

    Sentences and words are exactly those of the annotation path (`text_vaner.document_sentences`: the
    title, then the abstract's sentences; `tokenize_with_offsets`), so that evaluation scores what annotation
    sees and training learns from it: the gold mentions do not cut words or join sentences. Mentions become
    tags by `sentence_tags`: of overlapping mentions the earliest (then longest) is kept, since IOB2 cannot
    nest. Each case is counted in one warning per document.
    """
    counts = dict.fromkeys(MENTION_CASES, 0)
    sentences = [DocumentSentence(document.document_id, tuple(word for word, _, _ in words),
                                  tuple((start, end) for _, start, end in words),
                                  tuple(sentence_tags(words, span, document.annotations, counts)))
                 for span, words in sentence_words(document.document())]
    if any(counts.values()):
        logger.warning("document %s: mentions that annotation cannot give as written: %s", document.document_id,
                       ", ".join(f"{count} {what}" for what, count in counts.items() if count))
    return sentences


def sentence_words(document) -> Iterator[tuple[tuple[int, int], list[tuple[str, int, int]]]]:
    """((start, end), words with document offsets) of each sentence of a `text_vaner.Document` that holds a
    word: the annotation path's sentences and words."""
    text = document.text
    for sentence_start, sentence_end in document_sentences(document):
        words = [(word, sentence_start + start, sentence_start + end)
                 for word, start, end in tokenize_with_offsets(text[sentence_start:sentence_end])]
        if words:
            yield (sentence_start, sentence_end), words


def sentence_tags(words: Sequence[tuple[str, int, int]], span: tuple[int, int], mentions: Iterable,
                  counts: dict[str, int]) -> list[str]:
    """Typed IOB2 tags of a sentence's words (`sentence_words`) from mentions with document offsets (`start`,
    `end`, `entity_type`), as annotation can give them back: a mention whose edge falls inside a word covers
    that whole word; a mention across a sentence boundary is tagged in each sentence it touches; of overlapping
    mentions the earliest (then longest) is kept. Each case is added to `counts` (keys `MENTION_CASES`)."""
    sentence_start, sentence_end = span
    tags = ["O"] * len(words)
    for mention in sorted(mentions, key=lambda m: (m.start, -(m.end - m.start))):
        if mention.start >= sentence_end or mention.end <= sentence_start:
            continue
        covered = [i for i, (_, start, end) in enumerate(words) if start < mention.end and end > mention.start]
        if not covered:
            continue
        if any(tags[i] != "O" for i in covered):
            counts["overlapping (left out)"] += 1
            continue
        tags[covered[0]] = f"B-{mention.entity_type}"
        for i in covered[1:]:
            tags[i] = f"I-{mention.entity_type}"
        if mention.start < sentence_start or mention.end > sentence_end:
            counts["across a sentence boundary"] += mention.start >= sentence_start  # once per mention
        elif (words[covered[0]][1], words[covered[-1]][2]) != (mention.start, mention.end):
            counts["widened to whole words"] += 1
    return tags


# --------------------------------------------------------------------------------------------
# Corpus formats: a new one is a `register_corpus_format` call (its reader gives typed IOB2 sentences)


@dataclass(frozen=True)
class CorpusFormat:
    """A corpus file format: `sniff(path)` tells whether a file is in it; `read(path)` gives its sentences as
    (tokens, typed IOB2 tags such as "B-Disease", 1-based line of the first token, lines per token: 1 when each
    token has a line, 0 when the sentence sits on one line) for the registry's tag mapping."""

    name: str
    sniff: Callable[[Path], bool]
    read: Callable[[Path], Iterable[tuple[Sequence[str], Sequence[str], int, int]]]


CORPUS_FORMATS: dict[str, CorpusFormat] = {}


def register_corpus_format(corpus_format: CorpusFormat, first: bool = False) -> CorpusFormat:
    """Add a format; `first` puts it before the others (the last one, IOB, accepts any file)."""
    others = {} if not first else dict(CORPUS_FORMATS)
    if first:
        CORPUS_FORMATS.clear()
    CORPUS_FORMATS[corpus_format.name] = corpus_format
    CORPUS_FORMATS.update(others)
    return corpus_format


def _pubtator_sentences(path: Path):
    for document in read_pubtator(path):
        for sentence in document_to_sentences(document):
            yield sentence.tokens, sentence.tags, document.line, 0


register_corpus_format(CorpusFormat("pubtator", is_pubtator_file, _pubtator_sentences))
register_corpus_format(CorpusFormat("iob", lambda path: True,
                                    lambda path: ((raw.tokens, raw.tags, raw.line, 1) for raw in read_iob_file(path))))


# --------------------------------------------------------------------------------------------
# The registry and loading


@dataclass(frozen=True)
class CorpusSpec:
    """A corpus VANER knows: its entity type and how its files' raw type names map to it.

    `tag_mapping` maps a raw type name ("protein") to the entity type or to None (read as O);
    None maps every raw type to `entity_type`. `name` is the `source_corpus` of its sentences.
    """

    name: str
    display_name: str  # as in the VANER paper's tables
    entity_type: str
    tag_mapping: Mapping[str, str | None] | None = None

    def map_type(self, raw_type: str) -> str | None:
        """The entity type of a raw type name, None for O; KeyError for a raw type the corpus lacks."""
        if self.tag_mapping is None:
            return self.entity_type
        return self.tag_mapping[raw_type]


def _spec(name, display_name, entity_type, **tag_mapping):
    return CorpusSpec(name, display_name, entity_type, {entity_type: entity_type, **tag_mapping})


CORPORA: dict[str, CorpusSpec] = {
    spec.name: spec
    for spec in (
        # The PubTator release of NCBI-disease has four mention classes, all diseases.
        _spec("ncbi-disease", "NCBI-disease", "Disease", SpecificDisease="Disease", DiseaseClass="Disease",
              Modifier="Disease", CompositeMention="Disease"),
        # BC5CDR's PubTator release annotates both types; each view keeps its own.
        _spec("bc5cdr-disease", "BC5CDR-disease", "Disease", Chemical=None),
        _spec("bc5cdr-chem", "BC5CDR-chem", "Chemical", Disease=None),
        _spec("bc2gm", "BC2GM", "Gene", GENE="Gene"),
        # VANER's JNLPBA: Gene = protein + DNA + RNA; cell types and lines are not scored.
        CorpusSpec("jnlpba", "JNLPBA", "Gene",
                   {"protein": "Gene", "DNA": "Gene", "RNA": "Gene", "cell_type": None, "cell_line": None}),
        _spec("bc4chemd", "BC4CHEMD", "Chemical"),
        _spec("linnaeus", "linnaeus", "Species"),
        _spec("s800", "s800", "Species"),
    )
}


def get_corpus_spec(name: str) -> CorpusSpec | None:
    """The registered spec for a registry or display name (any case), None when not registered."""
    key = name.strip().lower()
    for spec in CORPORA.values():
        if key in (spec.name, spec.display_name.lower()):
            return spec
    return None


def _resolve_spec(name: str, entity_type: str | None, tag_mapping: Mapping[str, str | None] | None) -> CorpusSpec:
    spec = get_corpus_spec(name)
    if spec is not None:
        if entity_type is not None and entity_type != spec.entity_type:
            raise ValueError(
                f"corpus {spec.name!r} is registered with entity type {spec.entity_type!r}, not {entity_type!r}; "
                "give the corpus another name to read it with another type"
            )
        if tag_mapping is not None:
            spec = CorpusSpec(spec.name, spec.display_name, spec.entity_type, dict(tag_mapping))
        return spec
    if not entity_type:
        raise ValueError(
            f"corpus {name!r} is not registered ({', '.join(CORPORA)}); give its entity type "
            f"(e.g. {name}:Disease=path)"
        )
    return CorpusSpec(name, name, entity_type, None if tag_mapping is None else dict(tag_mapping))


def _to_sentence(tokens, raw_tags, spec: CorpusSpec, path: Path, line: int, line_step: int) -> tuple[Sentence, int]:
    """Repair, then map typed raw tags to untyped tags of `spec.entity_type`; also returns the repair count."""
    repaired, count = repair_iob2(raw_tags)
    tags = []
    for position, tag in enumerate(repaired):
        prefix, raw_type = split_tag(tag)
        if prefix == "O":
            tags.append("O")
            continue
        try:
            entity_type = spec.map_type(raw_type)
        except KeyError:
            known = ", ".join(sorted(spec.tag_mapping or ()))
            raise CorpusFormatError(
                f"{path}:{line + position * line_step}: type {raw_type!r} is not one of corpus {spec.name!r} ({known})"
            ) from None
        if entity_type is None:
            tags.append("O")
        elif entity_type != spec.entity_type:
            raise ValueError(
                f"corpus {spec.name!r} maps {raw_type!r} to {entity_type!r}, not its type {spec.entity_type!r}"
            )
        else:
            tags.append(prefix)
    return Sentence(tuple(tokens), tuple(tags), spec.entity_type, spec.name, f"{path}:{line}"), count


def load_corpus(
    name: str,
    path: str | Path,
    entity_type: str | None = None,
    tag_mapping: Mapping[str, str | None] | None = None,
) -> list[Sentence]:
    """Read a corpus file (the first of `CORPUS_FORMATS` that recognises it: PubTator, else IOB/CoNLL) into
    `Sentence`s.

    A registered `name` brings its entity type and tag mapping; any other name needs `entity_type`,
    and then every raw type of the file maps to it unless `tag_mapping` is given. An `I-` tag that
    does not continue an entity of its type is read as `B-` (as conlleval does), with one warning per
    file giving the count.
    """
    path = Path(path)
    spec = _resolve_spec(name, entity_type, tag_mapping)
    if not path.is_file():
        raise CorpusFormatError(f"{path}: no such corpus file")
    corpus_format = next(fmt for fmt in CORPUS_FORMATS.values() if fmt.sniff(path))
    sentences: list[Sentence] = []
    repairs = 0
    for tokens, tags, line, line_step in corpus_format.read(path):
        sentence, count = _to_sentence(tokens, tags, spec, path, line, line_step)
        sentences.append(sentence)
        repairs += count
    if repairs:
        logger.warning("%s: %d I- tags that did not continue an entity were read as B-", path, repairs)
    return sentences


# --------------------------------------------------------------------------------------------
# Command-line corpus arguments


class CorpusArgumentError(ValueError, argparse.ArgumentTypeError):
    """A malformed `name=path` argument; argparse prints the message as is."""


@dataclass(frozen=True)
class CorpusArgument:
    """A corpus named on a command line: `name=path` (registered) or `name:Type=path` (new)."""

    name: str
    path: Path
    entity_type: str | None = None

    @property
    def spec(self) -> CorpusSpec:
        return _resolve_spec(self.name, self.entity_type, None)

    def split_path(self, split: str) -> Path:
        return resolve_split_path(self.path, split)

    def load(self, split: str | None = None) -> list[Sentence]:
        """The corpus's sentences: from `path` itself when it is a file, else from its `split` file."""
        path = self.path if self.path.is_file() or split is None else self.split_path(split)
        return load_corpus(self.spec.name, path, self.entity_type)


SPLIT_FILE_SUFFIXES = (".tsv", ".txt", ".conll", ".iob", ".pubtator", ".PubTator.txt")
# Names of one split: corpora call it devel or dev, datasets validation; any of them finds the file.
VALIDATION_SPLIT_NAMES = ("validation", "devel", "dev")


def resolve_split_path(path: str | Path, split: str) -> Path:
    """`path` when it is a file, else the file of `split` in folder `path` ("test" -> "test.tsv"; "validation",
    "devel" and "dev" find each other's files, the name asked for first)."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise CorpusFormatError(f"{path}: no such corpus file or folder")
    names = [split]
    if split in VALIDATION_SPLIT_NAMES:
        names += [name for name in VALIDATION_SPLIT_NAMES if name != split]
    for name in names:
        for suffix in SPLIT_FILE_SUFFIXES:
            candidate = path / f"{name}{suffix}"
            if candidate.is_file():
                return candidate
    present = ", ".join(sorted(child.name for child in path.iterdir() if child.is_file())) or "no files"
    asked = " / ".join(names)
    raise CorpusFormatError(f"{path}: no {asked} split file ({split}.tsv, ...); the folder holds {present}")


def parse_corpus_argument(argument: str) -> CorpusArgument:
    """Parse `name=path` (a registered corpus) or `name:Type=path` (a new corpus with its entity type).

    `path` is a corpus file or a folder of split files (train.tsv, devel.tsv, test.tsv). Usable as an
    argparse `type=`.
    """
    if "=" not in argument:
        raise CorpusArgumentError(
            f"corpus {argument!r}: expected name=path (registered: {', '.join(CORPORA)}) or name:Type=path"
        )
    name_part, path_text = argument.split("=", 1)
    name, _, entity_type = name_part.partition(":")
    name, entity_type, path_text = name.strip(), entity_type.strip(), path_text.strip()
    if not name:
        raise CorpusArgumentError(f"corpus {argument!r}: the name before '=' is empty")
    if not path_text:
        raise CorpusArgumentError(f"corpus {argument!r}: the path after '=' is empty")
    if ":" in name_part and not entity_type:
        raise CorpusArgumentError(f"corpus {argument!r}: the entity type after ':' is empty")
    spec = get_corpus_spec(name)
    if spec is None and not entity_type:
        raise CorpusArgumentError(
            f"corpus {name!r} is not registered ({', '.join(CORPORA)}); give its entity type as {name}:Type={path_text}"
        )
    if spec is not None and entity_type and entity_type != spec.entity_type:
        raise CorpusArgumentError(
            f"corpus {spec.name!r} is registered as {spec.entity_type}; drop ':{entity_type}' or choose another name"
        )
    return CorpusArgument(spec.name if spec else name, Path(path_text), entity_type or None)
