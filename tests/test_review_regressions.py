"""Regressions found in review: each test names the defect it guards against."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import DATA, SAMPLE_FILES
from kg.build import BuildError, build
from kg.concepts import load_concepts
from kg.resolve import Resolver
from kg.settings import Settings
from kg.sources.ctgov_json import split_criteria, study_to_trial
from kg.sources.pagetext import peel_keywords
from kg.store import live_store_path, open_read_only

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def resolver():
    return Resolver(load_concepts(ROOT / "ontology" / "concepts"))


@pytest.mark.parametrize("text", ["Oropharyngeal Carcinoma", "Esophageal Adenocarcinoma", "Laryngeal Carcinoma"])
def test_other_diseases_are_not_fuzzy_matched(resolver, text):
    """A different disease is not taken for a misspelling of a known one."""
    assert not resolver.condition(text).resolved


@pytest.mark.parametrize("name", ["Second Affiliated Hospital of Zhengzhou University",
                                  "Sixth Affiliated Hospital, Sun Yat-sen University"])
def test_similar_organizations_are_not_merged(resolver, name):
    """'Second Affiliated Hospital' is not the 'First'; organizations match by name, not by similarity."""
    assert resolver.organization(name) is None


def test_drug_raw_text_is_the_source_spelling(resolver):
    """The matched text keeps its hyphens and case exactly as written."""
    matches = resolver.drugs_in("SHR-1210 plus Albumin-paclitaxel")
    assert [(m.text, m.concept.id) for m in matches] == [("SHR-1210", "camrelizumab"), ("Albumin-paclitaxel", "nab-paclitaxel")]


def test_placebo_matching_a_drug_is_not_the_drug(resolver):
    """'Placebo matching apatinib' gives no apatinib."""
    assert resolver.drugs_in("Placebo matching apatinib") == []


def test_condition_words_stay_when_no_disease_remains():
    """'Cardiac Toxicity' is one condition; only a disease name followed by keywords is split."""
    assert peel_keywords("Cardiac Toxicity") == ("Cardiac Toxicity", [])


def test_a_criterion_mentioning_inclusion_criteria_is_not_a_heading():
    """An exclusion item that mentions 'the inclusion criteria' stays an exclusion item."""
    text = "Inclusion Criteria:\n\n* adult\n\nExclusion Criteria:\n\n* pregnant\n* not meeting the inclusion criteria\n* HIV"
    assert split_criteria(text) == (["adult"], ["pregnant", "not meeting the inclusion criteria", "HIV"])


def test_v2_contacts_with_phone_extensions_are_read():
    """Registry contacts carry phoneExt; the record still reads and keeps it."""
    study = {"protocolSection": {"identificationModule": {"nctId": "NCT01234567"}, "contactsLocationsModule": {
        "centralContacts": [{"name": "A B", "role": "CONTACT", "phone": "555", "phoneExt": "12", "email": "a@b.org"}]}}}
    trial = study_to_trial(study)
    assert trial.central_contacts[0].phone_ext == "12"
    assert trial.to_ctgov()["protocolSection"]["contactsLocationsModule"]["centralContacts"][0]["phoneExt"] == "12"


def test_a_build_that_reads_no_record_leaves_the_store(tmp_path):
    """A build whose paths hold no readable record (a typo) fails and the live store stays."""
    settings = Settings(store_dir=tmp_path / "store")
    build(settings)
    live = live_store_path(settings.store_dir)
    with pytest.raises(BuildError):
        build(settings, [tmp_path / "no-such-folder"])
    assert live_store_path(settings.store_dir) == live


def test_duplicate_records_of_one_trial_are_reported_not_merged(tmp_path):
    """Two records of NCT06281886 in one build: the second is reported, the graph holds one title."""
    settings = Settings(store_dir=tmp_path / "store")
    copy = tmp_path / "again.json"
    copy.write_text(json.dumps({"protocolSection": {"identificationModule": {
        "nctId": "NCT06281886", "briefTitle": "Another title"}}}), encoding="utf-8")
    report = build(settings, [DATA / SAMPLE_FILES["NCT06281886"], copy])
    assert any("duplicate record of NCT06281886" in f.message for f in report.failures)
    store = open_read_only(settings.store_dir)
    titles = list(store.query('SELECT ?t { <http://localhost:8000/trial/NCT06281886> <http://schema.org/name> ?t }',
                              use_default_graph_as_union=True))
    assert len(titles) == 1


def test_a_doi_with_iri_forbidden_characters_does_not_break_the_build(tmp_path):
    """An old Wiley DOI with '<' and '#' is percent-encoded; the build completes."""
    citation = "Smith J. A study. Cancer. 1999. doi: 10.1002/(SICI)1097-0142(19990101)85:1<1::AID-CNCR1>3.0.CO;2-#."
    study = {"protocolSection": {"identificationModule": {"nctId": "NCT01234568"},
                                 "referencesModule": {"references": [{"citation": citation, "type": "BACKGROUND"}]}}}
    path = tmp_path / "doi.json"
    path.write_text(json.dumps(study), encoding="utf-8")
    report = build(Settings(store_dir=tmp_path / "store"), [path])
    assert report.trials == ["NCT01234568"] and not report.failures


def test_trialfinder_sponsor_with_periods_is_read_whole():
    """'sponsored by M.D. Anderson Cancer Center.' keeps the whole name."""
    from kg.sources import read_bytes

    page = (DATA / SAMPLE_FILES["NCT07581821"]).read_text(encoding="utf-8").replace(
        "sponsored by Ming-Yuan Chen.", "sponsored by M.D. Anderson Cancer Center.")
    (trial,) = read_bytes(page.encode("utf-8"), "page.txt")
    assert trial.lead_sponsor.name == "M.D. Anderson Cancer Center"


def test_veeva_arm_without_treatments_does_not_swallow_the_next_arm():
    """A 'No Intervention' group with only a description is followed by the next arm, both read."""
    from kg.sources import read_bytes

    page = (DATA / SAMPLE_FILES["NCT07325539"]).read_text(encoding="utf-8").replace(
        "55 participants in 1 patient group\n\n",
        "55 participants in 2 patient groups\n\nObservation\nNo Intervention group\nDescription:\nFollow-up only.\n")
    (trial,) = read_bytes(page.encode("utf-8"), "page.txt")
    assert [(a.label, str(a.type)) for a in trial.arms] == [
        ("Observation", "NO_INTERVENTION"), ("LDRT + Toripalimab + GP chemotherapy", "EXPERIMENTAL")]
    assert trial.arms[0].description == "Follow-up only."
