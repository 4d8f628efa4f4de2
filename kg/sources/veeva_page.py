"""The ClinicalTrials.Veeva page (sample 003).

Layout: site chrome (``ClinicalTrials.Veeva``, ``Menu``), the title, the sponsor's name (after
its logo line), then headed blocks with display values ("Not yet enrolling", "Phase 2",
"Single Group Assignment"), treatments as ``Drug: X``, identifiers without labels, nested
eligibility lists, and a 'Trial design' part with one block per patient group.
"""

from __future__ import annotations

import re

from kg.model import Arm, Contact, ContactRole, Design, Eligibility, Intervention, Organization, Source, Trial
from kg.model import NCT_ID_PATTERN
from kg.sources import display
from kg.sources.errors import RecordError
from kg.sources.pagetext import Section, collapse, read_choice, read_enum, split_list_items

MARKER = "ClinicalTrials.Veeva"

HEADINGS = (
    "Status and phase", "Conditions", "Treatments", "Study type", "Funder types", "Identifiers",
    "Details and patient eligibility", "About", "Enrollment", "Sex", "Ages", "Volunteers",
    "Inclusion criteria", "Exclusion criteria", "Trial design", "Primary purpose", "Allocation",
    "Interventional model", "Masking", "Trial contacts and locations", "Central trial contact",
    "Sponsor", "Start date", "Primary completion date", "Completion date", "Data sourced from clinicaltrials.gov",
    "Clinical trials",
)
# Site chrome and loading placeholders: never data.
CHROME = {"Menu", "Loading...", "Find clinical trialsTrials by location"}
TREATMENT = re.compile(r"^([A-Za-z ]+):\s*(.+)$")
P = "/protocolSection"


def looks_like(text: str) -> bool:
    return text.lstrip().startswith(MARKER) or (MARKER in text[:500] and "Status and phase" in text)


def split(text: str) -> tuple[list[str], dict[str, Section]]:
    head: list[str] = []
    sections: dict[str, Section] = {}
    current: Section | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped in HEADINGS:
            current = sections.setdefault(stripped, Section(stripped))
            continue
        if stripped in CHROME or stripped == MARKER or stripped.startswith("© Copyright"):
            continue
        (current.lines if current else head).append(line.rstrip())
    return head, sections


