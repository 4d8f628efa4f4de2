"""The synthetic record generator (benchmarks/synth.py): deterministic, read back by our reader,
malformed records refused one by one, counts within the stated ranges, names the resolver knows."""

from __future__ import annotations

import importlib.util
import random
import re
import sys
import zipfile
from collections import Counter

import pytest
from conftest import ROOT

from kg.concepts import load_concepts
from kg.model import Age, AgeUnit
from kg.resolve import Resolver, edit_distance, normalise
from kg.settings import Settings
from kg.sources import RecordFailure, read_records

_spec = importlib.util.spec_from_file_location("synth", ROOT / "benchmarks" / "synth.py")
synth = importlib.util.module_from_spec(_spec)
sys.modules["synth"] = synth  # dataclasses look their module up there
_spec.loader.exec_module(synth)

COUNT = 300
PARTIAL_DATE = re.compile(r"^\d{4}-\d{2}(-\d{2})?$")
DRUG_LIKE = ("curated", "qualified", "combination", "misspelled", "unknown")

# What the reader's error must say for each kind of damage (written from kg/sources and kg/model).
EXPECTED_ERRORS = {
    "bad-nct-id": "nct_id",
    "enrollment-not-a-number": "enrollment_count",
    "unknown-sponsor-class": "'PHARMA'",
    "unknown-date-type": "'APPROXIMATE'",
    "unknown-std-age": "'TEEN'",
    "date-not-iso": "'May 2023'",
    "age-not-a-quantity": "not an age",
    "healthy-volunteers-not-boolean": "healthy_volunteers",
    "conditions-not-a-list": "conditions",
    "pmid-not-digits": "pmid",
    "latitude-out-of-range": "lat",
    "intervention-without-name": "missing field 'name'",
    "no-protocol-section": "no protocolSection",
    "invalid-json": "malformed JSON",
    "not-utf8": "not UTF-8",
    "empty-member": "empty file",
}


@pytest.fixture(scope="module")
def tables():
    return load_concepts(Settings().ontology_dir / "concepts")


@pytest.fixture(scope="module")
def generated(tmp_path_factory, tables):
    """300 records with 5% malformed, written as a ZIP and read back by the real reader."""
    path = tmp_path_factory.mktemp("synth") / "studies.zip"
    made = list(synth.records(COUNT, seed=11, malformed_rate=0.05, tables=tables))
    synth.write_zip(path, iter(made))
    read = list(read_records([path]))
    return {"path": path, "made": made, "read": read,
            "trials": [r for r in read if not isinstance(r, RecordFailure)],
            "failures": [r for r in read if isinstance(r, RecordFailure)]}


def test_same_seed_and_count_give_a_byte_identical_zip(tmp_path, tables):
    """Two runs with one seed write the same bytes; another seed writes other records; a longer run starts alike."""
    def write(name, count, seed):
        path = tmp_path / name
        synth.write_zip(path, synth.records(count, seed=seed, malformed_rate=0.1, tables=tables))
        return path

    first, again, other, longer = write("a.zip", 40, 5), write("b.zip", 40, 5), write("c.zip", 40, 6), write("d.zip", 60, 5)
    assert first.read_bytes() == again.read_bytes()
    assert first.read_bytes() != other.read_bytes()
    with zipfile.ZipFile(first) as short, zipfile.ZipFile(longer) as long_:
        assert short.namelist() == long_.namelist()[:40]
        assert all(short.read(name) == long_.read(name) for name in short.namelist())


def test_the_zip_is_laid_out_like_the_bulk_download(generated):
    """One NCTxxxxxxxx.json member per record, no folders, every NCT id distinct."""
    with zipfile.ZipFile(generated["path"]) as archive:
        names = archive.namelist()
    assert len(names) == COUNT == len(set(names))
    assert all(re.fullmatch(r"NCT\d{8}\.json", name) for name in names)


