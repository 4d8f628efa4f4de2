"""A SPARQL 1.1 endpoint used instead of the embedded store (Oxigraph server, Virtuoso, GraphDB, QLever...).

Reading goes through the SPARQL 1.1 Protocol with SPARQLWrapper; answers are parsed by pyoxigraph,
so the rest of the code sees the same terms, solutions and triples as with the embedded store.
``RemoteStore`` offers the part of ``pyoxigraph.Store`` the service uses (``query``,
``quads_for_pattern``, ``named_graphs``, ``contains_named_graph``).

Writing replaces whole named graphs, in requests of at most ``remote_chunk_quads`` quads: each
request first drops the graphs it brings (SPARQL Update ``DROP SILENT GRAPH``), then adds their
quads, either as one N-Quads POST to the Graph Store Protocol URL (fast bulk parsing on the
server) or, with only an update URL, in the same update request as ``INSERT DATA``.
``load_build`` is what ``kg build`` does with a remote store; see docs/remote-store.md for what a
reader sees while it runs (there is no atomic swap as with the local store's link).

The remote's default graph must be the union of its named graphs (Oxigraph:
``--union-default-graph``; Virtuoso, GraphDB and QLever do this by default); this is checked.
"""

from __future__ import annotations

import ast
import base64
import itertools
import re
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from typing import TYPE_CHECKING, Iterable, Iterator, Mapping

import pyoxigraph
from pyoxigraph import BlankNode, DefaultGraph, NamedNode, Quad, QueryResultsFormat, RdfFormat, Variable

from kg.binding import bind_values

if TYPE_CHECKING:
    from kg.build import BuildReport
    from kg.mapping import Mapper
    from kg.settings import Settings

# What we ask for: solutions as JSON, graphs as N-Triples (both parse as a stream).
ACCEPT = "application/sparql-results+json, application/n-triples;q=0.9, text/turtle;q=0.8"
OWL_CLASS = "http://www.w3.org/2002/07/owl#Class"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
BODY_HEAD = 300  # characters of an error body quoted in our own error message


