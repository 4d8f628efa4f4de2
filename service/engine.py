"""Queries run in worker processes so that a time limit can really stop them.

pyoxigraph cannot cancel a running query from Python. Each query therefore runs in a worker
process holding the store open read-only; when a query passes the time limit the worker is
killed and replaced, and the server goes on answering. Results are capped and serialised in
the worker, so only bytes cross the process boundary.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import multiprocessing as mp
import queue
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from service import results

SERVICE_KEYWORD = re.compile(r"\bSERVICE\b", re.I)


class QueryRefused(ValueError):
    """A query the endpoint will not run for this caller (SERVICE, malformed)."""


class QueryTimeout(TimeoutError):
    pass


class WorkersBusy(QueryTimeout):
    """Every worker (or remote slot) stayed busy for the whole limit: the job never started, so it may
    well succeed when sent again (service.warm does)."""


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
    # Named-query parameters: variable -> term in N-Triples syntax, parsed back into a pyoxigraph term
    # in the worker and bound by VALUES blocks that pyoxigraph writes (kg/binding.py).
    substitutions: dict[str, str] | None = None


@dataclass(frozen=True)
class PageJob:
    """Build the page of one IRI in a worker (``service.pages.build_page``). Frozen: the job itself is
    its answer's cache key. ``media_type`` is the negotiated one; "" asks only whether the IRI is known
    (nothing acceptable was offered: the caller answers 406, or 404 when the IRI is unknown)."""
    subject: str
    media_type: str
    base_iri: str


@dataclass
class PageAnswer:
    """A page as bytes, with what its HTTP validators are made from."""
    body: bytes
    media_type: str               # as sent (with a charset for HTML); "" for the existence-only job
    etag: str                     # quoted, from the body
    modified: datetime | None     # the latest of the record's update, the store's build and a curator's edit


def check_no_service(query: str) -> None:
    """Refuse SERVICE: the endpoint never opens a connection because a caller asked it to.

    A cheap keyword test first; a real parse (rdflib) confirms, so the word inside a string
    literal does not cause a refusal. When the parse fails, the query is refused all the same.
    """
    if not SERVICE_KEYWORD.search(query):
        return
    from kg.sparql_text import parse_query

    try:
        tree = parse_query(query)
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


def answer_from(result, job: Job) -> Answer:
    """A pyoxigraph query result, capped at the job's limit and written in the job's format."""
    from pyoxigraph import QueryBoolean, QuerySolutions, RdfFormat, serialize

    if isinstance(result, QueryBoolean):
        return Answer("ask", results.ask(bool(result), job.select_format), results.MEDIA_TYPES[job.select_format],
                      False, 1)
    if isinstance(result, QuerySolutions):
        # Written and capped by pyoxigraph, no Python term per cell (why this way: service/results.py).
        body, truncated, count = results.write_capped(result, job.select_format, job.limit)
        return Answer("select", body, results.MEDIA_TYPES[job.select_format], truncated, count)
    triples, truncated = _take(result, job.limit)
    fmt = {"ttl": RdfFormat.TURTLE, "nt": RdfFormat.N_TRIPLES, "jsonld": RdfFormat.JSON_LD,
           "rdf": RdfFormat.RDF_XML}[job.graph_format]
    return Answer("graph", serialize(triples, format=fmt), fmt.media_type, truncated, len(triples))


def _worker(connection, store_path: str) -> None:
    from pyoxigraph import DefaultGraph, NamedNode, Store

    from kg.binding import bind_values
    from service import pages  # page jobs; imported before "ready", so no page pays for the import

    store = Store.read_only(store_path)
    # Labels and types of linked resources, kept across page jobs: this worker's store never changes
    # (a new build or update is a new store, served by new workers).
    page_memo: dict = {}
    connection.send(("ready", None))  # starting a worker is not part of any query's time
    while True:
        try:
            job: Job | PageJob = connection.recv()
        except EOFError:
            return
        try:
            if isinstance(job, PageJob):
                connection.send(("ok", pages.build_page(store, job, page_memo)))
                continue
            kwargs = {"base_iri": job.base_iri}
            if job.default_graphs is not None:
                kwargs["default_graph"] = [NamedNode(g) for g in job.default_graphs] or [DefaultGraph()]
            elif job.union_default:
                kwargs["use_default_graph_as_union"] = True
            if job.named_graphs is not None:
                kwargs["named_graphs"] = [NamedNode(g) for g in job.named_graphs]
            query = job.query
            if job.substitutions:  # written into the text, where the planner sees them (kg/binding.py)
                query = bind_values(query, {name: _term(text) for name, text in job.substitutions.items()})
            result = store.query(query, **kwargs)
            connection.send(("ok", answer_from(result, job)))
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
        self.ready = False

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Wait until the worker has opened the store (once); a worker that cannot is an error."""
        if not self.ready_within(timeout):
            raise RuntimeError("a query worker did not start")

    def ready_within(self, timeout: float) -> bool:
        """Whether the worker has opened the store, waiting up to ``timeout`` for it; a worker that
        reports anything else than ready is an error."""
        if self.ready:
            return True
        if not self.connection.poll(timeout):
            return False
        status, _ = self.connection.recv()
        if status != "ready":
            raise RuntimeError("a query worker did not start")
        self.ready = True
        return True

    def kill(self) -> None:
        self.process.kill()
        self.process.join(timeout=5)
        self.connection.close()


