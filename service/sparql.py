"""``/sparql``: the query side of the SPARQL 1.1 Protocol.

GET with ``query``; POST form-encoded; POST ``application/sparql-query``; ``default-graph-uri``
and ``named-graph-uri``; the union of all graphs as default graph when no dataset is given;
results by ``Accept`` (with q-values) or a ``format`` parameter; the Service Description on a
GET without a query. Updates are never run for anonymous callers.
"""

from __future__ import annotations

from urllib.parse import parse_qs

import mimeparse
from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from service.engine import Job, QueryRefused, QueryTimeout
from service.state import ServiceState

router = APIRouter()

SELECT_TYPES = {  # media type -> results format; preferred last (mimeparse picks the last on ties)
    "text/tab-separated-values": "tsv",
    "text/csv": "csv",
    "application/sparql-results+xml": "xml",
    "application/xml": "xml",
    "application/json": "json",
    "application/sparql-results+json": "json",
}
GRAPH_TYPES = {
    "application/rdf+xml": "rdf",
    "application/ld+json": "jsonld",
    "application/n-triples": "nt",
    "text/plain": "nt",
    "text/turtle": "ttl",
}
FORMAT_PARAM = {"json": ("json", None), "xml": ("xml", None), "csv": ("csv", None), "tsv": ("tsv", None),
                "ttl": (None, "ttl"), "turtle": (None, "ttl"), "nt": (None, "nt"), "ntriples": (None, "nt"),
                "jsonld": (None, "jsonld"), "json-ld": (None, "jsonld"), "rdf": (None, "rdf"), "rdfxml": (None, "rdf")}
FORM = "application/x-www-form-urlencoded"
QUERY_TYPE = "application/sparql-query"
UPDATE_TYPE = "application/sparql-update"


def problem(status: int, message: str, **headers) -> PlainTextResponse:
    return PlainTextResponse(message + "\n", status_code=status, headers=headers)


def _formats(accept: str, format_param: str | None) -> tuple[str, str] | None:
    """The results format for SELECT/ASK and for CONSTRUCT/DESCRIBE, or None if nothing acceptable."""
    if format_param:
        key = format_param.lower()
        if key in FORMAT_PARAM:
            select_fmt, graph_fmt = FORMAT_PARAM[key]
            return select_fmt or "json", graph_fmt or "ttl"
        if key in SELECT_TYPES:
            return SELECT_TYPES[key], "ttl"
        if key in GRAPH_TYPES:
            return "json", GRAPH_TYPES[key]
        return None
    accept = accept or "*/*"
    select_match = mimeparse.best_match(list(SELECT_TYPES), accept)
    graph_match = mimeparse.best_match(list(GRAPH_TYPES), accept)
    if not select_match and not graph_match:
        return None
    return SELECT_TYPES.get(select_match, "json"), GRAPH_TYPES.get(graph_match, "ttl")


def _one(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name, [])
    if len(values) > 1:
        raise QueryRefused(f"the request has {len(values)} '{name}' parameters; send exactly one")
    return values[0] if values else None


def _format_param(values: list[str]) -> str | None:
    """Some clients (SPARQLWrapper) send the format twice, as a name and as a media type; both must agree."""
    chosen = {_formats("", v) for v in values}
    if len(chosen) > 1:
        raise QueryRefused(f"the 'format' parameters disagree: {', '.join(values)}")
    return values[0] if values else None


@router.api_route("/sparql", methods=["GET", "POST", "PUT", "DELETE", "PATCH"], include_in_schema=False)
async def sparql(request: Request) -> Response:
    state: ServiceState = request.app.state.ctkg
    if request.method not in ("GET", "POST"):
        return problem(405, f"{request.method} is not allowed on /sparql: use GET or POST", Allow="GET, POST")
    url_params = parse_qs(request.url.query, keep_blank_values=True)
    content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    params = dict(url_params)
    body_query: str | None = None
    if request.method == "POST":
        raw = await request.body()
        if content_type == FORM:
            form = parse_qs(raw.decode("utf-8"), keep_blank_values=True)
            for key, values in form.items():
                params.setdefault(key, []).extend(values)
        elif content_type == QUERY_TYPE:
            body_query = raw.decode("utf-8")
        elif content_type == UPDATE_TYPE:
            return _refuse_update(request, state)
        else:
            return problem(415, f"unsupported media type {content_type or '(none)'!r}: send {FORM}, "
                                f"{QUERY_TYPE} or {UPDATE_TYPE}")
    try:
        if "update" in params:
            return _refuse_update(request, state)
        query = _one(params, "query")
        if body_query is not None:
            if query is not None:
                raise QueryRefused("the request has a query in the body and another in the URL; send exactly one")
            query = body_query
        format_param = _format_param(params.get("format", []))
    except QueryRefused as exc:
        return problem(400, str(exc))
    formats = _formats(request.headers.get("accept", "*/*"), format_param)
    if query is None:
        return state.service_description(request, formats[1] if formats else "ttl")
    if formats is None:
        return problem(406, "none of the accepted media types can be produced; SELECT/ASK: "
                            + ", ".join(SELECT_TYPES) + "; CONSTRUCT/DESCRIBE: " + ", ".join(GRAPH_TYPES))
    default_graphs = params.get("default-graph-uri")
    named_graphs = params.get("named-graph-uri")
    job = Job(
        query=query, base_iri=state.settings.base_iri + "/", select_format=formats[0], graph_format=formats[1],
        limit=state.settings.result_limit, default_graphs=default_graphs, named_graphs=named_graphs,
        union_default=default_graphs is None and named_graphs is None,
    )
    try:
        # CPU-bound work runs off the event loop (and in a worker process with a time limit).
        answer = await run_in_threadpool(lambda: state.engine().run(job))
    except QueryRefused as exc:
        return problem(400, str(exc))
    except QueryTimeout as exc:
        return problem(503, str(exc), **{"Retry-After": "5"})
    except RuntimeError as exc:
        return problem(500, f"query failed: {exc}")
    return respond(answer, state)


def respond(answer, state: ServiceState) -> Response:
    """An engine answer as an HTTP response that says the result cap and whether it was reached."""
    headers = {"X-Result-Limit": str(state.settings.result_limit), "Vary": "Accept"}
    if answer.truncated:
        headers["X-Result-Truncated"] = f"true; the first {answer.count} results of more are returned"
    media_type = answer.media_type
    if media_type.startswith("text/") or media_type.endswith("+json") or media_type.endswith("xml"):
        media_type += "; charset=utf-8"
    return Response(answer.body, media_type=media_type, headers=headers)


def _refuse_update(request: Request, state: ServiceState) -> Response:
    token = state.settings.update_token
    given = request.headers.get("authorization", "")
    if not token:
        return problem(403, "SPARQL Update is disabled on this endpoint (no update token is configured)")
    if given != f"Bearer {token}":
        return problem(401, "SPARQL Update needs a bearer token", **{"WWW-Authenticate": 'Bearer realm="ctkg"'})
    return problem(501, "SPARQL Update through the endpoint is not available yet; rebuild with `kg build --update`")
