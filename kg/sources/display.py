"""Display values as web pages show them -> ClinicalTrials.gov v2 enumerations and quantities.

Each function accepts either the v2 value itself ("NOT_YET_RECRUITING") or a display form
("Not yet enrolling") and raises ``ValueError`` naming the text it could not read.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import TypeVar

from kg.model import (
    Age,
    Allocation,
    ArmType,
    InterventionModel,
    InterventionType,
    Masking,
    OverallStatus,
    Phase,
    PrimaryPurpose,
    Sex,
    StudyType,
    WhoMasked,
)

E = TypeVar("E", bound=StrEnum)


def _key(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


# Display forms used by registry front-ends (ClinicalTrials.gov's own labels and the
# patient-facing wordings of aggregator sites), keyed by their normalised text.
_STATUS = {
    "not yet enrolling": OverallStatus.NOT_YET_RECRUITING,
    "not yet recruiting": OverallStatus.NOT_YET_RECRUITING,
    "enrolling": OverallStatus.RECRUITING,
    "recruiting": OverallStatus.RECRUITING,
    "active not recruiting": OverallStatus.ACTIVE_NOT_RECRUITING,
    "active not enrolling": OverallStatus.ACTIVE_NOT_RECRUITING,
    "enrolling by invitation": OverallStatus.ENROLLING_BY_INVITATION,
    "completed": OverallStatus.COMPLETED,
    "suspended": OverallStatus.SUSPENDED,
    "terminated": OverallStatus.TERMINATED,
    "withdrawn": OverallStatus.WITHDRAWN,
    "unknown status": OverallStatus.UNKNOWN,
    "unknown": OverallStatus.UNKNOWN,
}
_PHASE = {
    "early phase 1": [Phase.EARLY_PHASE1],
    "phase 1": [Phase.PHASE1],
    "phase 2": [Phase.PHASE2],
    "phase 3": [Phase.PHASE3],
    "phase 4": [Phase.PHASE4],
    "phase 1 phase 2": [Phase.PHASE1, Phase.PHASE2],
    "phase 1 2": [Phase.PHASE1, Phase.PHASE2],
    "phase 2 phase 3": [Phase.PHASE2, Phase.PHASE3],
    "phase 2 3": [Phase.PHASE2, Phase.PHASE3],
    "not applicable": [Phase.NA],
    "n a": [Phase.NA],
    "na": [Phase.NA],
}
_ALLOCATION = {"n a": Allocation.NA, "na": Allocation.NA, "randomized": Allocation.RANDOMIZED,
               "non randomized": Allocation.NON_RANDOMIZED}
_MODEL = {
    "single group assignment": InterventionModel.SINGLE_GROUP,
    "parallel assignment": InterventionModel.PARALLEL,
    "crossover assignment": InterventionModel.CROSSOVER,
    "factorial assignment": InterventionModel.FACTORIAL,
    "sequential assignment": InterventionModel.SEQUENTIAL,
}
_MASKING = {
    "none open label": Masking.NONE,
    "open label": Masking.NONE,
    "none": Masking.NONE,
    "single": Masking.SINGLE,
    "double": Masking.DOUBLE,
    "triple": Masking.TRIPLE,
    "quadruple": Masking.QUADRUPLE,
}
_WHO_MASKED = {
    "participant": WhoMasked.PARTICIPANT,
    "care provider": WhoMasked.CARE_PROVIDER,
    "investigator": WhoMasked.INVESTIGATOR,
    "outcomes assessor": WhoMasked.OUTCOMES_ASSESSOR,
}
_ARM_TYPE = {
    "experimental group": ArmType.EXPERIMENTAL,
    "experimental": ArmType.EXPERIMENTAL,
    "active comparator": ArmType.ACTIVE_COMPARATOR,
    "active comparator group": ArmType.ACTIVE_COMPARATOR,
    "placebo comparator": ArmType.PLACEBO_COMPARATOR,
    "placebo comparator group": ArmType.PLACEBO_COMPARATOR,
    "sham comparator": ArmType.SHAM_COMPARATOR,
    "no intervention": ArmType.NO_INTERVENTION,
    "no intervention group": ArmType.NO_INTERVENTION,
    "other": ArmType.OTHER,
    "other group": ArmType.OTHER,
}
_SEX = {"all": Sex.ALL, "female": Sex.FEMALE, "male": Sex.MALE, "both": Sex.ALL}


def _enum(enum: type[E], text: str, display: dict[str, E], what: str) -> E:
    value = text.strip()
    if value in enum.__members__:
        return enum[value]
    key = _key(value)
    if key in display:
        return display[key]
    if key.replace(" ", "_").upper() in enum.__members__:
        return enum[key.replace(" ", "_").upper()]
    raise ValueError(f"unknown {what} {text!r}")


def overall_status(text: str) -> OverallStatus:
    return _enum(OverallStatus, text, _STATUS, "status")


def study_type(text: str) -> StudyType:
    return _enum(StudyType, text, {"expanded access": StudyType.EXPANDED_ACCESS}, "study type")


def allocation(text: str) -> Allocation:
    return _enum(Allocation, text, _ALLOCATION, "allocation")


def intervention_model(text: str) -> InterventionModel:
    return _enum(InterventionModel, text, _MODEL, "intervention model")


def primary_purpose(text: str) -> PrimaryPurpose:
    return _enum(PrimaryPurpose, text, {"supportive care": PrimaryPurpose.SUPPORTIVE_CARE,
                                        "health services research": PrimaryPurpose.HEALTH_SERVICES_RESEARCH,
                                        "basic science": PrimaryPurpose.BASIC_SCIENCE,
                                        "device feasibility": PrimaryPurpose.DEVICE_FEASIBILITY}, "primary purpose")


def intervention_type(text: str) -> InterventionType:
    return _enum(InterventionType, text, {"dietary supplement": InterventionType.DIETARY_SUPPLEMENT,
                                          "combination product": InterventionType.COMBINATION_PRODUCT,
                                          "diagnostic test": InterventionType.DIAGNOSTIC_TEST}, "intervention type")


def arm_type(text: str) -> ArmType:
    return _enum(ArmType, text, _ARM_TYPE, "arm type")


def sex(text: str) -> Sex:
    return _enum(Sex, text, _SEX, "sex")


def phases(text: str) -> list[Phase]:
    """``PHASE2``, ``PHASE1, PHASE2``, ``Phase 2``, ``Phase 1/Phase 2``, ``N/A``."""
    tokens = re.findall(r"EARLY_PHASE1|PHASE[1-4]|\bNA\b", text)
    if tokens and " ".join(tokens) == " ".join(re.findall(r"[A-Z_0-9]+", text)):
        return [Phase(t) for t in tokens]
    key = _key(text)
    if key in _PHASE:
        return list(_PHASE[key])
    raise ValueError(f"unknown phase {text!r}")


def masking(text: str) -> tuple[Masking, list[WhoMasked]]:
    """``NONE``, ``None (Open label)``, ``DOUBLE (PARTICIPANT, INVESTIGATOR)``, ``Double (Participant, Investigator)``."""
    head, _, rest = text.partition("(")
    who: list[WhoMasked] = []
    if rest and _key(rest) not in ("open label",):
        for part in rest.rstrip(")").split(","):
            who.append(_enum(WhoMasked, part, _WHO_MASKED, "masked role"))
        return _enum(Masking, head, _MASKING, "masking"), who
    return _enum(Masking, text, _MASKING, "masking"), who


def healthy_volunteers(text: str) -> bool:
    key = _key(text)
    if key in ("yes", "accepts healthy volunteers", "healthy volunteers accepted", "true"):
        return True
    if key in ("no", "no healthy volunteers", "false"):
        return False
    raise ValueError(f"unknown healthy-volunteers value {text!r}")


def age_range(text: str) -> tuple[Age | None, Age | None]:
    """``18 to 65 years old``, ``18+ years old``, ``up to 75 years old``."""
    t = text.strip().lower()
    match = re.match(r"^(\d+(?:\.\d+)?)\s*(?:to|-|–)\s*(\d+(?:\.\d+)?)\s*(year|month|week|day)s?(?:\s+old)?$", t)
    if match:
        unit = match.group(3)
        return Age.parse(f"{match.group(1)} {unit}"), Age.parse(f"{match.group(2)} {unit}")
    match = re.match(r"^(\d+(?:\.\d+)?)\s*\+\s*(year|month|week|day)s?(?:\s+old)?$", t)
    if match:
        return Age.parse(f"{match.group(1)} {match.group(2)}"), None
    match = re.match(r"^up to\s+(\d+(?:\.\d+)?)\s*(year|month|week|day)s?(?:\s+old)?$", t)
    if match:
        return None, Age.parse(f"{match.group(1)} {match.group(2)}")
    raise ValueError(f"unknown age range {text!r}")


def count(text: str) -> int:
    """The first whole number in ``170 participants``, ``55 estimated patients``, ``1,200`` (a sign is kept:
    a negative count is wrong, and validation, not reading, says so)."""
    match = re.search(r"[-−]?\d[\d,]*", text)
    if not match:
        raise ValueError(f"no number in {text!r}")
    return int(match.group(0).replace(",", "").replace("−", "-"))


def iso_date(text: str) -> str:
    """A partial ISO date as written (``2023-12``, ``2023-12-01``); never invents a day."""
    value = text.strip()
    if re.fullmatch(r"\d{4}(-\d{2}(-\d{2})?)?", value):
        return value
    raise ValueError(f"not a date {text!r}")
