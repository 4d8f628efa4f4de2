"""`kg validate` on the samples and on a sample with seeded errors; `kg build` keeps violators out."""

from __future__ import annotations

import json
import shutil

import rdflib

from conftest import DATA, SAMPLE_FILES
from kg.build import build
from kg.cli import main
from kg.settings import Settings
from kg.store import open_read_only


def _seeded(tmp_path):
    """A copy of sample 000 with three errors: negative enrollment, completion before start, unknown status."""
    page = (DATA / SAMPLE_FILES["NCT06281886"]).read_text(encoding="utf-8")
    page = page.replace("170 participants", "-5 participants")
    page = page.replace("Study Completion Date\n\n2026-12-01", "Study Completion Date\n\n2022-12-01")
    page = page.replace("Recruitment Status\n\nACTIVE_NOT_RECRUITING", "Recruitment Status\n\nSLEEPING")
    path = tmp_path / "seeded.txt"
    path.write_text(page, encoding="utf-8")
    return path


def test_samples_conform_with_their_real_gaps_as_warnings(capsys):
    """`kg validate data/` exits 0; the Veeva and TrialFinderData pages lack start and completion dates (warnings)."""
    assert main(["validate", str(DATA), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["conforms"] is True
    assert report["counts"]["bySeverity"].get("Violation", 0) == 0
    warnings = {(r["trial"], r["path"].rsplit("/", 1)[-1]) for r in report["results"] if r["severity"] == "Warning"}
    assert warnings == {("NCT07325539", "startDate"), ("NCT07325539", "completionDate"),
                        ("NCT07581821", "startDate"), ("NCT07581821", "completionDate")}


def test_seeded_errors_give_exactly_those_violations_with_their_place(tmp_path, capsys):
    """Three seeded errors: exit 1, exactly three violations, each naming the trial, field and page section."""
    assert main(["validate", str(_seeded(tmp_path)), "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    violations = [r for r in report["results"] if r["severity"] == "Violation"]
    found = {(r["trial"], r["shape"].rsplit("/", 1)[-1], r["path"].rsplit("/", 1)[-1]) for r in violations}
    assert found == {("NCT06281886", "Trial-enrollment", "enrollment"),
                     ("NCT06281886", "Trial-dateOrder", "completionDate"),
                     ("NCT06281886", "Trial-status", "overallStatus")}
    for row in violations:
        assert row["source_file"].endswith("seeded.txt")
        assert "Basic Information" in row["source_location"]
        assert row["message"]
    status = next(r for r in violations if r["path"].endswith("overallStatus"))
    assert status["value"] == "SLEEPING" and "/protocolSection/statusModule/overallStatus" in status["source_location"]


def test_report_formats_parse(tmp_path, capsys):
    """Turtle and JSON-LD reports are sh:ValidationReports; the HTML groups results by trial; text has totals."""
    seeded = str(_seeded(tmp_path))
    main(["validate", seeded, "--format", "ttl", "--out", str(tmp_path / "r.ttl")])
    graph = rdflib.Graph().parse(tmp_path / "r.ttl", format="turtle")
    SH = rdflib.Namespace("http://www.w3.org/ns/shacl#")
    assert (None, rdflib.RDF.type, SH.ValidationReport) in graph
    assert len(list(graph.subjects(SH.resultSeverity, SH.Violation))) == 3
    main(["validate", seeded, "--format", "jsonld", "--out", str(tmp_path / "r.jsonld")])
    assert len(rdflib.Graph().parse(tmp_path / "r.jsonld", format="json-ld")) == len(graph)
    main(["validate", seeded, "--format", "html", "--out", str(tmp_path / "r.html")])
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<h2 id='NCT06281886'>" in page and "Enrollment must be one whole number greater than 0." in page
    capsys.readouterr()
    main(["validate", seeded])
    assert "3 violations" in capsys.readouterr().out


def test_build_keeps_a_record_with_violations_out_unless_allowed(tmp_path):
    """`kg build` leaves the violating record out of the served graph; --allow-invalid loads it."""
    folder = tmp_path / "records"
    folder.mkdir()
    shutil.copy(DATA / SAMPLE_FILES["NCT07248696"], folder)
    _seeded(folder)
    settings = Settings(store_dir=tmp_path / "store")
    report = build(settings, [folder])
    assert report.rejected == ["NCT06281886"] and report.trials == ["NCT07248696"]
    store = open_read_only(settings.store_dir)
    ask = 'ASK { <http://localhost:8000/trial/NCT06281886> ?p ?o }'
    assert not store.query(ask, use_default_graph_as_union=True)
    assert (tmp_path / "reports" / "last-build.html").exists()
    allowed = build(settings, [folder], allow_invalid=True)
    assert sorted(allowed.trials) == ["NCT06281886", "NCT07248696"]


def test_validate_the_built_store(built, capsys):
    """`kg validate --store` validates every trial graph in the store."""
    settings, _ = built
    assert main(["validate", "--store", str(settings.store_dir), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert sorted(report["trials"]) == sorted(SAMPLE_FILES)
