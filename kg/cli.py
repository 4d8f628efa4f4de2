"""``kg``: thin verbs around one library function each.

Exit codes: 0 ok, 1 some records failed (or a validation found violations), 2 usage or
system error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from kg.settings import Settings

EXIT_OK, EXIT_FAILED, EXIT_ERROR = 0, 1, 2


def _ingest(args: argparse.Namespace, settings: Settings) -> int:
    from kg.sources import RecordFailure, read_records

    paths = args.paths or [settings.data_dir]
    trials, failures = [], 0
    for record in read_records(paths):
        if isinstance(record, RecordFailure):
            failures += 1
            print(f"ERROR {record}", file=sys.stderr)
            continue
        trials.append(record)
        title = (record.brief_title or "")[:70]
        print(
            f"{record.nct_id}  {record.source.format.value:<16}  arms={len(record.arms)} "
            f"interventions={len(record.interventions)} sites={len(record.locations)}  {title}"
        )
    print(f"{len(trials)} records read, {failures} failed")
    if args.out:
        document = {"studies": [t.to_ctgov() for t in trials]}
        Path(args.out).write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {len(trials)} studies to {args.out}")
    return EXIT_FAILED if failures else EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kg", description="Clinical-trials knowledge graph")
    parser.add_argument("--base-iri", help="base of every minted IRI (default: $CTKG_BASE_IRI or http://localhost:8000)")
    verbs = parser.add_subparsers(dest="verb", required=True)

    ingest = verbs.add_parser("ingest", help="read records (files, folders, ZIPs) and list them")
    ingest.add_argument("paths", nargs="*", help="files, folders or ZIPs (default: the shipped data/)")
    ingest.add_argument("--out", help="write the normalised records as v2 JSON ({\"studies\": [...]})")
    ingest.set_defaults(run=_ingest)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    overrides = {"base_iri": args.base_iri} if args.base_iri else {}
    settings = Settings(**overrides)
    try:
        return args.run(args, settings)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
