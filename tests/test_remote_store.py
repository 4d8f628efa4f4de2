"""A remote SPARQL store: `kg build` loads a real Oxigraph server (`oxigraph serve` on 127.0.0.1), and
`kg serve` answers from it exactly as from the embedded store.

The endpoint and page tests of test_service_sparql.py and test_service_pages.py are imported below
and run again here, with ``server`` overridden by a `kg serve` process configured with the remote URL.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import rdflib
from pyoxigraph import BlankNode, Literal, NamedNode, Quad
from rdflib.compare import isomorphic

from conftest import BUILD_TIME, DATA, SAMPLE_FILES, _free_port, serving
from kg.build import build
from kg.binding import bind_values, where_group_start
from kg.remote import RemoteError, RemoteStore, plan_chunks
from kg.settings import Settings
from service.engine import Job, QueryEngine, QueryRefused, RemoteQueryEngine
from test_service_pages import (test_etag_conditional_request, test_home_page_and_void,  # noqa: F401
                                test_iri_dereferences_in_every_rdf_format, test_last_build_report_is_served,
                                test_post_validate_a_raw_page_and_turtle, test_suffixes_select_the_format,
                                test_trial_html_page_links_and_carries_the_same_json_ld,
                                test_unknown_iri_is_a_helpful_404)
from test_service_sparql import (test_ask_results, test_construct_formats_by_format_parameter,  # noqa: F401
                                 test_content_negotiation_with_q_values, test_cors_for_browser_clients,
                                 test_default_and_named_graph_uri, test_get_post_form_and_post_direct_give_the_same_answer,
                                 test_protocol_negative_cases, test_rdflib_sparqlstore_reads_the_endpoint,
                                 test_results_are_capped_and_the_cap_is_said, test_service_clause_never_connects,
                                 test_service_description_on_get_without_query, test_sparqlwrapper_construct_as_turtle,
                                 test_sparqlwrapper_in_every_result_format,
                                 test_update_without_token_is_refused_and_changes_nothing)

OXIGRAPH = shutil.which("oxigraph", path=str(Path(sys.executable).parent)) or shutil.which("oxigraph")
BASE = "http://localhost:8000"
CTKG = BASE + "/ontology/"
PD1_VEGFR = f"""PREFIX ctkg: <{CTKG}> PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
SELECT DISTINCT ?nct {{ ?t ctkg:nctId ?nct ; ctkg:hasIntervention/ctkg:involvesDrug ?a, ?b .
  ?a a/rdfs:subClassOf* ctkg:PD1Inhibitor . ?b a/rdfs:subClassOf* ctkg:VEGFRTyrosineKinaseInhibitor }} ORDER BY ?nct"""

pytestmark = pytest.mark.skipif(OXIGRAPH is None, reason="the oxigraph server (pip install oxigraph) is not installed")


@contextmanager
def oxigraph_server(folder: Path, union_default_graph: bool = True):
    """A real Oxigraph server on a free loopback port, storing in ``folder``; yields its base URL."""
    port = _free_port()
    command = [OXIGRAPH, "serve", "--location", str(folder), "--bind", f"127.0.0.1:{port}", "--timeout-s", "10"]
    if union_default_graph:
        command.append("--union-default-graph")
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    else:
        process.kill()
        pytest.fail("oxigraph did not start: " + process.stderr.read().decode())
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.kill()
        process.wait(timeout=10)


def remote_settings(root: Path, url: str, *, graph_store: bool = True, **extra) -> Settings:
    """Settings pointing build and serve at the Oxigraph server at ``url``."""
    return Settings(store_dir=root / "store", dumps_dir=root / "dumps", remote_query_url=f"{url}/query",
                    remote_update_url=f"{url}/update", remote_store_url=f"{url}/store" if graph_store else None,
                    **extra)


def remote_env(settings: Settings) -> dict[str, str]:
    env = {"CTKG_REMOTE_QUERY_URL": settings.remote_query_url, "CTKG_REMOTE_UPDATE_URL": settings.remote_update_url,
           "CTKG_REMOTE_CHUNK_QUADS": str(settings.remote_chunk_quads)}
    if settings.remote_store_url:
        env["CTKG_REMOTE_STORE_URL"] = settings.remote_store_url
    return env


def graphs_of(store) -> dict[str, set]:
    """Every named graph's quads, by graph IRI (works on the embedded store and on RemoteStore)."""
    graphs: dict[str, set] = {}
    for quad in store.quads_for_pattern(None, None, None, None):
        graphs.setdefault(quad.graph_name.value, set()).add(quad)
    return graphs


