"""Load test: concurrent clients on a mix of named queries and trial pages against `kg serve`.

    .venv/bin/python benchmarks/load_test.py --store var/bench10k/store [--clients 16] [--seconds 30]
            [--query-share 0.5] [--no-cache] [--json OUT.json]
    .venv/bin/python benchmarks/load_test.py --url http://127.0.0.1:8000     # a server already running

Each client is a thread with its own keep-alive connection that sends one request after another
for the whole run: a named query (every query in the library, with its default parameters or with
the example its header gives, chosen at random) or a trial page (a random trial among the first
500, in a random format: ttl, nt, jsonld, rdf, html). The choices come from a seeded generator so
two runs send the same requests. Only loopback addresses are accepted. Reported: requests per
second, p50 and p99 latency per kind, errors (any status but 200, or no answer within the
timeout), and how many query answers came from the cache.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sys
import threading
import time
from contextlib import nullcontext
from pathlib import Path
from urllib.parse import urlsplit

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/ is a folder of scripts, not a package
from query_bench import kg_serve, machine, percentile

from kg.queries import load_library
from kg.settings import Settings

PAGE_FORMATS = ("ttl", "nt", "jsonld", "rdf", "html")


def request_mix(url: str, settings: Settings, query_share: float, seed: int, count: int) -> list[tuple[str, str, dict]]:
    """``count`` requests as (kind, path, params), drawn once so every run sends the same ones."""
    trials = _trial_ids(url, settings.base_iri)
    named = []
    for query in load_library(settings.queries_dir).values():
        named.append((f"/queries/{query.name}", {"format": "json"}))
        example = {p.name: str(p.example) for p in query.params if p.example is not None and p.example != p.default}
        if example:
            named.append((f"/queries/{query.name}", {"format": "json", **example}))
    rng = random.Random(seed)
    mix = []
    for _ in range(count):
        if rng.random() < query_share:
            path, params = rng.choice(named)
            mix.append(("query", path, params))
        else:
            mix.append(("page", f"/trial/{rng.choice(trials)}.{rng.choice(PAGE_FORMATS)}", {}))
    return mix


def _trial_ids(url: str, base: str) -> list[str]:
    query = f"SELECT ?n {{ ?t <{base}/ontology/nctId> ?n }} ORDER BY ?n LIMIT 500"
    response = httpx.get(url + "/sparql", params={"query": query}, timeout=120,
                         headers={"Accept": "application/sparql-results+json"})
    response.raise_for_status()
    return [b["n"]["value"] for b in response.json()["results"]["bindings"]]


class Tally:
    """What the clients saw, by kind; one lock, taken once per request (cheap next to a request)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.latencies: dict[str, list[float]] = {"query": [], "page": []}
        self.errors: dict[str, int] = {"query": 0, "page": 0}
        self.error_examples: list[str] = []
        self.cache_hits = 0

    def record(self, kind: str, seconds: float, error: str | None, hit: bool) -> None:
        with self.lock:
            self.latencies[kind].append(seconds)
            if error:
                self.errors[kind] += 1
                if len(self.error_examples) < 5:
                    self.error_examples.append(error)
            self.cache_hits += hit


def client_loop(url: str, mix: list, start: int, stride: int, deadline: float, tally: Tally, timeout: float) -> None:
    index = start
    with httpx.Client(base_url=url, timeout=timeout) as client:
        while time.monotonic() < deadline:
            kind, path, params = mix[index % len(mix)]
            index += stride
            began = time.perf_counter()
            error, hit = None, False
            try:
                response = client.get(path, params=params)
                if response.status_code != 200:
                    error = f"{path}: HTTP {response.status_code} {response.text[:120]!r}"
                hit = response.headers.get("x-cache") == "hit"
            except httpx.HTTPError as exc:
                error = f"{path}: {type(exc).__name__} {exc}"
            tally.record(kind, time.perf_counter() - began, error, hit)


