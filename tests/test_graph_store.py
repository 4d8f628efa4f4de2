"""Store life cycle and dumps: snapshots by isomorphism, dumps that parse back, safe rebuilds."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyoxigraph
import pytest
import rdflib
from rdflib.compare import isomorphic, to_isomorphic

from conftest import BUILD_TIME, DATA, SAMPLE_FILES
from kg.build import build
from kg.export import export, export_to
from kg.settings import Settings
from kg.store import open_read_only

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"


def _graph_of(store, graph_iri: str) -> rdflib.Graph:
    buffer = io.BytesIO()
    export(store, "nt", buffer, graph=graph_iri)
    graph = rdflib.Graph()
    graph.parse(data=buffer.getvalue().decode("utf-8"), format="nt")
    return graph


@pytest.mark.parametrize("nct", sorted(SAMPLE_FILES))
def test_trial_graph_matches_its_snapshot(store, built, nct, request):
    """Each trial graph is isomorphic to its reviewed snapshot (regenerate: pytest --update-snapshots)."""
    settings, _ = built
    graph = _graph_of(store, f"{settings.base_iri}/graph/{nct}")
    # The source path depends on where the tests run from; compare it by file name only.
    source = rdflib.URIRef("http://purl.org/dc/terms/source")
    for s, _, o in list(graph.triples((None, source, None))):
        graph.remove((s, source, o))
        graph.add((s, source, rdflib.Literal(Path(str(o)).name)))
    path = SNAPSHOTS / f"{nct}.nt"
    if request.config.getoption("--update-snapshots") or not path.exists():
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text("".join(sorted(graph.serialize(format="nt").splitlines(keepends=True))), encoding="utf-8")
        if not request.config.getoption("--update-snapshots"):
            pytest.fail(f"snapshot {path.name} was missing and has been written: review and commit it")
    expected = rdflib.Graph().parse(path, format="nt")
    assert isomorphic(to_isomorphic(graph), to_isomorphic(expected)), f"{nct} graph differs from {path.name}"


@pytest.mark.parametrize("fmt", ["nq", "trig", "jsonld"])
def test_dataset_dumps_parse_back_to_the_same_quads(store, tmp_path, fmt):
    """N-Quads, TriG and JSON-LD dumps parse back (pyoxigraph) to exactly the store's quads."""
    path = tmp_path / f"dump.{fmt}"
    export_to(store, fmt, str(path), base="http://localhost:8000")
    parsed = set(pyoxigraph.parse(path=str(path), format=pyoxigraph.RdfFormat.from_extension(fmt)))
    assert parsed == set(store.quads_for_pattern(None, None, None, None))


@pytest.mark.parametrize("fmt,rdflib_format", [("ttl", "turtle"), ("nt", "nt"), ("rdf", "xml")])
def test_triple_dumps_are_isomorphic_in_rdflib_and_pyoxigraph(store, tmp_path, fmt, rdflib_format):
    """Turtle, N-Triples and RDF/XML dumps (gzip too) give the union graph in both rdflib and pyoxigraph."""
    path = tmp_path / f"dump.{fmt}.gz"
    export_to(store, fmt, str(path), base="http://localhost:8000")
    import gzip

    data = gzip.decompress(path.read_bytes())
    union = {q.triple for q in store.quads_for_pattern(None, None, None, None)}
    assert {q.triple for q in pyoxigraph.parse(data, format=pyoxigraph.RdfFormat.from_extension(fmt))} == union
    via_rdflib = rdflib.Graph().parse(data=data, format=rdflib_format)
    assert len(via_rdflib) == len(union)


