"""The SHACL core constraints compiled to SPARQL (kg.shacl_sparql) answer exactly as pyshacl does:
on the shipped samples, on the curation fixture, and on hand-broken trial graphs that make every
constraint in shapes/ fire; anything the compiler does not translate is refused when compiling."""

from __future__ import annotations

from pathlib import Path

import pyoxigraph
import pytest
import rdflib
from pyshacl import validate as shacl_validate

from kg.concepts import load_concepts
from kg.mapping import Mapper
from kg.settings import Settings
from kg.shacl_sparql import ShapeCompileError, compile_shapes
from kg.sources import read_records
from kg.validate import (_ontology_triples, _rows, _run_compiled, compiled_constraints, concepts_by_subject,
                         linked_concepts, shapes_graph, sparql_rules, validate_chunk, validate_graph,
                         validate_ontology, validate_trials)

SETTINGS = Settings()
BASE = SETTINGS.base_iri
CURATION = Path(__file__).resolve().parent / "fixtures" / "curation" / "NCT09900001.json"

XSD = "http://www.w3.org/2001/XMLSchema#"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
RDFS_LABEL = "http://www.w3.org/2000/01/rdf-schema#label"
SKOS = "http://www.w3.org/2004/02/skos/core#"
SCHEMA = "http://schema.org/"
DCTERMS = "http://purl.org/dc/terms/"


def ck(local: str) -> str:
    return f"{BASE}/ontology/{local}"


def node(path: str) -> str:
    return f"{BASE}/{path}"


def key(row) -> tuple:
    """What both engines must agree on for each result."""
    return (row.focus, row.path, row.constraint, row.severity, row.value, row.message)


@pytest.fixture(scope="module")
def mapper():
    return Mapper(BASE, load_concepts(SETTINGS.ontology_dir / "concepts"))


@pytest.fixture(scope="module")
def pairs(mapper):
    """The five samples and the curation fixture, read and mapped."""
    records = list(read_records([SETTINGS.data_dir, CURATION]))
    assert len(records) == 6 and all(hasattr(r, "nct_id") for r in records), records
    return [(record, mapper.map_trial(record)) for record in records]


# ---------------------------------------------------------------------------- the shipped records


def test_samples_and_curation_fixture_agree_with_pyshacl(pairs, mapper):
    """validate_trials gives the same results with the compiled engine as with pyshacl, trial by trial
    and located in the same place of the source record."""
    compiled = validate_trials(pairs, mapper, SETTINGS)
    reference = validate_trials(pairs, mapper, SETTINGS, engine="pyshacl", workers=1)
    assert compiled.trials == reference.trials
    assert {key(r) + (r.trial, r.source_location) for r in compiled.rows} == \
        {key(r) + (r.trial, r.source_location) for r in reference.rows}


def test_curation_fixture_results_are_those_its_record_calls_for(pairs, mapper):
    """NCT09900001 names a drug (XQ-4417) and a condition (Glorbic Syndrome) no concept table holds:
    a warning for each, at the intervention and at the condition mention, and no violation."""
    report = validate_chunk([p for p in pairs if p[0].nct_id == "NCT09900001"], mapper.concept_quads(), SETTINGS)
    found = {(r.focus, r.path, r.constraint, r.severity, r.value) for r in report.rows}
    assert (node("trial/NCT09900001/intervention/2"), ck("involvesDrug"), "SPARQLConstraintComponent",
            "Warning", "XQ-4417") in found
    assert (node("trial/NCT09900001/condition/2"), ck("resolvesTo"), "MinCountConstraintComponent",
            "Warning", None) in found
    assert report.conforms
    assert {r.trial for r in report.rows} == {"NCT09900001"}


def test_validate_chunk_matches_validate_trials(pairs, mapper):
    """One chunk of all six records gives what validate_trials gives (which merges chunks)."""
    chunk = validate_chunk(pairs, list(mapper.concept_quads()), SETTINGS)
    whole = validate_trials(pairs, mapper, SETTINGS)
    assert sorted(chunk.trials) == sorted(whole.trials)
    assert [key(r) for r in chunk.rows] == [key(r) for r in whole.rows]


def test_drug_classes_of_the_ontology_agree_with_pyshacl():
    """The ontology-level shapes (drug classes) give the same results with either engine."""
    assert {key(r) for r in validate_ontology(SETTINGS)} == {key(r) for r in validate_ontology(SETTINGS, engine="pyshacl")}


