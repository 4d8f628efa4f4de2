"""Dereferenceable IRIs, the home page and VoID, through the real running server."""

from __future__ import annotations

import re
from email.utils import parsedate_to_datetime

import httpx
import pytest
import rdflib
from rdflib.compare import isomorphic

from conftest import BUILD_TIME, parse_rdf as parse

BASE = "http://localhost:8000"
IRIS = ["/trial/NCT06281886", "/trial/NCT06281886/arm/1", "/trial/NCT06281886/intervention/4", "/drug/toripalimab",
        "/condition/nasopharyngeal-carcinoma", "/organization/sun-yat-sen-university", "/place/guangzhou",
        "/target/PDCD1", "/ontology/PD1Inhibitor"]


@pytest.mark.parametrize("path", IRIS)
@pytest.mark.parametrize("accept,rdflib_format", [("text/turtle", "turtle"), ("application/n-triples", "nt"),
                                                  ("application/ld+json", "json-ld"), ("application/rdf+xml", "xml")])
def test_iri_dereferences_in_every_rdf_format(server, path, accept, rdflib_format):
    """Each kind of IRI answers in Turtle, N-Triples, JSON-LD and RDF/XML with triples about itself."""
    response = httpx.get(server + path, headers={"Accept": accept})
    assert response.status_code == 200 and response.headers["content-type"].startswith(accept)
    assert "Accept" in response.headers["vary"]
    graph = parse(server, response.content, rdflib_format)
    assert (rdflib.URIRef(BASE + path), None, None) in graph


@pytest.mark.parametrize("suffix,rdflib_format", [(".ttl", "turtle"), (".nt", "nt"), (".jsonld", "json-ld"), (".rdf", "xml")])
def test_suffixes_select_the_format(server, suffix, rdflib_format):
    """`/trial/NCT07581821.ttl` and the other suffixes work without an Accept header."""
    response = httpx.get(server + "/trial/NCT07581821" + suffix)
    graph = parse(server, response.content, rdflib_format)
    assert (rdflib.URIRef(BASE + "/trial/NCT07581821"), None, None) in graph


