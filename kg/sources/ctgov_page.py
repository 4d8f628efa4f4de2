"""The ClinicalTrials.gov-style text page (samples 000-002).

Layout: a title line, ``NCT ID:``, ``Last Updated:``, then headed sections. Each heading is
followed by a fixed explanatory sentence (a blurb) that is not data; the blurbs are listed
here and skipped wherever they appear. Sections may be missing or come in any order.
"""

from __future__ import annotations

import re

from kg.model import (
    Arm,
    Contact,
    ContactRole,
    DateStruct,
    Design,
    Eligibility,
    Intervention,
    Location,
    Official,
    Organization,
    Reference,
    ResponsibleParty,
    SecondaryId,
    Source,
    Trial,
)
from kg.model import Age, AgencyClass, LocationStatus, OfficialRole, ReferenceType, ResponsiblePartyType
from kg.sources import display
from kg.sources.ctgov_json import doi_from_citation
from kg.sources.errors import RecordError
from kg.sources.pagetext import (
    read_choice,
    Section,
    collapse,
    inline_value,
    labelled,
    peel_keywords,
    read_enum,
    split_address,
    split_list_items,
)

# Heading -> its explanatory sentence. Blurbs are never data.
SECTIONS: dict[str, str] = {
    "Study Results": "The study team has not published outcome measurements, participant flow, or safety data for this trial yet. Check back later for updates.",
    "Basic Information": "Get a concise snapshot of the trial, including recruitment status, study phase, enrollment targets, and key timeline milestones.",
    "Brief Summary": "Review the sponsor-provided synopsis that highlights what the study is about and why it is being conducted.",
    "Detailed Description": "Dive into the extended narrative that explains the scientific background, objectives, and procedures in greater depth.",
    "Conditions": "See the medical conditions and disease areas that this research is targeting or investigating.",
    "Study Design": "Understand how the trial is structured, including allocation methods, masking strategies, primary purpose, and other design elements.",
    "Study Groups": "Review each arm or cohort in the study, along with the interventions and objectives associated with them.",
    "Interventions": "Learn about the drugs, procedures, or behavioral strategies being tested and how they are applied within this trial.",
    "Other Intervention Names": "Discover alternative or legacy names that may be used to describe the listed interventions across different sources.",
    "Eligibility Criteria": "Check the participation requirements, including inclusion and exclusion rules, age limits, and whether healthy volunteers are accepted.",
    "Sponsors": "Meet the organizations funding or collaborating on the study and learn about their roles.",
    "Responsible Party": "Identify the individual or organization who holds primary responsibility for the study information submitted to regulators.",
    "Principal Investigators": "Learn about the lead researchers overseeing the trial and their institutional affiliations.",
    "Locations": "Explore where the study is taking place and check the recruitment status at each participating site.",
    "Countries": "Review the countries where the study has at least one active or historical site.",
    "Central Contacts": "Reach out to these primary contacts for questions about participation or study logistics.",
    "Facility Contacts": "Find local site contact details for specific facilities participating in the trial.",
    "References": "Explore related publications, articles, or registry entries linked to this study.",
    "Other Identifiers": "Review additional registry numbers or institutional identifiers associated with this trial.",
    "More Related Trials": "Additional clinical trials that may be relevant based on similarity analysis.",
}
BLURBS = set(SECTIONS.values())

BASIC_LABELS = {
    "Recruitment Status", "Clinical Phase", "Total Enrollment", "Study Classification",
    "Study Start Date", "Primary Completion Date", "Study Completion Date", "First Posted",
    "Last Update Posted", "Status Verified Date",
}
DATE_FIELDS = {
    "Study Start Date": "start_date",
    "Primary Completion Date": "primary_completion_date",
    "Study Completion Date": "completion_date",
    "First Posted": "first_post_date",
    "Last Update Posted": "last_update_post_date",
}
DESIGN_LABELS = {
    "Allocation Method", "Intervention Model", "Primary Study Purpose", "Blinding Strategy",
    "Masking Description", "Observational Model", "Time Perspective",
}
ELIGIBILITY_LABELS = {
    "Inclusion Criteria", "Exclusion Criteria", "Minimum Eligible Age", "Maximum Eligible Age",
    "Eligible Sex", "Accepts Healthy Volunteers", "Study Population",
}

