"""Home page, VoID, and dereferenceable IRIs with content negotiation (Turtle, JSON-LD, N-Triples, RDF/XML, HTML).

A page is built in a worker process holding the store open (``service.engine``, a ``PageJob``),
so pages built at once do not share the server's one interpreter lock, and a page that takes too
long is stopped like a query (503). Pages have workers of their own (``CTKG_PAGE_WORKERS``, the
service's page engine), so slow SPARQL queries holding every query worker do not hold them up.
Only the bytes, the media type, the ETag and the last-modified time come back; they are cached
like query answers, by store version (``X-Cache``). The home page is built the same way, one page
of the trial list at a time. With a remote store, pages are built in the server from lookups sent
to the remote, as its queries are.
"""

from __future__ import annotations

import hashlib
import html
import itertools
import json
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import format_datetime, parsedate_to_datetime
from urllib.parse import quote

import mimeparse
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from pyoxigraph import Literal, NamedNode, RdfFormat, Triple, serialize
from starlette.concurrency import run_in_threadpool

from kg.namespaces import DCTERMS, PROV, RDFS, prefixes
from service.engine import EngineClosed, PageAnswer, PageJob, QueryEngine, WorkerLost
from service.negotiation import accept_header, not_acceptable
from service.state import ServiceState

PROV_DERIVED = PROV + "wasDerivedFrom"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
LABEL, TYPE = NamedNode(RDFS + "label"), NamedNode(RDF_TYPE)
XSD_STRING = "http://www.w3.org/2001/XMLSchema#string"
COPIES = 4  # a linked resource's label or type read in more graphs than this: deduplicated by a query
MEMO_NODES = 20_000  # linked resources whose labels and types a worker keeps (about 600 bytes each)
HOME_PAGE_SIZE = 100  # trials listed on one page of the home page

router = APIRouter()

KINDS = ("trial", "drug", "condition", "organization", "place", "target", "person", "ontology", "dataset",
         "graph", "vocabulary", "mapping", "build", "software", "update", "curator")
SUFFIXES = {".ttl": "text/turtle", ".jsonld": "application/ld+json", ".nt": "application/n-triples",
            ".rdf": "application/rdf+xml", ".html": "text/html"}
RDF_FORMATS = {"text/turtle": RdfFormat.TURTLE, "application/ld+json": RdfFormat.JSON_LD,
               "application/n-triples": RdfFormat.N_TRIPLES, "application/rdf+xml": RdfFormat.RDF_XML}
# In order of increasing preference: mimeparse gives a tie (``*/*``) to the last. Plain JSON is answered
# with JSON-LD (a JSON document), and comes first so that any named RDF type wins over it.
OFFERED = ["application/json", "application/rdf+xml", "application/n-triples", "application/ld+json", "text/turtle",
           "text/html"]
VOID_OFFERED = [media_type for media_type in OFFERED if media_type != "text/html"]
SUFFIX_OF = {media_type: suffix for suffix, media_type in SUFFIXES.items()}
# Resources named by one path segment, {base}/ontology (the owl:Ontology) and {base}/dataset (the void:Dataset);
# every other IRI has a kind and a rest (``/{kind}/{rest}``).
WHOLE = ("ontology", "dataset")


def _describe(store, base: str, subject: str, memo: dict | None = None) -> list:
    """The resource's own triples (its whole graph for a trial), plus labels and types of what it links to.

    ``store`` is a pyoxigraph Store (in a query worker) or a kg.remote.RemoteStore. Each triple once,
    sorted, so the same graph always gives the same bytes (and ETag)."""
    node = NamedNode(subject)
    triples = _distinct_objects(store, node, None)
    if subject.startswith(f"{base}/trial/") and subject.count("/") == f"{base}/trial/X".count("/"):
        nct = subject.rsplit("/", 1)[1]
        # The trial's named graph, read graph first (GSPO index): about 3 ms for 250 quads at 10k trials.
        triples |= {q.triple for q in store.quads_for_pattern(None, None, None, NamedNode(f"{base}/graph/{nct}"))}
    linked = {t.object for t in triples if isinstance(t.object, NamedNode)}
    # Incoming links from other resources (e.g. trials that use a drug) for shared concepts: the first 500.
    if not subject.startswith(f"{base}/trial/"):
        incoming = [q.triple for q in itertools.islice(store.quads_for_pattern(None, None, node, None), 500)]
        triples.update(incoming)
        linked |= {t.subject for t in incoming if isinstance(t.subject, NamedNode)}
    triples |= _labels_and_types(store, linked, memo)
    return sorted(triples, key=lambda t: (str(t.subject), str(t.predicate), str(t.object)))


