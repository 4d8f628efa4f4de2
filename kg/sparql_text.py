"""Reading SPARQL text without running it: its keywords outside strings and comments, and rdflib's parser
used safely from several threads.

The endpoint needs two facts about a query before it runs: whether it names its own dataset (FROM, FROM
NAMED) and whether it has a SERVICE clause. A keyword search on the raw text is fooled by the word in a
string or a comment; blanking those first leaves only the query's own words. rdflib's parser is needed
only where a keyword may still mean something else, and it is not safe to use from several threads at
once: its first uses in a process, run together, leave it failing every later parse of some constructs.
"""

from __future__ import annotations

import re
import threading

# String literals (long forms first) and comments, and IRIs, which may hold '#' and quotes' neighbours
# but are kept: an IRI after FROM is what makes it a dataset clause.
_SKIPPED = re.compile(r'''
    (?P<iri><[^<>"{}|^`\\\s]*>)
  | (?P<text>"""(?:[^"\\]|\\.|"(?!""))*"""
           | \'\'\'(?:[^'\\]|\\.|'(?!\'\'))*\'\'\'
           | "(?:[^"\\\n]|\\.)*"
           | '(?:[^'\\\n]|\\.)*'
           | \#[^\n]*)
''', re.X | re.S)

# FROM (or FROM NAMED) then an IRI or a prefixed name: a dataset clause. Not a variable (?from), nor a
# prefixed name's local part (ex:from), nor a prefix (from:x).
DATASET_CLAUSE = re.compile(r"(?<![\w:?$])FROM\s+(?:NAMED\s+)?(?:<|(?:[^\W\d][\w.-]*)?:)", re.I)

_parsing = threading.Lock()


def code_only(text: str) -> str:
    """The query with every string literal and comment blanked out (same length, line breaks kept)."""
    def blank(match: re.Match) -> str:
        if match.group("iri"):
            return match.group(0)
        return re.sub(r"[^\n]", " ", match.group(0))
    return _SKIPPED.sub(blank, text)


def names_its_dataset(query: str) -> bool:
    """Whether the query has a dataset clause (FROM, FROM NAMED): it is then run on the dataset it names,
    not on the union of all graphs (SPARQL 1.1 Query, 13.2). FROM appears nowhere else in a query."""
    return DATASET_CLAUSE.search(code_only(query)) is not None


def parse_query(text: str):
    """rdflib's parse tree of a query, one parse at a time in this process."""
    from rdflib.plugins.sparql.parser import parseQuery

    with _parsing:
        return parseQuery(text)


def parse_update(text: str):
    """rdflib's parse tree of an update, one parse at a time in this process."""
    from rdflib.plugins.sparql.parser import parseUpdate

    with _parsing:
        return parseUpdate(text)
