"""SHACL validation of trial graphs, with results tied back to the source record.

Trials are validated a chunk at a time: one in-memory Oxigraph store holds the chunk's trial graphs,
the descriptions of the concepts they link to and the ontology (so ``sh:class`` and ``sh:targetClass``
see the subclass hierarchy), and every constraint runs once over it as SPARQL: the core constraints
compiled by ``kg.shacl_sparql``, the SHACL-SPARQL ones as written. Memory stays bounded by the chunk,
and callers parallelise by chunk. pyshacl stays available (``engine="pyshacl"``) as the reference
the compiled engine is tested against. Drug classes are validated once against the ontology itself.
"""

from __future__ import annotations

import html
import itertools
import re
import json
import os
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from itertools import islice
from pathlib import Path

import pyoxigraph
import rdflib
from pyshacl import validate as shacl_validate
from rdflib.namespace import RDF, SH

from kg.settings import Settings
from kg.shacl_sparql import CompiledConstraint, compile_shapes
from kg.sources import RecordFailure

SEVERITY_ORDER = {"Violation": 0, "Warning": 1, "Info": 2}

# Where a property of a trial-graph node lives in a v2 record (relative to /protocolSection).
TRIAL_POINTERS = {
    "nctId": "identificationModule/nctId", "name": "identificationModule/briefTitle",
    "overallStatus": "statusModule/overallStatus", "phase": "designModule/phases",
    "studyType": "designModule/studyType", "enrollment": "designModule/enrollmentInfo/count",
    "enrollmentType": "designModule/enrollmentInfo/type", "startDate": "statusModule/startDateStruct/date",
    "primaryCompletionDate": "statusModule/primaryCompletionDateStruct/date",
    "completionDate": "statusModule/completionDateStruct/date",
    "lastUpdatePostedDate": "statusModule/lastUpdatePostDateStruct/date",
    "allocation": "designModule/designInfo/allocation", "interventionModel": "designModule/designInfo/interventionModel",
    "primaryPurpose": "designModule/designInfo/primaryPurpose", "masking": "designModule/designInfo/maskingInfo/masking",
    "whoMasked": "designModule/designInfo/maskingInfo/whoMasked", "leadSponsor": "sponsorCollaboratorsModule/leadSponsor/name",
    "hasConditionMention": "conditionsModule/conditions", "hasEligibility": "eligibilityModule",
}
PART_POINTERS = {  # trial part kind -> (v2 list, property -> field)
    "arm": ("armsInterventionsModule/armGroups", {"armType": "type", "interventionNameText": "interventionNames", "label": "label"}),
    "intervention": ("armsInterventionsModule/interventions", {"interventionType": "type", "name": "name", "involvesDrug": "name"}),
    "site": ("contactsLocationsModule/locations", {"siteStatus": "status", "name": "facility", "latitude": "geoPoint/lat",
                                                    "longitude": "geoPoint/lon", "inPlace": "city"}),
    "reference": ("referencesModule/references", {"pmid": "pmid", "referenceType": "type", "bibliographicCitation": "citation"}),
    "condition": ("conditionsModule/conditions", {}),
    "official": ("contactsLocationsModule/overallOfficials", {"name": "name", "role": "role", "affiliation": "affiliation"}),
    "contact": ("contactsLocationsModule/centralContacts", {"name": "name", "role": "role"}),
}
ELIGIBILITY_POINTERS = {"minimumAge": "minimumAge", "maximumAge": "maximumAge", "sex": "sex",
                        "healthyVolunteers": "healthyVolunteers", "criteriaText": "eligibilityCriteria"}


@dataclass
class ResultRow:
    trial: str | None
    focus: str
    path: str | None
    value: str | None
    severity: str
    message: str
    shape: str | None
    constraint: str | None
    source_file: str | None = None
    source_location: str | None = None
    # The value as the RDF term it is in the graph, in N-Triples form (an IRI, a blank node, a typed or
    # language-tagged literal); ``value`` is its lexical form only. The RDF reports write this one.
    value_term: str | None = None


@dataclass
class ValidationReport:
    rows: list[ResultRow] = field(default_factory=list)
    trials: list[str] = field(default_factory=list)
    # Records that could not be read at all (so have no graph to validate): every report lists them.
    failures: list[RecordFailure] = field(default_factory=list)

    @property
    def errors(self) -> list[str]:
        """The failures as one line each: file, field, problem."""
        return [str(failure) for failure in self.failures]

    @property
    def conforms(self) -> bool:
        # A record that could not be read was not checked at all: the input does not conform.
        return not self.failures and not any(r.severity == "Violation" for r in self.rows)

    def counts_by_severity(self) -> dict[str, int]:
        """Results by severity; a record that could not be read counts as a violation, as it is one in the
        RDF reports (so every format gives the same figures)."""
        counts = Counter(r.severity for r in self.rows)
        if self.failures:
            counts["Violation"] += len(self.failures)
        return dict(counts)

    def counts_by_shape(self) -> dict[str, int]:
        return dict(Counter(r.shape or "?" for r in self.rows))

    def violating_trials(self) -> set[str]:
        return {r.trial for r in self.rows if r.severity == "Violation" and r.trial}


