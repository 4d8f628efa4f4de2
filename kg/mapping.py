"""Trial -> quads. One named graph per trial; curated concepts go to their own graph.

Quads are built straight as pyoxigraph terms (no intermediate rdflib graph): this is the hot
path of a build. The trial graph holds the trial and everything that belongs to it alone
(arms, interventions, mentions, sites, people, references, provenance). Organizations and places
that no concept table describes are described in one shared graph ({base}/graph/entities), so
nothing is lost and nothing is repeated: the union default graph keeps a triple once per graph
that holds it, and with a copy in every trial graph naming them (Boston: 1,620 graphs of the 10k
store) queries saw each such triple as often.
"""

from __future__ import annotations

from pathlib import PurePath

from dataclasses import dataclass, field
from urllib.parse import quote
from datetime import datetime, timezone
from typing import Iterator

from pyoxigraph import Literal, NamedNode, Quad

from kg import __version__
from kg.concepts import Concept, ConceptTables
from kg.mint import Minter, slug
from kg.model import Age, DateStruct, Location, Organization, Trial
from kg.namespaces import DCTERMS, PROV, QUDT_UNIT, SCHEMA, SKOS, XSD, LABEL, TYPE, iri, ontology_namespace
from kg.resolve import Match, Resolver, looks_like_person
from kg.vocabularies import VOCABULARIES, expand

AGE_UNITS = {"YEARS": "YR", "MONTHS": "MO", "WEEKS": "WK", "DAYS": "DAY", "HOURS": "HR", "MINUTES": "MIN"}


def xsd(name: str) -> NamedNode:
    return iri(XSD, name)


def date_literal(value: str) -> Literal:
    """Partial dates keep their precision: ``2023-12`` is an xsd:gYearMonth, never a made-up day."""
    if len(value) == 7:
        return Literal(value, datatype=xsd("gYearMonth"))
    if len(value) == 4:
        return Literal(value, datatype=xsd("gYear"))
    return Literal(value, datatype=xsd("date"))


@dataclass
class Unresolved:
    """A source text that resolved to no concept; listed by ``kg build``."""

    nct_id: str
    kind: str  # intervention | condition | organization | place
    text: str


@dataclass
class MappedTrial:
    """A trial's graph as (subject, predicate, object) tuples of pyoxigraph terms.

    Building a pyoxigraph ``Quad`` costs about 5 µs, which made it a third of the mapping time; a
    build only needs the N-Quads text (``nquads``), so quads are made only when asked for.
    """

    nct_id: str
    graph: NamedNode
    triples: list[tuple]
    # Triples about resources shared with other trials (organizations and places no concept table names),
    # for the shared graph ``shared_graph``; loading the same triple again there changes nothing.
    shared: list[tuple] = field(default_factory=list)
    shared_graph: NamedNode | None = None
    unresolved: list[Unresolved] = field(default_factory=list)
    links: dict[str, int] = field(default_factory=dict)  # concept kind -> resolved links
    _nquads: bytes | None = field(default=None, repr=False, compare=False)  # validation and loading both need it

    @property
    def quads(self) -> list[Quad]:
        return ([Quad(s, p, o, self.graph) for s, p, o in self.triples]
                + [Quad(s, p, o, self.shared_graph) for s, p, o in self.shared])

    def share(self, s, p, o) -> None:
        self.shared.append((s, p, o))

    def nquads(self) -> bytes:
        """N-Quads from the terms' own N-Triples forms (pyoxigraph escapes them)."""
        if self._nquads is None:
            g, shared = str(self.graph), str(self.shared_graph)
            self._nquads = ("".join([f"{s} {p} {o} {g} .\n" for s, p, o in self.triples])
                            + "".join([f"{s} {p} {o} {shared} .\n" for s, p, o in self.shared])).encode("utf-8")
        return self._nquads


