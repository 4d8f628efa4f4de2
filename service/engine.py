"""Queries run in worker processes so that a time limit can really stop them.

pyoxigraph cannot cancel a running query from Python. Each query therefore runs in a worker
process holding the store open read-only; when a query passes the time limit the worker is
killed and replaced, and the server goes on answering. Results are capped and serialised in
the worker, so only bytes cross the process boundary.
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import queue
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from service import results

SERVICE_KEYWORD = re.compile(r"\bSERVICE\b", re.I)


class QueryRefused(ValueError):
    """A query the endpoint will not run for this caller (SERVICE, malformed)."""


class QueryTimeout(TimeoutError):
    pass


@dataclass
class Answer:
    kind: str          # select | ask | graph
    body: bytes
    media_type: str
    truncated: bool
    count: int


@dataclass
class Job:
    query: str
    base_iri: str
    select_format: str
    graph_format: str
    limit: int
    default_graphs: list[str] | None
    named_graphs: list[str] | None
    union_default: bool
    # Named-query parameters, bound by the engine (never pasted into the text): variable -> term in
    # N-Triples syntax, parsed back into a pyoxigraph term in the worker.
    substitutions: dict[str, str] | None = None


def check_no_service(query: str) -> None:
    """Refuse SERVICE: the endpoint never opens a connection because a caller asked it to.

    A cheap keyword test first; a real parse (rdflib) confirms, so the word inside a string
    literal does not cause a refusal. When the parse fails, the query is refused all the same.
    """
    if not SERVICE_KEYWORD.search(query):
        return
    from rdflib.plugins.sparql.parser import parseQuery

    try:
        tree = parseQuery(query)
    except Exception:  # noqa: BLE001 - any parse failure: refuse, do not guess
        raise QueryRefused("SERVICE is not allowed on this endpoint") from None
    if "ServiceGraphPattern" in repr(tree):
        raise QueryRefused("SERVICE is not allowed on this endpoint: it would make the server fetch another URL")


def _take(items, limit: int) -> tuple[list, bool]:
    """The first ``limit`` items, and whether there were more."""
    taken = list(itertools.islice(items, limit + 1))
    return taken[:limit], len(taken) > limit


def _term(text: str):
    """One RDF term from its N-Triples form (an IRI or a literal), as pyoxigraph reads it."""
    from pyoxigraph import RdfFormat, parse

    quad = next(iter(parse(f"<urn:s> <urn:p> {text} .", format=RdfFormat.N_TRIPLES)))
    return quad.object


def _worker(connection, store_path: str) -> None:
    from pyoxigraph import (DefaultGraph, NamedNode, QueryBoolean, QuerySolutions, RdfFormat, Store, Variable,
                            serialize)

    store = Store.read_only(store_path)
    graph_formats = {"ttl": RdfFormat.TURTLE, "nt": RdfFormat.N_TRIPLES, "jsonld": RdfFormat.JSON_LD,
                     "rdf": RdfFormat.RDF_XML}
    while True:
        try:
            job: Job = connection.recv()
        except EOFError:
            return
        try:
            kwargs = {"base_iri": job.base_iri}
            if job.default_graphs is not None:
                kwargs["default_graph"] = [NamedNode(g) for g in job.default_graphs] or [DefaultGraph()]
            elif job.union_default:
                kwargs["use_default_graph_as_union"] = True
            if job.named_graphs is not None:
                kwargs["named_graphs"] = [NamedNode(g) for g in job.named_graphs]
            if job.substitutions:
                kwargs["substitutions"] = {Variable(name): _term(text) for name, text in job.substitutions.items()}
            result = store.query(job.query, **kwargs)
            if isinstance(result, QueryBoolean):
                answer = Answer("ask", results.ask(bool(result), job.select_format),
                                results.MEDIA_TYPES[job.select_format], False, 1)
            elif isinstance(result, QuerySolutions):
                variables = [v.value for v in result.variables]
                rows, truncated = _take(([solution[v] for v in variables] for solution in result), job.limit)
                answer = Answer("select", results.select(variables, rows, job.select_format),
                                results.MEDIA_TYPES[job.select_format], truncated, len(rows))
            else:
                triples, truncated = _take(result, job.limit)
                fmt = graph_formats[job.graph_format]
                answer = Answer("graph", serialize(triples, format=fmt), fmt.media_type, truncated, len(triples))
            connection.send(("ok", answer))
        except SyntaxError as exc:
            connection.send(("syntax", str(exc)))
        except Exception as exc:  # noqa: BLE001 - reported to the caller as a query error
            connection.send(("error", f"{type(exc).__name__}: {exc}"))


class _Worker:
    def __init__(self, context, store_path: str):
        self.connection, child = context.Pipe()
        self.process = context.Process(target=_worker, args=(child, store_path), daemon=True)
        self.process.start()
        child.close()

    def kill(self) -> None:
        self.process.kill()
        self.process.join(timeout=5)
        self.connection.close()


class QueryEngine:
    """A fixed number of worker processes over one read-only store."""

    def __init__(self, store_path: Path, workers: int = 2, timeout: float = 30.0):
        self.store_path = str(store_path)
        self.timeout = timeout
        self._context = mp.get_context("spawn")
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._lock = threading.Lock()
        self._workers: list[_Worker] = []
        for _ in range(max(1, workers)):
            self._add()

    def _add(self) -> None:
        worker = _Worker(self._context, self.store_path)
        with self._lock:
            self._workers.append(worker)
        self._idle.put(worker)

    def run(self, job: Job) -> Answer:
        check_no_service(job.query)
        try:
            # Waiting for a free worker counts against the same limit: a busy server says so.
            worker = self._idle.get(timeout=self.timeout)
        except queue.Empty:
            raise QueryTimeout(f"all query workers stayed busy for {self.timeout:g} s; try again shortly") from None
        try:
            worker.connection.send(job)
            if not worker.connection.poll(self.timeout):
                raise QueryTimeout(f"the query ran longer than the {self.timeout:g} s limit and was stopped")
            status, payload = worker.connection.recv()
        except QueryTimeout:
            self._replace(worker)
            raise
        except (EOFError, OSError, BrokenPipeError):
            self._replace(worker)
            raise RuntimeError("the query worker stopped unexpectedly") from None
        self._idle.put(worker)
        if status == "ok":
            return payload
        if status == "syntax":
            raise QueryRefused(f"bad query: {payload}")
        raise RuntimeError(payload)

    def _replace(self, worker: _Worker) -> None:
        worker.kill()
        with self._lock:
            self._workers.remove(worker)
        self._add()

    def close(self) -> None:
        with self._lock:
            workers, self._workers = self._workers, []
        for worker in workers:
            worker.kill()