# ---------------------------------------------------------------------------- hand-broken graphs

T = "trial/NCT06281886"     # a ctgov-page sample with arms, drug mentions, sites, references, age limits
T2 = "trial/NCT05173246"    # a second sample, broken where T's values were already removed


def iri(path_or_iri: str):
    return pyoxigraph.NamedNode(path_or_iri if "://" in path_or_iri else node(path_or_iri))


def lit(text: str, datatype: str | None = None, language: str | None = None):
    if language:
        return pyoxigraph.Literal(text, language=language)
    return pyoxigraph.Literal(text, datatype=pyoxigraph.NamedNode(XSD + datatype) if datatype else None)


# Each breakage: what it breaks, the edits ("-", node, predicate) removes every value, ("+", node,
# predicate, object) adds one) and the results it must give: (focus, path, constraint component).
# Expected values come from the shapes in shapes/ read against the edit, not from running the code.
BREAKAGES = [
    ("trial without NCT id, title, status, dates, sponsor or condition",
     [("-", T, ck("nctId")), ("-", T, SCHEMA + "name"), ("-", T, ck("overallStatus")), ("-", T, ck("startDate")),
      ("-", T, ck("completionDate")), ("-", T, ck("leadSponsor")), ("-", T, ck("hasConditionMention"))],
     [(T, ck("nctId"), "MinCount"), (T, SCHEMA + "name", "MinCount"), (T, ck("overallStatus"), "MinCount"),
      (T, ck("startDate"), "MinCount"), (T, ck("completionDate"), "MinCount"), (T, ck("leadSponsor"), "MinCount"),
      (T, ck("hasConditionMention"), "MinCount")]),
    ("a second NCT id, language-tagged and malformed",
     [("+", T2, ck("nctId"), lit("nct123", language="en"))],
     [(T2, ck("nctId"), "MaxCount"), (T2, ck("nctId"), "Datatype"), (T2, ck("nctId"), "Pattern")]),
    ("enumerations with a value outside the v2 lists, and two values where one is allowed",
     [("+", T2, ck("overallStatus"), lit("DONE")), ("+", T2, ck("studyType"), lit("OBSERVATIONAL_X")),
      ("+", T2, ck("studyType"), lit("EXPANDED_ACCESS")), ("+", T2, ck("enrollmentType"), lit("GUESSED")),
      ("+", T2, ck("enrollmentType"), lit("ACTUAL")), ("+", T2, ck("allocation"), lit("COIN_TOSS")),
      ("+", T2, ck("allocation"), lit("RANDOMIZED")), ("+", T2, ck("interventionModel"), lit("ZIGZAG")),
      ("+", T2, ck("primaryPurpose"), lit("FUN")), ("+", T2, ck("masking"), lit("BLINDFOLD")),
      ("+", T2, ck("whoMasked"), lit("NOBODY"))],
     [(T2, ck("overallStatus"), "In"), (T2, ck("overallStatus"), "MaxCount"), (T2, ck("studyType"), "In"),
      (T2, ck("studyType"), "MaxCount"), (T2, ck("enrollmentType"), "In"), (T2, ck("enrollmentType"), "MaxCount"),
      (T2, ck("allocation"), "In"), (T2, ck("allocation"), "MaxCount"), (T2, ck("interventionModel"), "In"),
      (T2, ck("interventionModel"), "MaxCount"), (T2, ck("primaryPurpose"), "In"),
      (T2, ck("primaryPurpose"), "MaxCount"), (T2, ck("masking"), "In"), (T2, ck("masking"), "MaxCount"),
      (T2, ck("whoMasked"), "In")]),
    ("three phases, one unknown",
     [("+", T2, ck("phase"), lit("PHASE9")), ("+", T2, ck("phase"), lit("EARLY_PHASE1")),
      ("+", T2, ck("phase"), lit("PHASE4"))],
     [(T2, ck("phase"), "In"), (T2, ck("phase"), "MaxCount")]),
    ("enrollment: an ill-typed integer and a negative one",
     [("+", T2, ck("enrollment"), lit("many", "integer")), ("+", T2, ck("enrollment"), lit("-3", "integer"))],
     [(T2, ck("enrollment"), "Datatype"), (T2, ck("enrollment"), "MinExclusive"), (T2, ck("enrollment"), "MaxCount")]),
    # (A gYearMonth with month 13 is not here: Oxigraph rejects it, as XSD does, while rdflib has no
    # parser for gYearMonth and pyshacl lets any text pass.)
    ("dates that are neither xsd:date nor xsd:gYearMonth (a dateTime, day 30 of February, a year, plain text)",
     [("+", T2, ck("startDate"), lit("2024-05-01T10:00:00", "dateTime")), ("+", T2, ck("startDate"), lit("soon")),
      ("+", T2, ck("primaryCompletionDate"), lit("2025-02-30", "date")),
      ("+", T2, ck("primaryCompletionDate"), lit("2025", "gYear")),
      ("+", T2, ck("completionDate"), pyoxigraph.NamedNode("https://example.org/some-day"))],
     [(T2, ck("startDate"), "Or"), (T2, ck("startDate"), "MaxCount"), (T2, ck("primaryCompletionDate"), "Or"),
      (T2, ck("primaryCompletionDate"), "MaxCount"), (T2, ck("completionDate"), "Or"),
      (T2, ck("completionDate"), "MaxCount"),
      # "soon" sorts after any ISO date: the start is after the completion
      (T2, ck("completionDate"), "SPARQL")]),
    ("a lead sponsor that is a place, and a second one that is text",
     [("+", T2, ck("leadSponsor"), iri("place/guangzhou")), ("+", T2, ck("leadSponsor"), lit("Someone"))],
     [(T2, ck("leadSponsor"), "Or"), (T2, ck("leadSponsor"), "MaxCount")]),
    ("trial links to nodes of the wrong class",
     [("+", T2, ck("hasConditionMention"), iri(f"{T}/arm/1")), ("+", T2, ck("studiesCondition"), iri("drug/toripalimab")),
      ("+", T2, ck("hasArm"), iri(f"{T}/site/1")), ("+", T2, ck("hasIntervention"), iri(f"{T}/site/1")),
      ("+", T2, ck("hasSite"), iri(f"{T}/arm/1")), ("+", T2, ck("hasReference"), iri(f"{T}/arm/1")),
      ("+", T2, ck("hasEligibility"), iri(f"{T}/arm/1"))],
     [(T2, ck("hasConditionMention"), "Class"), (T2, ck("studiesCondition"), "Class"), (T2, ck("hasArm"), "Class"),
      (T2, ck("hasIntervention"), "Class"), (T2, ck("hasSite"), "Class"), (T2, ck("hasReference"), "Class"),
      (T2, ck("hasEligibility"), "Class"), (T2, ck("hasEligibility"), "MaxCount")]),
    ("a RECRUITING trial last updated in 2020",
     [("-", T2, ck("lastUpdatePostedDate")), ("+", T2, ck("lastUpdatePostedDate"), lit("2020-01-15", "date"))],
     [(T2, ck("lastUpdatePostedDate"), "SPARQL")]),
    ("arms: no label, two labels, an unknown type, a site as intervention, an intervention name not listed",
     [("-", f"{T}/arm/1", RDFS_LABEL), ("+", f"{T}/arm/2", RDFS_LABEL, lit("Second label")),
      ("+", f"{T}/arm/2", ck("armType"), lit("BOGUS_ARM")), ("+", f"{T}/arm/2", ck("hasIntervention"), iri(f"{T}/site/1")),
      ("+", f"{T}/arm/2", ck("interventionNameText"), lit("Drug: Nothing"))],
     [(f"{T}/arm/1", RDFS_LABEL, "MinCount"), (f"{T}/arm/2", RDFS_LABEL, "MaxCount"),
      (f"{T}/arm/2", ck("armType"), "In"), (f"{T}/arm/2", ck("armType"), "MaxCount"),
      (f"{T}/arm/2", ck("hasIntervention"), "Class"), (f"{T}/arm/2", ck("interventionNameText"), "MaxCount")]),
    ("interventions: no name, two names, an unknown type, a place as drug, a DRUG intervention with no drug",
     [("-", f"{T}/intervention/3", SCHEMA + "name"), ("+", f"{T}/intervention/4", SCHEMA + "name", lit("Other name")),
      ("+", f"{T}/intervention/2", ck("interventionType"), lit("PILL")),
      ("+", f"{T}/intervention/1", ck("involvesDrug"), iri("place/china")),
      ("-", f"{T}/intervention/5", ck("involvesDrug"))],
     [(f"{T}/intervention/3", SCHEMA + "name", "MinCount"), (f"{T}/intervention/4", SCHEMA + "name", "MaxCount"),
      (f"{T}/intervention/2", ck("interventionType"), "In"), (f"{T}/intervention/2", ck("interventionType"), "MaxCount"),
      (f"{T}/intervention/1", ck("involvesDrug"), "Class"), (f"{T}/intervention/5", ck("involvesDrug"), "SPARQL")]),
    ("drug mentions: one stripped, one with confidences out of range or not decimal, one resolving twice",
     [("-", f"{T}/intervention/1/drug/1", ck("rawText")), ("-", f"{T}/intervention/1/drug/1", ck("matchConfidence")),
      ("-", f"{T}/intervention/1/drug/1", ck("matchMethod")), ("-", f"{T}/intervention/1/drug/1", ck("resolvesTo")),
      ("+", f"{T}/intervention/2/drug/1", ck("matchConfidence"), lit("1.5", "decimal")),
      ("+", f"{T}/intervention/2/drug/1", ck("matchConfidence"), lit("-0.5", "decimal")),
      ("+", f"{T}/intervention/2/drug/1", ck("matchConfidence"), lit("high")),
      ("+", f"{T}/intervention/2/drug/1", ck("matchMethod"), lit("guess")),
      ("+", f"{T}/intervention/2/drug/2", ck("resolvesTo"), iri("place/china"))],
     [(f"{T}/intervention/1/drug/1", ck("rawText"), "MinCount"),
      (f"{T}/intervention/1/drug/1", ck("matchConfidence"), "MinCount"),
      (f"{T}/intervention/1/drug/1", ck("matchMethod"), "MinCount"),
      (f"{T}/intervention/1/drug/1", ck("resolvesTo"), "MinCount"),
      (f"{T}/intervention/2/drug/1", ck("matchConfidence"), "Datatype"),
      (f"{T}/intervention/2/drug/1", ck("matchConfidence"), "MinInclusive"),
      (f"{T}/intervention/2/drug/1", ck("matchConfidence"), "MaxInclusive"),
      (f"{T}/intervention/2/drug/1", ck("matchMethod"), "In"),
      (f"{T}/intervention/2/drug/2", ck("resolvesTo"), "Class"),
      (f"{T}/intervention/2/drug/2", ck("resolvesTo"), "MaxCount")]),
    ("sites: no name or place; two names, statuses and organizations of the wrong class; coordinates off the globe",
     [("-", f"{T}/site/1", SCHEMA + "name"), ("-", f"{T}/site/1", ck("inPlace")),
      ("+", f"{T2}/site/1", SCHEMA + "name", lit("Another name")), ("+", f"{T2}/site/1", ck("siteStatus"), lit("OPEN")),
      ("+", f"{T2}/site/1", ck("siteStatus"), lit("RECRUITING")),
      ("+", f"{T2}/site/1", ck("inPlace"), iri("organization/sun-yat-sen-university")),
      ("+", f"{T2}/site/1", ck("siteOrganization"), iri("place/china")),
      ("+", f"{T2}/site/1", SCHEMA + "latitude", lit("91.5", "decimal")),
      ("+", f"{T2}/site/1", SCHEMA + "latitude", lit("-95", "decimal")),
      ("+", f"{T2}/site/1", SCHEMA + "latitude", lit("north")),
      ("+", f"{T2}/site/1", SCHEMA + "longitude", lit("181", "decimal")),
      ("+", f"{T2}/site/1", SCHEMA + "longitude", lit("-181", "decimal")),
      ("+", f"{T2}/site/1", SCHEMA + "longitude", lit("12", "integer"))],
     [(f"{T}/site/1", SCHEMA + "name", "MinCount"), (f"{T}/site/1", ck("inPlace"), "MinCount"),
      (f"{T2}/site/1", SCHEMA + "name", "MaxCount"), (f"{T2}/site/1", ck("siteStatus"), "In"),
      (f"{T2}/site/1", ck("siteStatus"), "MaxCount"), (f"{T2}/site/1", ck("inPlace"), "Class"),
      (f"{T2}/site/1", ck("siteOrganization"), "Class"), (f"{T2}/site/1", SCHEMA + "latitude", "Datatype"),
      (f"{T2}/site/1", SCHEMA + "latitude", "MinInclusive"), (f"{T2}/site/1", SCHEMA + "latitude", "MaxInclusive"),
      (f"{T2}/site/1", SCHEMA + "latitude", "MaxCount"), (f"{T2}/site/1", SCHEMA + "longitude", "Datatype"),
      (f"{T2}/site/1", SCHEMA + "longitude", "MinInclusive"), (f"{T2}/site/1", SCHEMA + "longitude", "MaxInclusive"),
      (f"{T2}/site/1", SCHEMA + "longitude", "MaxCount")]),
    # (No ill-typed boolean: rdflib rewrites "yes"^^xsd:boolean to "false", so pyshacl reports a value
    # the data does not hold.)
    ("eligibility: no criteria; a second sex, text and a number for a boolean; a site as age limit",
     [("-", f"{T}/eligibility", ck("criteriaText")), ("+", f"{T}/eligibility", ck("sex"), lit("BOTH")),
      ("+", f"{T}/eligibility", ck("healthyVolunteers"), lit("maybe")),
      ("+", f"{T}/eligibility", ck("healthyVolunteers"), lit("1", "integer")),
      ("+", f"{T}/eligibility", ck("minimumAge"), iri(f"{T}/site/1")),
      ("+", f"{T}/eligibility", ck("maximumAge"), iri(f"{T}/site/1"))],
     [(f"{T}/eligibility", ck("criteriaText"), "MinCount"), (f"{T}/eligibility", ck("sex"), "In"),
      (f"{T}/eligibility", ck("sex"), "MaxCount"), (f"{T}/eligibility", ck("healthyVolunteers"), "Datatype"),
      (f"{T}/eligibility", ck("healthyVolunteers"), "MaxCount"), (f"{T}/eligibility", ck("minimumAge"), "Class"),
      (f"{T}/eligibility", ck("minimumAge"), "MaxCount"), (f"{T}/eligibility", ck("maximumAge"), "Class"),
      (f"{T}/eligibility", ck("maximumAge"), "MaxCount")]),
    ("age limits: one without value or unit, one with extra values, text and an unknown unit; minimum above maximum",
     [("-", f"{T}/eligibility/minimum-age", SCHEMA + "value"), ("-", f"{T}/eligibility/minimum-age", SCHEMA + "unitCode"),
      ("+", f"{T}/eligibility/maximum-age", SCHEMA + "value", lit("-1", "decimal")),
      ("+", f"{T}/eligibility/maximum-age", SCHEMA + "value", lit("old")),
      ("+", f"{T}/eligibility/maximum-age", SCHEMA + "unitCode", pyoxigraph.NamedNode("http://qudt.org/vocab/unit/CENTURY")),
      ("-", f"{T2}/eligibility/minimum-age", ck("ageInYears")),
      ("+", f"{T2}/eligibility/minimum-age", ck("ageInYears"), lit("90", "decimal"))],
     [(f"{T}/eligibility/minimum-age", SCHEMA + "value", "MinCount"),
      (f"{T}/eligibility/minimum-age", SCHEMA + "unitCode", "MinCount"),
      (f"{T}/eligibility/maximum-age", SCHEMA + "value", "MaxCount"),
      (f"{T}/eligibility/maximum-age", SCHEMA + "value", "Datatype"),
      (f"{T}/eligibility/maximum-age", SCHEMA + "value", "MinInclusive"),
      (f"{T}/eligibility/maximum-age", SCHEMA + "unitCode", "In"),
      (f"{T}/eligibility/maximum-age", SCHEMA + "unitCode", "MaxCount"),
      (f"{T2}/eligibility", ck("maximumAge"), "SPARQL")]),
    ("condition mentions: one without text or concept, one with two texts and a drug as concept",
     [("-", f"{T}/condition/1", ck("rawText")), ("-", f"{T}/condition/1", ck("resolvesTo")),
      ("+", f"{T2}/condition/1", ck("rawText"), lit("Another text")),
      ("+", f"{T2}/condition/1", ck("resolvesTo"), iri("drug/toripalimab"))],
     [(f"{T}/condition/1", ck("rawText"), "MinCount"), (f"{T}/condition/1", ck("resolvesTo"), "MinCount"),
      (f"{T2}/condition/1", ck("rawText"), "MaxCount"), (f"{T2}/condition/1", ck("resolvesTo"), "Class")]),
    ("condition concepts: no preferred label, two, a place as broader condition, no MeSH or MONDO",
     [("-", "condition/esophageal-squamous-cell-carcinoma", SKOS + "prefLabel"),
      ("+", "condition/cancer", SKOS + "prefLabel", lit("neoplasm")),
      ("+", "condition/cancer", ck("broaderCondition"), iri("place/china")),
      ("-", "condition/esophageal-carcinoma", SKOS + "exactMatch")],
     [("condition/esophageal-squamous-cell-carcinoma", SKOS + "prefLabel", "MinCount"),
      ("condition/cancer", SKOS + "prefLabel", "MaxCount"), ("condition/cancer", ck("broaderCondition"), "Class"),
      ("condition/esophageal-carcinoma", None, "SPARQL")]),
    ("drug concepts: no preferred label, two, no identifier, an identifier as text, a place as target",
     [("-", "drug/toripalimab", SKOS + "prefLabel"), ("+", "drug/capecitabine", SKOS + "prefLabel", lit("Xeloda")),
      ("-", "drug/cisplatin", SKOS + "exactMatch"), ("+", "drug/toripalimab", SKOS + "exactMatch", lit("DB15043")),
      ("+", "drug/toripalimab", ck("hasTarget"), iri("place/china"))],
     [("drug/toripalimab", SKOS + "prefLabel", "MinCount"), ("drug/capecitabine", SKOS + "prefLabel", "MaxCount"),
      ("drug/cisplatin", SKOS + "exactMatch", "MinCount"), ("drug/toripalimab", SKOS + "exactMatch", "NodeKind"),
      ("drug/toripalimab", ck("hasTarget"), "Class")]),
    ("organization: no name, a place as parent, a drug as place",
     [("-", "organization/sun-yat-sen-university-cancer-center", RDFS_LABEL),
      ("+", "organization/sun-yat-sen-university-cancer-center", ck("partOf"), iri("place/china")),
      ("+", "organization/sun-yat-sen-university-cancer-center", ck("inPlace"), iri("drug/toripalimab"))],
     [("organization/sun-yat-sen-university-cancer-center", RDFS_LABEL, "MinCount"),
      ("organization/sun-yat-sen-university-cancer-center", ck("partOf"), "Class"),
      ("organization/sun-yat-sen-university-cancer-center", ck("inPlace"), "Class")]),
    ("people: no name; two names, an unknown role and a place as affiliation",
     [("-", f"{T}/responsible-party", SCHEMA + "name"), ("+", f"{T}/official/1", SCHEMA + "name", lit("Dr No")),
      ("+", f"{T}/official/1", ck("role"), lit("BOSS")), ("+", f"{T}/official/1", ck("affiliation"), iri("place/china"))],
     [(f"{T}/responsible-party", SCHEMA + "name", "MinCount"), (f"{T}/official/1", SCHEMA + "name", "MaxCount"),
      (f"{T}/official/1", ck("role"), "In"), (f"{T}/official/1", ck("role"), "MaxCount"),
      (f"{T}/official/1", ck("affiliation"), "Class")]),
    ("places: no name; a second, unknown kind and a drug as broader place",
     [("-", "place/guangdong", RDFS_LABEL), ("+", "place/guangzhou", ck("placeKind"), lit("town")),
      ("+", "place/guangzhou", ck("broaderPlace"), iri("drug/toripalimab"))],
     [("place/guangdong", RDFS_LABEL, "MinCount"), ("place/guangzhou", ck("placeKind"), "In"),
      ("place/guangzhou", ck("placeKind"), "MaxCount"), ("place/guangzhou", ck("broaderPlace"), "Class")]),
    ("record provenance: one stripped, one with a second file, an unknown format and a malformed hash",
     [("-", f"{T}/record", DCTERMS + "source"), ("-", f"{T}/record", ck("sourceFormat")), ("-", f"{T}/record", ck("sha256")),
      ("+", f"{T2}/record", DCTERMS + "source", lit("elsewhere.txt")), ("+", f"{T2}/record", ck("sourceFormat"), lit("pdf")),
      ("+", f"{T2}/record", ck("sha256"), lit("XYZ"))],
     [(f"{T}/record", DCTERMS + "source", "MinCount"), (f"{T}/record", ck("sourceFormat"), "MinCount"),
      (f"{T}/record", ck("sha256"), "MinCount"), (f"{T2}/record", DCTERMS + "source", "MaxCount"),
      (f"{T2}/record", ck("sourceFormat"), "In"), (f"{T2}/record", ck("sha256"), "Pattern"),
      (f"{T2}/record", ck("sha256"), "MaxCount")]),
    ("references: one with neither citation nor PubMed id; one with malformed ids and an unknown type",
     [("-", f"{T}/reference/1", DCTERMS + "bibliographicCitation"), ("-", f"{T}/reference/1", ck("pmid")),
      ("+", f"{T2}/reference/1", ck("pmid"), lit("PMID123")), ("+", f"{T2}/reference/1", ck("doi"), lit("doi:10.1/x")),
      ("+", f"{T2}/reference/1", ck("referenceType"), lit("OPINION"))],
     [(f"{T}/reference/1", None, "Or"), (f"{T2}/reference/1", ck("pmid"), "Pattern"),
      (f"{T2}/reference/1", ck("pmid"), "MaxCount"), (f"{T2}/reference/1", ck("doi"), "Pattern"),
      (f"{T2}/reference/1", ck("doi"), "MaxCount"), (f"{T2}/reference/1", ck("referenceType"), "In"),
      (f"{T2}/reference/1", ck("referenceType"), "MaxCount")]),
]