class Mapper:
    def __init__(self, base: str, tables: ConceptTables, build_id: str | None = None,
                 build_time: datetime | None = None):
        self.mint = Minter(base)
        self.tables = tables
        self.resolver = Resolver(tables)
        self.ns = ontology_namespace(base)
        self.build_time = build_time or datetime.now(timezone.utc).replace(microsecond=0)
        self.build_id = build_id or self.build_time.strftime("%Y%m%dT%H%M%SZ")

    def c(self, local: str) -> NamedNode:
        return iri(self.ns, local)

    # ------------------------------------------------------------------ trials

    def map_trial(self, trial: Trial) -> MappedTrial:
        g = self.mint.graph(trial.nct_id)
        triples: list[tuple] = []
        out = MappedTrial(trial.nct_id, g, triples, shared_graph=self.mint.system_graph("entities"))
        c, m, nct = self.c, self.mint, trial.nct_id
        t = m.trial(nct)
        add_triple = triples.append

        def add(s, p, o) -> None:
            add_triple((s, p, o))

        def text(s, p, value) -> None:
            if value not in (None, ""):
                add(s, p, Literal(str(value)))

        add(t, TYPE, c("Trial"))
        add(t, TYPE, iri(SCHEMA, "MedicalTrial"))
        add(t, c("nctId"), Literal(nct))
        add(t, LABEL, Literal(f"{nct}: {trial.brief_title}" if trial.brief_title else nct))
        text(t, iri(SCHEMA, "name"), trial.brief_title)
        text(t, c("officialTitle"), trial.official_title)
        text(t, c("acronym"), trial.acronym)
        text(t, c("orgStudyId"), trial.org_study_id)
        for alias in trial.nct_id_aliases:
            text(t, c("secondaryId"), alias)
        for secondary in trial.secondary_ids:
            text(t, c("secondaryId"), secondary.id)
        add(t, c("registryPage"), NamedNode(expand("clinicaltrials", nct)))
        text(t, c("overallStatus"), trial.overall_status)
        text(t, c("studyType"), trial.study_type)
        for phase in trial.phases:
            text(t, c("phase"), phase)
        if trial.enrollment_count is not None:
            add(t, c("enrollment"), Literal(str(trial.enrollment_count), datatype=xsd("integer")))
        text(t, c("enrollmentType"), trial.enrollment_type)
        for prop, struct in (("startDate", trial.start_date), ("primaryCompletionDate", trial.primary_completion_date),
                             ("completionDate", trial.completion_date), ("firstPostedDate", trial.first_post_date),
                             ("lastUpdatePostedDate", trial.last_update_post_date)):
            self._date(add, t, c(prop), struct)
        if trial.status_verified_date:
            add(t, c("statusVerifiedDate"), date_literal(trial.status_verified_date))
        text(t, iri(SCHEMA, "description"), trial.brief_summary)
        text(t, c("detailedDescription"), trial.detailed_description)
        for keyword in trial.keywords:
            text(t, iri(SCHEMA, "keywords"), keyword)
        d = trial.design
        text(t, c("allocation"), d.allocation)
        text(t, c("interventionModel"), d.intervention_model)
        text(t, c("interventionModelDescription"), d.intervention_model_description)
        text(t, c("primaryPurpose"), d.primary_purpose)
        text(t, c("masking"), d.masking)
        for who in d.who_masked:
            text(t, c("whoMasked"), who)
        for name in trial.unattributed_other_names:
            text(t, c("otherInterventionName"), name)

        self._conditions(trial, t, add, out)
        interventions = self._interventions(trial, t, add, out)
        self._arms(trial, t, add, interventions)
        self._eligibility(trial, t, add)
        self._sponsors(trial, t, add, out)
        self._people(trial, t, add, out)
        self._sites(trial, t, add, out)
        self._references(trial, t, add)
        self._provenance(trial, t, add)
        return out

    def _date(self, add, subject, prop, struct: DateStruct | None) -> None:
        if struct is None:
            return
        add(subject, prop, date_literal(struct.date))
        if struct.type:
            add(subject, NamedNode(prop.value + "Type"), Literal(struct.type.value))

    def _mention(self, add, node, match: Match) -> None:
        add(node, self.c("resolvesTo"), self._concept_iri(match.concept))
        add(node, self.c("matchMethod"), Literal(match.method))
        add(node, self.c("matchConfidence"), Literal(f"{match.confidence:.3f}", datatype=xsd("decimal")))

    def _concept_iri(self, concept: Concept) -> NamedNode:
        return {"drug": self.mint.drug, "condition": self.mint.condition, "organization": self.mint.organization,
                "place": self.mint.place, "target": self.mint.target}[concept.kind](concept.id)

    def _conditions(self, trial: Trial, t, add, out: MappedTrial) -> None:
        c = self.c
        raw = trial.source.raw if trial.source else {}
        for index, condition in enumerate(trial.conditions, 1):
            node = self.mint.trial_part(trial.nct_id, "condition", index)
            add(t, c("hasConditionMention"), node)
            add(t, c("conditionText"), Literal(condition))
            add(node, TYPE, c("ConditionMention"))
            # The line as the source wrote it (keywords run into it included), not only the condition part.
            add(node, c("rawText"), Literal(raw.get(f"/protocolSection/conditionsModule/conditions/{index - 1}", condition)))
            add(node, LABEL, Literal(condition))
            resolution = self.resolver.condition(condition)
            if not resolution.resolved:
                add(node, c("matchMethod"), Literal("unmatched"))
                out.unresolved.append(Unresolved(trial.nct_id, "condition", condition))
                continue
            for match in resolution.matches:
                self._mention(add, node, match)
                add(t, c("studiesCondition"), self.mint.condition(match.concept.id))
                out.links["condition"] = out.links.get("condition", 0) + 1

    def _interventions(self, trial: Trial, t, add, out: MappedTrial) -> dict[str, NamedNode]:
        """Interventions and the drugs their name, other names and description mention."""
        c, nodes = self.c, {}
        for index, intervention in enumerate(trial.interventions, 1):
            node = self.mint.trial_part(trial.nct_id, "intervention", index)
            nodes[intervention.arm_reference] = node
            add(t, c("hasIntervention"), node)
            add(node, TYPE, c("Intervention"))
            if intervention.type == "RADIATION":
                add(node, TYPE, c("Radiotherapy"))
            add(node, LABEL, Literal(intervention.name))
            add(node, iri(SCHEMA, "name"), Literal(intervention.name))
            if intervention.type:
                add(node, c("interventionType"), Literal(str(intervention.type)))
            if intervention.description:
                add(node, iri(SCHEMA, "description"), Literal(intervention.description))
            for other in intervention.other_names:
                add(node, c("otherName"), Literal(other))
            matches: dict[str, Match] = {}
            for where, texts in (("name", [intervention.name]), ("other-name", intervention.other_names),
                                 ("description", [intervention.description])):
                for source_text in texts:
                    for match in self.resolver.drugs_in(source_text, where):
                        best = matches.get(match.concept.id)
                        if best is None or match.confidence > best.confidence:
                            matches[match.concept.id] = match
            for number, match in enumerate(matches.values(), 1):
                mention = self.mint.trial_part(trial.nct_id, "intervention", index, "drug", number)
                add(node, c("mentionsDrug"), mention)
                add(node, c("involvesDrug"), self.mint.drug(match.concept.id))
                add(mention, TYPE, c("DrugMention"))
                add(mention, c("rawText"), Literal(match.text))
                add(mention, c("matchedIn"), Literal(match.where))
                self._mention(add, mention, match)
                out.links["drug"] = out.links.get("drug", 0) + 1
            if not matches and intervention.type in ("DRUG", "BIOLOGICAL", "COMBINATION_PRODUCT"):
                out.unresolved.append(Unresolved(trial.nct_id, "intervention", intervention.name))
        return nodes

    def _arms(self, trial: Trial, t, add, interventions: dict[str, NamedNode]) -> None:
        c = self.c
        for index, arm in enumerate(trial.arms, 1):
            node = self.mint.trial_part(trial.nct_id, "arm", index)
            add(t, c("hasArm"), node)
            add(node, TYPE, c("Arm"))
            add(node, LABEL, Literal(arm.label))
            add(node, iri(SCHEMA, "name"), Literal(arm.label))
            if arm.type:
                add(node, c("armType"), Literal(str(arm.type)))
            if arm.description:
                add(node, iri(SCHEMA, "description"), Literal(arm.description))
            for name in arm.intervention_names:
                target = interventions.get(name)
                if target is not None:
                    add(node, c("hasIntervention"), target)
                else:
                    # An arm naming an intervention the trial lacks: keep the text for curators.
                    add(node, c("interventionNameText"), Literal(name))

    def _age(self, add, node, age: Age) -> None:
        add(node, TYPE, self.c("AgeLimit"))
        add(node, iri(SCHEMA, "value"), Literal(_number(age.value), datatype=xsd("decimal")))
        add(node, iri(SCHEMA, "unitCode"), iri(QUDT_UNIT, AGE_UNITS[age.unit.value]))
        add(node, iri(SCHEMA, "unitText"), Literal(age.unit.value))
        add(node, self.c("ageInYears"), Literal(_number(round(age.in_years, 4)), datatype=xsd("decimal")))
        add(node, LABEL, Literal(age.to_ctgov()))

    def _eligibility(self, trial: Trial, t, add) -> None:
        c, e = self.c, trial.eligibility
        node = self.mint.trial_part(trial.nct_id, "eligibility")
        add(t, c("hasEligibility"), node)
        add(node, TYPE, c("Eligibility"))
        if e.criteria:
            add(node, c("criteriaText"), Literal(e.criteria))
        for item in e.inclusion:
            add(node, c("inclusionCriterion"), Literal(item))
        for item in e.exclusion:
            add(node, c("exclusionCriterion"), Literal(item))
        if e.sex:
            add(node, c("sex"), Literal(str(e.sex)))
        if e.healthy_volunteers is not None:
            add(node, c("healthyVolunteers"), Literal(str(e.healthy_volunteers).lower(), datatype=xsd("boolean")))
        for which, age in (("minimum-age", e.minimum_age), ("maximum-age", e.maximum_age)):
            if age is not None:
                age_node = self.mint.trial_part(trial.nct_id, "eligibility", which)
                add(node, c("minimumAge" if which == "minimum-age" else "maximumAge"), age_node)
                self._age(add, age_node, age)
        for std_age in e.std_ages:
            add(node, c("stdAge"), Literal(std_age.value))

    def _organization(self, name: str, add, out: MappedTrial) -> NamedNode:
        """A curated organization when the name resolves, else one minted from the name (deduplicated by it)."""
        match = self.resolver.organization(name)
        if match:
            out.links["organization"] = out.links.get("organization", 0) + 1
            return self.mint.organization(match.concept.id)
        node = self.mint.organization(slug(name))
        share = out.share  # shared with every trial that names it: described once, in the entities graph
        share(node, TYPE, self.c("Organization"))
        share(node, LABEL, Literal(name))
        share(node, iri(SCHEMA, "name"), Literal(name))
        share(node, self.c("matchMethod"), Literal("unmatched"))
        out.unresolved.append(Unresolved(out.nct_id, "organization", name))
        return node

    def _sponsor(self, org: Organization, add, out: MappedTrial, role: str) -> NamedNode:
        if org.agency_class in (None, "INDIV") and looks_like_person(org.name):
            # People are not deduplicated across records: the same name may be two people.
            person = self.mint.trial_part(out.nct_id, role)
            add(person, TYPE, self.c("Person"))
            add(person, LABEL, Literal(org.name))
            add(person, iri(SCHEMA, "name"), Literal(org.name))
            return person
        return self._organization(org.name, add, out)

    def _sponsors(self, trial: Trial, t, add, out: MappedTrial) -> None:
        c = self.c
        if trial.lead_sponsor:
            add(t, c("leadSponsor"), self._sponsor(trial.lead_sponsor, add, out, "sponsor"))
            if trial.lead_sponsor.agency_class:
                add(t, c("leadSponsorClass"), Literal(trial.lead_sponsor.agency_class.value))
            add(t, c("leadSponsorName"), Literal(trial.lead_sponsor.name))
        for index, org in enumerate(trial.collaborators, 1):
            collaborator = self._sponsor(org, add, out, f"collaborator/{index}")
            add(t, c("collaborator"), collaborator)
            add(t, c("collaboratorName"), Literal(org.name))
            if org.agency_class:
                # The class is what this record says of the collaborator: it belongs to the trial, so it goes
                # on a node of the trial's own. On a shared organization it would be repeated in every trial
                # graph that names it (and the union default graph would repeat it as often).
                collaboration = self.mint.trial_part(trial.nct_id, "collaboration", index)
                add(t, c("hasCollaboration"), collaboration)
                add(collaboration, TYPE, c("Collaboration"))
                add(collaboration, c("collaborationWith"), collaborator)
                add(collaboration, c("agencyClass"), Literal(org.agency_class.value))

    def _person(self, node, name, role, add) -> None:
        add(node, TYPE, self.c("Person"))
        add(node, LABEL, Literal(name))
        add(node, iri(SCHEMA, "name"), Literal(name))
        if role:
            add(node, self.c("role"), Literal(role))

    def _people(self, trial: Trial, t, add, out: MappedTrial) -> None:
        c, nct = self.c, trial.nct_id
        for index, official in enumerate(trial.officials, 1):
            node = self.mint.trial_part(nct, "official", index)
            add(t, c("hasOfficial"), node)
            self._person(node, official.name, official.role.value if official.role else None, add)
            if official.affiliation:
                add(node, c("affiliationText"), Literal(official.affiliation))
                add(node, c("affiliation"), self._organization(official.affiliation, add, out))
        party = trial.responsible_party
        if party:
            if party.investigator_full_name:
                node = self.mint.trial_part(nct, "responsible-party")
                add(t, c("responsibleParty"), node)
                self._person(node, party.investigator_full_name, party.type.value if party.type else None, add)
                if party.investigator_title:
                    add(node, iri(SCHEMA, "jobTitle"), Literal(party.investigator_title))
                if party.investigator_affiliation:
                    add(node, c("affiliationText"), Literal(party.investigator_affiliation))
            if party.type:
                add(t, c("responsiblePartyType"), Literal(party.type.value))
        for index, contact in enumerate(trial.central_contacts, 1):
            node = self.mint.trial_part(nct, "contact", index)
            add(t, c("hasContact"), node)
            self._contact(node, contact, add)

    def _contact(self, node, contact, add) -> None:
        self._person(node, contact.name or "contact", contact.role.value if contact.role else None, add)
        if contact.phone:
            add(node, iri(SCHEMA, "telephone"), Literal(contact.phone))
        if contact.email:
            add(node, iri(SCHEMA, "email"), Literal(contact.email))

    def _place_for(self, location: Location, add, out: MappedTrial) -> NamedNode | None:
        """The most specific place of a site: the curated city, else one minted from the address."""
        match = self.resolver.place(location.city, "city")
        if match:
            out.links["place"] = out.links.get("place", 0) + 1
            return self.mint.place(match.concept.id)
        parts = [p for p in (location.city, location.state, location.country) if p]
        if not parts:
            return None
        node = self.mint.place(slug(" ".join(parts)))
        share = out.share  # shared with every trial that names it: described once, in the entities graph
        share(node, TYPE, self.c("Place"))
        share(node, LABEL, Literal(", ".join(parts)))
        share(node, self.c("matchMethod"), Literal("unmatched"))
        country = self.resolver.place(location.country, "country")
        if country:
            share(node, self.c("broaderPlace"), self.mint.place(country.concept.id))
        out.unresolved.append(Unresolved(out.nct_id, "place", ", ".join(parts)))
        return node

    def _sites(self, trial: Trial, t, add, out: MappedTrial) -> None:
        c = self.c
        for index, location in enumerate(trial.locations, 1):
            node = self.mint.trial_part(trial.nct_id, "site", index)
            add(t, c("hasSite"), node)
            add(node, TYPE, c("Site"))
            label = ", ".join(p for p in (location.facility, location.city, location.country) if p)
            add(node, LABEL, Literal(label or f"site {index}"))
            if location.facility:
                add(node, iri(SCHEMA, "name"), Literal(location.facility))
                add(node, c("siteOrganization"), self._organization(location.facility, add, out))
            for prop, value in (("addressLocality", location.city), ("addressRegion", location.state),
                                ("postalCode", location.zip), ("addressCountry", location.country)):
                if value:
                    add(node, iri(SCHEMA, prop), Literal(value))
            if location.status:
                add(node, c("siteStatus"), Literal(str(location.status)))
            place = self._place_for(location, add, out)
            if place is not None:
                add(node, c("inPlace"), place)
            if location.geo_point:
                add(node, iri(SCHEMA, "latitude"), Literal(_number(location.geo_point.lat), datatype=xsd("decimal")))
                add(node, iri(SCHEMA, "longitude"), Literal(_number(location.geo_point.lon), datatype=xsd("decimal")))
            for number, contact in enumerate(location.contacts, 1):
                contact_node = self.mint.trial_part(trial.nct_id, "site", index, "contact", number)
                add(node, c("hasContact"), contact_node)
                self._contact(contact_node, contact, add)

    def _references(self, trial: Trial, t, add) -> None:
        c = self.c
        for index, reference in enumerate(trial.references, 1):
            node = self.mint.trial_part(trial.nct_id, "reference", index)
            add(t, c("hasReference"), node)
            add(node, TYPE, c("Reference"))
            if reference.citation:
                add(node, iri(DCTERMS, "bibliographicCitation"), Literal(reference.citation))
                add(node, LABEL, Literal(reference.citation[:120]))
            if reference.type:
                add(node, c("referenceType"), Literal(str(reference.type)))
            if reference.pmid:
                add(node, c("pmid"), Literal(reference.pmid))
                add(node, iri(SKOS, "exactMatch"), NamedNode(expand("pubmed", reference.pmid)))
            if reference.doi:
                add(node, c("doi"), Literal(reference.doi))
                # DOIs may hold characters IRIs forbid ("<", "#" in old Wiley DOIs): percent-encode them.
                add(node, iri(SCHEMA, "sameAs"), NamedNode(expand("doi", quote(reference.doi, safe="/()._-;:"))))

    def _provenance(self, trial: Trial, t, add) -> None:
        c, g = self.c, self.mint.graph(trial.nct_id)
        source = trial.source
        add(g, TYPE, iri(PROV, "Entity"))
        add(g, iri(PROV, "wasGeneratedBy"), self.mint.build(self.build_id))
        add(g, iri(DCTERMS, "subject"), t)
        add(g, c("mapperVersion"), Literal(__version__))
        if source is None:
            return
        record = self.mint.trial_part(trial.nct_id, "record")
        add(g, iri(PROV, "wasDerivedFrom"), record)
        add(t, iri(PROV, "wasDerivedFrom"), record)
        add(record, TYPE, c("RecordProvenance"))
        add(record, LABEL, Literal(f"source record of {trial.nct_id}"))
        # The file's name, not its path: the path says where the build ran (and changes with the working
        # directory), which a published graph should neither reveal nor depend on. The hash names the bytes.
        add(record, iri(DCTERMS, "source"), Literal(PurePath(source.file).name))
        # Every layout copies a ClinicalTrials.gov registration: the registry's page is the primary source.
        add(record, iri(PROV, "hadPrimarySource"), NamedNode(expand("clinicaltrials", trial.nct_id)))
        if source.member:
            add(record, c("sourceMember"), Literal(source.member))
        add(record, c("sourceFormat"), Literal(source.format.value))
        add(record, c("sha256"), Literal(source.sha256))
        if source.page_last_updated:
            add(record, c("sourceLastUpdated"), date_literal(source.page_last_updated))

    # ------------------------------------------------------------------ concepts and build

    def concept_quads(self) -> Iterator[Quad]:
        """The curated concepts, their classes, targets, hierarchy and cross-references with evidence."""
        g, c, m = self.mint.system_graph("concepts"), self.c, self.mint
        kind_class = {"drug": "Drug", "condition": "Condition", "organization": "Organization",
                      "place": "Place", "target": "MolecularTarget"}
        broader = {"condition": "broaderCondition", "place": "broaderPlace"}
        for concept in self.tables.all():
            node = self._concept_iri(concept)
            # Each triple lives in one graph: the union default graph repeats a triple once per graph
            # that holds it. The ontology declares the targets as its named individuals already.
            if concept.kind != "target":
                yield Quad(node, TYPE, c(kind_class[concept.kind]), g)
            for cls in concept.classes:
                yield Quad(node, TYPE, c(cls), g)
            yield Quad(node, LABEL, Literal(concept.label), g)
            yield Quad(node, iri(SKOS, "prefLabel"), Literal(concept.label), g)
            for synonym in concept.synonyms:
                yield Quad(node, iri(SKOS, "altLabel"), Literal(synonym), g)
            for code in concept.code_names:
                yield Quad(node, c("codeName"), Literal(code), g)
            for brand in concept.brand_names:
                yield Quad(node, c("brandName"), Literal(brand), g)
            for symbol in concept.targets:
                yield Quad(node, c("hasTarget"), m.target(symbol), g)
            for parent in concept.broader:
                yield Quad(node, c(broader[concept.kind]), self._concept_iri(
                    self.tables[concept.kind][parent]), g)
            if concept.kind == "organization":
                if concept.extra.get("parent"):
                    yield Quad(node, c("partOf"), m.organization(concept.extra["parent"]), g)
                if concept.extra.get("city"):
                    yield Quad(node, c("inPlace"), m.place(concept.extra["city"]), g)
            if concept.kind == "place":
                if concept.extra.get("kind"):
                    yield Quad(node, c("placeKind"), Literal(concept.extra["kind"]), g)
                for key, prop in (("lat", "latitude"), ("lon", "longitude")):
                    if concept.extra.get(key) is not None:
                        yield Quad(node, iri(SCHEMA, prop), Literal(_number(concept.extra[key]), datatype=xsd("decimal")), g)
            if concept.kind == "target" and concept.extra.get("name"):
                yield Quad(node, iri(SCHEMA, "alternateName"), Literal(str(concept.extra["name"])), g)
            for xref in concept.xrefs:
                vocabulary = VOCABULARIES[xref.vocabulary]
                mapping = m.mapping(concept.kind, concept.id, xref.vocabulary)
                if vocabulary.notation_only:
                    yield Quad(node, iri(SKOS, "notation"), Literal(xref.id, datatype=m.vocabulary(xref.vocabulary)), g)
                    continue
                target = NamedNode(expand(xref.vocabulary, xref.id))
                yield Quad(node, iri(SKOS, "exactMatch"), target, g)
                yield Quad(target, iri(DCTERMS, "identifier"), Literal(xref.id), g)
                yield Quad(target, c("inVocabulary"), m.vocabulary(xref.vocabulary), g)
                # The evidence for the link, as a mapping record (exported as SSSOM).
                yield Quad(mapping, TYPE, c("Mapping"), g)
                yield Quad(mapping, c("mappingSubject"), node, g)
                yield Quad(mapping, c("mappingObject"), target, g)
                yield Quad(mapping, c("mappingJustification"), NamedNode("https://w3id.org/semapv/vocab/ManualMappingCuration"), g)
                yield Quad(mapping, c("evidence"), Literal(xref.evidence), g)
        # The vocabularies themselves are described in the dataset graph, with the linksets (kg.dataset).

    def build_quads(self, trials_loaded: int) -> Iterator[Quad]:
        """PROV-O for the build itself (its activity and the software that ran it)."""
        g, m = self.mint.system_graph("dataset"), self.mint
        activity, software = m.build(self.build_id), m.software(__version__)
        yield Quad(activity, TYPE, iri(PROV, "Activity"), g)
        yield Quad(activity, LABEL, Literal(f"ctkg build {self.build_id}"), g)
        yield Quad(activity, iri(PROV, "startedAtTime"), Literal(self.build_time.isoformat(), datatype=xsd("dateTime")), g)
        yield Quad(activity, iri(PROV, "wasAssociatedWith"), software, g)
        yield Quad(activity, self.c("trialsLoaded"), Literal(str(trials_loaded), datatype=xsd("integer")), g)
        yield Quad(software, TYPE, iri(PROV, "SoftwareAgent"), g)
        yield Quad(software, LABEL, Literal(f"ctkg {__version__}"), g)


def _number(value: float) -> str:
    return str(int(value)) if float(value) == int(value) else repr(float(value))
