"""Curators' SPARQL Updates: run on a copy of the live store, recorded, swapped in atomically.

The live store is never written: the service's query workers hold it open read-only, and
pyoxigraph leaves a read-only opening undefined while another process writes the same folder.
An update therefore

1. checkpoints the live store into a new folder beside it (``Store.backup``: hard links, so
   cheap whatever the size),
2. opens that copy read-write in a child process and runs the update there (a child, so the
   time limit can really stop it: pyoxigraph cannot cancel a running update),
3. counts, graph by graph, the quads added and removed, and writes a PROV-O activity into the
   dataset description graph ``{base}/graph/dataset`` (who, when, the update text),
4. writes the dumps of the new store, as a build does (``kg.dumps``; outside the time limit,
   which is for the update itself: the dumps take as long as the store is big),
5. points the ``store`` link at the copy with the same atomic swap the builds use, and
6. appends one JSON line to the audit log.

All of it holds the store's write lock (``kg.store.store_lock``), so two updates, or an update
and a build, never start from the same store and lose one another's changes. ``LOAD`` and
``SERVICE`` are refused for every caller, token or not: nothing a caller sends makes the server
open a connection elsewhere.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import re
import secrets
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from pyoxigraph import DefaultGraph, Literal, NamedNode, Quad, Store
from pyparsing import ParseResults
from rdflib import URIRef
from rdflib.plugins.sparql.algebra import translateUpdate
from kg.sparql_text import parse_update
from rdflib.plugins.sparql.parserutils import CompValue

from kg.dumps import dumps_folder, prune_dumps, write_dumps
from kg.mint import Minter
from kg.namespaces import DCTERMS, LABEL, PROV, RDFS, TYPE, XSD, iri
from kg.settings import Settings
from kg.store import StoreBusy, StoreError, discard_build, live_store_path, new_build_dir, stores_root, store_lock, swap_in

# Starting the child (a fresh interpreter importing pyoxigraph) is not part of the time limit.
CHILD_START_LIMIT_S = 60.0


class UpdateRefused(ValueError):
    """An update the endpoint will not run: bad syntax, LOAD, SERVICE, a dataset given twice."""


class UpdateTimeout(RuntimeError):
    """The update passed the time limit and was stopped (not a TimeoutError: that is an OSError)."""


@dataclass
class GraphChange:
    graph: str | None  # None: the default graph
    added: int
    removed: int


@dataclass
class UpdateRecord:
    """One line of the audit log; for an applied update, also what the PROV-O activity says."""

    update: str                      # the activity's IRI, {base}/update/{id}
    curator: str                     # the name of the token used
    outcome: str                     # applied | refused | failed | timeout | busy
    started: str
    ended: str
    text: str                        # the update exactly as sent
    using_graphs: list[str] = field(default_factory=list)
    using_named_graphs: list[str] = field(default_factory=list)
    store_before: str | None = None  # folder names under <store>.d
    store_after: str | None = None
    added: int = 0
    removed: int = 0
    graphs: list[GraphChange] = field(default_factory=list)
    reason: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)


def audit_log_path(settings: Settings) -> Path:
    return settings.audit_log or settings.store_dir.parent / "audit" / "updates.jsonl"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


# --- checking the update text ------------------------------------------------------------------

def _node_names(tree) -> set[str]:
    """The names of every node of rdflib's parse tree (Load, Modify, ServiceGraphPattern, ...)."""
    names, stack = set(), [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, CompValue):
            names.add(node.name)
            stack.extend(dict.values(node))
        elif isinstance(node, (list, tuple, ParseResults)):
            stack.extend(node)
    return names


def check_update(text: str, using_graphs: list[str], using_named_graphs: list[str]) -> None:
    """Refuse what must never run, before anything runs.

    rdflib's update parser reads the text; a text it cannot read is refused rather than guessed at.
    """
    try:
        tree = parse_update(text)
    except Exception as exc:  # noqa: BLE001 - any parse failure is the caller's syntax error
        raise UpdateRefused(f"bad update: {exc}") from None
    names = _node_names(tree)
    if "Load" in names:
        raise UpdateRefused("LOAD is not allowed on this endpoint: it would make the server fetch a URL; "
                            "send the data itself with INSERT DATA")
    if "ServiceGraphPattern" in names:
        raise UpdateRefused("SERVICE is not allowed on this endpoint: it would make the server fetch another URL")
    if using_graphs or using_named_graphs:
        for operation in tree.request:
            # dict.get: rdflib's CompValue.get answers a missing key with the key's name
            if operation.name == "Modify" and (dict.get(operation, "withClause") or dict.get(operation, "using")):
                raise UpdateRefused("the request gives a dataset twice: using-graph-uri/using-named-graph-uri "
                                    "and USING, USING NAMED or WITH in the update; give one of them")
    for graph in [*using_graphs, *using_named_graphs]:
        _check_iri(graph)