@pytest.fixture(scope="module")
def broken_quads(pairs, mapper):
    """The two trials and the concepts they link to, as triples, with every breakage applied."""
    mapped = [m for t, m in pairs if t.nct_id in ("NCT06281886", "NCT05173246")]
    quads = [q for m in mapped for q in m.quads]
    quads += linked_concepts((q.object for q in quads), concepts_by_subject(mapper.concept_quads()))
    triples = {(q.subject, q.predicate, q.object) for q in quads}
    for _, edits, _ in BREAKAGES:
        for edit in edits:
            subject, predicate = iri(edit[1]), pyoxigraph.NamedNode(edit[2])
            if edit[0] == "-":
                present = {t for t in triples if t[0] == subject and t[1] == predicate}
                assert present, f"nothing to remove: {edit}"
                triples -= present
            else:
                triples.add((subject, predicate, edit[3]))
    return [pyoxigraph.Quad(*t) for t in triples]


@pytest.fixture(scope="module")
def broken_results(broken_quads):
    """(compiled rows, pyshacl rows) for the broken graph."""
    data = rdflib.Graph().parse(data=pyoxigraph.serialize(broken_quads, format=pyoxigraph.RdfFormat.N_QUADS).decode(),
                                format="nt")
    return (validate_graph(data, SETTINGS, quads=broken_quads),
            validate_graph(data, SETTINGS, quads=broken_quads, engine="pyshacl"))


