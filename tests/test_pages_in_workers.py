"""Pages are built in the query worker processes: through a real `kg serve`, pages in every format come
back right while a slow query holds a worker, after the workers were killed, from the cache, and with a
clear 503 when the time limit stops them.

Expected triples are read off the shipped record data/000_9efd11cc5e19c434.txt (NCT06281886): its first
study group "The study group" (EXPERIMENTAL) lists five interventions, in the record's order.
"""

from __future__ import annotations

import os
import re
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import rdflib
from rdflib.compare import isomorphic

from conftest import parse_rdf, serving

BASE = "http://localhost:8000"
CTKG = f"{BASE}/ontology/"
TRIAL = f"{BASE}/trial/NCT06281886"
RDF_TYPE = "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>"
LABEL = "<http://www.w3.org/2000/01/rdf-schema#label>"
HAS_INTERVENTION = f"<{CTKG}hasIntervention>"

# /trial/NCT06281886/arm/1 as N-Triples, written from the record: the arm's own statements, and the label
# and type of everything it links to (its interventions; the Arm class, labelled "arm" in ontology/ctkg.ttl;
# the RADIATION intervention is also a ctkg:Radiotherapy). One triple a line, sorted as the page sorts them.
ARM_1_NT = "".join(line + " .\n" for line in [
    f"<{CTKG}Arm> {RDF_TYPE} <http://www.w3.org/2002/07/owl#Class>",
    f'<{CTKG}Arm> {LABEL} "arm"@en',
    f'<{TRIAL}/arm/1> <{CTKG}armType> "EXPERIMENTAL"',
    *(f"<{TRIAL}/arm/1> {HAS_INTERVENTION} <{TRIAL}/intervention/{n}>" for n in range(1, 6)),
    (f'<{TRIAL}/arm/1> <http://schema.org/description> "Patients are planned to receive 2 cycles of induction '
     'immuno-chemotherapy plus apatinib, followed by concurrent chemoradiotherapy plus apatinib."'),
    f'<{TRIAL}/arm/1> <http://schema.org/name> "The study group"',
    f"<{TRIAL}/arm/1> {RDF_TYPE} <{CTKG}Arm>",
    f'<{TRIAL}/arm/1> {LABEL} "The study group"',
    f"<{TRIAL}/intervention/1> {RDF_TYPE} <{CTKG}Intervention>",
    f'<{TRIAL}/intervention/1> {LABEL} "Induction Immunotherapy-Toripalimab"',
    f"<{TRIAL}/intervention/2> {RDF_TYPE} <{CTKG}Intervention>",
    f'<{TRIAL}/intervention/2> {LABEL} "Induction Chemotherapy-Albumin-paclitaxel combined with cisplatin"',
    f"<{TRIAL}/intervention/3> {RDF_TYPE} <{CTKG}Intervention>",
    f"<{TRIAL}/intervention/3> {RDF_TYPE} <{CTKG}Radiotherapy>",
    f'<{TRIAL}/intervention/3> {LABEL} "Radiotherapy"',
    f"<{TRIAL}/intervention/4> {RDF_TYPE} <{CTKG}Intervention>",
    f'<{TRIAL}/intervention/4> {LABEL} "Apatinib"',
    f"<{TRIAL}/intervention/5> {RDF_TYPE} <{CTKG}Intervention>",
    f'<{TRIAL}/intervention/5> {LABEL} "Capecitabine"',
])
FORMATS = {"ttl": "turtle", "nt": "nt", "jsonld": "json-ld", "rdf": "xml", "html": "html"}
# Every triple in every graph, three times over: runs until the time limit stops it.
SLOW_QUERY = "SELECT (COUNT(*) AS ?n) { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }"


def page_graph(server: str, response: httpx.Response, fmt: str) -> rdflib.Graph:
    """The triples of a page; for HTML, those of the JSON-LD block it embeds."""
    if fmt != "html":
        return parse_rdf(server, response.content, FORMATS[fmt])
    block = re.search(r'<script type="application/ld\+json">(.*?)</script>', response.text, re.S).group(1)
    return rdflib.Graph().parse(data=block.replace("\\u003c", "<"), format="json-ld")