# ------------------------------------------------------------------ shapes and ontology


def _parse_with_base(paths: list[Path], base: str) -> rdflib.Graph:
    graph = rdflib.Graph()
    for path in paths:
        graph.parse(path, format="turtle", publicID=base + "/")
    return graph


# Shapes about the ontology itself, validated once rather than with every trial.
ONTOLOGY_SHAPE_FILES = {"drug-class.ttl"}


@lru_cache(maxsize=8)
def shapes_graph(shapes_dir: Path, base: str, level: str = "data") -> rdflib.Graph:
    """The shapes of one level ("data" or "ontology", or "all"); the SPARQL inside them gets a BASE so its
    relative IRIs resolve like the Turtle's."""
    files = sorted(Path(shapes_dir).glob("*.ttl"))
    if level != "all":
        files = [f for f in files if (f.name in ONTOLOGY_SHAPE_FILES) == (level == "ontology")]
    graph = _parse_with_base(files, base)
    for prop in (SH.select, SH.ask):
        for node, text in list(graph.subject_objects(prop)):
            graph.set((node, prop, rdflib.Literal(f"BASE <{base}/>\n{text}")))
    return graph


@dataclass(frozen=True)
class SparqlRule:
    """A SHACL-SPARQL constraint, run by Oxigraph over a whole batch instead of once per focus node."""

    constraint: str
    target_class: str
    severity: str
    message: str
    query: str


@lru_cache(maxsize=8)
def sparql_rules(shapes_dir: Path, base: str) -> tuple[SparqlRule, ...]:
    graph = shapes_graph(shapes_dir, base, "data")
    rules = []
    for shape, constraint in graph.subject_objects(SH.sparql):
        target = graph.value(shape, SH.targetClass)
        severity = graph.value(shape, SH.severity) or SH.Violation
        select = str(graph.value(constraint, SH.select))
        # $this pre-bound to each focus node = joined with the shape's targets (instances of the class).
        where = select.index("{", select.index("WHERE"))
        query = (select[:where + 1].replace("$this", "?this") +
                 f" ?this a/<http://www.w3.org/2000/01/rdf-schema#subClassOf>* <{target}> . " +
                 select[where + 1:].replace("$this", "?this"))
        rules.append(SparqlRule(str(constraint), str(target), str(severity).rsplit("#", 1)[-1],
                                str(graph.value(constraint, SH.message)), query))
    return tuple(sorted(rules, key=lambda r: r.constraint))


@lru_cache(maxsize=8)
def core_shapes_graph(shapes_dir: Path, base: str) -> rdflib.Graph:
    """The data shapes without their SPARQL constraints (those run through ``sparql_rules``)."""
    graph = rdflib.Graph()
    graph += shapes_graph(shapes_dir, base, "data")
    for shape, constraint in list(graph.subject_objects(SH.sparql)):
        graph.remove((shape, SH.sparql, constraint))
    return graph


@lru_cache(maxsize=8)
def compiled_constraints(shapes_dir: Path, base: str, level: str = "data") -> tuple[CompiledConstraint, ...]:
    """The core constraints of one level's shapes as SPARQL (``kg.shacl_sparql``); raises on anything untranslated."""
    return compile_shapes(shapes_graph(shapes_dir, base, level))


def validation_store(quads, settings: Settings) -> pyoxigraph.Store:
    """An in-memory store of the data and the ontology, queried as one graph (``_query``). The quads keep
    their graph names: making new default-graph quads in Python tripled the time to fill the store."""
    store = pyoxigraph.Store()
    store.extend(quads)
    store.extend(_ontology_triples(settings))
    return store


def _query(store: pyoxigraph.Store, query: str):
    """Run a validation query over the union of the store's graphs. A triple held by two graphs is seen
    twice: the compiled queries are DISTINCT, and rule rows are de-duplicated in ``_run_rules``."""
    return store.query(query, use_default_graph_as_union=True)


def run_sparql_rules(quads, settings: Settings) -> list[ResultRow]:
    """Every SPARQL rule over the data (plus the ontology, so targets include subclass instances)."""
    return _run_rules(validation_store(quads, settings), settings)