def _distinct_objects(store, node: NamedNode, prop: NamedNode | None) -> set:
    """The triples of ``node`` (with ``prop``, or any property) over the union of all graphs, each once.

    Deduplicated in Oxigraph, before any Python object is made: a triple held by several graphs comes
    once per graph from the union (a curator's update may add one a build also wrote). Before places and
    organizations no concept table names had their own graph, each was described in every trial graph
    naming it (Boston: 1,620 graphs of the 10k store), and reading those copies was most of a page's time."""
    if prop is None:
        rows = store.query(f"SELECT DISTINCT ?p ?o {{ {node} ?p ?o }}", use_default_graph_as_union=True)
        return {Triple(node, row["p"], row["o"]) for row in rows}
    rows = store.query(f"SELECT DISTINCT ?o {{ {node} {prop} ?o }}", use_default_graph_as_union=True)
    return {Triple(node, prop, row["o"]) for row in rows}


def _labels_and_types(store, nodes: set, memo: dict | None) -> set:
    """The rdfs:label and rdf:type triples of ``nodes``, from every graph.

    Most nodes have a copy or two, read directly (a query costs more than that); past ``COPIES`` the
    rest is left to one deduplicating query. ``memo`` (a worker's: its store never changes) keeps the
    answer per node across pages, so the places and sponsors many trials share are read once."""
    found = set()
    for node in nodes:
        known = memo.get(node) if memo is not None else None
        if known is None:
            known = set()
            for prop in (LABEL, TYPE):
                first = list(itertools.islice(store.quads_for_pattern(node, prop, None, None), COPIES + 1))
                if len(first) <= COPIES:
                    known.update(q.triple for q in first)
                else:
                    known |= _distinct_objects(store, node, prop)
            if memo is not None:
                if len(memo) >= MEMO_NODES:
                    memo.clear()  # bounded; the next pages fill it again
                memo[node] = frozenset(known)
        found |= known
    return found


def _local_href(value: str, base: str) -> str:
    return value[len(base):] if value.startswith(base + "/") else value


def _term_html(term, base: str, curie) -> str:
    if isinstance(term, NamedNode):
        shown = curie(term.value)
        return f'<a href="{html.escape(_local_href(term.value, base))}">{html.escape(shown)}</a>'
    if isinstance(term, Literal):
        return html.escape(term.value)
    return html.escape(str(term))


def _trials_of(store, base: str, subject: str, triples: list) -> list[tuple[str, str]]:
    """The trials a shared resource (drug, condition, organization, place) takes part in, with their labels:
    the trials whose parts (interventions, sites, condition mentions) or which themselves link to it."""
    prefix = f"{base}/trial/"
    if subject.startswith(prefix):
        return []
    trial_iris = set()
    for t in triples:
        if t.object.value == subject and t.subject.value.startswith(prefix):
            trial_iris.add(prefix + t.subject.value[len(prefix):].split("/", 1)[0])
    found = []
    for trial in sorted(trial_iris):
        names = [q.object.value for q in store.quads_for_pattern(NamedNode(trial), LABEL, None, None)]
        found.append((trial, names[0] if names else trial))
    return found


