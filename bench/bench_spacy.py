"""The spaCy component beside predict_vaner.py (issue 25). A measurement, not a test.

On `--documents` abstract-sized documents (NCBI-disease test sentences, words joined by spaces), in one process:
the annotation time of `nlp.pipe` (a blank English pipeline with the "vaner" component) against
`DocumentAnnotator.annotate_documents` (what predict_vaner.py runs) on the same loaded model, rounds taking turns,
model loading aside; and whether `doc.spans["vaner"]` holds exactly the entities (start, end, type) that
`predict_vaner.py` writes for the same texts (run as a user runs it). `--html` writes the displaCy span picture
of the first document.

    python bench/bench_spacy.py --documents 10 --html docs/spacy-abstract.html
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT / "bench"))

from bench_one_pass import cpu_kind, ncbi_documents  # noqa: E402


def cli_entities(model: str, documents: list[dict], dtype: str) -> list[list[tuple]]:
    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder) / "in.jsonl", Path(folder) / "out.jsonl"
        source.write_text("".join(json.dumps(d) + "\n" for d in documents), encoding="utf-8")
        subprocess.run([sys.executable, str(PROJECT / "predict_vaner.py"), "--model_name_or_path", model, "--input",
                        str(source), "--output", str(target), "--dtype", dtype, "--no_progress"], check=True,
                       capture_output=True)
        records = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    return [sorted((e["start"], e["end"], e["type"]) for e in record["entities"]) for record in records]


def main(argv=None) -> None:
    import spacy
    from spacy import displacy

    from vaner import DEFAULT_MODEL
    from vaner.documents import Document

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--documents", type=int, default=10)
    parser.add_argument("--sentences_per_document", type=int, default=12)
    parser.add_argument("--dtype", default="float32", choices=["auto", "bfloat16", "float32"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--html", type=Path, help="write the displaCy span picture of the first document here")
    args = parser.parse_args(argv)
    documents = ncbi_documents(args.documents, args.sentences_per_document)
    texts = [d["text"] for d in documents]

    nlp = spacy.blank("en")
    component = nlp.add_pipe("vaner", config={"model": args.model, "dtype": args.dtype})
    annotator = component.annotator  # loads the model once, for both timings
    list(nlp.pipe(texts[:1]))
    timings = {"nlp.pipe": [], "DocumentAnnotator (predict_vaner.py's path)": []}
    for _ in range(args.rounds):
        started = time.perf_counter()
        docs = list(nlp.pipe(texts, batch_size=64))
        timings["nlp.pipe"].append(time.perf_counter() - started)
        started = time.perf_counter()
        list(annotator.annotate_documents(Document(str(i), text) for i, text in enumerate(texts)))
        timings["DocumentAnnotator (predict_vaner.py's path)"].append(time.perf_counter() - started)
    best = {name: min(values) for name, values in timings.items()}
    print(f"CPU: {cpu_kind()}; {len(texts)} documents of {args.sentences_per_document} NCBI-disease test sentences; "
          f"dtype {args.dtype}; best of {args.rounds} rounds")
    for name, seconds in best.items():
        print(f"{name}: {seconds:.2f} s ({len(texts) / seconds:.2f} documents/s)")
    ratio = best["nlp.pipe"] / best["DocumentAnnotator (predict_vaner.py's path)"]
    print(f"nlp.pipe / annotator time: {ratio:.3f} (goal <= 1.2)")

    spans = [sorted((s.start_char, s.end_char, s.label_) for s in doc.spans["vaner"]) for doc in docs]
    single_docs = [nlp(text) for text in texts]
    single = [sorted((s.start_char, s.end_char, s.label_) for s in doc.spans["vaner"]) for doc in single_docs]
    cli = cli_entities(args.model, documents, args.dtype)
    print(f"entities: nlp.pipe {sum(map(len, spans))}, nlp(text) {sum(map(len, single))}, predict_vaner.py "
          f"{sum(map(len, cli))}; identical to the CLI: nlp.pipe {spans == cli}, nlp(text) {single == cli}")
    if args.html:
        html = displacy.render(docs[0], style="span", options={"spans_key": "vaner"}, page=True)
        args.html.write_text(html, encoding="utf-8")
        print(f"displaCy picture of document 0: {args.html}")


if __name__ == "__main__":
    main()