def parse(text: str, source: Source) -> Trial:
    head, sections = split(text)
    head_items = [h.strip() for h in head if h.strip()]
    origins: dict[str, str] = {}
    raw: dict[str, str] = {}
    fields: dict = {}

    identifiers = sections["Identifiers"].items if "Identifiers" in sections else []
    nct_ids = [i for i in identifiers if re.match(NCT_ID_PATTERN, i)]
    if not nct_ids:
        raise RecordError("the page lists no NCT id under 'Identifiers'", "Identifiers")
    fields["nct_id"] = nct_ids[0]
    origins[f"{P}/identificationModule/nctId"] = "Identifiers"
    others = [i for i in identifiers if i not in nct_ids]
    if others:
        # The page lists identifiers without labels; the sponsor's own id comes first on Veeva pages.
        fields["org_study_id"] = others[0]
        fields["secondary_ids"] = [{"id": i} for i in others[1:]]
        origins[f"{P}/identificationModule/orgStudyIdInfo/id"] = "Identifiers"

    # Head: title, "<Sponsor> logo", "<Sponsor>".
    logo = next((i for i, h in enumerate(head_items) if h.endswith(" logo")), None)
    if head_items:
        fields["brief_title"] = head_items[0]
        origins[f"{P}/identificationModule/briefTitle"] = "page header › title"
    sponsor_name = None
    if logo is not None:
        sponsor_name = head_items[logo + 1] if logo + 1 < len(head_items) else head_items[logo][: -len(" logo")]
    elif "Sponsor" in sections and sections["Sponsor"].items:
        sponsor_name = sections["Sponsor"].items[0]
    funder = sections["Funder types"].items[0] if "Funder types" in sections and sections["Funder types"].items else None
    if sponsor_name:
        agency = None
        if funder:
            agency = read_enum(_agency_class, funder, "Funder types")
            raw[f"{P}/sponsorCollaboratorsModule/leadSponsor/class"] = funder
        fields["lead_sponsor"] = Organization(name=sponsor_name, agency_class=agency)
        origins[f"{P}/sponsorCollaboratorsModule/leadSponsor/name"] = "page header › sponsor"

    if s := sections.get("Status and phase"):
        items = s.items
        if items:
            fields["overall_status"] = read_choice(display.overall_status, items[0])
            raw[f"{P}/statusModule/overallStatus"] = items[0]
            origins[f"{P}/statusModule/overallStatus"] = "Status and phase"
        if len(items) > 1:
            fields["phases"] = read_enum(display.phases, " ".join(items[1:]), "Status and phase")
            raw[f"{P}/designModule/phases"] = " ".join(items[1:])
            origins[f"{P}/designModule/phases"] = "Status and phase"
    if s := sections.get("Conditions"):
        fields["conditions"] = s.items
        origins[f"{P}/conditionsModule/conditions"] = "Conditions"
    interventions: list[Intervention] = []
    if s := sections.get("Treatments"):
        for item in s.items:
            match = TREATMENT.match(item)
            if not match:
                raise RecordError(f"treatment {item!r} is not of the form 'Type: name'", "Treatments")
            interventions.append(Intervention(
                type=read_choice(display.intervention_type, match.group(1)),
                name=match.group(2).strip(),
            ))
        origins[f"{P}/armsInterventionsModule/interventions"] = "Treatments"
    if s := sections.get("Study type"):
        fields["study_type"] = read_choice(display.study_type, s.items[0])
        origins[f"{P}/designModule/studyType"] = "Study type"
    if s := sections.get("About"):
        fields["brief_summary"] = s.text or None
        origins[f"{P}/descriptionModule/briefSummary"] = "About"
    if s := sections.get("Enrollment"):
        text = s.items[0]
        fields["enrollment_count"] = read_enum(display.count, text, "Enrollment")
        if "estimated" in text.lower():
            fields["enrollment_type"] = "ESTIMATED"
        elif "actual" in text.lower():
            fields["enrollment_type"] = "ACTUAL"
        raw[f"{P}/designModule/enrollmentInfo/count"] = text
        origins[f"{P}/designModule/enrollmentInfo/count"] = "Enrollment"

    eligibility: dict = {}
    if s := sections.get("Sex"):
        eligibility["sex"] = read_choice(display.sex, s.items[0])
        origins[f"{P}/eligibilityModule/sex"] = "Sex"
    if s := sections.get("Ages"):
        eligibility["minimum_age"], eligibility["maximum_age"] = read_enum(display.age_range, s.items[0], "Ages")
        raw[f"{P}/eligibilityModule/minimumAge"] = s.items[0]
        origins[f"{P}/eligibilityModule/minimumAge"] = "Ages"
        origins[f"{P}/eligibilityModule/maximumAge"] = "Ages"
    if s := sections.get("Volunteers"):
        eligibility["healthy_volunteers"] = read_enum(display.healthy_volunteers, s.items[0], "Volunteers")
        origins[f"{P}/eligibilityModule/healthyVolunteers"] = "Volunteers"
    parts = []
    for heading, key in (("Inclusion criteria", "inclusion"), ("Exclusion criteria", "exclusion")):
        if s := sections.get(heading):
            eligibility[key] = split_list_items(s.lines)
            parts.append(f"{heading.replace(' c', ' C')}:\n\n" + collapse("\n".join(s.lines)))
    if parts:
        eligibility["criteria"] = "\n\n".join(parts)
        origins[f"{P}/eligibilityModule/eligibilityCriteria"] = "Inclusion criteria / Exclusion criteria"
    fields["eligibility"] = Eligibility(**eligibility)

    design: dict = {}
    for heading, key, parse_value in (
        ("Primary purpose", "primary_purpose", display.primary_purpose),
        ("Allocation", "allocation", display.allocation),
        ("Interventional model", "intervention_model", display.intervention_model),
    ):
        if s := sections.get(heading):
            design[key] = read_enum(parse_value, s.items[0], heading)
            origins[f"{P}/designModule/designInfo/{_camel(key)}"] = heading
    if s := sections.get("Masking"):
        design["masking"], design["who_masked"] = read_enum(display.masking, s.items[0], "Masking")
        origins[f"{P}/designModule/designInfo/maskingInfo/masking"] = "Masking"
    fields["design"] = Design(**design)

    arms: list[Arm] = []
    if s := sections.get("Masking"):
        arms = _arms(s.items[1:], interventions, origins)
    for intervention in interventions:
        intervention.arm_group_labels = [a.label for a in arms if intervention.arm_reference in a.intervention_names]
    fields["arms"], fields["interventions"] = arms, interventions

    if s := sections.get("Central trial contact"):
        contacts = [c.strip() for line in s.items for c in line.split(";") if c.strip()]
        fields["central_contacts"] = [Contact(name=c, role=ContactRole.CONTACT) for c in contacts]
        origins[f"{P}/contactsLocationsModule/centralContacts"] = "Central trial contact"

    for heading, key in (("Start date", "start_date"), ("Primary completion date", "primary_completion_date"),
                         ("Completion date", "completion_date")):
        if s := sections.get(heading):
            fields[key] = {"date": read_enum(display.iso_date, s.items[0], heading)}

    source = source.model_copy(update={"origins": origins, "raw": raw})
    return Trial(**fields, source=source)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(r.title() for r in rest)


