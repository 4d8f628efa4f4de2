"""`kg validate` on the samples and on samples with seeded errors or unreadable records; `kg build` keeps violators
out; every report format gives values as RDF terms and lists the records that could not be read."""

from __future__ import annotations

import json
import shutil

import httpx
import rdflib
from conftest import DATA, SAMPLE_FILES, serving
from rdflib import BNode, Literal, URIRef

from kg.build import build
from kg.cli import main
from kg.concepts import load_concepts
from kg.mapping import Mapper
from kg.settings import Settings
from kg.sources import read_records
from kg.store import open_read_only
from kg.validate import ValidationReport, render, validate_graph, validate_trials

BASE = "http://localhost:8000"
SH = rdflib.Namespace("http://www.w3.org/ns/shacl#")
CTKG = rdflib.Namespace(BASE + "/ontology/")
XSD = "http://www.w3.org/2001/XMLSchema#"


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


def test_validate_the_store_sees_the_shared_organizations_and_places(tmp_path):
    """Organizations and places no concept table names are described in the entities graph, not in the
    trial graphs: validating the built store finds the same results as validating the records."""
    from pathlib import Path

    from pyoxigraph import NamedNode

    from kg.validate import validate_paths, validate_store

    real = Path(__file__).resolve().parent / "fixtures" / "real"
    settings = Settings(store_dir=tmp_path / "store", write_dumps=False)
    build(settings, [DATA, real], allow_invalid=True)
    store = open_read_only(settings.store_dir)
    assert next(iter(store.quads_for_pattern(None, None, None, NamedNode(f"{settings.base_iri}/graph/entities"))), None)

    def results(report):
        return sorted((r.focus, r.path or "", r.shape or "", r.message) for r in report.rows)

    assert results(validate_store(settings)) == results(validate_paths(settings, [DATA, real]))


# ---------------------------------------------------------------------------- values as RDF terms

def _broken(nct_id: str, *edits: tuple[str, str]) -> str:
    """A shipped page with each (old, new) edit made; an edit that finds nothing fails the test."""
    page = (DATA / SAMPLE_FILES[nct_id]).read_text(encoding="utf-8")
    for old, new in edits:
        assert old in page, f"{SAMPLE_FILES[nct_id]} no longer has {old!r}"
        page = page.replace(old, new)
    return page


def _aged(tmp_path):
    """Sample 000 with the three seeded errors and a maximum age (10 years) below its minimum (18 years)."""
    path = tmp_path / "aged.txt"
    page = _seeded(tmp_path).read_text(encoding="utf-8")
    path.write_text(page.replace("Maximum Eligible Age\n\n80 Years", "Maximum Eligible Age\n\n10 Years"), encoding="utf-8")
    return path


# Each violation of _aged by its path, with the value as the mapper writes it (kg/mapping.py): the enrollment an
# xsd:integer, the completion date an xsd:date, the status a plain string, the age order the maximum age's node.
AGED_VALUES = {
    CTKG.enrollment: Literal("-5", datatype=XSD + "integer"),
    CTKG.completionDate: Literal("2022-12-01", datatype=XSD + "date"),
    CTKG.overallStatus: Literal("SLEEPING"),
    CTKG.maximumAge: URIRef(f"{BASE}/trial/NCT06281886/eligibility/maximum-age"),
}


def _values_by_path(graph: rdflib.Graph) -> dict:
    return {graph.value(r, SH.resultPath): graph.value(r, SH.value)
            for r in graph.subjects(SH.resultSeverity, SH.Violation) if graph.value(r, SH.resultPath) is not None}


def test_rdf_reports_write_each_value_as_the_term_it_is_in_the_graph(tmp_path):
    """Turtle and JSON-LD reports give sh:value as the graph has it: an IRI, an xsd:date, an xsd:integer, a string."""
    aged = str(_aged(tmp_path))
    assert main(["validate", aged, "--format", "ttl", "--out", str(tmp_path / "r.ttl")]) == 1
    assert _values_by_path(rdflib.Graph().parse(tmp_path / "r.ttl", format="turtle")) == AGED_VALUES
    assert main(["validate", aged, "--format", "jsonld", "--out", str(tmp_path / "r.jsonld")]) == 1
    assert _values_by_path(rdflib.Graph().parse(tmp_path / "r.jsonld", format="json-ld")) == AGED_VALUES


