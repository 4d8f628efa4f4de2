"""Parameters bound by VALUES blocks (kg/binding.py): the cases a review found, on hand-written data."""

import pyoxigraph as ox
import pytest

from kg.binding import bind_values

E = "http://e.org/"
PREFIX = f"PREFIX : <{E}> "
DRUG = ox.NamedNode(E + "c")


@pytest.fixture(scope="module")
def store():
    store = ox.Store()
    for s, p, o in [("a", "p", "c"), ("b", "p", "d"), ("c", "q", "x"), ("a", "values", "z")]:
        store.add(ox.Quad(ox.NamedNode(E + s), ox.NamedNode(E + p), ox.NamedNode(E + o)))
    return store


def _rows(store, text: str, column: str) -> list[str]:
    return sorted(row[column].value for row in store.query(text))


def test_a_name_ending_in_values_is_not_the_values_keyword(store):
    """`:values` is a property; the group after it still gets its block, so the FILTER sees ?drug."""
    query = PREFIX + "SELECT ?drug ?s WHERE { ?s :values ?o . { ?s :p ?x FILTER(?x = ?drug) } }"
    assert _rows(store, bind_values(query, {"drug": DRUG}), "s") == [E + "a"]  # only :a :p :c


def test_nothing_is_bound_inside_a_sub_select(store):
    """The sub-select counts all four triples (?drug is its own variable there), once per :p triple."""
    query = PREFIX + "SELECT ?drug ?n WHERE { ?z :p ?w { SELECT (COUNT(*) AS ?n) WHERE { ?drug ?p ?o } } }"
    assert _rows(store, bind_values(query, {"drug": DRUG}), "n") == ["4", "4"]


def test_a_where_group_that_is_a_sub_select_or_a_bound_variable_is_refused_clearly():
    with pytest.raises(ValueError, match="WHERE group is a sub-select"):
        bind_values(PREFIX + "SELECT ?drug WHERE { SELECT ?drug WHERE { ?drug :q ?o } }", {"drug": DRUG})
    with pytest.raises(ValueError, match=r"assigned in the query \(AS \?drug\)"):
        bind_values(PREFIX + "SELECT ?drug WHERE { ?s :p ?o BIND(?o AS ?drug) }", {"drug": DRUG})
    with pytest.raises(ValueError, match=r"assigned in the query"):
        bind_values(PREFIX + "SELECT (?o AS ?drug) WHERE { ?s :p ?o }", {"drug": DRUG})