P = "/protocolSection"


def looks_like(text: str) -> bool:
    return bool(re.search(r"^NCT ID:\s*\S", text, re.M)) and sum(
        1 for heading in SECTIONS if re.search(rf"^{re.escape(heading)}\s*$", text, re.M)
    ) >= 3


def split_sections(text: str) -> tuple[list[str], dict[str, Section]]:
    """The lines before the first heading, and each heading's lines (blurbs removed)."""
    head: list[str] = []
    sections: dict[str, Section] = {}
    current: Section | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped in SECTIONS:
            current = sections.setdefault(stripped, Section(stripped))
            continue
        if stripped in BLURBS:
            continue
        (current.lines if current else head).append(line.rstrip())
    return head, sections


def parse(text: str, source: Source) -> Trial:
    head, sections = split_sections(text)
    head_items = [line.strip() for line in head if line.strip()]
    origins: dict[str, str] = {}
    raw: dict[str, str] = {}

    nct = next((inline_value(i, "NCT ID") for i in head_items if i.startswith("NCT ID")), None)
    if not nct:
        raise RecordError("the page has no 'NCT ID:' line", "NCT ID")
    last_updated = next((inline_value(i, "Last Updated") for i in head_items if i.startswith("Last Updated")), None)
    title = next((i for i in head_items if not i.startswith(("NCT ID", "Last Updated"))), None)
    origins[f"{P}/identificationModule/nctId"] = "page header › NCT ID"
    if title:
        origins[f"{P}/identificationModule/briefTitle"] = "page header › title line"

    fields: dict = {"nct_id": nct, "brief_title": title}
    if last_updated:
        fields["last_update_post_date"] = DateStruct(date=read_enum(display.iso_date, last_updated, "Last Updated"))
        origins[f"{P}/statusModule/lastUpdatePostDateStruct/date"] = "page header › Last Updated"

    if "Study Results" in sections:
        results = " ".join(sections["Study Results"].items).lower()
        if "pending" in results or "no results" in results:
            fields["has_results"] = False
        elif results:
            fields["has_results"] = True

    if basic := sections.get("Basic Information"):
        _basic(basic, fields, origins, raw)
    if summary := sections.get("Brief Summary"):
        fields["brief_summary"] = summary.text or None
        origins[f"{P}/descriptionModule/briefSummary"] = "Brief Summary"
    if detail := sections.get("Detailed Description"):
        fields["detailed_description"] = detail.text or None
        origins[f"{P}/descriptionModule/detailedDescription"] = "Detailed Description"
    if conditions := sections.get("Conditions"):
        fields["conditions"], fields["keywords"] = [], []
        for index, line in enumerate(conditions.items):
            condition, keywords = peel_keywords(line)
            fields["conditions"].append(condition)
            fields["keywords"].extend(keywords)
            origins[f"{P}/conditionsModule/conditions/{index}"] = "Conditions"
            if keywords:
                raw[f"{P}/conditionsModule/conditions/{index}"] = line
    if design := sections.get("Study Design"):
        fields["design"] = _design(design, origins)

    interventions = _interventions(sections.get("Interventions"), origins)
    arms = _arms(sections.get("Study Groups"), interventions, origins)
    for intervention in interventions:
        intervention.arm_group_labels = [a.label for a in arms if intervention.arm_reference in a.intervention_names]
    fields["arms"], fields["interventions"] = arms, interventions
    if other := sections.get("Other Intervention Names"):
        # The page does not say which intervention each name belongs to; keep them all.
        fields["unattributed_other_names"] = other.items

    if eligibility := sections.get("Eligibility Criteria"):
        fields["eligibility"] = _eligibility(eligibility, origins)
    if sponsors := sections.get("Sponsors"):
        _sponsors(sponsors, fields, origins)
    if party := sections.get("Responsible Party"):
        fields["responsible_party"] = _responsible_party(party, origins)
    if officials := sections.get("Principal Investigators"):
        fields["officials"] = _officials(officials, origins)
    locations = _locations(sections.get("Locations"), origins)
    if facility := sections.get("Facility Contacts"):
        contacts = _contacts(facility, "Facility Contacts", raw)
        # Only a single site lets the page's facility contacts be attributed for sure.
        if len(locations) == 1:
            locations[0].contacts = contacts
    if countries := sections.get("Countries"):
        listed = countries.items
        if not locations:
            locations = [Location(country=c) for c in listed]
    fields["locations"] = locations
    if central := sections.get("Central Contacts"):
        fields["central_contacts"] = _contacts(central, "Central Contacts", raw)
        origins[f"{P}/contactsLocationsModule/centralContacts"] = "Central Contacts"
    if references := sections.get("References"):
        fields["references"] = _references(references, origins)
    if identifiers := sections.get("Other Identifiers"):
        _identifiers(identifiers, fields, origins)

    source = source.model_copy(update={"origins": origins, "raw": raw, "page_last_updated": last_updated})
    return Trial(**fields, source=source)


