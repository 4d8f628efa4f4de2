"""Latency of every named query (default parameters), four ways over the same store, and of trial pages.

    .venv/bin/python benchmarks/query_bench.py --store var/bench10k/store [--samples 50] [--budget-s 4]
            [--virtuoso] [--ways WAY ...] [--json OUT.json]

(a) `kg serve` over HTTP, ``GET /queries/NAME?format=json``: once with the answer cache off
    (``CTKG_CACHE_ENTRIES=0``: every request runs the query in a worker process) and once with
    it on, where every timed request after the warm-up is a cache hit;
(b) in process: ``Store.read_only`` and ``kg.queries.run`` (rows as pyoxigraph terms, the same
    result cap; no HTTP and no serialisation);
(c) a standalone ``oxigraph serve --union-default-graph`` over a copy of the store, sent the same
    SPARQL text (``BASE`` prepended, parameters bound by a VALUES block, as kg.remote does);
(d) with ``--virtuoso`` and Debian's ``virtuoso-t`` installed: Virtuoso on loopback with a private
    configuration, loaded from an N-Quads dump of the store with ``ld_dir`` / ``rdf_loader_run``.

The ways take turns request by request, so a burst of other work on a shared machine falls on all
of them alike. Each query is sampled up to
``--samples`` times or until ``--budget-s`` seconds have gone (at least ``--min-rounds`` samples),
after one warm-up round. Every server listens on 127.0.0.1 only. ``--ways`` times only some of the
ways (``--ways standalone virtuoso`` compares the engines alone, without starting `kg serve`); the
rows each engine returned are counted on the warm-up answer, so a truncated answer shows.
The target: service p50 <= 1.2 x in-process p50 + 5 ms, and <= the standalone server's p50.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
from pyoxigraph import RdfFormat, Store

from kg.queries import bind, load_library, run
from kg.binding import bind_values
from kg.settings import Settings
from kg.store import live_store_path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
PAGE_FORMATS = ("ttl", "nt", "jsonld", "rdf", "html")
WAYS = ("inproc", "service", "cached", "standalone", "virtuoso")


# ---- small helpers, also used by load_test.py ---------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(samples: list[float], p: float) -> float:
    """Nearest-rank percentile (no interpolation: every figure is a latency that was measured)."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def stop(process: subprocess.Popen, wait_s: float) -> None:
    """Ask a server to stop; kill it if it has not within ``wait_s``."""
    process.terminate()
    try:
        process.wait(timeout=wait_s)
    except subprocess.TimeoutExpired:
        process.kill()