def _run_rules(store: pyoxigraph.Store, settings: Settings) -> list[ResultRow]:
    rows = {}
    for rule in sparql_rules(settings.shapes_dir, settings.base_iri):
        for solution in _query(store, rule.query):
            row = _rule_row(rule, solution)
            rows.setdefault((row.focus, row.path, row.shape, row.message, row.value_term), row)
    return list(rows.values())


def _run_compiled(store: pyoxigraph.Store, settings: Settings, level: str = "data") -> list[ResultRow]:
    """Every compiled core constraint of the level over the store; rows as pyshacl's would read."""
    rows = []
    for constraint in compiled_constraints(settings.shapes_dir, settings.base_iri, level):
        for solution in _query(store, constraint.query):
            value = _solution_term(solution, "value")
            rows.append(ResultRow(trial=None, focus=_solution_value(solution, "this") or "", path=constraint.path,
                                  value=None if value is None else value.value, value_term=_nt(value),
                                  severity=constraint.severity, message=constraint.message, shape=constraint.shape,
                                  constraint=constraint.component))
    return rows


def _solution_term(solution, name: str):
    try:
        return solution[name]
    except (KeyError, IndexError):  # not a variable of this query
        return None


def _solution_value(solution, name: str) -> str | None:
    term = _solution_term(solution, name)
    return None if term is None else term.value


def _nt(term) -> str | None:
    """A pyoxigraph term in N-Triples form (what ``str`` gives), None for none."""
    return None if term is None else str(term)


def _rdflib_nt(term) -> str | None:
    """An rdflib term in N-Triples form. Not rdflib's ``n3()``: that writes a literal with a line break in
    Turtle's long quotes, which N-Triples does not have."""
    if term is None:
        return None
    if isinstance(term, rdflib.Literal):
        datatype = None if term.language or term.datatype is None else pyoxigraph.NamedNode(str(term.datatype))
        return str(pyoxigraph.Literal(str(term), language=term.language, datatype=datatype))
    if isinstance(term, rdflib.BNode):
        return str(pyoxigraph.BlankNode(str(term)))
    return str(pyoxigraph.NamedNode(str(term)))


def _rule_row(rule: SparqlRule, solution) -> ResultRow:
    def get(name):
        return _solution_value(solution, name)

    message = re.sub(r"\{[?$](\w+)\}", lambda m: get(m.group(1)) or "", rule.message)
    return ResultRow(trial=None, focus=get("this") or "", path=get("path"), value=get("value"),
                     value_term=_nt(_solution_term(solution, "value")), severity=rule.severity,
                     message=message, shape=rule.constraint, constraint="SPARQLConstraintComponent")


@lru_cache(maxsize=4)
def _ontology_triples_cached(ontology_dir: Path, base: str) -> tuple:
    """The ontology as pyoxigraph quads in the default graph."""
    data = ontology_graph(ontology_dir, base).serialize(format="nt").encode("utf-8")
    return tuple(pyoxigraph.parse(data, format=pyoxigraph.RdfFormat.N_TRIPLES))


def _ontology_triples(settings: Settings) -> tuple:
    return _ontology_triples_cached(settings.ontology_dir, settings.base_iri)


@lru_cache(maxsize=4)
def ontology_graph(ontology_dir: Path, base: str) -> rdflib.Graph:
    return _parse_with_base(sorted(Path(ontology_dir).glob("*.ttl")), base)


def _quads_to_graph(quads) -> rdflib.Graph:
    data = pyoxigraph.serialize([q.triple for q in quads], format=pyoxigraph.RdfFormat.N_TRIPLES)
    return rdflib.Graph().parse(data=data.decode("utf-8"), format="nt")


# ------------------------------------------------------------------ validating


def _rows(results: rdflib.Graph, trial: str | None) -> list[ResultRow]:
    rows = []
    for result in results.subjects(RDF.type, SH.ValidationResult):
        def one(prop):
            value = results.value(result, prop)
            return None if value is None else str(value)

        severity = one(SH.resultSeverity) or ""
        rows.append(ResultRow(
            trial=trial, focus=one(SH.focusNode) or "", path=one(SH.resultPath), value=one(SH.value),
            value_term=_rdflib_nt(results.value(result, SH.value)),
            severity=severity.rsplit("#", 1)[-1], message=one(SH.resultMessage) or "",
            shape=one(SH.sourceConstraint) or one(SH.sourceShape), constraint=(one(SH.sourceConstraintComponent) or "").rsplit("#", 1)[-1] or None,
        ))
    return rows


ENGINES = ("sparql", "pyshacl")


def _check_engine(engine: str) -> None:
    if engine not in ENGINES:
        raise ValueError(f"unknown validation engine {engine!r}: one of {', '.join(ENGINES)}")


