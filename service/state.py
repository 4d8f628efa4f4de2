"""What the service holds: settings, the query engine over the live store, the store for lookups."""

from __future__ import annotations

import threading
from pathlib import Path

from fastapi import Request
from fastapi.responses import Response
from pyoxigraph import Literal, NamedNode, Quad, RdfFormat, Store, serialize

from kg.namespaces import DCTERMS, RDF, SD, iri
from kg.settings import Settings
from kg.store import live_store_path, open_read_only
from service.engine import QueryEngine

FORMATS = "http://www.w3.org/ns/formats/"
RESULT_FORMATS = ["SPARQL_Results_JSON", "SPARQL_Results_XML", "SPARQL_Results_CSV", "SPARQL_Results_TSV",
                  "Turtle", "N-Triples", "JSON-LD", "RDF_XML"]
GRAPH_FORMATS = {"ttl": RdfFormat.TURTLE, "nt": RdfFormat.N_TRIPLES, "jsonld": RdfFormat.JSON_LD,
                 "rdf": RdfFormat.RDF_XML}


class ServiceState:
    """Follows the live store: after `kg build` swaps in a new store, the next request uses it."""

    def __init__(self, settings: Settings, workers: int = 2):
        self.settings = settings
        self.workers = workers
        self._lock = threading.Lock()
        self._path: Path | None = None
        self._engine: QueryEngine | None = None
        self._store: Store | None = None

    def _refresh(self) -> None:
        if self.settings.remote_query_url:  # a remote SPARQL store instead of the embedded one (kg.remote)
            with self._lock:
                if self._engine is None:
                    from kg.remote import RemoteStore
                    from service.engine import RemoteQueryEngine

                    remote = RemoteStore(self.settings)
                    remote.check_union_default_graph()
                    self._store = remote
                    self._engine = RemoteQueryEngine(remote, workers=self.workers,
                                                     timeout=self.settings.query_timeout_s)
            return
        path = live_store_path(self.settings.store_dir)
        if path == self._path and self._engine is not None:
            return
        with self._lock:
            if path == self._path and self._engine is not None:
                return
            old = self._engine
            self._store = open_read_only(self.settings.store_dir)
            self._engine = QueryEngine(path, workers=self.workers, timeout=self.settings.query_timeout_s)
            self._path = path
        if old is not None:
            old.close()

    def engine(self) -> QueryEngine:
        self._refresh()
        return self._engine

    def store(self) -> Store:
        self._refresh()
        return self._store

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()

    def service_description(self, request: Request, graph_format: str) -> Response:
        """SPARQL 1.1 Service Description, with the dataset's VoID description as its default dataset."""
        base = self.settings.base_iri
        service = NamedNode(f"{base}/sparql")
        dataset = NamedNode(f"{base}/dataset")
        triples = [
            Quad(service, iri(RDF, "type"), iri(SD, "Service")).triple,
            Quad(service, iri(SD, "endpoint"), service).triple,
            Quad(service, iri(SD, "supportedLanguage"), iri(SD, "SPARQL11Query")).triple,
            Quad(service, iri(SD, "feature"), iri(SD, "UnionDefaultGraph")).triple,
            Quad(service, iri(SD, "defaultDataset"), dataset).triple,
            Quad(service, iri(DCTERMS, "description"), Literal(
                f"SPARQL 1.1 endpoint. Each query is limited to {self.settings.query_timeout_s:g} s and "
                f"{self.settings.result_limit} results; SERVICE and LOAD are refused; "
                + ("updates need a curator's bearer token and are recorded."
                   if self.settings.update_tokens else "updates are refused."))).triple,
        ]
        if self.settings.update_tokens:
            triples.append(Quad(service, iri(SD, "supportedLanguage"), iri(SD, "SPARQL11Update")).triple)
        triples += [Quad(service, iri(SD, "resultFormat"), NamedNode(FORMATS + f)).triple for f in RESULT_FORMATS]
        store = self.store()
        triples += [q.triple for q in store.quads_for_pattern(None, None, None, NamedNode(f"{base}/graph/dataset"))]
        fmt = GRAPH_FORMATS.get(graph_format, RdfFormat.TURTLE)
        body = serialize(triples, format=fmt, prefixes={"sd": SD, "void": "http://rdfs.org/ns/void#"}
                         if fmt == RdfFormat.TURTLE else None)
        return Response(body, media_type=fmt.media_type, headers={"Vary": "Accept"})
