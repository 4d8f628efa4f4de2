"""SPARQL SELECT/ASK results in the four W3C formats (JSON, XML, CSV, TSV).

The service caps every answer at a configured number of rows and says whether it cut. pyoxigraph's
own result writers (Rust) need a fraction of the CPU of taking rows as Python terms and writing them
in Python, but they write a whole result and cannot stop at a cap. Ways to put the cap on them, and
the one taken:

- Stop the writer on a byte budget and then write the capped prefix from Python: a truncated answer
  would have to be computed a second time (the solutions are consumed), and it is the slow path again.
- Write rows in batches: pyoxigraph cannot build a result from Python rows, so there is nothing to
  hand the batches to.
- A faster Python writer (cached terms): every cell still becomes a Python term first, which alone
  costs more than the whole path taken below (~100 ms for 10k rows of 5 columns).
- Count rows in the bytes while the writer streams them: exact only where a row boundary cannot occur
  inside a term. In TSV a row is one line and every term escapes its line breaks (`\\n`, `\\r`), so
  the newlines are the rows. In JSON a literal may hold `},{` and in CSV a quoted value may hold a
  line break, so counting there needs a tokenizer.

Taken: the last, through TSV. pyoxigraph writes TSV into a sink that counts newlines and stops the
writer (by raising) once the header, the first ``limit`` rows and one byte more have come; the sink
keeps the header and the rows up to the cap. TSV holds every term exactly (N-Triples syntax), so
pyoxigraph then reads it back and writes the format asked for: all of it in Rust, and query work
stops at the cap. For 10k rows of 5 columns this path takes 15-50 ms of CPU against 115-270 ms for
the Python writer it replaced; the TSV detour is 10-15 ms of that (docs/performance.md).

``select`` writes rows already taken as Python terms (the CLI's ``kg query``) the same way, so the
CLI and the service give the same bytes.
"""

from __future__ import annotations

import json

from pyoxigraph import QueryResultsFormat, parse_query_results

MEDIA_TYPES = {
    "json": "application/sparql-results+json",
    "xml": "application/sparql-results+xml",
    "csv": "text/csv",
    "tsv": "text/tab-separated-values",
}

_FORMATS = {"json": QueryResultsFormat.JSON, "xml": QueryResultsFormat.XML,
            "csv": QueryResultsFormat.CSV, "tsv": QueryResultsFormat.TSV}


class _CapReached(Exception):
    """Raised from the sink's ``write`` to stop pyoxigraph's writer: the cap is known to be passed."""


class _FirstLines:
    """A binary sink for pyoxigraph's TSV writer: keeps the first ``lines`` lines, notes whether
    anything came after them, and stops the writer as soon as it does."""

    def __init__(self, lines: int):
        self.wanted = lines      # lines still to keep
        self.parts: list[bytes] = []
        self.more = False        # a byte came after the kept lines: another row was being written

    def write(self, chunk) -> int:
        if not chunk:
            return 0
        if self.wanted == 0:
            # Also reached when pyoxigraph flushes its buffer again while unwinding; refusing is right.
            self.more = True
            raise _CapReached
        data = bytes(chunk)
        newlines = data.count(b"\n")
        if newlines < self.wanted:
            self.parts.append(data)
            self.wanted -= newlines
            return len(data)
        end = -1
        for _ in range(self.wanted):  # at most one chunk's worth of lines (the writer sends ~8 KiB at a time)
            end = data.index(b"\n", end + 1)
        self.parts.append(data[:end + 1])
        self.wanted = 0
        if end + 1 < len(data):
            self.more = True
            raise _CapReached
        return len(data)

    def flush(self) -> None:
        pass


def _rewrite(tsv: bytes, fmt: str) -> bytes:
    """SPARQL TSV read by pyoxigraph and written again in ``fmt``."""
    body = parse_query_results(tsv, QueryResultsFormat.TSV).serialize(format=_FORMATS[fmt])
    if fmt == "xml":
        # pyoxigraph writes a carriage return in a literal as is, and every XML parser reads a bare CR
        # (or CR LF) back as LF (XML 1.0, 2.11); a character reference keeps it. The writer puts no
        # line breaks of its own in the document, so every CR here is inside a value.
        body = body.replace(b"\r", b"&#13;")
    return body


def write_capped(solutions, fmt: str, limit: int) -> tuple[bytes, bool, int]:
    """A pyoxigraph ``QuerySolutions`` in ``fmt``, cut after ``limit`` rows: (body, truncated, rows)."""
    if fmt not in _FORMATS:
        raise ValueError(f"unknown results format {fmt!r}")
    sink = _FirstLines(limit + 1)  # the header line and ``limit`` rows
    try:
        solutions.serialize(sink, format=QueryResultsFormat.TSV)
    except Exception:
        if not sink.more:  # a real failure (the query, or a remote answer that cannot be read)
            raise
    tsv = b"".join(sink.parts)
    rows = tsv.count(b"\n") - 1
    return (tsv if fmt == "tsv" else _rewrite(tsv, fmt)), sink.more, rows


def select(variables: list[str], rows: list[list], fmt: str) -> bytes:
    """Rows already taken (pyoxigraph terms, None for unbound) in ``fmt``: written as TSV (``str`` of
    a pyoxigraph term is its N-Triples form, escapes included), then rewritten by pyoxigraph, TSV too,
    so that the bytes are those ``write_capped`` gives."""
    if fmt not in _FORMATS:
        raise ValueError(f"unknown results format {fmt!r}")
    lines = ["\t".join(f"?{v}" for v in variables)]
    lines += ["\t".join("" if term is None else str(term) for term in row) for row in rows]
    return _rewrite(("\n".join(lines) + "\n").encode("utf-8"), fmt)


def ask(value: bool, fmt: str) -> bytes:
    if fmt == "json":
        return json.dumps({"head": {}, "boolean": value}).encode("utf-8")
    if fmt == "xml":
        return (f'<?xml version="1.0"?>\n<sparql xmlns="http://www.w3.org/2005/sparql-results#">\n'
                f"<head/>\n<boolean>{'true' if value else 'false'}</boolean>\n</sparql>\n").encode("utf-8")
    # The CSV/TSV spec covers SELECT only: here an ASK answer is a one-column table named _askResult
    # (pyoxigraph's writers give the bare word, without a header line).
    if fmt == "csv":
        return f"_askResult\r\n{'true' if value else 'false'}\r\n".encode("utf-8")
    if fmt == "tsv":
        return f"?_askResult\n{'true' if value else 'false'}\n".encode("utf-8")
    raise ValueError(f"unknown results format {fmt!r}")