def _basic(section: Section, fields: dict, origins: dict, raw: dict) -> None:
    where = "Basic Information"
    values = labelled(section.items, BASIC_LABELS)
    if v := values.get("Recruitment Status"):
        fields["overall_status"] = read_choice(display.overall_status, v[0])
        origins[f"{P}/statusModule/overallStatus"] = f"{where} › Recruitment Status"
    if v := values.get("Clinical Phase"):
        fields["phases"] = read_enum(display.phases, " ".join(v), f"{where} › Clinical Phase")
        origins[f"{P}/designModule/phases"] = f"{where} › Clinical Phase"
    if v := values.get("Total Enrollment"):
        fields["enrollment_count"] = read_enum(display.count, v[0], f"{where} › Total Enrollment")
        origins[f"{P}/designModule/enrollmentInfo/count"] = f"{where} › Total Enrollment"
        lowered = v[0].lower()
        if "estimated" in lowered or "actual" in lowered:
            fields["enrollment_type"] = "ESTIMATED" if "estimated" in lowered else "ACTUAL"
        raw[f"{P}/designModule/enrollmentInfo/count"] = v[0]
    if v := values.get("Study Classification"):
        fields["study_type"] = read_choice(display.study_type, v[0])
        origins[f"{P}/designModule/studyType"] = f"{where} › Study Classification"
    for label, name in DATE_FIELDS.items():
        if v := values.get(label):
            fields[name] = DateStruct(date=read_enum(display.iso_date, v[0], f"{where} › {label}"))
            v2_name = {"start_date": "startDateStruct", "primary_completion_date": "primaryCompletionDateStruct",
                       "completion_date": "completionDateStruct", "first_post_date": "studyFirstPostDateStruct",
                       "last_update_post_date": "lastUpdatePostDateStruct"}[name]
            origins[f"{P}/statusModule/{v2_name}/date"] = f"{where} › {label}"
    if v := values.get("Status Verified Date"):
        fields["status_verified_date"] = read_enum(display.iso_date, v[0], f"{where} › Status Verified Date")


def _design(section: Section, origins: dict) -> Design:
    where = "Study Design"
    values = labelled(section.items, DESIGN_LABELS)
    design: dict = {}
    if v := values.get("Allocation Method"):
        design["allocation"] = read_choice(display.allocation, v[0])
        origins[f"{P}/designModule/designInfo/allocation"] = f"{where} › Allocation Method"
    if v := values.get("Intervention Model"):
        design["intervention_model"] = read_choice(display.intervention_model, v[0])
        origins[f"{P}/designModule/designInfo/interventionModel"] = f"{where} › Intervention Model"
        # A line under the model that has no label of its own is the model's description.
        if len(v) > 1:
            design["intervention_model_description"] = "\n".join(v[1:])
            origins[f"{P}/designModule/designInfo/interventionModelDescription"] = f"{where} › Intervention Model"
    if v := values.get("Primary Study Purpose"):
        design["primary_purpose"] = read_choice(display.primary_purpose, v[0])
        origins[f"{P}/designModule/designInfo/primaryPurpose"] = f"{where} › Primary Study Purpose"
    if v := values.get("Blinding Strategy"):
        design["masking"], design["who_masked"] = read_enum(display.masking, " ".join(v), f"{where} › Blinding Strategy")
        origins[f"{P}/designModule/designInfo/maskingInfo/masking"] = f"{where} › Blinding Strategy"
    if v := values.get("Masking Description"):
        design["masking_description"] = "\n".join(v)
    return Design(**design)


