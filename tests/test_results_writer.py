"""SELECT results as the service writes them (service/results.py): the four W3C formats read back by
independent parsers (rdflib's result parsers, json, csv, ElementTree), and the result cap.

Expected values come from the five pages in data/ (the eligibility fields and titles) or from the
hand-written terms below.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from xml.etree import ElementTree

import httpx
import pytest
import rdflib
from pyoxigraph import BlankNode, Literal, NamedNode, Quad, QueryResultsFormat, Store, parse_query_results
from rdflib.query import Result

from conftest import serving
from kg.queries import load_library
from service import results
from service.engine import Job, answer_from

ROOT = Path(__file__).resolve().parent.parent
BASE = "http://localhost:8000"
XSD = "http://www.w3.org/2001/XMLSchema#"
SRX = "{http://www.w3.org/2005/sparql-results#}"
FORMATS = ("json", "xml", "csv", "tsv")
T000, T001, T002, T003, T004 = "NCT06281886", "NCT05173246", "NCT07248696", "NCT07325539", "NCT07581821"


def read_back(body: bytes, fmt: str) -> tuple[list[str], list[list]]:
    """Variables and rows (rdflib terms, None for unbound) as rdflib reads the document; CSV with the
    csv module (rdflib keeps the `_:` of a CSV blank node in its label), as plain strings."""
    if fmt == "csv":
        table = list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))
        return table[0], [[value or None for value in row] for row in table[1:]]
    parsed = Result.parse(io.BytesIO(body), format=fmt)
    return [str(v) for v in parsed.vars], [list(row) for row in parsed]


def job(fmt: str, limit: int) -> Job:
    return Job(query="", base_iri=BASE + "/", select_format=fmt, graph_format="ttl", limit=limit,
               default_graphs=None, named_graphs=None, union_default=True)


# ---- a real store: the shipped records ---------------------------------------------------------------

def eligibility_answer(store, fmt: str, limit: int = 1000):
    """The named query as a query worker runs it (service/engine.py) and writes its answer."""
    text = load_library(ROOT / "queries")["eligibility-ranges"].text
    return answer_from(store.query(text, base_iri=BASE + "/", use_default_graph_as_union=True), job(fmt, limit))


# (nct, minimum age, maximum age, sex, healthy volunteers) as the pages state them; the TrialFinderData
# page (T004) states no age, sex or volunteer fields.
ELIGIBILITY = [(T001, "18", "75", "ALL", "false"), (T000, "18", "80", "ALL", "false"),
               (T002, "18", "70", "ALL", "false"), (T003, "18", "65", "ALL", "false"),
               (T004, None, None, None, None)]
COLUMNS = ["nct", "minimum_age_years", "maximum_age_years", "sex", "healthy_volunteers"]


@pytest.mark.parametrize("fmt", ["json", "xml", "tsv"])
def test_eligibility_ranges_read_back_with_their_datatypes(store, fmt):
    """The eligibility-ranges answer over the built store, in JSON, XML and TSV, reads back as the pages
    say: ages as xsd:decimal, volunteers as xsd:boolean, sex a plain string, T004 unbound."""
    answer = eligibility_answer(store, fmt)
    assert (answer.kind, answer.truncated, answer.count) == ("select", False, 5)
    assert answer.media_type == results.MEDIA_TYPES[fmt]
    names, rows = read_back(answer.body, fmt)
    assert names == COLUMNS
    expected = [[rdflib.Literal(nct),
                 None if low is None else rdflib.Literal(low, datatype=rdflib.URIRef(XSD + "decimal")),
                 None if high is None else rdflib.Literal(high, datatype=rdflib.URIRef(XSD + "decimal")),
                 None if sex is None else rdflib.Literal(sex),
                 None if healthy is None else rdflib.Literal(healthy, datatype=rdflib.URIRef(XSD + "boolean"))]
                for nct, low, high, sex, healthy in ELIGIBILITY]
    assert rows == expected  # rdflib's == on terms compares lexical form, datatype and language tag


def test_eligibility_ranges_as_csv(store):
    """CSV: a header without '?', values only (no datatype), an empty field for unbound, CRLF lines."""
    body = eligibility_answer(store, "csv").body
    assert body.startswith(b"nct,minimum_age_years,maximum_age_years,sex,healthy_volunteers\r\n")
    assert body.count(b"\r\n") == 6 and body.endswith(b"\r\n")
    names, rows = read_back(body, "csv")
    assert names == COLUMNS
    assert [tuple(r) for r in rows] == ELIGIBILITY


@pytest.mark.parametrize("fmt", FORMATS)
def test_trial_iris_and_titles_with_commas(store, fmt):
    """IRIs from the store, and titles holding commas and colons (quoted in CSV), in every format."""
    query = ("PREFIX ctkg: <http://localhost:8000/ontology/> PREFIX schema: <http://schema.org/>\n"
             "SELECT ?trial ?title { ?trial ctkg:nctId ?nct ; schema:name ?title } ORDER BY ?nct")
    answer = answer_from(store.query(query, use_default_graph_as_union=True), job(fmt, 1000))
    names, rows = read_back(answer.body, fmt)
    assert names == ["trial", "title"] and answer.count == 5
    assert [str(r[0]) for r in rows] == [f"{BASE}/trial/{n}" for n in (T001, T000, T002, T003, T004)]
    if fmt != "csv":
        assert all(isinstance(r[0], rdflib.URIRef) for r in rows)
    assert str(rows[2][1]) == ("Tislelizumab Plus Chemotherapy With Response-Adapted Radiotherapy for de Novo "
                               "Metastatic Nasopharyngeal Carcinoma: A Prospective, Phase II Trial")


# ---- hand-written terms: every kind of term and every character that needs escaping --------------------

TRICKY_TEXT = 'says "no",\nthen\ttabs\r\nand a back\\slash; café 東京 😀 },{ <result> &amp;'
OBJECTS = [  # (subject suffix, object): one row each, in this order
    ("01", NamedNode("http://example.org/drug/m%C3%A9thotrexate?x=1&y=2#frag")),
    ("02", BlankNode("arm1")),
    ("03", Literal("Hôpital Saint-Louis", language="fr")),
    ("04", Literal("2024-02-29", datatype=NamedNode(XSD + "date"))),
    ("05", Literal("42", datatype=NamedNode(XSD + "integer"))),
    ("06", Literal("0.5", datatype=NamedNode(XSD + "decimal"))),
    ("07", Literal("true", datatype=NamedNode(XSD + "boolean"))),
    ("08", Literal("12 mg/m2", datatype=NamedNode("http://example.org/dose"))),
    ("09", Literal(TRICKY_TEXT)),
    ("10", Literal("")),
    ("11", BlankNode("arm1")),  # the same blank node again: the same label in one answer
]


@pytest.fixture(scope="module")
def tricky():
    store = Store()
    for suffix, term in OBJECTS:
        store.add(Quad(NamedNode(f"http://example.org/s{suffix}"), NamedNode("http://example.org/p"), term))
    # ?none is never bound: an unbound column in every row.
    return store, "SELECT ?s ?o ?none { ?s <http://example.org/p> ?o OPTIONAL { ?s <http://example.org/q> ?none } } ORDER BY ?s"


def expected_rdflib(term):
    if isinstance(term, NamedNode):
        return rdflib.URIRef(term.value)
    if term.language:
        return rdflib.Literal(term.value, lang=term.language)
    return rdflib.Literal(term.value, datatype=None if term.datatype.value == XSD + "string" else term.datatype.value)


@pytest.mark.parametrize("fmt", ["json", "xml", "tsv"])
def test_every_kind_of_term_reads_back_exactly(tricky, fmt):
    """IRIs, blank nodes (one label for one node), language-tagged, typed and plain literals with quotes,
    line breaks, tabs, CR, backslash and non-ASCII text read back term for term, unbound as unbound."""
    store, query = tricky
    body, truncated, count = results.write_capped(store.query(query), fmt, 100)
    assert (truncated, count) == (False, len(OBJECTS))
    names, rows = read_back(body, fmt)
    assert names == ["s", "o", "none"]
    assert [str(r[0]) for r in rows] == [f"http://example.org/s{suffix}" for suffix, _ in OBJECTS]
    assert all(r[2] is None for r in rows)
    for (suffix, term), row in zip(OBJECTS, rows):
        if isinstance(term, BlankNode):
            assert isinstance(row[1], rdflib.BNode)
        else:  # rdflib's == on terms compares lexical form, datatype and language tag
            assert row[1] == expected_rdflib(term), suffix
    assert rows[1][1] == rows[10][1]  # the one blank node keeps one label


def test_json_terms_follow_the_spec(tricky):
    """SPARQL 1.1 JSON: "uri" / "bnode" / "literal", "xml:lang" for a language tag, "datatype" for other
    types, and no key at all for an unbound variable."""
    store, query = tricky
    document = json.loads(results.write_capped(store.query(query), "json", 100)[0])
    assert document["head"] == {"vars": ["s", "o", "none"]}
    objects = [b["o"] for b in document["results"]["bindings"]]
    assert objects[0] == {"type": "uri", "value": "http://example.org/drug/m%C3%A9thotrexate?x=1&y=2#frag"}
    assert objects[1]["type"] == "bnode" and objects[1] == objects[10]
    assert objects[2] == {"type": "literal", "value": "Hôpital Saint-Louis", "xml:lang": "fr"}
    assert objects[3] == {"type": "literal", "value": "2024-02-29", "datatype": XSD + "date"}
    # A plain string: a simple literal (RDF 1.1: the same term as one typed xsd:string).
    assert objects[8]["value"] == TRICKY_TEXT and objects[8].get("datatype", XSD + "string") == XSD + "string"
    assert all("none" not in b for b in document["results"]["bindings"])


def test_xml_keeps_carriage_returns_and_escapes_markup(tricky):
    """XML: a CR inside a literal survives an XML parser (written as a character reference), and
    markup characters in values are escaped."""
    store, query = tricky
    body = results.write_capped(store.query(query), "xml", 100)[0]
    root = ElementTree.fromstring(body)
    assert [v.get("name") for v in root.iter(SRX + "variable")] == ["s", "o", "none"]
    literals = {b.find(SRX + "literal").text or "" for b in root.iter(SRX + "binding") if b.find(SRX + "literal") is not None}
    assert TRICKY_TEXT in literals
    french = next(e for e in root.iter(SRX + "literal") if e.text == "Hôpital Saint-Louis")
    assert french.get("{http://www.w3.org/XML/1998/namespace}lang") == "fr"
    assert len(list(root.iter(SRX + "result"))) == len(OBJECTS)


def test_csv_writes_values_and_blank_node_labels(tricky):
    """CSV (SPARQL 1.1 CSV, 'CSV terms'): IRIs and literal values bare (no datatype, no language),
    blank nodes as _:label, quoting by RFC 4180 for commas, quotes and line breaks."""
    store, query = tricky
    names, rows = read_back(results.write_capped(store.query(query), "csv", 100)[0], "csv")
    values = [r[1] for r in rows]
    assert values[0] == "http://example.org/drug/m%C3%A9thotrexate?x=1&y=2#frag"
    assert values[1].startswith("_:") and values[1] == values[10]
    assert values[2:9] == ["Hôpital Saint-Louis", "2024-02-29", "42", "0.5", "true", "12 mg/m2", TRICKY_TEXT]
    assert values[9] is None  # "" and unbound are one thing in CSV
    assert all(r[2] is None for r in rows)


def test_tsv_header_and_escapes(tricky):
    """TSV: '?'-prefixed header, one line per row (line breaks and tabs inside terms are escaped)."""
    store, query = tricky
    body = results.write_capped(store.query(query), "tsv", 100)[0]
    lines = body.decode("utf-8").split("\n")
    assert lines[0] == "?s\t?o\t?none" and lines[-1] == ""
    assert len(lines) == 1 + len(OBJECTS) + 1
    assert all(line.count("\t") == 2 for line in lines[:-1])
    assert '"Hôpital Saint-Louis"@fr' in lines[3]


def test_the_cli_writer_gives_the_same_bytes(tricky):
    """`select` (rows already taken, as `kg query --format` has them) writes what the service writes."""
    store, query = tricky
    solutions = store.query(query)
    variables = [v.value for v in solutions.variables]
    rows = [[solution[v] for v in variables] for solution in solutions]
    for fmt in FORMATS:
        assert results.select(variables, rows, fmt) == results.write_capped(store.query(query), fmt, 100)[0], fmt


def test_a_remote_answer_is_rewritten_too():
    """A result parsed from a remote endpoint's JSON (kg.remote) goes through the same writer."""
    remote = json.dumps({"head": {"vars": ["drug", "label"]}, "results": {"bindings": [
        {"drug": {"type": "uri", "value": "http://example.org/drug/toripalimab"},
         "label": {"type": "literal", "value": "特瑞普利单抗", "xml:lang": "zh"}},
        {"drug": {"type": "uri", "value": "http://example.org/drug/apatinib"}}]}}).encode()
    answer = answer_from(parse_query_results(remote, QueryResultsFormat.JSON), job("tsv", 1))
    assert (answer.truncated, answer.count) == (True, 1)
    assert answer.body.decode("utf-8") == '?drug\t?label\n<http://example.org/drug/toripalimab>\t"特瑞普利单抗"@zh\n'


