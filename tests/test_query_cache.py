"""The answer cache of `kg serve`: repeated queries come from memory, keyed by the store version, so
no answer outlives an update or a rebuild. Real servers over private copies of the built store."""

from __future__ import annotations

import csv
import io
import json

import httpx
import pytest
from conftest import CURATOR_TOKENS, TISLELIZUMAB_TRIALS, TORIPALIMAB_TRIALS, copy_store, serving, trials_of

from service.engine import Answer, Job
from service.state import ResultCache

http = httpx.Client(timeout=120)

BASE = "http://localhost:8000"
PREFIXES = f"PREFIX ctkg: <{BASE}/ontology/>\n"
TRIAL = "NCT07248696"  # data/002_f812caaae7d7cedb.txt: "Total Enrollment 32 participants"
ENROLLMENT = PREFIXES + f'SELECT ?n {{ ?t ctkg:nctId "{TRIAL}" ; ctkg:enrollment ?n }}'
FIX_ENROLLMENT = PREFIXES + f"""WITH <{BASE}/graph/{TRIAL}>
DELETE {{ ?trial ctkg:enrollment ?old }} INSERT {{ ?trial ctkg:enrollment 34 }}
WHERE {{ ?trial ctkg:nctId "{TRIAL}" ; ctkg:enrollment ?old }}"""


@pytest.fixture(scope="module")
def cached_server(built, tmp_path_factory):
    """A server with the default cache and a curator's token, over its own copy of the store."""
    settings, _ = built
    root = tmp_path_factory.mktemp("cached")
    copy_store(settings.store_dir, root / "store")
    # Warming off: these tests see the first request of each query miss.
    with serving(root / "store", CTKG_UPDATE_TOKENS=json.dumps(CURATOR_TOKENS), CTKG_WARM_QUERIES="false") as url:
        yield url, root / "store"


def enrollment(url: str, **params) -> tuple[httpx.Response, list[str]]:
    response = http.get(url + "/sparql", params={"query": ENROLLMENT, **params})
    assert response.status_code == 200, response.text
    return response, [b["n"]["value"] for b in response.json()["results"]["bindings"]]


def test_repeated_named_query_is_a_hit_with_the_same_body(cached_server):
    """The second identical request is answered from the cache, byte for byte the same."""
    url, _ = cached_server
    first = http.get(url + "/queries/trials-by-drug", params={"drug_name": "JS001"})
    second = http.get(url + "/queries/trials-by-drug", params={"drug_name": "JS001"})
    assert first.status_code == second.status_code == 200
    assert first.headers["x-cache"] == "miss" and second.headers["x-cache"] == "hit"
    assert second.content == first.content
    assert second.headers["content-type"] == first.headers["content-type"]
    assert trials_of(second) == TORIPALIMAB_TRIALS


def test_update_makes_the_same_query_a_miss_with_the_new_data(built, cached_server):
    """After a curator's update the cached answer is not served again: the query runs on the new store."""
    settings, _ = built
    url, store_dir = cached_server
    copy_store(settings.store_dir, store_dir)  # start from the store as built, whatever ran before
    enrollment(url)
    cached, values = enrollment(url)
    assert cached.headers["x-cache"] == "hit" and values == ["32"]
    update = http.post(url + "/sparql", content=FIX_ENROLLMENT.encode(),
                       headers={"Content-Type": "application/sparql-update",
                                "Authorization": f"Bearer {CURATOR_TOKENS['alice']}"})
    assert update.status_code == 200, update.text
    after, values = enrollment(url)
    assert after.headers["x-cache"] == "miss" and values == ["34"]
    again, values = enrollment(url)
    assert again.headers["x-cache"] == "hit" and values == ["34"]


def test_rebuild_makes_the_same_query_a_miss(built, cached_server):
    """A new store swapped in under the link (as `kg build` does) starts with an empty cache."""
    settings, _ = built
    url, store_dir = cached_server
    http.get(url + "/queries/trials-by-drug")
    assert http.get(url + "/queries/trials-by-drug").headers["x-cache"] == "hit"
    copy_store(settings.store_dir, store_dir)  # the store as built: the update above is gone
    rebuilt = http.get(url + "/queries/trials-by-drug")
    assert rebuilt.headers["x-cache"] == "miss" and trials_of(rebuilt) == TORIPALIMAB_TRIALS
    assert enrollment(url)[1] == ["32"]