def test_trial_html_page_links_and_carries_the_same_json_ld(server):
    """The HTML page links to arms, drugs and external vocabularies and embeds JSON-LD equal to the Turtle."""
    page = httpx.get(server + "/trial/NCT06281886", headers={"Accept": "text/html"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'href="/trial/NCT06281886/arm/1"' in page.text
    assert 'href="/organization/sun-yat-sen-university"' in page.text
    block = re.search(r'<script type="application/ld\+json">(.*?)</script>', page.text, re.S).group(1)
    embedded = rdflib.Graph().parse(data=block.replace("<\\/", "</"), format="json-ld")
    turtle = rdflib.Graph().parse(data=httpx.get(server + "/trial/NCT06281886.ttl").content, format="turtle")
    assert isomorphic(embedded, turtle)
    drug = httpx.get(server + "/drug/toripalimab.html")
    assert "https://go.drugbank.com/drugs/DB15043" in drug.text and "/trial/NCT05173246" in drug.text


def test_etag_conditional_request(server):
    """A second request with If-None-Match gets 304."""
    first = httpx.get(server + "/trial/NCT07248696.ttl")
    again = httpx.get(server + "/trial/NCT07248696.ttl", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304


def test_unknown_iri_is_a_helpful_404(server):
    """An IRI the graph does not hold answers 404 with a hint, as HTML for browsers."""
    response = httpx.get(server + "/trial/NCT00000000", headers={"Accept": "text/html"})
    assert response.status_code == 404 and "SPARQL" in response.text


def test_home_page_and_void(server):
    """The home page lists the trials and the licence; /.well-known/void parses as VoID."""
    home = httpx.get(server + "/")
    assert "NCT07581821" in home.text and "CC BY 4.0" in home.text
    void = httpx.get(server + "/.well-known/void", headers={"Accept": "text/turtle"})
    graph = rdflib.Graph().parse(data=void.content, format="turtle")
    assert (None, rdflib.RDF.type, rdflib.URIRef("http://rdfs.org/ns/void#Dataset")) in graph


def test_post_validate_a_raw_page_and_turtle(server):
    """POST /validate takes a raw record page or Turtle and answers with a report in the negotiated format."""
    from conftest import DATA, SAMPLE_FILES

    page = (DATA / SAMPLE_FILES["NCT06281886"]).read_text(encoding="utf-8").replace("170 participants", "-5 participants")
    response = httpx.post(server + "/validate", content=page.encode(), headers={"Content-Type": "text/plain",
                                                                                   "Accept": "application/json"})
    report = response.json()
    assert response.status_code == 200 and report["conforms"] is False
    assert [r["shape"].rsplit("/", 1)[-1] for r in report["results"] if r["severity"] == "Violation"] == ["Trial-enrollment"]
    # The server's temporary file is not the caller's business: the source is the request body.
    assert {r["source_file"] for r in report["results"] if r["source_file"]} == {"(request body)"}
    turtle = '@prefix ctkg: <http://localhost:8000/ontology/> . <http://localhost:8000/trial/X> a ctkg:Trial ; ctkg:nctId "NCT1" .'
    html_report = httpx.post(server + "/validate", content=turtle.encode(),
                             headers={"Content-Type": "text/turtle", "Accept": "text/html"})
    assert html_report.headers["content-type"].startswith("text/html") and "Does not conform" in html_report.text
    bad = httpx.post(server + "/validate", content=b"@prefix broken", headers={"Content-Type": "text/turtle"})
    assert bad.status_code == 400


def test_last_build_report_is_served(server):
    """GET /validate/report serves the last build's report (JSON, HTML, Turtle, text); 406 for another type."""
    response = httpx.get(server + "/validate/report", headers={"Accept": "application/json"})
    assert response.status_code == 200 and response.json()["conforms"] is True
    assert "Validation report" in httpx.get(server + "/validate/report", headers={"Accept": "text/html"}).text
    turtle = httpx.get(server + "/validate/report", headers={"Accept": "Text/Turtle"})
    graph = rdflib.Graph().parse(data=turtle.content, format="turtle")
    SH = rdflib.Namespace("http://www.w3.org/ns/shacl#")
    assert (None, SH.conforms, rdflib.Literal(True)) in graph
    text = httpx.get(server + "/validate/report", headers={"Accept": "text/plain"})
    assert text.headers["content-type"].startswith("text/plain") and text.text.rstrip().endswith("conforms")
    for unavailable in ("application/ld+json", "image/png"):
        refused = httpx.get(server + "/validate/report", headers={"Accept": unavailable})
        assert refused.status_code == 406 and "application/json" in refused.text


VOID = rdflib.Namespace("http://rdfs.org/ns/void#")


@pytest.mark.parametrize("path,rdf_type", [("/ontology", rdflib.OWL.Ontology),   # ontology/ctkg.ttl: <ontology> a owl:Ontology
                                           ("/dataset", VOID.Dataset)])          # kg/dataset.py: the void:Dataset
def test_the_ontology_and_the_dataset_dereference(server, path, rdf_type):
    """{base}/ontology and {base}/dataset answer where they are (no redirect to a slash), negotiated like any
    IRI, with a suffix too, and with validators: the dataset was last modified by the build (BUILD_TIME)."""
    response = httpx.get(server + path, headers={"Accept": "text/turtle"}, follow_redirects=False)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/turtle")
    graph = rdflib.Graph().parse(data=response.content, format="turtle")
    assert (rdflib.URIRef(BASE + path), rdflib.RDF.type, rdf_type) in graph
    assert parsedate_to_datetime(response.headers["last-modified"]) == BUILD_TIME
    assert httpx.get(server + path, headers={"Accept": "text/turtle", "If-None-Match": response.headers["etag"]},
                     follow_redirects=False).status_code == 304
    suffixed = httpx.get(server + path + ".ttl", follow_redirects=False)
    assert suffixed.status_code == 200 and suffixed.content == response.content
    html_page = httpx.get(server + path, headers={"Accept": "text/html"}, follow_redirects=False)
    assert html_page.status_code == 200 and f"<code>{BASE}{path}</code>" in html_page.text


def test_the_ontology_page_carries_its_title(server):
    """The ontology's page holds what ontology/ctkg.ttl says of <ontology>."""
    graph = parse(server, httpx.get(server + "/ontology.jsonld").content, "json-ld")
    title = graph.value(rdflib.URIRef(BASE + "/ontology"), rdflib.DCTERMS.title)
    assert title == rdflib.Literal("ctkg ontology", lang="en")


@pytest.mark.parametrize("accept,sent,rdflib_format", [("TEXT/TURTLE", "text/turtle", "turtle"),
                                                       ("Application/LD+JSON", "application/ld+json", "json-ld"),
                                                       ("application/json", "application/ld+json", "json-ld")])
def test_media_types_are_case_insensitive_and_json_gets_json_ld(server, accept, sent, rdflib_format):
    """Media types in Accept match whatever their case (RFC 9110), and plain JSON is answered with JSON-LD."""
    response = httpx.get(server + "/trial/NCT06281886", headers={"Accept": accept})
    assert response.status_code == 200 and response.headers["content-type"].startswith(sent)
    assert (rdflib.URIRef(BASE + "/trial/NCT06281886"), None, None) in parse(server, response.content, rdflib_format)
    void = httpx.get(server + "/.well-known/void", headers={"Accept": accept})
    assert void.status_code == 200 and void.headers["content-type"].startswith(sent)


@pytest.mark.parametrize("accept,suffix", [("text/turtle", ".ttl"), ("application/ld+json", ".jsonld"),
                                           ("application/n-triples", ".nt"), ("application/rdf+xml", ".rdf"),
                                           ("text/html", ".html")])
def test_negotiated_pages_name_their_document_and_suffixed_ones_do_not_vary(server, accept, suffix):
    """/trial/X chosen by Accept varies by it and says which document it sent (Content-Location: /trial/X.ttl);
    that document, fetched by its own URL, is the same bytes and does not depend on Accept."""
    negotiated = httpx.get(server + "/trial/NCT07248696", headers={"Accept": accept})
    assert "accept" in negotiated.headers["vary"].lower()
    assert negotiated.headers["content-location"] == "/trial/NCT07248696" + suffix
    document = httpx.get(server + negotiated.headers["content-location"], headers={"Accept": "image/png"})
    assert document.status_code == 200 and document.content == negotiated.content
    assert "accept" not in document.headers.get("vary", "").lower() and "content-location" not in document.headers
    revalidated = httpx.get(server + "/trial/NCT07248696", headers={"Accept": accept,
                                                                   "If-None-Match": negotiated.headers["etag"]})
    assert revalidated.status_code == 304
    assert revalidated.headers["content-location"] == negotiated.headers["content-location"]


def test_void_has_prefixes_an_etag_and_refuses_what_it_cannot_send(server):
    """/.well-known/void: Turtle with the graph's prefixes (void:Dataset, not the full IRI) for */* or no Accept,
    an ETag honoured by If-None-Match, and 406 for an Accept it has nothing for."""
    response = httpx.get(server + "/.well-known/void", headers={"Accept": "*/*"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/turtle")
    assert "@prefix void: <http://rdfs.org/ns/void#>" in response.text and "void:Dataset" in response.text
    assert "<http://rdfs.org/ns/void#Dataset>" not in response.text
    graph = rdflib.Graph().parse(data=response.content, format="turtle")
    modified = graph.value(rdflib.URIRef(BASE + "/dataset"), rdflib.DCTERMS.modified)
    assert modified.toPython() == BUILD_TIME
    with httpx.Client() as client:
        del client.headers["accept"]
        no_accept = client.get(server + "/.well-known/void")
    assert no_accept.headers["content-type"].startswith("text/turtle") and no_accept.content == response.content
    again = httpx.get(server + "/.well-known/void", headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304 and not again.content
    for accept in ("text/html", "image/png"):
        refused = httpx.get(server + "/.well-known/void", headers={"Accept": accept})
        assert refused.status_code == 406, accept
