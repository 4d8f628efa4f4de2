"""Named-query answers computed ahead (service.warm): once a store version is live, the server runs each
named query with its default and its example parameters and caches the answers under that version.
Real servers over private copies of the built store."""

from __future__ import annotations

import time

import httpx
from conftest import TISLELIZUMAB_TRIALS, TORIPALIMAB_TRIALS, copy_store, serving, trials_of

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