def assert_arm_page(server: str, response: httpx.Response, fmt: str) -> None:
    """The page of arm 1 holds exactly the triples the record gives it."""
    assert response.status_code == 200, (fmt, response.status_code, response.text[:200])
    expected = rdflib.Graph().parse(data=ARM_1_NT, format="nt")
    assert isomorphic(page_graph(server, response, fmt), expected), fmt


def assert_trial_page(server: str, response: httpx.Response, fmt: str) -> None:
    """The trial's page holds its id, title and lead sponsor (with the sponsor's name) from the record."""
    assert response.status_code == 200, (fmt, response.status_code, response.text[:200])
    graph = page_graph(server, response, fmt)
    trial, sponsor = rdflib.URIRef(TRIAL), rdflib.URIRef(f"{BASE}/organization/sun-yat-sen-university")
    assert (trial, rdflib.URIRef(CTKG + "nctId"), rdflib.Literal("NCT06281886")) in graph
    title = ("Induction Immuno-chemotherapy and Concurrent Chemoradiotherapy With or Without Apatinib in "
             "Unresectable, Locally Advanced Esophageal Squamous Cell Carcinoma")
    assert (trial, rdflib.URIRef("http://schema.org/name"), rdflib.Literal(title)) in graph
    assert (trial, rdflib.URIRef(CTKG + "leadSponsor"), sponsor) in graph
    assert (sponsor, rdflib.RDFS.label, None) in graph


@pytest.fixture(scope="module")
def uncached_server(built):
    """`kg serve` over the shipped records with the answer cache off, so every page is built by a worker."""
    settings, _ = built
    with serving(settings.store_dir, CTKG_CACHE_ENTRIES="0", CTKG_QUERY_TIMEOUT_S="30") as url:
        yield url


def test_arm_page_is_exactly_the_records_triples_as_n_triples(uncached_server):
    """The N-Triples page of arm 1 is, byte for byte, the triples read off the record, sorted."""
    response = httpx.get(uncached_server + "/trial/NCT06281886/arm/1.nt")
    assert response.status_code == 200 and response.headers["x-cache"] == "off"
    assert response.text == ARM_1_NT


def test_pages_in_every_format_while_a_slow_query_holds_a_worker(uncached_server):
    """With one worker busy on a query that runs to the time limit, pages in all five formats, asked for
    at once, are built by the other worker and are right."""
    slow: dict = {}
    query = threading.Thread(target=lambda: slow.update(response=httpx.post(
        uncached_server + "/sparql", content=SLOW_QUERY, timeout=60,
        headers={"Content-Type": "application/sparql-query", "Accept": "application/sparql-results+json"})))
    query.start()
    threading.Event().wait(1)  # let the query reach its worker first
    requests = [(path, fmt) for path in ("/trial/NCT06281886/arm/1", "/trial/NCT06281886") for fmt in FORMATS] * 2
    with ThreadPoolExecutor(len(requests)) as pool:
        responses = list(pool.map(lambda r: httpx.get(f"{uncached_server}{r[0]}.{r[1]}", timeout=60), requests))
    still_running = query.is_alive()
    query.join()
    assert still_running, "the slow query ended before the pages were answered: the test proved nothing"
    assert slow["response"].status_code == 503  # stopped at the time limit; its worker was replaced
    for (path, fmt), response in zip(requests, responses):
        (assert_arm_page if path.endswith("/arm/1") else assert_trial_page)(uncached_server, response, fmt)


def test_pages_are_answered_after_the_workers_were_killed(uncached_server):
    """Workers killed while idle (as the out-of-memory killer would) are found dead before a page is sent
    to them and replaced: every page in every format, asked for at once, is still answered."""
    workers = worker_processes(server_process(uncached_server))
    assert len(workers) == 3, workers  # two query workers and one page worker (the defaults)
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    with ThreadPoolExecutor(len(FORMATS)) as pool:
        responses = list(pool.map(lambda fmt: httpx.get(f"{uncached_server}/trial/NCT06281886/arm/1.{fmt}", timeout=60),
                                  FORMATS))
    for fmt, response in zip(FORMATS, responses):
        assert_arm_page(uncached_server, response, fmt)
    # The page worker was replaced for the pages; the query workers are replaced when queries come.
    for _ in range(2):
        assert httpx.get(uncached_server + "/sparql", params={"query": "ASK { ?s ?p ?o }"}, timeout=60).status_code == 200
    replaced = worker_processes(server_process(uncached_server))
    assert len(replaced) == 3 and not set(workers) & set(replaced)


