"""Realistic synthetic ClinicalTrials.gov API v2 records, for benchmarks.

    .venv/bin/python benchmarks/synth.py --count 10000 --seed 1 --out var/synth-10k.zip [--malformed-rate 0.002]

Writes a ZIP laid out like the registry's bulk JSON download: one v2 study object per member,
named ``NCTxxxxxxxx.json``, which ``kg.sources`` reads member by member (``read_raw``).

What the records look like, and why:
- Names come from the curated concept tables (``ontology/concepts/*.yaml``), so a build
  resolves most of them: drug labels, synonyms, code names and brand names, written as
  registries write them ("Toripalimab", "SHR-1210"), with qualifiers ("Anlotinib Capsules"),
  in combinations ("Toripalimab + Anlotinib"), with one-letter typos, and a share of names
  no table holds (other real drugs, made-up development codes), which must stay unresolved.
- Counts follow the registry's skew: most trials have one or two arms and few sites; a few
  have many (arms 1-6, interventions 1-8, sites 1-50, collaborators 0-3).
- Statuses, phases and dates agree with each other (a COMPLETED trial has ACTUAL dates in the
  past; start <= primary completion <= completion), so valid records pass the SHACL shapes.
- PubMed ids are random 8-digit numbers and DOIs use the 10.5555 test prefix: they are
  synthetic and point at nothing real. E-mail addresses are under example.org.
- A configurable share of records is malformed in one of the ways ``MALFORMED`` lists; each
  of those is a record our reader must refuse with one error naming its ZIP member.

Deterministic: record ``i`` is drawn from its own generator seeded by ``(seed, i)``, and the
ZIP carries fixed timestamps, so the same seed and count (and the same concept tables) give a
byte-identical file; a larger count only adds records after the same first ones. Streaming:
one record is in memory at a time (the ZIP's central directory, a small entry per member,
is the only thing that grows).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import string
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from kg.concepts import ConceptTables, load_concepts
from kg.resolve import normalise
from kg.settings import Settings

# The registry as of this day: decides which dates are past (ACTUAL) or future (ESTIMATED).
SNAPSHOT = (2026, 11, 1)
# NCT ids are drawn without repeats from NCT00000000..NCT07999999 by an affine bijection.
ID_SPACE = 8_000_000
ID_STRIDE = 4_398_211  # coprime with ID_SPACE (odd, not a multiple of 5): every index gets its own id
ZIP_TIME = (2026, 1, 1, 0, 0, 0)


def weighted(rng: random.Random, table: dict) -> Any:
    """One key of ``{value: weight}`` (a plain walk: tables are small and this runs ~25 times a record)."""
    pick = rng.random() * sum(table.values())
    for value, weight in table.items():
        pick -= weight
        if pick < 0:
            return value
    return value


# ---------------------------------------------------------------------------- distributions

ARMS = {1: 34, 2: 40, 3: 12, 4: 7, 5: 4, 6: 3}
INTERVENTIONS = {1: 30, 2: 30, 3: 17, 4: 10, 5: 6, 6: 4, 7: 2, 8: 1}
COLLABORATORS = {0: 55, 1: 25, 2: 12, 3: 8}
CONDITIONS = {1: 55, 2: 25, 3: 12, 4: 8}
REFERENCES = {0: 60, 1: 18, 2: 10, 3: 6, 4: 4, 5: 2}
STUDY_TYPES = {"INTERVENTIONAL": 78, "OBSERVATIONAL": 20, "EXPANDED_ACCESS": 2}
STATUSES = {"COMPLETED": 38, "RECRUITING": 19, "UNKNOWN": 12, "ACTIVE_NOT_RECRUITING": 8, "TERMINATED": 7,
            "NOT_YET_RECRUITING": 7, "WITHDRAWN": 4, "ENROLLING_BY_INVITATION": 3, "SUSPENDED": 2}
EXPANDED_ACCESS_STATUSES = {"AVAILABLE": 5, "NO_LONGER_AVAILABLE": 3, "APPROVED_FOR_MARKETING": 1,
                            "TEMPORARILY_NOT_AVAILABLE": 1}
PHASES = {("PHASE1",): 16, ("PHASE2",): 22, ("PHASE3",): 12, ("PHASE4",): 8, ("EARLY_PHASE1",): 2,
          ("NA",): 30, ("PHASE1", "PHASE2"): 7, ("PHASE2", "PHASE3"): 3}
SPONSOR_CLASSES_WEIGHTS = {"table": 12, "known": 58, "person": 6, "unknown": 24}
# Which kind of name an intervention of a drug-like type carries.
DRUG_NAME_KINDS = {"curated": 52, "qualified": 13, "combination": 12, "misspelled": 9, "unknown": 14}
CONDITION_KINDS = {"curated": 50, "qualified": 12, "misspelled": 8, "unknown": 30}

# ---------------------------------------------------------------------------- word lists

QUALIFIERS = ("{} Injection", "{} for Injection", "{} Capsules", "{} Tablets", "{} 200 mg", "{} 10 mg/kg",
              "Oral {}", "Intravenous {}", "{} (IV)", "{} maintenance")
COMBINERS = (" + ", " plus ", " combined with ", " and ", "/", " + ")
# Real drugs that the concept tables do not hold: a build must keep them as unresolved labels.
UNKNOWN_DRUGS = ("Metformin", "Aspirin", "Atorvastatin", "Dexamethasone", "Ondansetron", "Bevacizumab",
                 "Rituximab", "Osimertinib", "Olaparib", "Temozolomide", "Cyclophosphamide", "Doxorubicin",
                 "Irinotecan", "Letrozole", "Tamoxifen", "Vitamin C", "Lidocaine", "Midazolam", "Heparin")
OTHER_INTERVENTIONS = {
    "RADIATION": ("Intensity-Modulated Radiotherapy", "Stereotactic Body Radiation Therapy", "Radiotherapy",
                  "Proton Beam Therapy", "Whole Brain Radiotherapy"),
    "PROCEDURE": ("Surgery", "Radical Resection", "Lymph Node Dissection", "Tumour Biopsy", "Endoscopic Resection"),
    "BEHAVIORAL": ("Exercise Programme", "Nutrition Counselling", "Mindfulness Training", "Smoking Cessation Support"),
    "DEVICE": ("Wearable Activity Tracker", "Scalp Cooling Device", "Continuous Glucose Monitor"),
    "DIAGNOSTIC_TEST": ("PET-CT", "Circulating Tumour DNA Assay", "Contrast-Enhanced MRI"),
    "DIETARY_SUPPLEMENT": ("Vitamin D3", "Omega-3 Fatty Acids", "Oral Nutritional Supplement"),
    "OTHER": ("Placebo", "Best Supportive Care", "Standard of Care", "Questionnaire", "Blood Sample Collection"),
}
OTHER_TYPES = {"RADIATION": 30, "PROCEDURE": 20, "OTHER": 25, "BEHAVIORAL": 8, "DEVICE": 6,
               "DIAGNOSTIC_TEST": 6, "DIETARY_SUPPLEMENT": 5}
UNKNOWN_CONDITIONS = ("Breast Cancer", "Hepatocellular Carcinoma", "Non-small Cell Lung Cancer", "Colorectal Cancer",
                      "Gastric Cancer", "Glioblastoma", "Melanoma", "Type 2 Diabetes Mellitus", "Hypertension",
                      "Asthma", "Major Depressive Disorder", "Rheumatoid Arthritis", "COVID-19", "Heart Failure",
                      "Chronic Kidney Disease", "Pancreatic Cancer", "Ovarian Cancer", "Lymphoma")
CONDITION_QUALIFIERS = ("Recurrent", "Metastatic", "Locally Advanced", "Recurrent or Metastatic", "Advanced")

# Sponsors: (name, v2 class). Real organizations that no concept table holds.
KNOWN_SPONSORS = (
    ("Amgen", "INDUSTRY"), ("Merck Sharp & Dohme LLC", "INDUSTRY"), ("Bristol-Myers Squibb", "INDUSTRY"),
    ("AstraZeneca", "INDUSTRY"), ("Hoffmann-La Roche", "INDUSTRY"), ("Jiangsu HengRui Medicine Co., Ltd.", "INDUSTRY"),
    ("BeiGene", "INDUSTRY"), ("Innovent Biologics (Suzhou) Co. Ltd.", "INDUSTRY"), ("Pfizer", "INDUSTRY"),
    ("National Cancer Institute (NCI)", "NIH"), ("National Heart, Lung, and Blood Institute (NHLBI)", "NIH"),
    ("VA Office of Research and Development", "FED"), ("Centers for Disease Control and Prevention", "FED"),
    ("ECOG-ACRIN Cancer Research Group", "NETWORK"), ("Children's Oncology Group", "NETWORK"),
    ("Assistance Publique - Hôpitaux de Paris", "OTHER"), ("Fudan University", "OTHER"),
    ("Peking Union Medical College Hospital", "OTHER"), ("Tata Memorial Hospital", "OTHER"),
    ("Gustave Roussy, Cancer Campus, Grand Paris", "OTHER"), ("M.D. Anderson Cancer Center", "OTHER"),
    ("Instituto Nacional de Cancer, Brazil", "OTHER_GOV"), ("Ministry of Health, Malaysia", "OTHER_GOV"),
)
ORG_KIND_CLASS = {"company": "INDUSTRY"}  # anything else in the organization table sponsors as OTHER
GIVEN_NAMES = ("Wei", "Li", "Ming", "Xiaoling", "Anna", "James", "Maria", "David", "Sofia", "Hiroshi", "Min-jun",
               "Priya", "Lucas", "Emma", "Ahmed", "Olga", "Carlos", "Yuki", "Fatima", "Tomasz")
FAMILY_NAMES = ("Zhang", "Wang", "Chen", "Liu", "Smith", "Garcia", "Müller", "Rossi", "Tanaka", "Kim", "Patel",
                "Silva", "Dubois", "Nowak", "Jansen", "Ivanova", "Okafor", "Hernández", "Nguyen", "Cohen")
DEGREES = ("MD", "MD, PhD", "PhD", "MD, MPH", "MBBS")
STAGES = ("Stage III", "Stage IV", "Locally Advanced", "Recurrent", "Metastatic")
JOURNALS = ("J Clin Oncol", "Lancet Oncol", "Ann Oncol", "Cancer Res", "Clin Cancer Res", "JAMA Oncol",
            "BMC Cancer", "Front Oncol", "N Engl J Med", "Eur J Cancer")

# Cities: (city, state, country, lat, lon, facilities). The cities of ontology/concepts/places.yaml
# come first (their coordinates are taken from the table when it has them); the others are real
# cities with approximate coordinates and real hospitals, so sites spread across countries.
CITIES = (
    ("Guangzhou", "Guangdong", "China", 23.11667, 113.25,
     ("Sun Yat-sen University Cancer Center", "The First Affiliated Hospital, Sun Yat-sen University",
      "Guangdong Provincial People's Hospital")),
    ("Zhuhai", "Guangdong", "China", 22.27694, 113.56778, ("The Fifth Affiliated Hospital of Sun Yat-sen University",)),
    ("Chongqing", "Chongqing", "China", 29.56278, 106.55278, ("Chongqing University Cancer Hospital",)),
    ("Zhengzhou", "Henan", "China", 34.75778, 113.64861,
     ("The First Affiliated Hospital of Zhengzhou University", "Henan Cancer Hospital")),
    ("Shanghai", "Shanghai", "China", 31.22222, 121.45806,
     ("Fudan University Shanghai Cancer Center", "Shanghai Chest Hospital")),
    ("Beijing", "Beijing", "China", 39.9075, 116.39723,
     ("Cancer Hospital, Chinese Academy of Medical Sciences", "Peking Union Medical College Hospital")),
    ("Boston", "Massachusetts", "United States", 42.35843, -71.05977,
     ("Dana-Farber Cancer Institute", "Massachusetts General Hospital")),
    ("Houston", "Texas", "United States", 29.76328, -95.36327, ("M D Anderson Cancer Center",)),
    ("Duarte", "California", "United States", 34.13945, -117.97729, ("City of Hope National Medical Center",)),
    ("New York", "New York", "United States", 40.71427, -74.00597,
     ("Memorial Sloan Kettering Cancer Center", "NYU Langone Health")),
    ("Chicago", "Illinois", "United States", 41.85003, -87.65005, ("Northwestern University", "University of Chicago")),
    ("St Louis", "Missouri", "United States", 38.62727, -90.19789, ("Washington University",)),
    ("Toronto", "Ontario", "Canada", 43.70643, -79.39864, ("Princess Margaret Cancer Centre",)),
    ("Villejuif", None, "France", 48.7939, 2.35992, ("Gustave Roussy",)),
    ("Bordeaux", None, "France", 44.84124, -0.58046, ("Institut Bergonie",)),
    ("Barcelona", "Catalonia", "Spain", 41.38879, 2.15899, ("Hospital Universitari Vall d Hebron",)),
    ("Madrid", None, "Spain", 40.4165, -3.70256, ("Hospital Universitario Ramon y Cajal",)),
    ("Rotterdam", None, "Netherlands", 51.9225, 4.47917, ("Erasmus Medisch Centrum",)),
    ("Warsaw", None, "Poland", 52.22977, 21.01178, ("Narodowy Instytut Onkologii",)),
    ("Seoul", None, "South Korea", 37.566, 126.9784, ("Seoul National University Hospital", "Asan Medical Center")),
    ("Tokyo", None, "Japan", 35.6895, 139.69171, ("The Cancer Institute Hospital of JFCR",)),
    ("London", None, "United Kingdom", 51.50853, -0.12574, ("The Royal Marsden", "University College London Hospitals")),
    ("Berlin", None, "Germany", 52.52437, 13.41053, ("Charité - Universitätsmedizin Berlin",)),
    ("Melbourne", "Victoria", "Australia", -37.814, 144.96332, ("Peter MacCallum Cancer Centre",)),
    ("São Paulo", None, "Brazil", -23.5475, -46.63611, ("Instituto do Câncer do Estado de São Paulo",)),
    ("Milan", None, "Italy", 45.46427, 9.18951, ("Istituto Nazionale dei Tumori",)),
    ("Mumbai", "Maharashtra", "India", 19.07283, 72.88261, ("Tata Memorial Hospital",)),
)
# How often a trial's sites are centred on each country (the registry is US- and China-heavy).
HOME_COUNTRIES = {"United States": 34, "China": 26, "France": 5, "Spain": 3, "Canada": 4, "United Kingdom": 5,
                  "Germany": 5, "South Korea": 4, "Japan": 4, "Italy": 3, "Australia": 2, "Brazil": 2,
                  "India": 1, "Netherlands": 1, "Poland": 1}
SITE_STATUSES = {"ACTIVE_NOT_RECRUITING", "COMPLETED", "ENROLLING_BY_INVITATION", "NOT_YET_RECRUITING", "RECRUITING",
                 "SUSPENDED", "TERMINATED", "WITHDRAWN", "AVAILABLE"}
SITE_TEMPLATES = ("{} University Hospital", "{} Cancer Center", "{} General Hospital", "{} Clinical Research Unit")

INCLUSION = (
    "Histologically or cytologically confirmed {condition}.",
    "Eastern Cooperative Oncology Group (ECOG) performance status of 0 or 1.",
    "At least one measurable lesion according to RECIST version 1.1.",
    "Adequate bone marrow, liver and kidney function.",
    "Life expectancy of at least 12 weeks.",
    "Able to understand and willing to sign a written informed consent.",
    "Women of childbearing potential must agree to use effective contraception.",
    "No prior systemic treatment for {condition}.",
)
EXCLUSION = (
    "Active autoimmune disease that required systemic treatment in the past 2 years.",
    "Known HIV infection or active hepatitis B or C.",
    "Pregnant or breastfeeding.",
    "Another malignancy within 5 years, except treated basal cell carcinoma of the skin.",
    "Uncontrolled hypertension despite medication.",
    "Major surgery within 4 weeks before the first dose.",
    "Prior treatment with an anti-PD-1 or anti-PD-L1 antibody.",
    "Known hypersensitivity to any component of the study treatment.",
)


# ---------------------------------------------------------------------------- names from the tables


@dataclass(frozen=True)
class NamePools:
    """Names drawn from the concept tables, and every name they know (so a typo never lands on one)."""

    drug_names: tuple[tuple[str, str], ...]        # (concept id, name as a record writes it)
    typo_bases: tuple[tuple[str, str], ...]        # (concept id, name) long enough to misspell
    condition_names: tuple[tuple[str, str], ...]
    sponsors: tuple[tuple[str, str], ...]          # (organization label, v2 class)
    known: frozenset[str]                          # normalised names of every concept, spaced and compact
    city_coordinates: dict[str, tuple[float, float]] = field(default_factory=dict)

    @classmethod
    def from_tables(cls, tables: ConceptTables) -> NamePools:
        drug_names, typo_bases = [], []
        for concept in tables["drug"].values():
            for name, kind in concept.names:
                if not name.isascii():
                    continue
                drug_names.append((concept.id, name))
                if kind in ("label", "brand-name") and name.isalpha() and len(name) >= 6:
                    typo_bases.append((concept.id, name))
        conditions = [(c.id, name) for c in tables["condition"].values() for name, _ in c.names if name.isascii()]
        sponsors = [(c.label, ORG_KIND_CLASS.get(c.extra.get("kind"), "OTHER")) for c in tables["organization"].values()]
        known = set()
        for concept in tables.all():
            for name, _ in concept.names:
                plain = normalise(name)
                known.update({plain, plain.replace(" ", "")})
        coordinates = {c.label: (c.extra["lat"], c.extra["lon"]) for c in tables["place"].values()
                       if "lat" in c.extra and "lon" in c.extra}
        return cls(tuple(drug_names), tuple(typo_bases), tuple(conditions), tuple(sponsors), frozenset(known),
                   coordinates)

    def is_known(self, text: str) -> bool:
        """Whether the text, or any of its words, is a name some concept table holds."""
        plain = normalise(text)
        return (plain in self.known or plain.replace(" ", "") in self.known
                or any(word in self.known for word in plain.split()))


def as_written(name: str, rng: random.Random) -> str:
    """INNs are lower case in the tables; registries mostly capitalise them."""
    if name.islower():
        roll = rng.random()
        return name[:1].upper() + name[1:] if roll < 0.7 else name.upper() if roll < 0.78 else name
    return name


def one_letter_typo(word: str, rng: random.Random) -> str:
    """A slip of one letter (replace, drop, add or swap), never the first one: registries keep initials."""
    at = rng.randrange(1, len(word) - 1)
    letter = rng.choice(string.ascii_uppercase if word.isupper() else string.ascii_lowercase)
    edit = rng.randrange(4)
    if edit == 0:
        return word[:at] + letter + word[at + 1:]
    if edit == 1:
        return word[:at] + word[at + 1:]
    if edit == 2:
        return word[:at] + letter + word[at:]
    return word[:at] + word[at + 1] + word[at] + word[at + 2:]


# ---------------------------------------------------------------------------- one record


@dataclass
class SyntheticRecord:
    """One ZIP member: its name, its bytes, and what the generator put in it (for tests)."""

    member: str
    data: bytes
    nct_id: str
    malformed: str | None = None   # the kind of damage, or None for a record the reader must accept
    truth: dict[str, Any] = field(default_factory=dict)


class StudyMaker:
    """Draws one v2 study object per index from a generator seeded by (seed, index)."""

    def __init__(self, seed: int, pools: NamePools):
        self.seed = seed
        self.pools = pools
        self.id_offset = random.Random(f"ids/{seed}").randrange(ID_SPACE)

    def nct_id(self, index: int) -> str:
        return f"NCT{(index * ID_STRIDE + self.id_offset) % ID_SPACE:08d}"

    # -- names

    def drug_name(self, rng: random.Random) -> tuple[str, str, list[str]]:
        """(name, kind, expected concept ids) for an intervention of a drug-like type."""
        kind = weighted(rng, DRUG_NAME_KINDS)
        if kind == "curated":
            concept, name = rng.choice(self.pools.drug_names)
            return as_written(name, rng), kind, [concept]
        if kind == "qualified":
            concept, name = rng.choice(self.pools.drug_names)
            return rng.choice(QUALIFIERS).format(as_written(name, rng)), kind, [concept]
        if kind == "combination":
            picks: dict[str, str] = {}
            wanted = rng.choice((2, 2, 2, 3))
            while len(picks) < wanted:
                concept, name = rng.choice(self.pools.drug_names)
                picks.setdefault(concept, as_written(name, rng))
            return rng.choice(COMBINERS).join(picks.values()), kind, list(picks)
        if kind == "misspelled":
            for _ in range(20):
                concept, name = rng.choice(self.pools.typo_bases)
                typo = one_letter_typo(as_written(name, rng), rng)
                if not self.pools.is_known(typo):
                    return typo, kind, [concept]
        # unknown: a real drug outside the tables, or a made-up development code
        for _ in range(20):
            if rng.random() < 0.6:
                name = rng.choice(UNKNOWN_DRUGS)
            else:
                letters = "".join(rng.choice(string.ascii_uppercase) for _ in range(rng.choice((2, 3))))
                name = f"{letters}-{rng.randrange(100, 10000)}" if rng.random() < 0.7 else f"{letters}{rng.randrange(100, 10000)}"
            if not self.pools.is_known(name):
                return name, "unknown", []
        return "Investigational Product", "unknown", []

    def condition_name(self, rng: random.Random) -> tuple[str, str, str | None]:
        kind = weighted(rng, CONDITION_KINDS)
        if kind == "unknown":
            return rng.choice(UNKNOWN_CONDITIONS), kind, None
        concept, name = rng.choice(self.pools.condition_names)
        if kind == "curated":
            return name, kind, concept
        if kind == "qualified":
            return f"{rng.choice(CONDITION_QUALIFIERS)} {name.title()}", kind, concept
        words = name.split()
        long_words = [i for i, w in enumerate(words) if len(w) >= 6 and w.isalpha()]
        if long_words:
            for _ in range(10):
                at = rng.choice(long_words)
                typo = " ".join(one_letter_typo(w, rng) if i == at else w for i, w in enumerate(words))
                if normalise(typo) not in self.pools.known:
                    return typo, "misspelled", concept
        return name, "curated", concept

    def person(self, rng: random.Random) -> str:
        return f"{rng.choice(GIVEN_NAMES)} {rng.choice(FAMILY_NAMES)}"

    def sponsor(self, rng: random.Random) -> dict[str, str]:
        kind = weighted(rng, SPONSOR_CLASSES_WEIGHTS)
        if kind == "table" and self.pools.sponsors:
            name, agency = rng.choice(self.pools.sponsors)
        elif kind == "person":
            name, agency = self.person(rng), "INDIV"
        elif kind == "unknown":
            city = rng.choice(CITIES)[0]
            name = rng.choice(SITE_TEMPLATES).format(city)
            agency = rng.choice(("OTHER", "OTHER", "OTHER", "UNKNOWN", "AMBIG"))
        else:
            name, agency = rng.choice(KNOWN_SPONSORS)
        return {"name": name, "class": agency}

    # -- dates

    @staticmethod
    def month_of(months: int) -> tuple[int, int]:
        return months // 12, months % 12 + 1

    def partial(self, rng: random.Random, months: int) -> str:
        """A v2 partial date: the month ("2023-05") or, a little more often, the day ("2023-05-14")."""
        year, month = self.month_of(months)
        return f"{year:04d}-{month:02d}-{rng.randrange(1, 29):02d}" if rng.random() < 0.55 else f"{year:04d}-{month:02d}"

    def dates(self, rng: random.Random, status: str) -> dict[str, Any]:
        """The status module's dates, consistent with the status and with each other."""
        now = SNAPSHOT[0] * 12 + SNAPSHOT[1] - 1
        if status == "NOT_YET_RECRUITING":
            start = now + rng.randrange(1, 13)
        elif status in ("RECRUITING", "ENROLLING_BY_INVITATION", "SUSPENDED", "AVAILABLE",
                        "TEMPORARILY_NOT_AVAILABLE"):
            start = now - rng.randrange(0, 49)
        elif status == "ACTIVE_NOT_RECRUITING":
            start = now - rng.randrange(12, 73)
        elif status == "UNKNOWN":
            start = now - rng.randrange(60, 181)
        elif status == "WITHDRAWN":
            start = now - rng.randrange(-6, 120)
        else:  # COMPLETED, TERMINATED, NO_LONGER_AVAILABLE, APPROVED_FOR_MARKETING
            start = now - rng.randrange(24, 241)
        primary = start + rng.randrange(6, 61)
        if status in ("COMPLETED", "TERMINATED", "NO_LONGER_AVAILABLE", "APPROVED_FOR_MARKETING"):
            primary = min(primary, now - 1)
            primary = max(primary, start + 1)
        completion = primary + rng.choice((0, 0, 3, 6, 12, 24))
        if status in ("COMPLETED", "TERMINATED") and completion >= now:
            completion = primary

        def struct(months: int) -> dict[str, str]:
            return {"date": self.partial(rng, months), "type": "ACTUAL" if months < now else "ESTIMATED"}

        start_struct, primary_struct = struct(start), struct(primary)
        completion_struct = dict(primary_struct) if completion == primary else struct(completion)
        # Registration dates are whole days: submitted before the start (or soon after), posted days
        # later, last updated after the latest thing that happened; none after the snapshot.
        snapshot = date(*SNAPSHOT)

        def day(months: int) -> date:
            year, month = self.month_of(months)
            return date(year, month, 1)

        submitted = min(day(start), snapshot) - timedelta(days=rng.randrange(0, 200))
        posted = submitted + timedelta(days=rng.randrange(1, 30))
        latest = day(min(completion, now)) if start < now else posted
        updated = max(posted, latest) + timedelta(days=rng.randrange(0, 400))
        update_posted = updated + timedelta(days=rng.randrange(0, 5))
        submitted, posted, updated, update_posted = (min(d, snapshot) for d in (submitted, posted, updated, update_posted))
        dates = {
            "statusVerifiedDate": updated.isoformat()[:7],
            "startDateStruct": start_struct,
            "primaryCompletionDateStruct": primary_struct,
            "completionDateStruct": completion_struct,
            "studyFirstSubmitDate": submitted.isoformat(),
            "studyFirstPostDateStruct": {"date": posted.isoformat(), "type": "ACTUAL"},
            "lastUpdateSubmitDate": updated.isoformat(),
            "lastUpdatePostDateStruct": {"date": update_posted.isoformat(), "type": "ACTUAL"},
        }
        # The registry leaves out what a record does not give: some trials have no completion date.
        if rng.random() < 0.03:
            del dates["completionDateStruct"]
        return dates

    # -- parts

    def interventions(self, rng: random.Random, study_type: str) -> list[dict[str, Any]]:
        count = weighted(rng, INTERVENTIONS)
        drug_share = 0.8 if study_type != "OBSERVATIONAL" else 0.45
        interventions: list[dict[str, Any]] = []
        names: set[str] = set()
        for _ in range(count * 20):  # pools are large enough; the bound only guards the loop
            if len(interventions) == count:
                break
            truth: dict[str, Any]
            if rng.random() < drug_share:
                name, kind, concepts = self.drug_name(rng)
                # Antibodies (INNs ending in -mab) are often registered as BIOLOGICAL.
                antibody = any(c.endswith("mab") for c in concepts)
                itype = "BIOLOGICAL" if antibody and rng.random() < 0.3 else "DRUG"
                truth = {"kind": kind, "concepts": concepts}
            else:
                itype = weighted(rng, OTHER_TYPES)
                name = rng.choice(OTHER_INTERVENTIONS[itype])
                truth = {"kind": "non-drug", "concepts": []}
            if name in names:
                continue  # v2 names are unique within a study (arms refer to them by name)
            names.add(name)
            item: dict[str, Any] = {"type": itype, "name": name}
            if truth["kind"] in ("curated", "qualified", "combination") and rng.random() < 0.6:
                item["description"] = f"{name} given as per protocol, {rng.choice(('every 3 weeks', 'daily', 'on day 1 and day 8', 'every 2 weeks'))}."
            elif rng.random() < 0.5:
                item["description"] = rng.choice(("Administered as per protocol.", "Given by the study team.",
                                                  "Standard procedure at each site."))
            if truth["kind"] == "curated" and rng.random() < 0.3:
                others = [n for c, n in self.pools.drug_names if c == truth["concepts"][0] and n != name]
                if others:
                    item["otherNames"] = rng.sample(others, min(len(others), rng.randrange(1, 3)))
            item["_truth"] = {"name": name, "type": itype, **truth}  # taken off again in study()
            interventions.append(item)
        return interventions

    def arms(self, rng: random.Random, study_type: str, interventions: list[dict[str, Any]]) -> list[dict[str, Any]]:
        count = weighted(rng, ARMS)
        arms: list[dict[str, Any]] = []
        for number in range(1, count + 1):
            arm: dict[str, Any] = {"label": f"{'Cohort' if study_type == 'OBSERVATIONAL' else 'Arm'} {string.ascii_uppercase[number - 1]}"}
            if study_type == "INTERVENTIONAL":
                arm["type"] = "EXPERIMENTAL" if number == 1 else weighted(
                    rng, {"EXPERIMENTAL": 40, "ACTIVE_COMPARATOR": 30, "PLACEBO_COMPARATOR": 15, "OTHER": 8,
                          "NO_INTERVENTION": 5, "SHAM_COMPARATOR": 2})
            arm["interventionNames"] = []
            arms.append(arm)
        # Every intervention belongs to at least one arm; some to a second one as well.
        for position, item in enumerate(interventions):
            chosen = {position % count}
            if count > 1 and rng.random() < 0.3:
                chosen.add(rng.randrange(count))
            for arm_index in sorted(chosen):
                arm = arms[arm_index]
                if arm.get("type") == "NO_INTERVENTION":
                    arm["type"] = "OTHER"
                prefix = item["type"].replace("_", " ").title()
                arm["interventionNames"].append(f"{prefix}: {item['name']}")
                item.setdefault("armGroupLabels", []).append(arm["label"])
        for arm in arms:
            shown = [n.split(": ", 1)[1] for n in arm["interventionNames"]]
            if shown:
                arm["label"] = f"{arm['label']}: {' + '.join(shown[:2])}"[:120]
                arm["description"] = f"Participants receive {', '.join(shown)}."
            else:
                arm["description"] = "Participants receive no study intervention."
                del arm["interventionNames"]
                if "type" in arm:
                    arm["type"] = "NO_INTERVENTION"
        # armGroupLabels were recorded before the labels got their names: rewrite them.
        short_to_full = {arm["label"].split(":", 1)[0]: arm["label"] for arm in arms}
        for item in interventions:
            item["armGroupLabels"] = [short_to_full[label] for label in item.get("armGroupLabels", [])]
        return arms

    def sites(self, rng: random.Random, status: str) -> list[dict[str, Any]]:
        # Skewed: many single-site trials, a long tail of multi-centre ones (capped at 50).
        count = 1 if rng.random() < 0.42 else min(50, 2 + int(rng.lognormvariate(1.3, 1.0)))
        home = weighted(rng, HOME_COUNTRIES)
        home_cities = [c for c in CITIES if c[2] == home]
        with_status = status in ("RECRUITING", "NOT_YET_RECRUITING", "ACTIVE_NOT_RECRUITING",
                                 "ENROLLING_BY_INVITATION", "SUSPENDED") or rng.random() < 0.2
        sites: list[dict[str, Any]] = []
        used: set[tuple[str, str]] = set()
        while len(sites) < count:
            city, state, country, lat, lon, facilities = rng.choice(home_cities if rng.random() < 0.75 else CITIES)
            lat, lon = self.pools.city_coordinates.get(city, (lat, lon))
            facility = rng.choice(facilities) if rng.random() < 0.6 else rng.choice(SITE_TEMPLATES).format(city)
            if (facility, city) in used:
                facility = f"{facility}, Site {len(sites) + 1}"
            used.add((facility, city))
            site: dict[str, Any] = {"facility": facility}
            if with_status:
                # Sites mostly share the trial's status, where v2 allows it for a site (not UNKNOWN).
                site["status"] = status if status in SITE_STATUSES and rng.random() < 0.8 else weighted(
                    rng, {"RECRUITING": 5, "NOT_YET_RECRUITING": 2, "ACTIVE_NOT_RECRUITING": 2, "COMPLETED": 1,
                          "WITHDRAWN": 1, "SUSPENDED": 1})
            site["city"] = city
            if state:
                site["state"] = state
            if rng.random() < 0.6:
                site["zip"] = f"{rng.randrange(10000, 100000)}"
            site["country"] = country
            if status == "RECRUITING" and rng.random() < 0.3:
                site["contacts"] = [{"name": f"{self.person(rng)}, {rng.choice(DEGREES)}", "role": "CONTACT",
                                     "email": f"site{len(sites) + 1}@example.org"}]
            if rng.random() < 0.9:
                site["geoPoint"] = {"lat": lat, "lon": lon}
            sites.append(site)
        return sites

    def references(self, rng: random.Random, title: str) -> list[dict[str, Any]]:
        refs = []
        for _ in range(weighted(rng, REFERENCES)):
            # Synthetic: random 8-digit PubMed ids and DOIs under the 10.5555 test prefix name no real paper.
            pmid = str(rng.randrange(10_000_000, 100_000_000))
            year = rng.randrange(2000, 2027)
            citation = (f"{rng.choice(FAMILY_NAMES)} {rng.choice(string.ascii_uppercase)}, "
                        f"{rng.choice(FAMILY_NAMES)} {rng.choice(string.ascii_uppercase)}. {title}. "
                        f"{rng.choice(JOURNALS)}. {year};{rng.randrange(1, 60)}({rng.randrange(1, 13)}):"
                        f"{rng.randrange(1, 900)}-{rng.randrange(900, 2000)}.")
            if rng.random() < 0.5:
                citation += f" doi: 10.5555/synth.{year}.{rng.randrange(100000, 1000000)}."
            ref: dict[str, Any] = {"pmid": pmid, "type": weighted(rng, {"BACKGROUND": 5, "RESULT": 3, "DERIVED": 4}),
                                   "citation": citation}
            if rng.random() < 0.08:
                del ref["pmid"]  # some references carry only a citation
            refs.append(ref)
        return refs

    def eligibility(self, rng: random.Random, conditions: list[str], study_type: str) -> tuple[dict[str, Any], dict]:
        condition = conditions[0].lower()
        inclusion = [t.format(condition=condition) for t in rng.sample(INCLUSION, rng.randrange(2, 7))]
        exclusion = [t for t in rng.sample(EXCLUSION, rng.randrange(1, 6))]
        numbered = rng.random() < 0.3

        def listing(items: list[str]) -> str:
            return "\n".join(f"{n}. {item}" if numbered else f"* {item}" for n, item in enumerate(items, 1))

        criteria = f"Inclusion Criteria:\n\n{listing(inclusion)}\n\nExclusion Criteria:\n\n{listing(exclusion)}"
        minimum = weighted(rng, {"18 Years": 70, "12 Years": 5, "6 Months": 3, "2 Years": 4, "65 Years": 3, None: 15})
        maximum = weighted(rng, {None: 45, "75 Years": 20, "70 Years": 10, "65 Years": 8, "80 Years": 8, "17 Years": 9})
        if minimum and maximum and years(minimum) >= years(maximum):
            maximum = None
        low = years(minimum) if minimum else 0
        high = years(maximum) if maximum else 200
        std_ages = [name for name, a, b in (("CHILD", 0, 17), ("ADULT", 18, 64), ("OLDER_ADULT", 65, 200))
                    if low <= b and high >= a]
        module: dict[str, Any] = {"eligibilityCriteria": criteria,
                                  "healthyVolunteers": rng.random() < (0.35 if study_type == "OBSERVATIONAL" else 0.08),
                                  "sex": weighted(rng, {"ALL": 85, "FEMALE": 10, "MALE": 5})}
        if minimum:
            module["minimumAge"] = minimum
        if maximum:
            module["maximumAge"] = maximum
        module["stdAges"] = std_ages
        if study_type == "OBSERVATIONAL":
            module["studyPopulation"] = f"Patients with {condition} seen at the participating centres."
            module["samplingMethod"] = "NON_PROBABILITY_SAMPLE"
        return module, {"inclusion": len(inclusion), "exclusion": len(exclusion)}

    def design(self, rng: random.Random, study_type: str, status: str, phases: list[str], arms: int) -> dict[str, Any]:
        """The design module: allocation and model follow the number of arms; enrollment the phase."""
        design: dict[str, Any] = {"studyType": study_type}
        if phases:
            design["phases"] = phases
        if study_type == "INTERVENTIONAL":
            masking = weighted(rng, {"NONE": 70, "SINGLE": 8, "DOUBLE": 10, "TRIPLE": 5, "QUADRUPLE": 7})
            masking_info: dict[str, Any] = {"masking": masking}
            if masking != "NONE":
                roles = ["PARTICIPANT", "CARE_PROVIDER", "INVESTIGATOR", "OUTCOMES_ASSESSOR"]
                masking_info["whoMasked"] = roles[:{"SINGLE": 1, "DOUBLE": 2, "TRIPLE": 3, "QUADRUPLE": 4}[masking]]
            design["designInfo"] = {
                "allocation": "NA" if arms == 1 else weighted(rng, {"RANDOMIZED": 75, "NON_RANDOMIZED": 25}),
                "interventionModel": "SINGLE_GROUP" if arms == 1 else weighted(
                    rng, {"PARALLEL": 80, "SEQUENTIAL": 8, "CROSSOVER": 7, "FACTORIAL": 5}),
                "primaryPurpose": weighted(rng, {"TREATMENT": 70, "PREVENTION": 8, "SUPPORTIVE_CARE": 7,
                                                 "DIAGNOSTIC": 4, "BASIC_SCIENCE": 4, "OTHER": 4,
                                                 "HEALTH_SERVICES_RESEARCH": 2, "SCREENING": 1}),
                "maskingInfo": masking_info,
            }
        elif study_type == "OBSERVATIONAL":
            design["designInfo"] = {
                "observationalModel": weighted(rng, {"COHORT": 70, "CASE_CONTROL": 12, "CASE_ONLY": 10, "OTHER": 8}),
                "timePerspective": weighted(rng, {"PROSPECTIVE": 60, "RETROSPECTIVE": 30, "CROSS_SECTIONAL": 10}),
            }
        if study_type != "EXPANDED_ACCESS":  # expanded-access records give no enrollment
            # Skewed: a median of about 55 participants for interventional trials, more for cohorts.
            count = max(1, int(rng.lognormvariate(4.0 if study_type == "INTERVENTIONAL" else 5.3, 1.0)))
            if "PHASE3" in phases:
                count = max(count, rng.randrange(150, 1200))
            actual = status in ("COMPLETED", "TERMINATED", "ACTIVE_NOT_RECRUITING")
            design["enrollmentInfo"] = {"count": count, "type": "ACTUAL" if actual else "ESTIMATED"}
        return design

    # -- the study

    def study(self, index: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """The v2 study object for ``index`` and what went into it."""
        rng = random.Random(f"{self.seed}/{index}")
        nct = self.nct_id(index)
        study_type = weighted(rng, STUDY_TYPES)
        status = weighted(rng, EXPANDED_ACCESS_STATUSES if study_type == "EXPANDED_ACCESS" else STATUSES)
        conditions_truth = []
        conditions: list[str] = []
        wanted = weighted(rng, CONDITIONS)
        for _ in range(wanted * 20):
            if len(conditions) == wanted:
                break
            text, kind, concept = self.condition_name(rng)
            if text not in conditions:
                conditions.append(text)
                conditions_truth.append({"text": text, "kind": kind, "concept": concept})
        interventions = self.interventions(rng, study_type)
        arms = self.arms(rng, study_type, interventions)
        interventions_truth = [item.pop("_truth") for item in interventions]
        lead = self.sponsor(rng)
        collaborators = []
        for _ in range(weighted(rng, COLLABORATORS)):
            collaborator = self.sponsor(rng)
            if collaborator["name"] != lead["name"] and collaborator not in collaborators:
                collaborators.append(collaborator)
        drug_names = [i["name"] for i in interventions if i["type"] in ("DRUG", "BIOLOGICAL")] or [interventions[0]["name"]]
        phases = list(weighted(rng, PHASES)) if study_type == "INTERVENTIONAL" else []
        # "PHASE2" -> "Phase 2", "EARLY_PHASE1" -> "Early Phase 1"
        phase_text = " and ".join(p.replace("_", " ").title().replace("Phase", "Phase ") for p in phases if p != "NA")
        title = (f"{'A ' + phase_text + ' ' if phase_text else 'A '}"
                 f"{'Study' if study_type == 'INTERVENTIONAL' else 'Observational Study' if study_type == 'OBSERVATIONAL' else 'Expanded Access Programme'}"
                 f" of {' and '.join(drug_names[:2])} in {conditions[0]}")
        design = self.design(rng, study_type, status, phases, len(arms))
        sponsor_is_person = lead["class"] == "INDIV"

        eligibility, eligibility_truth = self.eligibility(rng, conditions, study_type)
        contacts: dict[str, Any] = {}
        if status in ("RECRUITING", "NOT_YET_RECRUITING", "ENROLLING_BY_INVITATION", "AVAILABLE"):
            contacts["centralContacts"] = [{"name": self.person(rng), "role": "CONTACT",
                                            "phone": f"+1 555 01{rng.randrange(10, 100)}",
                                            "email": f"trials{index % 1000}@example.org"}]
        if rng.random() < 0.7:
            contacts["overallOfficials"] = [
                {"name": f"{self.person(rng)}, {rng.choice(DEGREES)}", "affiliation": lead["name"],
                 "role": weighted(rng, {"PRINCIPAL_INVESTIGATOR": 70, "STUDY_DIRECTOR": 20, "STUDY_CHAIR": 10})}
                for _ in range(rng.choice((1, 1, 1, 2)))]
        sites = self.sites(rng, status)
        contacts["locations"] = sites

        status_module: dict[str, Any] = {"overallStatus": status}
        if status == "UNKNOWN":
            status_module["lastKnownStatus"] = rng.choice(("RECRUITING", "NOT_YET_RECRUITING", "ACTIVE_NOT_RECRUITING"))
        if status in ("TERMINATED", "WITHDRAWN", "SUSPENDED"):
            status_module["whyStopped"] = rng.choice(("Sponsor decision", "Slow accrual", "Funding ended",
                                                      "Drug supply interrupted"))
        status_module.update(self.dates(rng, status))
        party: dict[str, Any] = {"type": "SPONSOR"}
        if sponsor_is_person or rng.random() < 0.25:
            party = {"type": "PRINCIPAL_INVESTIGATOR" if not sponsor_is_person else "SPONSOR_INVESTIGATOR",
                     "investigatorFullName": lead["name"] if sponsor_is_person else self.person(rng),
                     "investigatorTitle": rng.choice(("Professor", "Principal Investigator", "Director")),
                     "investigatorAffiliation": lead["name"] if not sponsor_is_person else rng.choice(CITIES)[5][0]}
        sponsors: dict[str, Any] = {"responsibleParty": party, "leadSponsor": lead}
        if collaborators:
            sponsors["collaborators"] = collaborators

        protocol: dict[str, Any] = {
            "identificationModule": {
                "nctId": nct,
                "orgStudyIdInfo": {"id": f"{rng.choice(string.ascii_uppercase)}{rng.choice(string.ascii_uppercase)}-{rng.randrange(2000, 2027)}-{rng.randrange(1, 1000):03d}"},
                "organization": {"fullName": lead["name"], "class": lead["class"]},
                "briefTitle": title,
                "officialTitle": f"{title}: a Multicentre, {'Randomised' if len(arms) > 1 else 'Single-arm'} Trial",
            },
            "statusModule": status_module,
            "sponsorCollaboratorsModule": sponsors,
            "descriptionModule": {
                "briefSummary": f"This study evaluates {' and '.join(drug_names[:3])} in participants with "
                                f"{', '.join(conditions).lower()}. The main question is whether the treatment is safe "
                                f"and improves outcomes compared with what participants would otherwise receive.",
            },
            "conditionsModule": {"conditions": conditions},
            "designModule": design,
            "armsInterventionsModule": {"armGroups": arms, "interventions": interventions},
            "eligibilityModule": eligibility,
            "contactsLocationsModule": contacts,
        }
        if rng.random() < 0.1:
            protocol["identificationModule"]["acronym"] = "".join(rng.choice(string.ascii_uppercase) for _ in range(rng.randrange(3, 7)))
        if rng.random() < 0.6:
            protocol["conditionsModule"]["keywords"] = rng.sample(
                [*drug_names, *conditions, rng.choice(STAGES), "immunotherapy"], rng.randrange(1, 3))
        references = self.references(rng, title)
        if references:
            protocol["referencesModule"] = {"references": references}
        study = {
            "protocolSection": protocol,
            "derivedSection": {"miscInfoModule": {"versionHolder": f"{SNAPSHOT[0]:04d}-{SNAPSHOT[1]:02d}-{SNAPSHOT[2]:02d}"}},
            "hasResults": status == "COMPLETED" and rng.random() < 0.3,
        }
        truth = {"nct_id": nct, "interventions": interventions_truth, "conditions": conditions_truth,
                 "eligibility": eligibility_truth, "arms": len(arms), "sites": len(sites),
                 "collaborators": len(collaborators), "references": len(references)}
        return study, truth


def years(age: str) -> float:
    number, unit = age.split()
    return float(number) / (12 if unit.lower().startswith("month") else 1)


# ---------------------------------------------------------------------------- malformed records
# Each kind damages one field in a way the reader (kg.sources) refuses, so the record yields exactly
# one RecordFailure naming its member. Values the reader keeps as written for SHACL to report (an
# unknown overallStatus, phase, arm or intervention type, site status, sex) are not malformed at this
# level and are left out here; so is an enrollment count written as digits in a string ("120"),
# which pydantic reads as the number.


def _set(path: tuple[str, ...], value: Any) -> Callable[[dict, random.Random], None]:
    def damage(study: dict, rng: random.Random) -> None:
        node = study
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return damage


def _bad_nct_id(study: dict, rng: random.Random) -> None:
    ident = study["protocolSection"]["identificationModule"]
    ident["nctId"] = rng.choice((ident["nctId"][:-1], ident["nctId"].replace("NCT", "NTC"), "NCT-" + ident["nctId"][3:]))


def _drop_intervention_name(study: dict, rng: random.Random) -> None:
    del study["protocolSection"]["armsInterventionsModule"]["interventions"][0]["name"]


def _rename_protocol(study: dict, rng: random.Random) -> None:
    study["protocol"] = study.pop("protocolSection")


def _bad_latitude(study: dict, rng: random.Random) -> None:
    site = study["protocolSection"]["contactsLocationsModule"]["locations"][0]
    site["geoPoint"] = {"lat": rng.choice((123.4, -95.0)), "lon": 10.0}


PROTOCOL = "protocolSection"
# kind -> how to damage the study object (None: the damage is to the file, see ``damage_text``).
MALFORMED: dict[str, Callable[[dict, random.Random], None] | None] = {
    "bad-nct-id": _bad_nct_id,
    "enrollment-not-a-number": _set((PROTOCOL, "designModule", "enrollmentInfo", "count"), "about 120"),
    "unknown-sponsor-class": _set((PROTOCOL, "sponsorCollaboratorsModule", "leadSponsor", "class"), "PHARMA"),
    "unknown-date-type": _set((PROTOCOL, "statusModule", "startDateStruct", "type"), "APPROXIMATE"),
    "unknown-std-age": _set((PROTOCOL, "eligibilityModule", "stdAges"), ["TEEN"]),
    "date-not-iso": _set((PROTOCOL, "statusModule", "startDateStruct", "date"), "May 2023"),
    "age-not-a-quantity": _set((PROTOCOL, "eligibilityModule", "minimumAge"), "eighteen"),
    "healthy-volunteers-not-boolean": _set((PROTOCOL, "eligibilityModule", "healthyVolunteers"), "maybe"),
    "conditions-not-a-list": _set((PROTOCOL, "conditionsModule", "conditions"), "Nasopharyngeal Carcinoma"),
    "pmid-not-digits": _set((PROTOCOL, "referencesModule", "references"),
                            [{"pmid": "PMID 12345678", "type": "BACKGROUND", "citation": "A citation."}]),
    "latitude-out-of-range": _bad_latitude,
    "intervention-without-name": _drop_intervention_name,
    "no-protocol-section": _rename_protocol,
    "invalid-json": None,
    "not-utf8": None,
    "empty-member": None,
}


def damage_text(kind: str, text: str, rng: random.Random) -> bytes:
    """The bytes of a record whose damage is to the file rather than to a field."""
    if kind == "invalid-json":
        # Any proper prefix of a JSON object is invalid JSON: a download cut short (cut between
        # characters, so the error is about JSON and not about a broken UTF-8 sequence).
        return text[:rng.randrange(len(text) // 4, len(text) - 1)].encode("utf-8")
    if kind == "not-utf8":
        # A record saved in Latin-1 by some tool on the way.
        return text.replace('"briefTitle":"', '"briefTitle":"Étude: ', 1).encode("latin-1", "replace")
    if kind == "empty-member":
        return b""
    raise ValueError(f"not a damage to the file: {kind}")


# ---------------------------------------------------------------------------- the stream and the ZIP


def encode(study: dict[str, Any], malformed: str | None = None, rng: random.Random | None = None) -> bytes:
    """The member's bytes: compact UTF-8 JSON, as the registry writes it, damaged if asked."""
    rng = rng or random.Random(0)
    if malformed and MALFORMED[malformed]:
        MALFORMED[malformed](study, rng)
    text = json.dumps(study, ensure_ascii=False, separators=(",", ":"))
    if malformed and MALFORMED[malformed] is None:
        return damage_text(malformed, text, rng)
    return text.encode("utf-8")


def records(count: int, seed: int = 1, malformed_rate: float = 0.002,
            tables: ConceptTables | None = None) -> Iterator[SyntheticRecord]:
    """``count`` records, one at a time; a ``malformed_rate`` share of them damaged."""
    if count > ID_SPACE:
        raise ValueError(f"at most {ID_SPACE:,} records: NCT ids would repeat")
    if not 0 <= malformed_rate <= 1:
        raise ValueError("--malformed-rate must be between 0 and 1")
    tables = tables or load_concepts(Settings().ontology_dir / "concepts")
    maker = StudyMaker(seed, NamePools.from_tables(tables))
    kinds = list(MALFORMED)
    for index in range(count):
        study, truth = maker.study(index)
        nct = truth["nct_id"]
        # Its own generator, so damaging a record never changes what the next ones are.
        damage_rng = random.Random(f"{seed}/{index}/damage")
        malformed = kinds[damage_rng.randrange(len(kinds))] if damage_rng.random() < malformed_rate else None
        yield SyntheticRecord(f"{nct}.json", encode(study, malformed, damage_rng), nct, malformed, truth)


def write_zip(out: Path, stream: Iterator[SyntheticRecord]) -> dict[str, int]:
    """Write the records as a ZIP, member by member; the file appears only when complete."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    counts = {"records": 0, "malformed": 0}
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for record in stream:
            info = zipfile.ZipInfo(record.member, date_time=ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, record.data)
            counts["records"] += 1
            counts["malformed"] += record.malformed is not None
    partial.replace(out)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, required=True, help="how many records")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True, help="the ZIP to write")
    parser.add_argument("--malformed-rate", type=float, default=0.002,
                        help="share of records damaged in a way the reader must refuse (default 0.002)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        counts = write_zip(args.out, records(args.count, args.seed, args.malformed_rate))
    except ValueError as exc:
        parser.error(str(exc))
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{args.out}: {counts['records']:,} records ({counts['malformed']:,} malformed), "
          f"{os.path.getsize(args.out) / 2**20:.1f} MiB, {elapsed:.1f} s "
          f"({counts['records'] / max(elapsed, 1e-9):,.0f} records/s), peak RSS {peak:.0f} MiB", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
