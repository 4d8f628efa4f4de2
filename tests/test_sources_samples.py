"""The five shipped records read the way a careful reader reads their pages."""

from __future__ import annotations

import json

import pytest

from conftest import DATA, FIXTURES, SAMPLE_FILES
from kg.model import SourceFormat, Trial
from kg.sources import read_records
from kg.sources.ctgov_json import study_to_trial


def test_every_shipped_record_is_exercised(samples):
    """Guard: each file in data/ is one of the samples these tests check, and each is read."""
    shipped = sorted(p.name for p in DATA.iterdir() if p.is_file() and not p.name.startswith("."))
    assert shipped == sorted(SAMPLE_FILES.values())
    assert sorted(samples) == sorted(SAMPLE_FILES)
    for nct, name in SAMPLE_FILES.items():
        assert samples[nct].source.file.endswith(name)


def test_formats_are_detected(samples):
    """Pages 000-002 are ClinicalTrials.gov-style, 003 is Veeva, 004 is TrialFinderData."""
    assert samples["NCT06281886"].source.format is SourceFormat.CTGOV_PAGE
    assert samples["NCT05173246"].source.format is SourceFormat.CTGOV_PAGE
    assert samples["NCT07248696"].source.format is SourceFormat.CTGOV_PAGE
    assert samples["NCT07325539"].source.format is SourceFormat.VEEVA_PAGE
    assert samples["NCT07581821"].source.format is SourceFormat.TRIALFINDER_PAGE


def test_nct06281886_design_arms_and_interventions(samples):
    """NCT06281886: ACTIVE_NOT_RECRUITING phase 2, 170 randomised in parallel, apatinib only in the study arm."""
    t = samples["NCT06281886"]
    assert t.overall_status == "ACTIVE_NOT_RECRUITING"
    assert t.phases == ["PHASE2"]
    assert t.enrollment_count == 170
    assert t.study_type == "INTERVENTIONAL"
    assert t.design.allocation == "RANDOMIZED"
    assert t.design.intervention_model == "PARALLEL"
    assert t.design.primary_purpose == "TREATMENT"
    assert t.design.masking == "NONE"
    assert [(a.label, a.type) for a in t.arms] == [
        ("The study group", "EXPERIMENTAL"),
        ("The control group", "ACTIVE_COMPARATOR"),
    ]
    assert len(t.interventions) == 5
    assert sorted(i.type.value for i in t.interventions) == ["DRUG", "DRUG", "DRUG", "DRUG", "RADIATION"]
    apatinib = next(i for i in t.interventions if i.name == "Apatinib")
    assert apatinib.arm_group_labels == ["The study group"]
    assert "Drug: Apatinib" not in t.arms[1].intervention_names
    capecitabine = next(i for i in t.interventions if i.name == "Capecitabine")
    assert capecitabine.arm_group_labels == ["The study group", "The control group"]
    assert capecitabine.description.startswith("Oral capecitabine 1000 mg/m2")


def test_nct06281886_dates_eligibility_site_and_references(samples):
    """NCT06281886: dates as written, ages 18-80 years, one site in Guangzhou, 15 references with PMIDs."""
    t = samples["NCT06281886"]
    assert t.start_date.date == "2023-12-01"
    assert t.completion_date.date == "2026-12-01"
    assert t.primary_completion_date is None  # the page does not give one
    assert t.eligibility.minimum_age.value == 18 and t.eligibility.minimum_age.unit == "YEARS"
    assert t.eligibility.maximum_age.value == 80 and t.eligibility.maximum_age.unit == "YEARS"
    assert t.eligibility.sex == "ALL"
    assert t.eligibility.healthy_volunteers is False
    assert len(t.eligibility.inclusion) == 8
    assert len(t.eligibility.exclusion) == 14
    assert t.eligibility.exclusion[-1].startswith("Pregnant or lactating females")
    assert [(loc.facility, loc.city, loc.state, loc.country) for loc in t.locations] == [
        ("Sun yat-sen University Cancer Center", "Guangzhou", "Guangdong", "China")
    ]
    assert t.locations[0].status is None  # "Site Status" with no value
    assert len(t.references) == 15
    assert all(r.pmid and r.type == "BACKGROUND" for r in t.references)
    assert t.references[0].pmid == "33538338"
    assert t.references[0].doi == "10.3322/caac.21660"
    assert t.lead_sponsor.name == "Sun Yat-sen University" and t.lead_sponsor.agency_class == "OTHER"
    assert t.org_study_id == "GASTO-10107"
    assert t.source.page_last_updated == "2025-11-17"


