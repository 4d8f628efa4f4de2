"""``kg build``: records -> resolve -> map -> bulk-load a new store -> swap it in.

The store being served changes only at the very end, in one atomic step (see ``kg.store``).
With ``update=True`` the new store starts as a copy of the live one and only the graphs of the
records given are replaced; every other graph stays as it was.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import multiprocessing
import os
import queue
import signal
import threading
import time
from collections import Counter, deque
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain, islice
from pathlib import Path
from typing import Callable, Iterable, Iterator

import pyoxigraph
import yaml
from pyoxigraph import NamedNode, Quad, RdfFormat, Store

from kg.concepts import load_concepts
from kg.dataset import describe
from kg.mapping import Mapper, Unresolved
from kg.mint import Minter
from kg.namespaces import SKOS, iri, ontology_namespace
from kg.vocabularies import expand
from kg.settings import Settings
from kg.sources import RawRecord, RecordFailure, read_raw
from kg.dumps import dump_urls, dumps_folder, prune_dumps, write_dumps
from kg.store import StoreError, discard_build, live_store_path, new_build_dir, store_lock, stores_root, swap_in
from kg.validate import (SEVERITY_ORDER, ResultRow, ValidationReport, concepts_by_subject, render, validate_chunk,
                         validate_ontology)


log = logging.getLogger("kg.build")


@contextmanager
def phase(name: str):
    """Say when each phase starts and how long it took (stderr with `kg build`; the fault tests watch it)."""
    log.info("phase %s: started", name)
    started = time.perf_counter()
    yield
    log.info("phase %s: done in %.1f s", name, time.perf_counter() - started)


def reports_dir(settings: Settings) -> Path:
    return settings.store_dir.parent / "reports"


# The formats the build writes its report in (served at /validate/report), and their files.
BUILD_REPORT_FILES = {"json": "last-build.json", "html": "last-build.html", "ttl": "last-build.ttl",
                      "text": "last-build.txt"}


def write_reports(report: ValidationReport, settings: Settings) -> None:
    """The last build's validation report, as JSON, HTML, Turtle and text, written whole then renamed into place."""
    folder = reports_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    for fmt, name in BUILD_REPORT_FILES.items():
        tmp = folder / f".{name}.tmp"
        try:
            tmp.write_text(render(report, fmt, settings.base_iri), encoding="utf-8")
            tmp.replace(folder / name)
        finally:
            tmp.unlink(missing_ok=True)  # a disk that filled up mid-write leaves no half-written file behind


class BuildError(RuntimeError):
    pass


@dataclass
class BuildReport:
    store_path: Path | None = None
    remote: str | None = None  # the remote SPARQL endpoint loaded instead of a local store (kg.remote)
    trials: list[str] = field(default_factory=list)
    failures: list[RecordFailure] = field(default_factory=list)
    # Unresolved strings: every one is counted by kind and kept in the graph (the curation queue query
    # lists them); the first UNRESOLVED_LISTED are kept here for the summary, so memory stays flat.
    unresolved: list[Unresolved] = field(default_factory=list)
    unresolved_counts: Counter = field(default_factory=Counter)
    links: Counter = field(default_factory=Counter)
    linksets: dict[str, int] = field(default_factory=dict)
    triples: int = 0
    # With --update: organizations and places no trial names any more, removed from the entities graph.
    entities_removed: int = 0
    validation: ValidationReport | None = None
    rejected: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def count_unresolved(self, items: list[Unresolved]) -> None:
        self.unresolved_counts.update(item.kind for item in items)
        room = UNRESOLVED_LISTED - len(self.unresolved)
        if room > 0:
            self.unresolved.extend(items[:room])


UNRESOLVED_LISTED = 200


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
    raws = read_raw(paths or [settings.data_dir])
    if progress:
        raws = progress(raws)
    plan = ChunkPlan(settings, mapper.build_time, mapper.build_id, validate)
    if settings.remote_query_url:  # a remote SPARQL store instead of the local one: see kg.remote
        from kg.remote import load_build

        # A generator: the graphs stream to the remote as the workers map them (a list held every quad).
        accepted = ((mapper.mint.graph(record.nct_id), list(pyoxigraph.parse(record.nquads, format=RdfFormat.N_QUADS)))
                    for record in _accept(map_chunks(raws, plan), report, settings, update, validate, allow_invalid))
        load_build(settings, mapper, accepted, report, update=update)
        _publish_reports(report, settings)
        return report

    target = new_build_dir(settings.store_dir, mapper.build_id)
    try:
        _build_into(target, settings, mapper, map_chunks(raws, plan), report, update=update, validate=validate,
                    allow_invalid=allow_invalid)
    except BaseException as failure:
        discard_build(target, failure)
        discard_build(dumps_folder(settings.dumps_root, target))
        if isinstance(failure, OSError):  # a full disk, a read-only folder: where and what, not a traceback
            from kg.store import write_failure

            raise write_failure(settings.store_dir, settings.dumps_root, failure) from failure
        raise
    _publish_reports(report, settings)
    return report


