"""Shared fixtures: the shipped records, read once, and a settings object pointed at a temp dir."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest

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
    return Settings(store_dir=tmp_path / "store", dumps_dir=tmp_path / "dumps")


BUILD_TIME = datetime(2026, 1, 1, tzinfo=timezone.utc)


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    """The shipped records built into a real on-disk store once (fixed build time, default base)."""
    from kg.build import build

    root = tmp_path_factory.mktemp("built")
    settings = Settings(store_dir=root / "store", dumps_dir=root / "dumps")
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


@pytest.fixture(scope="session")
def server(built):
    """`kg serve` on a free loopback port over the session's built store; 3 s query limit for the timeout test."""
    settings, _ = built
    port = _free_port()
    env = dict(os.environ, CTKG_QUERY_TIMEOUT_S="3", CTKG_RESULT_LIMIT="1000")
    process = subprocess.Popen(
        [sys.executable, "-m", "kg.cli", "serve", "--port", str(port), "--store", str(settings.store_dir)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(url + "/sparql", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        process.kill()
        pytest.fail("server did not start: " + process.stdout.read().decode())
    yield url
    process.terminate()
    process.wait(timeout=10)
