"""Dumps with their metadata, the published JSON-LD context, Last-Modified from the record, a public base."""

from __future__ import annotations

import gzip
import hashlib
from datetime import date, datetime, timezone
from email.utils import parsedate_to_datetime

import httpx
import pytest
import rdflib
from rdflib.compare import isomorphic

from conftest import BUILD_TIME, parse_rdf as parse, serving

BASE = "http://localhost:8000"
DUMP_FORMATS = {"ctkg.nq.gz": "nquads", "ctkg.trig.gz": "trig", "ctkg.ttl.gz": "turtle", "ctkg.jsonld.gz": "json-ld"}


@pytest.fixture(scope="module")
def dumps(server):
    return httpx.get(f"{server}/dumps/", headers={"Accept": "application/json"}).json()["dumps"]


def test_dumps_are_listed_with_size_date_and_checksum(server, dumps):
    assert sorted(d["name"] for d in dumps) == sorted(DUMP_FORMATS)
    for entry in dumps:
        body = httpx.get(f"{server}/dumps/{entry['name']}").content
        assert len(body) == entry["bytes"]
        assert hashlib.sha256(body).hexdigest() == entry["sha256"]
        assert httpx.get(f"{server}/dumps/{entry['name']}", headers={"If-None-Match": f'"{entry["sha256"]}"'}).status_code == 304
        assert entry["url"] == f"{BASE}/dumps/{entry['name']}" and entry["compression"] == "gzip"
    page = httpx.get(f"{server}/dumps/", headers={"Accept": "text/html"}).text
    for entry in dumps:
        assert entry["name"] in page and entry["sha256"] in page


def test_dumps_parse_and_match_the_store(server, dumps, store):
    quads = {(q.subject, q.predicate, q.object, q.graph_name) for q in store.quads_for_pattern(None, None, None, None)}
    triples = {q[:3] for q in quads}
    for entry in dumps:
        data = gzip.decompress(httpx.get(f"{server}/dumps/{entry['name']}").content)
        fmt = DUMP_FORMATS[entry["name"]]
        dataset = rdflib.Dataset()
        dataset.parse(data=data, format=fmt)
        if fmt == "turtle":  # one graph: the union of every graph, each triple once
            graph = rdflib.Graph().parse(data=data, format="turtle")
            assert len(graph) == len(triples) == entry["statements"], entry["name"]
        else:
            named = {g for g in dataset.graphs() if g.identifier != rdflib.graph.DATASET_DEFAULT_GRAPH_ID}
            assert len({g.identifier for g in named}) == len({q[3] for q in quads}), entry["name"]
            assert sum(len(g) for g in named) == len(quads) == entry["statements"], entry["name"]


def test_void_lists_the_dumps_as_data_dumps_and_distributions(server, dumps):
    void = rdflib.Graph().parse(data=httpx.get(f"{server}/.well-known/void", headers={"Accept": "text/turtle"}).text,
                                format="turtle")
    dataset = rdflib.URIRef(f"{BASE}/dataset")
    VOID, DCAT = rdflib.Namespace("http://rdfs.org/ns/void#"), rdflib.Namespace("http://www.w3.org/ns/dcat#")
    assert set(void.objects(dataset, VOID.dataDump)) == {rdflib.URIRef(d["url"]) for d in dumps}
    downloads = {void.value(dist, DCAT.downloadURL) for dist in void.objects(dataset, DCAT.distribution)}
    assert downloads == {rdflib.URIRef(d["url"]) for d in dumps}


def test_unknown_dump_is_404(server):
    assert httpx.get(f"{server}/dumps/secrets.txt").status_code == 404
    assert httpx.get(f"{server}/dumps/..%2Fstore").status_code == 404


def test_json_ld_carries_the_published_context_and_equals_the_turtle(server):
    context = httpx.get(f"{server}/context.jsonld").json()["@context"]
    assert context["ctkg"] == f"{BASE}/ontology/" and context["schema"] == "http://schema.org/"
    response = httpx.get(f"{server}/trial/NCT06281886", headers={"Accept": "application/ld+json"})
    document = response.json()
    assert document["@context"] == context
    assert any(node.get("ctkg:nctId") == "NCT06281886" for node in document["@graph"])  # compact, readable keys
    turtle = httpx.get(f"{server}/trial/NCT06281886", headers={"Accept": "text/turtle"}).content
    assert isomorphic(parse(server, response.content, "json-ld"), rdflib.Graph().parse(data=turtle, format="turtle"))