def test_failed_build_leaves_the_previous_store_unchanged(tmp_path, monkeypatch):
    """A build that breaks before the swap (here: interrupted while describing the dataset) changes nothing."""
    settings = Settings(store_dir=tmp_path / "store")
    build(settings, build_time=BUILD_TIME)
    before = set(open_read_only(settings.store_dir).quads_for_pattern(None, None, None, None))
    live = settings.store_dir.resolve()

    import kg.build

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(kg.build, "describe", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build(settings, [DATA / SAMPLE_FILES["NCT06281886"]])
    assert settings.store_dir.resolve() == live
    assert set(open_read_only(settings.store_dir).quads_for_pattern(None, None, None, None)) == before
    leftovers = [p for p in (tmp_path / "store.d").iterdir() if p.name.endswith(".building")]
    assert leftovers == []


def test_killed_build_process_leaves_the_previous_store_serving(tmp_path):
    """A `kg build` killed with SIGKILL mid-way leaves the link on the old store; the next build succeeds."""
    import os
    import signal
    import subprocess
    import sys
    import time

    settings = Settings(store_dir=tmp_path / "store")
    build(settings, build_time=BUILD_TIME)
    live = settings.store_dir.resolve()
    before = set(open_read_only(settings.store_dir).quads_for_pattern(None, None, None, None))
    # Many copies of the records make the build long enough to be killed while it writes.
    many = tmp_path / "many"
    many.mkdir()
    study = json.loads((Path(__file__).parent / "fixtures" / "records" / "NCT06281886.json").read_text())
    studies = []
    for n in range(3000):
        copy = json.loads(json.dumps(study))
        copy["protocolSection"]["identificationModule"]["nctId"] = f"NCT{10000000 + n:08d}"
        studies.append(copy)
    (many / "page.json").write_text(json.dumps({"studies": studies}))
    process = subprocess.Popen([sys.executable, "-m", "kg.cli", "build", str(many), "--store", str(settings.store_dir),
                                "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and not any(p.name.endswith(".building") for p in (tmp_path / "store.d").iterdir()):
        time.sleep(0.01)
    time.sleep(0.3)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert settings.store_dir.resolve() == live
    assert set(open_read_only(settings.store_dir).quads_for_pattern(None, None, None, None)) == before
    report = build(settings)
    assert len(report.trials) == 5 and settings.store_dir.resolve() != live


def _to_rdflib(quads) -> rdflib.Graph:
    data = pyoxigraph.serialize([q.triple for q in quads], format=pyoxigraph.RdfFormat.N_TRIPLES)
    return rdflib.Graph().parse(data=data.decode("utf-8"), format="nt")


def test_update_replaces_only_the_rebuilt_records_graph(tmp_path):
    """`build --update` with one changed record replaces its graph; every other graph stays identical."""
    settings = Settings(store_dir=tmp_path / "store")
    build(settings, build_time=BUILD_TIME)
    old = open_read_only(settings.store_dir)
    graphs_before = {g.value: set(old.quads_for_pattern(None, None, None, g)) for g in old.named_graphs()}
    del old
    changed = tmp_path / "NCT05173246.txt"
    changed.write_text((DATA / SAMPLE_FILES["NCT05173246"]).read_text(encoding="utf-8").replace(
        "43 participants", "44 participants"), encoding="utf-8")
    report = build(settings, [changed], update=True, build_time=BUILD_TIME)
    assert report.trials == ["NCT05173246"]
    new = open_read_only(settings.store_dir)
    graphs_after = {g.value: set(new.quads_for_pattern(None, None, None, g)) for g in new.named_graphs()}
    assert graphs_after.keys() == graphs_before.keys()
    for name in graphs_before:
        if name.endswith("/graph/NCT05173246") or name.endswith("/graph/dataset"):
            continue
        if name.endswith("/graph/ontology"):  # OWL restrictions are blank nodes: compare by isomorphism
            assert isomorphic(_to_rdflib(graphs_after[name]), _to_rdflib(graphs_before[name]))
        else:
            assert graphs_after[name] == graphs_before[name], name
    changed_graph = graphs_after["http://localhost:8000/graph/NCT05173246"]
    assert any(q.object.value == "44" for q in changed_graph)
    assert not any(q.object.value == "43" for q in changed_graph)


def test_update_drops_an_organization_no_trial_names_any_more(tmp_path):
    """An organization no concept table names is described once, in the entities graph. When `--update`
    brings a record whose sponsor changed, the old sponsor (named by no other trial) leaves that graph
    and the new one comes in; what other trials name stays."""
    from conftest import REAL_RECORD, with_lead_sponsor

    settings = Settings(store_dir=tmp_path / "store", write_dumps=False)
    build(settings, [DATA, REAL_RECORD], build_time=BUILD_TIME)
    base = settings.base_iri
    entities = pyoxigraph.NamedNode(f"{base}/graph/entities")

    def described() -> set[str]:
        store = open_read_only(settings.store_dir)
        return {q.subject.value for q in store.quads_for_pattern(None, None, None, entities)}

    before = described()
    assert f"{base}/organization/tocagen-inc" in before  # the fixture's lead sponsor, "Tocagen Inc."
    changed = with_lead_sponsor("Example Oncology Institute", tmp_path)
    report = build(settings, [changed], update=True, build_time=BUILD_TIME)
    after = described()
    assert report.entities_removed == 1
    assert after == (before - {f"{base}/organization/tocagen-inc"}) | {f"{base}/organization/example-oncology-institute"}


def test_unwritable_store_folder_is_a_clear_error(tmp_path, capsys):
    """`kg build` into a folder it cannot write says so and exits 2."""
    from kg.cli import main

    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "store.d").write_text("a file where the store folder should be")
    assert main(["build", "--store", str(locked / "store"), "--quiet"]) == 2
    assert "store folder" in capsys.readouterr().err


def test_kg_build_then_export_in_process(tmp_path, capsys):
    """`kg build` prints a summary with links per vocabulary kind; `kg export --format nt` writes parseable N-Triples."""
    from kg.cli import main

    store = tmp_path / "store"
    assert main(["build", "--store", str(store), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "trials: 5 loaded, 0 records failed" in out and "links: condition" in out
    assert main(["export", "--store", str(store), "--format", "nt", "--out", str(tmp_path / "all.nt")]) == 0
    graph = rdflib.Graph().parse(tmp_path / "all.nt", format="nt")
    trial = rdflib.URIRef("http://localhost:8000/trial/NCT07581821")
    assert (trial, rdflib.RDF.type, rdflib.URIRef("http://localhost:8000/ontology/Trial")) in graph


def test_sssom_export_parses(tmp_path):
    """The SSSOM TSV has its YAML metadata block, the required columns and evidence on every row."""
    import csv

    import yaml

    from kg.cli import main

    path = tmp_path / "mappings.sssom.tsv"
    assert main(["export", "--format", "sssom", "--out", str(path)]) == 0
    lines = path.read_text(encoding="utf-8").splitlines()
    meta = yaml.safe_load("\n".join(l[2:] for l in lines if l.startswith("# ")))
    assert meta["license"] and meta["mapping_set_id"] and "ctkg.drug" in meta["curie_map"]
    rows = list(csv.DictReader([l for l in lines if not l.startswith("#")], delimiter="\t"))
    assert rows and {"subject_id", "predicate_id", "object_id", "mapping_justification"} <= set(rows[0])
    for row in rows:
        assert row["object_id"].split(":")[0] in meta["curie_map"]
        assert row["comment"].startswith("evidence: ")
    assert any(r["subject_id"] == "ctkg.drug:cisplatin" and r["object_id"] == "chebi:27899" for r in rows)