def validate_graph(data: rdflib.Graph, settings: Settings, trial: str | None = None, quads: list | None = None,
                   engine: str = "sparql") -> list[ResultRow]:
    """Validate one graph. ``engine="sparql"``: every constraint as SPARQL in Oxigraph. ``engine="pyshacl"``:
    SHACL core by pyshacl, the SHACL-SPARQL constraints still by Oxigraph (pyshacl re-parses a SPARQL
    constraint for every focus node, which made it 80% of the time).
    ``quads``: the same data as pyoxigraph quads, when the caller has them (saves a round trip)."""
    _check_engine(engine)
    if quads is None:
        nt = data.serialize(format="nt").encode("utf-8")
        quads = list(pyoxigraph.parse(nt, format=pyoxigraph.RdfFormat.N_TRIPLES))
    if engine == "sparql":
        store = validation_store(quads, settings)
        rows = _run_compiled(store, settings) + _run_rules(store, settings)
        for row in rows:
            row.trial = trial
        return rows
    _, results, _ = shacl_validate(
        data, shacl_graph=core_shapes_graph(settings.shapes_dir, settings.base_iri),
        ont_graph=ontology_graph(settings.ontology_dir, settings.base_iri),
        inference="none", allow_warnings=True, allow_infos=True,
    )
    rows = _rows(results, trial)
    for row in run_sparql_rules(quads, settings):
        row.trial = trial
        rows.append(row)
    return rows


def validate_ontology(settings: Settings, engine: str = "sparql") -> list[ResultRow]:
    """Drug classes (and later other ontology-level shapes) against the ontology itself."""
    _check_engine(engine)
    if engine == "sparql":
        store = pyoxigraph.Store()
        store.extend(_ontology_triples(settings))
        return _run_compiled(store, settings, "ontology")
    _, results, _ = shacl_validate(ontology_graph(settings.ontology_dir, settings.base_iri),
                                   shacl_graph=shapes_graph(settings.shapes_dir, settings.base_iri, "ontology"),
                                   inference="none", allow_warnings=True, allow_infos=True)
    return _rows(results, None)


def locate(row: ResultRow, trial, base: str) -> None:
    """Fill the row's source file and location (JSON pointer, and the page section for pages)."""
    if trial is None or trial.source is None:
        return
    source = trial.source
    row.source_file = source.file + (f"!{source.member}" if source.member else "")
    prefix = f"{base}/trial/{trial.nct_id}"
    if not row.focus.startswith(prefix):
        return
    rest = row.focus[len(prefix):].strip("/").split("/") if row.focus != prefix else []
    prop = (row.path or "").rstrip("/").rsplit("/", 1)[-1].rsplit("#", 1)[-1]
    pointer = None
    if not rest:
        pointer = TRIAL_POINTERS.get(prop)
    elif rest[0] == "eligibility":
        pointer = "eligibilityModule/" + ELIGIBILITY_POINTERS.get(prop, "")
    elif rest[0] in PART_POINTERS and len(rest) > 1 and rest[1].isdigit():
        listing, fields = PART_POINTERS[rest[0]]
        pointer = f"{listing}/{int(rest[1]) - 1}" + (f"/{fields[prop]}" if prop in fields else "")
    if pointer is None:
        return
    pointer = "/protocolSection/" + pointer.rstrip("/")
    section = source.origins.get(pointer)
    if section is None:  # the nearest field the parser recorded
        candidates = [k for k in source.origins if pointer.startswith(k) or k.startswith(pointer)]
        section = source.origins[min(candidates, key=len)] if candidates else None
    row.source_location = pointer if section in (None, pointer) else f"{pointer} (page: {section})"


def trial_data(mapped, concept_quads_by_subject: dict) -> list:
    """The trial's quads plus those of the concepts it links to (and of what those link to)."""
    quads = list(mapped.quads)
    return quads + linked_concepts((q.object for q in quads), concept_quads_by_subject)


def linked_concepts(objects, concept_quads_by_subject: dict) -> list:
    """The quads of the concepts that these objects (of the data's triples) are, and of what those
    link to, each concept once."""
    found = []
    seen = set()
    frontier = list({o for o in objects if o in concept_quads_by_subject})
    while frontier:
        node = frontier.pop()
        if node in seen:
            continue
        seen.add(node)
        for quad in concept_quads_by_subject[node]:
            found.append(quad)
            if quad.object in concept_quads_by_subject:
                frontier.append(quad.object)
    return found


def concepts_by_subject(concept_quads) -> dict:
    concepts: dict = {}
    for quad in concept_quads:
        concepts.setdefault(quad.subject, []).append(quad)
    return concepts