def _check_iri(value: str) -> None:
    try:
        NamedNode(value)
    except ValueError as exc:
        raise UpdateRefused(f"using-graph-uri / using-named-graph-uri {value!r} is not an absolute IRI: {exc}") from None


# Tokens that matter for finding an operation's WHERE: strings, IRIs and comments are skipped
# whole (an IRI never holds a brace); braces give the nesting; words are keywords or names.
_TOKENS = re.compile(
    r"(?P<skip>#[^\n]*"
    r'|"""(?:[^"\\]|\\.|"(?!""))*"""' r"|'''(?:[^'\\]|\\.|'(?!''))*'''"
    r'|"(?:[^"\\\n]|\\.)*"' r"|'(?:[^'\\\n]|\\.)*'"
    r"|<[^<>\"{}|^`\\\x00-\x20]*>)"
    r"|(?P<open>\{)|(?P<close>\})"
    r"|(?P<word>[\w:.%-]+)",
    re.S,
)


def with_protocol_dataset(text: str, using_graphs: list[str], using_named_graphs: list[str]) -> str:
    """The update with the protocol's ``using-graph-uri``/``using-named-graph-uri`` written in as
    USING / USING NAMED clauses of every operation that has a WHERE, which is what the protocol
    says they mean. pyoxigraph's update call takes no dataset, hence the rewrite.

    ``DELETE WHERE { P }`` has no place for USING; it is the short form of
    ``DELETE { P } WHERE { P }`` and is written out as that.
    """
    if not using_graphs and not using_named_graphs:
        return text
    clause = " ".join([f"USING <{g}>" for g in using_graphs] + [f"USING NAMED <{g}>" for g in using_named_graphs])
    tokens = [t for t in _TOKENS.finditer(text) if t.lastgroup != "skip"]
    pieces, copied, depth, index = [], 0, 0, 0
    previous_word = None  # the last keyword seen outside braces
    while index < len(tokens):
        token = tokens[index]
        kind = token.lastgroup
        if kind == "open":
            depth += 1
        elif kind == "close":
            depth -= 1
        elif depth == 0 and token.group().upper() == "WHERE":
            if previous_word is not None and previous_word.group().upper() == "DELETE":
                close = _matching_close(tokens, index + 1)
                pattern = text[tokens[index + 1].start():tokens[close].end()]
                pieces.append(text[copied:previous_word.start()])
                pieces.append(f"DELETE {pattern} {clause} WHERE {pattern}")
                copied = tokens[close].end()
                index = close + 1
                previous_word = None
                continue
            pieces.append(text[copied:token.start()])
            pieces.append(clause + " ")
            copied = token.start()
        if depth == 0 and kind == "word":
            previous_word = token
        elif kind in ("open", "close"):
            previous_word = None
        index += 1
    pieces.append(text[copied:])
    return "".join(pieces)


def _matching_close(tokens: list, open_index: int) -> int:
    if open_index >= len(tokens) or tokens[open_index].lastgroup != "open":
        raise UpdateRefused("bad update: DELETE WHERE is not followed by a pattern in braces")
    depth = 0
    for index in range(open_index, len(tokens)):
        if tokens[index].lastgroup == "open":
            depth += 1
        elif tokens[index].lastgroup == "close":
            depth -= 1
            if depth == 0:
                return index
    raise UpdateRefused("bad update: a brace is not closed")


# --- the child process: copy, update, count, record --------------------------------------------

def written_graphs(text: str, base: str) -> set[str | None] | None:
    """The graphs an update can write, read from its text: IRIs, and None for the default graph.
    None when that cannot be told from the text (a template's GRAPH ?g, CLEAR ALL or NAMED)."""
    try:
        update = translateUpdate(parse_update(text), base=base + "/")
    except Exception:  # noqa: BLE001 - Oxigraph ran it; if rdflib cannot follow, compare every graph
        return None
    graphs: set[str | None] = set()

    def template(clause, default) -> bool:
        if clause.get("triples"):
            graphs.add(default)
        for graph in (clause.get("quads") or {}):
            if not isinstance(graph, URIRef):
                return False  # a variable: any graph
            graphs.add(str(graph))
        return True

    for operation in update.algebra:
        values = dict(operation)  # plain dict: rdflib's CompValue.get answers a missing key with its name
        if operation.name in ("InsertData", "DeleteData", "DeleteWhere"):
            if not template(values, None):
                return None
        elif operation.name == "Modify":
            target = values.get("withClause")
            for clause in (values.get("delete"), values.get("insert")):
                if clause is not None and not template(dict(clause), str(target) if target else None):
                    return None
        elif operation.name in ("Clear", "Drop", "Create", "Add", "Move", "Copy"):
            named = values.get("graph") or [values.get("graphiri")]
            for graph in named:
                if isinstance(graph, URIRef):
                    graphs.add(str(graph))
                elif graph == "DEFAULT":
                    graphs.add(None)
                else:
                    return None  # ALL or NAMED
        else:
            return None
    return graphs