class EngineClosed(RuntimeError):
    """The engine was closed (a new store went live) before the job reached a worker: run it on the new one."""


class WorkerLost(RuntimeError):
    """The worker's process ended during the job (killed, crashed): the job may be sent again."""


class QueryEngine:
    """A fixed number of worker processes over one read-only store. ``role`` names the pool in messages
    (the service keeps one pool for queries and one for pages)."""

    def __init__(self, store_path: Path, workers: int = 2, timeout: float = 30.0, role: str = "query"):
        self.store_path = str(store_path)
        self.timeout = timeout
        self.role = role
        self._context = mp.get_context("spawn")
        # Idle workers; None is the closing signal for a caller waiting for one.
        self._idle: queue.Queue[_Worker | None] = queue.Queue()
        self._lock = threading.Lock()
        self._workers: list[_Worker] = []
        self._closed = False
        # Requests waiting for a busy worker wait in this engine's own threads (made when needed), not in
        # asyncio's default pool of a few threads: there, queries waiting for the query workers made pages
        # wait for the page workers' turn as well (25 s for a page in the load test).
        self._waiting = ThreadPoolExecutor(max_workers=32, thread_name_prefix=f"ctkg-{role}-wait")
        for _ in range(max(1, workers)):
            self._add()

    def _add(self) -> None:
        worker = _Worker(self._context, self.store_path)
        with self._lock:
            self._workers.append(worker)
        self._idle.put(worker)

    def wait_ready(self) -> None:
        """Wait until every worker has opened the store (at start-up, before any job is sent)."""
        with self._lock:
            workers = list(self._workers)
        for worker in workers:
            worker.wait_ready()

    def _take(self, wait: float, limit: float | None = None) -> _Worker:
        """An idle worker within ``wait`` seconds; ``limit`` (the job's own, by default the engine's) is
        the time the message quotes."""
        try:
            # Waiting for a free worker counts against the same limit: a busy server says so.
            worker = self._idle.get(timeout=wait)
        except queue.Empty:
            raise WorkersBusy(f"all {self.role} workers stayed busy for {limit or self.timeout:g} s; "
                              "try again shortly") from None
        if worker is None:
            self._idle.put(None)  # for the next waiter
            raise EngineClosed("the store was replaced")
        return worker

    def run(self, job: Job) -> Answer:
        check_no_service(job.query)
        worker = self._take(self.timeout)
        with self._job_on(worker):
            worker.wait_ready()
            worker.connection.send(job)
            if not worker.connection.poll(self.timeout):
                raise QueryTimeout(f"the query ran longer than the {self.timeout:g} s limit and was stopped")
            status, payload = worker.connection.recv()
        return _unwrap(status, payload)

    @contextmanager
    def _job_on(self, worker: _Worker):
        """A worker interrupted mid-job (time limit, cancelled request, crash) may still answer later,
        so it never takes another job: it is replaced. After a job that ended well it is idle again."""
        try:
            yield
        except WorkersBusy:  # the job was never sent: the worker is as good as before
            self._release(worker)
            raise
        except (QueryTimeout, asyncio.CancelledError):
            self._replace(worker)
            raise
        except (EOFError, OSError, BrokenPipeError, RuntimeError):
            self._replace(worker)
            raise WorkerLost("the query worker stopped unexpectedly") from None
        self._release(worker)

    async def run_async(self, job: Job, timeout: float | None = None) -> Answer:
        """``run`` on the event loop: the loop waits on the worker's pipe itself, so no thread sits
        between the request and the worker (a thread hop cost about 0.25 ms a query, more on a busy
        machine). The rare slow steps (the SERVICE parse, a worker still starting, all workers busy)
        go to a thread. ``timeout``: another limit than the engine's (answers warmed ahead, service.warm)."""
        if SERVICE_KEYWORD.search(job.query):
            await asyncio.to_thread(check_no_service, job.query)
        return await self._on_worker_async(job, timeout or self.timeout)

    async def page_async(self, job: PageJob) -> PageAnswer | None:
        """A page built in a worker (``service.pages.build_page``; None: the IRI is unknown), under the
        same time limit as a query: a page that takes too long stops its worker, which is replaced."""
        return await self._on_worker_async(job, self.timeout)

    async def _idle_worker(self, timeout: float) -> _Worker:
        """An idle worker whose process is alive. One that died while idle (killed, out of memory) is
        replaced here, before a job is sent to it and lost."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                worker = self._idle.get_nowait()
                if worker is None:
                    self._idle.put(None)
                    raise EngineClosed("the store was replaced")
            except queue.Empty:
                worker = await self._wait_for_idle(deadline, timeout)
            if worker.process.is_alive():
                return worker
            self._replace(worker)

    async def _wait_for_idle(self, deadline: float, limit: float) -> _Worker:
        """Wait for a busy worker in a thread of this engine. A request given up meanwhile (cancelled) leaves
        that thread waiting: the worker it then gets goes back to the pool, else it would be lost for good."""
        try:
            waiting = self._waiting.submit(lambda: self._take(max(0.0, deadline - time.monotonic()), limit))
        except RuntimeError:  # closed (its threads shut down) since this caller took the engine
            raise EngineClosed("the store was replaced") from None
        try:
            return await asyncio.wrap_future(waiting)
        except asyncio.CancelledError:
            waiting.add_done_callback(lambda f: f.cancelled() or f.exception() is not None or self._release(f.result()))
            raise

    async def _on_worker_async(self, job: Job | PageJob, timeout: float):
        loop = asyncio.get_running_loop()
        started = loop.time()
        worker = await self._idle_worker(timeout)
        with self._job_on(worker):
            # A worker still starting (a replacement) is waited for within the job's own limit; if that
            # runs out first, the job never ran: busy, and the worker, still starting, is kept.
            if not worker.ready and not await asyncio.to_thread(
                    worker.ready_within, max(0.0, timeout - (loop.time() - started))):
                raise WorkersBusy(f"no {self.role} worker was ready within the {timeout:g} s limit; try again shortly")
            remaining = timeout - (loop.time() - started)
            if remaining <= 0:  # the limit went by waiting for a worker: the job never ran
                raise WorkersBusy(f"no {self.role} worker was ready within the {timeout:g} s limit; try again shortly")
            worker.connection.send(job)
            readable = loop.create_future()
            fd = worker.connection.fileno()
            loop.add_reader(fd, lambda: readable.done() or readable.set_result(None))
            try:
                await asyncio.wait_for(readable, remaining)
            except TimeoutError:
                raise QueryTimeout(f"the query ran longer than the {timeout:g} s limit and was stopped") from None
            finally:
                loop.remove_reader(fd)
            status, payload = worker.connection.recv()
        return _unwrap(status, payload)

    def _release(self, worker: _Worker) -> None:
        """A worker back from a job: idle again, or stopped if the engine closed meanwhile."""
        with self._lock:
            if not self._closed:
                self._idle.put(worker)
                return
        self._retire(worker)

    def _retire(self, worker: _Worker) -> None:
        worker.kill()
        with self._lock:
            if worker in self._workers:
                self._workers.remove(worker)

    def _replace(self, worker: _Worker) -> None:
        self._retire(worker)
        if not self._closed:
            self._add()

    def close(self) -> None:
        """Stop the idle workers now; a worker running a query finishes it first (its caller gets the
        answer of the store it asked) and stops when it comes back."""
        idle = []
        with self._lock:
            self._closed = True
            while True:
                try:
                    worker = self._idle.get_nowait()
                except queue.Empty:
                    break
                if worker is not None:
                    idle.append(worker)
            self._idle.put(None)  # wakes a caller waiting for a worker: it goes to the new engine
        for worker in idle:
            self._retire(worker)
        self._waiting.shutdown(wait=False)  # its waiting threads were woken above and end


def _unwrap(status: str, payload):
    if status == "ok":
        return payload
    if status == "syntax":
        raise QueryRefused(f"bad query: {payload}")
    raise RuntimeError(payload)


class _Deadline(io.RawIOBase):
    """Reads a remote answer and stops with QueryTimeout once the query's time is up."""

    def __init__(self, response, deadline: float, limit: float):
        self.response, self.deadline, self.limit = response, deadline, limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if time.monotonic() > self.deadline:
            raise QueryTimeout(f"the query ran longer than the {self.limit:g} s limit and was stopped")
        try:
            return self.response.readinto(buffer)
        except TimeoutError:
            raise QueryTimeout(f"the query ran longer than the {self.limit:g} s limit and was stopped") from None


