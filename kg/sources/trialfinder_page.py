"""The TrialFinderData page (sample 004): a patient-facing page around a registry record.

Data lives in a few places only: the banner (``RECRUITINGPhase 2INTERVENTIONAL``), the two
title lines under it, one generated sentence naming the conditions and the sponsor, 'About
This Trial', the enrollment sentence, 'Original Eligibility Criteria', 'Treatments Being
Tested', 'Locations (N)' and the closing 'Last updated'. Everything else (the plain-English
eligibility rewrite, the FAQ, the guides, the disclaimers) is boilerplate and is skipped.
"""

from __future__ import annotations

import re

from kg.model import (
    NCT_ID_PATTERN,
    Eligibility,
    Intervention,
    Location,
    OverallStatus,
    Organization,
    Source,
    StudyType,
    Trial,
)
from kg.sources import display
from kg.sources.errors import RecordError
from kg.sources.pagetext import Section, read_enum, split_address, split_inline_numbered

MARKER = "TrialFinderData"
HEADINGS = (
    "About This Trial", "What Stage of Research Is This?", "Who May Be Eligible (Plain English)",
    "Original Eligibility Criteria", "Treatments Being Tested", "How to Talk to Your Doctor About This Trial",
    "Authoritative Sources", "Frequently Asked Questions", "How This Page Is Built",
)
BANNER = re.compile(
    rf"^({'|'.join(s.value for s in OverallStatus)})"
    r"((?:Early )?Phase \d(?:/Phase \d|/\d)?|Not Applicable|N/A)?"
    rf"({'|'.join(s.value for s in StudyType)})$"
)
LOCATIONS = re.compile(r"^Locations \((\d+)\)$")
P = "/protocolSection"


def looks_like(text: str) -> bool:
    return MARKER in text[:2000] and bool(re.search(r"^[A-Z_]+(?:.*Phase.*)?(INTERVENTIONAL|OBSERVATIONAL|EXPANDED_ACCESS)$", text, re.M))


def split(text: str) -> tuple[list[str], dict[str, Section]]:
    head: list[str] = []
    sections: dict[str, Section] = {}
    current: Section | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped in HEADINGS or LOCATIONS.match(stripped):
            current = sections.setdefault("Locations" if LOCATIONS.match(stripped) else stripped, Section(stripped))
            continue
        (current.lines if current else head).append(line.rstrip())
    return head, sections