def test_both_engines_keep_the_value_as_its_term(tmp_path):
    """The compiled engine and pyshacl (core constraints) give each violation's value as the same N-Triples term."""
    settings = Settings(store_dir=tmp_path / "store")
    mapper = Mapper(settings.base_iri, load_concepts(settings.ontology_dir / "concepts"))
    pairs = [(trial, mapper.map_trial(trial)) for trial in read_records([_aged(tmp_path)])]
    expected = {str(path): value.n3() for path, value in AGED_VALUES.items()}
    for engine in ("sparql", "pyshacl"):
        report = validate_trials(pairs, mapper, settings, engine=engine, workers=1)
        found = {r.path: r.value_term for r in report.rows if r.severity == "Violation"}
        assert found == expected, engine


# A hand-written trial whose status carries a language tag and whose enrollment is a blank node: neither
# is allowed (shapes/trial.ttl: sh:in of plain strings; sh:datatype xsd:integer).
TAGGED_TRIAL = f"""
@prefix ctkg: <{BASE}/ontology/> .
<{BASE}/trial/NCT06281886> a ctkg:Trial ; ctkg:overallStatus "RECRUITING"@en ; ctkg:enrollment [ ] .
"""


def test_rdf_report_keeps_language_tags_and_blank_nodes(settings):
    """A language-tagged status and a blank-node enrollment come back in the Turtle report as such."""
    graph = rdflib.Graph().parse(data=TAGGED_TRIAL, format="turtle")
    report = ValidationReport(rows=validate_graph(graph, settings))
    result = rdflib.Graph().parse(data=render(report, "ttl", settings.base_iri), format="turtle")
    values = {}
    for r in result.subjects(SH.resultSeverity, SH.Violation):
        values.setdefault(result.value(r, SH.resultPath), set()).add(result.value(r, SH.value))
    assert values[CTKG.overallStatus] == {Literal("RECRUITING", lang="en")}
    assert values[CTKG.enrollment] and all(isinstance(v, BNode) for v in values[CTKG.enrollment])


def test_text_report_shows_each_offending_value(tmp_path, capsys):
    """The text report gives each result's value (as the graph has it) on the line after its message."""
    assert main(["validate", str(_aged(tmp_path))]) == 1
    lines = capsys.readouterr().out.splitlines()

    def value_after(message: str) -> str:
        at = next(i for i, line in enumerate(lines) if message in line)
        return lines[at + 1].strip()

    assert value_after("Enrollment must be one whole number greater than 0.") == 'value "-5"^^xsd:integer'
    assert value_after("Dates out of order") == 'value "2022-12-01"^^xsd:date'
    assert value_after("The minimum age (18 years) is above the maximum age (10 years).") == \
        f"value <{BASE}/trial/NCT06281886/eligibility/maximum-age>"
    status = next(line for line in lines if "overallStatus" in line)
    assert value_after(status) == 'value "SLEEPING"'


# ---------------------------------------------------------------------------- records that cannot be read

# Records broken so that they cannot be read at all, by file name: (the page, the field the reader names,
# words of the problem). The NCT id page names no field of its own: the problem says nct_id.
UNREADABLE = {
    "bad-nct-id.txt": (lambda: _broken("NCT05173246", ("NCT ID: NCT05173246", "NCT ID: NCT123")), None, "NCT123"),
    "bad-phase.txt": (lambda: _broken("NCT06281886", ("Clinical Phase\n\nPHASE2", "Clinical Phase\n\nPHASE9")),
                      "Basic Information › Clinical Phase", "PHASE9"),
    "minutes.txt": (lambda: "Minutes of the steering committee\n\nThe committee met on Tuesday.\n", None, "unknown layout"),
}


def _folder_with_unreadable(tmp_path):
    """One readable record that conforms (sample 002) and the three unreadable ones."""
    folder = tmp_path / "records"
    folder.mkdir()
    shutil.copy(DATA / SAMPLE_FILES["NCT07248696"], folder)
    for name, (page, _, _) in UNREADABLE.items():
        (folder / name).write_text(page(), encoding="utf-8")
    return folder


