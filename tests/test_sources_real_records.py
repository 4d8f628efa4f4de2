"""Real ClinicalTrials.gov v2 records (not among the shipped samples) read intact.

The records in tests/fixtures/real/ are registry captures; their provenance is in the README there.
"""

from __future__ import annotations

import json

from conftest import FIXTURES
from kg.sources import read_records
from kg.sources.ctgov_json import study_to_trial

REAL = FIXTURES / "real"


def test_nct06131398_amgen_pembrolizumab_study_reads_intact():
    """NCT06131398: lead sponsor Amgen (INDUSTRY), two arms, two drugs, 25 sites with geo points."""
    (trial,) = read_records([REAL / "NCT06131398.json"])
    assert trial.nct_id == "NCT06131398"
    assert (trial.lead_sponsor.name, trial.lead_sponsor.agency_class) == ("Amgen", "INDUSTRY")
    assert [a.label for a in trial.arms] == ["Group A: AMG 355 monotherapy", "Group B: AMG 355 and pembrolizumab"]
    assert [(i.type.value, i.name) for i in trial.interventions] == [("DRUG", "AMG 355"), ("DRUG", "Pembrolizumab")]
    assert len(trial.locations) == 25
    first = trial.locations[0]
    assert (first.facility, first.city, first.state, first.zip, first.country) == (
        "City of Hope National Medical Center", "Duarte", "California", "91010", "United States")
    assert (first.geo_point.lat, first.geo_point.lon) == (34.13945, -117.97729)
    assert (trial.eligibility.minimum_age.value, trial.eligibility.maximum_age.value) == (18, 100)
    assert trial.overall_status == "COMPLETED" and trial.phases == ["PHASE1"]


def test_nct02576665_biological_and_drug_interventions():
    """NCT02576665: Tocagen Inc., one arm, a BIOLOGICAL and a DRUG intervention, three sites."""
    (trial,) = read_records([REAL / "NCT02576665.json"])
    assert trial.lead_sponsor.name == "Tocagen Inc."
    assert [a.label for a in trial.arms] == ["Toca 511/Toca FC"]
    assert [(i.type.value, i.name) for i in trial.interventions] == [("BIOLOGICAL", "Toca 511"), ("DRUG", "Toca FC")]
    assert [l.city for l in trial.locations][0] == "Denver" and len(trial.locations) == 3
    assert trial.overall_status == "TERMINATED"


def test_real_records_write_back_the_fields_the_model_covers():
    """Writing a real record back as v2 JSON keeps every field the model covers, value for value."""
    for path in REAL.glob("NCT*.json"):
        study = json.loads(path.read_text(encoding="utf-8"))
        written = study_to_trial(study).to_ctgov()
        original, again = study["protocolSection"], written["protocolSection"]
        for module in ("identificationModule", "armsInterventionsModule", "sponsorCollaboratorsModule"):
            for key, value in again[module].items():
                assert original[module][key] == value, (path.name, module, key)
        assert again["contactsLocationsModule"]["locations"] == original["contactsLocationsModule"]["locations"]
