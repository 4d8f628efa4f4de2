"""Names -> concepts: drugs in intervention texts, conditions, organizations and places.

Every match says how it was made (``method``) and how sure it is (``confidence``), and keeps the
text it matched; a text that matches nothing is reported, never dropped.

Methods, from most to least certain:
  label / synonym / code-name / brand-name   the text (or a whole-word part of it) is a name in the table
  qualified     a condition written with a stage or setting qualifier ("Recurrent or Metastatic X")
  fuzzy         a misspelling within a small edit distance of a name ("Nasopharangeal Cancer")
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass
from functools import cached_property

from kg.concepts import Concept, ConceptTables

NAME_CONFIDENCE = {"label": 1.0, "synonym": 0.95, "code-name": 0.95, "brand-name": 0.9}
# A drug named in a description may be optional ("or paclitaxel"): slightly less certain.
WHERE_FACTOR = {"name": 1.0, "other-name": 1.0, "description": 0.9}
FUZZY_THRESHOLD = 0.88
CONDITION_QUALIFIERS = (
    "recurrent or metastatic", "recurrent metastatic", "locally advanced", "de novo metastatic", "metastatic",
    "recurrent", "advanced", "unresectable", "refractory", "relapsed", "resectable", "early stage",
)
# Texts that registries put among conditions but that name no disease.
NOT_CONDITIONS = {"efficacy", "safety", "toxicity", "tolerability", "survival", "quality of life",
                  "immunotherapy", "chemotherapy", "radiotherapy", "healthy", "healthy volunteers"}
ORG_WORDS = re.compile(
    r"\b(university|universtiy|hospital|college|institute|center|centre|clinic|co\b|ltd|inc|corp|"
    r"company|pharma\w*|bio\w*|group|foundation|society|association|network|council|ministry|"
    r"department|academy|laborator\w*|organi[sz]ation|trust|gmbh|ag\b|s\.a\.|llc|plc|oncology)",
    re.I,
)


def normalise(text: str) -> str:
    """Lower case, ASCII, punctuation to spaces: ``Albumin-paclitaxel`` -> ``albumin paclitaxel``."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", " ", folded.lower()).strip()


def _code_variants(code: str) -> set[str]:
    """``SHR-1210`` -> {``shr 1210``, ``shr1210``}: records write code names with and without hyphens."""
    plain = normalise(code)
    compact = plain.replace(" ", "")
    spaced = re.sub(r"(?<=[a-z])(?=\d)|(?<=\d)(?=[a-z])", " ", compact)
    return {plain, compact, spaced}


@dataclass(frozen=True)
class Match:
    concept: Concept
    text: str          # the text as it appears in the source
    method: str
    confidence: float
    where: str = "name"


@dataclass(frozen=True)
class Resolution:
    """The outcome for one source text: its matches (possibly none)."""

    text: str
    matches: tuple[Match, ...]

    @property
    def resolved(self) -> bool:
        return bool(self.matches)