def _dump_quads(quads) -> set:
    """The dataset description's statements about dump files: a remote build writes no dumps (kg.dumps
    writes them from a local store), so these are the one expected difference from a local build."""
    return {q for q in quads if "/dumps/" in str(q.object) or "/distribution/" in str(q.subject)
            or "/distribution/" in str(q.object)}


def _rdflib(quads) -> rdflib.Graph:
    import pyoxigraph

    data = pyoxigraph.serialize([q.triple for q in quads], format=pyoxigraph.RdfFormat.N_TRIPLES)
    return rdflib.Graph().parse(data=data.decode("utf-8"), format="nt")


@pytest.fixture(scope="module")
def oxigraph(tmp_path_factory):
    with oxigraph_server(tmp_path_factory.mktemp("oxigraph") / "db") as url:
        yield url


@pytest.fixture(scope="module")
def remote_built(oxigraph, tmp_path_factory):
    """The shipped records built into the Oxigraph server through the Graph Store Protocol, in small
    chunks (300 quads) so that graphs are packed, and the 2,444-quad concepts graph split, across requests."""
    settings = remote_settings(tmp_path_factory.mktemp("remote"), oxigraph, remote_chunk_quads=300)
    report = build(settings, build_time=BUILD_TIME)
    return settings, report


@pytest.fixture(scope="module")
def server(remote_built):
    """`kg serve` answering from the remote store (overrides conftest's embedded-store server here)."""
    settings, _ = remote_built
    with serving(settings.store_dir, CTKG_QUERY_TIMEOUT_S="3", CTKG_RESULT_LIMIT="1000", **remote_env(settings)) as url:
        yield url


def test_build_report_names_the_remote_and_the_same_counts(remote_built, built, store):
    """A remote build reports the remote endpoint, the same trials and the same number of quads as the local build."""
    settings, report = remote_built
    _, local = built
    assert report.remote == settings.remote_query_url and report.store_path is None
    assert sorted(report.trials) == sorted(SAMPLE_FILES) == sorted(local.trials)
    dumps = _dump_quads(store.quads_for_pattern(None, None, None, NamedNode(BASE + "/graph/dataset")))
    assert report.triples == local.triples - len(dumps)


def test_remote_holds_the_same_graphs_as_the_embedded_store(remote_built, store):
    """Every named graph in the remote holds exactly the quads of the embedded store built from the same
    records (the ontology, whose OWL restrictions are blank nodes, compared by isomorphism)."""
    settings, _ = remote_built
    remote = graphs_of(RemoteStore(settings))
    local = graphs_of(store)
    local[BASE + "/graph/dataset"] -= _dump_quads(local[BASE + "/graph/dataset"])
    assert remote.keys() == local.keys()
    assert len([g for g in remote if "/graph/NCT" in g]) == 5
    for name, quads in local.items():
        assert len(remote[name]) == len(quads), name
        if any(isinstance(q.subject, BlankNode) or isinstance(q.object, BlankNode) for q in quads):
            assert isomorphic(_rdflib(remote[name]), _rdflib(quads)), name
        else:
            assert remote[name] == quads, name


def test_pd1_plus_vegfr_tki_through_the_remote_backed_endpoint(server):
    """The class-hierarchy question finds NCT06281886 and NCT07581821 through SPARQLWrapper, served from the remote."""
    from SPARQLWrapper import JSON, SPARQLWrapper

    client = SPARQLWrapper(server + "/sparql")
    client.setQuery(PD1_VEGFR)
    client.setReturnFormat(JSON)
    rows = client.query().convert()["results"]["bindings"]
    assert [r["nct"]["value"] for r in rows] == ["NCT06281886", "NCT07581821"]


