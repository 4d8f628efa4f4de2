"""Reading SPARQL text without running it (kg.sparql_text): dataset clauses outside strings and comments,
and rdflib's parser used from several threads at once."""

from __future__ import annotations

import subprocess
import sys

import pytest

from kg.sparql_text import code_only, names_its_dataset


@pytest.mark.parametrize("query,names", [
    ("SELECT * FROM <http://example.org/g> { ?s ?p ?o }", True),
    ("select * from named <g> { graph ?g { ?s ?p ?o } }", True),
    ("SELECT * FROM # the graph of one trial\n <g> { ?s ?p ?o }", True),
    ("SELECT * FROM é:g { ?s ?p ?o }", True),
    ("SELECT * FROM :g { ?s ?p ?o }", True),
    ("# rows from <x>\nSELECT * { ?s ?p ?o }", False),
    ('SELECT ("from <x>" AS ?a) { }', False),
    ("SELECT * { ?s ?p '''a \"from <x>\" b''' }", False),
    ("SELECT ?from { ?s ?p ?from }", False),
    ("PREFIX from: <http://example.org/> SELECT * { ?s from:p ?o }", False),
    ("SELECT * { ?s ex:from <x> }", False),
    ("SELECT * { ?s <http://example.org/#from> ?o }", False),
])
def test_dataset_clauses_are_told_from_the_same_words_elsewhere(query, names):
    assert names_its_dataset(query) is names


def test_strings_and_comments_are_blanked_and_iris_kept():
    text = 'SELECT ("a # b" AS ?x) { ?s <http://x/#y> ?o } # done\nLIMIT 1'
    blanked = code_only(text)
    assert len(blanked) == len(text) and "<http://x/#y>" in blanked
    assert "a # b" not in blanked and "done" not in blanked and blanked.endswith("\nLIMIT 1")


def test_rdflib_parses_from_many_threads_at_once_in_a_fresh_process():
    """rdflib's first parses in a process, run together, left it failing later parses (and a failed parse
    refuses a SERVICE check or an update); kg.sparql_text runs them one at a time."""
    script = """
import threading
from kg.sparql_text import parse_query, parse_update
failures = []
def parse():
    try:
        parse_query("SELECT * FROM <http://example.org/g> { ?s ?p ?o }")
        parse_update("INSERT DATA { <http://example.org/s> <http://example.org/p> 1 }")
    except Exception as exc:
        failures.append(repr(exc))
threads = [threading.Thread(target=parse) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
parse()
print(len(failures))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0"
