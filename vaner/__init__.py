"""Shared logic of the VANER command-line tools, one module per stage of the data flow.

corpora (reading and writing corpora) -> features (datasets + tokenization) -> metrics;
knowledge_base -> phrases -> retrieval -> dbr (Dense Bioentities Recognition samples);
documents (annotating raw text).
"""
