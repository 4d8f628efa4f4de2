"""The ontology in owlready2, for HermiT. owlready2 reads N-Triples, not Turtle: this converts."""

from __future__ import annotations

import tempfile
from pathlib import Path

import rdflib

from kg.settings import Settings


def ontology_as_ntriples(settings: Settings, extra_turtle: str = "") -> Path:
    """Write ontology/*.ttl (resolved against the base IRI) plus optional Turtle to an N-Triples file."""
    graph = rdflib.Graph()
    for path in sorted(settings.ontology_dir.glob("*.ttl")):
        graph.parse(path, format="turtle", publicID=settings.base_iri + "/")
    if extra_turtle:
        graph.parse(data=extra_turtle, format="turtle", publicID=settings.base_iri + "/")
    handle = tempfile.NamedTemporaryFile(prefix="ctkg-", suffix=".nt", delete=False)
    handle.close()
    graph.serialize(handle.name, format="nt", encoding="utf-8")
    return Path(handle.name)


def classify(settings: Settings, extra_turtle: str = ""):
    """Load the ontology (and extra individuals) into a fresh owlready2 world and run HermiT.

    Returns the world; raises ``owlready2.OwlReadyInconsistentOntologyError`` if inconsistent.
    """
    import owlready2

    path = ontology_as_ntriples(settings, extra_turtle)
    try:
        world = owlready2.World()
        ontology = world.get_ontology(path.as_uri()).load(format="ntriples")
        with ontology:
            owlready2.sync_reasoner_hermit(world, infer_property_values=False, debug=0)
        return world
    finally:
        path.unlink(missing_ok=True)
