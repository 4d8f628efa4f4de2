"""The curated concept tables (``ontology/concepts/*.yaml``): drugs, conditions, organizations,
places and targets, each with synonyms, classes and identifiers in public vocabularies, and
the evidence for every identifier."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from kg.vocabularies import VOCABULARIES

KINDS = {
    "drug": "drugs*.yaml",
    "condition": "conditions.yaml",
    "organization": "organizations.yaml",
    "place": "places.yaml",
    "target": "targets.yaml",
}


@dataclass(frozen=True)
class Xref:
    vocabulary: str
    id: str
    evidence: str


@dataclass(frozen=True)
class Concept:
    kind: str
    id: str
    label: str
    synonyms: tuple[str, ...] = ()
    code_names: tuple[str, ...] = ()
    brand_names: tuple[str, ...] = ()
    classes: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    broader: tuple[str, ...] = ()
    xrefs: tuple[Xref, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    source_file: str = ""

    @property
    def names(self) -> list[tuple[str, str]]:
        """Every name with its kind: (text, 'label'|'synonym'|'code-name'|'brand-name')."""
        return ([(self.label, "label")] + [(s, "synonym") for s in self.synonyms]
                + [(c, "code-name") for c in self.code_names] + [(b, "brand-name") for b in self.brand_names])


class ConceptTableError(ValueError):
    pass


def _as_tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


def _concept(kind: str, entry: dict, path: Path) -> Concept:
    if not isinstance(entry, dict) or "id" not in entry or "label" not in entry:
        raise ConceptTableError(f"{path.name}: every concept needs an id and a label: {entry!r:.80}")
    xrefs = []
    for key, value in (entry.get("xrefs") or {}).items():
        if key not in VOCABULARIES:
            raise ConceptTableError(f"{path.name}: {entry['id']}: unknown vocabulary {key!r}")
        if not isinstance(value, dict) or not value.get("id") or not value.get("evidence"):
            raise ConceptTableError(f"{path.name}: {entry['id']}: {key} needs an id and its evidence")
        xrefs.append(Xref(key, str(value["id"]), str(value["evidence"])))
    known = {"id", "label", "synonyms", "code_names", "brand_names", "classes", "targets", "broader", "xrefs"}
    return Concept(
        kind=kind, id=str(entry["id"]), label=str(entry["label"]),
        synonyms=_as_tuple(entry.get("synonyms")), code_names=_as_tuple(entry.get("code_names")),
        brand_names=_as_tuple(entry.get("brand_names")), classes=_as_tuple(entry.get("classes")),
        targets=_as_tuple(entry.get("targets")), broader=_as_tuple(entry.get("broader")),
        xrefs=tuple(xrefs), extra={k: v for k, v in entry.items() if k not in known}, source_file=path.name,
    )


@dataclass(frozen=True)
class ConceptTables:
    by_kind: dict[str, dict[str, Concept]]

    def __getitem__(self, kind: str) -> dict[str, Concept]:
        return self.by_kind[kind]

    def all(self):
        for concepts in self.by_kind.values():
            yield from concepts.values()


@lru_cache(maxsize=4)
def load_concepts(concepts_dir: Path) -> ConceptTables:
    by_kind: dict[str, dict[str, Concept]] = {}
    for kind, pattern in KINDS.items():
        concepts: dict[str, Concept] = {}
        for path in sorted(Path(concepts_dir).glob(pattern)):
            entries = yaml.safe_load(path.read_text(encoding="utf-8")) or []
            for entry in entries:
                concept = _concept(kind, entry, path)
                if concept.id in concepts:
                    raise ConceptTableError(f"{path.name}: duplicate {kind} id {concept.id!r}")
                concepts[concept.id] = concept
        by_kind[kind] = concepts
    return ConceptTables(by_kind)