def test_every_good_record_is_read_and_each_malformed_one_fails_once(generated):
    """Good records all come back as trials; each malformed member gives exactly one failure naming it."""
    malformed = {r.member for r in generated["made"] if r.malformed}
    good = {r.nct_id for r in generated["made"] if not r.malformed}
    assert len(malformed) >= 5  # 5% of 300: a handful at least, or the rate is not applied
    failed = Counter(f.member for f in generated["failures"])
    assert set(failed) == malformed
    assert set(failed.values()) == {1}
    assert all(f.file.endswith("studies.zip") for f in generated["failures"])
    assert sorted(t.nct_id for t in generated["trials"]) == sorted(good)
    assert len(generated["trials"]) + len(generated["failures"]) == COUNT


@pytest.mark.parametrize("kind", sorted(synth.MALFORMED))
def test_each_kind_of_damage_is_refused_with_a_clear_error(tmp_path, tables, kind):
    """A record damaged one way gives one RecordFailure naming its ZIP member and the problem."""
    maker = synth.StudyMaker(3, synth.NamePools.from_tables(tables))
    study, truth = maker.study(7)
    path = tmp_path / "one.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{truth['nct_id']}.json", synth.encode(study, kind, random.Random(1)))
    (failure,) = read_records([path])
    assert isinstance(failure, RecordFailure)
    assert failure.member == f"{truth['nct_id']}.json"
    assert EXPECTED_ERRORS[kind] in str(failure), str(failure)


def test_every_kind_of_damage_has_an_expected_error():
    """A new kind of damage needs its expected error above (the parametrised test covers only listed kinds)."""
    assert set(EXPECTED_ERRORS) == set(synth.MALFORMED)


def test_counts_stay_within_the_stated_ranges_and_are_skewed(generated):
    """Arms 1-6, interventions 1-8, sites 1-50, collaborators 0-3; most trials small, a few large."""
    trials = generated["trials"]
    arms = [len(t.arms) for t in trials]
    interventions = [len(t.interventions) for t in trials]
    sites = [len(t.locations) for t in trials]
    collaborators = [len(t.collaborators) for t in trials]
    assert min(arms) == 1 and max(arms) <= 6
    assert min(interventions) == 1 and max(interventions) <= 8
    assert min(sites) == 1 and 10 <= max(sites) <= 50
    assert min(collaborators) == 0 and max(collaborators) <= 3
    assert sum(a <= 2 for a in arms) / len(arms) >= 0.6
    assert sum(s == 1 for s in sites) / len(sites) >= 0.25
    assert len({loc.country for t in trials for loc in t.locations}) >= 8
    assert len({t.nct_id for t in trials}) == len(trials)


def test_arms_name_interventions_the_trial_lists(generated):
    """Every arm's interventionNames entry is "<Type>: <name>" of an intervention of the same trial."""
    for trial in generated["trials"]:
        listed = {i.arm_reference for i in trial.interventions}
        labels = {a.label for a in trial.arms}
        for arm in trial.arms:
            assert set(arm.intervention_names) <= listed, (trial.nct_id, arm.intervention_names)
        for intervention in trial.interventions:
            assert intervention.arm_group_labels and set(intervention.arm_group_labels) <= labels


def test_fields_take_v2_shapes_and_agree(generated):
    """Partial dates in order, ages as quantities, sponsors with a v2 class, references with PMIDs and DOIs."""
    trials = generated["trials"]
    starts = [t.start_date.date for t in trials]
    assert any(len(d) == 7 for d in starts) and any(len(d) == 10 for d in starts)
    for t in trials:
        dates = [d.date for d in (t.start_date, t.primary_completion_date, t.completion_date) if d]
        assert all(PARTIAL_DATE.match(d) for d in dates)
        assert dates == sorted(dates), (t.nct_id, dates)
        assert t.lead_sponsor is not None and t.lead_sponsor.agency_class is not None
        assert t.enrollment_count is None or t.enrollment_count > 0
        assert t.eligibility.inclusion and t.eligibility.exclusion
        assert t.eligibility.sex in ("ALL", "FEMALE", "MALE")
        if t.eligibility.minimum_age and t.eligibility.maximum_age:
            assert t.eligibility.minimum_age.in_years < t.eligibility.maximum_age.in_years
    assert any(t.eligibility.minimum_age == Age(value=18, unit=AgeUnit.YEARS) for t in trials)
    assert {t.study_type for t in trials} >= {"INTERVENTIONAL", "OBSERVATIONAL"}
    assert len({t.overall_status for t in trials}) >= 6
    assert {c.agency_class for t in trials for c in [t.lead_sponsor, *t.collaborators]} >= {"INDUSTRY", "OTHER", "NIH"}
    references = [r for t in trials for r in t.references]
    assert references and all(r.pmid is None or re.fullmatch(r"\d{8}", r.pmid) for r in references)
    assert any(r.doi and r.doi.startswith("10.5555/") for r in references)


