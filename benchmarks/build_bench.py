"""Build throughput on N copies of the shipped records (new NCT ids), phase by phase.

    .venv/bin/python benchmarks/build_bench.py 10000

Prints records/s and triples/s for reading, mapping and loading, and the peak memory.
A stand-in until the realistic synthetic generator exists (issue: scale).
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import time
from pathlib import Path

from kg.concepts import load_concepts
from kg.mapping import Mapper
from kg.settings import Settings
from kg.sources import read_records
from pyoxigraph import Store


def main(count: int) -> None:
    settings = Settings()
    samples = [t for t in read_records([settings.data_dir])]
    studies = []
    for n in range(count):
        study = samples[n % len(samples)].to_ctgov()
        study["protocolSection"]["identificationModule"]["nctId"] = f"NCT{20000000 + n:08d}"
        studies.append(study)
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "page.json"
        page.write_text(json.dumps({"studies": studies}))
        t0 = time.perf_counter()
        trials = list(read_records([page]))
        t1 = time.perf_counter()
        mapper = Mapper(settings.base_iri, load_concepts(settings.ontology_dir / "concepts"))
        quads = [q for t in trials for q in mapper.map_trial(t).quads]
        t2 = time.perf_counter()
        store = Store(str(Path(tmp) / "store"))
        store.bulk_extend(quads)
        store.optimize()
        t3 = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"records: {count}, triples: {len(quads)}")
    print(f"parse:   {t1 - t0:7.2f} s  {count / (t1 - t0):9.0f} records/s")
    print(f"map:     {t2 - t1:7.2f} s  {count / (t2 - t1):9.0f} records/s  {len(quads) / (t2 - t1):10.0f} triples/s")
    print(f"load:    {t3 - t2:7.2f} s  {len(quads) / (t3 - t2):10.0f} triples/s (bulk_extend + optimize, on disk)")
    print(f"peak RSS: {peak:.0f} MiB")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
