"""Download studies from the ClinicalTrials.gov API v2 into a folder that ``kg build`` reads.

Three ways in, each resumable:

- by NCT id: ``GET {api}/studies/{nctId}``, one file per study;
- by query: ``GET {api}/studies?query.cond=..&query.intr=..&query.spons=..&pageSize=..&pageToken=..``,
  following ``nextPageToken`` until a page has none;
- the bulk download of every study, a ZIP of one JSON file per study.

Every study is written as ``OUT/NCTxxxxxxxx.json`` through a temporary file and a rename, so a
file that exists is complete, and a study already on disk is never downloaded again (by id) or
written again (by query). A small state file, ``OUT/.kg-fetch-state.json``, records each query
and the token of the next page to fetch, so an interrupted query continues where it stopped.
Its name and the temporary files' names start with a dot, which ``kg ingest``/``kg build`` skip.

Evidence for the API's names (read with the project's search tool; the registry itself cannot
be reached from the build machines):

- ``GET /studies`` with ``query.cond``, ``query.intr``, ``query.spons``, ``pageSize`` (at most
  1,000), ``pageToken`` and ``countTotal``; answers ``{"studies": [...], "nextPageToken": ..,
  "totalCount": ..}``, the token absent on the last page; ``GET /studies/{nctId}`` for one study:
  the parameter table at
  https://ydulab.com/notebook/sources/08-03__clinicaltrials-landscape/references/api-parameters.md,
  the paging steps at https://mcp.waymark.network/r/dd7fa43c-6e68-42fb-bc6a-f27d74d13598 and the
  table in tastyGranola/biomcp ``docs/backend-services-reference/04-clinicaltrials-gov.md``.
- the bulk download ``GET https://clinicaltrials.gov/api/v2/studies/download?format=json.zip``:
  public download scripts use it (one notes the older ``AllAPIJSON.zip`` was retired, another
  points to the API migration guide's "other endpoints",
  https://www.clinicaltrials.gov/data-api/about-api/api-migration#other-endpoints); one records
  the answer as ``application/zip`` named ``ctg-studies.json.zip``, one JSON file per study, and
  that the OpenAPI spec does not list the path, so it may change. Whether it honours ``Range``
  is not documented, so a resume asks with ``Range`` + ``If-Range`` and starts over when the
  answer is a plain 200.
- the registry publishes no rate limit; public notes report about 50 requests a minute per
  address before 429s, hence the default of one request a second.
"""

from __future__ import annotations

import json
import os
import re
import time
import zipfile
from contextlib import closing, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Callable, Iterable

import httpx

from kg.model import NCT_ID_PATTERN
from kg.settings import Settings

STATE_FILE = ".kg-fetch-state.json"
BULK_FILE = "ctg-studies.json.zip"
MAX_PAGE_SIZE = 1000
USER_AGENT = "ctkg-fetch/0.1 (clinical-trials knowledge graph; python-httpx)"


class FetchError(Exception):
    """A problem that stops the whole fetch (an unreadable state file, an unusable output folder)."""


@dataclass(frozen=True)
class FetchFailure:
    """One thing that could not be fetched: the NCT id or URL, and what went wrong."""

    what: str
    message: str

    def __str__(self) -> str:
        return f"{self.what}: {self.message}"


@dataclass(frozen=True)
class Retry:
    """A wait the client took before asking again, and why (kept so callers can report it)."""

    url: str
    reason: str
    wait_s: float


@dataclass
class FetchReport:
    written: list[str] = field(default_factory=list)   # NCT ids written in this run
    skipped: list[str] = field(default_factory=list)   # NCT ids already in the folder
    failures: list[FetchFailure] = field(default_factory=list)
    retries: list[Retry] = field(default_factory=list)
    bulk_file: Path | None = None
    query_complete: bool | None = None  # for a query: did paging reach the last page?


@dataclass(frozen=True)
class Query:
    """A search of the registry: each given field narrows it (the API combines them with AND)."""

    condition: str | None = None
    intervention: str | None = None
    sponsor: str | None = None

    def params(self) -> dict[str, str]:
        named = {"query.cond": self.condition, "query.intr": self.intervention, "query.spons": self.sponsor}
        return {name: value for name, value in named.items() if value}

    def __bool__(self) -> bool:
        return bool(self.params())


