"""ClinicalTrials.gov API v2 JSON <-> Trial.

Reading keeps the v2 JSON pointer of every field it fills in ``Source.origins``, so a
validation report can say where in the record a value came from.
"""

from __future__ import annotations

import re
from typing import Any

from kg.sources.pagetext import split_list_items
from kg.model import (
    Age,
    Arm,
    Contact,
    DateStruct,
    Design,
    Eligibility,
    GeoPoint,
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

DOI_IN_CITATION = re.compile(r"doi:\s*(10\.\d{4,9}/\S+?)(?:\.?\s|\.?$)", re.I)

PROTOCOL = "/protocolSection"
# "Inclusion Criteria:", "Key Exclusion Criteria" on a line of their own (never a list item that mentions them).
CRITERIA_HEADING = re.compile(r"^\s*(?:key\s+)?(in|ex)clusion\s+criteria\s*:?\s*$", re.I)


def doi_from_citation(citation: str | None) -> str | None:
    if not citation:
        return None
    match = DOI_IN_CITATION.search(citation)
    return match.group(1) if match else None


def split_criteria(text: str | None) -> tuple[list[str], list[str]]:
    """Inclusion and exclusion items of a v2 ``eligibilityCriteria`` Markdown text."""
    if not text:
        return [], []
    parts: dict[str, list[str]] = {"inclusion": [], "exclusion": []}
    current: list[str] | None = None
    for line in text.splitlines():
        heading = CRITERIA_HEADING.match(line)
        if heading:
            current = parts[heading.group(1).lower() + "clusion"]
        elif current is not None:
            current.append(line)
    return split_list_items(parts["inclusion"]), split_list_items(parts["exclusion"])


def _date(struct: dict | None) -> DateStruct | None:
    if not struct or not struct.get("date"):
        return None
    return DateStruct(date=struct["date"], type=struct.get("type"))


def _org(data: dict | None) -> Organization | None:
    if not data or not data.get("name", data.get("fullName")):
        return None
    return Organization(name=data.get("name") or data.get("fullName"), agency_class=data.get("class"))


def _contact(data: dict) -> Contact:
    return Contact(name=data.get("name"), role=data.get("role"), phone=data.get("phone"),
                   phone_ext=data.get("phoneExt"), email=data.get("email"))


def _official(data: dict) -> Official:
    return Official(name=data["name"], affiliation=data.get("affiliation"), role=data.get("role"))


def _secondary(data: dict) -> SecondaryId:
    return SecondaryId(id=data["id"], type=data.get("type"), domain=data.get("domain"), link=data.get("link"))


def _age(text: str | None) -> Age | None:
    return Age.parse(text) if text else None


def _origins(study: dict, prefix: str = "") -> dict[str, str]:
    """Every leaf pointer of the study, mapped to itself (JSON records are their own source map)."""
    found: dict[str, str] = {}

    def walk(node: Any, pointer: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{pointer}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{pointer}/{index}")
        else:
            found[pointer] = prefix + pointer

    walk(study.get("protocolSection", {}), PROTOCOL)
    return found


def study_to_trial(study: dict[str, Any], source: Source | None = None) -> Trial:
    """Read one v2 study object. Raises ``KeyError``/``ValueError``/pydantic errors on bad data."""
    if not isinstance(study, dict) or "protocolSection" not in study:
        raise ValueError("not a ClinicalTrials.gov v2 study: no protocolSection")
    protocol = study["protocolSection"]
    ident = protocol.get("identificationModule") or {}
    status = protocol.get("statusModule") or {}
    sponsors = protocol.get("sponsorCollaboratorsModule") or {}
    desc = protocol.get("descriptionModule") or {}
    conds = protocol.get("conditionsModule") or {}
    design = protocol.get("designModule") or {}
    design_info = design.get("designInfo") or {}
    masking = design_info.get("maskingInfo") or {}
    enrollment = design.get("enrollmentInfo") or {}
    arms_mod = protocol.get("armsInterventionsModule") or {}
    elig = protocol.get("eligibilityModule") or {}
    contacts = protocol.get("contactsLocationsModule") or {}
    refs = protocol.get("referencesModule") or {}
    derived = study.get("derivedSection") or {}

    if "nctId" not in ident:
        raise ValueError("no NCT id at /protocolSection/identificationModule/nctId")
    party = sponsors.get("responsibleParty")
    inclusion, exclusion = split_criteria(elig.get("eligibilityCriteria"))
    org_study = ident.get("orgStudyIdInfo") or {}

    if source is not None:
        source = source.model_copy(update={"origins": _origins(study)})

    return Trial(
        nct_id=ident["nctId"],
        nct_id_aliases=ident.get("nctIdAliases", []),
        org_study_id=org_study.get("id"),
        secondary_ids=[_secondary(s) for s in ident.get("secondaryIdInfos", [])],
        brief_title=ident.get("briefTitle"),
        official_title=ident.get("officialTitle"),
        acronym=ident.get("acronym"),
        organization=_org(ident.get("organization")),
        overall_status=status.get("overallStatus"),
        last_known_status=status.get("lastKnownStatus"),
        why_stopped=status.get("whyStopped"),
        status_verified_date=status.get("statusVerifiedDate"),
        start_date=_date(status.get("startDateStruct")),
        primary_completion_date=_date(status.get("primaryCompletionDateStruct")),
        completion_date=_date(status.get("completionDateStruct")),
        first_submit_date=status.get("studyFirstSubmitDate"),
        first_post_date=_date(status.get("studyFirstPostDateStruct")),
        last_update_submit_date=status.get("lastUpdateSubmitDate"),
        last_update_post_date=_date(status.get("lastUpdatePostDateStruct")),
        has_results=study.get("hasResults"),
        brief_summary=desc.get("briefSummary"),
        detailed_description=desc.get("detailedDescription"),
        conditions=conds.get("conditions", []),
        keywords=conds.get("keywords", []),
        study_type=design.get("studyType"),
        phases=design.get("phases", []),
        design=Design(
            allocation=design_info.get("allocation"),
            intervention_model=design_info.get("interventionModel"),
            intervention_model_description=design_info.get("interventionModelDescription"),
            primary_purpose=design_info.get("primaryPurpose"),
            observational_model=design_info.get("observationalModel"),
            time_perspective=design_info.get("timePerspective"),
            masking=masking.get("masking"),
            masking_description=masking.get("maskingDescription"),
            who_masked=masking.get("whoMasked", []),
        ),
        enrollment_count=enrollment.get("count"),
        enrollment_type=enrollment.get("type"),
        arms=[
            Arm(
                label=a["label"],
                type=a.get("type"),
                description=a.get("description"),
                intervention_names=a.get("interventionNames", []),
            )
            for a in arms_mod.get("armGroups", [])
        ],
        interventions=[
            Intervention(
                type=i.get("type"),
                name=i["name"],
                description=i.get("description"),
                arm_group_labels=i.get("armGroupLabels", []),
                other_names=i.get("otherNames", []),
            )
            for i in arms_mod.get("interventions", [])
        ],
        eligibility=Eligibility(
            criteria=elig.get("eligibilityCriteria"),
            inclusion=inclusion,
            exclusion=exclusion,
            healthy_volunteers=elig.get("healthyVolunteers"),
            sex=elig.get("sex"),
            minimum_age=_age(elig.get("minimumAge")),
            maximum_age=_age(elig.get("maximumAge")),
            std_ages=elig.get("stdAges", []),
            study_population=elig.get("studyPopulation"),
        ),
        lead_sponsor=_org(sponsors.get("leadSponsor")),
        collaborators=[o for o in map(_org, sponsors.get("collaborators", [])) if o],
        responsible_party=(
            ResponsibleParty(
                type=party.get("type"),
                investigator_full_name=party.get("investigatorFullName"),
                investigator_title=party.get("investigatorTitle"),
                investigator_affiliation=party.get("investigatorAffiliation"),
            )
            if party
            else None
        ),
        officials=[_official(o) for o in contacts.get("overallOfficials", [])],
        central_contacts=[_contact(c) for c in contacts.get("centralContacts", [])],
        locations=[
            Location(
                facility=loc.get("facility"),
                status=loc.get("status"),
                city=loc.get("city"),
                state=loc.get("state"),
                zip=loc.get("zip"),
                country=loc.get("country"),
                contacts=[_contact(c) for c in loc.get("contacts", [])],
                geo_point=GeoPoint(**loc["geoPoint"]) if loc.get("geoPoint") else None,
            )
            for loc in contacts.get("locations", [])
        ],
        references=[
            Reference(
                pmid=r.get("pmid"),
                type=r.get("type"),
                citation=r.get("citation"),
                doi=doi_from_citation(r.get("citation")),
            )
            for r in refs.get("references", [])
        ],
        see_also_links=refs.get("seeAlsoLinks", []),
        condition_meshes=(derived.get("conditionBrowseModule") or {}).get("meshes", []),
        intervention_meshes=(derived.get("interventionBrowseModule") or {}).get("meshes", []),
        version_holder=(derived.get("miscInfoModule") or {}).get("versionHolder"),
        source=source,
    )


def _clean(node: Any) -> Any:
    """Drop empty values so the output reads like the registry's own JSON."""
    if isinstance(node, dict):
        cleaned = {k: _clean(v) for k, v in node.items()}
        return {k: v for k, v in cleaned.items() if v not in (None, [], {}, "")}
    if isinstance(node, list):
        return [c for c in (_clean(v) for v in node) if c not in (None, [], {}, "")]
    return node


def _date_out(struct: DateStruct | None) -> dict | None:
    return struct.model_dump(mode="json") if struct else None


def _contact_out(contact: Contact) -> dict:
    return {"name": contact.name, "role": contact.role, "phone": contact.phone, "phoneExt": contact.phone_ext,
            "email": contact.email}


def _org_out(org: Organization | None) -> dict | None:
    return org.model_dump(mode="json", by_alias=True) if org else None


def trial_to_study(trial: Trial) -> dict[str, Any]:
    """The v2 study object for a trial (only the fields the trial holds)."""
    t = trial
    d = t.design
    e = t.eligibility
    study = {
        "protocolSection": {
            "identificationModule": {
                "nctId": t.nct_id,
                "nctIdAliases": t.nct_id_aliases,
                "orgStudyIdInfo": {"id": t.org_study_id} if t.org_study_id else None,
                "secondaryIdInfos": [s.model_dump(mode="json") for s in t.secondary_ids],
                "organization": (
                    {"fullName": t.organization.name, "class": t.organization.agency_class}
                    if t.organization
                    else None
                ),
                "briefTitle": t.brief_title,
                "officialTitle": t.official_title,
                "acronym": t.acronym,
            },
            "statusModule": {
                "statusVerifiedDate": t.status_verified_date,
                "overallStatus": t.overall_status,
                "lastKnownStatus": t.last_known_status,
                "whyStopped": t.why_stopped,
                "startDateStruct": _date_out(t.start_date),
                "primaryCompletionDateStruct": _date_out(t.primary_completion_date),
                "completionDateStruct": _date_out(t.completion_date),
                "studyFirstSubmitDate": t.first_submit_date,
                "studyFirstPostDateStruct": _date_out(t.first_post_date),
                "lastUpdateSubmitDate": t.last_update_submit_date,
                "lastUpdatePostDateStruct": _date_out(t.last_update_post_date),
            },
            "sponsorCollaboratorsModule": {
                "responsibleParty": (
                    {
                        "type": t.responsible_party.type,
                        "investigatorFullName": t.responsible_party.investigator_full_name,
                        "investigatorTitle": t.responsible_party.investigator_title,
                        "investigatorAffiliation": t.responsible_party.investigator_affiliation,
                    }
                    if t.responsible_party
                    else None
                ),
                "leadSponsor": _org_out(t.lead_sponsor),
                "collaborators": [_org_out(c) for c in t.collaborators],
            },
            "descriptionModule": {
                "briefSummary": t.brief_summary,
                "detailedDescription": t.detailed_description,
            },
            "conditionsModule": {"conditions": t.conditions, "keywords": t.keywords},
            "designModule": {
                "studyType": t.study_type,
                "phases": t.phases,
                "designInfo": {
                    "allocation": d.allocation,
                    "interventionModel": d.intervention_model,
                    "interventionModelDescription": d.intervention_model_description,
                    "primaryPurpose": d.primary_purpose,
                    "observationalModel": d.observational_model,
                    "timePerspective": d.time_perspective,
                    "maskingInfo": {
                        "masking": d.masking,
                        "maskingDescription": d.masking_description,
                        "whoMasked": d.who_masked,
                    },
                },
                "enrollmentInfo": {"count": t.enrollment_count, "type": t.enrollment_type},
            },
            "armsInterventionsModule": {
                "armGroups": [
                    {
                        "label": a.label,
                        "type": a.type,
                        "description": a.description,
                        "interventionNames": a.intervention_names,
                    }
                    for a in t.arms
                ],
                "interventions": [
                    {
                        "type": i.type,
                        "name": i.name,
                        "description": i.description,
                        "armGroupLabels": i.arm_group_labels,
                        "otherNames": i.other_names,
                    }
                    for i in t.interventions
                ],
            },
            "eligibilityModule": {
                "eligibilityCriteria": e.criteria,
                "healthyVolunteers": e.healthy_volunteers,
                "sex": e.sex,
                "minimumAge": e.minimum_age.to_ctgov() if e.minimum_age else None,
                "maximumAge": e.maximum_age.to_ctgov() if e.maximum_age else None,
                "stdAges": e.std_ages,
                "studyPopulation": e.study_population,
            },
            "contactsLocationsModule": {
                "centralContacts": [_contact_out(c) for c in t.central_contacts],
                "overallOfficials": [o.model_dump(mode="json") for o in t.officials],
                "locations": [
                    {
                        "facility": loc.facility,
                        "status": loc.status,
                        "city": loc.city,
                        "state": loc.state,
                        "zip": loc.zip,
                        "country": loc.country,
                        "contacts": [_contact_out(c) for c in loc.contacts],
                        "geoPoint": loc.geo_point.model_dump() if loc.geo_point else None,
                    }
                    for loc in t.locations
                ],
            },
            "referencesModule": {
                "references": [
                    {"pmid": r.pmid, "type": r.type, "citation": r.citation} for r in t.references
                ],
                "seeAlsoLinks": t.see_also_links,
            },
        },
        "derivedSection": {
            "miscInfoModule": {"versionHolder": t.version_holder},
            "conditionBrowseModule": {"meshes": t.condition_meshes},
            "interventionBrowseModule": {"meshes": t.intervention_meshes},
        },
        "hasResults": t.has_results,
    }
    # StrEnum values are str, so json.dumps writes them as their value.
    return _clean(study)