def _diff(before, after, graphs) -> list[GraphChange]:
    changes = []
    for graph in sorted(graphs, key=lambda g: "" if isinstance(g, DefaultGraph) else g.value):
        old = set(before.quads_for_pattern(None, None, None, graph))
        new = set(after.quads_for_pattern(None, None, None, graph))
        added, removed = len(new - old), len(old - new)
        if added or removed:
            changes.append(GraphChange(None if isinstance(graph, DefaultGraph) else graph.value, added, removed))
    return changes


def _changes(before, after, written: set[str | None] | None) -> list[GraphChange]:
    """Quads added and removed, graph by graph (one graph's quads in memory at a time).

    Only the graphs the update names are compared, so a one-trial fix costs one trial's graph,
    not the whole store. Should rdflib have read a graph's IRI otherwise than Oxigraph did (the
    net count would not match), every graph is compared instead.
    """
    if written is not None:
        changes = _diff(before, after, {DefaultGraph() if g is None else NamedNode(g) for g in written})
        if sum(c.added - c.removed for c in changes) == len(after) - len(before):
            return changes
    return _diff(before, after, {DefaultGraph(), *before.named_graphs(), *after.named_graphs()})


def provenance_quads(base: str, record: UpdateRecord) -> list:
    """The update as a PROV-O activity in the dataset description graph, so that linked-data
    consumers see that the dataset was edited after its build, by whom and how."""
    m = Minter(base)
    g, activity, agent, dataset = m.system_graph("dataset"), NamedNode(record.update), m.curator(record.curator), m.dataset()
    date_time = iri(XSD, "dateTime")
    quads = [
        Quad(activity, TYPE, iri(PROV, "Activity"), g),
        Quad(activity, LABEL, Literal(f"SPARQL Update by {record.curator}"), g),
        Quad(activity, iri(PROV, "wasAssociatedWith"), agent, g),
        Quad(activity, iri(PROV, "startedAtTime"), Literal(record.started, datatype=date_time), g),
        Quad(activity, iri(PROV, "endedAtTime"), Literal(record.ended, datatype=date_time), g),
        Quad(activity, iri(DCTERMS, "description"), Literal(record.text), g),
        Quad(activity, iri(RDFS, "comment"), Literal(
            f"quads added: {record.added}; quads removed: {record.removed}; graphs changed: {len(record.graphs)}"), g),
        Quad(agent, TYPE, iri(PROV, "Agent"), g),
        Quad(agent, LABEL, Literal(record.curator), g),
        Quad(dataset, iri(PROV, "wasInfluencedBy"), activity, g),
        Quad(dataset, iri(DCTERMS, "modified"), Literal(record.ended, datatype=date_time), g),
    ]
    quads += [Quad(NamedNode(change.graph), iri(PROV, "wasInfluencedBy"), activity, g)
              for change in record.graphs if change.graph is not None and change.graph != g.value]
    return quads


def _apply_in_child(connection, live: str, target: str, text: str, base: str, record: dict,
                    dumps: str | None) -> None:
    connection.send(("ready", None))
    try:
        record = UpdateRecord(**record)
        record.started = _now()
        before = Store.read_only(live)
        before.backup(target)
        after = Store(target)
        try:
            after.update(text, base_iri=base + "/")
        except SyntaxError as exc:
            connection.send(("refused", f"bad update: {exc}"))
            return
        except OSError:
            raise  # the disk, not the request: a failure
        except Exception as exc:  # noqa: BLE001 - e.g. CLEAR GRAPH of a graph that does not exist, without SILENT
            connection.send(("refused", f"the update cannot be applied: {exc}"))
            return
        record.graphs = _changes(before, after, written_graphs(text, base))
        record.added = sum(c.added for c in record.graphs)
        record.removed = sum(c.removed for c in record.graphs)
        record.ended = _now()
        m = Minter(base)
        for old in list(after.quads_for_pattern(m.dataset(), iri(DCTERMS, "modified"), None, m.system_graph("dataset"))):
            after.remove(old)  # the dataset was modified now, not at its build
        after.extend(provenance_quads(base, record))
        after.flush()
        if dumps:
            # The update is done (the time limit was for it); the dumps take as long as the store is big.
            connection.send(("updated", None))
            write_dumps(after, base, Path(dumps))
        del after, before  # closed before the parent swaps the copy in
        connection.send(("ok", asdict(record)))
    except Exception as exc:  # noqa: BLE001 - reported to the caller as a failed update
        connection.send(("failed", f"{type(exc).__name__}: {exc}"))


