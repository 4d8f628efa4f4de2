"""``kg``: thin verbs around one library function each.

Exit codes: 0 ok (for validate: conforms; warnings and infos allowed), 1 some records failed
or the validation found violations, 2 usage or system error.
"""

from __future__ import annotations

import argparse
import logging
import json
import sys
from pathlib import Path
from typing import Sequence

from kg.settings import Settings
from kg.build import BuildError
from kg.remote import RemoteError, shown_url
from kg.store import StoreError

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


def _fetch(args: argparse.Namespace, settings: Settings) -> int:
    from functools import partial

    from tqdm import tqdm

    from kg.fetch import FetchError, Query, fetch, normalise_nct_id

    query = Query(condition=args.condition, intervention=args.intervention, sponsor=args.sponsor)
    problem = None
    if not (args.ids or query or args.bulk):
        problem = "give NCT ids, a query (--condition, --intervention, --sponsor) or --bulk"
    elif args.bulk and (args.ids or query):
        problem = "--bulk downloads every study: give it without NCT ids or a query"
    elif args.rate <= 0:
        problem = f"--rate must be more than 0 requests a second (got {args.rate:g})"
    try:
        ids = [normalise_nct_id(text) for text in args.ids]
    except ValueError as exc:
        problem = problem or str(exc)
    if problem:
        print(f"usage error: {problem}", file=sys.stderr)
        return EXIT_ERROR
    out = Path(args.out) if args.out else settings.store_dir.parent / "fetched"
    make_bar = None if args.quiet else partial(tqdm, file=sys.stderr, leave=False)
    try:
        report = fetch(settings, out, ids=ids, query=query or None, bulk=args.bulk, page_size=args.page_size,
                       max_studies=args.max_studies, rate_per_s=args.rate, backoff_s=args.backoff,
                       make_bar=make_bar)
    except ValueError as exc:
        print(f"usage error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except FetchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    for retry in report.retries:
        print(f"RETRY {retry.url}: {retry.reason}; waited {retry.wait_s:g} s", file=sys.stderr)
    for failure in report.failures:
        print(f"ERROR {failure}", file=sys.stderr)
    if ids or query:
        print(f"{out}: {len(report.written)} studies written, {len(report.skipped)} already there, "
              f"{len(report.failures)} failed")
    if report.bulk_file:
        print(f"bulk download: {report.bulk_file}")
    if query and report.query_complete is False and not report.failures:
        print("the query has more studies than --max-studies; a run with a larger limit continues from here")
    print(f"build the graph from them with: kg build {out}")
    return EXIT_FAILED if report.failures else EXIT_OK


def _build(args: argparse.Namespace, settings: Settings) -> int:
    from tqdm import tqdm

    from kg.build import build

    if args.store:
        settings = settings.model_copy(update={"store_dir": Path(args.store)})
    if args.no_dumps:
        settings = settings.model_copy(update={"write_dumps": False})
    if not args.quiet:
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    progress = (lambda records: tqdm(records, desc="files", unit=" file", file=sys.stderr)) if not args.quiet else None
    report = build(settings, args.paths or None, update=args.update, allow_invalid=args.allow_invalid, progress=progress)
    for failure in report.failures:
        print(f"ERROR {failure}", file=sys.stderr)
    print(f"store: {report.remote}" if report.remote else f"store: {settings.store_dir} -> {report.store_path}")
    print(f"trials: {len(report.trials)} loaded, {len(report.failures)} records failed; triples: {report.triples}")
    print("links: " + ", ".join(f"{kind} {n}" for kind, n in sorted(report.links.items())))
    if report.validation is not None:
        counts = report.validation.counts_by_severity()
        print(f"validation: {counts.get('Violation', 0)} violations, {counts.get('Warning', 0)} warnings, "
              f"{counts.get('Info', 0)} infos (report: {settings.store_dir.parent / 'reports' / 'last-build.html'})")
    for nct in report.rejected:
        print(f"REJECTED {nct}: violations keep it out of the served graph (use --allow-invalid to load it)", file=sys.stderr)
    if report.unresolved:
        total = sum(report.unresolved_counts.values())
        counts = ", ".join(f"{kind} {n}" for kind, n in sorted(report.unresolved_counts.items()))
        print(f"unresolved strings ({total}: {counts}), kept in the graph as labels"
              f"{'; the first ' + str(len(report.unresolved)) if total > len(report.unresolved) else ''}"
              " (named queries curation-queue-interventions and -conditions list those in full):")
        for item in report.unresolved:
            print(f"  {item.nct_id}  {item.kind:<12} {item.text}")
    else:
        print("unresolved strings: none")
    return EXIT_FAILED if report.failures or report.rejected else EXIT_OK


def _export(args: argparse.Namespace, settings: Settings) -> int:
    from kg.export import export_to
    from kg.store import open_read_only

    if args.format == "sssom":
        from kg.concepts import load_concepts
        from kg.sssom import sssom_tsv

        text = sssom_tsv(load_concepts(settings.ontology_dir / "concepts"), settings.base_iri)
        if args.out in (None, "-"):
            sys.stdout.write(text)
        else:
            Path(args.out).write_text(text, encoding="utf-8")
        return EXIT_OK
    store_dir = Path(args.store) if args.store else settings.store_dir
    store = open_read_only(store_dir)
    export_to(store, args.format, args.out, graph=args.graph, base=settings.base_iri)
    if args.out not in (None, "-"):
        print(f"wrote {args.out}", file=sys.stderr)
    return EXIT_OK


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from kg.store import live_store_path
    from service.app import create_app

    if args.store:
        settings = settings.model_copy(update={"store_dir": Path(args.store)})
    # With a remote store the answers come from it (`kg build` fills it): nothing to build here.
    if not settings.remote_query_url and live_store_path(settings.store_dir) is None:
        print(f"no store at {settings.store_dir}: building it from {settings.data_dir}", file=sys.stderr)
        build_args = argparse.Namespace(paths=[], store=None, update=False, quiet=True, allow_invalid=False,
                                        no_dumps=False)
        if _build(build_args, settings) == EXIT_ERROR:
            return EXIT_ERROR
    served = shown_url(settings.remote_query_url) if settings.remote_query_url else settings.store_dir
    print(f"serving {served} at http://{args.host}:{args.port}/ (SPARQL: /sparql)", file=sys.stderr)
    uvicorn.run(create_app(settings, workers=args.workers), host=args.host, port=args.port, log_level="warning")
    return EXIT_OK


def _validate(args: argparse.Namespace, settings: Settings) -> int:
    from kg.validate import render, validate_paths, validate_store

    if args.store:
        report = validate_store(settings.model_copy(update={"store_dir": Path(args.store)}))
    else:
        report = validate_paths(settings, args.paths or [settings.data_dir])
    text = render(report, args.format, settings.base_iri)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    for error in report.errors:
        print(f"ERROR {error}", file=sys.stderr)
    if report.errors and not report.trials:
        return EXIT_ERROR
    return EXIT_OK if report.conforms else EXIT_FAILED


def _query(args: argparse.Namespace, settings: Settings) -> int:
    from kg.queries import QueryError, load_library, run
    from kg.store import open_read_only

    library = load_library(settings.queries_dir)
    if args.docs:
        from kg.queries import render_docs

        store = open_read_only(Path(args.store) if args.store else settings.store_dir)
        Path(args.docs).write_text(render_docs(library, store, settings.base_iri), encoding="utf-8")
        print(f"wrote {args.docs}", file=sys.stderr)
        return EXIT_OK
    if args.list or not args.name:
        for query in library.values():
            params = " ".join(f"--param {p.name}={p.example if p.example is not None else p.default}"
                              for p in query.params)
            print(f"{query.name:<30} {query.summary}" + (f"\n{'':<30}   e.g. {params}" if params else ""))
        print(f"{len(library)} named queries in {settings.queries_dir}")
        return EXIT_OK
    if args.name not in library:
        print(f"error: no named query {args.name!r}; `kg query --list` lists them", file=sys.stderr)
        return EXIT_ERROR
    raw = {}
    for item in args.param or []:
        key, sep, value = item.partition("=")
        if not sep:
            print(f"error: --param {item!r} is not NAME=VALUE", file=sys.stderr)
            return EXIT_ERROR
        raw[key.strip()] = value
    store = open_read_only(Path(args.store) if args.store else settings.store_dir)
    try:
        table = run(store, library[args.name], raw, settings.base_iri)
    except QueryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    sys.stdout.write(format_table(table, args.format, settings.base_iri))
    return EXIT_OK


def format_table(table, fmt: str, base_iri: str) -> str:
    """A named query's answer as an aligned text table, or in a SPARQL results format."""
    if fmt != "table":
        from service import results

        return results.select(table.columns, table.rows, fmt).decode("utf-8")
    from kg.namespaces import prefixes

    known = sorted(prefixes(base_iri).items(), key=lambda item: -len(item[1]))

    def show(term) -> str:
        if term is None:
            return ""
        if type(term).__name__ == "NamedNode":
            for prefix, namespace in known:
                if term.value.startswith(namespace):
                    return f"{prefix}:{term.value[len(namespace):]}"
        return term.value.replace("\n", " ")

    cells = [[show(term) for term in row] for row in table.rows]
    widths = [min(60, max([len(c)] + [len(row[i]) for row in cells])) for i, c in enumerate(table.columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(table.columns, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for row in cells:
        lines.append("  ".join((v if len(v) <= w else v[: w - 1] + "…").ljust(w) for v, w in zip(row, widths)).rstrip())
    lines.append(f"({len(cells)} rows)")
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kg", description="Clinical-trials knowledge graph")
    parser.add_argument("--base-iri", help="base of every minted IRI (default: $CTKG_BASE_IRI or http://localhost:8000)")
    verbs = parser.add_subparsers(dest="verb", required=True)

    ingest = verbs.add_parser("ingest", help="read records (files, folders, ZIPs) and list them")
    ingest.add_argument("paths", nargs="*", help="files, folders or ZIPs (default: the shipped data/)")
    ingest.add_argument("--out", help="write the normalised records as v2 JSON ({\"studies\": [...]})")
    ingest.set_defaults(run=_ingest)

    fetch = verbs.add_parser("fetch", help="download studies from the ClinicalTrials.gov API v2 (by id, query or bulk)")
    fetch.add_argument("ids", nargs="*", metavar="NCT", help="NCT ids to download (e.g. NCT06281886)")
    fetch.add_argument("--condition", help="studies whose condition matches (query.cond)")
    fetch.add_argument("--intervention", help="studies whose intervention matches (query.intr)")
    fetch.add_argument("--sponsor", help="studies whose sponsor or collaborator matches (query.spons)")
    fetch.add_argument("--bulk", action="store_true", help="the ZIP of every study (several GB), resumable")
    fetch.add_argument("--out", help="folder for NCTxxxxxxxx.json files (default var/fetched)")
    fetch.add_argument("--page-size", type=int, default=1000, help="studies per page of a query (1-1000)")
    fetch.add_argument("--rate", type=float, default=1.0, help="at most this many requests a second (default 1)")
    fetch.add_argument("--max-studies", type=int, help="take at most the first N studies of the query")
    fetch.add_argument("--backoff", type=float, default=1.0,
                       help="seconds before the first retry, doubled for each further one (default 1)")
    fetch.add_argument("--quiet", action="store_true", help="no progress bar")
    fetch.set_defaults(run=_fetch)

    build = verbs.add_parser("build", help="build the graph store from records (default: data/)")
    build.add_argument("paths", nargs="*", help="files, folders or ZIPs (default: the shipped data/)")
    build.add_argument("--store", help="store folder (a link to the live store; default var/store)")
    build.add_argument("--update", action="store_true",
                       help="start from the live store and replace only the graphs of the records given")
    build.add_argument("--quiet", action="store_true", help="no progress bar")
    build.add_argument("--no-dumps", action="store_true", help="do not write the full dumps served at /dumps/")
    build.add_argument("--allow-invalid", action="store_true",
                       help="load records with SHACL violations too (they are still reported)")
    build.set_defaults(run=_build)

    export = verbs.add_parser("export", help="write a dump of the store")
    export.add_argument("--format", choices=["ttl", "nt", "nq", "trig", "jsonld", "rdf", "sssom"], default="nq")
    export.add_argument("--graph", help="only this named graph (IRI)")
    export.add_argument("--out", help="output file (.gz to compress); default standard output")
    export.add_argument("--store", help="store folder (default var/store)")
    export.set_defaults(run=_export)

    validate = verbs.add_parser("validate", help="validate records (or the store) against the SHACL shapes")
    validate.add_argument("paths", nargs="*", help="files, folders or ZIPs (default: the shipped data/)")
    validate.add_argument("--store", help="validate the built store in this folder instead of records")
    validate.add_argument("--format", choices=["text", "json", "ttl", "jsonld", "html"], default="text")
    validate.add_argument("--out", help="write the report to this file")
    validate.set_defaults(run=_validate)

    query = verbs.add_parser("query", help="run a named query from queries/ (kg query --list)")
    query.add_argument("name", nargs="?", help="the query's name (see --list)")
    query.add_argument("--list", action="store_true", help="list the named queries with an example of each")
    query.add_argument("--param", action="append", metavar="NAME=VALUE", help="a parameter (repeatable)")
    query.add_argument("--format", choices=["table", "csv", "tsv", "json", "xml"], default="table")
    query.add_argument("--store", help="store folder (default var/store)")
    query.add_argument("--docs", metavar="FILE", help="write the catalogue with each query's answer (docs/queries.md)")
    query.set_defaults(run=_query)

    serve = verbs.add_parser("serve", help="serve the store over HTTP (builds it from data/ first if missing)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--store", help="store folder (default var/store)")
    serve.add_argument("--workers", type=int, default=2, help="query worker processes")
    serve.set_defaults(run=_serve)
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
    except (OSError, StoreError, BuildError, RemoteError) as exc:
        # A progress bar still drawn would take the message onto its line: end it first.
        if "tqdm" in sys.modules:
            for bar in list(getattr(sys.modules["tqdm"].tqdm, "_instances", ())):
                bar.close()
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