def _publish_reports(report: BuildReport, settings: Settings) -> None:
    """Written only once the build is served: the report served always describes the store served."""
    if report.validation is not None:
        report.validation.failures = report.failures  # records that could not be read are in the report too
        write_reports(report.validation, settings)


def _build_into(target: Path, settings: Settings, mapper: Mapper, outcomes: Iterable[ChunkOutcome],
                report: BuildReport, *, update: bool, validate: bool, allow_invalid: bool) -> None:
    """Load a new store at ``target`` chunk by chunk, describe it, write its dumps, and swap it in."""
    live = live_store_path(settings.store_dir)
    with phase("open"):
        if update and live is not None:
            Store.read_only(str(live)).backup(str(target))
        store = Store(str(target))
        system = Minter(settings.base_iri)
        for name in ("ontology", "concepts", "dataset"):
            if store.contains_named_graph(system.system_graph(name)):
                store.remove_graph(system.system_graph(name))
        store.bulk_extend(ontology_quads(settings))
        store.bulk_extend(mapper.concept_quads())
    entities = system.system_graph("entities")
    with phase("map+load"):  # parse, resolve, map and validate in workers; bulk-load in a thread here
        loader = BatchLoader(store, entities if update else None)
        try:
            batch: list[bytes] = []
            replaced: list[NamedNode] = []
            batch_bytes = 0
            for record in _accept(outcomes, report, settings, update, validate, allow_invalid):
                if update:
                    replaced.append(mapper.mint.graph(record.nct_id))
                batch.append(record.nquads)
                batch_bytes += len(record.nquads)
                if batch_bytes >= LOAD_BATCH_BYTES:
                    loader.load(b"".join(batch), replaced)
                    batch, replaced, batch_bytes = [], [], 0
            if batch:
                loader.load(b"".join(batch), replaced)
            del batch
        except BaseException:
            loader.close(abandon=True)  # the build fails: the batches still queued are not worth writing
            raise
        loader.close()  # waits for the last batch; raises what the loader met (a full disk)
        if loader.unlinked_candidates:
            report.entities_removed = prune_entities(store, entities, loader.unlinked_candidates)
    with phase("describe"):
        trials_total = sum(1 for graph in store.named_graphs()
                           if graph.value.startswith(f"{settings.base_iri}/graph/NCT"))
        store.bulk_extend(mapper.build_quads(trials_total))
        dumps = dump_urls(settings.base_iri) if settings.write_dumps else []
        dataset = list(describe(store, settings.base_iri, mapper.build_time, mapper.build_id, dumps))
        store.bulk_extend(dataset)
    with phase("optimize"):
        store.optimize()
        store.flush()
        report.triples = len(store)
    if settings.write_dumps:  # written before the swap: the dumps served always match the store served
        with phase("dumps"):
            write_dumps(store, settings.base_iri, dumps_folder(settings.dumps_root, target))
    del store
    with phase("swap"):
        report.store_path = swap_in(settings.store_dir, target)
    prune_dumps(settings.dumps_root, keep={p.name for p in stores_root(settings.store_dir).iterdir()})


def _accept(outcomes: Iterable[ChunkOutcome], report: BuildReport, settings: Settings, update: bool,
            validate: bool, allow_invalid: bool) -> Iterator[MappedRecord]:
    """The trials to load, in input order; failures, duplicates and rejected trials go to the report."""
    seen: dict[str, str] = {}
    validation = ValidationReport()
    concept_rows: set[tuple] = set()
    for outcome in outcomes:
        report.failures.extend(outcome.failures)
        for row in outcome.concept_rows:  # every chunk validates the concepts its trials link to: keep one of each
            key = (row.focus, row.path, row.shape, row.message, row.value_term)
            if key not in concept_rows:
                concept_rows.add(key)
                validation.rows.append(row)
        for record in outcome.records:
            if record.nct_id in seen:
                report.failures.append(_duplicate(record.nct_id, record.where, seen[record.nct_id]))
                continue
            seen[record.nct_id] = record.where
            validation.trials.append(record.nct_id)
            validation.rows.extend(record.rows)
            if not allow_invalid and any(row.severity == "Violation" for row in record.rows):
                report.rejected.append(record.nct_id)  # violations keep a record out of the served graph
                continue
            report.trials.append(record.nct_id)
            report.count_unresolved(record.unresolved)
            report.links.update(record.links)
            yield record
    report.rejected.sort()
    if validate:
        validation.rows = validate_ontology(settings) + sorted(
            validation.rows, key=lambda r: (r.trial or "", r.focus, SEVERITY_ORDER.get(r.severity, 9), r.path or ""))
        report.validation = validation
    if not report.trials and not update:
        why = "no record passed validation" if report.rejected else "no record could be read"
        raise BuildError(f"{why}: the store being served is left as it was")


