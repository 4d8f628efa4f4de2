"""Named-query parameters bound by VALUES blocks written into the query text.

pyoxigraph's ``substitutions`` bind a variable only when evaluation starts: the query planner does not
know the value, so it may start from the wrong end (a class-hierarchy path from every typed resource
took seconds where the same query with a VALUES block took 0.2 s at 10k trials). A VALUES block is
seen by the planner, and it is what a remote SPARQL server understands too, so the embedded store,
the remote engine, the CLI and the query page all run the same text.
"""

from __future__ import annotations

import re
from typing import Iterator, Mapping

from pyoxigraph import Literal, NamedNode

VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
IRIREF = re.compile(r'<[^<>"{}|^`\\\x00-\x20]*>')
QUERY_FORMS = {"SELECT", "CONSTRUCT", "ASK", "DESCRIBE"}
VARIABLE = re.compile(r"[?$][\w\u00b7\u0300-\u036f\u203f-\u2040]*")
WORD = re.compile(r"[\w.:\-]*")


def _tokens(query: str) -> Iterator[tuple[str, int, str]]:
    """The query's tokens that matter for finding its groups: (kind, offset, text); kind is "word",
    "var" (text without its ? or $), or a brace or parenthesis.

    Strings, IRIs and comments are skipped whole, so a brace or keyword inside them is never taken
    for one of the query's own.
    """
    i, n = 0, len(query)
    while i < n:
        c = query[i]
        if c == "#":
            end = query.find("\n", i)
            i = n if end < 0 else end + 1
        elif c in "\"'":
            quote = c * 3 if query.startswith(c * 3, i) else c
            j = i + len(quote)
            while j < n and not query.startswith(quote, j):
                j += 2 if query[j] == "\\" else 1
            i = j + len(quote)
        elif c == "<" and (match := IRIREF.match(query, i)):
            i = match.end()
        elif c in "?$":
            match = VARIABLE.match(query, i)
            yield "var", i, match.group(0)[1:]
            i = match.end()
        elif c.isalpha() or c in "_:":  # ":values" (empty prefix) is a name, not the VALUES keyword
            match = WORD.match(query, i)
            yield "word", i, match.group(0)
            i = match.end()
        elif c in "{}()":
            yield c, i, c
            i += 1
        else:
            i += 1


def where_group_start(query: str) -> int:
    """The offset of the ``{`` that opens the query's outermost WHERE group."""
    form = None
    depth = 0
    tokens = _tokens(query)
    previous = ""
    for kind, offset, text in tokens:
        if kind == "word":
            if form is None and text.upper() in QUERY_FORMS:
                form = text.upper()
            previous = text.upper()
        elif kind == "(":
            depth += 1
        elif kind == ")":
            depth -= 1
        elif kind == "{" and depth == 0 and form is not None:
            if form == "CONSTRUCT" and previous == "CONSTRUCT":  # the template: skip it whole
                nesting = 1
                for inner_kind, _, _ in tokens:
                    nesting += {"{": 1, "}": -1}.get(inner_kind, 0)
                    if nesting == 0:
                        break
                form, previous = "CONSTRUCT-BODY", "}"
                continue
            if form == "CONSTRUCT" and previous == "WHERE":
                raise ValueError("a CONSTRUCT WHERE { } query cannot take bound parameters; write its template out")
            return offset
        elif kind != "var":
            previous = text
    raise ValueError("the query has no WHERE group to bind parameters in")


def sub_select_variables(query: str) -> set[str]:
    """The names of the variables used inside sub-selects (their projection, their groups), where a
    VALUES block in an enclosing group does not bind them."""
    inside: list[bool] = []  # per open brace: whether it is, or is within, a sub-select
    found: set[str] = set()
    for kind, _, text in _tokens(query):
        if kind == "{":
            inside.append(bool(inside) and inside[-1])
        elif kind == "}" and inside:
            inside.pop()
        elif kind == "word" and text.upper() == "SELECT" and inside:
            inside[-1] = True
        elif kind == "var" and inside and inside[-1]:
            found.add(text)
    return found


def groups_using(query: str, names: set[str], where: int) -> list[int]:
    """Offsets of the ``{`` of every group inside the WHERE group (from offset ``where``) that uses
    one of the variables ``names``, VALUES data blocks and sub-selects left out.

    A VALUES block at the start of the outer group binds a variable there only: a nested group is
    evaluated on its own and joined afterwards, so a FILTER inside it would see the variable unbound.
    Binding it again at the start of each group that uses it gives the same answers as substituting
    the value everywhere, which is what pyoxigraph's ``substitutions`` do.
    """
    # (offset of the "{", whether a parameter may be bound in it, whether it is inside a sub-select)
    stack: list[tuple[int, bool, bool]] = []
    using: set[int] = set()
    after_values = False
    previous_kind = ""
    for kind, offset, text in _tokens(query[where:]):
        offset += where
        if kind == "{":
            inside_sub_select = bool(stack) and stack[-1][2]
            stack.append((offset, not after_values and not inside_sub_select, inside_sub_select))
        elif kind == "}":
            stack.pop()
            if not stack:
                break
        elif kind == "var" and text in names:
            using.update(at for at, bindable, _ in stack if bindable)
        elif kind == "word" and text.upper() == "SELECT" and stack:
            if len(stack) == 1 and previous_kind == "{":
                raise ValueError("the WHERE group is a sub-select; put it in braces to bind parameters")
            at, _, _ = stack[-1]  # a sub-select and everything inside it: parameters are not bound there
            stack[-1] = (at, False, True)
        after_values = (kind == "word" and text.upper() == "VALUES") or (after_values and kind in ("var", "(", ")"))
        previous_kind = kind
    return sorted(using - {where}, reverse=True)


def bind_values(query: str, substitutions: Mapping[str, object], note: str = "") -> str:
    """Bind variables to terms by a VALUES block at the start of the outermost WHERE group, and of
    each group inside it that uses one of them (see ``groups_using``).

    The terms are written by pyoxigraph (never pasted from caller text), so a value cannot change
    the query's structure. Joined first in each group, the block gives each bound variable its one
    value as pyoxigraph's ``substitutions`` do for the variables a named query projects. ``note``
    (a SPARQL comment) ends each VALUES line.
    """
    names, terms = [], []
    for name, term in substitutions.items():
        if not VARIABLE_NAME.match(name):
            raise ValueError(f"{name!r} is not a SPARQL variable name")
        if not isinstance(term, (NamedNode, Literal)):
            raise ValueError(f"?{name} can only be bound to an IRI or a literal")
        names.append(f"?{name}")
        terms.append(str(term))
    if not names:
        return query
    previous = ""
    for kind, _, text in _tokens(query):
        if kind == "var" and text in substitutions and previous == "AS":
            raise ValueError(f"?{text} is assigned in the query (AS ?{text}); it cannot also be bound as a parameter")
        previous = text.upper() if kind == "word" else kind
    at = where_group_start(query)
    block = f"\n  VALUES ({' '.join(names)}) {{ ({' '.join(terms)}) }}{note}\n"
    for inner in groups_using(query, set(substitutions), at):  # from the last, so offsets stay valid
        query = query[:inner + 1] + block + query[inner + 1:]
    return query[:at + 1] + block + query[at + 1:]
