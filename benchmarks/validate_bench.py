"""Validation throughput on N copies of the shipped records (new NCT ids).

    .venv/bin/python benchmarks/validate_bench.py 1000
"""

from __future__ import annotations

import resource
import sys
import time

from kg.concepts import load_concepts
from kg.mapping import Mapper
from kg.settings import Settings
from kg.sources import read_records
from kg.validate import validate_trials


def main(count: int) -> None:
    settings = Settings()
    samples = list(read_records([settings.data_dir]))
    mapper = Mapper(settings.base_iri, load_concepts(settings.ontology_dir / "concepts"))
    pairs = []
    for n in range(count):
        trial = samples[n % len(samples)].model_copy(update={"nct_id": f"NCT{30000000 + n:08d}"})
        pairs.append((trial, mapper.map_trial(trial)))
    started = time.perf_counter()
    report = validate_trials(pairs, mapper, settings)
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"trials: {count}, results: {len(report.rows)} {report.counts_by_severity()}")
    print(f"validate: {elapsed:.2f} s, {count / elapsed:.1f} trials/s; peak RSS (main process) {peak:.0f} MiB")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