def summary(tally: Tally, seconds: float) -> dict:
    out = {"seconds": seconds, "cache_hits": tally.cache_hits, "error_examples": tally.error_examples, "kinds": {}}
    every = []
    for kind, latencies in tally.latencies.items():
        every += latencies
        if latencies:
            out["kinds"][kind] = {"requests": len(latencies), "per_s": len(latencies) / seconds,
                                  "p50_ms": percentile(latencies, 50) * 1000, "p99_ms": percentile(latencies, 99) * 1000,
                                  "errors": tally.errors[kind]}
    out["kinds"]["all"] = {"requests": len(every), "per_s": len(every) / seconds,
                           "p50_ms": percentile(every, 50) * 1000 if every else 0,
                           "p99_ms": percentile(every, 99) * 1000 if every else 0,
                           "errors": sum(tally.errors.values())}
    return out


def wait_warmed(url: str, limit_s: float) -> float | None:
    """Seconds until the server has computed its named queries' answers ahead (GET /status); None when it
    does not warm them (turned off, cache off, or a server without /status)."""
    began = time.monotonic()
    while True:
        response = httpx.get(url + "/status", timeout=30)
        if response.status_code == 404:
            return None
        warm = response.json()["warm"]
        if warm["state"] == "off":
            return None
        if warm["state"] == "done":
            return time.monotonic() - began
        if time.monotonic() - began > limit_s:
            raise SystemExit(f"the answers were not computed within {limit_s:g} s: {warm}")
        time.sleep(1.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="a running `kg serve` on a loopback address")
    where.add_argument("--store", type=Path, help="start `kg serve` over this store for the run")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--query-share", type=float, default=0.5, help="share of named queries (the rest: pages)")
    parser.add_argument("--no-cache", action="store_true", help="with --store: serve with the answer cache off")
    parser.add_argument("--no-warm", action="store_true",
                        help="with --store: serve without computing the named queries' answers ahead (service.warm)")
    parser.add_argument("--warm-limit", type=float, default=3600.0,
                        help="seconds to wait for the server's answers computed ahead before the run starts")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=60.0, help="per request, seconds")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    # Stopped from outside (timeout, kill): unwind, so the servers started here are stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if not 1 <= args.clients <= 64 or not 0 < args.seconds <= 600:
        parser.error("--clients must be 1..64 and --seconds 0..600: this is a bounded test")
    if args.url and urlsplit(args.url).hostname not in ("127.0.0.1", "localhost", "::1"):
        parser.error(f"{args.url} is not a loopback address: the load test only runs against this machine")

    settings = Settings(**({"store_dir": args.store} if args.store else {}))
    env = {"CTKG_CACHE_ENTRIES": "0"} if args.no_cache else {}
    if args.no_warm:
        env["CTKG_WARM_QUERIES"] = "false"
    serving = kg_serve(args.store, **env) if args.store else nullcontext(args.url.rstrip("/"))
    with serving as url:
        warm_s = wait_warmed(url, args.warm_limit)
        if warm_s is not None:
            print(f"named-query answers computed ahead in {warm_s:.1f} s after the server answered")
        mix = request_mix(url, settings, args.query_share, args.seed, count=10_000)
        tally = Tally()
        began = time.monotonic()
        deadline = began + args.seconds
        threads = [threading.Thread(target=client_loop, args=(url, mix, i, args.clients, deadline, tally, args.timeout))
                   for i in range(args.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - began  # includes the requests still running at the deadline
    result = summary(tally, elapsed)
    result.update(machine=machine(), clients=args.clients, query_share=args.query_share, warm_s=warm_s,
                  cache="off" if args.no_cache else ("on" if args.store else "as the server is set"))
    print(f"{args.clients} clients, {elapsed:.1f} s, cache {result['cache']}, "
          f"{result['cache_hits']} query answers from the cache\n")
    print("| requests | count | per second | p50 ms | p99 ms | errors |")
    print("|---|---:|---:|---:|---:|---:|")
    for kind, k in result["kinds"].items():
        print(f"| {kind} | {k['requests']} | {k['per_s']:.1f} | {k['p50_ms']:.1f} | {k['p99_ms']:.1f} | {k['errors']} |")
    for example in result["error_examples"]:
        print("error:", example)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
