"""SPARQL Update through the endpoint: a real `kg serve` with curators' tokens, over a private copy
of the built store (reset before each test), so the session's store stays as built."""

from __future__ import annotations

import gzip
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import rdflib

from conftest import CURATOR_TOKENS, copy_store, loopback_listener, serving

# Generous: after an update the server starts query workers over the new store; a busy machine is slow.
http = httpx.Client(timeout=120)

BASE = "http://localhost:8000"
PREFIXES = f"PREFIX ctkg: <{BASE}/ontology/>\nPREFIX prov: <http://www.w3.org/ns/prov#>\n" \
           "PREFIX dcterms: <http://purl.org/dc/terms/>\nPREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>\n"
TRIAL = "NCT07248696"  # data/002_f812caaae7d7cedb.txt: "Total Enrollment 32 participants"
ENROLLMENT_ON_THE_PAGE = "32"
# A curator's fix: the enrollment count of one trial, in that trial's own graph.
FIX_ENROLLMENT = PREFIXES + f"""WITH <{BASE}/graph/{TRIAL}>
DELETE {{ ?trial ctkg:enrollment ?old }}
INSERT {{ ?trial ctkg:enrollment 34 }}
WHERE {{ ?trial ctkg:nctId "{TRIAL}" ; ctkg:enrollment ?old }}"""
UPDATE_TYPE = "application/sparql-update"