def _interventions(section: Section | None, origins: dict) -> list[Intervention]:
    """Blocks of: name, description lines, ``Intervention Type X``."""
    if not section:
        return []
    interventions: list[Intervention] = []
    block: list[str] = []
    for line in section.lines:
        kind = inline_value(line.strip(), "Intervention Type")
        if kind is None:
            block.append(line)
            continue
        items = [b for b in block if b.strip()]
        if not items:
            raise RecordError("an 'Intervention Type' line with no intervention name above it", "Interventions")
        name = items[0].strip()
        first = next(i for i, b in enumerate(block) if b.strip())
        where = f"Interventions › {name}"
        interventions.append(
            Intervention(
                name=name,
                type=read_choice(display.intervention_type, kind),
                description=collapse("\n".join(block[first + 1:])) or None,
            )
        )
        origins[f"{P}/armsInterventionsModule/interventions/{len(interventions) - 1}"] = where
        block = []
    return interventions


def _arms(section: Section | None, interventions: list[Intervention], origins: dict) -> list[Arm]:
    """Arms: label, description, ``Group Type X``, then (name, ``Intervention Type``, description) per intervention.

    Arm labels and intervention descriptions are told apart by the Interventions section, which
    gives each intervention's description: those lines are skipped, and what remains before the
    next ``Group Type`` is the next arm's label and description.
    """
    if not section:
        return []
    items = section.items
    described = {i.name: len([l for l in (i.description or "").splitlines() if l.strip()]) for i in interventions}
    types = {i.name: i.type for i in interventions}
    arms: list[Arm] = []
    pending: list[str] = []  # label + description lines of the arm being read
    index = 0
    while index < len(items):
        item = items[index]
        group_type = inline_value(item, "Group Type")
        if group_type is not None and item.startswith("Group Type"):
            if not pending:
                raise RecordError("a 'Group Type' line with no arm label above it", "Study Groups")
            where = f"Study Groups › {pending[0]}"
            arms.append(Arm(label=pending[0], type=read_choice(display.arm_type, group_type),
                            description="\n".join(pending[1:]) or None))
            origins[f"{P}/armsInterventionsModule/armGroups/{len(arms) - 1}"] = where
            pending = []
            index += 1
            continue
        next_item = items[index + 1] if index + 1 < len(items) else ""
        kind = inline_value(next_item, "Intervention Type") if next_item.startswith("Intervention Type") else None
        if kind is not None and arms and not pending:
            intervention_type = types.get(item) or read_choice(display.intervention_type, kind)
            arms[-1].intervention_names.append(Intervention(name=item, type=intervention_type).arm_reference)
            index += 2 + described.get(item, 1)
            continue
        pending.append(item)
        index += 1
    return arms