# ------------------------------------------------------------------ parse, map and validate in chunks
#
# A record's parse, resolve, map and validate steps need nothing from any other record, so they
# run chunk by chunk, in worker processes when there are several chunks. What comes back per
# trial is its N-Quads (bytes pickle far faster than Python quad objects) and the small facts the
# report needs; only a bounded number of chunks is in flight, so memory stays flat at any input size.

LOAD_BATCH_BYTES = 64 << 20  # N-Quads handed to Oxigraph's bulk loader at a time


class BatchLoader:
    """Bulk-loads batches of N-Quads into a store in a thread of its own.

    pyoxigraph lets go of the GIL inside ``bulk_load``, so while Oxigraph writes one batch the main
    process goes on handing chunks to the workers; loading in the main thread left the workers idle
    for the length of every load (about 40% of the build's wall time at 100k). Until ``close`` only
    this thread writes to the store: a graph being replaced (``--update``) is removed here, just before
    the batch holding its new quads. At most one batch waits while one is written: bounded memory.
    """

    def __init__(self, store: Store, entities: NamedNode | None = None):
        self._store = store
        # The shared graph of organizations and places no concept table names (``entities``): what a replaced
        # trial graph pointed to there may be pointed to by no trial any more (see ``prune_entities``).
        self._entities = entities
        self.unlinked_candidates: set = set()
        self._queue: queue.Queue = queue.Queue(maxsize=1)
        self._failure: BaseException | None = None
        self._abandoned = False
        self._thread = threading.Thread(target=self._run, name="kg-build-loader", daemon=True)
        self._thread.start()

    def load(self, nquads: bytes, replaced: Iterable[NamedNode] = ()) -> None:
        """Queue one batch; waits while the loader is a batch behind."""
        self._raise_failure()
        self._queue.put((list(replaced), nquads))

    def close(self, abandon: bool = False) -> None:
        """Wait until every queued batch is in the store. ``abandon``: the build has failed; the batch
        still waiting is dropped, only the one being written (which cannot be interrupted) is waited for."""
        if abandon:
            self._abandoned = True
            try:
                self._queue.get_nowait()
            except queue.Empty:
                pass
        self._queue.put(None)
        self._thread.join()
        if not abandon:
            self._raise_failure()

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._failure is not None or self._abandoned:  # keep taking batches: load() never blocks for good
                continue
            replaced, nquads = item
            try:
                for graph in replaced:
                    if self._store.contains_named_graph(graph):
                        if self._entities is not None:
                            self.unlinked_candidates.update(self._described_in_entities(graph))
                        self._store.remove_graph(graph)
                self._store.bulk_load(nquads, format=RdfFormat.N_QUADS)
            except BaseException as failure:  # handed to the main thread by load() or close()
                self._failure = failure


    def _described_in_entities(self, graph: NamedNode) -> set:
        """The resources of the entities graph that ``graph`` points to."""
        objects = {quad.object for quad in self._store.quads_for_pattern(None, None, None, graph)
                   if isinstance(quad.object, NamedNode)}
        return {o for o in objects if next(iter(self._store.quads_for_pattern(o, None, None, self._entities)), None)}


def prune_entities(store: Store, entities: NamedNode, candidates: set) -> int:
    """Remove from the entities graph each of ``candidates`` that no other graph points to any more (an
    update replaced the last trial naming it); the number removed. A whole build starts the graph afresh."""
    removed = 0
    for node in candidates:
        if any(quad.graph_name != entities for quad in store.quads_for_pattern(None, None, node, None)):
            continue
        for quad in list(store.quads_for_pattern(node, None, None, entities)):
            store.remove(quad)
        removed += 1
    return removed