def _check_rdf_failures(graph: rdflib.Graph) -> None:
    """Each unreadable record is an sh:Violation result (typed ctkg:RecordFailure) with its file, field, problem."""
    assert (None, SH.conforms, Literal(False)) in graph
    found = {}
    for result in graph.subjects(rdflib.RDF.type, CTKG.RecordFailure):
        assert (result, rdflib.RDF.type, SH.ValidationResult) in graph
        assert graph.value(result, SH.resultSeverity) == SH.Violation
        assert graph.value(result, SH.focusNode) is not None
        name = str(graph.value(result, CTKG.sourceFile)).rsplit("/", 1)[-1]
        location = graph.value(result, CTKG.sourceLocation)
        found[name] = (None if location is None else str(location), str(graph.value(result, SH.resultMessage)))
    assert found.keys() == UNREADABLE.keys()
    for name, (_, field, words) in UNREADABLE.items():
        assert found[name][0] == field and words in found[name][1], name


def _check_html_failures(page: str) -> None:
    section = page.split("Records that could not be read", 1)[1].split("</table>", 1)[0]
    for name, (_, field, words) in UNREADABLE.items():
        row = next(r for r in section.split("<tr>") if name in r)
        assert words in row and (field is None or field in row), row
    assert "3 records could not be read" in page and "Does not conform" in page


def test_unreadable_records_are_in_every_report(tmp_path, capsys):
    """Records that cannot be read are in the text, JSON, HTML, Turtle and JSON-LD reports, with file, field and
    problem, and counted; the readable record is still validated, and the input does not conform (exit 1)."""
    folder = str(_folder_with_unreadable(tmp_path))

    assert main(["validate", folder, "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["trials"] == ["NCT07248696"] and report["conforms"] is False
    assert report["counts"]["unreadableRecords"] == 3
    # Each is a violation, as in the RDF reports (the readable record, page 002, has none of its own).
    assert report["counts"]["bySeverity"].get("Violation") == 3
    failures = {f["source_file"].rsplit("/", 1)[-1]: f for f in report["failures"]}
    assert failures.keys() == UNREADABLE.keys()
    for name, (_, field, words) in UNREADABLE.items():
        assert failures[name]["field"] == field and words in failures[name]["message"]

    assert main(["validate", folder]) == 1
    text = capsys.readouterr().out
    listed = text.split("Records that could not be read (3):\n", 1)[1].split("\n\n", 1)[0].splitlines()
    for name, (_, field, words) in UNREADABLE.items():
        line = next(line for line in listed if name in line)
        assert words in line and (field is None or f"[{field}]" in line), line
    assert "1 trials; 3 records could not be read; 3 violations" in text and "does not conform" in text

    main(["validate", folder, "--format", "html", "--out", str(tmp_path / "r.html")])
    _check_html_failures((tmp_path / "r.html").read_text(encoding="utf-8"))
    main(["validate", folder, "--format", "ttl", "--out", str(tmp_path / "r.ttl")])
    _check_rdf_failures(rdflib.Graph().parse(tmp_path / "r.ttl", format="turtle"))
    main(["validate", folder, "--format", "jsonld", "--out", str(tmp_path / "r.jsonld")])
    _check_rdf_failures(rdflib.Graph().parse(tmp_path / "r.jsonld", format="json-ld"))


def test_build_reports_served_at_validate_report_list_unreadable_records(tmp_path):
    """`kg build` loads the readable record, and its reports, as `kg serve` gives them at /validate/report
    (JSON, HTML, Turtle), list each record that could not be read."""
    settings = Settings(store_dir=tmp_path / "store")
    built = build(settings, [_folder_with_unreadable(tmp_path)], allow_invalid=False)
    assert built.trials == ["NCT07248696"] and len(built.failures) == 3
    with serving(settings.store_dir) as url:
        def get(accept: str) -> str:
            response = httpx.get(url + "/validate/report", headers={"Accept": accept}, timeout=30)
            assert response.status_code == 200
            return response.text

        report = json.loads(get("application/json"))
        assert {f["source_file"].rsplit("/", 1)[-1] for f in report["failures"]} == UNREADABLE.keys()
        assert report["counts"]["unreadableRecords"] == 3 and report["conforms"] is False
        _check_html_failures(get("text/html"))
        _check_rdf_failures(rdflib.Graph().parse(data=get("text/turtle"), format="turtle"))
