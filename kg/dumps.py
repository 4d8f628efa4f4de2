"""Full dumps of the graph, written with each store version and listed at ``/dumps/``.

A build writes the dumps of the store it has just built into ``<dumps root>/<store version>/`` (``<store_dir>.dumps`` unless set)
before swapping the store in, so the dumps served always match the store served. Each folder
has a ``manifest.json`` giving every file's size, SHA-256, date and number of statements.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from pyoxigraph import Store

from kg.export import export

# name, export format, media type of the uncompressed content, what it holds
DUMPS = [
    ("ctkg.nq.gz", "nq", "application/n-quads", "every named graph (one per trial, plus ontology, concepts, dataset)"),
    ("ctkg.trig.gz", "trig", "application/trig", "the same named graphs in TriG, with prefixes"),
    ("ctkg.ttl.gz", "ttl", "text/turtle", "the union of all graphs as one Turtle graph, with prefixes"),
    ("ctkg.jsonld.gz", "jsonld", "application/ld+json", "every named graph in JSON-LD (expanded form)"),
]
MANIFEST = "manifest.json"


@dataclass
class DumpFile:
    name: str
    format: str
    media_type: str
    compression: str
    description: str
    bytes: int
    sha256: str
    modified: str
    statements: int


def dump_urls(base_iri: str) -> list[str]:
    return [f"{base_iri}/dumps/{name}" for name, *_ in DUMPS]


def dumps_folder(dumps_dir: Path, store_path: Path) -> Path:
    """The dumps of one store version live in a folder named after it."""
    return dumps_dir / store_path.name.removesuffix(".building")


def write_dumps(store: Store, base_iri: str, folder: Path, now: datetime | None = None) -> list[DumpFile]:
    """Write every dump and the manifest into ``folder`` (aside first, then renamed into place)."""
    now = now or datetime.now(timezone.utc)
    aside = folder.with_name(folder.name + ".writing")
    shutil.rmtree(aside, ignore_errors=True)
    aside.mkdir(parents=True)
    # Counted in Oxigraph: walking 23M quads as Python objects took minutes at 100k trials.
    quads = len(store)
    (row,) = store.query("SELECT (COUNT(*) AS ?n) WHERE { SELECT DISTINCT ?s ?p ?o WHERE { GRAPH ?g { ?s ?p ?o } } }")
    triples = int(row[0].value)
    files = []
    try:
        for name, fmt, media_type, description in DUMPS:
            path = aside / name
            # Level 6: most of level 9's size at a fraction of its time on large dumps.
            with gzip.open(path, "wb", compresslevel=6) as out:
                export(store, fmt, out, base=base_iri)
            digest = hashlib.sha256()
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            files.append(DumpFile(name, fmt, media_type, "gzip", description, path.stat().st_size,
                                  digest.hexdigest(), now.isoformat(timespec="seconds"),
                                  triples if fmt == "ttl" else quads))
        (aside / MANIFEST).write_text(json.dumps([asdict(f) for f in files], indent=2) + "\n", encoding="utf-8")
        shutil.rmtree(folder, ignore_errors=True)
        aside.rename(folder)
    except BaseException:
        shutil.rmtree(aside, ignore_errors=True)
        raise
    return files


def read_manifest(folder: Path) -> list[DumpFile] | None:
    try:
        return [DumpFile(**item) for item in json.loads((folder / MANIFEST).read_text(encoding="utf-8"))]
    except (OSError, ValueError, TypeError):
        return None


def prune_dumps(dumps_dir: Path, keep: set[str]) -> None:
    """Remove the dumps of store versions that no longer exist."""
    if not dumps_dir.is_dir():
        return
    for folder in dumps_dir.iterdir():
        if folder.is_dir() and folder.name not in keep:
            shutil.rmtree(folder, ignore_errors=True)
