"""The knowledge base of DBR: typed entity names from UMLS, `name<TAB>type` files and annotated corpora.

Every source's type names are normalised to the VANER types (Disease, Chemical, Gene, Species) by
the tables below; any other type is kept under its own name, so that its entities can serve as
negatives (tagged O) in Dense Bioentities Recognition samples.

UMLS semantic types mapped to VANER types (by TUI; every other semantic type keeps its STY name):

| VANER type | UMLS semantic types |
|---|---|
| Disease | T019 Congenital Abnormality, T020 Acquired Abnormality, T037 Injury or Poisoning, T046 Pathologic Function, T047 Disease or Syndrome, T048 Mental or Behavioral Dysfunction, T049 Cell or Molecular Dysfunction, T050 Experimental Model of Disease, T184 Sign or Symptom, T190 Anatomical Abnormality, T191 Neoplastic Process |
| Chemical | T103 Chemical, T104 Chemical Viewed Structurally, T109 Organic Chemical, T114 Nucleic Acid, Nucleoside, or Nucleotide, T120 Chemical Viewed Functionally, T121 Pharmacologic Substance, T122 Biomedical or Dental Material, T123 Biologically Active Substance, T125 Hormone, T127 Vitamin, T130 Indicator, Reagent, or Diagnostic Aid, T131 Hazardous or Poisonous Substance, T195 Antibiotic, T196 Element, Ion, or Isotope, T197 Inorganic Chemical, T200 Clinical Drug (and the retired T110, T111, T115, T118, T119, T124) |
| Gene | T028 Gene or Genome, T116 Amino Acid, Peptide, or Protein, T126 Enzyme, T192 Receptor |
| Species | T001 Organism, T002 Plant, T004 Fungus, T005 Virus, T007 Bacterium, T008 Animal, T010 Vertebrate, T011 Amphibian, T012 Bird, T013 Fish, T014 Reptile, T015 Mammal, T016 Human, T194 Archaeon, T204 Eukaryote (and the retired T003, T006, T009) |

T129 Immunologic Factor is left unmapped on purpose (antibodies and cytokines are genes in some
corpora, not in others). A UMLS concept with several semantic types gives one entry per type; when
a DBR sample of type T is built, names that also carry type T are never used as negatives.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .corpora import (
    ENTITY_TYPES,
    CorpusFormatError,
    Sentence,
    Utf8Lines,
    iob_spans,
    read_iob_file,
    tokenize_with_offsets,
)

logger = logging.getLogger(__name__)


class KnowledgeBaseFormatError(ValueError):
    """A knowledge-base file that cannot be read; the message names the file and line."""


# --------------------------------------------------------------------------------------------
# Type normalisation

_UMLS_TYPES: dict[str, tuple[str, str]] = {
    # TUI: (semantic type name, VANER type)
    "T019": ("Congenital Abnormality", "Disease"),
    "T020": ("Acquired Abnormality", "Disease"),
    "T037": ("Injury or Poisoning", "Disease"),
    "T046": ("Pathologic Function", "Disease"),
    "T047": ("Disease or Syndrome", "Disease"),
    "T048": ("Mental or Behavioral Dysfunction", "Disease"),
    "T049": ("Cell or Molecular Dysfunction", "Disease"),
    "T050": ("Experimental Model of Disease", "Disease"),
    "T184": ("Sign or Symptom", "Disease"),
    "T190": ("Anatomical Abnormality", "Disease"),
    "T191": ("Neoplastic Process", "Disease"),
    "T103": ("Chemical", "Chemical"),
    "T104": ("Chemical Viewed Structurally", "Chemical"),
    "T109": ("Organic Chemical", "Chemical"),
    "T110": ("Steroid", "Chemical"),
    "T111": ("Eicosanoid", "Chemical"),
    "T114": ("Nucleic Acid, Nucleoside, or Nucleotide", "Chemical"),
    "T115": ("Organophosphorus Compound", "Chemical"),
    "T118": ("Carbohydrate", "Chemical"),
    "T119": ("Lipid", "Chemical"),
    "T120": ("Chemical Viewed Functionally", "Chemical"),
    "T121": ("Pharmacologic Substance", "Chemical"),
    "T122": ("Biomedical or Dental Material", "Chemical"),
    "T123": ("Biologically Active Substance", "Chemical"),
    "T124": ("Neuroreactive Substance or Biogenic Amine", "Chemical"),
    "T125": ("Hormone", "Chemical"),
    "T127": ("Vitamin", "Chemical"),
    "T130": ("Indicator, Reagent, or Diagnostic Aid", "Chemical"),
    "T131": ("Hazardous or Poisonous Substance", "Chemical"),
    "T195": ("Antibiotic", "Chemical"),
    "T196": ("Element, Ion, or Isotope", "Chemical"),
    "T197": ("Inorganic Chemical", "Chemical"),
    "T200": ("Clinical Drug", "Chemical"),
    "T028": ("Gene or Genome", "Gene"),
    "T116": ("Amino Acid, Peptide, or Protein", "Gene"),
    "T126": ("Enzyme", "Gene"),
    "T192": ("Receptor", "Gene"),
    "T001": ("Organism", "Species"),
    "T002": ("Plant", "Species"),
    "T003": ("Alga", "Species"),
    "T004": ("Fungus", "Species"),
    "T005": ("Virus", "Species"),
    "T006": ("Rickettsia or Chlamydia", "Species"),
    "T007": ("Bacterium", "Species"),
    "T008": ("Animal", "Species"),
    "T009": ("Invertebrate", "Species"),
    "T010": ("Vertebrate", "Species"),
    "T011": ("Amphibian", "Species"),
    "T012": ("Bird", "Species"),
    "T013": ("Fish", "Species"),
    "T014": ("Reptile", "Species"),
    "T015": ("Mammal", "Species"),
    "T016": ("Human", "Species"),
    "T194": ("Archaeon", "Species"),
    "T204": ("Eukaryote", "Species"),
}

UMLS_TUI_TO_ENTITY_TYPE: dict[str, str] = {tui: entity_type for tui, (_, entity_type) in _UMLS_TYPES.items()}

# Other spellings of the VANER types: semantic-group names of UMLS-derived lists ("Gene/Protein"),
# the raw tags of annotated corpora (BioNLP "Gene_or_gene_product", "Simple_chemical", "Organism",
# JNLPBA "protein"/"DNA"/"RNA", BC2GM "GENE"). Keys are compared after `_type_key`.
_TYPE_ALIASES: dict[str, str] = {
    "disease": "Disease",
    "diseases": "Disease",
    "disorder": "Disease",
    "disorders": "Disease",
    "chemical": "Chemical",
    "chemicals": "Chemical",
    "simple chemical": "Chemical",
    "drug": "Chemical",
    "chemicals & drugs": "Chemical",
    "gene": "Gene",
    "genes": "Gene",
    "protein": "Gene",
    "gene/protein": "Gene",
    "gene or protein": "Gene",
    "gene or gene product": "Gene",
    "ggp": "Gene",
    "dna": "Gene",
    "rna": "Gene",
    "species": "Species",
    "organism": "Species",
    "organisms": "Species",
    "taxon": "Species",
}


def _type_key(raw_type: str) -> str:
    return re.sub(r"[\s_]+", " ", raw_type.strip()).casefold()


ENTITY_TYPE_ALIASES: dict[str, str] = {
    **{_type_key(name): entity_type for name, entity_type in _UMLS_TYPES.values()},
    **{_type_key(alias): entity_type for alias, entity_type in _TYPE_ALIASES.items()},
}


def normalize_entity_type(raw_type: str) -> str:
    """The VANER type of a raw type name, or the raw name itself (stripped) for any other type.

    "Gene/Protein", "Gene or Genome", "Gene_or_gene_product" -> Gene; "Disease or Syndrome",
    "Neoplastic Process" -> Disease; "Pharmacologic Substance", "Clinical Drug" -> Chemical;
    "Organism", "Mammal" -> Species; "Anatomy" stays "Anatomy".
    """
    stripped = raw_type.strip()
    return ENTITY_TYPE_ALIASES.get(_type_key(stripped), stripped)


# --------------------------------------------------------------------------------------------
# The knowledge base

_HAS_LETTER = re.compile(r"[^\W\d_]")


@dataclass(frozen=True)
class KnowledgeBaseEntry:
    """One knowledge-base entry: a name and its (normalised) entity type."""

    name: str
    entity_type: str


class KnowledgeBase:
    """Typed entity names without repeats: (name, type) pairs are compared case-insensitively and the
    first spelling seen is kept, so the order of sources decides which spelling stays."""

    def __init__(self, entities: Iterable[KnowledgeBaseEntry] = ()):
        self.names: list[str] = []
        self.entity_types: list[str] = []
        self._keys: set[tuple[str, str]] = set()
        self.sources: Counter = Counter()  # entries added per source label
        self.without_letters = 0  # names left out because they hold no letter
        self.add_all(entities)

    def add(self, name: str, entity_type: str, source: str = "") -> bool:
        """Add one entry; returns False when the (name, type) pair is already there, or when the name
        has no letter at all ("1237", "- 3": identifiers and fragments of discontinuous annotations)."""
        name = " ".join(name.split())
        entity_type = normalize_entity_type(entity_type)
        key = (name.casefold(), entity_type)
        if not name or not entity_type or key in self._keys:
            return False
        if not _HAS_LETTER.search(name):
            self.without_letters += 1
            return False
        self._keys.add(key)
        self.names.append(name)
        self.entity_types.append(entity_type)
        self.sources[source] += 1
        return True

    def add_all(self, entities: Iterable[KnowledgeBaseEntry], source: str = "") -> int:
        """Add entries; returns how many were new."""
        return sum(self.add(entity.name, entity.entity_type, source) for entity in entities)

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int) -> KnowledgeBaseEntry:
        return KnowledgeBaseEntry(self.names[index], self.entity_types[index])

    def __iter__(self) -> Iterator[KnowledgeBaseEntry]:
        return (KnowledgeBaseEntry(name, entity_type) for name, entity_type in zip(self.names, self.entity_types))

    def __contains__(self, entity: KnowledgeBaseEntry) -> bool:
        return (entity.name.casefold(), normalize_entity_type(entity.entity_type)) in self._keys

    def has(self, name: str, entity_type: str) -> bool:
        """Whether `name` (any case) is in the knowledge base with `entity_type`."""
        return (" ".join(name.split()).casefold(), entity_type) in self._keys

    def counts_by_type(self) -> Counter:
        return Counter(self.entity_types)

    def indices_by_type(self) -> dict[str, list[int]]:
        """Entry indices per entity type, in knowledge-base order."""
        indices: dict[str, list[int]] = {}
        for index, entity_type in enumerate(self.entity_types):
            indices.setdefault(entity_type, []).append(index)
        return indices

    def content_hash(self) -> str:
        """A digest of the entries in order: the cache key of their embeddings."""
        digest = hashlib.sha256()
        for name, entity_type in zip(self.names, self.entity_types):
            digest.update(f"{name}\t{entity_type}\n".encode())
        return digest.hexdigest()

    def summary_lines(self) -> list[str]:
        """Counts per type (VANER types first), for logs and the dataset card."""
        counts = self.counts_by_type()
        ordered = [entity_type for entity_type in ENTITY_TYPES if entity_type in counts]
        others = sorted((entity_type for entity_type in counts if entity_type not in ENTITY_TYPES),
                        key=lambda entity_type: -counts[entity_type])
        lines = [f"{entity_type}: {counts[entity_type]}" for entity_type in ordered]
        other_total = sum(counts[entity_type] for entity_type in others)
        if others:
            top = ", ".join(f"{entity_type} {counts[entity_type]}" for entity_type in others[:8])
            lines.append(f"other types (negatives): {other_total} in {len(others)} types ({top}, ...)")
        return lines


# --------------------------------------------------------------------------------------------
# Sources


def read_name_type_file(path: str | Path) -> list[KnowledgeBaseEntry]:
    """Entries of a `name<TAB>type` file (UTF-8; a first line `name<TAB>type` is a header and skipped;
    blank lines are skipped). A row without a name or a type is an error naming file and line."""
    path = Path(path)
    if not path.is_file():
        raise KnowledgeBaseFormatError(f"{path}: no such knowledge-base file")
    entities = []
    with Utf8Lines(path, KnowledgeBaseFormatError) as handle:
        for line_number, line in enumerate(handle, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            fields = line.split("\t")
            if line_number == 1 and [field.strip().lower() for field in fields] == ["name", "type"]:
                continue
            if len(fields) != 2:
                raise KnowledgeBaseFormatError(
                    f"{path}:{line_number}: expected name<TAB>type, got {len(fields)} field(s): {line!r}"
                )
            name, entity_type = fields[0].strip(), fields[1].strip()
            if not name:
                raise KnowledgeBaseFormatError(f"{path}:{line_number}: empty name: {line!r}")
            if not entity_type:
                raise KnowledgeBaseFormatError(f"{path}:{line_number}: missing type for {name!r}")
            entities.append(KnowledgeBaseEntry(name, normalize_entity_type(entity_type)))
    return entities


def _rrf_rows(path: Path, min_fields: int) -> Iterator[tuple[int, list[str]]]:
    with Utf8Lines(path, KnowledgeBaseFormatError) as handle:
        for line_number, line in enumerate(handle, start=1):
            line = line.rstrip("\r\n")
            if not line:
                continue
            fields = line.split("|")
            if len(fields) < min_fields:
                raise KnowledgeBaseFormatError(
                    f"{path}:{line_number}: expected at least {min_fields} '|'-separated fields, got {len(fields)}"
                )
            yield line_number, fields


def read_umls(
    mrconso: str | Path,
    mrsty: str | Path,
    keep_other_types: bool = True,
    language: str = "ENG",
) -> Iterator[KnowledgeBaseEntry]:
    """Entries from a UMLS release: English, non-suppressed (SUPPRESS=N) names of MRCONSO.RRF, typed by
    the semantic types of their concept in MRSTY.RRF (mapped by `UMLS_TUI_TO_ENTITY_TYPE`).

    Semantic types outside the table keep their STY name (negatives) unless `keep_other_types` is False.
    A generator: MRCONSO.RRF (millions of lines) is streamed, never held in memory.
    """
    mrconso, mrsty = Path(mrconso), Path(mrsty)
    for path in (mrconso, mrsty):
        if not path.is_file():
            raise KnowledgeBaseFormatError(f"{path}: no such UMLS file")
    return _umls_entities(mrconso, mrsty, keep_other_types, language)


def _umls_entities(mrconso: Path, mrsty: Path, keep_other_types: bool, language: str) -> Iterator[KnowledgeBaseEntry]:
    concept_types: dict[str, list[str]] = {}
    for line_number, fields in _rrf_rows(mrsty, 4):
        cui, tui, sty = fields[0], fields[1], fields[3]
        if not cui or not (tui or sty):
            raise KnowledgeBaseFormatError(f"{mrsty}:{line_number}: missing CUI or semantic type")
        entity_type = UMLS_TUI_TO_ENTITY_TYPE.get(tui) or normalize_entity_type(sty or tui)
        if entity_type not in ENTITY_TYPES and not keep_other_types:
            continue
        types = concept_types.setdefault(cui, [])
        if entity_type not in types:
            types.append(entity_type)
    for line_number, fields in _rrf_rows(mrconso, 17):
        cui, lat, name, suppress = fields[0], fields[1], fields[14], fields[16]
        if lat != language or suppress != "N":
            continue
        if not name.strip():
            raise KnowledgeBaseFormatError(f"{mrconso}:{line_number}: empty name (STR) for concept {cui}")
        for entity_type in concept_types.get(cui, ()):
            yield KnowledgeBaseEntry(name.strip(), entity_type)


def mentions_of_sentences(sentences: Iterable[Sentence]) -> list[KnowledgeBaseEntry]:
    """The annotated mentions of corpus sentences (untyped tags), typed by each sentence's entity type."""
    entities = []
    for sentence in sentences:
        for _, start, end in iob_spans(sentence.tags):
            entities.append(KnowledgeBaseEntry(" ".join(sentence.tokens[start:end]), sentence.entity_type))
    return entities


