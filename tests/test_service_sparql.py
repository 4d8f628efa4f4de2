"""The SPARQL endpoint over a real running server (kg serve in a subprocess), with real clients."""

from __future__ import annotations

import time

import httpx
import pytest
import rdflib

from conftest import loopback_listener

PREFIX = "PREFIX ctkg: <http://localhost:8000/ontology/>\n"
TRIALS = ["NCT05173246", "NCT06281886", "NCT07248696", "NCT07325539", "NCT07581821"]
LIST_TRIALS = PREFIX + "SELECT ?nct { ?t ctkg:nctId ?nct } ORDER BY ?nct"


def _ncts_from_json(body: dict) -> list[str]:
    return [b["nct"]["value"] for b in body["results"]["bindings"]]


def test_get_post_form_and_post_direct_give_the_same_answer(server):
    """The three query operations of the protocol answer the same SELECT."""
    get = httpx.get(server + "/sparql", params={"query": LIST_TRIALS}, headers={"Accept": "application/sparql-results+json"})
    form = httpx.post(server + "/sparql", data={"query": LIST_TRIALS}, headers={"Accept": "application/sparql-results+json"})
    direct = httpx.post(server + "/sparql", content=LIST_TRIALS.encode(),
                        headers={"Content-Type": "application/sparql-query", "Accept": "application/sparql-results+json"})
    for response in (get, form, direct):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/sparql-results+json")
        assert _ncts_from_json(response.json()) == TRIALS


@pytest.mark.parametrize("fmt,return_format", [("json", "json"), ("xml", "xml"), ("csv", "csv"), ("tsv", "tsv")])
def test_sparqlwrapper_in_every_result_format(server, fmt, return_format):
    """SPARQLWrapper gets the five trials in JSON, XML, CSV and TSV."""
    from SPARQLWrapper import SPARQLWrapper

    client = SPARQLWrapper(server + "/sparql")
    client.setQuery(LIST_TRIALS)
    client.setReturnFormat(return_format)
    result = client.query().convert()
    if fmt == "json":
        assert _ncts_from_json(result) == TRIALS
    elif fmt == "xml":
        values = [n.firstChild.data for n in result.getElementsByTagName("literal")]
        assert values == TRIALS
    else:
        text = result.decode("utf-8") if isinstance(result, bytes) else result
        lines = [l for l in text.splitlines() if l]
        assert lines[0] in ("nct", "?nct")
        assert [l.strip('"') for l in lines[1:]] == TRIALS


def test_sparqlwrapper_construct_as_turtle(server):
    """A CONSTRUCT comes back as Turtle that rdflib parses."""
    from SPARQLWrapper import SPARQLWrapper, TURTLE

    client = SPARQLWrapper(server + "/sparql")
    client.setQuery(PREFIX + "CONSTRUCT { ?t ctkg:nctId ?n } WHERE { ?t ctkg:nctId ?n }")
    client.setReturnFormat(TURTLE)
    graph = rdflib.Graph().parse(data=client.query().convert(), format="turtle")
    assert len(graph) == 5


def test_rdflib_sparqlstore_reads_the_endpoint(server):
    """rdflib's SPARQLStore queries the endpoint like any remote store."""
    from rdflib.plugins.stores.sparqlstore import SPARQLStore

    graph = rdflib.Graph(store=SPARQLStore(server + "/sparql"))
    rows = graph.query(LIST_TRIALS)
    assert [str(r[0]) for r in rows] == TRIALS


@pytest.mark.parametrize("accept,expected", [
    ("text/csv;q=0.9, application/sparql-results+json;q=0.5", "text/csv"),
    ("application/sparql-results+xml, text/csv;q=0.1", "application/sparql-results+xml"),
    ("text/tab-separated-values", "text/tab-separated-values"),
    ("*/*", "application/sparql-results+json"),
])
def test_content_negotiation_with_q_values(server, accept, expected):
    """The Accept header, q-values included, picks the results format."""
    response = httpx.get(server + "/sparql", params={"query": LIST_TRIALS}, headers={"Accept": accept})
    assert response.status_code == 200 and response.headers["content-type"].startswith(expected)


@pytest.mark.parametrize("fmt,media_type", [("ttl", "text/turtle"), ("nt", "application/n-triples"),
                                            ("jsonld", "application/ld+json"), ("rdf", "application/rdf+xml")])
def test_construct_formats_by_format_parameter(server, fmt, media_type):
    """CONSTRUCT results in Turtle, N-Triples, JSON-LD and RDF/XML, chosen by the format parameter."""
    query = PREFIX + "CONSTRUCT { ?t ctkg:nctId ?n } WHERE { ?t ctkg:nctId ?n }"
    response = httpx.get(server + "/sparql", params={"query": query, "format": fmt})
    assert response.status_code == 200 and response.headers["content-type"].startswith(media_type)
    rdflib_format = {"ttl": "turtle", "nt": "nt", "jsonld": "json-ld", "rdf": "xml"}[fmt]
    assert len(rdflib.Graph().parse(data=response.content, format=rdflib_format)) == 5