def test_broken_graph_agrees_with_pyshacl(broken_results):
    """On the hand-broken graph both engines give the same set of results."""
    compiled, reference = broken_results
    assert {key(r) for r in compiled} == {key(r) for r in reference}
    assert len(compiled) == len(reference)  # and no result twice


@pytest.mark.parametrize("breakage", BREAKAGES, ids=lambda b: b[0][:60])
def test_each_breakage_gives_its_results(breakage, broken_results):
    """Each hand-made breakage is reported where the shapes say: focus node, path, constraint component."""
    compiled, _ = broken_results
    found = {(r.focus, r.path, r.constraint) for r in compiled}
    for focus, path, component in breakage[2]:
        assert (node(focus), path, component + "ConstraintComponent") in found, (focus, path, component)


def test_every_constraint_in_shapes_fires_on_the_broken_graph(broken_results):
    """Coverage: each compiled data-level constraint and each SHACL-SPARQL rule gives at least one result."""
    compiled, _ = broken_results
    fired = {(r.shape, r.path, r.constraint) for r in compiled}
    constraints = compiled_constraints(SETTINGS.shapes_dir, BASE, "data")
    silent = [(c.shape, c.path, c.component) for c in constraints if (c.shape, c.path, c.component) not in fired]
    assert not silent
    rules = {r.constraint for r in sparql_rules(SETTINGS.shapes_dir, BASE)}
    assert rules <= {r.shape for r in compiled if r.constraint == "SPARQLConstraintComponent"}