def parse(text: str, source: Source) -> Trial:
    head, sections = split(text)
    items = [h.strip() for h in head if h.strip()]
    origins: dict[str, str] = {}
    raw: dict[str, str] = {}
    fields: dict = {}

    banner_at = next((i for i, item in enumerate(items) if BANNER.match(item)), None)
    if banner_at is None:
        raise RecordError("no status/phase/study-type banner (e.g. 'RECRUITINGPhase 2INTERVENTIONAL')", "banner")
    status, phase, study_type = BANNER.match(items[banner_at]).groups()
    fields["overall_status"] = status
    fields["study_type"] = study_type
    if phase:
        fields["phases"] = read_enum(display.phases, phase, "banner")
    raw["banner"] = items[banner_at]
    for pointer in ("statusModule/overallStatus", "designModule/studyType", "designModule/phases"):
        origins[f"{P}/{pointer}"] = "banner"

    titles = items[banner_at + 1: banner_at + 3]
    if titles:
        fields["brief_title"] = titles[0]
        origins[f"{P}/identificationModule/briefTitle"] = "title (first line under the banner)"
    if len(titles) > 1 and "(NCT" not in titles[1]:
        fields["official_title"] = titles[1]
        origins[f"{P}/identificationModule/officialTitle"] = "title (second line under the banner)"

    # "<title> (NCTxxxxxxxx) is a Phase 2 interventional studying <conditions>, sponsored by <sponsor>."
    blurb = next((i for i in items if re.search(r"\((NCT\d{8})\) is an? ", i)), "")
    nct = re.search(r"\((NCT\d{8})\)", blurb)
    if not nct:
        nct = re.search(r"\b(NCT\d{8})\b", text)
    if not nct or not re.match(NCT_ID_PATTERN, nct.group(1)):
        raise RecordError("the page names no NCT id", "summary sentence")
    fields["nct_id"] = nct.group(1)
    origins[f"{P}/identificationModule/nctId"] = "summary sentence"
    # The sentence after it starts with the status ("... by M.D. Anderson Cancer Center. RECRUITING as of"),
    # so the sponsor runs to the last period before that, not to the first ". " (M.D., Co., Ltd.).
    studying = re.search(r" studying (.+?), sponsored by (.+?)\.(?=\s+[A-Z_]+ as of\b|\s*$)", blurb) or \
        re.search(r" studying (.+?), sponsored by (.+?)\.(?:\s|$)", blurb)
    if studying:
        fields["conditions"] = [studying.group(1).strip()]
        fields["lead_sponsor"] = Organization(name=studying.group(2).strip())
        origins[f"{P}/conditionsModule/conditions/0"] = "summary sentence › studying"
        origins[f"{P}/sponsorCollaboratorsModule/leadSponsor/name"] = "summary sentence › sponsored by"

    if s := sections.get("About This Trial"):
        fields["brief_summary"] = s.text or None
        origins[f"{P}/descriptionModule/briefSummary"] = "About This Trial"

    enrollment = re.search(r"(?:target|actual) enrollment of ([\d,]+) participants", text)
    if enrollment:
        fields["enrollment_count"] = display.count(enrollment.group(1))
        # "target enrollment" is the planned size, i.e. v2's ESTIMATED.
        fields["enrollment_type"] = "ESTIMATED" if "target" in enrollment.group(0) else "ACTUAL"
        raw[f"{P}/designModule/enrollmentInfo/count"] = enrollment.group(0)
        origins[f"{P}/designModule/enrollmentInfo/count"] = "What Stage of Research Is This? › enrollment sentence"

    if s := sections.get("Original Eligibility Criteria"):
        fields["eligibility"] = _eligibility(s)
        origins[f"{P}/eligibilityModule/eligibilityCriteria"] = "Original Eligibility Criteria"

    if s := sections.get("Treatments Being Tested"):
        fields["interventions"] = _treatments(s)
        origins[f"{P}/armsInterventionsModule/interventions"] = "Treatments Being Tested"

    if s := sections.get("Locations"):
        fields["locations"] = _locations(s)
        origins[f"{P}/contactsLocationsModule/locations"] = "Locations"

    updated = re.search(r"^Last updated (\d{4}-\d{2}-\d{2})", text, re.M)
    source = source.model_copy(update={
        "origins": origins, "raw": raw, "page_last_updated": updated.group(1) if updated else None,
    })
    return Trial(**fields, source=source)


def _eligibility(section: Section) -> Eligibility:
    lines = [line for line in section.items if line != "View original clinical language"]
    text = " ".join(lines)
    match = re.search(r"Inclusion Criteria:\s*(.*?)(?:\s*Exclusion Criteria:\s*(.*))?$", text, re.S)
    if not match:
        return Eligibility(criteria=text or None)
    inclusion = split_inline_numbered(match.group(1) or "")
    exclusion = split_inline_numbered(match.group(2) or "")
    criteria = "Inclusion Criteria:\n\n" + "\n".join(f"{n}. {i}" for n, i in enumerate(inclusion, 1))
    if exclusion:
        criteria += "\n\nExclusion Criteria:\n\n" + "\n".join(f"{n}. {i}" for n, i in enumerate(exclusion, 1))
    return Eligibility(criteria=criteria, inclusion=inclusion, exclusion=exclusion)


def _treatments(section: Section) -> list[Intervention]:
    """Blocks of: a type line (``DRUG``), the treatment name, its description."""
    items = section.items
    interventions: list[Intervention] = []
    index = 0
    while index < len(items):
        try:
            kind = display.intervention_type(items[index])
        except ValueError:
            index += 1
            continue
        if not items[index].isupper():
            index += 1
            continue
        name = items[index + 1] if index + 1 < len(items) else None
        if not name:
            raise RecordError(f"treatment type {items[index]!r} with no name after it", "Treatments Being Tested")
        description = []
        index += 2
        while index < len(items) and not items[index].isupper():
            description.append(items[index])
            index += 1
        interventions.append(Intervention(type=kind, name=name, description="\n".join(description) or None))
    return interventions


def _locations(section: Section) -> list[Location]:
    """Per site: ``<facility> <City, State, Country>, <zip>`` then ``City, State, Country``."""
    items = [i for i in section.items if not i.startswith("Trial sites listed")]
    locations: list[Location] = []
    index = 0
    while index + 1 < len(items):
        first, address_line = items[index], items[index + 1]
        if address_line in first:
            facility = first[: first.index(address_line)].strip().rstrip(",")
            rest = first[first.index(address_line) + len(address_line):].strip(" ,")
            address = split_address(address_line)
            if rest:
                address["zip"] = rest
            locations.append(Location(facility=facility or None, **address))
            index += 2
        else:
            index += 1
    return locations