def mentions_of_iob_file(path: str | Path) -> list[KnowledgeBaseEntry]:
    """The typed mentions of an IOB file ("B-Gene_or_gene_product" ...), types normalised.

    This reads the extra annotated corpora of a knowledge base (e.g. BioNLP'13 CG ggp), whose raw tag
    names differ from the VANER types.
    """
    entities = []
    for raw in read_iob_file(path):
        try:
            spans = iob_spans(raw.tags)
        except ValueError as error:
            raise CorpusFormatError(f"{path}:{raw.line}: {error}") from None
        for raw_type, start, end in spans:
            if not raw_type:
                raise CorpusFormatError(f"{path}:{raw.line}: untyped tags; a knowledge-base corpus needs B-Type tags")
            entities.append(KnowledgeBaseEntry(" ".join(raw.tokens[start:end]), normalize_entity_type(raw_type)))
    return entities


@dataclass
class AnnotationConsistency:
    """How often the training corpora of a name's type annotate the name where it occurs."""

    occurrences: int
    annotated: int

    @property
    def share(self) -> float:
        return self.annotated / self.occurrences if self.occurrences else 0.0


def _capitalisation_variant(token: str) -> str | None:
    """"Complex" for "complex" and back (a sentence-initial capital); None for "ALL", "BRCA1", "1"."""
    if token[:1].isupper() and (token[1:].islower() or not token[1:]) and len(token) > 1:
        return token[0].lower() + token[1:]
    if token[:1].islower() and (token[1:].islower() or not token[1:]):
        return token[0].upper() + token[1:]
    return None