def test_broken_drug_classes_agree_with_pyshacl_and_fire_every_ontology_constraint():
    """A drug class stripped of label, definition and parent: each ontology-level constraint fires,
    with the same results as pyshacl."""
    stripped = pyoxigraph.NamedNode(ck("PD1Inhibitor"))
    dropped = {pyoxigraph.NamedNode(RDFS_LABEL), pyoxigraph.NamedNode(SKOS + "definition"),
               pyoxigraph.NamedNode("http://www.w3.org/2000/01/rdf-schema#subClassOf")}
    quads = [q for q in _ontology_triples(SETTINGS) if not (q.subject == stripped and q.predicate in dropped)]
    assert len(quads) < len(_ontology_triples(SETTINGS))
    store = pyoxigraph.Store()
    store.extend(quads)
    compiled = _run_compiled(store, SETTINGS, "ontology")
    data = rdflib.Graph().parse(data=pyoxigraph.serialize(quads, format=pyoxigraph.RdfFormat.N_TRIPLES).decode(), format="nt")
    _, results, _ = shacl_validate(data, shacl_graph=shapes_graph(SETTINGS.shapes_dir, BASE, "ontology"),
                                   inference="none", allow_warnings=True, allow_infos=True)
    assert {key(r) for r in compiled} == {key(r) for r in _rows(results, None)}
    assert {(r.focus, r.path) for r in compiled} == {(stripped.value, p.value) for p in dropped}
    assert {(c.shape, c.path) for c in compiled_constraints(SETTINGS.shapes_dir, BASE, "ontology")} == \
        {(r.shape, r.path) for r in compiled}