class Problem(Exception):
    """A request that did not give what was asked for; ``url`` says which one."""

    def __init__(self, url: str, message: str, status: int | None = None):
        super().__init__(message)
        self.url, self.message, self.status = url, message, status


def normalise_nct_id(text: str) -> str:
    nct_id = text.strip().upper()
    if not re.match(NCT_ID_PATTERN, nct_id):
        raise ValueError(f"{text!r} is not an NCT id (NCT and eight digits, e.g. NCT06281886)")
    return nct_id


# ---------------------------------------------------------------------------------------------
# The HTTP client: pacing, retries with exponential backoff, Retry-After.


class CtgovClient:
    """A polite client of the API: at most ``rate_per_s`` requests a second, and on a 429, a 5xx
    or a broken connection it waits (``Retry-After`` when the server gives one, else
    ``backoff_s`` doubled on each attempt) and asks again, up to ``attempts`` times."""

    def __init__(self, base_url: str, *, rate_per_s: float = 1.0, attempts: int = 5, backoff_s: float = 1.0,
                 max_wait_s: float = 300.0, timeout_s: float = 60.0):
        if rate_per_s <= 0:
            raise ValueError("the rate must be more than 0 requests a second")
        if attempts < 1:
            raise ValueError("at least one attempt is needed")
        self.base_url = base_url.rstrip("/")
        self.rate_per_s, self.attempts, self.backoff_s, self.max_wait_s = rate_per_s, attempts, backoff_s, max_wait_s
        self.retries: list[Retry] = []
        self._next_slot = 0.0
        self._http = httpx.Client(timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 15.0)),
                                  headers={"User-Agent": USER_AGENT}, follow_redirects=True)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> CtgovClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def _pace(self) -> None:
        # Space requests evenly instead of allowing bursts: the registry is shared by everyone.
        now = time.monotonic()
        if self._next_slot > now:
            time.sleep(self._next_slot - now)
            now = self._next_slot
        self._next_slot = now + 1.0 / self.rate_per_s

    def wait_before_retry(self, attempt: int, url: str, reason: str, retry_after: float | None = None) -> None:
        wait = retry_after if retry_after is not None else self.backoff_s * 2 ** (attempt - 1)
        wait = min(wait, self.max_wait_s)
        self.retries.append(Retry(url, reason, wait))
        time.sleep(wait)

    def request(self, path: str, params: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
                stream: bool = False) -> httpx.Response:
        """The first answer that is neither a 429 nor a 5xx (any other status is the caller's to
        judge); ``Problem`` when every attempt failed. Unless ``stream``, the body is read inside
        the retries, so a connection cut mid-body is retried too."""
        request = self._http.build_request("GET", self.url(path), params=params, headers=headers)
        url = str(request.url)
        for attempt in range(1, self.attempts + 1):
            self._pace()
            retry_after = None
            try:
                response = self._http.send(request, stream=stream)
            except httpx.TransportError as exc:
                reason = f"connection failed ({type(exc).__name__}: {exc or 'no detail'})"
            else:
                if response.status_code != 429 and response.status_code < 500:
                    return response
                reason = f"HTTP {response.status_code}"
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                response.close()
            if attempt == self.attempts:
                raise Problem(url, f"{reason}; gave up after {self.attempts} attempts")
            self.wait_before_retry(attempt, url, reason, retry_after)
        raise AssertionError("unreachable")

    def get_json(self, path: str, params: dict[str, Any] | None = None) -> tuple[str, bytes, Any]:
        """(url, body, parsed JSON) of a 200 answer; ``Problem`` naming the URL otherwise."""
        response = self.request(path, params)
        url = str(response.request.url)
        if response.status_code != 200:
            raise Problem(url, f"HTTP {response.status_code}: {_snippet(response.content)}", response.status_code)
        try:
            return url, response.content, json.loads(response.content)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            kind = response.headers.get("Content-Type", "no Content-Type")
            raise Problem(url, f"the answer is not JSON ({exc}; {kind}); it begins {_snippet(response.content)}")


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds (fractions accepted) or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _snippet(body: bytes, limit: int = 80) -> str:
    text = body.decode("utf-8", errors="replace").strip().replace("\n", " ")
    return repr(text[:limit] + ("…" if len(text) > limit else "")) if text else "(empty body)"