def annotation_consistency(
    knowledge_base: KnowledgeBase, sentences: Iterable[Sentence], max_tokens: int = 6
) -> dict[int, AnnotationConsistency]:
    """For each entry whose type has training sentences: how many times its name (tokenized like the
    corpora; same case, but for the capital of its first word) occurs in those sentences as a gold mention or outside any mention, and how many
    of those occurrences are gold mentions. Occurrences inside or across a mention are not counted."""
    sentences_by_type: dict[str, list[Sentence]] = {}
    for sentence in sentences:
        sentences_by_type.setdefault(sentence.entity_type, []).append(sentence)
    rows_by_key: dict[tuple[str, tuple[str, ...]], list[int]] = {}
    for row, (name, entity_type) in enumerate(zip(knowledge_base.names, knowledge_base.entity_types)):
        if entity_type not in sentences_by_type:
            continue
        tokens = tuple(token for token, _, _ in tokenize_with_offsets(name))
        if 0 < len(tokens) <= max_tokens:
            rows_by_key.setdefault((entity_type, tokens), []).append(row)
    counts: dict[int, AnnotationConsistency] = {}
    for entity_type, typed_sentences in sentences_by_type.items():
        seen: set[tuple[str, ...]] = set()
        for sentence in typed_sentences:
            if sentence.tokens in seen:  # BC5CDR's two views share their sentences: count each once per type
                continue
            seen.add(sentence.tokens)
            tokens = sentence.tokens
            gold = {(start, end) for _, start, end in iob_spans(sentence.tags)}
            for start in range(len(tokens)):
                first_variant = _capitalisation_variant(tokens[start])
                for end in range(start + 1, min(len(tokens), start + max_tokens) + 1):
                    rows = rows_by_key.get((entity_type, tokens[start:end]), ())
                    if first_variant:
                        rows = [*rows, *rows_by_key.get((entity_type, (first_variant, *tokens[start + 1 : end])), ())]
                    if not rows:
                        continue
                    annotated = (start, end) in gold
                    # Inside or across a longer mention ("muscular dystrophy" in "Duchenne muscular
                    # dystrophy") is no verdict on the name: only exact mentions and all-O spans count.
                    if not annotated and any(tag != "O" for tag in sentence.tags[start:end]):
                        continue
                    for row in rows:
                        consistency = counts.setdefault(row, AnnotationConsistency(0, 0))
                        consistency.occurrences += 1
                        consistency.annotated += annotated
    return counts


