"""``kg build``: records -> resolve -> map -> bulk-load a new store -> swap it in.

The store being served changes only at the very end, in one atomic step (see ``kg.store``).
With ``update=True`` the new store starts as a copy of the live one and only the graphs of the
records given are replaced; every other graph stays as it was.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterable

import pyoxigraph
import yaml
from pyoxigraph import NamedNode, Quad, RdfFormat, Store

from kg.concepts import load_concepts
from kg.dataset import describe
from kg.mapping import MappedTrial, Mapper, Unresolved
from kg.mint import Minter
from kg.namespaces import SKOS, iri, ontology_namespace
from kg.vocabularies import expand
from kg.settings import Settings
from kg.sources import RecordFailure, read_records
from kg.dumps import dump_urls, dumps_folder, prune_dumps, write_dumps
from kg.store import StoreError, discard_build, live_store_path, new_build_dir, store_lock, stores_root, swap_in
from kg.validate import ValidationReport, render, validate_ontology, validate_trials


def reports_dir(settings: Settings) -> Path:
    return settings.store_dir.parent / "reports"


def write_reports(report: ValidationReport, settings: Settings) -> None:
    """The last build's validation report, as JSON and HTML, written whole then renamed into place."""
    folder = reports_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    for fmt, name in (("json", "last-build.json"), ("html", "last-build.html"), ("ttl", "last-build.ttl")):
        tmp = folder / f".{name}.tmp"
        tmp.write_text(render(report, fmt, settings.base_iri), encoding="utf-8")
        tmp.replace(folder / name)


class BuildError(RuntimeError):
    pass


@dataclass
class BuildReport:
    store_path: Path | None = None
    remote: str | None = None  # the remote SPARQL endpoint loaded instead of a local store (kg.remote)
    trials: list[str] = field(default_factory=list)
    failures: list[RecordFailure] = field(default_factory=list)
    unresolved: list[Unresolved] = field(default_factory=list)
    links: Counter = field(default_factory=Counter)
    linksets: dict[str, int] = field(default_factory=dict)
    triples: int = 0
    validation: ValidationReport | None = None
    rejected: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def ontology_quads(settings: Settings) -> Iterable[Quad]:
    """The ontology files, and the verified alignments of its classes (ontology/alignments.yaml)."""
    graph = Minter(settings.base_iri).system_graph("ontology")
    for path in sorted(settings.ontology_dir.glob("*.ttl")):
        for triple in pyoxigraph.parse(path=str(path), format=RdfFormat.TURTLE, base_iri=settings.base_iri + "/"):
            yield Quad(triple.subject, triple.predicate, triple.object, graph)
    alignments = settings.ontology_dir / "alignments.yaml"
    if alignments.exists():
        namespace = ontology_namespace(settings.base_iri)
        for row in yaml.safe_load(alignments.read_text(encoding="utf-8")) or []:
            prefix, _ = row["target"].split(":", 1)
            target = NamedNode(expand(prefix.lower(), row["target"]))
            yield Quad(NamedNode(namespace + row["class"]), iri(SKOS, row["relation"]), target, graph)


def build(settings: Settings, paths: Iterable[str | Path] | None = None, **options) -> BuildReport:
    """Build under the store's write lock, so that an update through the endpoint cannot interleave."""
    with store_lock(settings.store_dir):
        return _build_unlocked(settings, paths, **options)


def _build_unlocked(
    settings: Settings,
    paths: Iterable[str | Path] | None = None,
    *,
    update: bool = False,
    allow_invalid: bool = False,
    validate: bool = True,
    progress: Callable[[Iterable], Iterable] | None = None,
    build_time: datetime | None = None,
) -> BuildReport:
    report = BuildReport()
    tables = load_concepts(settings.ontology_dir / "concepts")
    mapper = Mapper(settings.base_iri, tables, build_time=build_time)
    records = read_records(paths or [settings.data_dir])
    if progress:
        records = progress(records)
    if settings.remote_query_url:  # a remote SPARQL store instead of the local one: see kg.remote
        from kg.remote import load_build

        accepted = _map_and_check(records, mapper, settings, report, update=update, validate=validate,
                                  allow_invalid=allow_invalid)
        load_build(settings, mapper, accepted, report, update=update)
        return report

    target = new_build_dir(settings.store_dir, mapper.build_id)
    try:
        _build_into(target, settings, mapper, records, report, update=update, validate=validate,
                    allow_invalid=allow_invalid)
    except BaseException as failure:
        discard_build(target, failure)
        discard_build(dumps_folder(settings.dumps_root, target))
        raise
    return report