# ---------------------------------------------------------------------------------------------
# Files: every write goes through a dot-named temporary file and an atomic rename.


def write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def study_path(out: Path, nct_id: str) -> Path:
    return out / f"{nct_id}.json"


class FetchState:
    """``OUT/.kg-fetch-state.json``: per query, the next page token and how far paging got; for
    the bulk download, the validator (ETag / Last-Modified) of the file being downloaded."""

    def __init__(self, out: Path):
        self.path = out / STATE_FILE
        self.data: dict[str, Any] = {"queries": {}, "bulk": None}
        if self.path.exists():
            try:
                loaded = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise FetchError(f"{self.path}: cannot read the fetch state ({exc}); delete it to start afresh") from exc
            if not isinstance(loaded, dict) or not isinstance(loaded.get("queries"), dict):
                raise FetchError(f"{self.path}: not a fetch state file (no 'queries' object); delete it to start afresh")
            self.data = {"queries": loaded["queries"], "bulk": loaded.get("bulk")}

    @staticmethod
    def key(params: dict[str, str], page_size: int) -> str:
        # Page tokens belong to one query at one page size, so both identify the saved position.
        return json.dumps({**params, "pageSize": page_size}, sort_keys=True, ensure_ascii=False)

    def query(self, key: str) -> dict[str, Any] | None:
        return self.data["queries"].get(key)

    def set_query(self, key: str, entry: dict[str, Any]) -> None:
        self.data["queries"][key] = {**entry, "updated": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        self.save()

    def set_bulk(self, entry: dict[str, Any] | None) -> None:
        self.data["bulk"] = entry
        self.save()

    def save(self) -> None:
        write_atomically(self.path, (json.dumps(self.data, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


class _NoBar:
    total: int | None = None

    def update(self, n: int = 1) -> None:
        pass

    def refresh(self) -> None:
        pass

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass


MakeBar = Callable[..., Any]  # called as make_bar(desc=, unit=, total=, initial=); returns a tqdm-like context manager


def _bar(make_bar: MakeBar | None, **options: Any) -> Any:
    return make_bar(**options) if make_bar else nullcontext(_NoBar())


# ---------------------------------------------------------------------------------------------
# The three ways in.


def fetch_ids(client: CtgovClient, ids: Iterable[str], out: Path, report: FetchReport,
              make_bar: MakeBar | None = None) -> None:
    """Each study by its id; one that fails is reported and the others still come."""
    ids = list(dict.fromkeys(ids))
    with _bar(make_bar, desc="studies", unit=" study", total=len(ids)) as bar:
        for nct_id in ids:
            bar.update(1)
            if study_path(out, nct_id).exists():
                report.skipped.append(nct_id)
                continue
            try:
                url, body, study = client.get_json(f"studies/{nct_id}")
            except Problem as problem:
                if problem.status == 404:
                    message = f"not in the registry (HTTP 404 from {problem.url})"
                else:
                    message = f"{problem.url}: {problem.message}"
                report.failures.append(FetchFailure(nct_id, message))
                continue
            found = _nct_id_of(study)
            if found != nct_id:
                report.failures.append(FetchFailure(
                    nct_id, f"{url} answered with {'study ' + found if found else 'no study id'} instead"))
                continue
            write_atomically(study_path(out, nct_id), body)  # the bytes exactly as received
            report.written.append(nct_id)


def fetch_query(client: CtgovClient, query: Query, out: Path, state: FetchState, report: FetchReport, *,
                page_size: int = MAX_PAGE_SIZE, max_studies: int | None = None,
                make_bar: MakeBar | None = None) -> None:
    """Every study the query finds, page by page; the position is saved after each page, so an
    interrupted run continues from the saved token. A page that fails stops paging (the next
    token is in it), and is reported."""
    params = query.params()
    key = FetchState.key(params, page_size)
    saved = state.query(key)
    if saved and not saved.get("complete"):
        token, seen, total = saved.get("next_page_token"), int(saved.get("studies_seen", 0)), saved.get("total_count")
    else:  # new, or finished earlier: page from the start again (studies on disk are not written again)
        token, seen, total = None, 0, None
    report.query_complete = False

    def save(complete: bool) -> None:
        state.set_query(key, {"query": params, "page_size": page_size, "next_page_token": token,
                              "studies_seen": seen, "total_count": total, "complete": complete})

    limit = max_studies
    with _bar(make_bar, desc="studies", unit=" study", total=_capped(total, limit), initial=seen) as bar:
        while limit is None or seen < limit:
            request_params: dict[str, Any] = {**params, "pageSize": page_size}
            if token:
                request_params["pageToken"] = token
            else:
                request_params["countTotal"] = "true"  # the total, for the progress bar; asked on the first page only
            try:
                url, _body, page = client.get_json("studies", request_params)
                studies = _studies_of(page, url)
            except Problem as problem:
                report.failures.append(FetchFailure(problem.url, f"{problem.message} (paging stopped here; "
                                                                 "run the same command again to continue)"))
                save(False)
                return
            if not token and isinstance(page.get("totalCount"), int):
                total = page["totalCount"]
                bar.total = _capped(total, limit)
                bar.refresh()
            for index, study in enumerate(studies):
                if limit is not None and seen + index >= limit:
                    # Stopped inside a page: keep this page's token so a later, larger run re-reads it.
                    save(False)
                    return
                _keep_study(study, f"{url} /studies/{index}", out, report)
                bar.update(1)
            seen += len(studies)
            token = page.get("nextPageToken") or None
            save(token is None)
            if token is None:
                report.query_complete = True
                return
            if not studies:  # a page with a token but nothing in it would make us loop forever
                report.failures.append(FetchFailure(url, "an empty page that still has a nextPageToken; stopped"))
                return
    save(False)


def fetch_bulk(client: CtgovClient, out: Path, state: FetchState, report: FetchReport,
               make_bar: MakeBar | None = None) -> None:
    """The ZIP of every study, streamed to ``OUT/.ctg-studies.json.zip.part`` and renamed when
    whole. A cut connection, or a rerun after an interruption, continues with ``Range`` from the
    bytes already on disk when the server agrees (206) and the file has not changed (``If-Range``)."""
    final, part = out / BULK_FILE, out / f".{BULK_FILE}.part"
    if final.exists():
        report.bulk_file = final
        report.skipped.append(BULK_FILE)
        return
    url = client.url("studies/download")
    params = {"format": "json.zip"}
    saved = state.data.get("bulk") or {}
    with _bar(make_bar, desc="bulk ZIP", unit="B", unit_scale=True, total=None) as bar:
        for attempt in range(1, client.attempts + 1):
            have = part.stat().st_size if part.exists() else 0
            validator = saved.get("etag") or saved.get("last_modified")
            # identity: the bytes on disk must be the file's bytes for a Range offset to mean anything
            headers = {"Accept-Encoding": "identity"}
            if have and validator:
                headers.update({"Range": f"bytes={have}-", "If-Range": validator})
            try:
                response = client.request("studies/download", params, headers=headers, stream=True)
            except Problem as problem:
                report.failures.append(FetchFailure(problem.url, problem.message))
                return
            with closing(response):
                if response.status_code == 416:  # our part is no prefix of the current file
                    part.unlink(missing_ok=True)
                    saved = {}
                    continue
                if response.status_code not in (200, 206):
                    response.read()
                    report.failures.append(FetchFailure(
                        str(response.request.url), f"HTTP {response.status_code}: {_snippet(response.content)}"))
                    return
                resuming = response.status_code == 206 and _range_start(response) == have
                if response.status_code == 206 and not resuming:
                    report.failures.append(FetchFailure(str(response.request.url),
                                                        "the server resumed from the wrong place "
                                                        f"({response.headers.get('Content-Range')!r}, asked for {have})"))
                    return
                saved = {"url": url, "etag": response.headers.get("ETag"),
                         "last_modified": response.headers.get("Last-Modified")}
                state.set_bulk(saved)
                length = response.headers.get("Content-Length")
                bar.total = (have if resuming else 0) + int(length) if length and length.isdigit() else None
                bar.n = have if resuming else 0
                bar.refresh()
                try:
                    with part.open("ab" if resuming else "wb") as sink:
                        # iter_raw as the bytes arrive: a chunk buffer would lose what came before a cut
                        for chunk in response.iter_raw():
                            sink.write(chunk)
                            bar.update(len(chunk))
                except httpx.TransportError as exc:
                    if attempt == client.attempts:
                        report.failures.append(FetchFailure(url, f"the download broke off ({exc}); "
                                                                 "run the same command again to continue"))
                        return
                    client.wait_before_retry(attempt, url, f"download broke off ({type(exc).__name__})")
                    continue
            break
        else:
            report.failures.append(FetchFailure(url, f"no usable answer after {client.attempts} attempts"))
            return
    if not zipfile.is_zipfile(part):
        part.unlink(missing_ok=True)
        state.set_bulk(None)
        report.failures.append(FetchFailure(url, "the download is not a ZIP archive; it was removed"))
        return
    os.replace(part, final)
    state.set_bulk(None)
    report.bulk_file = final


def fetch(settings: Settings, out: Path, *, ids: Iterable[str] = (), query: Query | None = None, bulk: bool = False,
          page_size: int = MAX_PAGE_SIZE, max_studies: int | None = None, rate_per_s: float = 1.0,
          attempts: int = 5, backoff_s: float = 1.0, make_bar: MakeBar | None = None) -> FetchReport:
    """The one library call behind ``kg fetch``: ids, then the query, then the bulk ZIP, into ``out``."""
    ids = [normalise_nct_id(text) for text in ids]
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"the page size must be between 1 and {MAX_PAGE_SIZE} (got {page_size})")
    if max_studies is not None and max_studies < 1:
        raise ValueError(f"--max-studies must be at least 1 (got {max_studies})")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FetchError(f"{out}: cannot create the output folder ({exc.strerror or exc})") from exc
    state = FetchState(out)
    report = FetchReport()
    with CtgovClient(settings.ctgov_api_url, rate_per_s=rate_per_s, attempts=attempts, backoff_s=backoff_s) as client:
        try:
            if ids:
                fetch_ids(client, ids, out, report, make_bar)
            if query:
                fetch_query(client, query, out, state, report, page_size=page_size, max_studies=max_studies,
                            make_bar=make_bar)
            if bulk:
                fetch_bulk(client, out, state, report, make_bar)
        finally:
            report.retries = list(client.retries)
    return report


# ---------------------------------------------------------------------------------------------
# Helpers on v2 JSON.


def _nct_id_of(study: Any) -> str | None:
    try:
        nct_id = study["protocolSection"]["identificationModule"]["nctId"]
    except (KeyError, TypeError):
        return None
    return nct_id if isinstance(nct_id, str) and re.match(NCT_ID_PATTERN, nct_id) else None


def _studies_of(page: Any, url: str) -> list[Any]:
    if not isinstance(page, dict) or not isinstance(page.get("studies"), list):
        raise Problem(url, "the answer is JSON but not a page of studies (no 'studies' list)")
    return page["studies"]


def _keep_study(study: Any, where: str, out: Path, report: FetchReport) -> None:
    nct_id = _nct_id_of(study)
    if nct_id is None:
        report.failures.append(FetchFailure(where, "no valid protocolSection.identificationModule.nctId"))
        return
    path = study_path(out, nct_id)
    if path.exists():
        report.skipped.append(nct_id)
        return
    # A page holds many studies, so each is written on its own: the same JSON, with its keys
    # in the order received.
    write_atomically(path, json.dumps(study, ensure_ascii=False).encode("utf-8"))
    report.written.append(nct_id)


def _capped(total: int | None, limit: int | None) -> int | None:
    if total is None:
        return limit
    return min(total, limit) if limit is not None else total


def _range_start(response: httpx.Response) -> int | None:
    match = re.match(r"bytes (\d+)-", response.headers.get("Content-Range", ""))
    return int(match.group(1)) if match else None
