"""Pages have worker processes of their own, and the home page lists the trials one bounded page at a time,
through a real `kg serve`: pages in every format are answered while slow SPARQL queries hold every query
worker; the page workers are replaced with the query workers when a new store goes live; the home page of a
store with more trials than one page shows the total, 100 trials a page, and prev/next links that walk the
whole list.

Expected pages are read off the shipped record data/000_9efd11cc5e19c434.txt (NCT06281886, see
tests/test_pages_in_workers.py) and off the hand-written records this file writes (NCT ids and titles).
"""

from __future__ import annotations

import html
import json
import re
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from conftest import BUILD_TIME, copy_store, serving
from test_pages_in_workers import (FORMATS, SLOW_QUERY, assert_arm_page, assert_trial_page, server_process,
                                   worker_processes)

QUERY_WORKERS = 2  # `kg serve --workers`, left at its default by conftest.serving
PAGE_SIZE = 100  # trials on one page of the home page (service.pages.HOME_PAGE_SIZE)

# Hand-written records: 230 trials, so the list has two full pages and one of 30. The ids are written out of
# order (n * 37 mod 1000 walks 0..999 without repeating) so the list's order is the server's sorting, not ours.
RECORD_NUMBERS = [(n * 37) % 1000 for n in range(230)]


def hand_written_record(number: int) -> dict:
    """A small valid v2 study: its id and title carry ``number``; its drug and condition are in the concept tables."""
    return {"protocolSection": {
        "identificationModule": {"nctId": f"NCT0977{number:04d}", "briefTitle": f"Hand-written trial number {number}"},
        "statusModule": {"overallStatus": "COMPLETED", "startDateStruct": {"date": "2021-02"},
                         "completionDateStruct": {"date": "2023-05-31"}},
        "sponsorCollaboratorsModule": {"leadSponsor": {"name": "Sun Yat-sen University", "class": "OTHER"}},
        "conditionsModule": {"conditions": ["Nasopharyngeal Carcinoma"]},
        "designModule": {"studyType": "INTERVENTIONAL", "phases": ["PHASE2"], "enrollmentInfo": {"count": 40}},
        "armsInterventionsModule": {
            "armGroups": [{"label": "Toripalimab", "type": "EXPERIMENTAL", "interventionNames": ["Drug: Toripalimab"]}],
            "interventions": [{"type": "DRUG", "name": "Toripalimab", "description": "240 mg every 3 weeks"}]},
    }}


# The trial list as the records give it: (NCT id, title), sorted by NCT id.
EXPECTED_TRIALS = sorted((f"NCT0977{n:04d}", f"Hand-written trial number {n}") for n in RECORD_NUMBERS)


def listed_trials(page: str) -> list[tuple[str, str]]:
    """The trials a home page lists, in its order: (NCT id, title), each linking to its trial page."""
    found = []
    for href, nct, title in re.findall(r'<li><a href="([^"]+)">(NCT\d{8})</a> (.*?)</li>', page):
        assert href == f"/trial/{nct}"
        found.append((nct, html.unescape(title)))
    return found


def link(page: str, rel: str) -> str | None:
    match = re.search(rf'<a rel="{rel}" href="([^"]+)">', page)
    return html.unescape(match.group(1)) if match else None


@pytest.fixture(scope="module")
def many_trials_server(tmp_path_factory):
    """`kg serve` over a store built from the 230 hand-written records (answer cache on)."""
    from kg.build import build
    from kg.settings import Settings

    root = tmp_path_factory.mktemp("many")
    records = root / "records"
    records.mkdir()
    for number in RECORD_NUMBERS:
        (records / f"{number}.json").write_text(json.dumps(hand_written_record(number)), encoding="utf-8")
    settings = Settings(store_dir=root / "store", write_dumps=False)
    report = build(settings, [records], build_time=BUILD_TIME)
    assert len(report.trials) == len(RECORD_NUMBERS) and not report.rejected and report.ok
    with serving(settings.store_dir) as url:
        yield url