# ---------------------------------------------------------------------------- what is not compiled

SHAPE_PREFIXES = """@prefix sh: <http://www.w3.org/ns/shacl#> . @prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
@prefix ex: <http://example.org/> .
"""


def test_every_shape_file_compiles():
    """Every constraint in shapes/ (data and ontology levels) compiles to a query Oxigraph accepts."""
    for level in ("data", "ontology"):
        constraints = compile_shapes(shapes_graph(SETTINGS.shapes_dir, BASE, level))
        assert constraints
        store = pyoxigraph.Store()
        for constraint in constraints:
            assert list(store.query(constraint.query)) == []


@pytest.mark.parametrize("turtle, named", [
    ("ex:S a sh:NodeShape ; sh:targetClass ex:C ; sh:property [ sh:path ex:p ; sh:minLength 3 ; sh:message \"m\" ] .",
     "sh:minLength"),
    ("ex:S a sh:NodeShape ; sh:targetClass ex:C ; sh:property [ sh:path ex:p ; sh:hasValue \"x\" ; sh:message \"m\" ] .",
     "sh:hasValue"),
    ("ex:S a sh:NodeShape ; sh:targetClass ex:C ; sh:property [ sh:path [ sh:inversePath ex:p ] ; sh:minCount 1 ; sh:message \"m\" ] .",
     "sh:path"),
    ("ex:S a sh:NodeShape ; sh:targetNode ex:n ; sh:property [ sh:path ex:p ; sh:minCount 1 ; sh:message \"m\" ] .",
     "targetNode"),
    ("ex:S a sh:NodeShape ; sh:targetClass ex:C ; sh:property [ sh:path ex:p ; sh:datatype xsd:anyURI ; sh:message \"m\" ] .",
     "anyURI"),
    ("ex:S a sh:NodeShape ; sh:targetClass ex:C ; sh:property [ sh:path ex:p ; sh:minCount 1 ] .",
     "sh:message"),
    ("ex:S a sh:NodeShape ; sh:targetClass ex:C ; sh:message \"m\" ; sh:not [ sh:class ex:D ] .",
     "sh:not"),
])
def test_unsupported_shacl_is_refused_when_compiling(turtle, named):
    """A component, path or target the compiler does not translate raises an error naming the shape and
    the construct, instead of being skipped."""
    graph = rdflib.Graph().parse(data=SHAPE_PREFIXES + turtle, format="turtle")
    with pytest.raises(ShapeCompileError) as error:
        compile_shapes(graph)
    assert named in str(error.value)
    assert "ex:S" in str(error.value) or "blank shape" in str(error.value) or "http://example.org/S" in str(error.value)