def _eligibility(section: Section, origins: dict) -> Eligibility:
    where = "Eligibility Criteria"
    lines = [line for line in section.lines]
    groups: dict[str, list[str]] = {}
    current: str | None = None
    for line in lines:
        if line.strip() in ELIGIBILITY_LABELS:
            current = line.strip()
            groups[current] = []
        elif current:
            groups[current].append(line)
    inclusion = split_list_items(groups.get("Inclusion Criteria", []))
    exclusion = split_list_items(groups.get("Exclusion Criteria", []))
    criteria_parts = []
    for label in ("Inclusion Criteria", "Exclusion Criteria"):
        if label in groups:
            criteria_parts.append(f"{label}:\n\n" + collapse("\n".join(groups[label])))
    values = {k: [v.strip() for v in vs if v.strip()] for k, vs in groups.items()}
    result: dict = {"criteria": "\n\n".join(criteria_parts) or None, "inclusion": inclusion, "exclusion": exclusion}
    origins[f"{P}/eligibilityModule/eligibilityCriteria"] = f"{where} › Inclusion/Exclusion Criteria"
    for label, key, parse in (
        ("Minimum Eligible Age", "minimum_age", Age.parse),
        ("Maximum Eligible Age", "maximum_age", Age.parse),
        ("Eligible Sex", "sex", display.sex),
        ("Accepts Healthy Volunteers", "healthy_volunteers", display.healthy_volunteers),
    ):
        if values.get(label):
            result[key] = read_enum(parse, values[label][0], f"{where} › {label}")
            v2_key = {"minimum_age": "minimumAge", "maximum_age": "maximumAge", "sex": "sex",
                      "healthy_volunteers": "healthyVolunteers"}[key]
            origins[f"{P}/eligibilityModule/{v2_key}"] = f"{where} › {label}"
    if values.get("Study Population"):
        result["study_population"] = "\n".join(values["Study Population"])
    return Eligibility(**result)


def _sponsors(section: Section, fields: dict, origins: dict) -> None:
    """Blocks of: name, class (optional), ``Sponsor Role lead|collaborator``."""
    block: list[str] = []
    collaborators: list[Organization] = []
    for item in section.items:
        role = inline_value(item, "Sponsor Role") if item.startswith("Sponsor Role") else None
        if role is None:
            block.append(item)
            continue
        if not block:
            raise RecordError("a 'Sponsor Role' line with no sponsor name above it", "Sponsors")
        agency = block[1] if len(block) > 1 and block[1] in AgencyClass.__members__ else None
        org = Organization(name=block[0], agency_class=agency)
        if role.lower() == "lead":
            fields["lead_sponsor"] = org
            origins[f"{P}/sponsorCollaboratorsModule/leadSponsor/name"] = f"Sponsors › {org.name}"
        else:
            collaborators.append(org)
            origins[f"{P}/sponsorCollaboratorsModule/collaborators/{len(collaborators) - 1}/name"] = f"Sponsors › {org.name}"
        block = []
    fields["collaborators"] = collaborators


def _responsible_party(section: Section, origins: dict) -> ResponsibleParty:
    items = section.items
    role = next((inline_value(i, "Responsibility Role") for i in items if i.startswith("Responsibility Role")), None)
    people = [i for i in items if not i.startswith("Responsibility Role")]
    party_type = read_enum(lambda t: ResponsiblePartyType(t.strip().upper()), role, "Responsible Party › Responsibility Role") if role else None
    origins[f"{P}/sponsorCollaboratorsModule/responsibleParty"] = "Responsible Party"
    return ResponsibleParty(
        type=party_type,
        investigator_full_name=people[0] if people else None,
        investigator_title=", ".join(p.lstrip(": ").strip() for p in people[1:]) or None,
    )


def _officials(section: Section, origins: dict) -> list[Official]:
    """Blocks of: name, ``Role: X``, affiliation lines (until the next name)."""
    items = section.items
    role_at = [i for i, item in enumerate(items) if item.startswith("Role:")]
    officials: list[Official] = []
    for n, at in enumerate(role_at):
        name = items[at - 1] if at > 0 else None
        end = role_at[n + 1] - 1 if n + 1 < len(role_at) else len(items)
        affiliation = ", ".join(items[at + 1:end]) or None
        if not name:
            raise RecordError("a 'Role:' line with no investigator name above it", "Principal Investigators")
        role = inline_value(items[at], "Role")
        officials.append(Official(name=name, affiliation=affiliation,
                                  role=read_enum(lambda t: OfficialRole(t.upper()), role, f"Principal Investigators › {name}")))
        origins[f"{P}/contactsLocationsModule/overallOfficials/{n}"] = f"Principal Investigators › {name}"
    return officials