def drop_unannotated_names(
    knowledge_base: KnowledgeBase,
    sentences: Iterable[Sentence],
    min_occurrences: int = 5,
    min_annotated_share: float = 0.1,
) -> tuple[KnowledgeBase, list[KnowledgeBaseEntry]]:
    """The knowledge base without the entries that the training corpora of their type contradict: names
    occurring at least `min_occurrences` times there but annotated as that type in less than
    `min_annotated_share` of them ("complex", "construct" listed as Gene/Protein in a UMLS-derived list,
    while BC2GM leaves them unannotated hundreds of times). Returns the kept and the dropped entries."""
    consistency = annotation_consistency(knowledge_base, sentences)
    dropped_rows = {
        row for row, counts in consistency.items()
        if counts.occurrences >= min_occurrences and counts.share < min_annotated_share
    }
    kept = KnowledgeBase(entity for row, entity in enumerate(knowledge_base) if row not in dropped_rows)
    kept.sources = Counter(knowledge_base.sources)  # names per source as read, before this filter
    kept.without_letters = knowledge_base.without_letters
    return kept, [knowledge_base[row] for row in sorted(dropped_rows)]


def find_umls_files(folder: str | Path) -> tuple[Path, Path]:
    """MRCONSO.RRF and MRSTY.RRF in `folder` (or its META/ subfolder, as in a UMLS release)."""
    folder = Path(folder)
    for candidate in (folder, folder / "META"):
        mrconso, mrsty = candidate / "MRCONSO.RRF", candidate / "MRSTY.RRF"
        if mrconso.is_file() and mrsty.is_file():
            return mrconso, mrsty
    raise KnowledgeBaseFormatError(f"{folder}: no MRCONSO.RRF and MRSTY.RRF (looked in it and in META/)")