@dataclass
class Curated:
    url: str
    store_dir: Path
    audit_log: Path

    def live(self) -> str:
        return os.readlink(self.store_dir)

    def audit_lines(self) -> list[dict]:
        if not self.audit_log.exists():
            return []
        return [json.loads(line) for line in self.audit_log.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def curated_server(built, tmp_path_factory):
    settings, _ = built
    root = tmp_path_factory.mktemp("curated")
    copy_store(settings.store_dir, root / "store")
    with serving(root / "store", CTKG_UPDATE_TOKENS=json.dumps(CURATOR_TOKENS), CTKG_QUERY_TIMEOUT_S="10") as url:
        yield Curated(url, root / "store", root / "audit" / "updates.jsonl")


@pytest.fixture()
def curated(built, curated_server):
    """The curators' server over a fresh copy of the built store."""
    settings, _ = built
    copy_store(settings.store_dir, curated_server.store_dir)
    return curated_server


def bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {CURATOR_TOKENS[name]}"}


def enrollments(url: str) -> list[str]:
    query = PREFIXES + f'SELECT ?n {{ ?t ctkg:nctId "{TRIAL}" ; ctkg:enrollment ?n }}'
    response = http.get(url + "/sparql", params={"query": query})
    assert response.status_code == 200, response.text
    return sorted(b["n"]["value"] for b in response.json()["results"]["bindings"])


def ask(url: str, query: str) -> bool:
    response = http.post(url + "/sparql", data={"query": PREFIXES + query})
    assert response.status_code == 200, response.text
    return response.json()["boolean"]


def test_update_without_the_token_is_refused_and_changes_nothing(curated):
    """No Authorization header: 401 with a Bearer challenge, by either way of sending; nothing changes."""
    live_before = curated.live()
    assert enrollments(curated.url) == [ENROLLMENT_ON_THE_PAGE]
    direct = http.post(curated.url + "/sparql", content=FIX_ENROLLMENT.encode(), headers={"Content-Type": UPDATE_TYPE})
    form = http.post(curated.url + "/sparql", data={"update": FIX_ENROLLMENT})
    for response in (direct, form):
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert enrollments(curated.url) == [ENROLLMENT_ON_THE_PAGE]
    assert curated.live() == live_before
    assert curated.audit_lines() == [] or all(line["text"] != FIX_ENROLLMENT for line in curated.audit_lines())


def test_a_wrong_token_is_401_and_changes_nothing(curated):
    """A token no curator holds, or another scheme, is refused with 401 invalid_token; the data stay as they were."""
    wrong = http.post(curated.url + "/sparql", content=FIX_ENROLLMENT.encode(),
                       headers={"Content-Type": UPDATE_TYPE, "Authorization": "Bearer not-a-curator-token-at-all"})
    assert wrong.status_code == 401 and 'error="invalid_token"' in wrong.headers["www-authenticate"]
    basic = http.post(curated.url + "/sparql", data={"update": FIX_ENROLLMENT}, auth=("alice", CURATOR_TOKENS["alice"]))
    assert basic.status_code == 401
    assert enrollments(curated.url) == [ENROLLMENT_ON_THE_PAGE]


def test_without_configured_tokens_updates_are_forbidden(server):
    """The session's server has no update tokens: an update is 403 whatever token it carries."""
    response = http.post(server + "/sparql", content=FIX_ENROLLMENT.encode(),
                          headers={"Content-Type": UPDATE_TYPE, **bearer("alice")})
    assert response.status_code == 403


def test_update_by_get_is_not_allowed(curated):
    """An update sent with GET is refused (405), token or not, and nothing changes."""
    response = http.get(curated.url + "/sparql", params={"update": FIX_ENROLLMENT}, headers=bearer("alice"))
    assert response.status_code == 405
    assert enrollments(curated.url) == [ENROLLMENT_ON_THE_PAGE]


def test_a_curators_fix_is_visible_to_the_next_query_and_dereference(curated):
    """With alice's token the enrollment 32 becomes 34; the next query and the trial's page say 34, not 32."""
    page_before = http.get(curated.url + f"/trial/{TRIAL}", headers={"Accept": "text/turtle"})
    response = http.post(curated.url + "/sparql", content=FIX_ENROLLMENT.encode(),
                          headers={"Content-Type": UPDATE_TYPE, **bearer("alice")})
    assert response.status_code == 200, response.text
    summary = response.json()
    assert summary["curator"] == "alice" and summary["added"] == 1 and summary["removed"] == 1
    assert summary["graphs"] == [{"graph": f"{BASE}/graph/{TRIAL}", "added": 1, "removed": 1}]
    assert enrollments(curated.url) == ["34"]
    page = http.get(curated.url + f"/trial/{TRIAL}", headers={"Accept": "text/turtle"})
    assert page.status_code == 200
    graph = rdflib.Graph().parse(data=page.text, format="turtle")
    values = {str(o) for o in graph.objects(rdflib.URIRef(f"{BASE}/trial/{TRIAL}"),
                                            rdflib.URIRef(f"{BASE}/ontology/enrollment"))}
    assert values == {"34"}
    assert page.headers.get("etag") != page_before.headers.get("etag")
    # A cache that asks "changed since the page you had?" gets the fixed page, not 304.
    revalidated = http.get(curated.url + f"/trial/{TRIAL}", headers={
        "Accept": "text/turtle", "If-Modified-Since": page_before.headers["last-modified"]})
    assert revalidated.status_code == 200 and revalidated.text == page.text


def test_the_audit_line_and_the_prov_activity_name_the_curator(curated):
    """bob's update is one JSON line (who, when, text, stores, counts) and a PROV-O activity in the dataset graph."""
    live_before = curated.live()
    lines_before = len(curated.audit_lines())
    response = http.post(curated.url + "/sparql", data={"update": FIX_ENROLLMENT}, headers=bearer("bob"))
    assert response.status_code == 200, response.text
    lines = curated.audit_lines()
    assert len(lines) == lines_before + 1
    line = lines[-1]
    assert line["curator"] == "bob" and line["outcome"] == "applied" and line["text"] == FIX_ENROLLMENT
    assert line["store_before"] == Path(live_before).name and line["store_after"] == Path(curated.live()).name
    assert line["store_before"] != line["store_after"]
    assert (line["added"], line["removed"]) == (1, 1)
    assert line["started"] <= line["ended"]
    activity = line["update"]
    assert activity == response.json()["update"] and activity.startswith(f"{BASE}/update/")
    assert ask(curated.url, f"""ASK {{ GRAPH <{BASE}/graph/dataset> {{
        <{activity}> a prov:Activity ; prov:wasAssociatedWith <{BASE}/curator/bob> ;
            prov:startedAtTime ?started ; prov:endedAtTime ?ended ; dcterms:description ?text .
        <{BASE}/curator/bob> a prov:Agent ; rdfs:label "bob" .
        <{BASE}/dataset> prov:wasInfluencedBy <{activity}> ; dcterms:modified ?ended .
        <{BASE}/graph/{TRIAL}> prov:wasInfluencedBy <{activity}> .
        FILTER(STR(?text) = {json.dumps(FIX_ENROLLMENT)}) }} }}""")
    # The build's modification time gave way to the update's: one dcterms:modified, not two.
    query = PREFIXES + f"SELECT ?m {{ GRAPH <{BASE}/graph/dataset> {{ <{BASE}/dataset> dcterms:modified ?m }} }}"
    assert len(http.get(curated.url + "/sparql", params={"query": query}).json()["results"]["bindings"]) == 1
    # The activity's IRI dereferences.
    page = http.get(activity.replace(BASE, curated.url), headers={"Accept": "text/turtle"})
    assert page.status_code == 200 and "wasAssociatedWith" in page.text


@pytest.mark.parametrize("update", [
    "LOAD <http://127.0.0.1:{port}/trials.ttl>",
    "LOAD SILENT <http://127.0.0.1:{port}/trials.ttl> INTO GRAPH <http://localhost:8000/graph/loaded>",
    "INSERT {{ GRAPH <http://localhost:8000/graph/x> {{ ?s ?p ?o }} }} "
    "WHERE {{ SERVICE <http://127.0.0.1:{port}/sparql> {{ ?s ?p ?o }} }}",
])
def test_load_and_service_are_refused_even_with_the_token_and_never_connect(curated, update):
    """LOAD or SERVICE aimed at a listener on 127.0.0.1: 400 with the curator's token, no connection, no change."""
    live_before = curated.live()
    listener, thread, connected = loopback_listener()
    text = update.format(port=listener.getsockname()[1])
    response = http.post(curated.url + "/sparql", content=text.encode(),
                          headers={"Content-Type": UPDATE_TYPE, **bearer("alice")})
    thread.join()
    listener.close()
    assert response.status_code == 400
    assert ("LOAD" if text.startswith("LOAD") else "SERVICE") in response.text
    assert connected == []
    assert curated.live() == live_before
    refused = curated.audit_lines()[-1]
    assert refused["curator"] == "alice" and refused["outcome"] == "refused" and refused["text"] == text


def test_two_curators_at_once_keep_both_changes(curated):
    """Two updates sent together are run one after the other (the store's lock): both changes are kept."""
    inserts = {name: PREFIXES + f'INSERT DATA {{ GRAPH <{BASE}/graph/{TRIAL}> '
                                f'{{ <{BASE}/trial/{TRIAL}> rdfs:comment "checked by {name}" }} }}'
               for name in ("alice", "bob")}
    answers: dict[str, int] = {}

    def send(name: str) -> None:
        answers[name] = http.post(curated.url + "/sparql", data={"update": inserts[name]}, headers=bearer(name)).status_code

    threads = [threading.Thread(target=send, args=(name,)) for name in inserts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == {"alice": 200, "bob": 200}
    assert ask(curated.url, f'ASK {{ <{BASE}/trial/{TRIAL}> rdfs:comment "checked by alice", "checked by bob" }}')


def test_an_update_past_the_time_limit_is_stopped_and_changes_nothing(curated):
    """An update that would run for hours ends at the 10 s limit with 503; the store is as it was and the
    next update runs (the lock was released)."""
    live_before = curated.live()
    folders_before = sorted(p.name for p in (curated.store_dir.parent / "store.d").iterdir())
    # Four-fold cross product of every quad (an update's WHERE reads the store's default graph, which
    # holds nothing here, so the graphs are named).
    endless = ("INSERT { GRAPH <http://localhost:8000/graph/endless> { ?a <urn:p> ?l } } WHERE { "
               "GRAPH ?g1 { ?a ?b ?c } GRAPH ?g2 { ?d ?e ?f } GRAPH ?g3 { ?g ?h ?i } GRAPH ?g4 { ?j ?k ?l } }")
    response = http.post(curated.url + "/sparql", data={"update": endless}, headers=bearer("alice"))
    assert response.status_code == 503 and "limit" in response.text
    assert curated.live() == live_before
    assert sorted(p.name for p in (curated.store_dir.parent / "store.d").iterdir()) == folders_before
    assert curated.audit_lines()[-1]["outcome"] == "timeout"
    after = http.post(curated.url + "/sparql", data={"update": FIX_ENROLLMENT}, headers=bearer("alice"))
    assert after.status_code == 200
    assert enrollments(curated.url) == ["34"]


@pytest.mark.parametrize("named_graph,deleted", [(TRIAL, True), ("NCT05173246", False)])
def test_delete_where_takes_the_protocols_named_graphs(curated, named_graph, deleted):
    """DELETE WHERE has no USING of its own; with using-named-graph-uri it sees only the graphs named."""
    update = PREFIXES + f"DELETE WHERE {{ GRAPH <{BASE}/graph/{TRIAL}> {{ ?trial ctkg:enrollment ?n }} }}"
    response = http.post(curated.url + "/sparql", params={"using-named-graph-uri": f"{BASE}/graph/{named_graph}"},
                         content=update.encode(), headers={"Content-Type": UPDATE_TYPE, **bearer("alice")})
    assert response.status_code == 200, response.text
    assert enrollments(curated.url) == ([] if deleted else [ENROLLMENT_ON_THE_PAGE])


def test_the_protocol_dataset_is_written_before_each_where_and_nowhere_else():
    """USING clauses go before each operation's own WHERE: not into strings, comments, IRIs or sub-queries."""
    from kg.updates import with_protocol_dataset

    update = ('# no WHERE here { \n'
              'INSERT { <urn:s> <urn:note> "WHERE }" } WHERE { ?s ?p ?o { SELECT ?s WHERE { ?s ?q ?r } } } ;\n'
              'DELETE WHERE { GRAPH <urn:where> { ?s ?p ?o } }')
    assert with_protocol_dataset(update, ["urn:g"], ["urn:n"]) == (
        '# no WHERE here { \n'
        'INSERT { <urn:s> <urn:note> "WHERE }" } USING <urn:g> USING NAMED <urn:n> '
        'WHERE { ?s ?p ?o { SELECT ?s WHERE { ?s ?q ?r } } } ;\n'
        'DELETE { GRAPH <urn:where> { ?s ?p ?o } } USING <urn:g> USING NAMED <urn:n> '
        'WHERE { GRAPH <urn:where> { ?s ?p ?o } }')


def test_the_dumps_served_after_an_update_hold_the_fix(curated):
    """As after a build, the dumps listed at /dumps/ are those of the store being served: the fix is in them."""
    response = http.post(curated.url + "/sparql", data={"update": FIX_ENROLLMENT}, headers=bearer("alice"))
    assert response.status_code == 200, response.text
    listing = http.get(curated.url + "/dumps/", headers={"Accept": "application/json"}).json()
    assert "ctkg.nq.gz" in {entry["name"] for entry in listing["dumps"]}
    dump = http.get(curated.url + "/dumps/ctkg.nq.gz")
    assert dump.status_code == 200
    dataset = rdflib.Dataset()
    dataset.parse(data=gzip.decompress(dump.content), format="nquads")
    trial = rdflib.URIRef(f"{BASE}/trial/{TRIAL}")
    values = {str(o) for _, _, o, _ in dataset.quads((trial, rdflib.URIRef(f"{BASE}/ontology/enrollment"), None, None))}
    assert values == {"34"}
