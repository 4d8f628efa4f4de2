"""ctkg: a clinical-trials knowledge graph."""

__version__ = "0.1.0"
