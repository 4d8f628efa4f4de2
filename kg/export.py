"""``kg export``: dumps written by pyoxigraph (fast), gzip when the file name ends in .gz."""

from __future__ import annotations

import gzip
import sys
from pathlib import Path
from typing import BinaryIO

import pyoxigraph
from pyoxigraph import NamedNode, RdfFormat, Store

from kg.namespaces import prefixes

FORMATS = {
    "ttl": RdfFormat.TURTLE,
    "nt": RdfFormat.N_TRIPLES,
    "nq": RdfFormat.N_QUADS,
    "trig": RdfFormat.TRIG,
    "jsonld": RdfFormat.JSON_LD,
    "rdf": RdfFormat.RDF_XML,
}


def export(store: Store, fmt: str, out: BinaryIO, *, graph: str | None = None, base: str | None = None) -> None:
    """Write the store (every graph) or one graph. Triple formats get the union of the graphs."""
    rdf_format = FORMATS[fmt]
    use_prefixes = prefixes(base) if base and rdf_format in (RdfFormat.TURTLE, RdfFormat.TRIG) else None
    if graph is not None:
        store.dump(out, rdf_format, from_graph=NamedNode(graph), prefixes=use_prefixes)
    elif rdf_format.supports_datasets:
        store.dump(out, rdf_format, prefixes=use_prefixes)
    else:
        # The union of the graphs, each triple once (a concept's label sits in several trial graphs).
        pyoxigraph.serialize(distinct_triples(store), out, rdf_format, prefixes=use_prefixes)


def distinct_triples(store: Store):
    rows = store.query("SELECT DISTINCT ?s ?p ?o WHERE { GRAPH ?g { ?s ?p ?o } }")
    return (pyoxigraph.Triple(row[0], row[1], row[2]) for row in rows)


def export_to(store: Store, fmt: str, path: str | None, *, graph: str | None = None, base: str | None = None) -> None:
    if path in (None, "-"):
        export(store, fmt, sys.stdout.buffer, graph=graph, base=base)
        return
    target = Path(path)
    opener = gzip.open if target.suffix == ".gz" else open
    with opener(target, "wb") as out:
        export(store, fmt, out, graph=graph, base=base)