def test_home_page_shows_the_total_and_walks_the_list_a_page_at_a_time(many_trials_server):
    """The first page says how many trials there are and lists the first 100 by NCT id; following `next`
    gives 100 more, then the last 30, and `prev` leads back: every trial once, in order, with its title."""
    first = httpx.get(many_trials_server + "/")
    assert first.status_code == 200 and first.headers["content-type"].startswith("text/html")
    assert "230 trials" in first.text and "page 1 of 3" in first.text
    assert link(first.text, "prev") is None and link(first.text, "next") == "/?page=2"
    # Everything else the home page shows is still there.
    assert "CC BY 4.0" in first.text and 'href="/dumps/"' in first.text and 'href="/query"' in first.text
    assert 'href="/queries"' in first.text and 'href="/.well-known/void"' in first.text

    pages, url = [first.text], link(first.text, "next")
    while url is not None:
        response = httpx.get(many_trials_server + url)
        assert response.status_code == 200, url
        pages.append(response.text)
        url = link(response.text, "next")
    assert [len(listed_trials(page)) for page in pages] == [PAGE_SIZE, PAGE_SIZE, 30]
    assert [trial for page in pages for trial in listed_trials(page)] == EXPECTED_TRIALS
    assert "page 3 of 3" in pages[2] and "201–230 of 230" in pages[2]

    assert link(pages[2], "prev") == "/?page=2"
    back = httpx.get(many_trials_server + "/?page=2")
    assert back.text == pages[1] and link(back.text, "prev") == "/?page=1"
    assert listed_trials(httpx.get(many_trials_server + "/?page=1").text) == EXPECTED_TRIALS[:PAGE_SIZE]


def test_home_pages_are_cached_and_conditional(many_trials_server):
    """A page of the list asked for again comes from the cache with the same bytes and ETag; with that ETag
    in If-None-Match the answer is 304."""
    first = httpx.get(many_trials_server + "/?page=3")
    again = httpx.get(many_trials_server + "/?page=3")
    assert again.headers["x-cache"] == "hit" and again.content == first.content
    assert again.headers["etag"] == first.headers["etag"]
    assert httpx.get(many_trials_server + "/?page=3", headers={"If-None-Match": first.headers["etag"]}).status_code == 304


@pytest.mark.parametrize("asked,status", [("4", 404), ("0", 400), ("-1", 400), ("two", 400), ("1.5", 400),
                                           ("9" * 5000, 400)])
def test_a_page_the_list_does_not_have_is_refused_clearly(many_trials_server, asked, status):
    """Past the last page is 404 with a link to the first; a page number that is not a whole number from 1
    is 400 and the message names the parameter and the value."""
    response = httpx.get(many_trials_server + "/", params={"page": asked})
    assert response.status_code == status
    if status == 400:
        assert "page must be a whole number from 1" in response.text and repr(asked) in response.text
    else:
        assert "no page 4" in response.text and 'href="/"' in response.text


@pytest.fixture(scope="module")
def uncached_server(built):
    """`kg serve` over the shipped records with the answer cache off (every page is built by a worker) and a
    time limit the slow queries run into while the pages are asked for."""
    settings, _ = built
    with serving(settings.store_dir, CTKG_CACHE_ENTRIES="0", CTKG_QUERY_TIMEOUT_S="20") as url:
        yield url


