"""SHACL core constraints compiled to SPARQL, so Oxigraph checks every focus node of a batch at once.

pyshacl walks focus nodes one by one in Python (5-18 trials/s here). Each constraint our shapes use
is a simple test on the values of one property, which one SPARQL SELECT answers for all focus nodes
together: the query returns ``?this`` (the focus node) and, where SHACL reports one, ``?value``.

Only what ``shapes/`` uses is compiled: class targets, predicate paths, and the components listed in
``VALUE_COMPONENTS`` plus ``sh:minCount``/``sh:maxCount``. Anything else (another target or path
form, another component, a shape without its message) raises ``ShapeCompileError`` when the shapes
are compiled: a constraint is never skipped in silence. The results carry what pyshacl would report
(source shape, constraint component, path, value, severity, the shape's ``sh:message`` as written), so
``tests/test_shacl_compiled.py`` holds the two engines to the same answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import count

import pyoxigraph
import rdflib
from rdflib.collection import Collection
from rdflib.namespace import RDF, RDFS, SH, XSD

SUBCLASS_CLOSURE = f"<{RDF.type}>/<{RDFS.subClassOf}>*"

# Parameters of one component (a component is named after its main parameter); sh:flags goes with sh:pattern.
VALUE_COMPONENTS = {
    SH.datatype: "DatatypeConstraintComponent", SH["class"]: "ClassConstraintComponent",
    SH["in"]: "InConstraintComponent", SH.pattern: "PatternConstraintComponent",
    SH.nodeKind: "NodeKindConstraintComponent", SH["or"]: "OrConstraintComponent",
    SH.minInclusive: "MinInclusiveConstraintComponent", SH.maxInclusive: "MaxInclusiveConstraintComponent",
    SH.minExclusive: "MinExclusiveConstraintComponent", SH.maxExclusive: "MaxExclusiveConstraintComponent",
}
COUNT_COMPONENTS = {SH.minCount: "MinCountConstraintComponent", SH.maxCount: "MaxCountConstraintComponent"}
# Predicates of a shape that are not constraints (sh:sparql runs through kg.validate.sparql_rules).
NOT_CONSTRAINTS = {RDF.type, RDFS.label, RDFS.comment, SH.name, SH.description, SH.message, SH.severity,
                   SH.order, SH.group, SH.targetClass, SH.path, SH.property, SH.sparql, SH.flags}

# A literal has datatype D and a well-formed lexical form when casting its text to D succeeds; pyshacl
# likewise rejects an ill-typed literal ("abc"^^xsd:integer). Only datatypes with a SPARQL cast are listed.
CASTABLE_DATATYPES = {XSD.string, XSD.integer, XSD.decimal, XSD.boolean, XSD.date, XSD.dateTime,
                      XSD.gYearMonth, XSD.gYear, XSD.double, XSD.float}

NODE_KIND_TESTS = {  # node kind -> SPARQL test that the value is of that kind, on "{v}"
    SH.IRI: "isIRI({v})", SH.BlankNode: "isBlank({v})", SH.Literal: "isLiteral({v})",
    SH.BlankNodeOrIRI: "!isLiteral({v})", SH.BlankNodeOrLiteral: "!isIRI({v})", SH.IRIOrLiteral: "!isBlank({v})",
}
RANGE_OPERATORS = {SH.minInclusive: ">=", SH.maxInclusive: "<=", SH.minExclusive: ">", SH.maxExclusive: "<"}


class ShapeCompileError(ValueError):
    """A shape uses SHACL this compiler does not translate; the message names the shape and the construct."""


@dataclass(frozen=True)
class CompiledConstraint:
    """One constraint of one shape, as a query returning its violations: ``?this`` and maybe ``?value``."""

    shape: str            # the shape holding the constraint (IRI, or blank node id), like pyshacl's sh:sourceShape
    component: str        # the constraint component's local name, e.g. "MinCountConstraintComponent"
    path: str | None      # the property shape's path (None for a node shape's own constraint)
    severity: str         # "Violation", "Warning" or "Info"
    message: str          # the shape's sh:message, as written
    query: str


def _sparql(term) -> str:
    """An rdflib term written as SPARQL (N-Triples syntax, escapes done by pyoxigraph)."""
    if isinstance(term, rdflib.URIRef):
        return str(pyoxigraph.NamedNode(str(term)))
    if isinstance(term, rdflib.Literal):
        if term.language:
            return str(pyoxigraph.Literal(str(term), language=term.language))
        datatype = pyoxigraph.NamedNode(str(term.datatype)) if term.datatype else None
        return str(pyoxigraph.Literal(str(term), datatype=datatype))
    raise ShapeCompileError(f"cannot write {term!r} in a query")


class _Compiler:
    def __init__(self, graph: rdflib.Graph):
        self.graph = graph
        self.fresh = count()

    def name(self, shape) -> str:
        return shape.n3(self.graph.namespace_manager) if isinstance(shape, rdflib.URIRef) else f"blank shape {shape}"

    def one(self, shape, prop):
        values = list(self.graph.objects(shape, prop))
        if len(values) != 1:
            raise ShapeCompileError(f"{self.name(shape)}: expected one {prop.n3(self.graph.namespace_manager)}, found {len(values)}")
        return values[0]

    def variable(self) -> str:
        return f"?v{next(self.fresh)}"

    def check_predicates(self, shape) -> None:
        """Refuse any SHACL predicate this compiler does not know, rather than ignore a constraint."""
        for prop in set(self.graph.predicates(shape)):
            if str(prop).startswith(str(SH)) and prop not in NOT_CONSTRAINTS | set(VALUE_COMPONENTS) | set(COUNT_COMPONENTS):
                raise ShapeCompileError(f"{self.name(shape)}: sh:{prop[len(str(SH)):]} is not supported by the SPARQL compiler")

    def path(self, shape) -> str:
        path = self.one(shape, SH.path)
        if not isinstance(path, rdflib.URIRef):
            raise ShapeCompileError(f"{self.name(shape)}: only a single predicate is supported as sh:path, not {path!r}")
        return str(path)

    # -------------------------------------------------------------- one value node

    def holds(self, shape, prop, value: str) -> str:
        """A SPARQL expression, true when the node in ``value`` meets ``shape``'s constraint ``prop``."""
        param = self.one(shape, prop)
        if prop == SH.datatype:
            if param not in CASTABLE_DATATYPES:
                raise ShapeCompileError(f"{self.name(shape)}: sh:datatype {param} is not supported (no SPARQL cast checks it)")
            dt = _sparql(param)
            return f"(isLiteral({value}) && DATATYPE({value}) = {dt} && COALESCE(isLiteral({dt}(STR({value}))), false))"
        if prop == SH["class"]:
            return f"EXISTS {{ {value} {SUBCLASS_CLOSURE} {_sparql(param)} }}"
        if prop == SH["in"]:
            # sameTerm, not "=": "1"^^xsd:integer is not the member "1", and "=" errors on unknown datatypes.
            members = list(Collection(self.graph, param))
            return "(" + (" || ".join(f"sameTerm({value}, {_sparql(m)})" for m in members) or "false") + ")"
        if prop == SH.pattern:
            flags = self.graph.value(shape, SH.flags)
            regex = f"REGEX(STR({value}), {_sparql(rdflib.Literal(str(param)))}" + (
                f", {_sparql(rdflib.Literal(str(flags)))})" if flags is not None else ")")
            return f"(!isBlank({value}) && {regex})"
        if prop == SH.nodeKind:
            if param not in NODE_KIND_TESTS:
                raise ShapeCompileError(f"{self.name(shape)}: unknown sh:nodeKind {param}")
            return NODE_KIND_TESTS[param].format(v=value)
        if prop in RANGE_OPERATORS:
            # A value that does not compare (an IRI, a string against a number) breaks the constraint.
            return f"COALESCE({value} {RANGE_OPERATORS[prop]} {_sparql(param)}, false)"
        if prop == SH["or"]:
            members = list(Collection(self.graph, param))
            if not members:
                raise ShapeCompileError(f"{self.name(shape)}: sh:or with an empty list")
            return "(" + " || ".join(self.conforms(member, value) for member in members) + ")"
        raise ShapeCompileError(f"{self.name(shape)}: {prop} is not supported by the SPARQL compiler")

    def conforms(self, shape, value: str) -> str:
        """A SPARQL expression, true when the node in ``value`` conforms to ``shape`` (a member of sh:or)."""
        self.check_predicates(shape)
        if (shape, SH.property, None) in self.graph:
            raise ShapeCompileError(f"{self.name(shape)}: sh:property inside sh:or is not supported")
        tests = []
        if (shape, SH.path, None) in self.graph:
            predicate = f"<{self.path(shape)}>"
            for prop in COUNT_COMPONENTS:
                if (shape, prop, None) not in self.graph:
                    continue
                limit = self.one(shape, prop).toPython()
                if prop == SH.minCount and limit == 1:
                    tests.append(f"EXISTS {{ {value} {predicate} {self.variable()} }}")
                elif not (prop == SH.minCount and limit == 0):
                    raise ShapeCompileError(f"{self.name(shape)}: inside sh:or only sh:minCount 0 or 1 is supported")
            for prop in VALUE_COMPONENTS:
                if (shape, prop, None) in self.graph:
                    inner = self.variable()
                    tests.append(f"NOT EXISTS {{ {value} {predicate} {inner} FILTER (!({self.holds(shape, prop, inner)})) }}")
        else:
            for prop in COUNT_COMPONENTS:
                if (shape, prop, None) in self.graph:
                    raise ShapeCompileError(f"{self.name(shape)}: {prop} needs sh:path")
            tests.extend(self.holds(shape, prop, value) for prop in VALUE_COMPONENTS if (shape, prop, None) in self.graph)
        return "(" + (" && ".join(tests) or "true") + ")"

    # -------------------------------------------------------------- shapes with targets

    def details(self, shape) -> tuple[str, str]:
        messages = list(self.graph.objects(shape, SH.message))
        if len(messages) != 1:
            raise ShapeCompileError(f"{self.name(shape)}: a constraint needs exactly one sh:message, found {len(messages)}")
        severity = self.graph.value(shape, SH.severity) or SH.Violation
        return str(severity).rsplit("#", 1)[-1], str(messages[0])

    def node_shape(self, shape) -> list[CompiledConstraint]:
        classes = sorted(self.graph.objects(shape, SH.targetClass))
        if any(not isinstance(c, rdflib.URIRef) for c in classes):
            raise ShapeCompileError(f"{self.name(shape)}: sh:targetClass must be an IRI")
        self.check_predicates(shape)
        # Targets first, each once (a node typed with two subclasses matches the path twice): measured, this
        # subquery made Oxigraph find the focus nodes before their values, faster overall than inline.
        targets = " UNION ".join(f"{{ ?this {SUBCLASS_CLOSURE} {_sparql(c)} }}" for c in classes)
        focus = f"{{ SELECT DISTINCT ?this WHERE {{ {targets} }} }}"
        compiled = []
        for prop in COUNT_COMPONENTS:
            if (shape, prop, None) in self.graph:
                raise ShapeCompileError(f"{self.name(shape)}: {prop} on a node shape (it needs sh:path)")
        for prop, component in VALUE_COMPONENTS.items():
            if (shape, prop, None) in self.graph:
                severity, message = self.details(shape)
                query = (f"SELECT DISTINCT ?this ?value WHERE {{ {focus} BIND (?this AS ?value) "
                         f"FILTER (!({self.holds(shape, prop, '?value')})) }}")
                compiled.append(CompiledConstraint(str(shape), component, None, severity, message, query))
        for prop_shape in self.graph.objects(shape, SH.property):
            compiled.extend(self.property_shape(prop_shape, focus))
        return compiled

    def property_shape(self, shape, focus: str) -> list[CompiledConstraint]:
        self.check_predicates(shape)
        if (shape, SH.property, None) in self.graph:
            raise ShapeCompileError(f"{self.name(shape)}: sh:property inside a property shape is not supported")
        path = self.path(shape)
        predicate = f"<{path}>"
        compiled = []
        for prop, component in COUNT_COMPONENTS.items():
            if (shape, prop, None) not in self.graph:
                continue
            limit = self.one(shape, prop)
            if not isinstance(limit.toPython(), int):
                raise ShapeCompileError(f"{self.name(shape)}: {prop} must be an integer, not {limit!r}")
            severity, message = self.details(shape)
            if prop == SH.minCount and limit.toPython() == 1:  # the common case, without counting
                query = f"SELECT DISTINCT ?this WHERE {{ {focus} FILTER NOT EXISTS {{ ?this {predicate} ?value }} }}"
            elif prop == SH.minCount:
                query = (f"SELECT DISTINCT ?this WHERE {{ {focus} OPTIONAL {{ ?this {predicate} ?value }} }} "
                         f"GROUP BY ?this HAVING (COUNT(DISTINCT ?value) < {limit.toPython()})")
            else:
                query = (f"SELECT DISTINCT ?this WHERE {{ {focus} ?this {predicate} ?value }} "
                         f"GROUP BY ?this HAVING (COUNT(DISTINCT ?value) > {limit.toPython()})")
            compiled.append(CompiledConstraint(str(shape), component, path, severity, message, query))
        for prop, component in VALUE_COMPONENTS.items():
            if (shape, prop, None) not in self.graph:
                continue
            severity, message = self.details(shape)
            if prop == SH["class"]:  # an anti-join: several times faster in Oxigraph than FILTER NOT EXISTS per value
                test = f"MINUS {{ ?value {SUBCLASS_CLOSURE} {_sparql(self.one(shape, prop))} }}"
            else:
                test = f"FILTER (!({self.holds(shape, prop, '?value')}))"
            query = f"SELECT DISTINCT ?this ?value WHERE {{ {focus} ?this {predicate} ?value {test} }}"
            compiled.append(CompiledConstraint(str(shape), component, path, severity, message, query))
        return compiled


def compile_shapes(graph: rdflib.Graph) -> tuple[CompiledConstraint, ...]:
    """Every core constraint reachable from a shape with ``sh:targetClass``, one query each."""
    for target in (SH.targetNode, SH.targetSubjectsOf, SH.targetObjectsOf, SH.target):
        for shape in graph.subjects(target, None):
            raise ShapeCompileError(f"{shape}: {target} is not supported (only sh:targetClass)")
    for shape in set(graph.subjects(RDF.type, SH.NodeShape)) & set(graph.subjects(RDF.type, RDFS.Class)):
        raise ShapeCompileError(f"{shape}: implicit class targets are not supported")
    compiler = _Compiler(graph)
    compiled = []
    for shape in sorted(set(graph.subjects(SH.targetClass, None))):
        compiled.extend(compiler.node_shape(shape))
    return tuple(sorted(compiled, key=lambda c: (c.shape, c.component)))