BATCH = 25  # trials per pyshacl call (measured: 10 -> 10.0, 25 -> 12.1, 100 -> 9.4 trials/s on 200 trials)
CHUNK = 1000  # trials per store for the SPARQL engine (see docs/performance.md, "Validation")


def _trial_of(focus: str, base: str) -> str | None:
    prefix = f"{base}/trial/"
    return focus[len(prefix):].split("/", 1)[0] if focus.startswith(prefix) else None


def _validate_batch(args):
    """Validate a batch of trials in one pyshacl call; shapes act per focus node, so results split by trial."""
    settings, batch, concepts = args
    quads = [q for _, mapped in batch for q in trial_data(mapped, concepts)]
    trials = {trial.nct_id: trial for trial, _ in batch}
    rows = validate_graph(_quads_to_graph(quads), settings, quads=quads, engine="pyshacl")
    for row in rows:
        row.trial = _trial_of(row.focus, settings.base_iri)
        if row.trial in trials:
            locate(row, trials[row.trial], settings.base_iri)
    return [t.nct_id for t, _ in batch], rows


def _add_rows(report: ValidationReport, rows, seen: set) -> None:
    """Append rows not yet reported: a concept linked from trials of several chunks is validated with
    each, and reported once."""
    for row in rows:
        key = (row.focus, row.path, row.shape, row.message, row.value_term)
        if key not in seen:
            seen.add(key)
            report.rows.append(row)


def _sort_rows(report: ValidationReport) -> None:
    report.rows.sort(key=lambda r: (r.trial or "", r.focus, SEVERITY_ORDER.get(r.severity, 9), r.path or ""))


def _validate_mapped(mapped_trials: list, sources: dict, concepts: dict, settings: Settings) -> ValidationReport:
    """Validate mapped trials together in one store. ``sources``: the records by NCT id, to locate results
    (may be empty); ``concepts``: concept quads by subject (``concepts_by_subject``)."""
    objects = (o for mapped in mapped_trials for _, _, o in (*mapped.triples, *mapped.shared))
    store = validation_store(linked_concepts(objects, concepts), settings)
    # The trials as N-Quads text, parsed by Oxigraph: as fast as making pyoxigraph quads in Python, and
    # the mapper keeps plain (s, p, o) tuples.
    store.load(b"".join(mapped.nquads() for mapped in mapped_trials), format=pyoxigraph.RdfFormat.N_QUADS)
    rows = _run_compiled(store, settings) + _run_rules(store, settings)
    for row in rows:
        row.trial = _trial_of(row.focus, settings.base_iri)
        if row.trial in sources:
            locate(row, sources[row.trial], settings.base_iri)
    report = ValidationReport(trials=[mapped.nct_id for mapped in mapped_trials])
    _add_rows(report, rows, set())
    _sort_rows(report)
    return report


def validate_chunk(pairs, concept_quads, settings: Settings) -> ValidationReport:
    """Validate a chunk of (Trial, MappedTrial) pairs in the calling process, with the SPARQL engine.

    One in-memory store holds the chunk's trial triples, the concepts they link to (and what those
    link to) and the ontology; each compiled core constraint and each SHACL-SPARQL rule runs once over
    it. ``concept_quads``: the quads of ``Mapper.concept_quads()``, or those grouped by subject with
    ``concepts_by_subject`` (saves regrouping them for every chunk). Rows carry their trial and source
    location; a concept is reported once per chunk (the caller merges chunks)."""
    pairs = list(pairs)
    concepts = concept_quads if isinstance(concept_quads, dict) else concepts_by_subject(concept_quads)
    return _validate_mapped([mapped for _, mapped in pairs], {trial.nct_id: trial for trial, _ in pairs},
                            concepts, settings)


def validate_trials(pairs, mapper, settings: Settings, workers: int | None = None,
                    engine: str = "sparql") -> ValidationReport:
    """Validate (trial, mapped) pairs. ``engine="sparql"``: chunks of ``CHUNK`` trials through
    ``validate_chunk``, in this process (``workers`` is not used: the build runs chunks in its own
    workers). ``engine="pyshacl"``: batches of ``BATCH`` trials, in parallel processes when there are
    several batches.

    Concepts (drugs, conditions) shared by trials of different chunks are reported once.
    """
    _check_engine(engine)
    concepts = concepts_by_subject(mapper.concept_quads())
    pairs = list(pairs)
    report = ValidationReport()
    seen: set = set()
    if engine == "sparql":
        for i in range(0, len(pairs), CHUNK):
            chunk = validate_chunk(pairs[i:i + CHUNK], concepts, settings)
            report.trials.extend(chunk.trials)
            _add_rows(report, chunk.rows, seen)
    else:
        batches = [(settings, pairs[i:i + BATCH], concepts) for i in range(0, len(pairs), BATCH)]
        workers = workers or min(os.cpu_count() or 1, 8)
        if len(batches) < 2 or workers == 1:
            outcomes = list(map(_validate_batch, batches))
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                outcomes = list(pool.map(_validate_batch, batches))
        for trials, rows in outcomes:
            report.trials.extend(trials)
            _add_rows(report, rows, seen)
    _sort_rows(report)
    return report


