"""``/sparql``: the SPARQL 1.1 Protocol, query and update.

Query: GET with ``query``; POST form-encoded; POST ``application/sparql-query``;
``default-graph-uri`` and ``named-graph-uri`` (which override the query's own FROM and FROM NAMED);
the union of all graphs as default graph when neither the request nor the query names a dataset;
results by ``Accept`` (with q-values) or a ``format`` parameter; the Service Description on a GET
without a query.

Update: POST form-encoded ``update``; POST ``application/sparql-update``; ``using-graph-uri`` and
``using-named-graph-uri``. Only with a curator's bearer token (``CTKG_UPDATE_TOKENS``); run on a
copy of the store and swapped in, with an audit trail (``kg.updates``). Bodies are UTF-8.
"""

from __future__ import annotations

import secrets
from urllib.parse import parse_qs

import mimeparse
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from kg.sparql_text import names_its_dataset
from kg.store import StoreBusy
from kg.updates import UpdateRefused, UpdateTimeout, apply_update
from service.engine import (
    Answer,
    EngineClosed,
    Job,
    QueryEngine,
    QueryRefused,
    QueryTimeout,
)
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
    accept = (accept or "*/*").lower()  # media types are case-insensitive (RFC 9110, 8.3.1)
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


def _operation(params: dict[str, list[str]], name: str, body: str | None) -> str | None:
    """The query (or update) of a request: in the URL or form, or as the body; never both."""
    text = _one(params, name)
    if body is not None:
        if text is not None:
            raise QueryRefused(f"the request has {'an' if name == 'update' else 'a'} {name} in the body and "
                               "another in the URL; send exactly one")
        text = body
    return text


def _format_param(values: list[str]) -> str | None:
    """Some clients (SPARQLWrapper) send the format twice, as a name and as a media type; both must agree."""
    chosen = {_formats("", v) for v in values}
    if len(chosen) > 1:
        raise QueryRefused(f"the 'format' parameters disagree: {', '.join(values)}")
    return values[0] if values else None


@router.api_route("/sparql", methods=["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"], include_in_schema=False)
async def sparql(request: Request) -> Response:
    """HEAD is answered as GET is (the server sends no body): the service description's headers."""
    state: ServiceState = request.app.state.ctkg
    if request.method not in ("GET", "HEAD", "POST"):
        return problem(405, f"{request.method} is not allowed on /sparql: use GET or POST", Allow="GET, HEAD, POST")
    content_type_header = request.headers.get("content-type") or ""
    content_type = content_type_header.split(";")[0].strip().lower()
    body_query: str | None = None
    body_update: str | None = None
    try:
        params = parse_qs(request.url.query, keep_blank_values=True, errors="strict")
        if request.method == "POST":
            charset = _charset(content_type_header)
            if charset not in (None, "utf-8", "utf8"):
                return problem(415, f"the body is declared as {charset}: send it in UTF-8, as the protocol asks")
            raw = await request.body()
            if content_type == FORM:
                form = parse_qs(raw.decode("utf-8"), keep_blank_values=True, errors="strict")
                for key, values in form.items():
                    params.setdefault(key, []).extend(values)
            elif content_type == QUERY_TYPE:
                body_query = raw.decode("utf-8")
            elif content_type == UPDATE_TYPE:
                body_update = raw.decode("utf-8")
            else:
                return problem(415, f"unsupported media type {content_type or '(none)'!r}: send {FORM}, "
                                    f"{QUERY_TYPE} or {UPDATE_TYPE}")
    except UnicodeDecodeError as exc:
        return problem(400, f"the request is not valid UTF-8 (byte {exc.start}): send queries and updates in UTF-8")
    if body_update is not None or "update" in params:
        return await _update(request, state, params, body_update)
    try:
        query = _operation(params, "query", body_query)
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
    # The union of all graphs, unless the request or the query names the dataset.
    union_default = default_graphs is None and named_graphs is None and not names_its_dataset(query)
    job = Job(
        query=query, base_iri=state.settings.base_iri + "/", select_format=formats[0], graph_format=formats[1],
        limit=state.settings.result_limit, default_graphs=default_graphs, named_graphs=named_graphs,
        union_default=union_default,
    )
    return await run_job(state, job)


async def run_job(state: ServiceState, job: Job) -> Response:
    """Run a query job and answer: its results, or 400 (refused), 503 (time limit, busy) or 500.

    A repeated job on the same store version is answered from the cache without leaving the event
    loop (``X-Cache: hit``); only answers are cached, never errors.
    """
    try:
        answer, cache_status = await state.cached(job, lambda: _run_on_live_store(state, job))
    except QueryRefused as exc:
        return problem(400, str(exc))
    except QueryTimeout as exc:
        return problem(503, str(exc), **{"Retry-After": "5"})
    except RuntimeError as exc:
        return problem(500, f"query failed: {exc}")
    return respond(answer, state, cache_status)