def test_ask_results(server):
    """ASK answers true/false in JSON and XML."""
    ask = PREFIX + 'ASK { ?t ctkg:nctId "NCT07581821" }'
    assert httpx.get(server + "/sparql", params={"query": ask}).json()["boolean"] is True
    xml = httpx.get(server + "/sparql", params={"query": PREFIX + 'ASK { ?t ctkg:nctId "NCT00000000" }', "format": "xml"})
    assert "<boolean>false</boolean>" in xml.text


def test_default_and_named_graph_uri(server):
    """default-graph-uri restricts the default graph; named-graph-uri restricts GRAPH."""
    one = httpx.get(server + "/sparql", params={"query": LIST_TRIALS,
                                                "default-graph-uri": "http://localhost:8000/graph/NCT07248696"})
    assert _ncts_from_json(one.json()) == ["NCT07248696"]
    query = PREFIX + "SELECT ?nct { GRAPH ?g { ?t ctkg:nctId ?nct } } ORDER BY ?nct"
    named = httpx.get(server + "/sparql", params={"query": query, "named-graph-uri": [
        "http://localhost:8000/graph/NCT05173246", "http://localhost:8000/graph/NCT07325539"]})
    assert _ncts_from_json(named.json()) == ["NCT05173246", "NCT07325539"]


def test_a_dataset_clause_in_the_query_is_honoured(server):
    """FROM and FROM NAMED name the query's dataset (SPARQL 1.1 Query, 13.2): not the union of all graphs.
    The protocol's default-graph-uri still overrides them."""
    def ncts(query, **params):
        response = httpx.get(server + "/sparql", params={"query": query, **params})
        assert response.status_code == 200, response.text
        return _ncts_from_json(response.json())

    graph = "http://localhost:8000/graph/"
    from_one = PREFIX + f"SELECT ?nct FROM <{graph}NCT07248696> {{ ?t ctkg:nctId ?nct }} ORDER BY ?nct"
    assert ncts(from_one) == ["NCT07248696"]
    from_two = PREFIX + (f"SELECT ?nct FROM <{graph}NCT05173246> FROM <{graph}NCT07325539> "
                         "{ ?t ctkg:nctId ?nct } ORDER BY ?nct")
    assert ncts(from_two) == ["NCT05173246", "NCT07325539"]
    assert ncts(PREFIX + "SELECT ?nct FROM <http://example.org/no-such-graph> { ?t ctkg:nctId ?nct }") == []
    # FROM NAMED alone: GRAPH sees only the graphs named, and the default graph is empty.
    named_only = PREFIX + f"SELECT ?nct FROM NAMED <{graph}NCT07581821> {{ GRAPH ?g {{ ?t ctkg:nctId ?nct }} }}"
    assert ncts(named_only) == ["NCT07581821"]
    assert ncts(PREFIX + f"SELECT ?nct FROM NAMED <{graph}NCT07581821> {{ ?t ctkg:nctId ?nct }}") == []
    # The protocol's dataset wins over the query's.
    assert ncts(from_one, **{"default-graph-uri": graph + "NCT06281886"}) == ["NCT06281886"]
    # The words in a comment or a string are not a dataset clause.
    commented = PREFIX + "# trials from <somewhere>\nSELECT ?nct (\"from <x>\" AS ?s) { ?t ctkg:nctId ?nct } ORDER BY ?nct"
    assert ncts(commented) == TRIALS


def test_a_dataset_clause_is_honoured_under_concurrent_queries_on_a_fresh_server(built, tmp_path):
    """Sixteen FROM queries at once, the first a new server gets: each runs on the graph it names."""
    from concurrent.futures import ThreadPoolExecutor

    from conftest import copy_store, serving

    settings, _ = built
    copy_store(settings.store_dir, tmp_path / "store")
    query = PREFIX + "SELECT ?nct FROM <http://localhost:8000/graph/NCT07248696> { ?t ctkg:nctId ?nct }"
    with serving(tmp_path / "store", CTKG_CACHE_ENTRIES="0", CTKG_WARM_QUERIES="false") as url:
        def ask(_):
            return _ncts_from_json(httpx.get(url + "/sparql", params={"query": query}, timeout=60).json())
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(ask, range(16)))
        assert answers == [["NCT07248696"]] * 16
        assert ask(None) == ["NCT07248696"]