# --------------------------------------------------------------------------------------------
# Sources: a new kind of knowledge-base source is one `register_kb_source` call (build_dbr_dataset.py's
# --kb_source NAME=PATH reaches every registered source)


@dataclass(frozen=True)
class KnowledgeBaseSource:
    """A kind of knowledge-base source: `read(path, keep_other_types)` gives its `KnowledgeBaseEntry`s (types normalised
    with `normalize_entity_type`; types other than the four VANER types left out unless `keep_other_types`)."""

    name: str
    read: Callable[[str | Path, bool], Iterable[KnowledgeBaseEntry]]
    help: str


KB_SOURCES: dict[str, KnowledgeBaseSource] = {}


def register_kb_source(source: KnowledgeBaseSource) -> KnowledgeBaseSource:
    KB_SOURCES[source.name] = source
    return source


def _name_type_entities(path: str | Path, keep_other_types: bool) -> list[KnowledgeBaseEntry]:
    entities = read_name_type_file(path)
    return entities if keep_other_types else [entity for entity in entities if entity.entity_type in ENTITY_TYPES]


def _umls_folder_entities(folder: str | Path, keep_other_types: bool) -> Iterator[KnowledgeBaseEntry]:
    mrconso, mrsty = find_umls_files(folder)
    return read_umls(mrconso, mrsty, keep_other_types)


