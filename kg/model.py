"""The typed trial record: one model for every source format.

Field names follow ClinicalTrials.gov API v2 (snake_case here, camelCase in JSON), and
enumerated fields take the v2 enumeration values, so a record read from a web page and the
same record read from v2 JSON compare equal. ``Trial.to_ctgov()`` writes the v2 shape back.

What the v2 schema cannot hold but a page carries (other intervention names the page does
not attribute to an intervention, the page's own 'last updated') is kept on the model rather
than dropped.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any

from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

NCT_ID_PATTERN = r"^NCT\d{8}$"

# Partial ISO 8601 dates as the registry writes them: a year, a year and month, or a full date.
PartialDate = Annotated[str, StringConstraints(pattern=r"^\d{4}(-\d{2}(-\d{2})?)?$")]
NctId = Annotated[str, StringConstraints(pattern=NCT_ID_PATTERN)]


class OverallStatus(StrEnum):
    ACTIVE_NOT_RECRUITING = "ACTIVE_NOT_RECRUITING"
    COMPLETED = "COMPLETED"
    ENROLLING_BY_INVITATION = "ENROLLING_BY_INVITATION"
    NOT_YET_RECRUITING = "NOT_YET_RECRUITING"
    RECRUITING = "RECRUITING"
    SUSPENDED = "SUSPENDED"
    TERMINATED = "TERMINATED"
    WITHDRAWN = "WITHDRAWN"
    AVAILABLE = "AVAILABLE"
    NO_LONGER_AVAILABLE = "NO_LONGER_AVAILABLE"
    TEMPORARILY_NOT_AVAILABLE = "TEMPORARILY_NOT_AVAILABLE"
    APPROVED_FOR_MARKETING = "APPROVED_FOR_MARKETING"
    WITHHELD = "WITHHELD"
    UNKNOWN = "UNKNOWN"


class Phase(StrEnum):
    NA = "NA"
    EARLY_PHASE1 = "EARLY_PHASE1"
    PHASE1 = "PHASE1"
    PHASE2 = "PHASE2"
    PHASE3 = "PHASE3"
    PHASE4 = "PHASE4"


class StudyType(StrEnum):
    INTERVENTIONAL = "INTERVENTIONAL"
    OBSERVATIONAL = "OBSERVATIONAL"
    EXPANDED_ACCESS = "EXPANDED_ACCESS"


class Allocation(StrEnum):
    RANDOMIZED = "RANDOMIZED"
    NON_RANDOMIZED = "NON_RANDOMIZED"
    NA = "NA"


class InterventionModel(StrEnum):
    SINGLE_GROUP = "SINGLE_GROUP"
    PARALLEL = "PARALLEL"
    CROSSOVER = "CROSSOVER"
    FACTORIAL = "FACTORIAL"
    SEQUENTIAL = "SEQUENTIAL"


class PrimaryPurpose(StrEnum):
    TREATMENT = "TREATMENT"
    PREVENTION = "PREVENTION"
    DIAGNOSTIC = "DIAGNOSTIC"
    ECT = "ECT"
    SUPPORTIVE_CARE = "SUPPORTIVE_CARE"
    SCREENING = "SCREENING"
    HEALTH_SERVICES_RESEARCH = "HEALTH_SERVICES_RESEARCH"
    BASIC_SCIENCE = "BASIC_SCIENCE"
    DEVICE_FEASIBILITY = "DEVICE_FEASIBILITY"
    OTHER = "OTHER"


class Masking(StrEnum):
    NONE = "NONE"
    SINGLE = "SINGLE"
    DOUBLE = "DOUBLE"
    TRIPLE = "TRIPLE"
    QUADRUPLE = "QUADRUPLE"


class WhoMasked(StrEnum):
    PARTICIPANT = "PARTICIPANT"
    CARE_PROVIDER = "CARE_PROVIDER"
    INVESTIGATOR = "INVESTIGATOR"
    OUTCOMES_ASSESSOR = "OUTCOMES_ASSESSOR"


class ObservationalModel(StrEnum):
    COHORT = "COHORT"
    CASE_CONTROL = "CASE_CONTROL"
    CASE_ONLY = "CASE_ONLY"
    CASE_CROSSOVER = "CASE_CROSSOVER"
    ECOLOGIC_OR_COMMUNITY = "ECOLOGIC_OR_COMMUNITY"
    FAMILY_BASED = "FAMILY_BASED"
    DEFINED_POPULATION = "DEFINED_POPULATION"
    NATURAL_HISTORY = "NATURAL_HISTORY"
    OTHER = "OTHER"


class TimePerspective(StrEnum):
    RETROSPECTIVE = "RETROSPECTIVE"
    PROSPECTIVE = "PROSPECTIVE"
    CROSS_SECTIONAL = "CROSS_SECTIONAL"
    OTHER = "OTHER"


class ActualOrEstimated(StrEnum):
    ACTUAL = "ACTUAL"
    ESTIMATED = "ESTIMATED"


class InterventionType(StrEnum):
    BEHAVIORAL = "BEHAVIORAL"
    BIOLOGICAL = "BIOLOGICAL"
    COMBINATION_PRODUCT = "COMBINATION_PRODUCT"
    DEVICE = "DEVICE"
    DIAGNOSTIC_TEST = "DIAGNOSTIC_TEST"
    DIETARY_SUPPLEMENT = "DIETARY_SUPPLEMENT"
    DRUG = "DRUG"
    GENETIC = "GENETIC"
    PROCEDURE = "PROCEDURE"
    RADIATION = "RADIATION"
    OTHER = "OTHER"

    @property
    def display(self) -> str:
        """The prefix v2 uses in ``interventionNames`` ("Drug", "Dietary Supplement")."""
        return self.value.replace("_", " ").title()


class ArmType(StrEnum):
    EXPERIMENTAL = "EXPERIMENTAL"
    ACTIVE_COMPARATOR = "ACTIVE_COMPARATOR"
    PLACEBO_COMPARATOR = "PLACEBO_COMPARATOR"
    SHAM_COMPARATOR = "SHAM_COMPARATOR"
    NO_INTERVENTION = "NO_INTERVENTION"
    OTHER = "OTHER"


class Sex(StrEnum):
    FEMALE = "FEMALE"
    MALE = "MALE"
    ALL = "ALL"


class StdAge(StrEnum):
    CHILD = "CHILD"
    ADULT = "ADULT"
    OLDER_ADULT = "OLDER_ADULT"


class AgencyClass(StrEnum):
    NIH = "NIH"
    FED = "FED"
    OTHER_GOV = "OTHER_GOV"
    INDIV = "INDIV"
    INDUSTRY = "INDUSTRY"
    NETWORK = "NETWORK"
    AMBIG = "AMBIG"
    OTHER = "OTHER"
    UNKNOWN = "UNKNOWN"


class ResponsiblePartyType(StrEnum):
    SPONSOR = "SPONSOR"
    PRINCIPAL_INVESTIGATOR = "PRINCIPAL_INVESTIGATOR"
    SPONSOR_INVESTIGATOR = "SPONSOR_INVESTIGATOR"


class OfficialRole(StrEnum):
    STUDY_CHAIR = "STUDY_CHAIR"
    STUDY_DIRECTOR = "STUDY_DIRECTOR"
    PRINCIPAL_INVESTIGATOR = "PRINCIPAL_INVESTIGATOR"
    SUB_INVESTIGATOR = "SUB_INVESTIGATOR"


class ContactRole(StrEnum):
    STUDY_CHAIR = "STUDY_CHAIR"
    STUDY_DIRECTOR = "STUDY_DIRECTOR"
    PRINCIPAL_INVESTIGATOR = "PRINCIPAL_INVESTIGATOR"
    SUB_INVESTIGATOR = "SUB_INVESTIGATOR"
    CONTACT = "CONTACT"


class LocationStatus(StrEnum):
    ACTIVE_NOT_RECRUITING = "ACTIVE_NOT_RECRUITING"
    COMPLETED = "COMPLETED"
    ENROLLING_BY_INVITATION = "ENROLLING_BY_INVITATION"
    NOT_YET_RECRUITING = "NOT_YET_RECRUITING"
    RECRUITING = "RECRUITING"
    SUSPENDED = "SUSPENDED"
    TERMINATED = "TERMINATED"
    WITHDRAWN = "WITHDRAWN"
    AVAILABLE = "AVAILABLE"


class ReferenceType(StrEnum):
    BACKGROUND = "BACKGROUND"
    RESULT = "RESULT"
    DERIVED = "DERIVED"


class AgeUnit(StrEnum):
    YEARS = "YEARS"
    MONTHS = "MONTHS"
    WEEKS = "WEEKS"
    DAYS = "DAYS"
    HOURS = "HOURS"
    MINUTES = "MINUTES"


class SourceFormat(StrEnum):
    CTGOV_JSON = "ctgov-v2-json"
    CTGOV_PAGE = "ctgov-page"
    VEEVA_PAGE = "veeva-page"
    TRIALFINDER_PAGE = "trialfinder-page"


# Enumerated fields that SHACL checks take any text: a value outside the v2 enumeration is kept as
# written and reported by validation with its place in the record, rather than losing the record.
# (left_to_right: a known value still becomes the enum member.)
T = TypeVar("T")
Lenient = Annotated[T | str, Field(union_mode="left_to_right")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=False, str_strip_whitespace=True)


class DateStruct(_Model):
    date: PartialDate
    type: ActualOrEstimated | None = None


AGE_TEXT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(year|month|week|day|hour|minute)s?\s*$", re.I)


class Age(_Model):
    """An age limit as a quantity: ``18 Years`` is value 18, unit YEARS."""

    value: float = Field(ge=0)
    unit: AgeUnit

    @classmethod
    def parse(cls, text: str) -> "Age":
        """Read ``"18 Years"``, ``"6 months"``; raise ValueError on anything else."""
        match = AGE_TEXT.match(text)
        if not match:
            raise ValueError(f"not an age: {text!r}")
        return cls(value=float(match.group(1)), unit=AgeUnit(match.group(2).upper() + "S"))

    def to_ctgov(self) -> str:
        number = int(self.value) if self.value == int(self.value) else self.value
        unit = self.unit.value.title()
        return f"{number} {unit[:-1] if number == 1 else unit}"

    @property
    def in_years(self) -> float:
        per_year = {"YEARS": 1, "MONTHS": 12, "WEEKS": 52.1775, "DAYS": 365.25, "HOURS": 8766, "MINUTES": 525960}
        return self.value / per_year[self.unit.value]


class Organization(_Model):
    name: str
    agency_class: AgencyClass | None = Field(default=None, alias="class")

    model_config = ConfigDict(populate_by_name=True, extra="forbid")


class ResponsibleParty(_Model):
    type: ResponsiblePartyType | None = None
    investigator_full_name: str | None = None
    investigator_title: str | None = None
    investigator_affiliation: str | None = None


class Official(_Model):
    name: str
    affiliation: str | None = None
    role: OfficialRole | None = None


class Contact(_Model):
    name: str | None = None
    role: ContactRole | None = None
    phone: str | None = None
    phone_ext: str | None = None
    email: str | None = None


class GeoPoint(_Model):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class Location(_Model):
    facility: str | None = None
    status: Lenient[LocationStatus] | None = None
    city: str | None = None
    state: str | None = None
    zip: str | None = None
    country: str | None = None
    contacts: list[Contact] = []
    geo_point: GeoPoint | None = None


class Reference(_Model):
    pmid: str | None = Field(default=None, pattern=r"^\d+$")
    type: Lenient[ReferenceType] | None = None
    citation: str | None = None
    doi: str | None = None  # not a v2 field: read from the citation text so it can be linked


class SecondaryId(_Model):
    id: str
    type: str | None = None
    domain: str | None = None
    link: str | None = None


class Arm(_Model):
    label: str
    type: Lenient[ArmType] | None = None
    description: str | None = None
    intervention_names: list[str] = []  # v2 form "<Type>: <name>", e.g. "Drug: Apatinib"


class Intervention(_Model):
    type: Lenient[InterventionType] | None = None
    name: str
    description: str | None = None
    arm_group_labels: list[str] = []
    other_names: list[str] = []

    @property
    def arm_reference(self) -> str:
        """How an arm names this intervention in its ``interventionNames``."""
        if isinstance(self.type, InterventionType):
            prefix = self.type.display
        else:
            prefix = str(self.type).replace("_", " ").title() if self.type else "Other"
        return f"{prefix}: {self.name}"


class Design(_Model):
    allocation: Lenient[Allocation] | None = None
    intervention_model: Lenient[InterventionModel] | None = None
    intervention_model_description: str | None = None
    primary_purpose: Lenient[PrimaryPurpose] | None = None
    observational_model: ObservationalModel | None = None
    time_perspective: TimePerspective | None = None
    masking: Lenient[Masking] | None = None
    masking_description: str | None = None
    who_masked: list[Lenient[WhoMasked]] = []


class Eligibility(_Model):
    criteria: str | None = None
    inclusion: list[str] = []
    exclusion: list[str] = []
    healthy_volunteers: bool | None = None
    sex: Lenient[Sex] | None = None
    minimum_age: Age | None = None
    maximum_age: Age | None = None
    std_ages: list[StdAge] = []
    study_population: str | None = None


class Source(_Model):
    """Where a record came from, so every value can be traced back to it."""

    file: str
    format: SourceFormat
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    member: str | None = None  # the file inside a ZIP, or the index inside a {"studies": [...]} page
    page_last_updated: PartialDate | None = None
    # For each v2 JSON pointer the parser filled, where on the source it was read:
    # the JSON pointer itself for JSON, the page section (and label) for pages.
    origins: dict[str, str] = {}
    # The text as displayed on the source, for values that were normalised ("Not yet enrolling").
    raw: dict[str, str] = {}


class Trial(_Model):
    # identification
    nct_id: NctId
    nct_id_aliases: list[NctId] = []
    org_study_id: str | None = None
    secondary_ids: list[SecondaryId] = []
    brief_title: str | None = None
    official_title: str | None = None
    acronym: str | None = None
    organization: Organization | None = None
    # status
    overall_status: Lenient[OverallStatus] | None = None
    last_known_status: Lenient[OverallStatus] | None = None
    why_stopped: str | None = None
    status_verified_date: PartialDate | None = None
    start_date: DateStruct | None = None
    primary_completion_date: DateStruct | None = None
    completion_date: DateStruct | None = None
    first_submit_date: PartialDate | None = None
    first_post_date: DateStruct | None = None
    last_update_submit_date: PartialDate | None = None
    last_update_post_date: DateStruct | None = None
    has_results: bool | None = None
    # description
    brief_summary: str | None = None
    detailed_description: str | None = None
    conditions: list[str] = []
    keywords: list[str] = []
    # design
    study_type: Lenient[StudyType] | None = None
    phases: list[Lenient[Phase]] = []
    design: Design = Design()
    enrollment_count: int | None = None
    enrollment_type: Lenient[ActualOrEstimated] | None = None
    # arms and interventions
    arms: list[Arm] = []
    interventions: list[Intervention] = []
    # names the page lists under "Other Intervention Names" without saying whose they are
    unattributed_other_names: list[str] = []
    eligibility: Eligibility = Eligibility()
    # sponsors and people
    lead_sponsor: Organization | None = None
    collaborators: list[Organization] = []
    responsible_party: ResponsibleParty | None = None
    officials: list[Official] = []
    central_contacts: list[Contact] = []
    locations: list[Location] = []
    references: list[Reference] = []
    see_also_links: list[dict[str, str]] = []
    # derived section, kept as the registry gives it (MeSH ids the registry itself assigned)
    condition_meshes: list[dict[str, str]] = []
    intervention_meshes: list[dict[str, str]] = []
    version_holder: PartialDate | None = None

    source: Source | None = None

    @field_validator("phases")
    @classmethod
    def _phases_sorted_unique(cls, phases: list) -> list:
        order = [p.value for p in Phase]
        return sorted(set(phases), key=lambda p: (order.index(p) if p in order else len(order), str(p)))

    @property
    def countries(self) -> list[str]:
        return sorted({loc.country for loc in self.locations if loc.country})

    def to_ctgov(self) -> dict[str, Any]:
        """This record as a ClinicalTrials.gov API v2 study object."""
        from kg.sources.ctgov_json import trial_to_study

        return trial_to_study(self)
