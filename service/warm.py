"""Named-query answers computed ahead of the first request, once for every store version.

Most of the library's queries scan every trial: at 100k trials they take 1 to 34 s each on 2 cores,
and under concurrent use the ones that have to be computed on request queue up past the time limit.
Most requests ask them as the catalogue shows them, with their default parameters or their example.
So as soon as a store version is live, this task runs each of those once, in the background, and
keeps the answers in the cache, keyed by that version like any other answer: a rebuild or an update
makes a new version, which is warmed in its turn, and nothing is ever served across versions.

One query runs at a time, so warming holds at most one query worker while requests are served. A
query that never got a worker (all busy with requests for the whole limit) or lost it is sent once
more at the end of the pass; one that fails or passes the warming time limit is logged and left to
be computed on request. The
answers are pinned in the cache for as long as their version is live: at 100k trials a dozen of them
are 3 MB each, and the cache's LRU bounds, shared with pages, evicted them before they were asked.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool

from kg.queries import NamedQuery, QueryError, bind, param_text
from service.engine import Answer, EngineClosed, Job, QueryEngine, WorkerLost, WorkersBusy
from service.queries import example_text, named_job
from service.sparql import _formats
from service.state import ServiceState

log = logging.getLogger("ctkg.warm")

WARM_FORMAT = "json"  # the query page's format, and that of `Accept: */*` and of JSON clients
QUERY_PAGE_ACCEPT = "application/sparql-results+json, text/turtle;q=0.9"  # as service/static/query.js sends it
POLL_S = 2.0  # how often the task looks for a new store version (one readlink)
# Failures that say nothing about the query itself: it never started, or its worker went away.
WORTH_RETRYING = (WorkersBusy, WorkerLost, EngineClosed)


@dataclass
class WarmStatus:
    version: str | None = None  # the store version warmed, or being warmed
    done: int = 0
    total: int = 0
    failed: int = 0
    retried: int = 0  # sent a second time at the end of the pass (see WORTH_RETRYING)

    def as_json(self, enabled: bool, live: str | None) -> dict:
        """``live``: the version served now; answers warmed for an older one do not count."""
        state = "off" if not enabled else "waiting" if live is None or self.version != live else \
            "done" if self.done == self.total else "warming"
        return {"state": state, "answers": self.total, "computed": self.done - self.failed, "failed": self.failed,
                "retried": self.retried}


def query_page_job(state: ServiceState, query: NamedQuery) -> Job:
    """What the query page sends when a user runs this query's example as it stands: its text with the
    defaults bound, POSTed to /sparql with the page's Accept header (service/static/query.js)."""
    select_format, graph_format = _formats(QUERY_PAGE_ACCEPT, None)
    return Job(query=example_text(query), base_iri=state.settings.base_iri + "/", select_format=select_format,
               graph_format=graph_format, limit=state.settings.result_limit, default_graphs=None, named_graphs=None,
               union_default=True)


def warm_jobs(state: ServiceState, library: dict[str, NamedQuery]) -> list[tuple[Job, list[Job]]]:
    """Each query with its defaults, and with its example parameters where they differ; with the
    defaults, the same answer is also kept for the query page's run of the example (the same query,
    bound in its text): computed once, found under both."""
    jobs: list[tuple[Job, list[Job]]] = []
    for query in library.values():
        examples = {p.name: param_text(p.example) for p in query.params if p.example is not None}
        seen: set[tuple] = set()
        for raw in ({}, examples):
            try:
                terms = bind(query, raw)
            except QueryError:  # a required parameter without a default, or an example the query refuses
                continue
            key = tuple(sorted((name, str(term)) for name, term in terms.items()))
            if key not in seen:
                aliases = [query_page_job(state, query)] if raw == {} else []  # the page's example binds the defaults
                seen.add(key)
                jobs.append((named_job(state, query, terms, WARM_FORMAT), aliases))
    return jobs


class Warmer:
    def __init__(self, state: ServiceState, library: dict[str, NamedQuery]):
        self.state, self.library = state, library
        self.status = WarmStatus()

    async def run(self) -> None:
        """Forever: warm each store version that goes live (cancelled when the service stops)."""
        while True:
            try:
                version = self.state.data_version()
                if version is None:  # the link moved: follow it (opening a store is slow: off the event loop)
                    version, _ = await run_in_threadpool(self.state.versioned_engine)
                if version is not None and version != self.status.version:
                    await self.warm(version)
            except Exception as exc:  # noqa: BLE001 - no store yet, a store being swapped: try again shortly
                log.warning("warming named-query answers: %s", exc)
            await asyncio.sleep(POLL_S)

    async def warm(self, version: str) -> None:
        jobs = warm_jobs(self.state, self.library)
        self.status = WarmStatus(version=version, total=len(jobs))
        again: list[tuple[Job, list[Job]]] = []
        for last_chance, pass_jobs in ((False, jobs), (True, again)):
            for job, aliases in pass_jobs:
                if self.state.data_version() != version:  # a newer store went live: warm that one instead
                    self.status.version = None
                    return
                try:
                    await self._warm_one(version, job, aliases)
                except Exception as exc:  # noqa: BLE001 - computed on request instead; said in the log and /status
                    if not last_chance and isinstance(exc, WORTH_RETRYING):
                        again.append((job, aliases))
                        self.status.retried += 1
                        log.info("warming %s: %s; sent again at the end", job.query.splitlines()[0], exc)
                        continue
                    self.status.failed += 1
                    log.warning("warming %s: %s", job.query.splitlines()[0], exc)
                self.status.done += 1
        log.info("named-query answers warmed for %s: %d computed, %d failed, %d retried", version,
                 self.status.done - self.status.failed, self.status.failed, self.status.retried)

    async def _warm_one(self, version: str, job: Job, aliases: list[Job]) -> None:
        answer = self.state.cache.get(version, job)  # a request may have computed it already
        if answer is None:
            answer = await self._run(job, version, self.state.settings.warm_timeout_s)
        if self.state.data_version() == version:  # never filed under a version no longer live
            for key in (job, *aliases):
                self.state.cache.pin(version, key, answer)

    async def _run(self, job: Job, version: str, timeout: float) -> Answer:
        """The job on the store ``version``; stopped (its worker replaced) as soon as a newer store goes
        live, rather than holding a worker for minutes on a store nobody asks any more."""
        current, engine = await run_in_threadpool(self.state.versioned_engine)
        if current != version or not isinstance(engine, QueryEngine):
            raise RuntimeError("a newer store went live while warming")
        running = asyncio.ensure_future(engine.run_async(job, timeout=timeout))
        try:
            while not running.done():
                await asyncio.wait({running}, timeout=POLL_S)
                if not running.done() and self.state.data_version() != version:
                    raise RuntimeError("a newer store went live while warming")
            return running.result()
        finally:
            if not running.done():  # a newer store, or the service stopping: the engine replaces that worker
                running.cancel()
