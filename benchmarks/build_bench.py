"""Build throughput, phase by phase: parse, resolve + map, validate (optional), load, optimize.

    .venv/bin/python benchmarks/build_bench.py --synthetic 10000 [--seed 1]   # generate (benchmarks/synth.py), then build
    .venv/bin/python benchmarks/build_bench.py studies.zip [more paths]      # any records `kg build` takes
    .venv/bin/python benchmarks/build_bench.py --copies 2000                 # the earlier stand-in: copies of data/
    options: --validate [--validate-limit N]   also validate (SHACL, slow: see docs/performance.md)
             --keep-zip FILE                    keep the generated ZIP

The phases run one after the other on the whole input, as ``kg.build.build`` runs them, so
each one's time and the memory high-water mark after it can be read separately. Loading is
what the build does: ``bulk_extend`` of the ontology, the concepts and every trial's quads
into a new on-disk Oxigraph store; ``optimize`` (which the build runs next) is timed on its own.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pyoxigraph
from pyoxigraph import Store

from kg.build import ontology_quads
from kg.concepts import load_concepts
from kg.mapping import Mapper
from kg.settings import Settings
from kg.sources import RecordFailure, read_records
from kg.validate import validate_trials

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/ is a folder of scripts, not a package
import synth


def peak_mib() -> float:
    """The process's memory high-water mark so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def copies_of_samples(settings: Settings, count: int, folder: Path) -> Path:
    """N copies of the shipped records under new NCT ids, as one {"studies": [...]} page."""
    samples = [t for t in read_records([settings.data_dir]) if not isinstance(t, RecordFailure)]
    studies = []
    for n in range(count):
        study = samples[n % len(samples)].to_ctgov()
        study["protocolSection"]["identificationModule"]["nctId"] = f"NCT{20000000 + n:08d}"
        studies.append(study)
    page = folder / "page.json"
    page.write_text(json.dumps({"studies": studies}))
    return page


class Phases:
    """Times each phase and prints one row per phase."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, float, int | None, int | None, float]] = []

    def record(self, name: str, seconds: float, records: int | None = None, triples: int | None = None) -> None:
        self.rows.append((name, seconds, records, triples, peak_mib()))

    def print(self) -> None:
        print(f"{'phase':<14}{'seconds':>9}{'records/s':>12}{'triples/s':>12}{'peak RSS':>12}")
        for name, seconds, records, triples, peak in self.rows:
            rate = f"{records / seconds:,.0f}" if records else "-"
            triple_rate = f"{triples / seconds:,.0f}" if triples else "-"
            print(f"{name:<14}{seconds:>9.1f}{rate:>12}{triple_rate:>12}{peak:>8,.0f} MiB")


def run(args: argparse.Namespace) -> None:
    settings = Settings()
    phases = Phases()
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, pyoxigraph {pyoxigraph.__version__}")
    with tempfile.TemporaryDirectory(prefix="build-bench-") as tmp:
        folder = Path(tmp)
        if args.synthetic:
            zip_path = args.keep_zip or folder / "synthetic.zip"
            started = time.perf_counter()
            counts = synth.write_zip(zip_path, synth.records(args.synthetic, args.seed, args.malformed_rate))
            phases.record("generate", time.perf_counter() - started, counts["records"])
            paths = [zip_path]
            print(f"input: {counts['records']:,} synthetic records (seed {args.seed}, {counts['malformed']} malformed), "
                  f"{zip_path.stat().st_size / 2**20:.0f} MiB ZIP")
        elif args.copies:
            paths = [copies_of_samples(settings, args.copies, folder)]
            print(f"input: {args.copies:,} copies of the shipped records")
        else:
            paths = args.paths
            print(f"input: {', '.join(map(str, paths))}")

        started = time.perf_counter()
        read = list(read_records(paths))
        trials = [r for r in read if not isinstance(r, RecordFailure)]
        failures = len(read) - len(trials)
        phases.record("parse", time.perf_counter() - started, len(read))
        del read

        started = time.perf_counter()
        mapper = Mapper(settings.base_iri, load_concepts(settings.ontology_dir / "concepts"))
        pairs, seen = [], set()
        for trial in trials:
            if trial.nct_id not in seen:  # as kg build does: the first record of a trial wins
                seen.add(trial.nct_id)
                pairs.append((trial, mapper.map_trial(trial)))
        triples = sum(len(mapped.quads) for _, mapped in pairs)
        phases.record("resolve+map", time.perf_counter() - started, len(pairs), triples)

        validated = None
        if args.validate:
            subset = pairs[:args.validate_limit] if args.validate_limit else pairs
            started = time.perf_counter()
            validated = validate_trials(subset, mapper, settings)
            phases.record("validate", time.perf_counter() - started, len(subset),
                          sum(len(m.quads) for _, m in subset))

        started = time.perf_counter()
        store = Store(str(folder / "store"))
        store.bulk_extend(ontology_quads(settings))
        store.bulk_extend(mapper.concept_quads())
        store.bulk_extend(q for _, mapped in pairs for q in mapped.quads)
        phases.record("load", time.perf_counter() - started, len(pairs), triples)
        started = time.perf_counter()
        store.optimize()  # the on-disk store answers queries several times slower until this has run
        store.flush()
        phases.record("optimize", time.perf_counter() - started)
        stored = len(store)
        del store

    links: Counter = Counter()
    unresolved: Counter = Counter()
    for _, mapped in pairs:
        links.update(mapped.links)
        unresolved.update(u.kind for u in mapped.unresolved)
    print(f"records: {len(trials) + failures:,} read, {failures:,} refused by the reader; trials mapped: {len(pairs):,}; "
          f"quads from the mapper: {triples:,} ({triples / max(len(pairs), 1):.0f} per trial); "
          f"quads in the store (with ontology and concepts, repeats merged): {stored:,}")
    print(f"links: {dict(sorted(links.items()))}; unresolved: {dict(sorted(unresolved.items()))}")
    if validated is not None:
        print(f"validation: {validated.counts_by_severity()}, trials with violations: {len(validated.violating_trials())}")
    phases.print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build throughput, phase by phase.")
    parser.add_argument("paths", nargs="*", type=Path, help="record files, folders or ZIPs")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--synthetic", type=int, metavar="N", help="generate N synthetic records first")
    source.add_argument("--copies", type=int, metavar="N", help="N copies of the shipped records")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--malformed-rate", type=float, default=0.002)
    parser.add_argument("--keep-zip", type=Path, help="where to keep the generated ZIP")
    parser.add_argument("--validate", action="store_true", help="also validate with the SHACL shapes")
    parser.add_argument("--validate-limit", type=int, metavar="N", help="validate only the first N trials")
    args = parser.parse_args(argv)
    if bool(args.paths) == bool(args.synthetic or args.copies):
        parser.error("give record paths, or --synthetic N, or --copies N")
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