def test_media_types_are_case_insensitive_and_head_answers_as_get(server):
    response = httpx.get(server + "/sparql", params={"query": LIST_TRIALS},
                         headers={"Accept": "Application/SPARQL-Results+XML"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/sparql-results+xml")
    head = httpx.head(server + "/sparql", headers={"Accept": "TEXT/TURTLE"})
    assert head.status_code == 200 and head.headers["content-type"].startswith("text/turtle") and head.content == b""


def test_protocol_negative_cases(server):
    """400 with the parser's message, 405 for PUT, 415 for another media type, 400 for two queries, 406."""
    bad = httpx.get(server + "/sparql", params={"query": "SELECT ?x WHERE { ?x ?y }"})
    assert bad.status_code == 400 and "bad query" in bad.text
    assert httpx.put(server + "/sparql", content=b"x").status_code == 405
    wrong = httpx.post(server + "/sparql", content=b"SELECT * {}", headers={"Content-Type": "text/plain"})
    assert wrong.status_code == 415
    two = httpx.get(server + "/sparql", params=[("query", LIST_TRIALS), ("query", LIST_TRIALS)])
    assert two.status_code == 400 and "exactly one" in two.text
    both = httpx.post(server + "/sparql?query=ASK%7B%7D", content=LIST_TRIALS.encode(),
                      headers={"Content-Type": "application/sparql-query"})
    assert both.status_code == 400
    assert httpx.get(server + "/sparql", params={"query": LIST_TRIALS}, headers={"Accept": "image/png"}).status_code == 406


def test_service_description_on_get_without_query(server):
    """A GET without a query returns the Service Description with the dataset's VoID."""
    response = httpx.get(server + "/sparql", headers={"Accept": "text/turtle"})
    graph = rdflib.Graph().parse(data=response.text, format="turtle")
    SD = rdflib.Namespace("http://www.w3.org/ns/sparql-service-description#")
    VOID = rdflib.Namespace("http://rdfs.org/ns/void#")
    assert (None, rdflib.RDF.type, SD.Service) in graph
    assert (None, rdflib.RDF.type, VOID.Dataset) in graph
    assert (None, rdflib.RDF.type, VOID.Linkset) in graph
    # The default dataset is an sd:Dataset with its default graph and the system graphs by name.
    dataset = next(graph.objects(None, SD.defaultDataset))
    assert (dataset, rdflib.RDF.type, SD.Dataset) in graph and graph.value(dataset, SD.defaultGraph) is not None
    names = {str(graph.value(n, SD.name)) for n in graph.objects(dataset, SD.namedGraph)}
    assert names == {f"http://localhost:8000/graph/{g}" for g in ("ontology", "concepts", "dataset")}


def test_cors_for_browser_clients(server):
    """Browsers on other origins may read results."""
    response = httpx.get(server + "/sparql", params={"query": LIST_TRIALS}, headers={"Origin": "https://example.org"})
    assert response.headers.get("access-control-allow-origin") == "*"


def test_service_clause_never_connects(server):
    """A SERVICE clause aimed at a listener on 127.0.0.1 is refused and the listener sees no connection."""
    listener, thread, connected = loopback_listener()
    port = listener.getsockname()[1]
    query = f"SELECT * {{ SERVICE <http://127.0.0.1:{port}/sparql> {{ ?s ?p ?o }} }}"
    response = httpx.get(server + "/sparql", params={"query": query})
    thread.join()
    listener.close()
    assert response.status_code == 400 and "SERVICE" in response.text
    assert connected == []
    # The word inside a string literal is not a SERVICE clause.
    ok = httpx.get(server + "/sparql", params={"query": 'SELECT ("SERVICE" AS ?x) {}'})
    assert ok.status_code == 200


def test_pathological_query_is_cut_at_the_limit_and_the_next_is_answered(server):
    """A query that would run for minutes ends at the 3 s limit with a clear error; the next query is answered."""
    slow = "SELECT (COUNT(*) AS ?n) { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l }"
    started = time.time()
    response = httpx.get(server + "/sparql", params={"query": slow}, timeout=60)
    assert response.status_code == 503 and "limit" in response.text
    assert time.time() - started < 20
    after = httpx.get(server + "/sparql", params={"query": LIST_TRIALS}, timeout=30)
    assert after.status_code == 200 and _ncts_from_json(after.json()) == TRIALS


def test_results_are_capped_and_the_cap_is_said(server):
    """Results stop at the configured cap (1000 here) and the response says so."""
    response = httpx.get(server + "/sparql", params={"query": "SELECT * { ?s ?p ?o }"})
    assert len(response.json()["results"]["bindings"]) == 1000
    assert response.headers["x-result-limit"] == "1000"
    assert "true" in response.headers["x-result-truncated"]


def test_update_without_token_is_refused_and_changes_nothing(server):
    """SPARQL Update by an anonymous caller is refused (both ways of sending it); the data stay as they were."""
    update = PREFIX + 'INSERT DATA { <http://example.org/x> ctkg:nctId "NCT99999999" }'
    direct = httpx.post(server + "/sparql", content=update.encode(), headers={"Content-Type": "application/sparql-update"})
    form = httpx.post(server + "/sparql", data={"update": update})
    assert direct.status_code in (401, 403) and form.status_code in (401, 403)
    as_query = httpx.post(server + "/sparql", data={"query": update})
    assert as_query.status_code == 400
    check = httpx.get(server + "/sparql", params={"query": PREFIX + 'ASK { ?x ctkg:nctId "NCT99999999" }'})
    assert check.json()["boolean"] is False
