"""The build maps records chunk by chunk, in worker processes when there are several chunks.

Whatever the chunking, the store must come out the same, and duplicates and bad records must be
reported the same way.
"""

from __future__ import annotations

import json

import pytest
from pyoxigraph import BlankNode, Literal, NamedNode, Store

from conftest import BUILD_TIME, DATA, SAMPLE_FILES
from kg.build import BatchLoader, build
from kg.settings import Settings
from kg.store import open_read_only


def _inputs(tmp_path):
    again = tmp_path / "zz-again.json"  # sorts last: its chunk comes after the one holding the real record
    again.write_text(json.dumps({"protocolSection": {"identificationModule": {
        "nctId": "NCT06281886", "briefTitle": "A second record of the same trial"}}}), encoding="utf-8")
    broken = tmp_path / "broken.json"
    broken.write_text('{"protocolSection": {', encoding="utf-8")
    return [DATA, broken, again]


def _build(tmp_path, name, **options):
    settings = Settings(store_dir=tmp_path / name / "store", write_dumps=False, **options)
    report = build(settings, _inputs(tmp_path), build_time=BUILD_TIME)
    quads = set(open_read_only(settings.store_dir).quads_for_pattern(None, None, None, None))
    return report, quads


def test_parallel_chunks_build_the_same_store_as_one_process(tmp_path):
    serial, serial_quads = _build(tmp_path, "serial", build_workers=1)
    parallel, parallel_quads = _build(tmp_path, "parallel", build_workers=2, build_chunk_records=2)

    for report in (serial, parallel):
        assert sorted(report.trials) == sorted(SAMPLE_FILES)  # the five shipped records
        messages = [str(f) for f in report.failures]
        assert any("zz-again.json" in m and "duplicate record of NCT06281886" in m for m in messages), messages
        assert any("broken.json" in m and "malformed JSON" in m for m in messages), messages
        assert len(report.failures) == 2
    # Blank nodes (OWL axioms in the ontology graph) get new labels in every parse: compare the rest exactly.
    named = [{q for q in quads if not isinstance(q.subject, BlankNode) and not isinstance(q.object, BlankNode)}
             for quads in (serial_quads, parallel_quads)]
    assert named[0] == named[1]
    assert len(serial_quads) == serial.triples == parallel.triples
    # The duplicate's title never reached the graph.
    assert not any(q.object.value == "A second record of the same trial" for q in parallel_quads)
    assert [r.severity for r in serial.validation.rows] == [r.severity for r in parallel.validation.rows]
    assert {(r.focus, r.path, r.message) for r in serial.validation.rows} == \
        {(r.focus, r.path, r.message) for r in parallel.validation.rows}


def test_loading_in_many_batches_builds_the_same_store(tmp_path, monkeypatch):
    whole, whole_quads = _build(tmp_path, "one-batch", build_workers=1)
    monkeypatch.setattr("kg.build.LOAD_BATCH_BYTES", 1)  # every trial is a batch of its own for the loader thread
    batched, batched_quads = _build(tmp_path, "many-batches", build_workers=1)

    assert sorted(batched.trials) == sorted(SAMPLE_FILES)
    named = [{q for q in quads if not isinstance(q.subject, BlankNode) and not isinstance(q.object, BlankNode)}
             for quads in (whole_quads, batched_quads)]
    assert named[0] == named[1]
    assert len(batched_quads) == whole.triples == batched.triples


TRIAL = NamedNode("https://example.org/graph/NCT00000001")
TITLE = NamedNode("http://purl.org/dc/terms/title")


def _title(text: str) -> bytes:
    return f'{TRIAL} {TITLE} "{text}" {TRIAL} .\n'.encode()


def test_the_loader_replaces_a_graph_just_before_loading_its_new_quads(tmp_path):
    store = Store(str(tmp_path / "store"))
    loader = BatchLoader(store)
    loader.load(_title("old"))
    loader.load(_title("new"), replaced=[TRIAL])
    loader.close()

    assert [q.object for q in store.quads_for_pattern(None, TITLE, None, TRIAL)] == [Literal("new")]


def test_a_failed_batch_is_raised_in_the_build_and_later_batches_never_block(tmp_path):
    store = Store(str(tmp_path / "store"))
    loader = BatchLoader(store)
    loader.load(b"<not N-Quads\n")
    with pytest.raises(SyntaxError):  # raised by the next call into the loader, not lost in its thread
        for _ in range(3):
            loader.load(_title("after the failure"))
    with pytest.raises(SyntaxError):
        loader.close()
    assert not loader._thread.is_alive()