def test_pages_in_every_format_while_slow_queries_hold_every_query_worker(uncached_server):
    """With one slow query on each query worker, pages in all five formats and the home page, asked for at
    once, are all answered right by the page worker before the queries reach their time limit."""
    slow: list = []

    def run_slow_query() -> None:
        slow.append(httpx.post(uncached_server + "/sparql", content=SLOW_QUERY, timeout=60, headers={
            "Content-Type": "application/sparql-query", "Accept": "application/sparql-results+json"}))

    queries = [threading.Thread(target=run_slow_query) for _ in range(QUERY_WORKERS)]
    for query in queries:
        query.start()
    threading.Event().wait(1)  # let the queries reach their workers first
    requests = [f"{path}.{fmt}" for path in ("/trial/NCT06281886/arm/1", "/trial/NCT06281886") for fmt in FORMATS]
    requests += ["/", "/?page=1"]
    with ThreadPoolExecutor(len(requests)) as pool:
        responses = list(pool.map(lambda path: httpx.get(uncached_server + path, timeout=60), requests))
    still_running = [query.is_alive() for query in queries]
    for query in queries:
        query.join()
    # Each query held its worker until the time limit stopped it ...
    assert [(r.status_code, "ran longer than" in r.text) for r in slow] == [(503, True)] * QUERY_WORKERS
    # ... and the pages did not wait for that.
    assert all(still_running), "the pages were answered only after the slow queries were stopped"
    for path, response in zip(requests, responses):
        if path.startswith("/?") or path == "/":
            assert response.status_code == 200, (path, response.text[:200])
            assert "5 trials" in response.text and len(listed_trials(response.text)) == 5
            assert ("NCT06281886", "Induction Immuno-chemotherapy and Concurrent Chemoradiotherapy With or "
                    "Without Apatinib in Unresectable, Locally Advanced Esophageal Squamous Cell Carcinoma") \
                in listed_trials(response.text)
            continue
        base, fmt = path.rsplit(".", 1)
        (assert_arm_page if base.endswith("/arm/1") else assert_trial_page)(uncached_server, response, fmt)


@pytest.mark.parametrize("page_workers", [2, 0])
def test_page_workers_are_replaced_with_the_query_workers_when_a_new_store_goes_live(built, tmp_path, page_workers):
    """The server runs its query workers and CTKG_PAGE_WORKERS page workers (0: pages use the query workers);
    after a new store is swapped in, the next page is built by new workers and every worker of the old store
    has stopped."""
    settings, _ = built
    store_dir = tmp_path / "store"
    copy_store(settings.store_dir, store_dir)
    with serving(store_dir, CTKG_PAGE_WORKERS=str(page_workers), CTKG_CACHE_ENTRIES="0") as url:
        assert_trial_page(url, httpx.get(url + "/trial/NCT06281886.ttl"), "ttl")
        before = worker_processes(server_process(url))
        assert len(before) == QUERY_WORKERS + page_workers, before
        copy_store(settings.store_dir, store_dir)  # a new store version, as a build or an update makes
        assert_trial_page(url, httpx.get(url + "/trial/NCT06281886.ttl"), "ttl")
        assert "5 trials" in httpx.get(url + "/").text
        after = worker_processes(server_process(url))
        assert len(after) == QUERY_WORKERS + page_workers and not set(before) & set(after), (before, after)


def test_a_page_request_given_up_while_waiting_does_not_take_the_page_worker_away(built):
    """A page request cancelled while it waits for the one busy worker leaves a thread waiting; the worker that
    thread gets when the slow job ends goes back to the pool, so the next page is built (it was lost before)."""
    import asyncio

    from kg.store import live_store_path
    from service.engine import Job, PageJob, QueryEngine, QueryTimeout

    settings, _ = built
    base = settings.base_iri
    engine = QueryEngine(live_store_path(settings.store_dir), workers=1, timeout=5, role="page")
    slow = Job(query=SLOW_QUERY, base_iri=base + "/", select_format="json", graph_format="ttl", limit=10,
               default_graphs=None, named_graphs=None, union_default=True)
    page = PageJob(subject=f"{base}/trial/NCT06281886", media_type="application/n-triples", base_iri=base)

    async def scenario():
        holding = asyncio.create_task(engine.run_async(slow))
        # The page request waits from half-way through the slow job, so its wait (up to the same limit) is still
        # going when the slow job is stopped and its worker replaced.
        await asyncio.sleep(2.5)
        waiting = asyncio.create_task(engine.page_async(page))
        await asyncio.sleep(0.5)
        waiting.cancel()
        with pytest.raises(QueryTimeout):
            await holding  # stopped at the limit; its worker is replaced ...
        await asyncio.sleep(1)  # ... and the cancelled request's waiting thread takes the new one
        return await engine.page_async(page)

    try:
        engine.wait_ready()
        answer = asyncio.run(scenario())
    finally:
        engine.close()
    assert answer is not None and f"<{base}/trial/NCT06281886>".encode() in answer.body
