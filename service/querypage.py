"""``/query``: the query page (editor, examples from the named queries, results table, downloads)."""

from __future__ import annotations

import html
import json
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from kg.namespaces import prefixes
from service.state import ServiceState

STATIC = Path(__file__).resolve().parent / "static"
router = APIRouter()
static_files = StaticFiles(directory=STATIC)


@router.get("/query", response_class=HTMLResponse, include_in_schema=False)
def query_page(request: Request) -> HTMLResponse:
    state: ServiceState = request.app.state.ctkg
    base = state.settings.base_iri
    known = json.dumps(prefixes(base)).replace("</", "<\\/")
    return HTMLResponse(f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Query · ctkg</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/static/query.css">
</head><body data-base="{html.escape(base)}">
<nav><a href="/">ctkg home</a> · <a href="/queries">named queries (JSON)</a> · <a href="/dumps/">dumps</a> ·
<a href="/sparql">SPARQL endpoint</a> · <a href="/docs">API</a></nav>
<h1>Query the graph</h1>
<p>Write SPARQL 1.1 (the graph's prefixes are listed below; every trial graph is in the default graph), or start
from one of the named queries. <kbd>Ctrl</kbd>+<kbd>Enter</kbd> runs the query. Each query may run
{state.settings.query_timeout_s:g} s and return {state.settings.result_limit:,} results.</p>
<div class="bar">
  <label>Example: <select id="examples"><option value="">choose a named query…</option></select></label>
  <button type="button" id="prefix-button">Insert prefixes</button>
  <button type="button" id="run">Run</button>
  <span id="status" role="status"></span>
</div>
<textarea id="query" spellcheck="false" aria-label="SPARQL query"></textarea>
<div class="bar" id="downloads" hidden>Download: <button type="button" id="download-csv">CSV</button>
  <button type="button" id="download-json">JSON</button></div>
<div id="results"></div>
<script type="application/json" id="prefixes">{known}</script>
<script src="/static/query.js"></script>
</body></html>""")
