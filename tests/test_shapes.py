"""SHACL shapes tested both ways: valid fixtures give no result, each invalid fixture breaks the one
constraint its header names (focus node, path, source shape, severity)."""

from __future__ import annotations

from pathlib import Path

import pytest
import rdflib
import yaml
from pyshacl import validate as shacl_validate
from rdflib.namespace import RDF, SH

from kg.settings import Settings
from kg.validate import ontology_graph, shapes_graph

HERE = Path(__file__).resolve().parent / "shapes"
VALID = sorted((HERE / "valid").glob("*.ttl"))
INVALID = sorted((HERE / "invalid").glob("*.ttl"))
SETTINGS = Settings()
BASE = SETTINGS.base_iri
PREFIXES = {"ctkg": f"{BASE}/ontology/", "skos": str(rdflib.SKOS), "schema": "http://schema.org/",
            "rdfs": str(rdflib.RDFS), "dcterms": "http://purl.org/dc/terms/"}


def _results(path: Path, level: str):
    data = rdflib.Graph().parse(path, format="turtle", publicID=BASE + "/")
    shapes = shapes_graph(SETTINGS.shapes_dir, BASE, level)
    _, results, _ = shacl_validate(data, shacl_graph=shapes, ont_graph=ontology_graph(SETTINGS.ontology_dir, BASE),
                                   inference="none", allow_warnings=True, allow_infos=True)
    return results, shapes


def _expand(curie: str | None):
    if curie in (None, "null"):
        return None
    prefix, local = curie.split(":", 1)
    return rdflib.URIRef(PREFIXES[prefix] + local)


def _header(path: Path) -> dict:
    line = next(l for l in path.read_text(encoding="utf-8").splitlines() if l.startswith("#+ "))
    return yaml.safe_load(line[3:])


def test_fixture_folders_are_not_empty():
    """Guard: the valid and invalid fixture folders hold fixtures, so the tests below test something."""
    assert len(VALID) >= 5 and len(INVALID) >= 13


def test_every_shape_file_has_an_invalid_fixture():
    """Each focal class's shapes are broken by at least one invalid fixture."""
    broken = {_header(p)["shape"].split("-")[0].replace("Shape", "") for p in INVALID}
    files = {p.stem for p in SETTINGS.shapes_dir.glob("*.ttl")}
    expected = {"trial": "Trial", "arm": "Arm", "intervention": "Intervention", "drug": "Drug", "drug-class": "DrugClass",
                "condition": "Condition", "organization": "Organization", "site": "Site", "place": "Place",
                "person": "Person", "eligibility": "Eligibility", "reference": "Reference", "provenance": "RecordProvenance"}
    assert files == set(expected)
    assert set(expected.values()) <= broken


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_fixture_gives_no_result(path):
    """A valid fixture conforms with no violation, warning or info."""
    level = "ontology" if path.stem == "drug-class" else "data"
    results, _ = _results(path, level)
    messages = [str(m) for m in results.objects(None, SH.resultMessage)]
    assert messages == []


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_fixture_breaks_its_constraint(path):
    """The invalid fixture yields a result at its focus node and path, from its shape, with its severity."""
    header = _header(path)
    results, shapes = _results(path, header.get("level", "data"))
    focus = rdflib.URIRef(f"{BASE}/{header['focus']}")
    path_iri = _expand(header["path"])
    severity = SH[header["severity"]]
    matching = []
    for result in results.subjects(RDF.type, SH.ValidationResult):
        if results.value(result, SH.focusNode) != focus or results.value(result, SH.resultSeverity) != severity:
            continue
        if path_iri is not None and results.value(result, SH.resultPath) != path_iri:
            continue
        source = results.value(result, SH.sourceConstraint) or results.value(result, SH.sourceShape)
        if isinstance(source, rdflib.BNode):  # an anonymous property shape: name it by its node shape
            source = shapes.value(predicate=SH.property, object=source)
        if str(source).endswith("/" + header["shape"]):
            matching.append(result)
            assert str(results.value(result, SH.resultMessage))  # every result says what is wrong
    assert matching, f"{path.name}: no {header['severity']} from {header['shape']} at {focus} {path_iri}"


def test_every_constraint_has_a_message_severity_name_and_description():
    """All property shapes and SPARQL constraints carry sh:message, sh:severity, sh:name, sh:description."""
    shapes = shapes_graph(SETTINGS.shapes_dir, BASE, "all")
    constraints = set(shapes.objects(None, SH.property)) | set(shapes.objects(None, SH.sparql))
    assert len(constraints) > 60
    for node in constraints:
        for prop in (SH.message, SH.severity, SH.name, SH.description):
            assert shapes.value(node, prop) is not None, (node, prop)


def test_shapes_conform_to_shacl_for_shacl():
    """The shapes graph passes pyshacl's SHACL-for-SHACL meta-shape check."""
    shapes = shapes_graph(SETTINGS.shapes_dir, BASE, "all")
    conforms, _, text = shacl_validate(rdflib.Graph(), shacl_graph=shapes, meta_shacl=True, inference="none")
    assert conforms, text