# ---- the cap ------------------------------------------------------------------------------------------

ROWS = 5000  # ~80 bytes a row in TSV: the writer hands over ~8 KiB at a time, so the cap falls mid-chunk


@pytest.fixture(scope="module")
def many():
    store = Store()
    for i in range(ROWS):
        # Each value holds a line break and "<result>": neither may be taken for a row boundary.
        store.add(Quad(NamedNode(f"http://example.org/row/{i:05d}"), NamedNode("http://example.org/p"),
                       Literal(f"row {i}\nsecond line <result> }},{{")))
    return store, "SELECT ?row ?text { ?row <http://example.org/p> ?text } ORDER BY ?row"


@pytest.mark.parametrize("limit", [1, 2, 99, 1234, ROWS - 1, ROWS, ROWS + 1])
@pytest.mark.parametrize("fmt", FORMATS)
def test_the_cap_keeps_exactly_the_first_rows(many, fmt, limit):
    """With a cap, exactly the first `limit` rows (in the query's order) are written, `count` is how many,
    and `truncated` says whether more existed."""
    store, query = many
    answer = answer_from(store.query(query), job(fmt, limit))
    kept = min(limit, ROWS)
    assert (answer.truncated, answer.count) == (limit < ROWS, kept)
    names, rows = read_back(answer.body, fmt)
    assert names == ["row", "text"] and len(rows) == kept
    assert [str(r[0]) for r in (rows[0], rows[-1])] == ["http://example.org/row/00000",
                                                        f"http://example.org/row/{kept - 1:05d}"]
    assert str(rows[-1][1]) == f"row {kept - 1}\nsecond line <result> }},{{"