register_kb_source(KnowledgeBaseSource(
    "mentions", lambda path, keep_other_types: mentions_of_iob_file(path),
    "an annotated IOB corpus file whose typed mentions become names"))
register_kb_source(KnowledgeBaseSource("name-type", _name_type_entities, "a name<TAB>type file (header optional)"))
register_kb_source(KnowledgeBaseSource("umls", _umls_folder_entities,
                                       "a UMLS folder with MRCONSO.RRF and MRSTY.RRF (or META/)"))


def build_knowledge_base(
    name_type_files: Sequence[str | Path] = (),
    umls_folders: Sequence[str | Path] = (),
    mention_files: Sequence[str | Path] = (),
    corpus_sentences: Iterable[Sentence] = (),
    keep_other_types: bool = True,
    sources: Sequence[tuple[str, str | Path]] = (),
) -> KnowledgeBase:
    """A knowledge base from all sources, in this order: corpus mentions, mention files, name-type
    files, UMLS folders, then `sources` ((registered source name, path) pairs); the first spelling of a
    name wins, so annotated spellings come first."""
    knowledge_base = KnowledgeBase()
    added = knowledge_base.add_all(mentions_of_sentences(corpus_sentences), source="corpus mentions")
    logger.info("knowledge base: %d names from the training corpora's mentions", added)
    ordered = [*(("mentions", path) for path in mention_files), *(("name-type", path) for path in name_type_files),
               *(("umls", folder) for folder in umls_folders), *sources]
    for kind, path in ordered:
        if kind not in KB_SOURCES:
            raise KnowledgeBaseFormatError(f"unknown knowledge-base source {kind!r}: the sources are {list(KB_SOURCES)}")
        added = knowledge_base.add_all(KB_SOURCES[kind].read(path, keep_other_types), source=str(path))
        logger.info("knowledge base: %d new names from %s %s", added, kind, path)
    if knowledge_base.without_letters:
        logger.info("knowledge base: %d names without any letter left out", knowledge_base.without_letters)
    return knowledge_base
