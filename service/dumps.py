"""``/dumps/``: the full dumps of the store being served, with size, date and checksum."""

from __future__ import annotations

import base64
import html

import mimeparse
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response

from kg.dumps import DUMPS, dumps_folder, read_manifest
from kg.store import live_store_path
from service.negotiation import accept_header
from service.state import ServiceState

router = APIRouter()


def _manifest(state: ServiceState):
    live = live_store_path(state.settings.store_dir)
    if live is None:
        return None, None
    folder = dumps_folder(state.settings.dumps_root, live)
    return folder, read_manifest(folder)


@router.api_route("/dumps", methods=["GET", "HEAD"], include_in_schema=False)
@router.api_route("/dumps/", methods=["GET", "HEAD"], summary="The full dumps of the graph (N-Quads, TriG, Turtle, JSON-LD; gzip)", tags=["linked data"])
def listing(request: Request) -> Response:
    state: ServiceState = request.app.state.ctkg
    base = state.settings.base_iri
    _, files = _manifest(state)
    wants = mimeparse.best_match(["application/json", "text/html"], accept_header(request, "text/html"))
    entries = [dict(vars(f), url=f"{base}/dumps/{f.name}") for f in files or []]
    if wants == "application/json":
        return JSONResponse({"dumps": entries, "void": f"{base}/.well-known/void"}, headers={"Vary": "Accept"})
    if not entries:
        rows = ('<tr><td colspan="6">No dumps for the store being served (it was built with <code>--no-dumps</code>); '
                'write one with <code>kg export --format nq --out ctkg.nq.gz</code>.</td></tr>')
    else:
        rows = "\n".join(
            f'<tr><td><a href="/dumps/{html.escape(e["name"])}">{html.escape(e["name"])}</a></td>'
            f'<td>{html.escape(e["media_type"])} ({e["compression"]})</td><td>{e["bytes"]:,} bytes</td>'
            f'<td>{e["statements"]:,}</td><td>{html.escape(e["modified"])}</td>'
            f'<td><code>sha256:{e["sha256"]}</code></td></tr>' for e in entries)
    return HTMLResponse(f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>ctkg dumps</title>
<style>body{{font-family:system-ui,sans-serif;max-width:80rem;margin:2rem auto;padding:0 1rem}}
td,th{{padding:.3rem .6rem;text-align:left;border-bottom:1px solid #ddd}}code{{font-size:.8rem}}</style></head><body>
<h1>Dumps</h1>
<p>The whole graph as served now, written with this store version; the same files are listed as
<code>void:dataDump</code> and DCAT distributions in the <a href="/.well-known/void">dataset description</a>.
As JSON: <code>curl -H 'Accept: application/json' {html.escape(base)}/dumps/</code>.</p>
<table><thead><tr><th>file</th><th>format</th><th>size</th><th>statements</th><th>written</th><th>checksum</th></tr></thead>
<tbody>{rows}</tbody></table>
<p><a href="/">Home</a> · <a href="/query">Query page</a> · <a href="/sparql">SPARQL endpoint</a></p>
</body></html>""", headers={"Vary": "Accept"})


@router.api_route("/dumps/{name}", methods=["GET", "HEAD"], include_in_schema=False)
def download(name: str, request: Request) -> Response:
    state: ServiceState = request.app.state.ctkg
    folder, files = _manifest(state)
    entry = next((f for f in files or [] if f.name == name), None)
    if entry is None or name not in {d[0] for d in DUMPS}:
        return Response(f"no dump {name!r}; /dumps/ lists them\n", status_code=404, media_type="text/plain")
    etag = f'"{entry.sha256}"'
    tags = [tag.strip().removeprefix("W/") for tag in (request.headers.get("if-none-match") or "").split(",")]
    if etag in tags:
        return Response(status_code=304, headers={"ETag": etag})
    digest = base64.b64encode(bytes.fromhex(entry.sha256)).decode()
    # Served as the gzip file it is (no Content-Encoding), so clients save what the checksum describes.
    return FileResponse(folder / name, media_type="application/gzip", filename=name,
                        headers={"ETag": etag, "Repr-Digest": f"sha-256=:{digest}:",
                                 "X-Content-Media-Type": entry.media_type})
