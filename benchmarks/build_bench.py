"""Build throughput: the whole `kg build` end to end, and each phase's cost on its own.

    .venv/bin/python benchmarks/build_bench.py --synthetic 10000 [--seed 1] [--keep-zip var/synth-10k.zip]
    .venv/bin/python benchmarks/build_bench.py var/synth-100k.zip          # any records `kg build` takes
    .venv/bin/python benchmarks/build_bench.py --copies 2000               # copies of the shipped records
    options: --dumps            also write the full dumps, as `kg build` does by default
             --no-validate      skip SHACL validation
             --phases N         also time each phase alone, in one process, on the first N records

End to end is ``kg.build.build`` itself: records are parsed, resolved, mapped and validated in
worker processes chunk by chunk while the main process bulk-loads their N-Quads, so those phases
overlap; the build logs when each of its phases (open, map+load, describe, optimize, dumps, swap)
starts and ends, and this script prints those times. Memory is the peak of the whole process
tree (main process plus workers), sampled from /proc every 0.2 s.

``--phases`` runs parse, resolve+map, serialise, validate and load one after the other in one
process on a sample, and reports CPU seconds per phase: what each step costs per record, and so
where the time goes.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import re
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from itertools import islice
from pathlib import Path

import pyoxigraph
from pyoxigraph import RdfFormat, Store

from kg.build import ChunkMapper, ChunkPlan, build
from kg.settings import Settings
from kg.sources import RecordFailure, read_raw, read_records
from kg.validate import validate_chunk

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/ is a folder of scripts, not a package
import synth


def tree_rss_mib(root: int) -> float:
    """Resident memory of a process and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry)
        children.setdefault(int(fields[1]), []).append(pid)  # fields[1]: parent pid
        rss[pid] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")  # fields[21]: resident pages
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total / 2**20