class RemoteError(RuntimeError):
    """The remote endpoint could not be reached or refused a request; says which endpoint and why."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


def shown_url(url: str) -> str:
    """A URL fit for messages: no user:password part, no values of token- or password-like parameters."""
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    query = urllib.parse.urlencode([(k, "***" if re.search(r"token|pass|key|secret", k, re.I) else v)
                                    for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)])
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _body_head(body: bytes | str | None) -> str:
    if not body:
        return "(empty body)"
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = " ".join(text.split())
    return text[:BODY_HEAD] + ("..." if len(text) > BODY_HEAD else "")


def _sparqlwrapper_error(url: str, exc: Exception) -> RemoteError:
    """SPARQLWrapper turns HTTP errors into its own exceptions, with the body in the message."""
    from SPARQLWrapper import SPARQLExceptions as E

    statuses = {E.QueryBadFormed: 400, E.Unauthorized: 401, E.EndPointNotFound: 404, E.URITooLong: 414,
                E.EndPointInternalError: 500}
    status = next((code for cls, code in statuses.items() if isinstance(exc, cls)), None)
    body = None
    text = str(exc)
    if "Response:\n" in text:
        raw = text.split("Response:\n", 1)[1]
        try:
            body = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            body = raw
    return RemoteError(f"the SPARQL endpoint {shown_url(url)} answered HTTP {status or '?'}: {_body_head(body)}",
                       status)


def _is_timeout(exc: BaseException) -> bool:
    reason = getattr(exc, "reason", exc)
    return isinstance(reason, TimeoutError) or "timed out" in str(reason)


class RemoteStore:
    """One remote SPARQL 1.1 dataset: its query URL, and for writing its update and Graph Store URLs."""

    def __init__(self, settings: Settings):
        if not settings.remote_query_url:
            raise RemoteError("no remote store is configured (CTKG_REMOTE_QUERY_URL)")
        self.query_url = settings.remote_query_url
        self.update_url = settings.remote_update_url
        self.store_url = settings.remote_store_url
        self.chunk_quads = settings.remote_chunk_quads
        self.timeout = settings.query_timeout_s
        self.load_timeout = settings.remote_load_timeout_s
        self._user = settings.remote_user
        self._password = settings.remote_password.get_secret_value() if settings.remote_password else None
        self._token = settings.remote_token.get_secret_value() if settings.remote_token else None
        self._auth = settings.remote_auth or ("bearer" if self._token else "basic" if self._user else None)
        if self._auth == "bearer" and not self._token:
            raise RemoteError("CTKG_REMOTE_AUTH=bearer needs CTKG_REMOTE_TOKEN")
        if self._auth in ("basic", "digest") and not (self._user and self._password is not None):
            raise RemoteError(f"CTKG_REMOTE_AUTH={self._auth} needs CTKG_REMOTE_USER and CTKG_REMOTE_PASSWORD")
        # Our own requests (updates, Graph Store Protocol) go through one opener; digest needs a handler.
        handlers = []
        if self._auth == "digest":
            passwords = urllib.request.HTTPPasswordMgrWithDefaultRealm()
            for url in filter(None, (self.update_url, self.store_url, self.query_url)):
                passwords.add_password(None, url, self._user, self._password)
            handlers.append(urllib.request.HTTPDigestAuthHandler(passwords))
        self._opener = urllib.request.build_opener(*handlers)

    def __repr__(self) -> str:  # never the credentials
        return f"RemoteStore(query_url={shown_url(self.query_url)!r})"

    # ---- reading -------------------------------------------------------------------------------

    def open_query(self, text: str, *, default_graphs: Iterable[str] = (), named_graphs: Iterable[str] = (),
                   timeout: float | None = None, accept: str = ACCEPT):
        """Send a query through the SPARQL Protocol; the open HTTP response and its media type.

        The caller reads (and closes) the response, so large answers can be read as a stream.
        """
        from SPARQLWrapper import DIGEST, POST, POSTDIRECTLY, SPARQLWrapper
        from SPARQLWrapper.SPARQLExceptions import SPARQLWrapperException

        client = SPARQLWrapper(self.query_url)
        client.setOnlyConneg(True)  # no format=/output= parameters: the Accept header says it
        client.setMethod(POST)
        client.setRequestMethod(POSTDIRECTLY)
        client.setQuery(text)
        if client.isSparqlUpdateRequest():
            # Never send something that reads as an update to an endpoint that might run it.
            raise RemoteError("refusing to send an update as a query")
        client.addCustomHttpHeader("Accept", accept)
        for graph in default_graphs:
            client.addDefaultGraph(graph)
        for graph in named_graphs:
            client.addNamedGraph(graph)
        client.setTimeout(timeout or self.timeout)
        if self._auth == "bearer":
            client.addCustomHttpHeader("Authorization", f"Bearer {self._token}")
        elif self._auth in ("basic", "digest"):
            if self._auth == "digest":
                client.setHTTPAuth(DIGEST)
            client.setCredentials(self._user, self._password)
        try:
            result = client.query()
        except SPARQLWrapperException as exc:
            raise _sparqlwrapper_error(self.query_url, exc) from None
        except urllib.error.HTTPError as exc:
            raise RemoteError(f"the SPARQL endpoint {shown_url(self.query_url)} answered HTTP {exc.code}: "
                              f"{_body_head(exc.read())}", exc.code) from None
        except (urllib.error.URLError, OSError) as exc:
            if _is_timeout(exc):
                raise TimeoutError(f"the SPARQL endpoint {shown_url(self.query_url)} did not answer within "
                                   f"{timeout or self.timeout:g} s") from None
            raise RemoteError(f"cannot reach the SPARQL endpoint {shown_url(self.query_url)}: "
                              f"{getattr(exc, 'reason', exc)}") from None
        media_type = (result.response.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        return result.response, media_type

    def parse_answer(self, stream, media_type: str):
        """Solutions or a boolean (SELECT/ASK) or an iterator of triples (CONSTRUCT/DESCRIBE), as pyoxigraph gives."""
        results_format = QueryResultsFormat.from_media_type(media_type)
        if results_format is not None:
            return pyoxigraph.parse_query_results(stream, results_format)
        if media_type == "text/plain":  # some engines label N-Triples so
            media_type = "application/n-triples"
        rdf_format = RdfFormat.from_media_type(media_type)
        if rdf_format is None:
            raise RemoteError(f"the SPARQL endpoint {shown_url(self.query_url)} answered with {media_type or 'no media type'}, "
                              "which is neither SPARQL results nor RDF")
        return (quad.triple if isinstance(quad, Quad) else quad for quad in pyoxigraph.parse(stream, rdf_format))

    def query(self, query: str, *, base_iri: str | None = None, use_default_graph_as_union: bool = False,
              default_graph=None, named_graphs=None, substitutions: Mapping | None = None):
        """Like ``pyoxigraph.Store.query``: the remote's default graph is the union of its graphs (checked
        by ``check_union_default_graph``), so ``use_default_graph_as_union`` changes nothing here."""
        if substitutions:
            query = bind_values(query, {(v.value if isinstance(v, Variable) else v): t for v, t in substitutions.items()})
        if base_iri:
            query = f"BASE <{base_iri}>\n{query}"
        defaults = [g.value for g in (default_graph if isinstance(default_graph, list) else [default_graph])
                    if isinstance(g, NamedNode)] if default_graph is not None else []
        named = [g.value for g in named_graphs or []]
        response, media_type = self.open_query(query, default_graphs=defaults, named_graphs=named)
        with response:
            body = response.read()
        answer = self.parse_answer(body, media_type)
        return answer if not isinstance(answer, Iterator) else list(answer)

    def quads_for_pattern(self, subject=None, predicate=None, object=None, graph_name=None) -> Iterator[Quad]:
        """The quads matching a pattern, as ``pyoxigraph.Store.quads_for_pattern`` (None is a wildcard).

        ``graph_name=None`` means every named graph. Blank nodes cannot be asked for: their labels
        hold only within one answer of the remote.
        """
        bound = {"s": subject, "p": predicate, "o": object}
        for name, term in bound.items():
            if isinstance(term, BlankNode):
                raise ValueError("a blank node cannot be looked up in a remote store")
        pattern = " ".join(str(term) if term is not None else f"?{name}" for name, term in bound.items())
        if graph_name is None:
            text, graph = f"SELECT * WHERE {{ GRAPH ?g {{ {pattern} }} }}", None
        elif isinstance(graph_name, DefaultGraph):
            text, graph = f"SELECT * WHERE {{ {pattern} }}", graph_name
        else:
            text, graph = f"SELECT * WHERE {{ GRAPH {graph_name} {{ {pattern} }} }}", graph_name
        for row in self.query(text):
            yield Quad(subject if subject is not None else row["s"], predicate if predicate is not None else row["p"],
                       object if object is not None else row["o"], graph if graph is not None else row["g"])

    def named_graphs(self) -> Iterator[NamedNode]:
        for row in self.query("SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }"):
            yield row["g"]

    def contains_named_graph(self, graph: NamedNode) -> bool:
        return bool(self.query(f"ASK {{ GRAPH {graph} {{ ?s ?p ?o }} }}"))

    def count(self, query: str) -> int:
        (row,) = list(self.query(query))
        return int(row[0].value)

    def check_union_default_graph(self) -> None:
        """Our queries read the union of the graphs as default graph; refuse a remote that does otherwise."""
        if not bool(self.query(f"ASK {{ GRAPH ?g {{ ?c <{RDF_TYPE}> <{OWL_CLASS}> }} }}")):
            return  # nothing loaded yet: nothing to tell
        if not bool(self.query(f"ASK {{ ?c <{RDF_TYPE}> <{OWL_CLASS}> }}")):
            raise RemoteError(f"the SPARQL endpoint {shown_url(self.query_url)} does not read its named graphs in the "
                              "default graph; ctkg's queries need the union of all graphs as default graph "
                              "(Oxigraph: start it with --union-default-graph)")

    # ---- writing -------------------------------------------------------------------------------

    def _send(self, method: str, url: str, body: bytes | None, content_type: str | None, what: str) -> None:
        headers = {"Content-Type": content_type} if content_type else {}
        if self._auth == "bearer":
            headers["Authorization"] = f"Bearer {self._token}"
        elif self._auth == "basic":
            pair = f"{self._user}:{self._password}".encode("utf-8")
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        request = urllib.request.Request(url, data=body, method=method, headers=headers)
        try:
            with self._opener.open(request, timeout=self.load_timeout) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            raise RemoteError(f"the {what} {shown_url(url)} answered HTTP {exc.code}: {_body_head(exc.read())}",
                              exc.code) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = (f"no answer within {self.load_timeout:g} s (CTKG_REMOTE_LOAD_TIMEOUT_S); the remote may "
                      "still apply the request" if _is_timeout(exc) else getattr(exc, "reason", exc))
            raise RemoteError(f"cannot reach the {what} {shown_url(url)}: {reason}") from None

    def update(self, text: str) -> None:
        if not self.update_url:
            raise RemoteError("writing to the remote store needs its SPARQL Update URL (CTKG_REMOTE_UPDATE_URL)")
        self._send("POST", self.update_url, text.encode("utf-8"), "application/sparql-update", "SPARQL Update endpoint")

    def drop_graphs(self, graphs: Iterable[NamedNode]) -> None:
        graphs = list(graphs)
        for start in range(0, len(graphs), 1000):
            self.update(" ;\n".join(f"DROP SILENT GRAPH {g}" for g in graphs[start:start + 1000]))

    def write_graphs(self, groups: Iterable[tuple[NamedNode, list[Quad]]], *, replace: bool = True,
                     existing: set[str] | None = None) -> int:
        """Write graphs (each given whole, as its name and quads) in bounded requests; the number of requests.

        With ``replace`` each graph's previous content is dropped in the request that brings its first
        quads; ``existing`` (graph IRIs known to be on the remote) limits the drops to those graphs,
        which spares a fresh remote thousands of needless drops.
        """
        requests = 0
        for graphs, quads in plan_chunks(groups, self.chunk_quads):
            dropped = [g for g in graphs if existing is None or g.value in existing] if replace else []
            drops = " ;\n".join(f"DROP SILENT GRAPH {g}" for g in dropped)
            if self.store_url:
                if drops:
                    self.update(drops)
                if quads:
                    body = pyoxigraph.serialize(quads, format=RdfFormat.N_QUADS)
                    self._send("POST", self.store_url, body, "application/n-quads", "Graph Store endpoint")
            else:
                parts = [drops + " ;\n"] if drops else []
                if quads:
                    parts.append(insert_data(quads))
                if parts:
                    self.update("".join(parts))
            requests += 1
        return requests


def _has_blank_nodes(quads: list[Quad]) -> bool:
    return any(isinstance(q.subject, BlankNode) or isinstance(q.object, BlankNode) for q in quads)


def plan_chunks(groups: Iterable[tuple[NamedNode, list[Quad]]], limit: int) -> Iterator[tuple[list[NamedNode], list[Quad]]]:
    """Pack whole graphs into requests of at most ``limit`` quads: (graphs first seen in it, quads).

    A graph larger than the limit is split across requests, unless it holds blank nodes: a blank
    node's label names the same node only within one request, so such a graph goes whole.
    """
    graphs: list[NamedNode] = []
    batch: list[Quad] = []
    for graph, quads in groups:
        pieces = [quads] if len(quads) <= limit or _has_blank_nodes(quads) else \
            [quads[i:i + limit] for i in range(0, len(quads), limit)]
        for number, piece in enumerate(pieces):
            if batch and len(batch) + len(piece) > limit:
                yield graphs, batch
                graphs, batch = [], []
            if number == 0:
                graphs.append(graph)
            batch.extend(piece)
    if graphs or batch:
        yield graphs, batch


def insert_data(quads: list[Quad]) -> str:
    """``INSERT DATA { GRAPH <g> { ... } ... }`` with the triples written by pyoxigraph as N-Triples."""
    by_graph: dict = defaultdict(list)
    for quad in quads:
        by_graph[quad.graph_name].append(quad.triple)
    blocks = []
    for graph, triples in by_graph.items():
        body = pyoxigraph.serialize(triples, format=RdfFormat.N_TRIPLES).decode("utf-8")
        blocks.append(body if isinstance(graph, DefaultGraph) else f"GRAPH {graph} {{\n{body}}}\n")
    return "INSERT DATA {\n" + "".join(blocks) + "}"


# ---- kg build into a remote store ------------------------------------------------------------------

def load_build(settings: Settings, mapper: Mapper, accepted: Iterable[tuple[NamedNode, list]], report: BuildReport,
               *, update: bool) -> None:
    """Load a build's graphs (streamed: each trial graph is sent as it comes) into the remote store;
    the dataset description last.

    Without ``update`` the remote ends up holding exactly this build's graphs under the base (trial
    graphs of records no longer given are dropped); with it only the graphs given are replaced.
    """
    from kg.build import ontology_quads
    from kg.dataset import describe
    from kg.mint import Minter

    remote = RemoteStore(settings)
    remote.timeout = remote.load_timeout  # the build's own aggregates (counts, VoID) may run long on a big remote
    report.remote = shown_url(remote.query_url)
    if not remote.update_url:
        raise RemoteError("kg build into a remote store needs its SPARQL Update URL (CTKG_REMOTE_UPDATE_URL); "
                          "CTKG_REMOTE_STORE_URL (Graph Store Protocol) makes the load faster")
    system = Minter(settings.base_iri)
    ontology_graph, concepts_graph, dataset_graph = (system.system_graph(n) for n in ("ontology", "concepts", "dataset"))
    system_groups = [(ontology_graph, list(ontology_quads(settings))), (concepts_graph, list(mapper.concept_quads()))]
    # The organizations and places no concept table names come with the trials that name them, into one
    # shared graph (each triple once: the store keeps a set). A whole build starts it afresh (dropped in the
    # first request); an update adds to it.
    entities_graph = system.system_graph("entities")
    if not update:
        system_groups.append((entities_graph, []))
    written = {dataset_graph.value, entities_graph.value}

    def noting_names(groups):
        for graph, quads in groups:
            written.add(graph.value)
            yield graph, quads

    existing = {graph.value for graph in remote.named_graphs()}
    remote.write_graphs(noting_names(itertools.chain(system_groups, accepted)), existing=existing)
    if update:  # organizations and places the replaced trials named and no trial names any more
        remote.update(f"""DELETE {{ GRAPH {entities_graph} {{ ?e ?p ?o }} }}
            WHERE {{ GRAPH {entities_graph} {{ ?e ?p ?o }}
                     FILTER NOT EXISTS {{ GRAPH ?g {{ ?s ?q ?e }} FILTER(?g != {entities_graph}) }} }}""")
    ours = f"{settings.base_iri}/graph/"
    if not update:
        remote.drop_graphs(NamedNode(g) for g in sorted(existing) if g.startswith(ours) and g not in written)
    remote.check_union_default_graph()
    trials_total = remote.count(f'SELECT (COUNT(DISTINCT ?g) AS ?n) WHERE {{ GRAPH ?g {{ ?s ?p ?o }} '
                                f'FILTER(STRSTARTS(STR(?g), "{ours}NCT")) }}')
    # As in the local build, the description counts the build's own provenance quads too.
    remote.write_graphs([(dataset_graph, list(mapper.build_quads(trials_total)))])
    description = list(describe(remote, settings.base_iri, mapper.build_time, mapper.build_id))
    remote.write_graphs([(dataset_graph, description)], replace=False)
    report.triples = remote.count(f'SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH ?g {{ ?s ?p ?o }} '
                                  f'FILTER(STRSTARTS(STR(?g), "{ours}")) }}')
