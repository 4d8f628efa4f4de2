"""The library of named queries: `queries/*.rq`, each with a `#+` YAML header.

A header says what the query answers and which parameters it takes::

    #+ name: trials-by-drug
    #+ summary: Trials that give a drug, by any of its names
    #+ params:
    #+   - {name: drug_name, type: string, default: toripalimab, example: JS001}
    #+ columns: [drug_name, drug, nct, title]

Parameters are typed and validated here, turned into RDF terms, and bound by VALUES blocks that
pyoxigraph's own term writer spells (kg/binding.py): a caller's text is never pasted into the query,
so a parameter carrying SPARQL stays a plain value. Every parameter is also a result column, so each
row says which value it answers.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal as TypingLiteral

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pyoxigraph import Literal, NamedNode

from kg.binding import sub_select_variables
from kg.namespaces import XSD, prefixes

ParamType = TypingLiteral["string", "integer", "decimal", "boolean", "date", "iri", "nct", "enum"]
NAME = re.compile(r"^[a-z][a-z0-9-]*$")
NCT = re.compile(r"^NCT\d{8}$")
# An absolute IRI with nothing that could end the term or the query: no spaces, quotes or angle brackets.
IRI = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:[^\s<>\"{}|\\^`]+$")


class QueryError(ValueError):
    """A named query that cannot be loaded, or parameters that cannot be bound; says which and why."""


class Param(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z_][a-z0-9_]*$")
    type: ParamType
    description: str = ""
    default: Any = None
    example: Any = None
    values: list[str] | None = None  # the allowed values of an enum

    @model_validator(mode="after")
    def _enum_has_values(self) -> "Param":
        if self.type == "enum" and not self.values:
            raise ValueError(f"parameter {self.name!r} is an enum without `values`")
        return self

    @property
    def required(self) -> bool:
        return self.default is None


class NamedQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    summary: str
    description: str = ""
    params: list[Param] = []
    columns: list[str]
    text: str = ""
    path: Path | None = None

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)


def parse_header(text: str, where: str) -> dict:
    lines = []
    for line in text.splitlines():
        if not line.startswith("#+"):
            break
        lines.append(line[3:] if line.startswith("#+ ") else line[2:])
    if not lines:
        raise QueryError(f"{where}: no `#+` header at the top of the file")
    try:
        header = yaml.safe_load("\n".join(lines))
    except yaml.YAMLError as exc:
        raise QueryError(f"{where}: the `#+` header is not valid YAML: {exc}") from None
    if not isinstance(header, dict):
        raise QueryError(f"{where}: the `#+` header must be a YAML mapping")
    return header


def load_query(path: Path) -> NamedQuery:
    text = path.read_text(encoding="utf-8")
    header = parse_header(text, str(path))
    try:
        query = NamedQuery(**header, text=text, path=path)
    except Exception as exc:  # pydantic's message names the field
        raise QueryError(f"{path}: bad header: {exc}") from None
    if query.name != path.stem or not NAME.match(query.name):
        raise QueryError(f"{path}: the header's name {query.name!r} must equal the file name {path.stem!r} "
                         "(lower case, digits and hyphens)")
    in_sub_selects = sub_select_variables(text)
    for param in query.params:
        if param.name in in_sub_selects:
            # A parameter's VALUES block binds the outer query only (kg/binding.py): not a sub-select.
            raise QueryError(f"{path}: parameter {param.name!r} is used inside a sub-select, where it would "
                             "not be bound; use it in the outer query")
    for param in query.params:
        if param.name not in query.columns:
            raise QueryError(f"{path}: parameter {param.name!r} must be projected and listed in `columns` "
                             "(the engine binds only projected variables)")
        for value in (param.default, param.example):
            if value is not None and value != "today":
                try:
                    bind_value(query, param, str(value))  # a header's own default must be valid
                except QueryError as exc:
                    raise QueryError(f"{path}: {exc}") from None
    return query


def load_library(folder: Path) -> dict[str, NamedQuery]:
    """Every `*.rq` in the folder by name; one bad file fails the load with its path in the message."""
    queries = {}
    for path in sorted(folder.glob("*.rq")):
        query = load_query(path)
        queries[query.name] = query
    return queries


def bind_value(query: NamedQuery, param: Param, raw: str):
    """One raw parameter value as an RDF term of the parameter's type, or a QueryError saying why not."""
    def fail(problem: str) -> QueryError:
        return QueryError(f"query {query.name!r}, parameter {param.name!r}: {problem} (got {raw!r})")

    if param.type == "string":
        if len(raw) > 500:
            raise fail("longer than 500 characters")
        if not raw.strip():  # would match nothing, silently: say so instead
            raise fail("empty: give a value, or leave the parameter out for its default")
        return Literal(raw)
    if param.type == "integer":
        if not re.fullmatch(r"[+-]?\d{1,18}", raw.strip()):
            raise fail("not an integer")
        return Literal(str(int(raw)), datatype=NamedNode(XSD + "integer"))
    if param.type == "decimal":
        try:
            value = Decimal(raw.strip())
        except InvalidOperation:
            raise fail("not a decimal number") from None
        if not value.is_finite():
            raise fail("not a finite number")
        return Literal(str(value), datatype=NamedNode(XSD + "decimal"))
    if param.type == "boolean":
        if raw.strip().lower() not in ("true", "false"):
            raise fail("not true or false")
        return Literal(raw.strip().lower(), datatype=NamedNode(XSD + "boolean"))
    if param.type == "date":
        value = dt.date.today().isoformat() if raw == "today" else raw.strip()
        try:
            # Only YYYY-MM-DD: Python also reads 20261215 and 2027W011, which are not xsd:date.
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
                raise ValueError
            value = dt.date.fromisoformat(value).isoformat()
        except ValueError:
            raise fail("not a date as YYYY-MM-DD") from None
        return Literal(value, datatype=NamedNode(XSD + "date"))
    if param.type == "nct":
        value = raw.strip().upper()
        if not NCT.match(value):
            raise fail("not an NCT number (NCT followed by 8 digits)")
        return Literal(value)
    if param.type == "enum":
        if raw not in param.values:
            raise fail("not one of " + ", ".join(param.values))
        return Literal(raw)
    if param.type == "iri":
        return NamedNode(_expand(raw.strip(), fail))
    raise fail(f"unknown parameter type {param.type}")