def test_json_ld_pages_have_one_etag_whichever_worker_builds_them(uncached_server):
    """An ontology class with blank nodes (an OWL restriction), built again by each of the two workers in
    turn, gives the same bytes and ETag every time, so conditional requests work."""
    responses = [httpx.get(uncached_server + "/ontology/CTLA4Inhibitor.jsonld") for _ in range(4)]
    assert all(r.status_code == 200 for r in responses)
    assert len({r.headers["etag"] for r in responses}) == 1 and len({r.content for r in responses}) == 1
    again = httpx.get(uncached_server + "/ontology/CTLA4Inhibitor.jsonld",
                      headers={"If-None-Match": responses[0].headers["etag"]})
    assert again.status_code == 304


def test_pages_come_from_the_cache_the_second_time(server):
    """A repeated page is answered from the cache (X-Cache: hit) with the same bytes and validators;
    HEAD and conditional requests say so too."""
    first = httpx.get(server + "/trial/NCT07325539.nt")
    second = httpx.get(server + "/trial/NCT07325539.nt")
    assert first.headers["x-cache"] in ("miss", "hit") and second.headers["x-cache"] == "hit"
    assert second.content == first.content and second.headers["etag"] == first.headers["etag"]
    assert second.headers["last-modified"] == first.headers["last-modified"]
    head = httpx.head(server + "/trial/NCT07325539.nt")
    assert head.status_code == 200 and head.headers["x-cache"] == "hit" and head.headers["etag"] == first.headers["etag"]
    not_modified = httpx.get(server + "/trial/NCT07325539.nt", headers={"If-None-Match": first.headers["etag"]})
    assert not_modified.status_code == 304 and not_modified.headers["x-cache"] == "hit"


def test_nothing_acceptable_is_406_and_unknown_stays_404(server):
    """A known IRI asked for in a type no page has is 406; an unknown one is 404 whatever is asked, and so
    is a path that is no IRI at all."""
    assert httpx.get(server + "/trial/NCT06281886", headers={"Accept": "image/png"}).status_code == 406
    assert httpx.get(server + "/trial/NCT00000001", headers={"Accept": "image/png"}).status_code == 404
    assert httpx.get(server + "/trial/NCT0628 1886").status_code == 404


@pytest.fixture(scope="module")
def impatient_server(built):
    """A server whose time limit (one microsecond) no page can meet."""
    settings, _ = built
    with serving(settings.store_dir, CTKG_CACHE_ENTRIES="0", CTKG_QUERY_TIMEOUT_S="0.000001") as url:
        yield url


def test_a_page_stopped_at_the_time_limit_is_a_clear_503(impatient_server):
    """The worker building the page is stopped at the limit: the client is told so with 503 and Retry-After,
    and the server goes on answering."""
    response = httpx.get(impatient_server + "/trial/NCT06281886.ttl", timeout=60)
    assert response.status_code == 503 and response.headers["retry-after"] == "5"
    assert "the page of /trial/NCT06281886 was not built" in response.text and "limit" in response.text
    assert httpx.get(impatient_server + "/context.jsonld").status_code == 200


def server_process(url: str) -> int:
    """The process id of the `kg serve` listening on ``url``'s port (found by its command line)."""
    port = url.rsplit(":", 1)[1]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"kg.cli" in argv and b"serve" in argv and port.encode() in argv:
            return int(entry.name)
    raise AssertionError(f"no kg serve process for {url}")


def worker_processes(parent: int) -> list[int]:
    """The live query workers of a server: its children started by multiprocessing (not its resource tracker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after "pid (name)": state, ppid, ...
        if int(fields[1]) == parent and fields[0] != "Z" and b"spawn_main" in argv and b"resource_tracker" not in argv:
            found.append(int(entry.name))
    return sorted(found)
