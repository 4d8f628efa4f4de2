"""Every namespace the graph uses, in one place. Instance IRIs come only from ``kg.mint``."""

from __future__ import annotations

from functools import lru_cache

from pyoxigraph import NamedNode

RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
RDFS = "http://www.w3.org/2000/01/rdf-schema#"
OWL = "http://www.w3.org/2002/07/owl#"
XSD = "http://www.w3.org/2001/XMLSchema#"
SKOS = "http://www.w3.org/2004/02/skos/core#"
DCTERMS = "http://purl.org/dc/terms/"
SCHEMA = "http://schema.org/"
PROV = "http://www.w3.org/ns/prov#"
VOID = "http://rdfs.org/ns/void#"
DCAT = "http://www.w3.org/ns/dcat#"
SH = "http://www.w3.org/ns/shacl#"
FOAF = "http://xmlns.com/foaf/0.1/"
QUDT_UNIT = "http://qudt.org/vocab/unit/"
SSSOM = "https://w3id.org/sssom/"
SEMAPV = "https://w3id.org/semapv/vocab/"
SD = "http://www.w3.org/ns/sparql-service-description#"

STANDARD_PREFIXES = {
    "rdf": RDF, "rdfs": RDFS, "owl": OWL, "xsd": XSD, "skos": SKOS, "dcterms": DCTERMS,
    "schema": SCHEMA, "prov": PROV, "void": VOID, "dcat": DCAT, "sh": SH, "unit": QUDT_UNIT,
}


@lru_cache(maxsize=4096)
def iri(namespace: str, local: str) -> NamedNode:
    return NamedNode(namespace + local)


def ontology_namespace(base: str) -> str:
    """The ctkg ontology lives under the configured base so its terms dereference."""
    return f"{base.rstrip('/')}/ontology/"


def prefixes(base: str) -> dict[str, str]:
    """Prefixes for serialisations and queries: the standard ones plus ctkg's base-dependent ones."""
    base = base.rstrip("/")
    return {
        "ctkg": ontology_namespace(base),
        "trial": f"{base}/trial/",
        "drug": f"{base}/drug/",
        "condition": f"{base}/condition/",
        "org": f"{base}/organization/",
        "place": f"{base}/place/",
        "target": f"{base}/target/",
        **STANDARD_PREFIXES,
    }


TYPE = iri(RDF, "type")
LABEL = iri(RDFS, "label")