class PeakMemory(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = 0.0
        self.running = True

    def run(self) -> None:
        while self.running:
            self.peak = max(self.peak, tree_rss_mib(os.getpid()))
            time.sleep(0.2)


class PhaseLog(logging.Handler):
    """Collects the build's own phase timings from its log lines."""

    def __init__(self) -> None:
        super().__init__()
        self.done: list[tuple[str, float]] = []

    def emit(self, record: logging.LogRecord) -> None:
        match = re.match(r"phase (\S+): done in ([\d.]+) s", record.getMessage())
        if match:
            self.done.append((match.group(1), float(match.group(2))))


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


def end_to_end(settings: Settings, paths: list[Path], folder: Path, validate: bool) -> None:
    log = PhaseLog()
    logger = logging.getLogger("kg.build")
    logger.setLevel(logging.INFO)
    logger.addHandler(log)
    memory = PeakMemory()
    memory.start()
    started, cpu = time.perf_counter(), os.times()
    report = build(settings.model_copy(update={"store_dir": folder / "store"}), paths, validate=validate,
                   allow_invalid=True)
    wall = time.perf_counter() - started
    after = os.times()
    memory.running = False
    memory.join()
    cpu_main = after.user - cpu.user + after.system - cpu.system
    cpu_workers = after.children_user - cpu.children_user + after.children_system - cpu.children_system
    trials = len(report.trials)
    print(f"end to end: {trials:,} trials loaded, {len(report.failures):,} records failed, "
          f"{report.triples:,} quads in the store")
    print(f"  wall {wall:.1f} s = {trials / wall:,.0f} trials/s, {report.triples / wall:,.0f} quads/s; "
          f"CPU main {cpu_main:.1f} s + workers {cpu_workers:.1f} s; peak memory (all processes) {memory.peak:,.0f} MiB")
    if report.validation is not None:
        print(f"  validation: {report.validation.counts_by_severity()}")
    print(f"  unresolved: {dict(sorted(report.unresolved_counts.items()))}; links: {dict(sorted(report.links.items()))}")
    print("  phases: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in log.done))


def each_phase(settings: Settings, paths: list[Path], folder: Path, sample: int) -> None:
    """Parse, resolve + map, validate, serialise and load, one after the other, in this process."""
    raws = list(islice(read_raw(paths), sample))
    worker = ChunkMapper(ChunkPlan(settings, datetime.now(timezone.utc), "bench", True))
    rows = []

    def timed(name, work, count_of=len):
        wall, cpu = time.perf_counter(), time.process_time()
        result = work()
        rows.append((name, time.perf_counter() - wall, time.process_time() - cpu, count_of(result)))
        return result

    trials = timed("parse", lambda: [t for raw in raws for t in raw.parse() if not isinstance(t, RecordFailure)])
    mapper = worker.mapper
    pairs = timed("resolve+map", lambda: [(t, mapper.map_trial(t)) for t in trials])
    quads = sum(len(m.triples) + len(m.shared) for _, m in pairs)
    data = timed("serialise", lambda: b"".join(m.nquads() for _, m in pairs), count_of=lambda _: len(pairs))
    timed("validate", lambda: validate_chunk(pairs, worker.concepts, settings) and pairs)
    store = Store(str(folder / "phases-store"))
    timed("load", lambda: store.bulk_load(data, format=RdfFormat.N_QUADS) or pairs)
    timed("optimize", lambda: store.optimize() or pairs)
    print(f"each phase alone, one process, first {len(raws):,} files ({len(pairs):,} trials, {quads:,} quads):")
    print(f"  {'phase':<12}{'wall s':>8}{'CPU s':>8}{'trials/s (CPU)':>16}{'ms per trial':>14}")
    for name, wall, cpu, count in rows:
        print(f"  {name:<12}{wall:>8.1f}{cpu:>8.1f}{count / max(cpu, 1e-9):>16,.0f}{1000 * cpu / max(count, 1):>14.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build throughput, end to end and phase by phase.")
    parser.add_argument("paths", nargs="*", type=Path, help="record files, folders or ZIPs")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--synthetic", type=int, metavar="N", help="generate N synthetic records first")
    source.add_argument("--copies", type=int, metavar="N", help="N copies of the shipped records")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--malformed-rate", type=float, default=0.002)
    parser.add_argument("--keep-zip", type=Path, help="where to keep the generated ZIP (reused when it exists)")
    parser.add_argument("--dumps", action="store_true", help="also write the full dumps")
    parser.add_argument("--no-validate", action="store_true", help="skip SHACL validation")
    parser.add_argument("--phases", type=int, metavar="N", help="also time each phase alone on the first N records")
    parser.add_argument("--skip-build", action="store_true", help="only the --phases measurement")
    args = parser.parse_args(argv)
    if bool(args.paths) == bool(args.synthetic or args.copies):
        parser.error("give record paths, or --synthetic N, or --copies N")
    settings = Settings(write_dumps=args.dumps)
    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}, "
          f"pyoxigraph {pyoxigraph.__version__}; load average before: {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="build-bench-", dir=os.environ.get("BENCH_TMP")) as tmp:
        folder = Path(tmp)
        if args.synthetic:
            zip_path = args.keep_zip or folder / "synthetic.zip"
            if not zip_path.exists():
                started = time.perf_counter()
                counts = synth.write_zip(zip_path, synth.records(args.synthetic, args.seed, args.malformed_rate))
                print(f"generated {counts['records']:,} records ({counts['malformed']} malformed) "
                      f"in {time.perf_counter() - started:.1f} s")
            paths = [zip_path]
        elif args.copies:
            paths = [copies_of_samples(settings, args.copies, folder)]
        else:
            paths = args.paths
        print(f"input: {', '.join(map(str, paths))}")
        if args.phases:
            each_phase(settings, paths, folder, args.phases)
        if not args.skip_build:
            end_to_end(settings, paths, folder, validate=not args.no_validate)
    return 0


if __name__ == "__main__":
    sys.exit(main())