def test_trial_turtle_from_the_remote_holds_the_whole_trial_graph(server, store):
    """/trial/NCT06281886 as Turtle, served from the remote, holds every triple of the trial's graph."""
    response = httpx.get(server + "/trial/NCT06281886", headers={"Accept": "text/turtle"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/turtle")
    page = rdflib.Graph().parse(data=response.text, format="turtle")
    graph = _rdflib(store.quads_for_pattern(None, None, None, NamedNode(BASE + "/graph/NCT06281886")))
    trial = rdflib.URIRef(BASE + "/trial/NCT06281886")
    assert (trial, rdflib.URIRef(CTKG + "nctId"), rdflib.Literal("NCT06281886")) in graph
    assert set(graph) <= set(page)


def test_named_query_parameters_are_bound_by_a_values_block(remote_built, built):
    """A Job with substitutions gives the same answer from the remote engine as from the embedded engine."""
    settings, _ = remote_built
    local_settings, _ = built
    query = f"PREFIX ctkg: <{CTKG}> SELECT ?nct ?status {{ ?t ctkg:nctId ?nct ; ctkg:overallStatus ?status }}"
    job = Job(query=query, base_iri=BASE + "/", select_format="json", graph_format="ttl", limit=100,
              default_graphs=None, named_graphs=None, union_default=True, substitutions={"nct": '"NCT07581821"'})
    remote_answer = RemoteQueryEngine(RemoteStore(settings), timeout=10).run(job)
    from kg.store import live_store_path

    engine = QueryEngine(live_store_path(local_settings.store_dir), workers=1, timeout=30)
    try:
        local_answer = engine.run(job)
    finally:
        engine.close()
    assert remote_answer.count == local_answer.count == 1
    assert remote_answer.body == local_answer.body
    assert b'"NCT07581821"' in remote_answer.body
    # A value that tries to break out of its place is only ever a literal.
    hostile = Job(**{**job.__dict__, "substitutions": {"nct": '"x\\" } ?t ?p ?o . { \\""'}})
    assert RemoteQueryEngine(RemoteStore(settings), timeout=10).run(hostile).count == 0


def test_remote_engine_refuses_service_and_updates_before_sending(remote_built):
    """SERVICE and an update sent as a query are refused by the remote engine itself, with the parser's message."""
    settings, _ = remote_built
    engine = RemoteQueryEngine(RemoteStore(settings), timeout=10)
    base = dict(base_iri=BASE + "/", select_format="json", graph_format="ttl", limit=10, default_graphs=None,
                named_graphs=None, union_default=True)
    with pytest.raises(QueryRefused, match="SERVICE"):
        engine.run(Job(query="SELECT * { SERVICE <http://127.0.0.1:9/sparql> { ?s ?p ?o } }", **base))
    with pytest.raises(QueryRefused, match="bad query"):
        engine.run(Job(query="INSERT DATA { <http://example.org/a> <http://example.org/b> 1 }", **base))
    assert not RemoteStore(settings).query("ASK { <http://example.org/a> ?p ?o }")


def test_named_queries_with_parameters_answer_the_same_from_the_remote_engine(remote_built, built):
    """Every parameterised named query, with its defaults, gives the same rows through the VALUES
    binding as through the embedded engine's substitutions, including the queries whose parameter
    is tested by a FILTER inside a nested group (the block is repeated there)."""
    from kg.queries import bind, load_library
    from kg.store import live_store_path

    settings, _ = remote_built
    local_settings, _ = built
    remote = RemoteQueryEngine(RemoteStore(settings), timeout=20)
    engine = QueryEngine(live_store_path(local_settings.store_dir), workers=1, timeout=30)
    answers = {}
    try:
        for query in load_library(local_settings.queries_dir).values():
            if not query.params:
                continue
            substitutions = {name: str(term) for name, term in bind(query, {}).items()}
            job = Job(query=query.text, base_iri=BASE + "/", select_format="csv", graph_format="ttl", limit=1000,
                      default_graphs=None, named_graphs=None, union_default=True, substitutions=substitutions)
            local_answer, remote_answer = engine.run(job), remote.run(job)
            assert sorted(remote_answer.body.splitlines()) == sorted(local_answer.body.splitlines()), query.name
            answers[query.name] = local_answer.body.decode()
    finally:
        engine.close()
    # Record 000 (NCT06281886) gives toripalimab, the default of trials-by-drug, with apatinib, whose
    # target is KDR, the default of trials-by-target.
    assert "NCT06281886" in answers["trials-by-drug"]
    assert "NCT06281886" in answers["trials-by-target"]


def test_bind_values_places_the_block_in_the_outermost_where_group():
    """The VALUES block goes after the brace that opens the WHERE group, not into a template, a string,
    an IRI, an EXISTS in the projection or a comment; CONSTRUCT WHERE cannot take parameters."""
    nct = Literal("NCT07581821")
    select = 'PREFIX x: <http://e.org/a#> # { not here\nSELECT (EXISTS { ?s ?p "}" } AS ?e) ?n WHERE { ?t x:id ?n }'
    bound = bind_values(select, {"n": nct})
    assert bound.endswith('WHERE {\n  VALUES (?n) { ("NCT07581821") }\n ?t x:id ?n }')
    construct = "CONSTRUCT { ?t <http://e.org/p> ?n } WHERE { ?t <http://e.org/id> ?n }"
    assert where_group_start(construct) == construct.index("WHERE {") + len("WHERE ")
    assert where_group_start("ASK{?s ?p ?o}") == 3
    assert where_group_start("SELECT * FROM <http://g> { ?s ?p ?o }") == len("SELECT * FROM <http://g> ")
    with pytest.raises(ValueError, match="CONSTRUCT WHERE"):
        bind_values("CONSTRUCT WHERE { ?t <http://e.org/id> ?n }", {"n": nct})
    with pytest.raises(ValueError, match="variable name"):
        bind_values(select, {"n) ?x {": nct})
    with pytest.raises(ValueError, match="IRI or a literal"):
        bind_values(select, {"n": BlankNode("b")})


def test_chunks_pack_whole_graphs_and_keep_blank_node_graphs_whole():
    """Requests hold at most the chunk size; a big graph is split unless it holds blank nodes."""
    def graph(name: str, size: int, blank: bool = False):
        g = NamedNode(f"http://e.org/graph/{name}")
        subject = BlankNode() if blank else NamedNode(f"http://e.org/{name}")
        return g, [Quad(subject, NamedNode("http://e.org/n"), Literal(str(i)), g) for i in range(size)]

    small_a, small_b, big, blank = graph("a", 3), graph("b", 4), graph("big", 25), graph("owl", 12, blank=True)
    chunks = list(plan_chunks([small_a, small_b, big, blank], 10))
    assert [len(quads) for _, quads in chunks] == [7, 10, 10, 5, 12]
    assert [[g.value.rsplit("/", 1)[1] for g in graphs] for graphs, _ in chunks] == [["a", "b"], ["big"], [], [], ["owl"]]


def test_update_only_loading_replaces_graphs_in_insert_data_requests(tmp_path, store):
    """With only an update URL the build loads by INSERT DATA; a second build replaces rather than adds."""
    with oxigraph_server(tmp_path / "db") as url:
        settings = remote_settings(tmp_path, url, graph_store=False, remote_chunk_quads=1000)
        build(settings, build_time=BUILD_TIME)
        build(settings, build_time=BUILD_TIME)
        remote = graphs_of(RemoteStore(settings))
    local = graphs_of(store)
    local[BASE + "/graph/dataset"] -= _dump_quads(local[BASE + "/graph/dataset"])
    assert {name: len(quads) for name, quads in remote.items()} == {name: len(quads) for name, quads in local.items()}


def test_kg_build_update_replaces_one_trial_graph_and_a_full_build_drops_the_rest(tmp_path):
    """`kg build FILE --update` replaces only that trial's graph in the remote; a full build of two records
    leaves exactly two trial graphs."""
    with oxigraph_server(tmp_path / "db") as url:
        settings = remote_settings(tmp_path, url, remote_chunk_quads=500)
        env = dict(os.environ, **remote_env(settings))
        kg = [sys.executable, "-m", "kg.cli", "build", "--store", str(settings.store_dir), "--quiet"]
        first = subprocess.run(kg, env=env, capture_output=True, text=True)
        assert first.returncode == 0, first.stderr
        assert f"store: {settings.remote_query_url}" in first.stdout
        before = graphs_of(RemoteStore(settings))
        changed = tmp_path / "NCT05173246.txt"
        changed.write_text((DATA / SAMPLE_FILES["NCT05173246"]).read_text(encoding="utf-8").replace(
            "43 participants", "44 participants"), encoding="utf-8")
        second = subprocess.run(kg[:4] + [str(changed), "--update"] + kg[4:], env=env, capture_output=True, text=True)
        assert second.returncode == 0, second.stderr
        after = graphs_of(RemoteStore(settings))
        assert after.keys() == before.keys()
        for name in before:
            if name.endswith("/graph/NCT05173246") or name.endswith("/graph/dataset"):
                continue
            if name.endswith("/graph/ontology"):
                assert isomorphic(_rdflib(after[name]), _rdflib(before[name]))
            else:
                assert after[name] == before[name], name
        trial = after[BASE + "/graph/NCT05173246"]
        assert any(q.object.value == "44" for q in trial) and not any(q.object.value == "43" for q in trial)
        two = [str(DATA / SAMPLE_FILES["NCT06281886"]), str(DATA / SAMPLE_FILES["NCT07581821"])]
        third = subprocess.run(kg[:4] + two + kg[4:], env=env, capture_output=True, text=True)
        assert third.returncode == 0, third.stderr
        remote = RemoteStore(settings)
        trials = sorted(g.value.rsplit("/", 1)[1] for g in remote.named_graphs() if "/graph/NCT" in g.value)
        assert trials == ["NCT06281886", "NCT07581821"]
        assert remote.count(f"SELECT (COUNT(*) AS ?n) {{ ?t a <{CTKG}Trial> }}") == 2


def test_a_remote_update_drops_an_organization_no_trial_names_any_more(tmp_path):
    """As locally: the entities graph describes the sponsor of the real record's fixture ("Tocagen Inc.",
    in no concept table); once `--update` brings the record with another sponsor, it describes that one."""
    from conftest import REAL_RECORD, with_lead_sponsor

    entities = NamedNode(BASE + "/graph/entities")
    with oxigraph_server(tmp_path / "db") as url:
        settings = remote_settings(tmp_path, url)
        build(settings, [DATA, REAL_RECORD], build_time=BUILD_TIME)
        before = {q.subject.value for q in RemoteStore(settings).quads_for_pattern(None, None, None, entities)}
        assert BASE + "/organization/tocagen-inc" in before
        build(settings, [with_lead_sponsor("Example Oncology Institute", tmp_path)], update=True, build_time=BUILD_TIME)
        after = {q.subject.value for q in RemoteStore(settings).quads_for_pattern(None, None, None, entities)}
    assert after == (before - {BASE + "/organization/tocagen-inc"}) | {BASE + "/organization/example-oncology-institute"}


def test_remote_without_a_union_default_graph_is_a_clear_error(tmp_path):
    """An Oxigraph started without --union-default-graph is refused, and the message says how to fix it."""
    with oxigraph_server(tmp_path / "db", union_default_graph=False) as url:
        settings = remote_settings(tmp_path, url)
        with pytest.raises(RemoteError, match="--union-default-graph"):
            build(settings, [DATA / SAMPLE_FILES["NCT06281886"]], build_time=BUILD_TIME)


def test_errors_name_the_endpoint_and_the_http_status(tmp_path, oxigraph, capsys, monkeypatch):
    """A wrong update URL gives the endpoint and its HTTP status; an unreachable remote says it cannot be
    reached; `kg build` turns either into one line and exit code 2."""
    settings = remote_settings(tmp_path, oxigraph).model_copy(update={"remote_update_url": oxigraph + "/no-such-path"})
    with pytest.raises(RemoteError, match=re.escape(oxigraph + "/no-such-path") + ".*HTTP 404"):
        RemoteStore(settings).update("DROP SILENT GRAPH <http://example.org/g>")
    port = _free_port()  # nothing listens there
    unreachable = remote_settings(tmp_path, f"http://127.0.0.1:{port}")
    with pytest.raises(RemoteError, match=f"cannot reach the SPARQL endpoint http://127.0.0.1:{port}/query"):
        RemoteStore(unreachable).query("ASK {}")
    from kg.cli import main

    for name, value in remote_env(unreachable).items():
        monkeypatch.setenv(name, value)
    assert main(["build", str(DATA / SAMPLE_FILES["NCT06281886"]), "--store", str(tmp_path / "store"), "--quiet"]) == 2
    assert f"127.0.0.1:{port}" in capsys.readouterr().err


# ---- authentication through a real proxy in front of Oxigraph -------------------------------------

USER, PASSWORD, TOKEN, REALM = "curator", "p4ss-w0rd-not-logged", "t0ken-not-logged-3f9a", "SPARQL"


def _digest_ok(header: str, method: str) -> bool:
    """Check an RFC 7616 (MD5, qop=auth) Authorization: Digest header against USER/PASSWORD."""
    fields = dict(re.findall(r'(\w+)="?([^",]*)"?', header[len("Digest "):]))

    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    secret, request = md5(f"{USER}:{REALM}:{PASSWORD}"), md5(f"{method}:{fields.get('uri')}")
    expected = md5(f"{secret}:{fields.get('nonce')}:{fields.get('nc')}:{fields.get('cnonce')}:{fields.get('qop')}:{request}")
    return fields.get("username") == USER and fields.get("response") == expected


@contextmanager
def auth_proxy(target: str, scheme: str):
    """An HTTP proxy on loopback that forwards to ``target`` only requests carrying the right credentials
    (basic, bearer or digest), and records every Authorization header it saw."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _handle(self):
            given = self.headers.get("Authorization", "")
            seen.append(given)
            if scheme == "basic":
                ok = given == "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
                challenge = f'Basic realm="{REALM}"'
            elif scheme == "bearer":
                ok = given == f"Bearer {TOKEN}"
                challenge = f'Bearer realm="{REALM}"'
            else:
                ok = given.startswith("Digest ") and _digest_ok(given, self.command)
                challenge = f'Digest realm="{REALM}", nonce="n0nce42", qop="auth", algorithm=MD5'
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if not ok:
                self.send_response(401)
                self.send_header("WWW-Authenticate", challenge)
                message = b"wrong or missing credentials"
                self.send_header("Content-Length", str(len(message)))
                self.end_headers()
                self.wfile.write(message)
                return
            request = urllib.request.Request(target + self.path, data=body or None, method=self.command, headers={
                k: v for k, v in self.headers.items() if k.lower() in ("content-type", "accept")})
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    status, headers, data = response.status, response.headers, response.read()
            except urllib.error.HTTPError as exc:
                status, headers, data = exc.code, exc.headers, exc.read()
            self.send_response(status)
            if headers.get("Content-Type"):
                self.send_header("Content-Type", headers["Content-Type"])
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _handle

    proxy = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{proxy.server_address[1]}", seen
    finally:
        proxy.shutdown()
        proxy.server_close()


@pytest.mark.parametrize("scheme", ["basic", "bearer", "digest"])
def test_build_and_query_through_an_authenticating_proxy(tmp_path, scheme):
    """Basic, bearer and digest credentials from the settings reach the remote (build and queries), and a
    refusal names the endpoint and status without ever showing the secret."""
    credentials = {"remote_token": TOKEN} if scheme == "bearer" else {"remote_user": USER, "remote_password": PASSWORD}
    with oxigraph_server(tmp_path / "db") as url, auth_proxy(url, scheme) as (proxy, seen):
        settings = remote_settings(tmp_path, proxy, remote_auth=scheme, **credentials)
        report = build(settings, [DATA / SAMPLE_FILES["NCT07581821"]], build_time=BUILD_TIME)
        assert report.trials == ["NCT07581821"]
        assert RemoteStore(settings).count(f"SELECT (COUNT(*) AS ?n) {{ ?t a <{CTKG}Trial> }}") == 1
        assert any(h.startswith({"basic": "Basic ", "bearer": "Bearer ", "digest": "Digest "}[scheme]) for h in seen)
        wrong = {"remote_token": "wr0ng-t0ken-xyz"} if scheme == "bearer" else {"remote_user": USER,
                                                                                  "remote_password": "wr0ng-pass-xyz"}
        refused = remote_settings(tmp_path, proxy, remote_auth=scheme, **wrong)
        for attempt in (lambda: RemoteStore(refused).query("ASK {}"),
                        lambda: RemoteStore(refused).update("DROP SILENT GRAPH <http://example.org/g>")):
            with pytest.raises(RemoteError) as caught:
                attempt()
            message = str(caught.value)
            assert "HTTP 401" in message and proxy in message
            assert not any(secret in message for secret in (PASSWORD, TOKEN, "wr0ng-t0ken-xyz", "wr0ng-pass-xyz"))
        assert TOKEN not in repr(settings) and PASSWORD not in repr(settings)


# Collected last (pytest keeps the module's order): it leaves the remote busy with a runaway query
# until the remote's own limit (--timeout-s 10) stops it, while `kg serve` goes on answering.
from test_service_sparql import test_pathological_query_is_cut_at_the_limit_and_the_next_is_answered  # noqa: E402,F401