class Resolver:
    def __init__(self, tables: ConceptTables):
        self.tables = tables
        # Registries repeat the same strings across many records: resolve each text once.
        self._cache: dict[tuple, object] = {}

    def _cached(self, key: tuple, compute):
        if key not in self._cache:
            if len(self._cache) > 200_000:
                self._cache.clear()
            self._cache[key] = compute()
        return self._cache[key]

    @cached_property
    def _names(self) -> dict[str, dict[str, tuple[Concept, str]]]:
        """Per kind: normalised name -> (concept, name kind). Labels win over synonyms on clashes."""
        index: dict[str, dict[str, tuple[Concept, str]]] = {}
        rank = {"label": 0, "synonym": 1, "code-name": 1, "brand-name": 2}
        for kind, concepts in self.tables.by_kind.items():
            names: dict[str, tuple[Concept, str]] = {}
            for concept in concepts.values():
                for text, name_kind in concept.names:
                    variants = _code_variants(text) if name_kind == "code-name" else {normalise(text)}
                    for variant in variants:
                        if not variant:
                            continue
                        if variant not in names or rank[name_kind] < rank[names[variant][1]]:
                            names[variant] = (concept, name_kind)
            index[kind] = names
        return index

    @cached_property
    def _longest_name(self) -> dict[str, int]:
        return {kind: max((len(n.split()) for n in names), default=1) for kind, names in self._names.items()}

    # ------------------------------------------------------------------ drugs

    def drugs_in(self, text: str | None, where: str = "name") -> list[Match]:
        # "Placebo matching apatinib" gives no apatinib.
        if text and where != "description" and re.search(r"\bplacebo\b", text, re.I):
            return []
        return self._cached(("drugs", text, where), lambda: self._drugs_in(text, where))

    def _drugs_in(self, text: str | None, where: str = "name") -> list[Match]:
        """Every drug named in a text, longest names first, without overlaps.

        ``Induction Chemotherapy-Albumin-paclitaxel combined with cisplatin`` gives nab-paclitaxel
        (via "albumin paclitaxel", not plain paclitaxel) and cisplatin. The matched text is kept
        exactly as the source writes it ("Albumin-paclitaxel", "SHR-1210").
        """
        if not text:
            return []
        names = self._names["drug"]
        words = list(re.finditer(r"[^\W_]+", text))
        tokens = [normalise(w.group(0)) for w in words]
        found: list[Match] = []
        seen: set[str] = set()
        index = 0
        while index < len(tokens):
            for size in range(min(self._longest_name["drug"], len(tokens) - index), 0, -1):
                phrase = " ".join(tokens[index:index + size])
                hit = names.get(phrase) or (names.get(phrase.replace(" ", "")) if size <= 3 else None)
                if not hit:
                    continue
                concept, name_kind = hit
                if concept.id not in seen:
                    original = text[words[index].start():words[index + size - 1].end()]
                    found.append(Match(concept, original, name_kind,
                                       round(NAME_CONFIDENCE[name_kind] * WHERE_FACTOR[where], 3), where))
                    seen.add(concept.id)
                index += size
                break
            else:
                index += 1
        return found

    # ------------------------------------------------------------------ conditions

    def condition(self, text: str) -> Resolution:
        return self._cached(("condition", text), lambda: self._condition(text))

    def _condition(self, text: str) -> Resolution:
        key = normalise(text)
        if not key or key in NOT_CONDITIONS:
            return Resolution(text, ())
        names = self._names["condition"]
        if key in names:
            concept, name_kind = names[key]
            return Resolution(text, (Match(concept, text, name_kind, NAME_CONFIDENCE[name_kind]),))
        # "Nasopharyngeal Cancinoma (NPC)": try without the parenthesised abbreviation.
        bare = normalise(re.sub(r"\([^)]*\)", " ", text))
        if bare in names:
            concept, name_kind = names[bare]
            return Resolution(text, (Match(concept, text, name_kind, NAME_CONFIDENCE[name_kind] * 0.98),))
        for qualifier in CONDITION_QUALIFIERS:
            if bare.startswith(qualifier + " ") and bare[len(qualifier) + 1:] in names:
                concept, _ = names[bare[len(qualifier) + 1:]]
                return Resolution(text, (Match(concept, text, "qualified", 0.85),))
        best = self._fuzzy(bare, "condition")
        return Resolution(text, (best,) if best else ())

    def _fuzzy(self, key: str, kind: str, text: str | None = None) -> Match | None:
        """A misspelling: same words as a name but for one or two typos in one or two long words.

        "Nasopharangeal Cancer" and "Nasopharyngeal Cancinoma" qualify; "Oropharyngeal Carcinoma"
        (another disease) and "Esophageal Adenocarcinoma" (another histology) do not.
        """
        words = key.split()
        best: tuple[float, str] | None = None
        for name in difflib.get_close_matches(key, self._names[kind].keys(), n=5, cutoff=FUZZY_THRESHOLD):
            other = name.split()
            if len(other) != len(words):
                continue
            differing = [(a, b) for a, b in zip(words, other) if a != b]
            if not differing or len(differing) > 2:
                continue
            if all(len(a) >= 6 and a[0] == b[0] and edit_distance(a, b) <= 2 for a, b in differing):
                ratio = difflib.SequenceMatcher(None, key, name).ratio()
                if best is None or ratio > best[0]:
                    best = (ratio, name)
        if best is None:
            return None
        concept, _ = self._names[kind][best[1]]
        return Match(concept, text or key, "fuzzy", round(best[0] * 0.9, 3))

    # ------------------------------------------------------------------ organizations and places

    def organization(self, name: str) -> Match | None:
        return self._cached(("organization", name), lambda: self._organization(name))

    def _organization(self, name: str) -> Match | None:
        key = normalise(name)
        names = self._names["organization"]
        if key in names:
            concept, name_kind = names[key]
            return Match(concept, name, name_kind, NAME_CONFIDENCE[name_kind])
        without_article = re.sub(r"^the ", "", key)
        if without_article in names:
            concept, name_kind = names[without_article]
            return Match(concept, name, name_kind, NAME_CONFIDENCE[name_kind] * 0.98)
        # No fuzzy matching for organizations: "Second Affiliated Hospital of X" is not "First ...".
        return None

    def place(self, name: str | None, kind: str | None = None) -> Match | None:
        return self._cached(("place", name, kind), lambda: self._place(name, kind))

    def _place(self, name: str | None, kind: str | None = None) -> Match | None:
        if not name:
            return None
        key = normalise(name)
        names = self._names["place"]
        for candidate in (key, re.sub(r" (municipality|province|city|shi|sheng)$", "", key)):
            hit = names.get(candidate)
            if hit and (kind is None or hit[0].extra.get("kind") == kind or
                        (kind == "province" and hit[0].extra.get("kind") == "province")):
                concept, name_kind = hit
                return Match(concept, name, name_kind, NAME_CONFIDENCE[name_kind])
        # "Chongqing" as a province-level municipality: the province concept has its own label.
        if kind:
            for concept in self.tables["place"].values():
                if concept.extra.get("kind") == kind and normalise(concept.label).startswith(key + " "):
                    return Match(concept, name, "synonym", 0.9)
        return None


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (small words only: used to tell typos from other words)."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def looks_like_person(name: str) -> bool:
    """``Ming-Yuan Chen`` is a person; ``Sun Yat-sen University`` is not (sponsors can be either)."""
    if ORG_WORDS.search(name) or any(ch.isdigit() for ch in name):
        return False
    words = re.sub(r",.*$", "", name).split()
    return 2 <= len(words) <= 4 and all(w[:1].isupper() for w in words)
