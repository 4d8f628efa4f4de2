"""Validation throughput: trials are read, mapped and validated a chunk at a time, as the build does,
in one or more worker processes; only the validation is timed.

    .venv/bin/python benchmarks/validate_bench.py 10000 --synthetic --workers 2     # benchmarks/synth.py records
    .venv/bin/python benchmarks/validate_bench.py 1000                              # copies of data/ (new NCT ids)
    options: --chunk N (trials per validate_chunk call, default kg.validate.CHUNK)
             --engine pyshacl (the reference engine, through validate_trials; slow)

Each worker takes its own share of the record indices, makes those records itself (nothing large
crosses between processes), maps a chunk and validates it with ``validate_chunk``. Printed: the
validation time of each worker, the throughput (trials / slowest worker's validation time), the
wall time of the whole run (including making and mapping records) and each worker's peak RSS.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from kg.concepts import load_concepts
from kg.mapping import Mapper
from kg.settings import Settings
from kg.sources import RecordFailure, read_bytes, read_records
from kg.validate import CHUNK, concepts_by_subject, validate_chunk, validate_trials

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/ is a folder of scripts, not a package
import synth


def make_trials(indices: range, synthetic: bool, tables) -> list:
    """The records of these indices, read by the real readers (synthetic, or copies of data/)."""
    if synthetic:
        maker = synth.StudyMaker(1, synth.NamePools.from_tables(tables))
        trials = []
        for index in indices:
            study, truth = maker.study(index)
            trials.extend(t for t in read_bytes(synth.encode(study), f"{truth['nct_id']}.json")
                          if not isinstance(t, RecordFailure))
        return trials
    samples = [t for t in read_records([Settings().data_dir]) if not isinstance(t, RecordFailure)]
    return [samples[n % len(samples)].model_copy(update={"nct_id": f"NCT{30000000 + n:08d}"}) for n in indices]


def worker(args) -> dict:
    start, stop, synthetic, chunk, engine = args
    settings = Settings()
    tables = load_concepts(settings.ontology_dir / "concepts")
    mapper = Mapper(settings.base_iri, tables)
    concepts = concepts_by_subject(mapper.concept_quads())
    validate_chunk([], concepts, settings)  # compile the shapes and read the ontology before timing
    seconds, trials, quads, counts = 0.0, 0, 0, Counter()
    for first in range(start, stop, chunk):
        pairs = [(t, mapper.map_trial(t)) for t in make_trials(range(first, min(first + chunk, stop)), synthetic, tables)]
        quads += sum(len(m.triples) + len(m.shared) for _, m in pairs)
        began = time.perf_counter()
        if engine == "sparql":
            report = validate_chunk(pairs, concepts, settings)
        else:
            report = validate_trials(pairs, mapper, settings, engine="pyshacl", workers=1)
        seconds += time.perf_counter() - began
        trials += len(pairs)
        counts.update(report.counts_by_severity())
    return {"trials": trials, "quads": quads, "seconds": seconds, "results": dict(counts),
            "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", type=int, nargs="?", default=1000)
    parser.add_argument("--synthetic", action="store_true", help="benchmarks/synth.py records instead of copies of data/")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--chunk", type=int, default=CHUNK)
    parser.add_argument("--engine", choices=("sparql", "pyshacl"), default="sparql")
    args = parser.parse_args(argv)
    shares = [(args.count * w // args.workers, args.count * (w + 1) // args.workers, args.synthetic, args.chunk, args.engine)
              for w in range(args.workers)]
    began = time.perf_counter()
    if args.workers == 1:
        outcomes = [worker(shares[0])]
    else:
        with ProcessPoolExecutor(max_workers=args.workers) as pool:
            outcomes = list(pool.map(worker, shares))
    wall = time.perf_counter() - began
    slowest = max(o["seconds"] for o in outcomes)
    trials = sum(o["trials"] for o in outcomes)
    results = sum((Counter(o["results"]) for o in outcomes), Counter())
    print(f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} cores; "
          f"{'synthetic' if args.synthetic else 'copies of data/'}, engine {args.engine}, chunk {args.chunk}, "
          f"{args.workers} worker(s)")
    print(f"trials: {trials} ({sum(o['quads'] for o in outcomes)} trial quads), results: {dict(results)}")
    for n, o in enumerate(outcomes):
        print(f"  worker {n}: {o['trials']} trials validated in {o['seconds']:.1f} s "
              f"({o['trials'] / o['seconds']:.0f} trials/s), peak RSS {o['peak_mib']:.0f} MiB")
    print(f"validate: {trials / slowest:.0f} trials/s over {args.workers} worker(s) (slowest worker {slowest:.1f} s); "
          f"wall time with reading and mapping {wall:.1f} s")


if __name__ == "__main__":
    main()
