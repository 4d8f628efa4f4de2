"""The named-query library: every query's answer on the shipped records, the loader, the CLI and the API.

Expected tables are written from reading the five pages in data/ (and, for identifiers and
targets, the curated concept tables in ontology/concepts/ that they come from).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from kg.queries import QueryError, bind, load_library, load_query, run

ROOT = Path(__file__).resolve().parent.parent
BASE = "http://localhost:8000"

T000, T001, T002, T003, T004 = "NCT06281886", "NCT05173246", "NCT07248696", "NCT07325539", "NCT07581821"
TITLE = {
    T000: "Induction Immuno-chemotherapy and Concurrent Chemoradiotherapy With or Without Apatinib in Unresectable, "
          "Locally Advanced Esophageal Squamous Cell Carcinoma",
    T001: "JS001 Combined With TP as First-line Treatment for Unresectable or Advanced Small Cell Esophageal Carcinoma",
    T002: "Tislelizumab Plus Chemotherapy With Response-Adapted Radiotherapy for de Novo Metastatic Nasopharyngeal "
          "Carcinoma: A Prospective, Phase II Trial",
    T003: "LDRT Combined With Toripalimab and Chemotherapy for Recurrent/Metastatic NPC (LIGHT)",
    T004: "Sintilimab Combined With Anlotinib and Taxane-Based Chemotherap for Recurrent/Metastatic Nasopharyngeal "
          "Carcinoma",
}
PHASE = {T000: "PHASE2", T001: "PHASE2", T002: "NA", T003: "PHASE2", T004: "PHASE2"}
STATUS = {T000: "ACTIVE_NOT_RECRUITING", T001: "RECRUITING", T002: "ACTIVE_NOT_RECRUITING",
          T003: "NOT_YET_RECRUITING", T004: "RECRUITING"}
# The drugs each regimen gives, as the pages name them ("JS001" is toripalimab's code name; sample 002
# gives its drugs inside the radiotherapy intervention's text; sample 004 offers three taxanes).
REGIMENS = {
    (T000, "The study group"): {"toripalimab", "nab-paclitaxel", "cisplatin", "apatinib", "capecitabine"},
    (T000, "The control group"): {"toripalimab", "nab-paclitaxel", "cisplatin", "capecitabine"},
    (T001, "JS001 Combined With TP"): {"toripalimab", "nab-paclitaxel", "cisplatin", "carboplatin"},
    (T002, "response-adapted radiotherapy"): {"tislelizumab", "gemcitabine", "cisplatin"},
    (T003, "LDRT + Toripalimab + GP chemotherapy"): {"toripalimab", "cisplatin", "gemcitabine"},
    (T004, "Sintilimab + Anlotinib + taxane-based chemotherapy"): {"sintilimab", "anlotinib", "docetaxel",
                                                                  "paclitaxel", "nab-paclitaxel"},
}
TRIAL_DRUGS = {}
for (nct, _), drugs in REGIMENS.items():
    TRIAL_DRUGS.setdefault(nct, set()).update(drugs)
# Drug classes of the curated drug table (ontology/concepts/drugs_*.yaml), with their superclasses.
CLASS_DRUGS = {
    "PD-1 inhibitor": {"toripalimab", "tislelizumab", "sintilimab"},
    "VEGFR tyrosine-kinase inhibitor": {"apatinib", "anlotinib"},
    "platinum compound": {"cisplatin", "carboplatin"},
    "taxane": {"nab-paclitaxel", "paclitaxel", "docetaxel"},
    "pyrimidine analogue": {"capecitabine", "gemcitabine"},
}
CLASS_DRUGS["immune checkpoint inhibitor"] = CLASS_DRUGS["monoclonal antibody"] = CLASS_DRUGS["PD-1 inhibitor"]
CLASS_DRUGS["kinase inhibitor"] = CLASS_DRUGS["VEGFR tyrosine-kinase inhibitor"]
CLASS_DRUGS["antimetabolite"] = CLASS_DRUGS["pyrimidine analogue"]
CLASS_DRUGS["antineoplastic agent"] = set().union(*TRIAL_DRUGS.values())


@pytest.fixture(scope="module")
def library():
    return load_library(ROOT / "queries")


@pytest.fixture(scope="module")
def answer(store, library):
    def run_query(name: str, **params) -> list[tuple]:
        table = run(store, library[name], params, BASE)
        return [tuple(None if t is None else t.value for t in row) for row in table.rows]
    return run_query


def trial(nct: str) -> str:
    return f"{BASE}/trial/{nct}"


# ---------------------------------------------------------------------------------------------
# The library itself

def test_library_has_at_least_twenty_queries_each_with_a_summary_and_columns(library):
    assert len(library) >= 20
    for query in library.values():
        assert query.summary and query.columns and query.text.lstrip().startswith("#+")


def test_header_columns_match_the_projection_of_every_query(store, library):
    for query in library.values():
        table = run(store, query, {}, BASE)
        assert table.columns == query.columns, query.name


def test_every_query_has_an_expected_table_in_this_module(library):
    tested = {name.removeprefix("test_q_").replace("_", "-") for name in globals() if name.startswith("test_q_")}
    assert set(library) <= tested, sorted(set(library) - tested)


def test_loader_names_the_file_and_the_problem(tmp_path):
    bad = tmp_path / "broken.rq"
    bad.write_text("#+ name: broken\n#+ summary: [unclosed\nSELECT * {}\n")
    with pytest.raises(QueryError, match=r"broken\.rq.*YAML"):
        load_query(bad)
    bad.write_text("#+ name: other\n#+ summary: s\n#+ columns: [x]\nSELECT ?x {}\n")
    with pytest.raises(QueryError, match="must equal the file name"):
        load_query(bad)
    bad.write_text("#+ name: broken\n#+ summary: s\n#+ params: [{name: p, type: string, default: a}]\n"
                   "#+ columns: [x]\nSELECT ?x {}\n")
    with pytest.raises(QueryError, match="'p' must be projected"):
        load_query(bad)
    bad.write_text("#+ name: broken\n#+ summary: s\n#+ params: [{name: p, type: nct, default: NCT1}]\n"
                   "#+ columns: [p]\nSELECT ?p {}\n")
    with pytest.raises(QueryError, match=r"broken\.rq: .*not an NCT number"):
        load_query(bad)
    header = "#+ name: broken\n#+ summary: s\n#+ params: [{name: p, type: string, default: a}]\n#+ columns: [p, n]\n"
    bad.write_text(header + "SELECT ?p ?n { ?s ?q ?p { SELECT (COUNT(*) AS ?n) { ?x ?y ?p } } }\n")
    with pytest.raises(QueryError, match="'p' is used inside a sub-select"):
        load_query(bad)
    # A sub-select that leaves the parameter alone is fine, and so is the word in a comment or a string.
    bad.write_text(header + "SELECT ?p ?n { ?s ?q ?p # { SELECT ?p }\n { SELECT (COUNT(*) AS ?n) { ?x ?y \"?p\" } } }\n")
    assert load_query(bad).name == "broken"
    bad.unlink()
    (tmp_path / "noheader.rq").write_text("SELECT * {}\n")
    with pytest.raises(QueryError, match=r"noheader\.rq: no `#\+` header"):
        load_library(tmp_path)


def test_parameters_are_typed_and_validated(library):
    query = library["trial-arms"]
    assert bind(query, {"nct": "nct07325539"})["nct"].value == "NCT07325539"
    for bad in ("NCT123", "7325539", "NCT07325539 ", "NCT07325539\" }"):
        if bad.strip().upper() == "NCT07325539":
            continue
        with pytest.raises(QueryError, match="'nct'"):
            bind(query, {"nct": bad})
    with pytest.raises(QueryError, match="no parameter 'colour'"):
        bind(query, {"colour": "red"})
    with pytest.raises(QueryError, match="not one of"):
        bind(library["sites-by-status"], {"status": "RECRUITING } UNION {"})
    for bad in ("2027-13-01", "20261215", "2027W011", "2027-1-1"):
        with pytest.raises(QueryError, match="not a date"):
            bind(library["stale-status"], {"as_of": bad})
    for empty in ("", "  "):
        with pytest.raises(QueryError, match="'drug_name'.*empty"):
            bind(library["trials-by-drug"], {"drug_name": empty})
    assert bind(library["trials-by-drug-class"], {"drug_class": "ctkg:Taxane"})["drug_class"].value == \
        f"{BASE}/ontology/Taxane"


# ---------------------------------------------------------------------------------------------
# Expected tables, one test per query

def test_q_pd1_vegfr_tki_trials(answer):
    assert answer("pd1-vegfr-tki-trials") == [
        (T000, TITLE[T000], "toripalimab", "apatinib", "PHASE2", "ACTIVE_NOT_RECRUITING"),
        (T004, TITLE[T004], "sintilimab", "anlotinib", "PHASE2", "RECRUITING"),
    ]


def test_q_pd1_vegfr_tki_same_regimen(answer):
    # 000 gives apatinib only in the study group; 004 lists no arms but one intervention names both.
    assert answer("pd1-vegfr-tki-same-regimen") == [
        (T000, "arm", "The study group", "toripalimab", "apatinib"),
        (T004, "intervention", "Sintilimab + Anlotinib + taxane-based chemotherapy", "sintilimab", "anlotinib"),
    ]


def test_q_trials_by_drug(answer):
    expected = [("toripalimab", f"{BASE}/drug/toripalimab", nct, TITLE[nct], PHASE[nct], STATUS[nct])
                for nct in (T001, T000, T003)]
    assert answer("trials-by-drug") == expected
    # Any name of the drug finds the same trials: its code name and its brand name.
    assert [row[2:] for row in answer("trials-by-drug", drug_name="JS001")] == [row[2:] for row in expected]
    assert [row[2] for row in answer("trials-by-drug", drug_name="tuoyi")] == [T001, T000, T003]
    assert answer("trials-by-drug", drug_name="no such drug") == []


def test_q_trials_by_drug_class(answer):
    def table(cls):
        return {(row[1], frozenset(row[2].split(", ")), row[3], row[4])
                for row in answer("trials-by-drug-class", drug_class=cls)}

    assert table("ctkg:PD1Inhibitor") == {
        (nct, frozenset(TRIAL_DRUGS[nct] & CLASS_DRUGS["PD-1 inhibitor"]), PHASE[nct], STATUS[nct])
        for nct in TITLE}
    assert table("ctkg:VEGFRTyrosineKinaseInhibitor") == {
        (T000, frozenset({"apatinib"}), "PHASE2", STATUS[T000]), (T004, frozenset({"anlotinib"}), "PHASE2", STATUS[T004])}
    # Subclasses count: a checkpoint inhibitor query finds the PD-1 inhibitors.
    assert {row[0] for row in table("ctkg:ImmuneCheckpointInhibitor")} == set(TITLE)
    assert {row[0]: row[1] for row in table(f"{BASE}/ontology/Taxane")} == {
        T000: {"nab-paclitaxel"}, T001: {"nab-paclitaxel"}, T004: {"docetaxel", "paclitaxel", "nab-paclitaxel"}}


def test_q_trial_counts_by_drug_class(answer):
    got = {row[1]: (int(row[2]), int(row[3])) for row in answer("trial-counts-by-drug-class")}
    expected = {}
    for label, drugs in CLASS_DRUGS.items():
        trials = {nct for nct, given in TRIAL_DRUGS.items() if given & drugs}
        expected[label] = (len(trials), len(drugs))
    assert got == expected


def test_q_trials_for_condition(answer):
    # Esophageal carcinoma includes its narrower conditions (squamous cell, small cell).
    assert answer("trials-for-condition") == [
        ("esophageal carcinoma", T001, TITLE[T001], "small cell carcinoma of the esophagus", STATUS[T001]),
        ("esophageal carcinoma", T000, TITLE[T000], "esophageal squamous cell carcinoma", STATUS[T000]),
    ]
    npc = answer("trials-for-condition", condition_name="Nasopharyngeal Carcinoma")
    assert [row[1] for row in npc] == [T002, T003, T004]
    assert {row[1] for row in answer("trials-for-condition", condition_name="cancer")} == set(TITLE)


def test_q_sites_by_status(answer):
    # Coordinates: the GeoNames coordinates of the city in ontology/concepts/places.yaml. The site's own
    # status: page 001 says "Site Status RECRUITING"; the TrialFinder page (004) gives none.
    assert answer("sites-by-status") == [
        ("RECRUITING", "China", "Guangzhou", "Sun Yat-sen University Cancer Center", T001, "23.11667", "113.25",
         f"{BASE}/place/guangzhou", "RECRUITING"),
        ("RECRUITING", "China", "Zhuhai", "Fifth Affiliated Hospital of Sun Yat-sen University", T004, "22.27694",
         "113.56778", f"{BASE}/place/zhuhai", None),
    ]
    active = answer("sites-by-status", status="ACTIVE_NOT_RECRUITING")
    assert [(row[2], row[3], row[4]) for row in active] == [
        ("Chongqing", "Chongqing University Cancer Hospital", T002),
        ("Guangzhou", "Sun yat-sen University Cancer Center", T000),
    ]
    assert answer("sites-by-status", status="NOT_YET_RECRUITING") == []  # the Veeva page gives no site details


def test_q_trials_by_country(answer):
    assert answer("trials-by-country") == [("China", "4", "4")]


def test_q_sponsors_and_collaborators(answer):
    org = f"{BASE}/organization/"
    assert answer("sponsors-and-collaborators") == [
        (T001, "lead sponsor", "Sun Yat-sen University", "OTHER", org + "sun-yat-sen-university"),
        # The classes as page 001 gives them under "Sponsors".
        (T001, "collaborator", "CSPC Ouyi Pharmaceutical Co., Ltd.", "INDUSTRY", org + "cspc-ouyi-pharmaceutical"),
        (T001, "collaborator", "Shanghai Junshi Bioscience Co., Ltd.", "OTHER", org + "shanghai-junshi-bioscience"),
        (T001, "collaborator", "The First Affiliated Hospital of Zhengzhou University", "OTHER",
         org + "first-affiliated-hospital-zhengzhou-university"),
        (T000, "lead sponsor", "Sun Yat-sen University", "OTHER", org + "sun-yat-sen-university"),
        (T002, "lead sponsor", "Chongqing University Cancer Hospital", "OTHER", org + "chongqing-university-cancer-hospital"),
        (T003, "lead sponsor", "Sun Yat-sen University", "OTHER", org + "sun-yat-sen-university"),
        (T004, "lead sponsor", "Ming-Yuan Chen", None, None),  # a person: not linked to an organization
    ]


def test_q_drug_identifiers(answer):
    # Expected: every non-notation identifier of the drugs given, as the curated drug tables list them.
    from kg.vocabularies import VOCABULARIES, expand

    expected = set()
    for table in (ROOT / "ontology" / "concepts").glob("drugs_*.yaml"):
        for drug in yaml.safe_load(table.read_text()):
            if drug["label"] not in CLASS_DRUGS["antineoplastic agent"]:
                continue
            for vocabulary, xref in (drug.get("xrefs") or {}).items():
                if not VOCABULARIES[vocabulary].notation_only:
                    expected.add((drug["label"], VOCABULARIES[vocabulary].title, str(xref["id"]),
                                  expand(vocabulary, str(xref["id"])), xref["evidence"]))
    got = {row[1:] for row in answer("drug-identifiers")}
    assert got == expected
    assert ("toripalimab", "DrugBank", "DB15043", "https://go.drugbank.com/drugs/DB15043") in {g[:4] for g in got}


def test_q_trials_by_phase_and_status(answer):
    assert answer("trials-by-phase-and-status") == [
        ("NA", "ACTIVE_NOT_RECRUITING", "1"),
        ("PHASE2", "ACTIVE_NOT_RECRUITING", "1"),
        ("PHASE2", "NOT_YET_RECRUITING", "1"),
        ("PHASE2", "RECRUITING", "2"),
    ]


def test_q_trial_arms(answer):
    toripalimab = ("Induction Immunotherapy-Toripalimab", "DRUG", "Toripalimab 240mg iv. drip, Q3W, 2 cycles")
    chemo = ("Induction Chemotherapy-Albumin-paclitaxel combined with cisplatin", "DRUG",
             "Albumin-paclitaxel 260 mg/m2, administered on day 1, combined with cisplatin 25 mg/m2, administered on day 1,2,3.")
    radio = ("Radiotherapy", "RADIATION",
             "Thoracic radiotherapy at a total dose of 50Gy was delivered using the intensity modulated radiation therapy technique.")
    apatinib = ("Apatinib", "DRUG", "Oral apatinib 250mg once daily during induction therapy and concurrent chemoradiotherapy.")
    capecitabine = ("Capecitabine", "DRUG",
                    "Oral capecitabine 1000 mg/m2, twice daily, on days 1-14, every 3 weeks, concurrently with radiotherapy")
    control = [(T000, "The control group", "ACTIVE_COMPARATOR") + i for i in (capecitabine, chemo, toripalimab, radio)]
    study = [(T000, "The study group", "EXPERIMENTAL") + i for i in (apatinib, capecitabine, chemo, toripalimab, radio)]
    assert answer("trial-arms") == control + study
    veeva = answer("trial-arms", nct=T003)
    assert {(row[1], row[2], row[3], row[4]) for row in veeva} == {
        ("LDRT + Toripalimab + GP chemotherapy", "EXPERIMENTAL", name, kind)
        for name, kind in (("Gemcitabine(GEM)", "DRUG"), ("Cisplatin", "DRUG"), ("Toripalimab", "DRUG"),
                           ("LDRT", "RADIATION"))}
    assert answer("trial-arms", nct="NCT00000000") == []


def test_q_eligibility_ranges(answer):
    assert answer("eligibility-ranges") == [
        (T001, "18", "75", "ALL", "false"),
        (T000, "18", "80", "ALL", "false"),
        (T002, "18", "70", "ALL", "false"),
        (T003, "18", "65", "ALL", "false"),
        (T004, None, None, None, None),  # the TrialFinderData page states no age fields (only criteria text)
    ]


def test_q_trial_references(answer):
    rows = answer("trial-references")
    pmids = ["9047250", "15122199", "16334769", "23770008", "24118373", "24726599", "27269741", "29728688",
             "29755117", "30348638", "30508306", "30523282", "30646912", "31068379", "31319389", "32086343",
             "32277740", "32599071", "32636837", "32646394", "32698074"]
    assert [row[1] for row in rows] == pmids
    by_pmid = {row[1]: row for row in rows}
    assert by_pmid["32698074"][2] == "10.1016/j.lfs.2020.118110"
    assert by_pmid["16334769"][2] is None  # its citation carries no DOI
    assert by_pmid["32698074"][4] == "https://pubmed.ncbi.nlm.nih.gov/32698074"
    assert {row[3] for row in rows} == {"BACKGROUND"}
    assert by_pmid["32698074"][5].startswith("Mortezaee K. Immune escape: A critical hallmark in solid tumors.")


def test_q_drugs_given_together(answer):
    expected = {}
    for (nct, _), drugs in REGIMENS.items():
        for a, b in itertools.combinations(sorted(drugs), 2):
            expected.setdefault((a, b), set()).add(nct)
    got = answer("drugs-given-together")
    assert {(a, b): int(n) for a, b, n in got} == {pair: len(trials) for pair, trials in expected.items()}
    assert got[0] == ("cisplatin", "toripalimab", "3")  # 000, 001 and 003: the most frequent pair


def test_q_trials_by_sponsor_class(answer):
    assert answer("trials-by-sponsor-class") == [("OTHER", "4"), ("(not stated)", "1")]


def test_q_organization_trials(answer):
    org = f"{BASE}/organization/"
    got = {(row[0].removeprefix(org), row[2], row[3]) for row in answer("organization-trials")}
    assert got == {
        ("sun-yat-sen-university", "lead sponsor", T000), ("sun-yat-sen-university", "lead sponsor", T001),
        ("sun-yat-sen-university", "lead sponsor", T003),
        ("shanghai-junshi-bioscience", "collaborator", T001), ("cspc-ouyi-pharmaceutical", "collaborator", T001),
        ("first-affiliated-hospital-zhengzhou-university", "collaborator", T001),
        ("chongqing-university-cancer-hospital", "lead sponsor", T002),
        ("chongqing-university-cancer-hospital", "site", T002),
        ("sun-yat-sen-university-cancer-center", "site", T000), ("sun-yat-sen-university-cancer-center", "site", T001),
        ("fifth-affiliated-hospital-sun-yat-sen-university", "site", T004),
    }


@pytest.fixture(scope="module")
def curation_store(tmp_path_factory):
    """The shipped records plus one hand-written record whose drug and condition the tables do not know."""
    from kg.build import build
    from kg.settings import Settings
    from kg.store import open_read_only

    root = tmp_path_factory.mktemp("curation")
    settings = Settings(store_dir=root / "store")
    build(settings, [ROOT / "data", ROOT / "tests" / "fixtures" / "curation"], allow_invalid=True)
    return open_read_only(settings.store_dir)


def test_q_curation_queue_interventions(answer, curation_store, library):
    assert answer("curation-queue-interventions") == []  # every drug intervention of the samples resolved
    table = run(curation_store, library["curation-queue-interventions"], {}, BASE)
    assert [[t.value for t in row] for row in table.rows] == [
        ["NCT09900001", "XQ-4417", "DRUG", "An investigational compound, 10 mg daily"]]


def test_q_curation_queue_conditions(answer, curation_store, library):
    assert answer("curation-queue-conditions") == []
    table = run(curation_store, library["curation-queue-conditions"], {}, BASE)
    assert [[t.value for t in row] for row in table.rows] == [["Glorbic Syndrome", "1", "NCT09900001"]]


def test_multi_phase_trials_give_one_row_with_both_phases(curation_store, library):
    # The hand-written record NCT09900001 is registered as PHASE1 and PHASE2 and gives toripalimab.
    table = run(curation_store, library["trials-by-drug"], {}, BASE)
    rows = [[t.value for t in row] for row in table.rows if row[2].value == "NCT09900001"]
    assert len(rows) == 1 and set(rows[0][4].split("/")) == {"PHASE1", "PHASE2"}


def test_no_query_repeats_a_row_on_real_records(tmp_path_factory, library):
    """Real registry records (25 sites, industry sponsors, organizations and places no concept table names)
    must not make any query repeat a row; those organizations and places are described once, in the
    entities graph, so no triple is in two graphs and the union default graph repeats none."""
    from kg.build import build
    from kg.settings import Settings
    from kg.store import open_read_only

    root = tmp_path_factory.mktemp("mixed")
    settings = Settings(store_dir=root / "store", write_dumps=False)
    build(settings, [ROOT / "data", ROOT / "tests" / "fixtures" / "real", ROOT / "tests" / "fixtures" / "curation"],
          allow_invalid=True)
    mixed = open_read_only(settings.store_dir)
    for query in library.values():
        rows = [tuple(None if t is None else t.value for t in row) for row in run(mixed, query, {}, BASE).rows]
        assert len(rows) == len(set(rows)), query.name
    sites = run(mixed, library["sites-by-status"], {"status": "COMPLETED"}, BASE)
    assert len(sites.rows) == 25  # NCT06131398 lists 25 sites, each kept even without a facility name
    assert not mixed.query("ASK { GRAPH ?g1 { ?s ?p ?o } GRAPH ?g2 { ?s ?p ?o } FILTER(STR(?g1) < STR(?g2)) }")
    uncurated = f"""SELECT ?g (COUNT(DISTINCT ?x) AS ?n) {{ GRAPH ?g {{ ?x <{BASE}/ontology/matchMethod> "unmatched" ;
                    a ?type FILTER(?type IN (<{BASE}/ontology/Organization>, <{BASE}/ontology/Place>)) }} }} GROUP BY ?g"""
    assert {row["g"].value: int(row["n"].value) for row in mixed.query(uncurated)}.keys() == {f"{BASE}/graph/entities"}


def test_q_missing_dates(answer):
    assert answer("missing-dates") == [
        (T003, "completion date", "NOT_YET_RECRUITING", "veeva-page"),
        (T003, "start date", "NOT_YET_RECRUITING", "veeva-page"),
        (T004, "completion date", "RECRUITING", "trialfinder-page"),
        (T004, "start date", "RECRUITING", "trialfinder-page"),
    ]


def test_q_stale_status(answer):
    assert answer("stale-status", as_of="2026-11-21") == []
    assert answer("stale-status", as_of="2027-01-01") == [
        ("2027-01-01", T000, "ACTIVE_NOT_RECRUITING", "2026-12-01", "2025-11-17"),
        ("2027-01-01", T001, "RECRUITING", "2026-12-31", "2025-07-16"),
    ]
    assert [row[1] for row in answer("stale-status", as_of="2030-01-01")] == [T000, T001, T002]


def test_q_drug_targets(answer):
    # Targets as the drug tables give them (anlotinib: KDR and FLT4; apatinib: KDR; the PD-1 antibodies: PDCD1).
    got = {(row[1], row[3], frozenset(row[4].split(", "))) for row in answer("drug-targets")}
    pd1 = frozenset({"PD-1 inhibitor", "monoclonal antibody"})
    tki = frozenset({"VEGFR tyrosine-kinase inhibitor"})
    assert got == {("anlotinib", "FLT4", tki), ("anlotinib", "KDR", tki), ("apatinib", "KDR", tki),
                   ("sintilimab", "PDCD1", pd1), ("tislelizumab", "PDCD1", pd1), ("toripalimab", "PDCD1", pd1)}


def test_q_trials_by_target(answer):
    assert answer("trials-by-target") == [("KDR", T000, "apatinib"), ("KDR", T004, "anlotinib")]
    assert [row[1] for row in answer("trials-by-target", target_symbol="pdcd1")] == [T001, T000, T002, T003, T004]


def test_q_dataset_summary(answer):
    # arms 2+1+1+1+0, interventions 5+4+1+4+1, 12 drugs, 3 conditions, sites 1+1+1+0+1, references 15+21+1.
    assert answer("dataset-summary") == [("5", "5", "15", "12", "3", "4", "37")]


def test_q_drugs_without_identifiers(answer):
    got = answer("drugs-without-identifiers")
    expected = set()
    for table in (ROOT / "ontology" / "concepts").glob("drugs_*.yaml"):
        expected |= {d["label"] for d in yaml.safe_load(table.read_text()) if not d.get("xrefs")}
    assert {row[1] for row in got} == expected
    assert {row[2] for row in got} == {"0"}


# ---------------------------------------------------------------------------------------------
# Injection: parameters carrying SPARQL are refused or bound as plain values

INJECTIONS = ['"} ; DROP ALL ; {', '> } UNION { ?s ?p ?o }', 'toripalimab" } UNION { ?drug ?p ?o } #',
              "') } INSERT DATA { <urn:x> <urn:y> <urn:z> } #"]


@pytest.mark.parametrize("value", INJECTIONS)
def test_string_parameters_carrying_sparql_are_plain_values(answer, value):
    assert answer("trials-by-drug", drug_name=value) == []
    assert answer("trials-for-condition", condition_name=value) == []


@pytest.mark.parametrize("value", INJECTIONS)
def test_typed_parameters_carrying_sparql_are_refused(library, value):
    for name, param in (("trial-arms", "nct"), ("trials-by-drug-class", "drug_class"), ("sites-by-status", "status"),
                        ("stale-status", "as_of")):
        with pytest.raises(QueryError):
            bind(library[name], {param: value})


# ---------------------------------------------------------------------------------------------
# The CLI

def kg(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "kg.cli", *args], capture_output=True, text=True, cwd=cwd)


def test_cli_lists_the_queries(library):
    out = kg("query", "--list")
    assert out.returncode == 0, out.stderr
    for name in library:
        assert name in out.stdout
    assert f"{len(library)} named queries" in out.stdout


def test_cli_runs_a_query_in_each_format(built):
    settings, _ = built
    store = ["--store", str(settings.store_dir)]
    table = kg("query", "pd1-vegfr-tki-trials", *store)
    assert table.returncode == 0, table.stderr
    assert T000 in table.stdout and T004 in table.stdout and "(2 rows)" in table.stdout
    rows = list(csv.DictReader(io.StringIO(kg("query", "trials-by-drug", "--param", "drug_name=JS001",
                                              "--format", "csv", *store).stdout)))
    assert [r["nct"] for r in rows] == [T001, T000, T003]
    data = json.loads(kg("query", "trial-arms", "--param", f"nct={T003}", "--format", "json", *store).stdout)
    assert {b["intervention"]["value"] for b in data["results"]["bindings"]} == {
        "Gemcitabine(GEM)", "Cisplatin", "Toripalimab", "LDRT"}
    tsv = kg("query", "trials-by-target", "--format", "tsv", *store).stdout.splitlines()
    assert tsv[0] == "?target_symbol\t?nct\t?drugs" and len(tsv) == 3


def test_cli_refuses_bad_parameters_with_a_clear_message(built):
    settings, _ = built
    out = kg("query", "trial-arms", "--param", "nct=NCT1", "--store", str(settings.store_dir))
    assert out.returncode == 2 and "parameter 'nct': not an NCT number" in out.stderr
    out = kg("query", "no-such-query", "--store", str(settings.store_dir))
    assert out.returncode == 2 and "no named query 'no-such-query'" in out.stderr


# ---------------------------------------------------------------------------------------------
# The API

def test_api_catalogue_lists_every_query_with_its_parameters(server, library):
    catalogue = httpx.get(f"{server}/queries").json()
    assert [q["name"] for q in catalogue] == list(library)
    by_name = {q["name"]: q for q in catalogue}
    assert by_name["trial-arms"]["params"][0]["type"] == "nct"
    assert by_name["pd1-vegfr-tki-trials"]["columns"][0] == "nct"
    assert "SELECT" in by_name["pd1-vegfr-tki-trials"]["sparql"]


def test_api_answers_in_json_csv_and_tsv(server):
    url = f"{server}/queries/pd1-vegfr-tki-trials"
    data = httpx.get(url, headers={"Accept": "application/sparql-results+json"}).json()
    assert [b["nct"]["value"] for b in data["results"]["bindings"]] == [T000, T004]
    response = httpx.get(url, params={"format": "csv"})
    assert response.headers["content-type"].startswith("text/csv")
    assert [r["nct"] for r in csv.DictReader(io.StringIO(response.text))] == [T000, T004]
    response = httpx.get(url, headers={"Accept": "text/tab-separated-values"})
    lines = response.text.splitlines()
    assert lines[0].startswith("?nct\t?title") and lines[1].startswith(f'"{T000}"')
    xml = httpx.get(url, params={"format": "xml"})
    assert xml.headers["content-type"].startswith("application/sparql-results+xml") and T004 in xml.text


def test_api_binds_parameters(server):
    data = httpx.get(f"{server}/queries/trials-by-drug", params={"drug_name": "JS001"}).json()
    assert [b["nct"]["value"] for b in data["results"]["bindings"]] == [T001, T000, T003]
    data = httpx.get(f"{server}/queries/trials-by-drug-class",
                     params={"drug_class": "ctkg:VEGFRTyrosineKinaseInhibitor"}).json()
    assert [b["nct"]["value"] for b in data["results"]["bindings"]] == [T000, T004]


@pytest.mark.parametrize("value", INJECTIONS)
def test_api_injection_attempts_fail_harmlessly(server, value):
    plain = httpx.get(f"{server}/queries/trials-by-drug", params={"drug_name": value})
    assert plain.status_code == 200 and plain.json()["results"]["bindings"] == []
    refused = httpx.get(f"{server}/queries/trial-arms", params={"nct": value})
    assert refused.status_code == 400 and "parameter 'nct'" in refused.text
    # ... and the data is all still there.
    after = httpx.get(f"{server}/queries/dataset-summary").json()["results"]["bindings"][0]
    assert after["trials"]["value"] == "5"


def test_api_refuses_graph_formats_for_a_table(server):
    url = f"{server}/queries/pd1-vegfr-tki-trials"
    assert httpx.get(url, params={"format": "ttl"}).status_code == 406
    assert httpx.get(url, headers={"Accept": "text/turtle"}).status_code == 406


def test_api_errors(server):
    assert httpx.get(f"{server}/queries/no-such-query").status_code == 404
    unknown = httpx.get(f"{server}/queries/trial-arms", params={"colour": "red"})
    assert unknown.status_code == 400 and "no parameter 'colour'" in unknown.text
    twice = httpx.get(f"{server}/queries/trial-arms?nct={T000}&nct={T003}")
    assert twice.status_code == 400


def test_openapi_documents_each_query_and_its_parameters(server):
    schema = httpx.get(f"{server}/openapi.json").json()
    operation = schema["paths"]["/queries/sites-by-status"]["get"]
    status = next(p for p in operation["parameters"] if p["name"] == "status")
    assert "RECRUITING" in status["schema"]["enum"] and status["schema"]["default"] == "RECRUITING"
    nct = next(p for p in schema["paths"]["/queries/trial-arms"]["get"]["parameters"] if p["name"] == "nct")
    assert nct["schema"]["pattern"] == r"^NCT\d{8}$"


def test_docs_describe_every_query(library):
    docs = (ROOT / "docs" / "queries.md").read_text(encoding="utf-8")
    for query in library.values():
        assert f"\n## {query.name}\n" in docs, f"docs/queries.md lacks {query.name}: run `kg query --docs docs/queries.md`"
        assert query.summary in docs