# ------------------------------------------------------------------ report formats


def _failure_file(failure: RecordFailure) -> str:
    return failure.file + (f"!{failure.member}" if failure.member else "")


def to_json(report: ValidationReport) -> str:
    return json.dumps({
        "conforms": report.conforms, "trials": report.trials,
        "counts": {"bySeverity": report.counts_by_severity(), "byShape": report.counts_by_shape(),
                   "unreadableRecords": len(report.failures)},
        "results": [asdict(r) for r in report.rows],
        "failures": [{"source_file": _failure_file(f), "field": f.field, "message": f.message} for f in report.failures],
        "errors": report.errors,
    }, indent=2, ensure_ascii=False)


def _term(nt: str):
    """The pyoxigraph term of an N-Triples term (``ResultRow.value_term``), read by Oxigraph's own parser."""
    line = f"<urn:s> <urn:p> {nt} .".encode()
    return next(iter(pyoxigraph.parse(line, format=pyoxigraph.RdfFormat.N_TRIPLES))).object


def report_triples(report: ValidationReport, base: str):
    """A sh:ValidationReport as pyoxigraph triples, each result carrying its trial and source location.
    Made without rdflib: a 10k-trial build's report has about 100k triples."""
    from pyoxigraph import BlankNode, Literal, NamedNode, Triple

    sh = str(SH)
    ctkg = base + "/ontology/"
    rdf_type = NamedNode(str(RDF.type))

    def s(local: str) -> NamedNode:
        return NamedNode(sh + local)

    node = BlankNode()
    yield Triple(node, rdf_type, s("ValidationReport"))
    yield Triple(node, s("conforms"), Literal("true" if report.conforms else "false",
                                             datatype=NamedNode("http://www.w3.org/2001/XMLSchema#boolean")))
    for row in report.rows:
        result = BlankNode()
        yield Triple(node, s("result"), result)
        yield Triple(result, rdf_type, s("ValidationResult"))
        yield Triple(result, s("focusNode"), NamedNode(row.focus))
        if row.path:
            yield Triple(result, s("resultPath"), NamedNode(row.path))
        if row.value_term is not None:
            yield Triple(result, s("value"), _term(row.value_term))
        elif row.value is not None:  # a row made without its term (none of ours): its text is all there is
            yield Triple(result, s("value"), Literal(row.value))
        yield Triple(result, s("resultSeverity"), s(row.severity))
        yield Triple(result, s("resultMessage"), Literal(row.message))
        if row.shape:
            yield Triple(result, s("sourceShape"), NamedNode(row.shape) if "://" in row.shape else BlankNode(row.shape))
        if row.constraint:
            yield Triple(result, s("sourceConstraintComponent"), s(row.constraint))
        if row.trial:
            yield Triple(result, NamedNode(ctkg + "trial"), NamedNode(f"{base}/trial/{row.trial}"))
        if row.source_file:
            yield Triple(result, NamedNode(ctkg + "sourceFile"), Literal(row.source_file))
        if row.source_location:
            yield Triple(result, NamedNode(ctkg + "sourceLocation"), Literal(row.source_location))
    # A record that could not be read is a violation like any other, so SHACL tools and sh:conforms count it.
    # It has no IRI (none is minted for a record that was not read), so its focus is a blank node standing
    # for the record; no shape was run, so there is no sh:sourceShape, and the extra type ctkg:RecordFailure
    # tells these results apart. File and field go where every result has them.
    for failure in report.failures:
        result = BlankNode()
        yield Triple(node, s("result"), result)
        yield Triple(result, rdf_type, s("ValidationResult"))
        yield Triple(result, rdf_type, NamedNode(ctkg + "RecordFailure"))
        yield Triple(result, s("focusNode"), BlankNode())
        yield Triple(result, s("resultSeverity"), s("Violation"))
        yield Triple(result, s("resultMessage"), Literal(failure.message))
        yield Triple(result, NamedNode(ctkg + "sourceFile"), Literal(_failure_file(failure)))
        if failure.field:  # none for a record whose layout or syntax is wrong as a whole
            yield Triple(result, NamedNode(ctkg + "sourceLocation"), Literal(failure.field))


