"""Named-query answers computed ahead (service.warm): once a store version is live, the server runs each
named query with its default and its example parameters and caches the answers under that version.
Real servers over private copies of the built store."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time

import httpx
from conftest import TISLELIZUMAB_TRIALS, TORIPALIMAB_TRIALS, copy_store, serving, trials_of

from kg.queries import load_library
from service.engine import QueryTimeout
from service.state import ServiceState
from service.warm import Warmer, warm_jobs

http = httpx.Client(timeout=120)



def warmed(url: str, other_than: str | None = None, wait_s: float = 60) -> dict:
    """/status once the store served (other than ``other_than``) has all its answers computed."""
    deadline = time.time() + wait_s
    while time.time() < deadline:
        status = http.get(url + "/status").json()
        if status["store"] != other_than and status["warm"]["state"] == "done":
            return status
        time.sleep(0.2)
    raise AssertionError(f"answers not warmed within {wait_s} s: {status}")


def test_default_and_example_answers_are_ready_before_anyone_asks(built, tmp_path):
    settings, _ = built
    copy_store(settings.store_dir, tmp_path / "store")
    with serving(tmp_path / "store") as url:
        status = warmed(url)
        catalogue = http.get(url + "/queries").json()
        assert status["warm"]["failed"] == 0
        assert status["warm"]["computed"] == status["warm"]["answers"] >= len(catalogue)

        default = http.get(url + "/queries/trials-by-drug")  # drug_name defaults to toripalimab
        example = http.get(url + "/queries/trials-by-drug", params={"drug_name": "JS001"})  # the catalogue's example
        other = http.get(url + "/queries/trials-by-drug", params={"drug_name": "tislelizumab"})
        assert default.headers["x-cache"] == example.headers["x-cache"] == "hit"
        assert trials_of(default) == trials_of(example) == TORIPALIMAB_TRIALS
        assert other.headers["x-cache"] == "miss" and trials_of(other) == TISLELIZUMAB_TRIALS
        # The query page's run of the catalogue's example (service/static/query.js posts it so) finds it too.
        shown = next(q["example"] for q in catalogue if q["name"] == "trials-by-drug")
        from_page = http.post(url + "/sparql", data={"query": shown},
                              headers={"Accept": "application/sparql-results+json, text/turtle;q=0.9"})
        assert from_page.headers["x-cache"] == "hit" and trials_of(from_page) == TORIPALIMAB_TRIALS
        # Other formats are computed on request, from the same store.
        as_csv = http.get(url + "/queries/trials-by-drug", params={"format": "csv"})
        assert as_csv.headers["x-cache"] == "miss" and "NCT06281886" in as_csv.text


def test_a_new_store_version_is_warmed_in_its_turn(built, tmp_path):
    settings, _ = built
    copy_store(settings.store_dir, tmp_path / "store")
    with serving(tmp_path / "store") as url:
        first = warmed(url)["store"]
        copy_store(settings.store_dir, tmp_path / "store")  # a rebuild: a new version goes live
        second = warmed(url, other_than=first)["store"]
        assert second != first
        again = http.get(url + "/queries/trials-by-drug")
        assert again.headers["x-cache"] == "hit" and trials_of(again) == TORIPALIMAB_TRIALS


def test_warming_can_be_turned_off(built, tmp_path):
    settings, _ = built
    copy_store(settings.store_dir, tmp_path / "store")
    with serving(tmp_path / "store", CTKG_WARM_QUERIES="false") as url:
        assert http.get(url + "/status").json()["warm"]["state"] == "off"
        assert http.get(url + "/queries/trials-by-drug").headers["x-cache"] == "miss"


def test_answers_computed_ahead_stay_when_the_cache_is_full(built, tmp_path):
    """Pinned for their version: a cache too small for even one answer does not evict them."""
    settings, _ = built
    copy_store(settings.store_dir, tmp_path / "store")
    with serving(tmp_path / "store", CTKG_CACHE_BYTES="100", CTKG_CACHE_ENTRIES="1") as url:
        warmed(url)
        for drug in ("tislelizumab", "camrelizumab", "sintilimab"):  # computed on request, kept within the bounds
            http.get(url + "/queries/trials-by-drug", params={"drug_name": drug})
        http.get(url + "/queries/pd1-vegfr-tki-trials", params={"format": "csv"})
        kept = http.get(url + "/queries/trials-by-drug")
        assert kept.headers["x-cache"] == "hit" and trials_of(kept) == TORIPALIMAB_TRIALS


# Every triple against every triple against every triple: billions of rows even on five records.
ENDLESS = "SELECT (COUNT(*) AS ?n) { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }"


def test_a_query_that_found_every_worker_busy_is_sent_again_at_the_end(built, tmp_path, caplog):
    """One query worker, held by a request that runs on: the first warming query waits the warming
    limit for it in vain. That says nothing about the query, so it is sent again once the pass is over
    (by then the worker is free), and every answer is computed. The log quotes the warming limit, not
    the request limit."""
    caplog.set_level(logging.INFO, logger="ctkg.warm")
    settings, _ = built
    copy_store(settings.store_dir, tmp_path / "store")
    mine = settings.model_copy(update={"store_dir": tmp_path / "store", "warm_timeout_s": 1.0})
    state = ServiceState(mine, workers=1)
    library = load_library(mine.queries_dir)
    warmer = Warmer(state, library)

    async def scenario():
        version, engine = state.versioned_engine()
        engine.wait_ready()
        first_job = warm_jobs(state, library)[0][0]
        hog = asyncio.ensure_future(engine.run_async(dataclasses.replace(first_job, query=ENDLESS), timeout=300))
        while engine._idle.qsize():  # until the endless query has the only worker
            await asyncio.sleep(0.01)
        warming = asyncio.ensure_future(warmer.warm(version))
        while warmer.status.retried == 0 and not warming.done():
            await asyncio.sleep(0.05)
        hog.cancel()  # the request gives up: its worker is replaced and the pass goes on
        await warming
        try:
            await hog
        except (asyncio.CancelledError, QueryTimeout):
            pass
        return version, first_job

    try:
        version, first_job = asyncio.run(scenario())
        status = warmer.status.as_json(True, version)
        assert status["retried"] >= 1, status
        assert status["failed"] == 0 and status["computed"] == status["answers"] == len(warm_jobs(state, library))
        assert status["state"] == "done"
        assert state.cache.get(version, first_job) is not None  # the query set aside was answered after all
        set_aside = [r.getMessage() for r in caplog.records if "sent again at the end" in r.getMessage()]
        assert set_aside and all("stayed busy for 1 s" in m for m in set_aside), set_aside
    finally:
        state.close()


def test_a_worker_still_starting_is_busy_within_a_short_limit_and_is_kept(built, tmp_path):
    """A job whose limit runs out while its worker is still opening the store never ran: it is told the
    workers are busy, and the worker (not at fault) is kept, not killed and replaced."""
    from service.engine import QueryEngine, WorkersBusy

    settings, _ = built
    copy_store(settings.store_dir, tmp_path / "store")
    mine = settings.model_copy(update={"store_dir": tmp_path / "store"})
    state = ServiceState(mine, workers=1)
    library = load_library(mine.queries_dir)
    job = warm_jobs(state, library)[0][0]
    engine = QueryEngine(state.versioned_engine()[0], workers=1)  # its worker has just been started
    try:
        first = engine._workers[0]

        async def scenario():
            try:
                await engine.run_async(job, timeout=0.001)
            except WorkersBusy as exc:
                busy = str(exc), first.ready  # told at once, not after the worker had started
            else:
                busy = None
            return busy, await engine.run_async(job, timeout=120)

        busy, answer = asyncio.run(scenario())
        assert busy is not None and "0.001 s" in busy[0] and busy[1] is False
        assert engine._workers == [first] and first.process.is_alive()  # the same worker answered
        assert answer.count >= 0 and answer.body
    finally:
        engine.close()
        state.close()