class RemoteQueryEngine:
    """The same contract as QueryEngine over a remote SPARQL endpoint (kg.remote).

    The query is checked here before anything is sent: SERVICE is refused, and pyoxigraph parses it
    (over an empty store) so that a bad query or an update gets the same 400 as on the embedded
    store and nothing but a read-only query ever reaches the remote. Named-query parameters are
    bound by a VALUES block written by pyoxigraph. The answer is read as a stream, capped, and
    written by our own serialisers; past the time limit the connection is closed.
    """

    def __init__(self, remote, workers: int = 2, timeout: float = 30.0):
        from pyoxigraph import Store

        self.remote = remote
        self.timeout = timeout
        self._slots = threading.BoundedSemaphore(max(1, workers))
        self._parser = Store()  # empty: used only to parse queries

    def _prepare(self, job: Job) -> str:
        from pyoxigraph import Variable

        from kg.binding import bind_values

        check_no_service(job.query)
        substitutions = {name: _term(text) for name, text in (job.substitutions or {}).items()}
        try:
            self._parser.query(job.query, base_iri=job.base_iri,
                               substitutions={Variable(n): t for n, t in substitutions.items()} or None)
        except SyntaxError as exc:
            raise QueryRefused(f"bad query: {exc}") from None
        try:
            text = bind_values(job.query, substitutions)
        except ValueError as exc:
            raise QueryRefused(str(exc)) from None
        return f"BASE <{job.base_iri}>\n{text}"

    def run(self, job: Job) -> Answer:
        from kg.remote import RemoteError

        text = self._prepare(job)
        deadline = time.monotonic() + self.timeout
        if not self._slots.acquire(timeout=self.timeout):
            raise WorkersBusy(f"all query slots stayed busy for {self.timeout:g} s; try again shortly")
        try:
            remaining = max(0.1, deadline - time.monotonic())
            default_graphs = job.default_graphs or []
            try:
                response, media_type = self.remote.open_query(text, default_graphs=default_graphs,
                                                              named_graphs=job.named_graphs or [], timeout=remaining)
            except TimeoutError:
                raise QueryTimeout(f"the query ran longer than the {self.timeout:g} s limit and was stopped") from None
            except RemoteError as exc:
                if exc.status == 400:
                    raise QueryRefused(f"bad query: {exc}") from None
                raise RuntimeError(str(exc)) from None
            with response:
                stream = io.BufferedReader(_Deadline(response, deadline, self.timeout))
                try:
                    return answer_from(self.remote.parse_answer(stream, media_type), job)
                except (SyntaxError, ValueError) as exc:
                    raise RuntimeError(f"unreadable answer from the remote store: {exc}") from None
        finally:
            self._slots.release()

    def close(self) -> None:
        pass