def test_nct06281886_conditions_keep_keywords_apart(samples):
    """The run-together conditions line gives one condition and two keywords; the raw line is kept."""
    t = samples["NCT06281886"]
    assert t.conditions == ["Esophageal Squamous Cell Carcinoma"]
    assert t.keywords == ["Efficacy", "Toxicity"]
    assert "Esophageal Squamous Cell Carcinoma Efficacy Toxicity" in t.source.raw.values()


def test_nct05173246_sponsors_contacts_and_model_description(samples):
    """NCT05173246: lead Sun Yat-sen University, three collaborators, an unlabelled model description."""
    t = samples["NCT05173246"]
    assert t.overall_status == "RECRUITING"
    assert t.enrollment_count == 43
    assert t.design.allocation == "NA"
    assert t.design.intervention_model == "SINGLE_GROUP"
    assert t.design.intervention_model_description == (
        "JS001 Combined With TP as First-line Treatment for Unresectable or Advanced Esophageal Small Cell Carcinoma"
    )
    assert t.lead_sponsor.name == "Sun Yat-sen University"
    assert [(c.name, c.agency_class) for c in t.collaborators] == [
        ("Shanghai Junshi Bioscience Co., Ltd.", "OTHER"),
        ("CSPC Ouyi Pharmaceutical Co., Ltd.", "INDUSTRY"),
        ("The First Affiliated Hospital of Zhengzhou University", "OTHER"),
    ]
    assert [i.name for i in t.interventions] == ["JS001", "nab-paclitaxel", "Cisplatin", "Carboplatin"]
    assert t.arms[0].label == "JS001 Combined With TP"
    assert len(t.eligibility.inclusion) == 11 and len(t.eligibility.exclusion) == 19
    assert t.eligibility.maximum_age.value == 75
    assert t.locations[0].status == "RECRUITING"
    assert t.central_contacts[0].name == "Zhi-da Lv, Bachelor"
    assert t.central_contacts[0].phone == "+862087342635"
    assert t.locations[0].contacts[0].phone == "+862087342635"
    assert t.officials[0].name == "Rui-hua Xu, PhD" and t.officials[0].affiliation == "Sun Yat-sen University"
    assert t.responsible_party.type == "PRINCIPAL_INVESTIGATOR"
    assert len(t.references) == 21
    assert t.unattributed_other_names  # the page lists other names without saying whose


def test_nct07248696_radiation_intervention_and_misspelt_condition(samples):
    """NCT07248696: phase NA, one RADIATION intervention whose description names the drugs, condition as spelt."""
    t = samples["NCT07248696"]
    assert t.phases == ["NA"]
    assert t.enrollment_count == 32
    assert t.conditions == ["Nasopharyngeal Cancinoma (NPC)"]
    assert len(t.interventions) == 1
    radiation = t.interventions[0]
    assert radiation.type == "RADIATION" and radiation.name == "response-adapted radiotherapy"
    assert "Tislelizumab+Gemcitabine+Cisplatin" in radiation.description
    assert radiation.description.rstrip().endswith("shall not exceed 2 years")
    assert t.arms[0].intervention_names == ["Radiation: response-adapted radiotherapy"]
    assert t.lead_sponsor.name == "Chongqing University Cancer Hospital"
    assert (t.locations[0].city, t.locations[0].state) == ("Chongqing", "Chongqing Municipality")
    assert t.eligibility.maximum_age.value == 70
    assert len(t.references) == 1 and t.references[0].type == "RESULT" and t.references[0].pmid is None


def test_nct07325539_veeva_display_values(samples):
    """NCT07325539 (Veeva): display values become v2 enumerations and quantities; no dates invented."""
    t = samples["NCT07325539"]
    assert t.overall_status == "NOT_YET_RECRUITING"
    assert t.phases == ["PHASE2"]
    assert t.study_type == "INTERVENTIONAL"
    assert (t.enrollment_count, t.enrollment_type) == (55, "ESTIMATED")
    assert t.design.intervention_model == "SINGLE_GROUP"
    assert t.design.allocation == "NA"
    assert t.design.masking == "NONE"
    assert t.design.primary_purpose == "TREATMENT"
    assert t.eligibility.sex == "ALL"
    assert (t.eligibility.minimum_age.value, t.eligibility.maximum_age.value) == (18, 65)
    assert t.eligibility.healthy_volunteers is False
    assert t.conditions == ["Nasopharangeal Cancer", "Nasopharyngeal Cancinoma (NPC)"]
    assert [(i.type.value, i.name) for i in t.interventions] == [
        ("DRUG", "Gemcitabine(GEM)"), ("DRUG", "Cisplatin"), ("DRUG", "Toripalimab"), ("RADIATION", "LDRT"),
    ]
    assert t.org_study_id == "2025-FXY-451-FLK"
    assert t.lead_sponsor.name == "Sun Yat-sen University" and t.lead_sponsor.agency_class == "OTHER"
    assert [a.label for a in t.arms] == ["LDRT + Toripalimab + GP chemotherapy"]
    assert t.arms[0].type == "EXPERIMENTAL"
    assert len(t.arms[0].intervention_names) == 4
    assert all(i.arm_group_labels == ["LDRT + Toripalimab + GP chemotherapy"] for i in t.interventions)
    assert len(t.eligibility.inclusion) == 9  # nested numbered items stay inside their parent
    assert "Hemoglobin (Hb) ≥90 g/L." in t.eligibility.inclusion[6]
    assert len(t.eligibility.exclusion) == 22
    assert [c.name for c in t.central_contacts] == ["Jun Ma, M.D.", "Zhe Li, Ph.D."]
    assert t.start_date is None and t.completion_date is None
    assert t.source.raw["/protocolSection/statusModule/overallStatus"] == "Not yet enrolling"