def _expand(value: str, fail) -> str:
    """A full IRI, or a CURIE with one of the graph's prefixes (ctkg:PD1Inhibitor)."""
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1]
    prefix, _, local = value.partition(":")
    known = prefixes(_base())
    if prefix in known and not local.startswith("//"):
        value = known[prefix] + local
    if not IRI.match(value) or not value.split(":", 1)[0].lower() in ("http", "https", "urn"):
        raise fail("not an http(s) IRI or a CURIE with a known prefix (" + ", ".join(sorted(known)) + ")")
    return value


def _base() -> str:
    from kg.settings import Settings

    return Settings().base_iri


def param_text(value: Any) -> str:
    """A default or example from a query header as a request would give it ("true", not "True")."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def bind(query: NamedQuery, raw: dict[str, str]) -> dict[str, Any]:
    """All the query's parameters as terms: given values, else defaults; unknown names are refused."""
    unknown = sorted(set(raw) - {p.name for p in query.params})
    if unknown:
        known = ", ".join(p.name for p in query.params) or "none"
        raise QueryError(f"query {query.name!r} has no parameter {', '.join(map(repr, unknown))} (parameters: {known})")
    bound = {}
    for param in query.params:
        value = raw.get(param.name)
        if value is None:
            if param.required:
                raise QueryError(f"query {query.name!r}: parameter {param.name!r} is required")
            value = param_text(param.default)
        bound[param.name] = bind_value(query, param, value)
    return bound


@dataclass
class Table:
    columns: list[str]
    rows: list[list[Any]]  # pyoxigraph terms or None
    truncated: bool = False


def run(store, query: NamedQuery, raw: dict[str, str], base_iri: str, limit: int | None = None) -> Table:
    """Run a named query in process over the union of the graphs (the CLI and the tests use this)."""
    from kg.binding import bind_values

    bound = bind(query, raw)
    text = bind_values(query.text, bound) if bound else query.text
    solutions = store.query(text, base_iri=base_iri + "/", use_default_graph_as_union=True)
    columns = [v.value for v in solutions.variables]
    rows = []
    for solution in solutions:
        if limit is not None and len(rows) >= limit:
            return Table(columns, rows, truncated=True)
        rows.append([solution[c] for c in columns])
    return Table(columns, rows)


def render_docs(library: dict[str, NamedQuery], store, base_iri: str, max_rows: int = 12) -> str:
    """docs/queries.md: each query's header, its SPARQL, and its answer on the store given (the shipped data)."""
    def cell(term) -> str:
        if term is None:
            return ""
        text = term.value.replace("|", "\\|").replace("\n", " ")
        return text if len(text) <= 80 else text[:79] + "…"

    out = ["# Named queries", "",
           "Generated by `kg query --docs docs/queries.md` from the `#+` headers in `queries/`; each answer is",
           "the query run with its default parameters on the graph built from the shipped records in `data/`.",
           "Run one with `kg query NAME [--param name=value ...] [--format table|csv|tsv|json]`, or over HTTP",
           "with `GET /queries/NAME?name=value` (`Accept` or `format=json|xml|csv|tsv`). Prefixes are declared",
           "relative to the dataset's base (`PREFIX ctkg: <ontology/>`); the endpoint resolves them.", ""]
    out += [f"- [`{q.name}`](#{q.name}): {q.summary}" for q in library.values()]
    for query in library.values():
        out += ["", f"## {query.name}", "", query.summary + ".", ""]
        if query.description.strip():
            out += [query.description.strip(), ""]
        if query.params:
            out += ["| parameter | type | default | example | description |", "|---|---|---|---|---|"]
            for p in query.params:
                kind = p.type + (f" ({', '.join(p.values)})" if p.values else "")
                out.append(f"| `{p.name}` | {kind} | `{p.default}` | `{p.example}` | {p.description} |")
            out.append("")
        sparql = "\n".join(line for line in query.text.splitlines() if not line.startswith("#+")).strip()
        out += ["```sparql", sparql, "```", ""]
        table = run(store, query, {}, base_iri, limit=max_rows)
        out += [f"Answer on the shipped data ({len(table.rows)}{'+' if table.truncated else ''} rows):", ""]
        out.append("| " + " | ".join(table.columns) + " |")
        out.append("|" + "---|" * len(table.columns))
        out += ["| " + " | ".join(cell(t) for t in row) + " |" for row in table.rows]
    return "\n".join(out) + "\n"
