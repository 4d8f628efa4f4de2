"""Shared fixtures: the shipped records, read once, and a settings object pointed at a temp dir."""

from __future__ import annotations

from pathlib import Path

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
