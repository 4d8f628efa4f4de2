"""The dataset description (VoID + DCAT), computed from the store after loading."""

from __future__ import annotations

from datetime import datetime
from typing import Iterator

from pyoxigraph import Literal, NamedNode, Quad, Store

from kg import __version__
from kg.mint import Minter
from kg.namespaces import DCAT, DCTERMS, FOAF, PROV, RDFS, SCHEMA, SKOS, VOID, XSD, LABEL, TYPE, iri, ontology_namespace
from kg.vocabularies import VOCABULARIES, converter

LICENSE = "https://creativecommons.org/licenses/by/4.0/"
TITLE = "ctkg: clinical-trials knowledge graph"


def _count(store: Store, query: str) -> int:
    (row,) = list(store.query(query, use_default_graph_as_union=True))
    return int(row[0].value)


# The predicates that link into other vocabularies, and the name each linkset is known by.
LINK_PREDICATES = [(SKOS + "exactMatch", "exactMatch"), (SKOS + "closeMatch", "closeMatch"),
                   (SKOS + "broadMatch", "broadMatch"), (SKOS + "narrowMatch", "narrowMatch"),
                   (SCHEMA + "sameAs", "sameAs")]

# Media types of the dumps by file extension (before .gz), for DCAT.
DUMP_MEDIA_TYPES = {"nq": "application/n-quads", "trig": "application/trig", "ttl": "text/turtle",
                    "jsonld": "application/ld+json"}