def to_graph(report: ValidationReport, base: str) -> rdflib.Graph:
    """The report as an rdflib graph (for JSON-LD)."""
    nt = pyoxigraph.serialize(report_triples(report, base), format=pyoxigraph.RdfFormat.N_TRIPLES)
    graph = rdflib.Graph().parse(data=nt.decode("utf-8"), format="nt")
    graph.bind("sh", SH)
    graph.bind("ctkg", rdflib.Namespace(base + "/ontology/"))
    return graph


def _short(value: str | None) -> str:
    if not value:
        return ""
    return value.rsplit("/", 1)[-1].rsplit("#", 1)[-1] if "://" in value else value


XSD_DATATYPE = re.compile(r"\^\^<http://www\.w3\.org/2001/XMLSchema#(\w+)>$")
TEXT_VALUE_SHOWN = 200  # characters of a value in the text report: a criteria text runs to pages


def _value_text(row: ResultRow) -> str | None:
    """The value as written in N-Triples (quoted, so spaces and line breaks show), datatypes as xsd:."""
    text = row.value_term if row.value_term is not None else row.value
    if text is None:
        return None
    text = XSD_DATATYPE.sub(r"^^xsd:\1", text)
    if len(text) > TEXT_VALUE_SHOWN:
        text = text[:TEXT_VALUE_SHOWN] + f"… (cut at {TEXT_VALUE_SHOWN} characters; the JSON report has it whole)"
    return text


def _summary(report: ValidationReport) -> str:
    counts = report.counts_by_severity()
    unreadable = f"{len(report.failures)} records could not be read; " if report.failures else ""
    return (f"{len(report.trials)} trials; {unreadable}"
            + ", ".join(f"{counts.get(s, 0)} {s.lower()}s" for s in SEVERITY_ORDER)
            + ("; conforms" if report.conforms else "; does not conform"))


def to_text(report: ValidationReport) -> str:
    lines = []
    if report.failures:
        lines.append(f"Records that could not be read ({len(report.failures)}):")
        lines.extend(f"  {failure}" for failure in report.failures)  # file [field]: problem
        lines.append("")
    lines.append(f"{'severity':<9} {'trial':<12} {'focus':<28} {'path':<22} message / value / source")
    indent = " " * (9 + 12 + 28 + 22 + 4)
    for r in report.rows:
        focus = r.focus.split("/trial/", 1)[-1] if "/trial/" in r.focus else _short(r.focus)
        lines.append(f"{r.severity:<9} {r.trial or '-':<12} {focus[:28]:<28} {_short(r.path)[:22]:<22} {r.message}")
        value = _value_text(r)
        if value is not None:
            lines.append(f"{indent}value {value}")
        if r.source_location or r.source_file:
            lines.append(f"{indent}at {r.source_file or ''} {r.source_location or ''}".rstrip())
    lines.append(_summary(report))
    return "\n".join(lines) + "\n"


HTML_TRIALS_SHOWN = 5000