async def _run_on_live_store(state: ServiceState, job: Job) -> tuple[str | None, Answer]:
    """The answer and the version of the store that gave it (taken with the engine, so an answer is
    filed under its own store). The query runs in a worker process whose pipe the event loop waits
    on; a remote store's request blocks on the network, so it runs in a thread."""
    for attempt in (1, 2):
        if state.data_version() is None:
            # Following a new store (opening it, starting workers) is slow: off the event loop.
            version, engine = await run_in_threadpool(state.versioned_engine)
        else:
            version, engine = state.versioned_engine()
        try:
            if isinstance(engine, QueryEngine):
                return version, await engine.run_async(job)
            return version, await run_in_threadpool(engine.run, job)
        except EngineClosed:
            if attempt == 2:  # two stores swapped in while this request waited: rare enough to say so
                raise RuntimeError("the store was replaced twice while the query waited; send it again") from None
    raise AssertionError("unreachable")


def respond(answer, state: ServiceState, cache_status: str) -> Response:
    """An engine answer as an HTTP response that says the result cap, whether it was reached and
    whether the answer came from the cache (hit, miss, or off when caching is disabled)."""
    headers = {"X-Result-Limit": str(state.settings.result_limit), "Vary": "Accept", "X-Cache": cache_status}
    if answer.truncated:
        headers["X-Result-Truncated"] = "true"  # only the first X-Result-Limit results are in the body
    media_type = answer.media_type
    if media_type.startswith("text/") or media_type.endswith("+json") or media_type.endswith("xml"):
        media_type += "; charset=utf-8"
    return Response(answer.body, media_type=media_type, headers=headers)


def _charset(content_type_header: str) -> str | None:
    for parameter in content_type_header.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"').lower()
    return None


def _curator(request: Request, state: ServiceState) -> str | Response:
    """The name of the curator whose token the request carries, or the refusal to send back.

    RFC 6750: no credentials or a wrong token is 401 with a Bearer challenge; 403 when the endpoint
    takes no updates at all (no token configured), since no credentials would help.
    """
    tokens = state.settings.update_tokens
    if not tokens:
        return problem(403, "SPARQL Update is disabled on this endpoint: no update token is configured")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return problem(401, "SPARQL Update needs a curator's bearer token (Authorization: Bearer ...)",
                       **{"WWW-Authenticate": 'Bearer realm="ctkg"'})
    given = given.strip().encode("utf-8")
    # Compare with every token, each in constant time, so timing says nothing about which one nearly matched.
    matches = [name for name, token in tokens.items() if secrets.compare_digest(given, token.encode("utf-8"))]
    if not matches:
        return problem(401, "the bearer token is not valid for SPARQL Update on this endpoint",
                       **{"WWW-Authenticate": 'Bearer realm="ctkg", error="invalid_token"'})
    return matches[0]


async def _update(request: Request, state: ServiceState, params: dict[str, list[str]],
                  body_update: str | None) -> Response:
    """The update operation: POST only, a curator's token, one update, then the copy-on-write run."""
    if request.method != "POST":
        return problem(405, "SPARQL Update must be sent with POST (form-encoded 'update' or "
                            f"{UPDATE_TYPE}), never with GET", Allow="POST")
    curator = _curator(request, state)
    if isinstance(curator, Response):
        return curator
    try:
        update = _operation(params, "update", body_update)
        if "query" in params:
            raise QueryRefused("the request has both a query and an update; send one operation per request")
        for name in ("default-graph-uri", "named-graph-uri"):
            if name in params:
                raise QueryRefused(f"'{name}' belongs to queries; an update takes using-graph-uri and "
                                   "using-named-graph-uri")
    except QueryRefused as exc:
        return problem(400, str(exc))
    if state.settings.remote_query_url:
        return problem(501, "this endpoint serves a remote store: send updates to that store's own endpoint")
    try:
        # Copying, updating and diffing run off the event loop, in a child process with the time limit.
        record = await run_in_threadpool(lambda: apply_update(
            state.settings, curator, update, params.get("using-graph-uri"), params.get("using-named-graph-uri")))
    except UpdateRefused as exc:
        return problem(400, str(exc))
    except (UpdateTimeout, StoreBusy) as exc:
        return problem(503, str(exc), **{"Retry-After": "5"})
    except (RuntimeError, OSError) as exc:
        return problem(500, f"update failed, nothing changed: {exc}")
    summary = {"update": record.update, "curator": record.curator, "added": record.added, "removed": record.removed,
               "graphs": [{"graph": c.graph, "added": c.added, "removed": c.removed} for c in record.graphs]}
    return JSONResponse(summary)
