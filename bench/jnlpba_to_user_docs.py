"""Turn JNLPBA's devel and test splits into the documents a curator's annotation tool would export, for the
walk-through of docs/your-own-types.md (issue 33): BioC XML and brat standoff, one document per `-DOCSTART-`
block (a MEDLINE abstract: its first sentence is the title), keeping the raw types asked for (default
cell_line and cell_type, which no VANER model here was trained on).

    python bench/jnlpba_to_user_docs.py --jnlpba ../shared/corpora/jnlpba --output_dir outputs/own-types/docs
    python bench/jnlpba_to_user_docs.py ... --max_sentences 100 --output_dir outputs/own-types/docs-100

Writes, per split (devel, test): bioc/{split}.xml (a BioC collection, title and abstract passages with
document-level offsets, an annotation per mention with infon `type`), brat/{split}/{id}.txt and .ann (title,
a line break, the abstract), and iob/{type}/{train,devel,test}.tsv per kept type: the same sentences as VANER
reads them from the documents (`vaner.annotated`, the annotation path's words), as untyped IOB for
bench/baseline_minilm.py (train is the devel split; devel.tsv repeats it, as the baseline script reads one).
The text is the corpus's tokens joined by single spaces (the original spacing is not in the corpus).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import bioc
from bioc import biocxml

from vaner.annotated import parse_type_map, read_annotated
from vaner.corpora import Sentence, iob_spans, read_iob_file, repair_iob2, write_iob_file

SPLITS = ("devel", "test")


def documents_of(path: Path, split: str, kept: set[str], max_sentences: int | None):
    """(id, title, abstract, [(raw type, start, end)]) per -DOCSTART- block; whole documents up to
    `max_sentences` sentences (at least one document)."""
    blocks: list[list] = []
    for sentence in read_iob_file(path):
        if sentence.document_start or not blocks:
            blocks.append([])
        blocks[-1].append(sentence)
    total = 0
    for number, block in enumerate(blocks, start=1):
        if max_sentences and total and total + len(block) > max_sentences:
            break
        total += len(block)
        yield document(f"{split}-{number:04d}", block, kept)


def document(document_id: str, sentences, kept: set[str]):
    """Title (first sentence) and abstract (the rest, one space between sentences) with character offsets of
    the mentions of the kept types; the title and abstract are one space apart (the BioC offsets)."""
    parts, mentions, offset = [], [], 0
    for sentence in sentences:
        starts = []
        for token in sentence.tokens:
            starts.append(offset)
            offset += len(token) + 1
        tags, _ = repair_iob2(sentence.tags)
        for raw_type, first, last in iob_spans(tags):
            if raw_type in kept:
                mentions.append((raw_type, starts[first], starts[last - 1] + len(sentence.tokens[last - 1])))
        parts.append(" ".join(sentence.tokens))
    title, abstract = parts[0], " ".join(parts[1:])
    return document_id, title, abstract, mentions


def bioc_document(document_id: str, title: str, abstract: str, mentions) -> bioc.BioCDocument:
    text = f"{title} {abstract}"
    result = bioc.BioCDocument()
    result.id = document_id
    number = 0
    for offset, passage_text, kind in ((0, title, "title"), (len(title) + 1, abstract, "abstract")):
        passage = bioc.BioCPassage()
        passage.offset, passage.text, passage.infons["type"] = offset, passage_text, kind
        for raw_type, start, end in mentions:
            if offset <= start < offset + len(passage_text):
                annotation = bioc.BioCAnnotation()
                annotation.id, annotation.infons["type"], annotation.text = f"T{number}", raw_type, text[start:end]
                annotation.add_location(bioc.BioCLocation(start, end - start))
                passage.add_annotation(annotation)
                number += 1
        result.add_passage(passage)
    return result


def write_brat(folder: Path, document_id: str, title: str, abstract: str, mentions) -> None:
    text = f"{title}\n{abstract}"  # the line break stands where BioC's offsets put a space
    (folder / f"{document_id}.txt").write_text(text, encoding="utf-8")
    lines = [f"T{number}\t{raw_type} {start} {end}\t{text[start:end]}"
             for number, (raw_type, start, end) in enumerate(mentions, start=1)]
    (folder / f"{document_id}.ann").write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


def write_iob(output_dir: Path, kept: list[str]) -> None:
    """Untyped IOB files per kept type from the brat documents, read as VANER reads them."""
    type_map = parse_type_map(f"{raw}={raw}" for raw in kept)
    tables = {split: read_annotated([output_dir / "brat" / split], type_map) for split in SPLITS}
    for raw in kept:
        folder = output_dir / "iob" / raw
        folder.mkdir(parents=True, exist_ok=True)
        for split, name in (("devel", "train"), ("devel", "devel"), ("test", "test")):
            sentences = [Sentence(s.tokens, s.tags.get(raw, ("O",) * len(s.tokens)), raw, raw)
                         for s in tables[split].sentences]
            write_iob_file(sentences, folder / f"{name}.tsv")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jnlpba", default="../shared/corpora/jnlpba", help="folder with devel.tsv and test.tsv")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--types", nargs="+", default=["cell_line", "cell_type"], help="raw JNLPBA types kept")
    parser.add_argument("--max_sentences", type=int, default=None,
                        help="devel documents up to this many sentences (whole documents); test is always whole")
    args = parser.parse_args(argv)
    output_dir, kept = Path(args.output_dir), set(args.types)
    counts = {}
    for split in SPLITS:
        limit = args.max_sentences if split == "devel" else None
        documents = list(documents_of(Path(args.jnlpba) / f"{split}.tsv", split, kept, limit))
        collection = bioc.BioCCollection()
        collection.source, collection.key = "JNLPBA (converted by bench/jnlpba_to_user_docs.py)", "bioc.key"
        brat_folder = output_dir / "brat" / split
        brat_folder.mkdir(parents=True, exist_ok=True)
        for document_id, title, abstract, mentions in documents:
            collection.add_document(bioc_document(document_id, title, abstract, mentions))
            write_brat(brat_folder, document_id, title, abstract, mentions)
        (output_dir / "bioc").mkdir(parents=True, exist_ok=True)
        (output_dir / "bioc" / f"{split}.xml").write_text(biocxml.dumps(collection), encoding="utf-8")
        counts[split] = {"documents": len(documents),
                         **{raw: sum(m[0] == raw for d in documents for m in d[3]) for raw in args.types}}
    write_iob(output_dir, args.types)
    print(json.dumps(counts))
    return counts


if __name__ == "__main__":
    main()