def _locations(section: Section | None, origins: dict) -> list[Location]:
    """Blocks of: facility, ``City, State, Country``, ``Site Status [X]``."""
    if not section:
        return []
    locations: list[Location] = []
    block: list[str] = []
    for item in section.items:
        if not item.startswith("Site Status"):
            block.append(item)
            continue
        status = inline_value(item, "Site Status")
        if not block:
            raise RecordError("a 'Site Status' line with no site above it", "Locations")
        address = split_address(block[-1]) if len(block) > 1 else {}
        facility = " ".join(block[:-1]) if len(block) > 1 else block[0]
        where = f"Locations › {facility}"
        locations.append(Location(
            facility=facility,
            status=read_choice(lambda t: LocationStatus(t.upper()), status) if status else None,
            **address,
        ))
        origins[f"{P}/contactsLocationsModule/locations/{len(locations) - 1}"] = where
        block = []
    return locations


PHONE = re.compile(r"^\+?[\d\s\-().]{6,}(?:\s*(?:ext\.?|x)\s*\d+)?$", re.I)


def _contacts(section: Section, where: str, raw: dict) -> list[Contact]:
    """Blocks of: name, ``Role: X``, phone and/or email lines."""
    items = section.items
    role_at = [i for i, item in enumerate(items) if item.startswith("Role:")]
    contacts: list[Contact] = []
    for n, at in enumerate(role_at):
        name = items[at - 1] if at > 0 else None
        end = role_at[n + 1] - 1 if n + 1 < len(role_at) else len(items)
        details = items[at + 1:end]
        role_text = inline_value(items[at], "Role") or ""
        # Facility contacts are shown as "primary"/"backup"; in v2 both are the CONTACT role.
        role = ContactRole[role_text.upper()] if role_text.upper() in ContactRole.__members__ else ContactRole.CONTACT
        contacts.append(Contact(
            name=name,
            role=role,
            phone=next((d for d in details if PHONE.match(d)), None),
            email=next((d for d in details if "@" in d), None),
        ))
        if role_text.upper() != role.value:
            raw[f"{where} › {name} › Role"] = role_text
    return contacts


def _references(section: Section, origins: dict) -> list[Reference]:
    """Blocks of: citation, ``Reference Type X``, optional ``PMID: N (View on PubMed)``."""
    references: list[Reference] = []
    citation: list[str] = []
    for item in section.items:
        if item.startswith("Reference Type"):
            text = " ".join(citation)
            kind = inline_value(item, "Reference Type")
            references.append(Reference(
                citation=text or None,
                type=read_choice(lambda t: ReferenceType(t.upper()), kind) if kind else None,
                doi=doi_from_citation(text),
            ))
            origins[f"{P}/referencesModule/references/{len(references) - 1}"] = "References"
            citation = []
        elif item.startswith("PMID:") and references:
            match = re.match(r"PMID:\s*(\d+)", item)
            if match:
                references[-1].pmid = match.group(1)
        else:
            citation.append(item)
    return references


def _identifiers(section: Section, fields: dict, origins: dict) -> None:
    """Blocks of: identifier, ``Identifier Type: X``, ``Identifier Source: org_study_id|secondary_id``."""
    secondary: list[SecondaryId] = []
    current: dict | None = None
    for item in section.items:
        if item.startswith("Identifier Type:"):
            if current is not None:
                value = inline_value(item, "Identifier Type")
                current["type"] = None if value in ("-", "") else value
        elif item.startswith("Identifier Source:"):
            if current is None:
                continue
            source = (inline_value(item, "Identifier Source") or "").lower()
            if source == "org_study_id" and "org_study_id" not in fields:
                fields["org_study_id"] = current["id"]
                origins[f"{P}/identificationModule/orgStudyIdInfo/id"] = "Other Identifiers"
            else:
                secondary.append(SecondaryId(**current))
            current = None
        else:
            current = {"id": item, "type": None}
    fields["secondary_ids"] = secondary