def _html_page(subject: str, triples: list, base: str, jsonld: str, trials: list | None = None) -> str:
    ns = prefixes(base)

    def curie(value: str) -> str:
        for prefix, namespace in sorted(ns.items(), key=lambda kv: -len(kv[1])):
            if value.startswith(namespace) and len(value) > len(namespace):
                return f"{prefix}:{value[len(namespace):]}"
        return value

    own = [t for t in triples if t.subject.value == subject]
    title = next((t.object.value for t in own if t.predicate.value == RDFS + "label"), curie(subject))
    rows = "\n".join(f"<tr><td>{_term_html(t.predicate, base, curie)}</td><td>{_term_html(t.object, base, curie)}</td></tr>"
                     for t in own)
    incoming = [t for t in triples if t.subject.value != subject and isinstance(t.object, NamedNode)
                and t.object.value == subject]
    incoming_rows = "\n".join(f"<tr><td>{_term_html(t.subject, base, curie)}</td><td>{_term_html(t.predicate, base, curie)}</td></tr>"
                              for t in incoming)
    parts = [t for t in triples if t.subject.value.startswith(subject + "/")]
    part_subjects = sorted({t.subject.value for t in parts})
    part_rows = "\n".join(f'<li><a href="{html.escape(_local_href(s, base))}">{html.escape(curie(s))}</a> '
                          + html.escape(next((t.object.value for t in parts if t.subject.value == s
                                              and t.predicate.value == RDFS + "label"), "")) + "</li>"
                          for s in part_subjects)
    # What the parts link to (the drugs an intervention gives, a site's organization and place ...),
    # so a trial's page leads straight to its drugs, conditions, sites and sponsors.
    labels = {t.subject.value: t.object.value for t in triples if t.predicate.value == RDFS + "label"}
    related = sorted({(curie(t.predicate.value), t.object.value) for t in parts
                      if isinstance(t.object, NamedNode) and t.object.value.startswith(base + "/")
                      and not t.object.value.startswith(subject) and t.predicate.value != RDF_TYPE})
    related_rows = "\n".join(
        f'<tr><td>{html.escape(prop)}</td><td><a href="{html.escape(_local_href(value, base))}">'
        f'{html.escape(labels.get(value, curie(value)))}</a> <small>{html.escape(curie(value))}</small></td></tr>'
        for prop, value in related)
    trial_rows = "\n".join(f'<li><a href="{html.escape(_local_href(iri, base))}">{html.escape(name)}</a></li>'
                           for iri, name in trials or [])
    local = _local_href(subject, base)
    safe_jsonld = jsonld.replace("<", "\\u003c")  # no "</script>" or "<!--" from a literal can end the block
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)} · ctkg</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="alternate" type="text/turtle" href="{html.escape(local)}.ttl">
<link rel="alternate" type="application/ld+json" href="{html.escape(local)}.jsonld">
<script type="application/ld+json">{safe_jsonld}</script>
<style>body{{font-family:system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem}}
td{{vertical-align:top;padding:.2rem .6rem;border-bottom:1px solid #ddd}}code{{background:#f4f4f4}}</style>
</head><body>
<nav><a href="/">ctkg home</a> · <a href="/query">Query page</a> · <a href="/sparql">SPARQL endpoint</a> · <a href="/dumps/">Dumps</a></nav>
<h1>{html.escape(title)}</h1>
<p><code>{html.escape(subject)}</code> · also as <a href="{html.escape(local)}.ttl">Turtle</a>,
<a href="{html.escape(local)}.jsonld">JSON-LD</a>, <a href="{html.escape(local)}.nt">N-Triples</a>,
<a href="{html.escape(local)}.rdf">RDF/XML</a></p>
<table>{rows}</table>
{"<h2>Trials</h2><ul>" + trial_rows + "</ul>" if trial_rows else ""}
{"<h2>Related through its parts</h2><table>" + related_rows + "</table>" if related_rows else ""}
{"<h2>Parts</h2><ul>" + part_rows + "</ul>" if part_rows else ""}
{"<h2>Linked from</h2><table>" + incoming_rows + "</table>" if incoming_rows else ""}
</body></html>"""


def _negotiate(request: Request, path: str) -> tuple[str, str, bool]:
    """The resource's path, the media type to send ("" if nothing acceptable), and whether it was chosen
    by the Accept header (a suffix such as ``.ttl`` chooses without it)."""
    for suffix, media_type in SUFFIXES.items():
        if path.endswith(suffix):
            return path[: -len(suffix)], media_type, False
    return path, _best_media_type(OFFERED, accept_header(request, "text/html")), True


def _best_media_type(offered: list[str], accept: str) -> str:
    """The best of ``offered`` for an Accept header (``accept_header``), or "". Plain JSON gets JSON-LD."""
    chosen = mimeparse.best_match(offered, accept) or ""
    return "application/ld+json" if chosen == "application/json" else chosen


@dataclass(frozen=True)
class HomePageJob(PageJob):
    """One page of the home page (``page``, from 1, of the trial list), built in a page worker like any page
    and cached the same way: the job, frozen, is its answer's cache key."""
    page: int = 1


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def home(request: Request) -> Response:
    """What the dataset is and how to use it, and one page of the trials (``?page=N``, HOME_PAGE_SIZE each).

    Listing every trial made a page of megabytes and seconds of the server's own time at 100k trials;
    a page of the list costs a count and a sorted slice, in a page worker, once per store version."""
    state: ServiceState = request.app.state.ctkg
    asked = request.query_params.get("page", "1")
    if not (asked.isascii() and asked.isdigit() and len(asked) <= 9) or int(asked) < 1:
        return PlainTextResponse(f"page must be a whole number from 1 (the first page of the trial list) to "
                                 f"999999999; got {asked!r}\n", status_code=400)
    base = state.settings.base_iri
    job = HomePageJob(subject=base + "/", media_type="text/html", base_iri=base, page=int(asked))
    outcome = await _page(state, job, "the home page")
    if isinstance(outcome, Response):
        return outcome
    answer, cache_status = outcome
    if answer is None:
        return HTMLResponse(f"<!doctype html><title>Not found</title><h1>Not found</h1><p>The trial list has no "
                            f"page {job.page}.</p><p><a href=\"/\">The first page</a></p>", status_code=404)
    headers = {"ETag": answer.etag, "X-Cache": cache_status}
    if _not_modified(request, answer.etag, None):
        return Response(status_code=304, headers=headers)
    return Response(answer.body, media_type=answer.media_type, headers=headers)


def build_home(store, job: HomePageJob) -> PageAnswer | None:
    """The home page with page ``job.page`` of the trials, sorted by NCT number; None past the last page.
    Two bounded reads: the number of trials, and one slice of them sorted (only then are titles joined)."""
    base = job.base_iri
    nct_id, name = f"<{base}/ontology/nctId>", "<http://schema.org/name>"
    counted = store.query(f"SELECT (COUNT(DISTINCT ?t) AS ?n) {{ ?t {nct_id} ?nct }}", use_default_graph_as_union=True)
    total = int(next(iter(counted))["n"].value)
    pages = max(1, math.ceil(total / HOME_PAGE_SIZE))
    if job.page > pages:
        return None
    rows = store.query(f"""SELECT ?t ?nct ?title {{
        {{ SELECT DISTINCT ?t ?nct {{ ?t {nct_id} ?nct }} ORDER BY ?nct ?t
           LIMIT {HOME_PAGE_SIZE} OFFSET {(job.page - 1) * HOME_PAGE_SIZE} }}
        OPTIONAL {{ ?t {name} ?title }} }}""", use_default_graph_as_union=True)
    trials: dict[tuple[str, str], str] = {}
    for row in rows:
        key = (row["nct"].value, row["t"].value)
        title = row["title"].value if row["title"] is not None else ""
        if key not in trials or (title and (not trials[key] or title < trials[key])):
            trials[key] = title  # a trial with two titles shows the same one every time (a stable ETag)
    body = _home_html(base, sorted(trials.items()), job.page, pages, total).encode("utf-8")
    return PageAnswer(body, "text/html; charset=utf-8", '"' + hashlib.sha256(body).hexdigest()[:32] + '"', None)


def _home_html(base: str, trials: list, page: int, pages: int, total: int) -> str:
    items = "\n".join(f'<li><a href="{html.escape(_local_href(iri, base))}">{html.escape(nct)}</a> {html.escape(title)}</li>'
                      for (nct, iri), title in trials)
    first = (page - 1) * HOME_PAGE_SIZE + 1
    shown = f"{first:,}–{first + len(trials) - 1:,} of {total:,}" if trials else f"{total:,}"
    links = []
    if page > 1:
        links += ['<a href="/?page=1">first</a>', f'<a rel="prev" href="/?page={page - 1}">previous</a>']
    links.append(f"page {page:,} of {pages:,}")
    if page < pages:
        links += [f'<a rel="next" href="/?page={page + 1}">next</a>', f'<a href="/?page={pages}">last</a>']
    pager = f'<p class="pager">{" · ".join(links)}</p>'
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>ctkg</title>
<style>body{{font-family:system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem}}</style></head><body>
<h1>ctkg: a clinical-trials knowledge graph</h1>
<p>Clinical-trial records from ClinicalTrials.gov (API v2 JSON and trial pages) as linked data: trials, arms,
interventions, drugs and drug classes, molecular targets, conditions, sites, sponsors and places, linked to Wikidata,
ChEBI, DrugBank, NCIt, MeSH, ATC, RxNorm, UNII, MONDO, DOID, ROR, GeoNames and PubMed, with the evidence for every link.</p>
<p>Licence: <a href="https://creativecommons.org/licenses/by/4.0/">CC BY 4.0</a>. Source: <a href="https://clinicaltrials.gov">ClinicalTrials.gov</a>.</p>
<h2>Query it</h2>
<ul>
<li><a href="/query">The query page</a>: write SPARQL in the browser, or start from a named query.</li>
<li>SPARQL 1.1 endpoint: <code>{html.escape(base)}/sparql</code> (GET or POST; JSON, XML, CSV, TSV, Turtle, JSON-LD,
N-Triples, RDF/XML).</li>
<li><a href="/queries">Named queries</a> as an API without SPARQL, e.g.
<a href="/queries/pd1-vegfr-tki-trials?format=csv">PD-1/PD-L1 inhibitor + VEGFR TKI trials (CSV)</a>;
<a href="/docs">OpenAPI documentation</a>.</li>
<li>Every IRI dereferences: <code>curl -H 'Accept: text/turtle' {html.escape(base)}/trial/NCT06281886</code>
(also JSON-LD with the <a href="/context.jsonld">published context</a>, N-Triples, RDF/XML, HTML).</li>
</ul>
<h2>Download it</h2>
<p><a href="/dumps/">Full dumps</a> (N-Quads, TriG, Turtle, JSON-LD; gzip, with size, date and SHA-256) and the
VoID/DCAT <a href="/.well-known/void">dataset description</a>. Provenance: each trial's graph says which record
(file, format, checksum) it came from and which build made it (PROV-O).</p>
<h2>Trials</h2>
<p>{total:,} {"trial" if total == 1 else "trials"}, by NCT number: {shown} here, {HOME_PAGE_SIZE} a page. Every trial at once: the dumps, or
<code>SELECT ?nct {{ ?trial &lt;{html.escape(base)}/ontology/nctId&gt; ?nct }}</code> at the SPARQL endpoint.</p>
{pager}
<ul>{items}</ul>
{pager}
</body></html>"""


@router.api_route("/.well-known/void", methods=["GET", "HEAD"], include_in_schema=False)
def void(request: Request) -> Response:
    state: ServiceState = request.app.state.ctkg
    base = state.settings.base_iri
    media_type = _best_media_type(VOID_OFFERED, accept_header(request, "*/*"))  # */*: Turtle
    if not media_type:
        return not_acceptable(VOID_OFFERED)
    # Sorted like a page's triples, so the same description gives the same bytes and ETag.
    triples = sorted((q.triple for q in state.store().quads_for_pattern(None, None, None, NamedNode(f"{base}/graph/dataset"))),
                     key=lambda t: (str(t.subject), str(t.predicate), str(t.object)))
    body, sent_type = _serialise(triples, media_type, base)
    headers = {"Vary": "Accept", "ETag": _etag(body)}
    if _not_modified(request, headers["ETag"], None):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=sent_type, headers=headers)


@router.get("/context.jsonld", include_in_schema=False)
def context(request: Request) -> Response:
    state: ServiceState = request.app.state.ctkg
    return Response(json.dumps(jsonld_context(state.settings.base_iri), indent=1), media_type="application/ld+json",
                    headers={"Access-Control-Allow-Origin": "*"})


@router.api_route("/{kind}/{rest:path}", methods=["GET", "HEAD"], include_in_schema=False)
async def resource(kind: str, rest: str, request: Request) -> Response:
    if kind not in KINDS:
        return _not_found(request, f"/{kind}/{rest}")
    return await _resource(request, f"/{kind}/{rest}")


def _whole_resource(path: str):
    async def whole_resource(request: Request) -> Response:
        return await _resource(request, path)
    return whole_resource


# /ontology and /dataset (and /ontology.ttl ...) by name: a route for any one segment would also take
# /dumps and the like, which are meant to reach their own routes (by a redirect to their slash).
for _name in WHOLE:
    for _suffix in ("", *SUFFIXES):
        router.add_api_route(f"/{_name}{_suffix}", _whole_resource(f"/{_name}{_suffix}"), methods=["GET", "HEAD"],
                             include_in_schema=False)


async def _resource(request: Request, asked: str) -> Response:
    """The page of the IRI at ``asked`` (a local path, perhaps with a format suffix), negotiated."""
    state: ServiceState = request.app.state.ctkg
    path, media_type, negotiated = _negotiate(request, asked)
    job = PageJob(subject=state.settings.base_iri + path, media_type=media_type, base_iri=state.settings.base_iri)
    try:
        NamedNode(job.subject)
    except ValueError:  # not an IRI (a space, a brace ...): nothing in the graph can be named by it
        return _not_found(request, path)
    outcome = await _page(state, job, f"the page of {path}")
    if isinstance(outcome, Response):
        return outcome
    page, cache_status = outcome
    if page is None:
        return _not_found(request, path)
    # Only a page chosen by Accept depends on it; it also says which document it is (/trial/X.ttl ...).
    varies = {"Vary": "Accept"} if negotiated else {}
    if not page.media_type:
        return not_acceptable(OFFERED, vary=negotiated)
    headers = {**varies, "ETag": page.etag, "X-Cache": cache_status}
    if negotiated:
        # Percent-encoded again (the route decoded it): a header is ASCII, and "%" in a name stays "%25".
        headers["Content-Location"] = quote(path + SUFFIX_OF[job.media_type], safe="/:@!$&'()*+,;=-._~")
    if page.modified is not None:
        headers["Last-Modified"] = format_datetime(page.modified, usegmt=True)
    if _not_modified(request, page.etag, page.modified):
        return Response(status_code=304, headers=headers)
    return Response(page.body, media_type=page.media_type, headers=headers)


async def _page(state: ServiceState, job: PageJob, what: str) -> tuple[PageAnswer | None, str] | Response:
    """The page and how the cache took part (hit, miss, off), as for queries; or the 503 (busy, too slow,
    or its worker died twice: try again) or 500 that says why ``what`` was not built."""
    try:
        return await state.cached(job, lambda: _build_on_live_store(state, job))
    except (TimeoutError, WorkerLost, EngineClosed) as exc:
        return PlainTextResponse(f"{what} was not built: {exc}\n", status_code=503, headers={"Retry-After": "5"})
    except RuntimeError as exc:
        return PlainTextResponse(f"{what} was not built: {exc}\n", status_code=500)


async def _build_on_live_store(state: ServiceState, job: PageJob) -> tuple[str | None, PageAnswer | None]:
    """The page, built in a page worker over the live store (the event loop waits on its pipe), and that
    store's version. A remote store is read through its endpoint here, in a thread, as queries are. A
    worker that died during the job (killed, crashed) is replaced and the page asked of another once."""
    for attempt in (1, 2):
        if state.data_version() is None:
            version, engine = await run_in_threadpool(state.versioned_page_engine)
        else:
            version, engine = state.versioned_page_engine()
        try:
            if isinstance(engine, QueryEngine):
                return version, await engine.page_async(job)
            return version, await run_in_threadpool(build_page, state.store(), job)
        except (EngineClosed, WorkerLost):
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def build_page(store, job: PageJob, memo: dict | None = None) -> PageAnswer | None:
    """The page of ``job.subject`` as ``job.media_type``, with its ETag and last-modified time; None when the
    graph knows nothing about the IRI. Runs in a query worker (``store``: its read-only Store; ``memo``:
    its labels of linked resources), or in the server over a remote store."""
    if isinstance(job, HomePageJob):
        return build_home(store, job)
    base, subject = job.base_iri, job.subject
    triples = _describe(store, base, subject, memo)
    if not any(t.subject.value == subject for t in triples):
        return None
    if not job.media_type:
        return PageAnswer(b"", "", "", None)  # known, but in no format the client accepts
    if job.media_type == "text/html":
        jsonld = serialize(triples, format=RdfFormat.JSON_LD).decode("utf-8")
        trials = _trials_of(store, base, subject, triples)
        body = _html_page(subject, triples, base, jsonld, trials).encode("utf-8")
        media = "text/html; charset=utf-8"
    else:
        body, media = _serialise(triples, job.media_type, base)
    # A page changes when its record does, but also with every store version: a rebuild names its build and
    # may relabel what the page links to, and a curator's fix changes the trial's graph. With any of them
    # left out, If-Modified-Since would answer 304 with the page from before.
    times = [_record_updated(store, base, subject), _store_written(store, base),
             _last_curator_edit(store, base, subject)]
    modified = max((t for t in times if t is not None), default=None)
    return PageAnswer(body, media, _etag(body), modified)


def _serialise(triples: list, media_type: str, base: str) -> tuple[bytes, str]:
    """Triples as one of the RDF_FORMATS (pages and VoID alike): Turtle with the graph's prefixes, JSON-LD
    compacted with the published context; and the media type to send."""
    if media_type == "application/ld+json":
        return compact_jsonld(triples, base), media_type
    fmt = RDF_FORMATS[media_type]
    return serialize(triples, format=fmt, prefixes=prefixes(base) if fmt == RdfFormat.TURTLE else None), fmt.media_type


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _record_updated(store, base: str, subject: str) -> datetime | None:
    """A trial's (and its parts') registry update date; None for anything else."""
    if not subject.startswith(f"{base}/trial/"):
        return None
    ctkg = base + "/ontology/"
    trial = NamedNode("/".join(subject.split("/")[: len(f"{base}/trial/X".split("/"))]))
    for prop in ("lastUpdatePostedDate", "sourceLastUpdated"):
        for quad in store.quads_for_pattern(trial, NamedNode(ctkg + prop), None, None):
            return _as_datetime(quad.object.value)
    for quad in store.quads_for_pattern(trial, NamedNode(PROV_DERIVED), None, None):
        for inner in store.quads_for_pattern(quad.object, NamedNode(ctkg + "sourceLastUpdated"), None, None):
            return _as_datetime(inner.object.value)
    return None


def _store_written(store, base: str) -> datetime | None:
    """When the store version was written: the dataset's dcterms:modified (the build, or a curator's update)."""
    for quad in store.quads_for_pattern(NamedNode(f"{base}/dataset"), NamedNode(DCTERMS + "modified"), None, None):
        return _as_datetime(quad.object.value)
    return None


def _last_curator_edit(store, base: str, subject: str) -> datetime | None:
    """When a curator's SPARQL Update last changed a trial's graph (kg.updates records it in the dataset graph)."""
    if not subject.startswith(f"{base}/trial/"):
        return None
    nct = subject[len(f"{base}/trial/"):].split("/")[0]
    dataset = NamedNode(f"{base}/graph/dataset")
    times = [_as_datetime(ended.object.value)
             for influence in store.quads_for_pattern(NamedNode(f"{base}/graph/{nct}"),
                                                      NamedNode(PROV + "wasInfluencedBy"), None, dataset)
             for ended in store.quads_for_pattern(influence.object, NamedNode(PROV + "endedAtTime"), None, dataset)]
    return max((t for t in times if t is not None), default=None)


def _as_datetime(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value if len(value) > 7 else value + "-01")
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _not_modified(request: Request, etag: str, modified: datetime | None) -> bool:
    """RFC 9110: If-None-Match wins over If-Modified-Since when both are sent."""
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        # Weak comparison (RFC 9110 §13.1.2): a proxy that compresses may hand back W/"...".
        tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
        return etag in tags or if_none_match.strip() == "*"
    since = request.headers.get("if-modified-since")
    if since and modified is not None:
        try:
            return modified.replace(microsecond=0) <= parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False
    return False


def jsonld_context(base: str) -> dict:
    """The published JSON-LD context: the graph's prefixes, so documents read as ctkg:nctId, schema:name ..."""
    return {"@context": dict(sorted(prefixes(base).items()))}