def describe(store: Store, base: str, build_time: datetime, build_id: str, data_dump_urls: list[str] = ()) -> Iterator[Quad]:
    m = Minter(base)
    g = m.system_graph("dataset")
    d = m.dataset()
    ctkg = ontology_namespace(base)
    integer = iri(XSD, "integer")

    def q(s, p, o):
        return Quad(s, p, o, g)

    # The statements of the data: every graph's, this description not counted (it is written after).
    # Statements, not distinct triples: counting those needs every triple in memory at once (134M at
    # 580k trials). The build writes a triple into one graph only (tested), so the two agree; a curator's
    # update could add a triple some other graph holds.
    triples = _count(store, "SELECT (COUNT(*) AS ?n) { GRAPH ?g { ?s ?p ?o } }")
    subjects = _count(store, "SELECT (COUNT(DISTINCT ?s) AS ?n) { GRAPH ?g { ?s ?p ?o } }")
    # VoID's entities: resources with an IRI in the dataset's own URI space (blank nodes and others' IRIs not).
    entities = _count(store, f"""SELECT (COUNT(DISTINCT ?s) AS ?n) {{ GRAPH ?g {{ ?s ?p ?o }}
        FILTER(isIRI(?s) && STRSTARTS(STR(?s), "{base}/")) }}""")
    trials = _count(store, f"SELECT (COUNT(DISTINCT ?t) AS ?n) {{ ?t a <{ctkg}Trial> }}")
    yield q(d, TYPE, iri(VOID, "Dataset"))
    yield q(d, TYPE, iri(DCAT, "Dataset"))
    yield q(d, iri(DCTERMS, "title"), Literal(TITLE, language="en"))
    yield q(d, LABEL, Literal(TITLE, language="en"))
    yield q(d, iri(DCTERMS, "description"), Literal(
        "Clinical-trial records mapped to RDF and linked to drugs, drug classes, molecular targets, conditions, "
        "organizations, sites and places in public vocabularies, with the evidence for every link.", language="en"))
    yield q(d, iri(DCTERMS, "license"), NamedNode(LICENSE))
    yield q(d, iri(DCTERMS, "source"), NamedNode("https://clinicaltrials.gov"))
    yield q(d, iri(DCTERMS, "modified"), Literal(build_time.isoformat(), datatype=iri(XSD, "dateTime")))
    yield q(d, iri(DCAT, "version"), Literal(__version__))
    yield q(d, iri(PROV, "wasGeneratedBy"), m.build(build_id))
    yield q(d, iri(VOID, "sparqlEndpoint"), NamedNode(f"{base}/sparql"))
    yield q(d, iri(VOID, "uriSpace"), Literal(f"{base}/"))
    yield q(d, iri(VOID, "vocabulary"), NamedNode(ctkg))
    yield q(d, iri(VOID, "vocabulary"), NamedNode(SCHEMA))
    yield q(d, iri(VOID, "exampleResource"), m.trial("NCT06281886"))
    yield q(d, iri(VOID, "triples"), Literal(str(triples), datatype=integer))
    yield q(d, iri(VOID, "distinctSubjects"), Literal(str(subjects), datatype=integer))
    yield q(d, iri(VOID, "entities"), Literal(str(entities), datatype=integer))
    yield q(d, iri(VOID, "rootResource"), m.trial("NCT06281886"))
    yield q(d, iri(ctkg, "trialCount"), Literal(str(trials), datatype=integer))
    for url in data_dump_urls:
        # VoID's dataDump, and the same file as a DCAT distribution with its format and compression.
        yield q(d, iri(VOID, "dataDump"), NamedNode(url))
        distribution = NamedNode(f"{d.value}/distribution/{url.rsplit('/', 1)[-1]}")
        yield q(d, iri(DCAT, "distribution"), distribution)
        yield q(distribution, TYPE, iri(DCAT, "Distribution"))
        yield q(distribution, iri(DCAT, "downloadURL"), NamedNode(url))
        yield q(distribution, iri(DCAT, "accessURL"), NamedNode(f"{base}/dumps/"))
        yield q(distribution, iri(DCAT, "mediaType"), NamedNode(
            "https://www.iana.org/assignments/media-types/" + DUMP_MEDIA_TYPES.get(url.rsplit(".", 2)[-2], "application/octet-stream")))
        yield q(distribution, iri(DCAT, "compressFormat"), NamedNode("https://www.iana.org/assignments/media-types/application/gzip"))
        yield q(distribution, iri(DCTERMS, "license"), NamedNode(LICENSE))
    # Class partitions: how many entities of each class.
    for row in store.query(
        "SELECT ?class (COUNT(DISTINCT ?s) AS ?n) { ?s a ?class } GROUP BY ?class ORDER BY ?class",
        use_default_graph_as_union=True,
    ):
        cls = row["class"]
        if not isinstance(cls, NamedNode):
            continue
        partition = NamedNode(f"{d.value}/class/{_partition_name(cls.value, base)}")
        yield q(d, iri(VOID, "classPartition"), partition)
        yield q(partition, iri(VOID, "class"), cls)
        yield q(partition, iri(VOID, "entities"), Literal(row["n"].value, datatype=integer))
    # One linkset per external vocabulary and link predicate, counted from the links into its namespace
    # (exact matches of concepts and references; the ontology's close and broad alignments; DOIs).
    prefix_map = converter().prefix_map
    for key, vocabulary in VOCABULARIES.items():
        yield q(m.vocabulary(key), TYPE, iri(VOID, "Dataset"))
        yield q(m.vocabulary(key), iri(RDFS, "label"), Literal(vocabulary.title))
        yield q(m.vocabulary(key), iri(FOAF, "homepage"), NamedNode(vocabulary.homepage))
        if vocabulary.notation_only:
            continue
        namespace = prefix_map[vocabulary.prefix]
        for predicate, name in LINK_PREDICATES:
            links = _count(store, f"""SELECT (COUNT(*) AS ?n) {{ ?s <{predicate}> ?o
                FILTER(STRSTARTS(STR(?o), "{namespace}")) }}""")
            if not links:
                continue
            linkset = m.linkset(key if name == "exactMatch" else f"{key}-{name}")
            yield q(d, iri(VOID, "subset"), linkset)
            yield q(linkset, TYPE, iri(VOID, "Linkset"))
            yield q(linkset, LABEL, Literal(f"links to {vocabulary.title}" if name == "exactMatch"
                                            else f"{name} links to {vocabulary.title}"))
            yield q(linkset, iri(VOID, "subjectsTarget"), d)
            yield q(linkset, iri(VOID, "objectsTarget"), m.vocabulary(key))
            yield q(linkset, iri(VOID, "linkPredicate"), NamedNode(predicate))
            yield q(linkset, iri(VOID, "triples"), Literal(str(links), datatype=integer))


def _partition_name(class_iri: str, base: str) -> str:
    """``schema-Drug`` for schema:Drug, ``ctkg-Drug`` for ctkg:Drug: readable and unique."""
    from kg.mint import slug
    from kg.namespaces import prefixes

    for prefix, namespace in prefixes(base).items():
        if class_iri.startswith(namespace) and len(class_iri) > len(namespace):
            return f"{prefix}-{slug(class_iri[len(namespace):])}"
    return slug(class_iri)
