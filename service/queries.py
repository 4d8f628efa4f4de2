"""``/queries``: the named-query library as an API that needs no SPARQL.

``GET /queries`` is the catalogue (from the `#+` headers); ``GET /queries/{name}?param=...`` runs
one query with typed, validated parameters bound by the engine, in any SELECT results format
(``Accept`` or ``format``). Each query gets its own route so the OpenAPI schema documents its
parameters.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from kg.queries import NamedQuery, QueryError, bind
import mimeparse

from service.engine import Job
from service.sparql import FORMAT_PARAM, GRAPH_TYPES, SELECT_TYPES, _formats, problem, run_job
from service.negotiation import accept_header
from service.state import ServiceState

OPENAPI_TYPES = {"string": "string", "integer": "integer", "decimal": "number", "boolean": "boolean",
                 "date": "string", "iri": "string", "nct": "string", "enum": "string"}
RESERVED = {"format"}
# `format` values that name a graph format (ttl, jsonld, text/turtle ...).
GRAPH_FORMAT_NAMES = {name for name, (select, _) in FORMAT_PARAM.items() if select is None} | set(GRAPH_TYPES)  # request parameters that are not query parameters


def catalogue_entry(query: NamedQuery, base: str) -> dict:
    return {
        "name": query.name,
        "summary": query.summary,
        "description": query.description.strip(),
        "url": f"{base}/queries/{query.name}",
        "params": [p.model_dump(exclude_none=True) for p in query.params],
        "columns": query.columns,
        "sparql": query.text,
        "example": example_text(query),
    }


def named_job(state: ServiceState, query: NamedQuery, terms: dict, select_format: str) -> Job:
    """The job for a named query with bound parameters: requests and warming (service.warm) make the same
    one, so that they meet in the cache. Named queries are SELECTs: the graph format is always the same."""
    return Job(query=query.text, base_iri=state.settings.base_iri + "/", select_format=select_format,
               graph_format="ttl", limit=state.settings.result_limit, default_graphs=None, named_graphs=None,
               union_default=True, substitutions={name: str(term) for name, term in terms.items()})


def example_text(query: NamedQuery) -> str:
    """The query as the query page puts it in its editor, runnable as it stands: a heading comment, and
    each parameter bound to its default by VALUES blocks, written where the engine needs them (also inside
    the groups that use a parameter). The page sends it unchanged, so warming (service.warm) can file the
    default answer under this very text."""
    from kg.binding import bind_values

    text = "\n".join(line for line in query.text.splitlines() if not line.startswith("#+")).strip()
    heading = f"# {query.name}: {query.summary}\n"
    try:
        bound = bind(query, {})
    except QueryError:  # a required parameter has no default: leave the text for the user to bind
        return heading + text
    return heading + (bind_values(text, bound, note="  # parameters: change them here") if bound else text)


def _openapi_parameters(query: NamedQuery) -> list[dict]:
    parameters = []
    for p in query.params:
        schema = {"type": OPENAPI_TYPES[p.type]}
        if p.type == "date":
            schema["format"] = "date"
        if p.type == "enum":
            schema["enum"] = p.values
        if p.type == "nct":
            schema["pattern"] = r"^NCT\d{8}$"
        if p.default is not None:
            schema["default"] = p.default
        parameters.append({"name": p.name, "in": "query", "required": p.required, "schema": schema,
                           "description": p.description or f"{p.type} parameter", "example": p.example})
    parameters.append({"name": "format", "in": "query", "required": False,
                       "schema": {"type": "string", "enum": ["json", "xml", "csv", "tsv"]},
                       "description": "results format (otherwise chosen by the Accept header)"})
    return parameters


async def run_named(request: Request, query: NamedQuery) -> Response:
    state: ServiceState = request.app.state.ctkg
    raw = {}
    for key, value in request.query_params.multi_items():
        if key in RESERVED:
            continue
        if key in raw:
            return problem(400, f"parameter {key!r} is given twice; give it once")
        raw[key] = value
    try:
        terms = bind(query, raw)
    except QueryError as exc:
        return problem(400, str(exc))
    accept = accept_header(request, "*/*")
    format_param = request.query_params.get("format")
    formats = _formats(accept, format_param)
    # A named query answers a table: a request that accepts only graph formats gets 406.
    if format_param and format_param.lower() in GRAPH_FORMAT_NAMES:
        formats = None
    elif not format_param and not mimeparse.best_match(list(SELECT_TYPES), accept):
        formats = None
    if formats is None:
        return problem(406, "named queries answer in application/sparql-results+json, application/sparql-results+xml, "
                            "text/csv or text/tab-separated-values")
    return await run_job(state, named_job(state, query, terms, formats[0]))


def add_routes(app: FastAPI, state: ServiceState, library: dict[str, NamedQuery]) -> None:
    base = state.settings.base_iri

    @app.get("/queries", tags=["named queries"], summary="The catalogue of named queries")
    def catalogue() -> JSONResponse:
        return JSONResponse([catalogue_entry(q, base) for q in library.values()])

    def endpoint_for(query: NamedQuery):
        async def endpoint(request: Request) -> Response:
            return await run_named(request, query)
        return endpoint

    for query in library.values():
        app.add_api_route(
            f"/queries/{query.name}", endpoint_for(query), methods=["GET"], tags=["named queries"], summary=query.summary,
            description=(query.description.strip() + "\n\nColumns: " + ", ".join(query.columns)).strip(),
            openapi_extra={"parameters": _openapi_parameters(query)}, response_class=Response,
            name=f"query-{query.name}",
        )

    @app.get("/queries/{name}", include_in_schema=False)
    def unknown(name: str) -> PlainTextResponse:
        return problem(404, f"no named query {name!r}; GET /queries lists them")