@pytest.mark.parametrize("path,updated", [
    ("/trial/NCT06281886", "2025-11-17"),              # page 000: "Last Updated: 2025-11-17"
    ("/trial/NCT06281886/arm/1", "2025-11-17"),        # a trial's parts share its date
    ("/trial/NCT07581821", "2026-06-07"),              # page 004: "Last updated 2026-06-07"
])
def test_last_modified_is_the_later_of_the_record_and_the_build(server, path, updated):
    """Last-Modified is the record's update date, or the build's time (BUILD_TIME) when that is later."""
    response = httpx.get(server + path, headers={"Accept": "text/turtle"})
    modified = parsedate_to_datetime(response.headers["last-modified"])
    assert modified.date() == max(date.fromisoformat(updated), BUILD_TIME.date())
    weak = httpx.get(server + path, headers={"Accept": "text/turtle", "If-None-Match": "W/" + response.headers["etag"]})
    assert weak.status_code == 304
    later = httpx.get(server + path, headers={"Accept": "text/turtle", "If-Modified-Since": "Sat, 01 Jan 2028 00:00:00 GMT"})
    assert later.status_code == 304 and not later.content
    earlier = httpx.get(server + path, headers={"Accept": "text/turtle", "If-Modified-Since": "Mon, 01 Jan 2024 00:00:00 GMT"})
    assert earlier.status_code == 200
    # If-None-Match wins over If-Modified-Since (RFC 9110).
    stale_etag = httpx.get(server + path, headers={"Accept": "text/turtle", "If-None-Match": '"other"',
                                                   "If-Modified-Since": "Sat, 01 Jan 2028 00:00:00 GMT"})
    assert stale_etag.status_code == 200


def test_head_requests(server):
    response = httpx.head(f"{server}/trial/NCT06281886", headers={"Accept": "text/turtle"})
    assert response.status_code == 200 and response.headers["etag"] and not response.content
    assert httpx.head(f"{server}/dumps/ctkg.nq.gz").status_code == 200


def test_home_page_links_the_dumps_and_the_query_page(server):
    page = httpx.get(server + "/").text
    assert 'href="/dumps/"' in page and 'href="/query"' in page and "CC BY 4.0" in page


@pytest.fixture(scope="module")
def public_server(tmp_path_factory):
    """The same records built and served under a public base, as behind a reverse proxy."""
    root = tmp_path_factory.mktemp("public")
    with serving(root / "store", wait_s=120, CTKG_BASE_IRI="https://trials.example.org") as url:
        yield url


def test_serving_under_a_public_base(public_server):
    """A proxy forwards https://trials.example.org/trial/... to the server's /trial/...: IRIs use the public base."""
    turtle = httpx.get(public_server + "/trial/NCT06281886", headers={"Accept": "text/turtle"}).text
    graph = rdflib.Graph().parse(data=turtle, format="turtle")
    assert (rdflib.URIRef("https://trials.example.org/trial/NCT06281886"), None, None) in graph
    page = httpx.get(public_server + "/trial/NCT06281886", headers={"Accept": "text/html"}).text
    assert 'href="/trial/NCT06281886/arm/1"' in page  # local links keep working behind the proxy
    dumps = httpx.get(public_server + "/dumps/", headers={"Accept": "application/json"}).json()["dumps"]
    assert {d["url"] for d in dumps} == {f"https://trials.example.org/dumps/{name}" for name in DUMP_FORMATS}
    data = httpx.get(public_server + "/queries/pd1-vegfr-tki-trials", params={"format": "json"}).json()
    assert [b["nct"]["value"] for b in data["results"]["bindings"]] == ["NCT06281886", "NCT07581821"]


@pytest.mark.parametrize("path,trials", [
    ("/drug/toripalimab", ["NCT05173246", "NCT06281886", "NCT07325539"]),       # pages 000, 001 (JS001), 003
    ("/drug/anlotinib", ["NCT07581821"]),
    ("/condition/nasopharyngeal-carcinoma", ["NCT07248696", "NCT07325539", "NCT07581821"]),
    ("/organization/sun-yat-sen-university", ["NCT05173246", "NCT06281886", "NCT07325539"]),  # lead sponsor
    ("/place/zhuhai", ["NCT07581821"]),                                          # page 004's site
])
def test_shared_resources_list_their_trials(server, path, trials):
    page = httpx.get(server + path, headers={"Accept": "text/html"}).text
    section = page.split("<h2>Trials</h2>", 1)[1].split("</ul>", 1)[0]
    assert [link.split('"')[0] for link in section.split('href="/trial/')[1:]] == trials


def test_a_rebuild_makes_pages_modified_again(tmp_path):
    """The same records built again later give a trial page a new ETag and a later Last-Modified (the second
    build's time), so a cache revalidating with the first Last-Modified gets the new page, not 304."""
    from kg.build import build
    from kg.settings import Settings

    later = datetime(2026, 3, 1, tzinfo=timezone.utc)  # after BUILD_TIME and after page 000's 2025-11-17
    settings = Settings(store_dir=tmp_path / "store", write_dumps=False)
    build(settings, build_time=BUILD_TIME)
    with serving(settings.store_dir) as url:
        first = httpx.get(url + "/trial/NCT06281886", headers={"Accept": "text/turtle"})
        assert parsedate_to_datetime(first.headers["last-modified"]) == BUILD_TIME
        build(settings, build_time=later)  # swapped in under the running server
        second = httpx.get(url + "/trial/NCT06281886", headers={
            "Accept": "text/turtle", "If-Modified-Since": first.headers["last-modified"]})
    assert second.status_code == 200 and second.headers["etag"] != first.headers["etag"]
    assert parsedate_to_datetime(second.headers["last-modified"]) == later