def _build_into(target: Path, settings: Settings, mapper: Mapper, records, report: BuildReport, *,
                update: bool, validate: bool, allow_invalid: bool) -> None:
    """Load a new store at ``target``, write its dumps, and swap it in."""
    live = live_store_path(settings.store_dir)
    if update and live is not None:
        Store.read_only(str(live)).backup(str(target))
    store = Store(str(target))
    trial_quads: list[Quad] = []
    for mapped in _map_and_check(records, mapper, settings, report, update=update, validate=validate,
                                 allow_invalid=allow_invalid):
        if update and store.contains_named_graph(mapped.graph):
            store.remove_graph(mapped.graph)
        trial_quads.extend(mapped.quads)
    system = Minter(settings.base_iri)
    for name in ("ontology", "concepts", "dataset"):
        if store.contains_named_graph(system.system_graph(name)):
            store.remove_graph(system.system_graph(name))
    store.bulk_extend(ontology_quads(settings))
    store.bulk_extend(mapper.concept_quads())
    store.bulk_extend(trial_quads)
    trials_total = sum(1 for graph in store.named_graphs()
                       if graph.value.startswith(f"{settings.base_iri}/graph/NCT"))
    store.bulk_extend(mapper.build_quads(trials_total))
    dumps = dump_urls(settings.base_iri) if settings.write_dumps else []
    dataset = list(describe(store, settings.base_iri, mapper.build_time, mapper.build_id, dumps))
    store.bulk_extend(dataset)
    store.optimize()
    store.flush()
    report.triples = sum(1 for _ in store.quads_for_pattern(None, None, None, None))
    if settings.write_dumps:  # written before the swap: the dumps served always match the store served
        write_dumps(store, settings.base_iri, dumps_folder(settings.dumps_root, target))
    del store
    report.store_path = swap_in(settings.store_dir, target)
    prune_dumps(settings.dumps_root, keep={p.name for p in stores_root(settings.store_dir).iterdir()})


def _map_and_check(records, mapper: Mapper, settings: Settings, report: BuildReport, *, update: bool,
                   validate: bool, allow_invalid: bool) -> list[MappedTrial]:
    """Map every record and validate it; the trials to load (rejected and failed ones are in the report)."""
    seen: dict[str, str] = {}
    pairs = []
    for record in records:
        if isinstance(record, RecordFailure):
            report.failures.append(record)
            continue
        where = record.source.file if record.source else "?"
        if record.nct_id in seen:
            # Two records of one trial would merge into one graph with clashing parts: keep the first.
            report.failures.append(RecordFailure(where, f"duplicate record of {record.nct_id}: "
                                                        f"kept the one from {seen[record.nct_id]}", "nctId"))
            continue
        seen[record.nct_id] = where
        try:
            mapped = mapper.map_trial(record)
        except ValueError as exc:  # e.g. a value no IRI can hold; the other records still load
            report.failures.append(RecordFailure(where, f"cannot map {record.nct_id}: {exc}"))
            continue
        pairs.append((record, mapped))
    if validate:
        report.validation = validate_trials(pairs, mapper, settings)
        report.validation.rows = validate_ontology(settings) + report.validation.rows
        report.rejected = sorted(report.validation.violating_trials()) if not allow_invalid else []
        write_reports(report.validation, settings)
    accepted = []
    for record, mapped in pairs:
        if mapped.nct_id in report.rejected:
            continue  # a record with violations stays out of the served graph (see the report)
        accepted.append(mapped)
        report.trials.append(mapped.nct_id)
        report.unresolved.extend(mapped.unresolved)
        report.links.update(mapped.links)
    if not report.trials and not update:
        why = "no record passed validation" if report.rejected else "no record could be read"
        raise BuildError(f"{why}: the store being served is left as it was")
    return accepted


__all__ = ["build", "BuildReport", "BuildError", "StoreError"]