def wait_until(check, what: str, timeout: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with status {process.returncode} before it was ready")
        try:
            if check():
                return
        except (httpx.HTTPError, OSError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} was not ready after {timeout:g} s")


@contextmanager
def kg_serve(store: Path, workers: int = 2, log: Path | None = None, **env: str):
    """`kg serve` on a free loopback port (extra CTKG_* settings in ``env``); yields its URL."""
    port = free_port()
    out = open(log, "ab") if log else subprocess.DEVNULL
    process = subprocess.Popen(
        [sys.executable, "-m", "kg.cli", "serve", "--host", "127.0.0.1", "--port", str(port), "--store", str(store),
         "--workers", str(workers)], env=dict(os.environ, **env), stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: httpx.get(url + "/sparql", timeout=2).status_code == 200, "kg serve", 180, process)
        yield url
    finally:
        stop(process, 20)
        if log:
            out.close()


@contextmanager
def oxigraph_serve(location: Path):
    """Oxigraph's own server over ``location`` (a copy: it opens the store read-write); yields the query URL."""
    port = free_port()
    process = subprocess.Popen([str(VENV_BIN / "oxigraph"), "serve", "--location", str(location),
                                "--bind", f"127.0.0.1:{port}", "--union-default-graph"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/query"
    try:
        wait_until(lambda: httpx.get(url, params={"query": "ASK {}"}, timeout=2).status_code == 200,
                   "oxigraph serve", 120, process)
        yield url
    finally:
        stop(process, 20)


# ---- Virtuoso (optional) -----------------------------------------------------------------------------

VIRTUOSO_INI = """[Database]
DatabaseFile = {dir}/virtuoso.db
ErrorLogFile = {dir}/virtuoso.log
TransactionFile = {dir}/virtuoso.trx
xa_persistent_file = {dir}/virtuoso.pxa
MaxCheckpointRemap = 2000

[TempDatabase]
DatabaseFile = {dir}/virtuoso-temp.db
TransactionFile = {dir}/virtuoso-temp.trx

[Parameters]
ServerPort = 127.0.0.1:{sql_port}
;; the sizes Virtuoso's own ini gives for 8 GB of free memory (the machine has 24 GiB)
NumberOfBuffers = 680000
MaxDirtyBuffers = 500000
DirsAllowed = ., {dir}, /usr/share/virtuoso-opensource-7/vad
ThreadsPerQuery = 2
AsyncQueueMaxThreads = 4

[HTTPServer]
ServerPort = 127.0.0.1:{http_port}
ServerThreads = 4

[SPARQL]
ResultSetMaxRows = {max_rows}
MaxQueryExecutionTime = {timeout_s}
MaxQueryCostEstimationTime = 0
DefaultQuery = ASK {{}}
"""


@contextmanager
def virtuoso_serve(store_path: Path, work: Path, max_rows: int, timeout_s: int):
    """Virtuoso 7 with a private configuration on loopback ports, loaded from an N-Quads dump of the
    store; yields (SPARQL URL, load seconds). Its default graph is the union of all graphs, as ours."""
    binary = shutil.which("virtuoso-t")
    isql = shutil.which("isql-vt")
    if not binary or not isql:
        raise RuntimeError("virtuoso-t / isql-vt not found (Debian: apt-get install virtuoso-opensource)")
    work.mkdir(parents=True, exist_ok=True)
    sql_port, http_port = free_port(), free_port()
    (work / "virtuoso.ini").write_text(VIRTUOSO_INI.format(dir=work, sql_port=sql_port, http_port=http_port,
                                                           max_rows=max_rows, timeout_s=timeout_s))
    dump = work / "dump.nq.gz"
    if not dump.exists():
        with gzip.open(dump, "wb", compresslevel=1) as out:
            Store.read_only(str(store_path)).dump(out, format=RdfFormat.N_QUADS)
    process = subprocess.Popen([binary, "+foreground", "+configfile", str(work / "virtuoso.ini")], cwd=work,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{http_port}/sparql"
    try:
        wait_until(lambda: httpx.get(url, params={"query": "ASK {}"}, timeout=2).status_code == 200,
                   "virtuoso", 300, process)
        started = time.monotonic()
        script = (f"ld_dir('{work}', 'dump.nq.gz', 'urn:ctkg:no-graph');\nrdf_loader_run();\ncheckpoint;\n"
                  "select count(*) from DB.DBA.load_list where ll_error is not null;\n")
        loaded = subprocess.run([isql, f"127.0.0.1:{sql_port}", "dba", "dba"], input=script.encode(),
                                capture_output=True, timeout=3600, check=False)
        if loaded.returncode != 0:
            raise RuntimeError("isql failed: " + loaded.stderr.decode(errors="replace")[-500:])
        yield url, time.monotonic() - started
    finally:
        stop(process, 60)


# ---- measuring ---------------------------------------------------------------------------------------

class Timer:
    """Samples of several ways of running one query, taken in turns (one of each, again and again) so
    that a burst of other work on a shared machine falls on all of them: one warm-up round, then
    rounds until the count or the budget is reached (at least ``min_rounds``: analytic queries take
    seconds at 10k trials). A way that fails is left out. The warm-up answers are kept in ``first``."""

    def __init__(self, samples: int, budget_s: float, min_rounds: int = 3):
        self.samples, self.budget_s, self.min_rounds = samples, budget_s, min_rounds
        self.first: dict = {}

    def __call__(self, calls: dict) -> dict[str, dict]:
        out: dict[str, dict] = {}
        live = dict(calls)
        self.first = {}
        for mode, call in list(live.items()):
            try:
                self.first[mode] = call()
            except Exception as exc:  # noqa: BLE001 - reported in the table, the other modes go on
                out[mode] = {"error": str(exc)[:200]}
                del live[mode]
        times: dict[str, list[float]] = {mode: [] for mode in live}
        started = time.perf_counter()
        rounds = 0
        while live and rounds < self.samples and (rounds < self.min_rounds
                                                  or time.perf_counter() - started < self.budget_s):
            for mode, call in live.items():
                t = time.perf_counter()
                call()
                times[mode].append(time.perf_counter() - t)
            rounds += 1
        for mode, samples in times.items():
            out[mode] = {"n": len(samples), "p50_ms": percentile(samples, 50) * 1000,
                         "p99_ms": percentile(samples, 99) * 1000}
        return out


def http_call(client: httpx.Client, method: str, url: str, expect_header: tuple[str, str] | None = None, **kwargs):
    def call():
        response = client.request(method, url, **kwargs)
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}: {response.text[:200]}")
        if expect_header and response.headers.get(expect_header[0]) != expect_header[1]:
            raise RuntimeError(f"{expect_header[0]} is {response.headers.get(expect_header[0])!r}")
        return response
    return call


def sparql_text(query, base: str) -> str:
    """The SPARQL a plain endpoint gets for a named query with its default parameters."""
    return f"BASE <{base}/>\n" + bind_values(query.text, bind(query, {}))


def sparql_rows(response: httpx.Response) -> int:
    """How many rows a SPARQL JSON answer holds."""
    return len(response.json()["results"]["bindings"])


def verdict(service: dict | None, inproc: dict | None, standalone: dict | None) -> str:
    if not service or not inproc or not standalone:
        return "n/a"
    if "p50_ms" not in service or "p50_ms" not in inproc or "p50_ms" not in standalone:
        return "n/a"
    ok_inproc = service["p50_ms"] <= 1.2 * inproc["p50_ms"] + 5
    ok_standalone = service["p50_ms"] <= standalone["p50_ms"]
    return {(True, True): "yes", (True, False): "no: > standalone", (False, True): "no: > in-process bound",
            (False, False): "no: both"}[(ok_inproc, ok_standalone)]


def fmt(result: dict | None) -> str:
    if not result:
        return ""
    if "error" in result:
        return "error"
    return f"{result['p50_ms']:.1f} / {result['p99_ms']:.1f}"


def ratio(a: dict | None, b: dict | None) -> str:
    if not a or not b or "p50_ms" not in a or "p50_ms" not in b or b["p50_ms"] == 0:
        return ""
    return f"{a['p50_ms'] / b['p50_ms']:.2f}"


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    memory = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal"))
    import pyoxigraph
    return (f"{os.cpu_count()} cores ({cpu}), {memory / 1024 / 1024:.0f} GiB, {platform.system()}, "
            f"Python {platform.python_version()}, pyoxigraph {pyoxigraph.__version__}, "
            f"load average at start {os.getloadavg()[0]:.1f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", type=Path, required=True, help="a store built by `kg build` (the link)")
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--budget-s", type=float, default=15.0, help="time per query (all modes)")
    parser.add_argument("--virtuoso", action="store_true", help="add Virtuoso (d) when virtuoso-t is installed")
    parser.add_argument("--ways", nargs="+", choices=WAYS, default=list(WAYS[:-1]),
                        help="which ways to time (default: all but virtuoso; --virtuoso adds it)")
    parser.add_argument("--min-rounds", type=int, default=3, help="samples of each way at least")
    parser.add_argument("--timeout-s", default="300", help="the servers' query time limit (CTKG_QUERY_TIMEOUT_S)")
    parser.add_argument("--only", nargs="*", help="only these named queries")
    parser.add_argument("--json", type=Path, help="write the figures as JSON too")
    args = parser.parse_args(argv)
    ways = set(args.ways) | ({"virtuoso"} if args.virtuoso else set())
    # Stopped from outside (timeout, kill): unwind, so the servers started here are stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    settings = Settings(store_dir=args.store)
    base = settings.base_iri
    live = live_store_path(args.store)
    if live is None:
        parser.error(f"no store at {args.store}: build one with `kg build ... --store {args.store}`")
    library = load_library(settings.queries_dir)
    names = args.only or list(library)
    timer = Timer(args.samples, args.budget_s, args.min_rounds)
    print(f"machine: {machine()}\nstore: {live}", file=sys.stderr)

    store = Store.read_only(str(live))
    nct = next(iter(store.query(f'SELECT ?n {{ ?t <{base}/ontology/nctId> ?n }} LIMIT 1',
                                use_default_graph_as_union=True)))["n"].value
    figures: dict = {"machine": machine(), "store": str(live), "queries": {}, "pages": {}}
    with ExitStack() as stack, httpx.Client(timeout=120) as client:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="query-bench-", dir=ROOT / "var")))
        uncached = cached = standalone = virtuoso = None
        # A long time limit: the analytic queries take seconds on a large store, and this measures them.
        # The uncached server also serves the trial pages.
        if ways & {"service", "cached"}:
            uncached = stack.enter_context(kg_serve(args.store, CTKG_CACHE_ENTRIES="0",
                                                    CTKG_QUERY_TIMEOUT_S=args.timeout_s))
        if "cached" in ways:
            # Warming off: each cached answer here comes from the benchmark's own first request.
            cached = stack.enter_context(kg_serve(args.store, CTKG_QUERY_TIMEOUT_S=args.timeout_s,
                                                  CTKG_WARM_QUERIES="false"))
        if "standalone" in ways:
            copy = scratch / "oxigraph-copy"
            store.backup(str(copy))  # a checkpoint (hard links where it can): the standalone server's own store
            standalone = stack.enter_context(oxigraph_serve(copy))
        if "virtuoso" in ways:
            try:
                virtuoso, load_s = stack.enter_context(virtuoso_serve(live, scratch / "virtuoso", settings.result_limit,
                                                                      int(float(args.timeout_s))))
                figures["virtuoso_load_s"] = load_s
                print(f"virtuoso: loaded in {load_s:.1f} s", file=sys.stderr)
            except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
                figures["virtuoso_error"] = str(exc)
                print(f"virtuoso: not measured: {exc}", file=sys.stderr)
        for name in names:
            query = library[name]
            text = sparql_text(query, base)
            accept = {"Accept": "application/sparql-results+json"}
            calls = {}
            if "inproc" in ways:
                calls["inproc"] = lambda query=query: run(store, query, {}, base, limit=settings.result_limit)
            if "service" in ways:
                calls["service"] = http_call(client, "GET", f"{uncached}/queries/{name}", params={"format": "json"})
            if cached:
                client.get(f"{cached}/queries/{name}", params={"format": "json"})  # the miss that fills the cache
                calls["cached"] = http_call(client, "GET", f"{cached}/queries/{name}", ("x-cache", "hit"),
                                            params={"format": "json"})
            if standalone:
                calls["standalone"] = http_call(client, "POST", standalone, data={"query": text}, headers=accept)
            if virtuoso:
                calls["virtuoso"] = http_call(client, "POST", virtuoso, data={"query": text}, headers=accept)
            row = timer(calls)
            first = timer.first
            row["rows"] = (len(first["inproc"].rows) if "inproc" in first
                           else len(run(store, query, {}, base, limit=settings.result_limit).rows))
            for engine in ("standalone", "virtuoso"):
                if engine in first:
                    row[f"{engine}_rows"] = sparql_rows(first[engine])
            row["meets"] = verdict(row.get("service"), row.get("inproc"), row.get("standalone"))
            figures["queries"][name] = row
            print(f"{name}: {json.dumps(row)}", file=sys.stderr)
        if uncached:
            figures["pages"] = timer({suffix: http_call(client, "GET", f"{uncached}/trial/{nct}.{suffix}")
                                      for suffix in PAGE_FORMATS})
    figures["page_trial"] = nct

    head = "| query | rows | in-process | service | service, cached | standalone Oxigraph |"
    rule = "|---|---:|---:|---:|---:|---:|"
    with_virtuoso = any("virtuoso" in r for r in figures["queries"].values())
    if with_virtuoso:
        head += " Virtuoso | Virtuoso rows | Virtuoso / standalone |"
        rule += "---:|---:|---:|"
    print("\np50 / p99 in ms\n")
    print(head + " service / in-process | service / standalone | meets target |")
    print(rule + "---:|---:|---|")
    for name, r in figures["queries"].items():
        cells = [name, str(r["rows"]), fmt(r.get("inproc")), fmt(r.get("service")), fmt(r.get("cached")),
                 fmt(r.get("standalone"))]
        if with_virtuoso:
            cells += [fmt(r.get("virtuoso")), str(r.get("virtuoso_rows", "")), ratio(r.get("virtuoso"), r.get("standalone"))]
        cells += [ratio(r.get("service"), r.get("inproc")), ratio(r.get("service"), r.get("standalone")), r["meets"]]
        print("| " + " | ".join(cells) + " |")
    judged = [r["meets"] for r in figures["queries"].values() if r["meets"] != "n/a"]
    if judged:
        print(f"\n{judged.count('yes')} of {len(judged)} queries meet the target\n")
    if "virtuoso_load_s" in figures:
        print(f"Virtuoso: N-Quads dump loaded (ld_dir + rdf_loader_run + checkpoint) in {figures['virtuoso_load_s']:.1f} s")
    if "virtuoso_error" in figures:
        print(f"Virtuoso: not measured: {figures['virtuoso_error']}")
    if figures["pages"]:
        print(f"trial page {nct}, p50 / p99 in ms: "
              + ", ".join(f"{s} {fmt(r)}" for s, r in figures["pages"].items()))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