def test_nct07581821_trialfinder_skips_boilerplate(samples):
    """NCT07581821 (TrialFinderData): banner, titles, person sponsor, one combined treatment, site with zip."""
    t = samples["NCT07581821"]
    assert t.overall_status == "RECRUITING"
    assert t.phases == ["PHASE2"]
    assert t.study_type == "INTERVENTIONAL"
    assert t.brief_title.startswith("Sintilimab Combined With Anlotinib and Taxane-Based Chemotherap for")
    assert t.official_title.startswith("A Prospective, Single-Arm Phase II Clinical Trial")
    assert t.conditions == ["Recurrent or Metastatic Nasopharyngeal Carcinoma"]
    assert t.lead_sponsor.name == "Ming-Yuan Chen"
    assert t.enrollment_count == 33
    assert [(i.type.value, i.name) for i in t.interventions] == [
        ("DRUG", "Sintilimab + Anlotinib + taxane-based chemotherapy")
    ]
    assert "Docetaxel, 75mg/m²" in t.interventions[0].description
    assert [(l.facility, l.city, l.state, l.country, l.zip) for l in t.locations] == [
        ("Fifth Affiliated Hospital of Sun Yat-sen University", "Zhuhai", "Guangdong", "China", "519000")
    ]
    assert len(t.eligibility.inclusion) == 10
    assert len(t.eligibility.exclusion) == 18
    # The plain-English rewrite ("Sign a written willing to sign ...") is boilerplate, not the criteria.
    assert t.eligibility.inclusion[0] == "Sign a written informed consent before implementing any trial-related procedures."
    assert t.source.page_last_updated == "2026-06-07"
    assert t.start_date is None and t.arms == []
    assert "Frequently Asked Questions" not in (t.brief_summary or "")


def test_page_and_hand_written_json_give_the_same_trial(samples):
    """NCT06281886 from its page and from a v2 JSON written by hand from that page are the same trial."""
    path = FIXTURES / "records" / "NCT06281886.json"
    from_json = study_to_trial(json.loads(path.read_text(encoding="utf-8")))
    from_page = samples["NCT06281886"]
    ignore = {"source", "unattributed_other_names", "interventions"}
    assert from_page.model_dump(exclude=ignore) == from_json.model_dump(exclude=ignore)
    for page_i, json_i in zip(from_page.interventions, from_json.interventions, strict=True):
        assert page_i.model_dump(exclude={"other_names"}) == json_i.model_dump(exclude={"other_names"})
    # The page lists the other name without its intervention; nothing is lost either way.
    assert from_page.unattributed_other_names == from_json.interventions[-1].other_names


@pytest.mark.parametrize("nct", sorted(SAMPLE_FILES))
def test_every_record_round_trips_through_v2_json(samples, nct):
    """Writing a record as v2 JSON and reading it back gives the same trial."""
    trial = samples[nct]
    again = study_to_trial(json.loads(json.dumps(trial.to_ctgov())))
    ignore = {"source", "unattributed_other_names"}
    assert again.model_dump(exclude=ignore) == trial.model_dump(exclude=ignore)
    assert isinstance(again, Trial)


def test_v2_list_page_and_zip_are_read(tmp_path, samples):
    """A {"studies": [...]} page and a ZIP of one study per file both yield every study."""
    import zipfile

    studies = [samples[n].to_ctgov() for n in sorted(SAMPLE_FILES)]
    page = tmp_path / "page.json"
    page.write_text(json.dumps({"studies": studies, "nextPageToken": "abc"}), encoding="utf-8")
    archive = tmp_path / "bulk.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for study in studies:
            z.writestr(f"{study['protocolSection']['identificationModule']['nctId']}.json", json.dumps(study))
    from_page = [r.nct_id for r in read_records([page])]
    from_zip = [r.nct_id for r in read_records([archive])]
    assert from_page == sorted(SAMPLE_FILES)
    assert from_zip == sorted(SAMPLE_FILES)