@dataclass(frozen=True)
class ChunkPlan:
    """What a worker needs to map and validate exactly as the main process would (picklable)."""

    settings: Settings
    build_time: datetime
    build_id: str
    validate: bool


@dataclass
class MappedRecord:
    nct_id: str
    where: str
    nquads: bytes
    rows: list[ResultRow]
    unresolved: list[Unresolved]
    links: dict[str, int]


@dataclass
class ChunkOutcome:
    records: list[MappedRecord]
    failures: list[RecordFailure]
    concept_rows: list[ResultRow]  # validation results about concepts rather than trials


class ChunkMapper:
    def __init__(self, plan: ChunkPlan):
        self.plan = plan
        tables = load_concepts(plan.settings.ontology_dir / "concepts")
        self.mapper = Mapper(plan.settings.base_iri, tables, build_id=plan.build_id, build_time=plan.build_time)
        self.concepts = concepts_by_subject(self.mapper.concept_quads())  # grouped once, used by every chunk

    def run(self, raws: list[RawRecord | RecordFailure]) -> ChunkOutcome:
        failures, pairs = [], []
        seen: dict[str, str] = {}
        for raw in raws:
            for record in [raw] if isinstance(raw, RecordFailure) else raw.parse():
                if isinstance(record, RecordFailure):
                    failures.append(record)
                    continue
                if record.nct_id in seen:  # validated together, the two would share focus nodes
                    failures.append(_duplicate(record.nct_id, _where(record), seen[record.nct_id]))
                    continue
                seen[record.nct_id] = _where(record)
                try:
                    pairs.append((record, self.mapper.map_trial(record)))
                except ValueError as exc:  # e.g. a value no IRI can hold; the other records still load
                    failures.append(RecordFailure(_where(record), f"cannot map {record.nct_id}: {exc}"))
        rows_by_trial: dict[str, list[ResultRow]] = {}
        concept_rows: list[ResultRow] = []
        if self.plan.validate and pairs:
            for row in validate_chunk(pairs, self.concepts, self.plan.settings).rows:
                if row.trial:
                    rows_by_trial.setdefault(row.trial, []).append(row)
                else:
                    concept_rows.append(row)
        records = [MappedRecord(mapped.nct_id, _where(record), mapped.nquads(),
                                rows_by_trial.pop(mapped.nct_id, []), mapped.unresolved, mapped.links)
                   for record, mapped in pairs]
        return ChunkOutcome(records, failures, concept_rows)


def _duplicate(nct_id: str, where: str, kept: str) -> RecordFailure:
    # Two records of one trial would merge into one graph with clashing parts: the first is kept.
    return RecordFailure(where, f"duplicate record of {nct_id}: kept the one from {kept}", "nctId")


def _where(record) -> str:
    return record.source.file if record.source else "?"


_worker: ChunkMapper | None = None


def _start_worker(plan: ChunkPlan, parent: int) -> None:
    global _worker
    _die_with_parent(parent)
    _worker = ChunkMapper(plan)


def _die_with_parent(parent: int) -> None:
    """A build killed outright (SIGKILL, the OOM killer) must not leave its workers running: Linux sends
    them SIGKILL when the process that started them dies (prctl PR_SET_PDEATHSIG)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the pool's own shutdown is all there is
        return
    if os.getppid() != parent:  # the build died before the line above took effect
        os._exit(1)


def _run_in_worker(raws: list) -> ChunkOutcome:
    return _worker.run(raws)


def map_chunks(raws: Iterable[RawRecord | RecordFailure], plan: ChunkPlan,
               workers: int | None = None) -> Iterator[ChunkOutcome]:
    """Map and validate the records chunk by chunk, in input order; in parallel when there is more than one chunk."""
    chunks = _chunked(raws, plan.settings.build_chunk_records)
    head = list(islice(chunks, 2))
    workers = workers or plan.settings.build_workers or os.cpu_count() or 1
    if workers < 2 or len(head) < 2:  # small inputs: starting processes would cost more than it saves
        chunk_mapper = ChunkMapper(plan)
        for chunk in chain(head, chunks):
            yield chunk_mapper.run(chunk)
        return
    # "spawn": a forked child would inherit the parent's threads and locks (RocksDB, the progress bar).
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_start_worker, initargs=(plan, os.getpid()))
    try:
        pending: deque = deque()
        for chunk in chain(head, chunks):
            pending.append(pool.submit(_run_in_worker, chunk))
            if len(pending) > 2 * workers:  # a bounded number in flight: memory stays flat
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _chunked(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


__all__ = ["build", "BuildReport", "BuildError", "StoreError"]