def _agency_class(text: str):
    from kg.model import AgencyClass

    key = text.strip().upper().replace(" ", "_")
    aliases = {"INDUSTRY": "INDUSTRY", "OTHER": "OTHER", "NIH": "NIH", "U.S._FED": "FED", "FEDERAL": "FED",
               "OTHER_U.S._FEDERAL_AGENCY": "FED", "INDIVIDUAL": "INDIV", "NETWORK": "NETWORK"}
    if key in aliases:
        return AgencyClass(aliases[key])
    if key in AgencyClass.__members__:
        return AgencyClass[key]
    raise ValueError(f"unknown funder type {text!r}")


def _starts_arm(items: list[str], index: int) -> bool:
    """A line followed by an arm type ("No Intervention group") starts the next arm."""
    if index + 1 >= len(items):
        return False
    try:
        display.arm_type(items[index + 1])
    except ValueError:
        return False
    return True


def _arms(items: list[str], interventions: list[Intervention], origins: dict) -> list[Arm]:
    """``N participants in K patient groups`` then per group: label, type, ``Description:``, text, ``Treatment:``, lines."""
    arms: list[Arm] = []
    index = 0
    by_reference = {i.arm_reference.lower(): i.arm_reference for i in interventions}
    while index < len(items):
        item = items[index]
        if re.match(r"^\d+ participants? in \d+ patient groups?", item):
            index += 1
            continue
        next_item = items[index + 1] if index + 1 < len(items) else ""
        try:
            arm_type = display.arm_type(next_item)
        except ValueError:
            index += 1
            continue
        label = item
        index += 2
        description: list[str] = []
        names: list[str] = []
        mode = None
        while index < len(items):
            line = items[index]
            if line == "Description:":
                mode = "description"
            elif line == "Treatment:" or line == "Treatments:":
                mode = "treatment"
            elif mode == "treatment" and TREATMENT.match(line):
                names.append(by_reference.get(line.lower(), line))
            elif mode == "description" and not _starts_arm(items, index):
                description.append(line)
            else:
                break
            index += 1
        arms.append(Arm(label=label, type=arm_type, description="\n".join(description) or None,
                        intervention_names=names))
        origins[f"{P}/armsInterventionsModule/armGroups/{len(arms) - 1}"] = f"Trial design › {label}"
    return arms
