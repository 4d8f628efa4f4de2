"""Shared fixtures: the shipped records, read once, and a settings object pointed at a temp dir."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest
import rdflib

from kg.settings import Settings
from kg.sources import RecordFailure, read_records

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

# The five shipped records by NCT id, as a careful reader of each page finds them.
SAMPLE_FILES = {
    "NCT06281886": "000_9efd11cc5e19c434.txt",
    "NCT05173246": "001_3720859e41622b64.txt",
    "NCT07248696": "002_f812caaae7d7cedb.txt",
    "NCT07325539": "003_fb8834935a5dd5b7.txt",
    "NCT07581821": "004_e127242ac2d684b5.txt",
}


@pytest.fixture(scope="session")
def samples():
    """Every shipped record, read by the real parsers, by NCT id."""
    records = list(read_records([DATA]))
    failures = [r for r in records if isinstance(r, RecordFailure)]
    assert not failures, failures
    return {r.nct_id: r for r in records}


@pytest.fixture()
def settings(tmp_path):
    return Settings(store_dir=tmp_path / "store")


BUILD_TIME = datetime(2026, 1, 1, tzinfo=timezone.utc)


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    """The shipped records built into a real on-disk store once (fixed build time, default base)."""
    from kg.build import build

    root = tmp_path_factory.mktemp("built")
    settings = Settings(store_dir=root / "store")
    report = build(settings, build_time=BUILD_TIME)
    return settings, report


@pytest.fixture(scope="session")
def store(built):
    from kg.store import open_read_only

    settings, _ = built
    return open_read_only(settings.store_dir)


@pytest.fixture(scope="session")
def ask(store, built):
    """Run a SPARQL query over the union of graphs with the ctkg prefixes; rows as dicts of strings."""
    from kg.namespaces import prefixes

    settings, _ = built
    header = "".join(f"PREFIX {p}: <{ns}>\n" for p, ns in prefixes(settings.base_iri).items())

    def run(query: str):
        result = store.query(header + query, use_default_graph_as_union=True)
        if isinstance(result, bool) or type(result).__name__ == "QueryBoolean":
            return bool(result)
        names = [v.value for v in result.variables]
        return [{n: row[n].value if row[n] is not None else None for n in names} for row in result]

    return run


def pytest_addoption(parser):
    parser.addoption("--update-snapshots", action="store_true", help="rewrite tests/snapshots from the current build")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(store_dir: Path, wait_s: float = 60, **env: str):
    """`kg serve` on a free loopback port over ``store_dir``, with extra ``CTKG_*`` settings; yields its URL.
    ``wait_s``: how long to wait for it to answer (longer when it first builds the store)."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "kg.cli", "serve", "--port", str(port), "--store", str(store_dir)],
        env=dict(os.environ, **env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + wait_s
    while time.time() < deadline:
        try:
            if httpx.get(url + "/sparql", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        process.kill()
        pytest.fail("server did not start: " + process.stdout.read().decode())
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def server(built):
    """`kg serve` on a free loopback port over the session's built store; 3 s query limit for the timeout test."""
    settings, _ = built
    with serving(settings.store_dir, CTKG_QUERY_TIMEOUT_S="3", CTKG_RESULT_LIMIT="1000") as url:
        yield url


# Toripalimab is given in pages 000, 001 (as JS001) and 003; tislelizumab only in page 002.
TORIPALIMAB_TRIALS = {"NCT06281886", "NCT05173246", "NCT07325539"}
TISLELIZUMAB_TRIALS = {"NCT07248696"}


def trials_of(response) -> set[str]:
    """The NCT ids in a SPARQL JSON answer with an ``nct`` column."""
    return {b["nct"]["value"] for b in response.json()["results"]["bindings"]}


# Curators' tokens for the servers that take updates (tests/test_updates.py, tests/test_w3c_protocol.py).
# A real registry record whose lead sponsor, "Tocagen Inc.", no concept table names.
REAL_RECORD = FIXTURES / "real" / "NCT02576665.json"


def with_lead_sponsor(name: str, folder: Path) -> Path:
    """REAL_RECORD as a new version whose lead sponsor is ``name``, written into ``folder``."""
    record = json.loads(REAL_RECORD.read_text(encoding="utf-8"))
    record["protocolSection"]["sponsorCollaboratorsModule"]["leadSponsor"]["name"] = name
    changed = folder / REAL_RECORD.name
    changed.write_text(json.dumps(record), encoding="utf-8")
    return changed


CURATOR_TOKENS = {"alice": "alice-0f3c9d2e8b7a6154", "bob": "bob-9e8d7c6b5a493827"}


def copy_store(built_store_dir: Path, store_dir: Path) -> Path:
    """Make ``store_dir`` a link to a fresh copy of a built store (a checkpoint, hard links), so that a
    test may change it while the session's store stays as built. Swapped in like a build, under the lock."""
    from pyoxigraph import Store

    from kg.store import live_store_path, new_build_dir, store_lock, swap_in

    with store_lock(store_dir):
        target = new_build_dir(store_dir, "copy")
        Store.read_only(str(live_store_path(built_store_dir))).backup(str(target))
        return swap_in(store_dir, target)


def parse_rdf(server: str, content: bytes, rdflib_format: str) -> rdflib.Graph:
    """Parse a response; JSON-LD must carry the context published at /context.jsonld."""
    if rdflib_format == "json-ld":
        # The document carries the published context inline: it parses without fetching anything.
        document = json.loads(content)
        if isinstance(document, dict) and "@context" in document:
            assert document["@context"] == httpx.get(server + "/context.jsonld").json()["@context"]
    return rdflib.Graph().parse(data=content, format=rdflib_format)


def loopback_listener():
    """A TCP listener on 127.0.0.1 that records any connection made to it within 3 s:
    (listener, thread, connections). Join the thread, then close the listener."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(3)
    connected: list = []

    def accept():
        try:
            connection, _ = listener.accept()
            connected.append(connection)
        except OSError:
            pass

    thread = threading.Thread(target=accept)
    thread.start()
    return listener, thread, connected
