"""The only place instance IRIs are made: readable, deterministic, under one configurable base.

    {base}/trial/NCT06281886                 the trial
    {base}/trial/NCT06281886/arm/1           its first arm (record order, from 1)
    {base}/trial/NCT06281886/intervention/2  its second intervention
    {base}/drug/toripalimab                  a curated drug (the concept table's id)
    {base}/graph/NCT06281886                 the named graph holding the trial's triples
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

from pyoxigraph import NamedNode


def slug(text: str) -> str:
    """``Sun Yat-sen University`` -> ``sun-yat-sen-university`` (ASCII, lower case, hyphens)."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    readable = re.sub(r"[^a-z0-9]+", "-", folded.lower()).strip("-")
    if readable:
        return readable
    # A name with no Latin letters (中山大学): a short stable hash keeps different names apart.
    return "n-" + hashlib.sha256(text.strip().encode("utf-8")).hexdigest()[:12]


class Minter:
    def __init__(self, base: str):
        self.base = base.rstrip("/")

    def _iri(self, *parts: object) -> NamedNode:
        return NamedNode("/".join([self.base, *map(str, parts)]))

    # the trial and what belongs to it alone
    def trial(self, nct: str) -> NamedNode:
        return self._iri("trial", nct)

    def trial_part(self, nct: str, kind: str, *index: object) -> NamedNode:
        """arm/1, intervention/2, intervention/2/drug/1, condition/1, site/1, official/1, contact/1,
        site/1/contact/1, reference/3, eligibility, eligibility/minimum-age, responsible-party, record."""
        return self._iri("trial", nct, kind, *index)

    def graph(self, nct: str) -> NamedNode:
        return self._iri("graph", nct)

    # shared concepts
    def drug(self, concept_id: str) -> NamedNode:
        return self._iri("drug", concept_id)

    def condition(self, concept_id: str) -> NamedNode:
        return self._iri("condition", concept_id)

    def organization(self, concept_id: str) -> NamedNode:
        return self._iri("organization", concept_id)

    def person(self, name: str) -> NamedNode:
        return self._iri("person", slug(name))

    def place(self, concept_id: str) -> NamedNode:
        return self._iri("place", concept_id)

    def target(self, symbol: str) -> NamedNode:
        return self._iri("target", symbol)

    def vocabulary(self, key: str) -> NamedNode:
        return self._iri("vocabulary", key)

    def mapping(self, kind: str, concept_id: str, vocabulary: str) -> NamedNode:
        return self._iri("mapping", kind, concept_id, vocabulary)

    # dataset-level
    def dataset(self) -> NamedNode:
        return self._iri("dataset")

    def linkset(self, vocabulary: str) -> NamedNode:
        return self._iri("dataset", "linkset", vocabulary)

    def build(self, build_id: str) -> NamedNode:
        return self._iri("build", build_id)

    def update(self, update_id: str) -> NamedNode:
        """A curator's SPARQL Update through the endpoint (a prov:Activity, see kg.updates)."""
        return self._iri("update", update_id)

    def curator(self, name: str) -> NamedNode:
        """The holder of a named update token (a prov:Agent)."""
        return self._iri("curator", slug(name))

    def software(self, version: str) -> NamedNode:
        return self._iri("software", "ctkg", version)

    def system_graph(self, name: str) -> NamedNode:
        """ontology, concepts, dataset, entities (organizations and places no concept table names)."""
        return self._iri("graph", name)