def test_parameters_formats_and_datasets_do_not_collide(cached_server):
    """Answers differing by a parameter, a format or the dataset are cached apart."""
    url, _ = cached_server
    toripalimab = http.get(url + "/queries/trials-by-drug", params={"drug_name": "toripalimab"})
    tislelizumab = http.get(url + "/queries/trials-by-drug", params={"drug_name": "tislelizumab"})
    assert trials_of(toripalimab) == TORIPALIMAB_TRIALS and trials_of(tislelizumab) == TISLELIZUMAB_TRIALS
    as_csv = http.get(url + "/queries/trials-by-drug", params={"drug_name": "tislelizumab", "format": "csv"})
    assert as_csv.headers["x-cache"] == "miss" and as_csv.headers["content-type"].startswith("text/csv")
    assert {row["nct"] for row in csv.DictReader(io.StringIO(as_csv.text))} == TISLELIZUMAB_TRIALS
    by_accept = http.get(url + "/queries/trials-by-drug", params={"drug_name": "tislelizumab"},
                         headers={"Accept": "text/tab-separated-values"})
    assert by_accept.headers["x-cache"] == "miss" and by_accept.headers["content-type"].startswith("text/tab")
    assert http.get(url + "/queries/trials-by-drug", params={"drug_name": "tislelizumab"}).headers["x-cache"] == "hit"
    # The same text over the trial's own graph, and over another trial's graph, where it is absent.
    _, values = enrollment(url, **{"default-graph-uri": f"{BASE}/graph/{TRIAL}"})
    other, none = enrollment(url, **{"default-graph-uri": f"{BASE}/graph/NCT06281886"})
    assert values and none == [] and other.headers["x-cache"] == "miss"


def test_errors_are_not_cached(cached_server):
    """A refused query is refused again, never answered from the cache."""
    url, _ = cached_server
    for _ in range(2):
        response = http.get(url + "/sparql", params={"query": "SELECT ?s WHERE { ?s"})
        assert response.status_code == 400 and "x-cache" not in response.headers


def test_cache_disabled_by_setting(built, tmp_path):
    """CTKG_CACHE_ENTRIES=0: every request runs the query, and the header says the cache is off."""
    settings, _ = built
    with serving(settings.store_dir, CTKG_CACHE_ENTRIES="0") as url:
        responses = [http.get(url + "/queries/trials-by-drug") for _ in range(2)]
    assert [r.headers["x-cache"] for r in responses] == ["off", "off"]
    assert trials_of(responses[1]) == TORIPALIMAB_TRIALS


def _job(text: str) -> Job:
    return Job(query=text, base_iri=BASE + "/", select_format="json", graph_format="ttl", limit=10,
               default_graphs=None, named_graphs=None, union_default=True)


def _answer(size: int) -> Answer:
    return Answer("select", b"x" * size, "application/sparql-results+json", False, 1)


def test_cache_is_bounded_in_entries_and_bytes():
    """The least recently used answers go first when either bound is passed; one too big is not kept."""
    cache = ResultCache(max_entries=2, max_bytes=100)
    a, b, c = _job("ASK {}"), _job("SELECT * {}"), _job("SELECT ?s {}")
    cache.put("v1", a, _answer(10))
    cache.put("v1", b, _answer(10))
    assert cache.get("v1", a) is not None  # a is now the most recently used
    cache.put("v1", c, _answer(10))
    assert cache.get("v1", b) is None and cache.get("v1", a) is not None and cache.get("v1", c) is not None
    cache.put("v1", b, _answer(95))  # over the byte bound with the others: they go
    assert cache.get("v1", b) is not None and cache.get("v1", a) is None and cache.get("v1", c) is None
    cache.put("v1", a, _answer(101))
    assert cache.get("v1", a) is None


def test_a_new_store_version_empties_the_cache():
    """Once a request has seen a new store version, the answers of the old one are dropped."""
    cache = ResultCache(max_entries=10, max_bytes=1000)
    job = _job("ASK {}")
    cache.put("old", job, _answer(5))
    assert len(cache) == 1 and cache.get("old", job) is not None
    assert cache.get("new", job) is None and len(cache) == 0
    cache.put("new", job, _answer(5))
    assert cache.get("new", job) is not None