def to_html(report: ValidationReport) -> str:
    """Grouped by trial, then focus node, then path: what to fix and where."""
    e = html.escape
    counts = report.counts_by_severity()
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Validation report · ctkg</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:80rem;margin:2rem auto;padding:0 1rem}"
        "td,th{padding:.25rem .5rem;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}"
        ".Violation{color:#a00;font-weight:bold}.Warning{color:#a60}.Info{color:#06a}</style></head><body>",
        "<h1>Validation report</h1>",
        f"<p>{'Conforms' if report.conforms else '<b>Does not conform</b>'}: {len(report.trials)} trials; "
        + (f"<span class='Violation'>{len(report.failures)} records could not be read</span>; " if report.failures else "")
        + ", ".join(f"<span class='{s}'>{counts.get(s, 0)} {s.lower()}s</span>" for s in SEVERITY_ORDER) + "</p>",
        "<h2>By shape</h2><table><tr><th>shape</th><th>results</th></tr>"
        + "".join(f"<tr><td>{e(_short(k))}</td><td>{v}</td></tr>" for k, v in sorted(report.counts_by_shape().items()))
        + "</table>",
    ]
    if report.failures:  # first: these records were not checked at all
        parts.append("<h2 id='unreadable'>Records that could not be read</h2>"
                     "<table><tr><th>source file</th><th>field</th><th>problem</th></tr>")
        for f in report.failures:
            parts.append(f"<tr><td><code>{e(_failure_file(f))}</code></td><td>{e(f.field or '')}</td>"
                         f"<td class='Violation'>{e(f.message)}</td></tr>")
        parts.append("</table>")
    by_trial: dict[str, list[ResultRow]] = {}
    for row in report.rows:
        by_trial.setdefault(row.trial or "(ontology and concepts)", []).append(row)
    if len(by_trial) > HTML_TRIALS_SHOWN:  # a page a browser can open; the JSON and Turtle reports hold every result
        parts.append(f"<p>Results of the first {HTML_TRIALS_SHOWN:,} of {len(by_trial):,} trials with results; "
                     "the JSON and Turtle reports beside this page hold all of them.</p>")
    for trial, rows in islice(by_trial.items(), HTML_TRIALS_SHOWN):
        parts.append(f"<h2 id='{e(trial)}'>{e(trial)}</h2>")
        if rows[0].source_file:
            parts.append(f"<p>Source: <code>{e(rows[0].source_file)}</code></p>")
        parts.append("<table><tr><th>focus node</th><th>path</th><th>severity</th><th>value</th><th>message</th><th>where in the record</th></tr>")
        for row in rows:
            parts.append(
                f"<tr><td>{e(row.focus)}</td><td>{e(_short(row.path))}</td><td class='{e(row.severity)}'>{e(row.severity)}</td>"
                f"<td>{e(row.value or '')}</td><td>{e(row.message)}</td><td>{e(row.source_location or '')}</td></tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def render(report: ValidationReport, fmt: str, base: str) -> str:
    if fmt == "json":
        return to_json(report)
    if fmt == "text":
        return to_text(report)
    if fmt == "html":
        return to_html(report)
    if fmt in ("ttl", "turtle"):
        # rdflib's Turtle writer took two minutes on a 10k-trial build's report; Oxigraph's writes it in seconds.
        prefixes = {"sh": str(SH), "rdf": str(RDF), "xsd": "http://www.w3.org/2001/XMLSchema#",
                    "ctkg": base + "/ontology/"}
        return pyoxigraph.serialize(report_triples(report, base), format=pyoxigraph.RdfFormat.TURTLE,
                                    prefixes=prefixes).decode("utf-8")
    if fmt in ("jsonld", "json-ld"):
        return to_graph(report, base).serialize(format="json-ld")
    raise ValueError(f"unknown report format {fmt!r}")


# ------------------------------------------------------------------ entry points


def validate_paths(settings: Settings, paths) -> ValidationReport:
    """Validate records before they are loaded: read, map, validate each trial graph."""
    from kg.concepts import load_concepts
    from kg.mapping import Mapper
    from kg.sources import read_records

    mapper = Mapper(settings.base_iri, load_concepts(settings.ontology_dir / "concepts"))
    pairs, failures = [], []
    for record in read_records(paths):
        if isinstance(record, RecordFailure):
            failures.append(record)
            continue
        try:
            pairs.append((record, mapper.map_trial(record)))
        except ValueError as exc:  # as in kg build: e.g. a value no IRI can hold; the other records still go on
            source = record.source
            failures.append(RecordFailure(source.file if source else "?", f"cannot map {record.nct_id}: {exc}",
                                          member=source.member if source else None))
    report = validate_trials(pairs, mapper, settings)
    report.rows = validate_ontology(settings) + report.rows
    report.failures = failures
    return report


def validate_store(settings: Settings) -> ValidationReport:
    """Validate every trial graph of the built store, ``CHUNK`` graphs at a time (results are not
    located in source records here: the store keeps provenance, not the records)."""
    from kg.mapping import MappedTrial
    from kg.store import open_read_only

    store = open_read_only(settings.store_dir)
    # What the trials link to: the curated concepts, and the organizations and places described once for
    # all trials in the entities graph (their IRIs are minted apart from the concepts', so none is in both).
    concepts = concepts_by_subject(itertools.chain(*(
        store.quads_for_pattern(None, None, None, pyoxigraph.NamedNode(f"{settings.base_iri}/graph/{name}"))
        for name in ("concepts", "entities"))))
    report = ValidationReport()
    seen: set = set()
    prefix = f"{settings.base_iri}/graph/NCT"
    graphs = sorted((g for g in store.named_graphs() if g.value.startswith(prefix)), key=lambda g: g.value)
    for i in range(0, len(graphs), CHUNK):
        mapped = [MappedTrial(g.value.rsplit("/", 1)[-1], g,
                              [(q.subject, q.predicate, q.object) for q in store.quads_for_pattern(None, None, None, g)])
                  for g in graphs[i:i + CHUNK]]
        chunk = _validate_mapped(mapped, {}, concepts, settings)
        report.trials.extend(chunk.trials)
        _add_rows(report, chunk.rows, seen)
    _sort_rows(report)
    report.rows = validate_ontology(settings) + report.rows
    return report