@pytest.mark.parametrize("fmt", FORMATS)
def test_no_rows_and_rows_without_variables(fmt):
    """No solution at all, and one solution of no variables (SELECT * {}), are counted right."""
    empty = answer_from(Store().query("SELECT ?x { FILTER(false) }"), job(fmt, 3))
    assert (empty.truncated, empty.count) == (False, 0)
    assert read_back(empty.body, fmt) == (["x"], [])
    unit = answer_from(Store().query("SELECT * {}"), job(fmt, 1))
    assert (unit.truncated, unit.count) == (False, 1)


def test_the_service_caps_and_says_so(built):
    """Over HTTP with CTKG_RESULT_LIMIT=3: five trials give three rows in every format and the
    X-Result-Truncated header; a query of exactly three rows is not marked."""
    settings, _ = built
    prefix = "PREFIX ctkg: <http://localhost:8000/ontology/>\n"
    all_trials = prefix + "SELECT ?nct { ?t ctkg:nctId ?nct } ORDER BY ?nct"
    three = prefix + "SELECT ?nct { ?t ctkg:nctId ?nct FILTER(?nct < 'NCT07300000') } ORDER BY ?nct"
    with serving(settings.store_dir, CTKG_RESULT_LIMIT="3", CTKG_CACHE_ENTRIES="0") as url:
        for fmt in FORMATS:
            response = httpx.get(url + "/sparql", params={"query": all_trials, "format": fmt})
            assert response.status_code == 200
            assert response.headers["x-result-truncated"] == "true" and response.headers["x-result-limit"] == "3"
            names, rows = read_back(response.content, fmt)
            assert [str(r[0]) for r in rows] == [T001, T000, T002]
        exact = httpx.get(url + "/sparql", params={"query": three, "format": "json"})
        assert "x-result-truncated" not in exact.headers
        assert [b["nct"]["value"] for b in exact.json()["results"]["bindings"]] == [T001, T000, T002]
