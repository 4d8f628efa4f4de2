"""``POST /validate`` (RDF or a raw record in, a report out) and ``GET /validate/report`` (the last build's)."""

from __future__ import annotations

import mimeparse
import rdflib
from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from kg.build import BUILD_REPORT_FILES, reports_dir
from kg.sources import RecordFailure
from kg.validate import ValidationReport, render, validate_graph, validate_paths
from service.negotiation import accept_header, not_acceptable
from service.state import ServiceState

router = APIRouter()

RDF_INPUTS = {"text/turtle": "turtle", "application/n-triples": "nt", "application/ld+json": "json-ld"}
REPORT_TYPES = {  # preferred last
    "text/plain": "text", "application/ld+json": "jsonld", "text/turtle": "ttl", "application/json": "json",
    "text/html": "html",
}


POSTED = "(request body)"  # what reports name as the source file of a record sent to POST /validate


def _report_format(request: Request, formats=None) -> str | None:
    """The report format the Accept header asks for (JSON without one), among ``formats`` (all by default);
    None when none is acceptable. Media types are compared case-insensitively (RFC 9110)."""
    offered = [media for media, fmt in REPORT_TYPES.items() if formats is None or fmt in formats]
    return REPORT_TYPES.get(mimeparse.best_match(offered, accept_header(request, "application/json")))


def _not_acceptable(formats) -> Response:
    return not_acceptable([media for media, fmt in REPORT_TYPES.items() if fmt in formats])


def _response(report: ValidationReport, fmt: str, state: ServiceState, status: int = 200) -> Response:
    media = {v: k for k, v in REPORT_TYPES.items()}[fmt]
    return Response(render(report, fmt, state.settings.base_iri), media_type=media, status_code=status,
                    headers={"Vary": "Accept"})


def _validate_body(body: bytes, content_type: str, state: ServiceState) -> ValidationReport:
    settings = state.settings
    if content_type in RDF_INPUTS:
        graph = rdflib.Graph().parse(data=body.decode("utf-8"), format=RDF_INPUTS[content_type],
                                     publicID=settings.base_iri + "/")
        report = ValidationReport(rows=validate_graph(graph, settings))
        return report
    # A raw record (v2 JSON or a page): read it as `kg validate` would, without touching the store.
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "posted-record"
        path.write_bytes(body)
        report = validate_paths(settings, [path])
    # The temporary file's path means nothing to the caller (and tells where the server keeps its files).
    for row in report.rows:
        if row.source_file:
            row.source_file = POSTED
    report.failures = [RecordFailure(POSTED, f.message, field=f.field) for f in report.failures]
    return report


@router.post("/validate", summary="Validate RDF (Turtle, N-Triples, JSON-LD) or a raw trial record against the shapes")
async def validate(request: Request) -> Response:
    state: ServiceState = request.app.state.ctkg
    content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    body = await request.body()
    if not body:
        return PlainTextResponse("send the data to validate in the request body\n", status_code=400)
    if len(body) > 20_000_000:
        return PlainTextResponse("the body is larger than 20 MB\n", status_code=413)
    try:
        report = await run_in_threadpool(_validate_body, body, content_type, state)
    except Exception as exc:  # noqa: BLE001 - unparsable input is the caller's error, said plainly
        return PlainTextResponse(f"cannot read the data as {content_type or 'a record'}: {exc}\n", status_code=400)
    if report.errors and not report.trials:
        return PlainTextResponse("cannot read the record: " + "; ".join(report.errors) + "\n", status_code=400)
    fmt = _report_format(request)
    if fmt is None:
        return _not_acceptable(set(REPORT_TYPES.values()))
    return _response(report, fmt, state)


@router.get("/validate/report", summary="The validation report of the last build")
def last_report(request: Request) -> Response:
    state: ServiceState = request.app.state.ctkg
    fmt = _report_format(request, BUILD_REPORT_FILES)  # the formats the build wrote
    if fmt is None:
        return _not_acceptable(BUILD_REPORT_FILES)
    path = reports_dir(state.settings) / BUILD_REPORT_FILES[fmt]
    if not path.exists():
        return PlainTextResponse("no build report yet: run `kg build`\n", status_code=404)
    media = {v: k for k, v in REPORT_TYPES.items()}[fmt]
    return Response(path.read_bytes(), media_type=media, headers={"Vary": "Accept"})