def compact_jsonld(triples: list, base: str) -> bytes:
    """JSON-LD compacted with the published context, the same bytes for the same triples in any process."""
    import rdflib

    def term(value):
        # Blank nodes keep the store's labels (parsing N-Triples would make new random ones each time).
        if isinstance(value, NamedNode):
            return rdflib.URIRef(value.value)
        if isinstance(value, Literal):
            if value.language:
                return rdflib.Literal(value.value, lang=value.language)
            datatype = value.datatype.value
            return rdflib.Literal(value.value, datatype=None if datatype == XSD_STRING else rdflib.URIRef(datatype))
        return rdflib.BNode(value.value)

    graph = rdflib.Graph()
    for triple in triples:
        graph.add((term(triple.subject), term(triple.predicate), term(triple.object)))
    context = jsonld_context(base)["@context"]
    # The context goes inline (the same one is published at /context.jsonld): a document that needed
    # the base address to be reachable could not be read from a dump, a mirror or a local server.
    text = graph.serialize(format="json-ld", context=context, auto_compact=True, indent=1)
    # rdflib lists the nodes in the order of a Python set, which changes with each process's hash seed:
    # pages are built by several worker processes, so the ETag of a page would depend on the worker.
    # Each node is complete on its own (blank nodes too: rdflib does not nest them), so sorting them by
    # @id is safe; keys are already sorted.
    document = json.loads(text)
    if isinstance(document, dict) and isinstance(document.get("@graph"), list):
        document["@graph"].sort(key=lambda node: str(node.get("@id", "")))
    return json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False).encode("utf-8")


def _not_found(request: Request, path: str) -> Response:
    message = (f"Nothing is known about {path} in this graph. Trials live at /trial/NCTxxxxxxxx; "
               "drugs at /drug/<name>; try the SPARQL endpoint at /sparql or the home page at /.")
    if "text/html" in accept_header(request, ""):
        return HTMLResponse(f"<!doctype html><title>Not found</title><h1>Not found</h1><p>{html.escape(message)}</p>"
                            '<p><a href="/">Home</a> · <a href="/sparql">SPARQL</a></p>', status_code=404)
    return Response(message + "\n", status_code=404, media_type="text/plain")