def _run_child(live: Path, target: Path, text: str, base: str, record: UpdateRecord, timeout: float,
               dumps: Path | None) -> UpdateRecord:
    context = mp.get_context("spawn")
    parent_end, child_end = context.Pipe()
    process = context.Process(target=_apply_in_child, daemon=True,
                              args=(child_end, str(live), str(target), text, base, asdict(record),
                                    str(dumps) if dumps else None))
    process.start()
    child_end.close()
    try:
        if not parent_end.poll(CHILD_START_LIMIT_S):
            raise RuntimeError("the update process did not start")
        parent_end.recv()
        if not parent_end.poll(timeout):
            raise UpdateTimeout(f"the update ran longer than the {timeout:g} s limit and was stopped; nothing changed")
        status, payload = parent_end.recv()
        if status == "updated":  # then the dumps of the new store: no limit, they follow its size
            status, payload = parent_end.recv()
    except (EOFError, OSError):
        raise RuntimeError("the update process stopped unexpectedly; nothing changed") from None
    finally:
        if process.is_alive():
            process.kill()
        process.join(timeout=10)
        parent_end.close()
    if status == "refused":
        raise UpdateRefused(payload)
    if status != "ok":
        raise RuntimeError(payload)
    payload["graphs"] = [GraphChange(**change) for change in payload["graphs"]]
    return UpdateRecord(**payload)


# --- the whole step ----------------------------------------------------------------------------

def apply_update(settings: Settings, curator: str, text: str, using_graphs: list[str] | None = None,
                 using_named_graphs: list[str] | None = None) -> UpdateRecord:
    """Run a curator's update on a copy of the live store and swap the copy in; every attempt,
    applied or not, is one line of the audit log.

    Raises UpdateRefused (the caller's mistake), UpdateTimeout, StoreBusy or StoreError/RuntimeError.
    """
    using_graphs, using_named_graphs = list(using_graphs or []), list(using_named_graphs or [])
    started = _now()
    update_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(4)
    record = UpdateRecord(update=Minter(settings.base_iri).update(update_id).value, curator=curator,
                          outcome="applied", started=started, ended=started, text=text,
                          using_graphs=using_graphs, using_named_graphs=using_named_graphs)
    audit = _open_audit_log(settings)  # no audit trail, no update
    with audit:
        try:
            check_update(text, using_graphs, using_named_graphs)
            runnable = with_protocol_dataset(text, using_graphs, using_named_graphs)
            check_update(runnable, [], [])  # what runs is checked too, not only what was sent
            timeout = settings.query_timeout_s
            with store_lock(settings.store_dir, timeout=timeout):
                live = live_store_path(settings.store_dir)
                if live is None:
                    raise StoreError(f"no store at {settings.store_dir}: run `kg build` first")
                target = new_build_dir(settings.store_dir, f"update-{update_id}")
                # As a build does: the dumps served are always those of the store served (kg.dumps).
                dumps = dumps_folder(settings.dumps_root, target) if settings.write_dumps else None
                try:
                    applied = _run_child(live, target, runnable, settings.base_iri, record, timeout, dumps)
                    final = swap_in(settings.store_dir, target)
                except BaseException:
                    discard_build(target)
                    if dumps is not None:
                        discard_build(dumps)
                    raise
                prune_dumps(settings.dumps_root, keep={p.name for p in stores_root(settings.store_dir).iterdir()})
                applied.store_before, applied.store_after = live.name, final.name
                _write(audit, applied)
                return applied
        except BaseException as exc:
            record.outcome = {UpdateRefused: "refused", UpdateTimeout: "timeout", StoreBusy: "busy"}.get(
                type(exc), "failed")
            record.ended, record.reason = _now(), str(exc) or type(exc).__name__
            _write(audit, record)
            raise


def _open_audit_log(settings: Settings):
    path = audit_log_path(settings)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, "a", encoding="utf-8")
    except OSError as exc:
        raise StoreError(f"cannot open the update audit log {path}: {exc.strerror or exc}; "
                         "updates are refused without an audit trail") from None


def _write(audit, record: UpdateRecord) -> None:
    audit.write(record.to_json() + "\n")  # one write per line: concurrent lines never interleave
    audit.flush()
    os.fsync(audit.fileno())
