"""What the service holds: settings, the query and page engines over the live store, the store for lookups."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path

from fastapi import Request
from fastapi.responses import Response
from pyoxigraph import BlankNode, Literal, NamedNode, Quad, RdfFormat, Store, serialize

from kg.namespaces import DCTERMS, RDF, SD, iri
from kg.settings import Settings
from kg.store import StoreError, live_store_path
from service.engine import Answer, Job, PageAnswer, PageJob, QueryEngine

FORMATS = "http://www.w3.org/ns/formats/"
RESULT_FORMATS = ["SPARQL_Results_JSON", "SPARQL_Results_XML", "SPARQL_Results_CSV", "SPARQL_Results_TSV",
                  "Turtle", "N-Triples", "JSON-LD", "RDF_XML"]
GRAPH_FORMATS = {"ttl": RdfFormat.TURTLE, "nt": RdfFormat.N_TRIPLES, "jsonld": RdfFormat.JSON_LD,
                 "rdf": RdfFormat.RDF_XML}


class ResultCache:
    """Answers to repeated queries and pages, least recently used first out, bounded in entries and in bytes.

    A key holds the data version (the live store's directory, new with every build and every
    update) besides everything that shapes the answer, so an answer is only ever found again for
    the store that produced it: after a swap the old keys can no longer match, and they are dropped
    when the first request for the new version arrives.
    """

    def __init__(self, max_entries: int, max_bytes: int):
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._answers: OrderedDict[tuple, Answer | PageAnswer] = OrderedDict()
        # Answers computed ahead for the live version (service.warm): kept while it is live, outside the
        # bounds above, which a burst of pages would otherwise spend on evicting them. Bounded by the
        # library: at most two per named query and parameter set, each within the result cap.
        self._pinned: dict[tuple, Answer | PageAnswer] = {}
        self._bytes = 0
        self._version: str | None = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._answers)

    @property
    def enabled(self) -> bool:
        return self.max_entries > 0 and self.max_bytes > 0

    @staticmethod
    def key(version: str, job: Job | PageJob) -> tuple:
        """Everything that decides the bytes of an answer: the text, the bound parameters, the formats,
        the result cap and the dataset (graphs given, or the union); for a page, the IRI, the media type
        and the base (a PageJob is frozen: it is that key)."""
        if isinstance(job, PageJob):
            return (version, job)
        return (version, job.query, job.base_iri, job.select_format, job.graph_format, job.limit,
                None if job.default_graphs is None else tuple(job.default_graphs),
                None if job.named_graphs is None else tuple(job.named_graphs), job.union_default,
                tuple(sorted((job.substitutions or {}).items())))

    def _follow(self, version: str) -> None:
        """A new store is live: nothing cached for another one can be asked for again."""
        if version != self._version:
            self._answers.clear()
            self._pinned.clear()
            self._bytes = 0
            self._version = version

    def get(self, version: str, job: Job | PageJob) -> Answer | PageAnswer | None:
        with self._lock:
            self._follow(version)
            key = self.key(version, job)
            answer = self._answers.get(key)
            if answer is not None:
                self._answers.move_to_end(key)
                return answer
            return self._pinned.get(key)

    def pin(self, version: str, job: Job | PageJob, answer: Answer | PageAnswer) -> None:
        """Keep an answer computed ahead for ``version`` (which the caller has just seen live) until
        another version goes live."""
        with self._lock:
            self._follow(version)
            self._pinned[self.key(version, job)] = answer

    def put(self, version: str, job: Job | PageJob, answer: Answer | PageAnswer) -> None:
        """Keep an answer of the store ``version``, which the caller has just seen live."""
        size = len(answer.body)
        with self._lock:
            self._follow(version)
            if size > self.max_bytes:
                return
            key = self.key(version, job)
            if key in self._answers:
                self._bytes -= len(self._answers.pop(key).body)
            self._answers[key] = answer
            self._bytes += size
            while len(self._answers) > self.max_entries or self._bytes > self.max_bytes:
                _, dropped = self._answers.popitem(last=False)
                self._bytes -= len(dropped.body)


class ServiceState:
    """Follows the live store: after `kg build` swaps in a new store, the next request uses it."""

    def __init__(self, settings: Settings, workers: int = 2):
        self.settings = settings
        self.workers = workers
        self._lock = threading.Lock()
        self._path: Path | None = None
        self._link: str | None = None  # what the store link said when _path was resolved
        self._engine: QueryEngine | None = None
        # Pages' own workers over the same store (settings.page_workers), so that slow queries holding every
        # query worker do not hold pages up; None: pages go to the query workers (0 page workers, remote store).
        self._page_engine: QueryEngine | None = None
        self._store: Store | None = None
        # A remote store can be changed behind our back (through its own endpoint), so it has no
        # version we could key on: its answers are never cached.
        self.cache = ResultCache(0 if settings.remote_query_url else settings.cache_entries, settings.cache_bytes)

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
        # Every request comes here: reading the link is one system call, where resolving the whole
        # path (pathlib) cost 0.75 ms a request on the benchmark machine. Resolve only when it moved.
        link = self._link_target()
        if link == self._link and self._engine is not None:
            return
        with self._lock:
            if link == self._link and self._engine is not None:
                return
            path = live_store_path(self.settings.store_dir)
            old = []
            if path != self._path or self._engine is None:
                if path is None:
                    raise StoreError(f"no store at {self.settings.store_dir}: run `kg build` first")
                old = [e for e in (self._engine, self._page_engine) if e is not None]
                self._store = Store.read_only(str(path))
                self._engine = QueryEngine(path, workers=self.workers, timeout=self.settings.query_timeout_s)
                self._page_engine = (QueryEngine(path, workers=self.settings.page_workers,
                                                 timeout=self.settings.query_timeout_s, role="page")
                                     if self.settings.page_workers else None)
                self._path = path
            self._link = link  # last: a reader that sees this link also sees the path and engines that go with it
        for engine in old:  # the old store's workers: each stops once its job is done
            engine.close()

    def _link_target(self) -> str | None:
        """What the store link points to now (a new build or update makes a new target); for a plain
        folder given by the user, which nothing here swaps, its own name."""
        try:
            return os.readlink(self.settings.store_dir)
        except OSError:
            return str(self.settings.store_dir)

    def engine(self) -> QueryEngine:
        """The engine over the live store, its workers (and the page workers) started: the app's start-up
        waits here, so a server that answers at all answers without paying for the workers' start."""
        self._refresh()
        engine, pages = self._engine, self._page_engine
        for pool in (engine, pages):
            if isinstance(pool, QueryEngine):
                pool.wait_ready()
        return engine

    def data_version(self) -> str | None:
        """The version of the live store (its resolved directory), from one readlink; None when the link has
        moved since the engine last followed it (the caller then runs the query, which follows it) and for
        a remote store."""
        if self.settings.remote_query_url or self._link is None:
            return None
        if self._link_target() != self._link:
            return None
        return str(self._path)

    def versioned_engine(self) -> tuple[str | None, QueryEngine]:
        """The engine and the version of the store it answers from, taken together."""
        self._refresh()
        with self._lock:
            return (None if self.settings.remote_query_url else str(self._path)), self._engine

    def versioned_page_engine(self) -> tuple[str | None, QueryEngine]:
        """The engine that builds pages (the page workers; the query workers when there are none) and the
        version of the store it answers from, taken together."""
        self._refresh()
        with self._lock:
            return (None if self.settings.remote_query_url else str(self._path)), self._page_engine or self._engine

    def store(self) -> Store:
        self._refresh()
        return self._store

    async def cached(self, job: Job | PageJob, compute) -> tuple:
        """The answer to ``job`` and how the cache took part ("hit", "miss" or "off"). ``compute()`` is
        awaited on a miss and gives (the version of the store it ran on, the answer). An answer is
        kept only if that store is still the live one: one computed while a build or an update
        swapped in a new store must not fill the cache, even under its own (old) version. None
        answers (a page of an unknown IRI) and errors are never kept."""
        cache = self.cache
        if cache.enabled:
            version = self.data_version()
            found = cache.get(version, job) if version else None
            if found is not None:
                return found, "hit"
        version, answer = await compute()
        if not cache.enabled:
            return answer, "off"
        if answer is not None and version and version == self.data_version():
            cache.put(version, job, answer)
        return answer, "miss"

    def close(self) -> None:
        for engine in (self._engine, self._page_engine):
            if engine is not None:
                engine.close()

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
        # The dataset: the union of all graphs as default graph, and the named graphs. The system graphs are
        # listed; the trials' graphs (one per trial, hundreds of thousands at scale) are described by pattern.
        default_graph = BlankNode()
        triples += [
            Quad(dataset, iri(RDF, "type"), iri(SD, "Dataset")).triple,
            Quad(dataset, iri(SD, "defaultGraph"), default_graph).triple,
            Quad(default_graph, iri(RDF, "type"), iri(SD, "Graph")).triple,
            Quad(default_graph, iri(DCTERMS, "description"), Literal(
                f"The union of all the named graphs below and of every trial's graph {base}/graph/NCTxxxxxxxx, "
                "unless the request (default-graph-uri) or the query (FROM) names other graphs.")).triple,
        ]
        store = self.store()
        for name in ("ontology", "concepts", "dataset", "entities"):
            if not store.contains_named_graph(NamedNode(f"{base}/graph/{name}")):
                continue  # the entities graph when every organization and place is a curated concept
            named = BlankNode()
            triples += [Quad(dataset, iri(SD, "namedGraph"), named).triple,
                        Quad(named, iri(RDF, "type"), iri(SD, "NamedGraph")).triple,
                        Quad(named, iri(SD, "name"), NamedNode(f"{base}/graph/{name}")).triple]
        if self.settings.update_tokens:
            triples.append(Quad(service, iri(SD, "supportedLanguage"), iri(SD, "SPARQL11Update")).triple)
        triples += [Quad(service, iri(SD, "resultFormat"), NamedNode(FORMATS + f)).triple for f in RESULT_FORMATS]
        triples += [q.triple for q in store.quads_for_pattern(None, None, None, NamedNode(f"{base}/graph/dataset"))]
        fmt = GRAPH_FORMATS.get(graph_format, RdfFormat.TURTLE)
        body = serialize(triples, format=fmt, prefixes={"sd": SD, "void": "http://rdfs.org/ns/void#"}
                         if fmt == RdfFormat.TURTLE else None)
        return Response(body, media_type=fmt.media_type, headers={"Vary": "Accept"})