def test_eligibility_text_splits_into_the_items_written(generated):
    """The reader finds as many inclusion and exclusion items as the generator wrote."""
    truth = {r.nct_id: r.truth["eligibility"] for r in generated["made"]}
    for trial in generated["trials"]:
        assert len(trial.eligibility.inclusion) == truth[trial.nct_id]["inclusion"]
        assert len(trial.eligibility.exclusion) == truth[trial.nct_id]["exclusion"]


def test_intervention_names_mix_curated_names_typos_and_unknowns(generated, tables):
    """Every kind of drug name occurs; typos are one slip from a table name without being one."""
    names = [i for r in generated["made"] for i in r.truth["interventions"]]
    kinds = Counter(i["kind"] for i in names)
    assert all(kinds[kind] >= 15 for kind in DRUG_LIKE), kinds
    assert kinds["non-drug"] >= 15
    table_names = {normalise(n) for c in tables["drug"].values() for n, _ in c.names}
    for item in names:
        if item["kind"] == "misspelled":
            plain = normalise(item["name"])
            assert plain not in table_names
            assert min(edit_distance(plain, n) for n in table_names if abs(len(n) - len(plain)) <= 2) <= 2
    combined = [i["name"] for i in names if i["kind"] == "combination"]
    assert any(" + " in n for n in combined) and all(len(i["concepts"]) >= 2 for i in names if i["kind"] == "combination")


def test_the_resolver_finds_the_drugs_and_conditions_the_names_came_from(generated, tables):
    """Names built from the tables resolve to their concepts; unknown ones resolve to nothing."""
    resolver = Resolver(tables)
    hits: Counter = Counter()
    totals: Counter = Counter()
    for record in generated["made"]:
        for item in record.truth["interventions"]:
            if item["kind"] == "non-drug":
                continue
            found = {m.concept.id for m in resolver.drugs_in(item["name"])}
            totals[item["kind"]] += 1
            hits[item["kind"]] += set(item["concepts"]) <= found if item["concepts"] else not found
            totals["drug-like"] += 1
            hits["drug-like"] += bool(found)
        for condition in record.truth["conditions"]:
            found = {m.concept.id for m in resolver.condition(condition["text"]).matches}
            key = f"condition-{condition['kind']}"
            totals[key] += 1
            hits[key] += condition["concept"] in found if condition["concept"] else not found
    share = {key: hits[key] / totals[key] for key in totals}
    for kind in ("curated", "qualified", "combination", "condition-curated", "condition-qualified"):
        assert share[kind] >= 0.95, (kind, share)
    assert share["unknown"] >= 0.95 and share["condition-unknown"] >= 0.95, share  # unknown stays unknown
    assert share["condition-misspelled"] >= 0.5, share  # the condition resolver corrects typos
    assert share["drug-like"] >= 0.6, share  # a good share of all drug-like names resolve


def test_the_command_writes_a_zip_and_refuses_a_bad_rate(tmp_path, capsys):
    """`synth.py --count 20 --out x.zip` writes 20 members; a malformed rate above 1 is a usage error."""
    out = tmp_path / "x.zip"
    assert synth.main(["--count", "20", "--seed", "2", "--out", str(out)]) == 0
    with zipfile.ZipFile(out) as archive:
        assert len(archive.namelist()) == 20
    assert "20 records" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        synth.main(["--count", "20", "--out", str(tmp_path / "y.zip"), "--malformed-rate", "2"])
    assert exit_info.value.code == 2
    assert not (tmp_path / "y.zip").exists()
