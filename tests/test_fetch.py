"""`kg fetch` against a real HTTP server on 127.0.0.1 that plays the ClinicalTrials.gov API v2.

The server answers with v2 studies built from the shipped records (``Trial.to_ctgov()``): single
studies, pages linked by ``nextPageToken`` and filtered by query, a 404 for an unknown id, the
bulk ZIP with ``Range`` support, and failures injected on request (429 with ``Retry-After``, 500,
a dropped connection, an HTML page, a download cut short). The client is the real one, pointed
at the server through the ``ctgov_api_url`` setting.
"""

from __future__ import annotations

import base64
import io
import json
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import pytest

from kg.cli import main
from kg.fetch import BULK_FILE, STATE_FILE, Query, fetch
from kg.sources import RecordFailure, read_records

FAST = {"rate_per_s": 1000.0, "backoff_s": 0.01}  # no real waiting beyond hundredths of a second
API = "/api/v2"


def _nct_of(study: dict) -> str:
    return study["protocolSection"]["identificationModule"]["nctId"]


def _matches(study: dict, params: dict[str, str]) -> bool:
    """A plain stand-in for the registry's search: each query.* is a case-insensitive substring."""
    protocol = study["protocolSection"]
    sponsors = protocol.get("sponsorCollaboratorsModule", {})
    fields = {
        "query.cond": protocol.get("conditionsModule", {}).get("conditions", []),
        "query.intr": [i["name"] for i in protocol.get("armsInterventionsModule", {}).get("interventions", [])],
        "query.spons": [o["name"] for o in [sponsors.get("leadSponsor") or {}, *sponsors.get("collaborators", [])]
                        if o.get("name")],
    }
    return all(any(params[name].lower() in text.lower() for text in texts)
               for name, texts in fields.items() if name in params)


class LocalRegistry:
    """What the server serves and what it saw."""

    def __init__(self, studies: list[dict]):
        self.studies = {_nct_of(study): study for study in studies}
        # The exact bytes of each single-study answer, so a test can compare files with them.
        self.bodies = {nct: json.dumps(study, indent=2, ensure_ascii=False).encode() for nct, study in self.studies.items()}
        self.requests: list[tuple[str, dict[str, str], dict[str, str]]] = []
        self.injected: dict[str, list] = {}  # request key -> what to do on its next requests, in order
        self.issued_tokens: list[str] = []
        self.fail_pages_from: int | None = None  # from this page index on, every page request is dropped
        self.bulk = self._bulk_zip()
        self.bulk_etag = '"bulk-v1"'
        self.bulk_cut_at: int | None = None  # the next bulk answer stops after this many bytes
        self.honour_range = True
        self.lock = threading.Lock()
        self.url = ""

    def _bulk_zip(self) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for nct, body in self.bodies.items():
                archive.writestr(f"{nct}.json", body)
        return buffer.getvalue()

    def inject(self, key: str, *actions) -> None:
        self.injected.setdefault(key, []).extend(actions)

    def next_action(self, key: str):
        with self.lock:
            queue = self.injected.get(key)
            return queue.pop(0) if queue else None

    def seen(self, path: str) -> list[tuple[dict[str, str], dict[str, str]]]:
        return [(params, headers) for p, params, headers in self.requests if p == API + path]


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset={offset}".encode()).decode()


def _offset(token: str) -> int:
    return int(base64.urlsafe_b64decode(token.encode()).decode().removeprefix("offset="))


def _handler(registry: LocalRegistry):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep the test output clean
            pass

        def _send(self, status: int, body: bytes, content_type: str = "application/json", headers=()) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
            url = urlsplit(self.path)
            params = dict(parse_qsl(url.query))
            with registry.lock:
                registry.requests.append((url.path, params, dict(self.headers)))
            path = url.path.removeprefix(API)
            key = path if path != "/studies" else "page:" + params.get("pageToken", "")
            action = registry.next_action(key)
            if action == "drop":  # no answer at all: the client sees the connection close
                self.close_connection = True
                return
            if action == "html":
                return self._send(200, b"<html><body>Service temporarily unavailable</body></html>", "text/html")
            if isinstance(action, tuple):  # (status, headers)
                return self._send(action[0], b'{"message": "injected failure"}', headers=action[1])
            if path == "/studies":
                return self._page(params)
            if path == "/studies/download":
                return self._bulk(params)
            nct = path.removeprefix("/studies/")
            if nct in registry.bodies:
                return self._send(200, registry.bodies[nct])
            return self._send(404, f"Study {nct} not found".encode(), "text/plain")

        def _page(self, params: dict[str, str]) -> None:
            size = int(params.get("pageSize", "10"))
            try:
                offset = _offset(params["pageToken"]) if "pageToken" in params else 0
            except ValueError:
                return self._send(400, b'{"message": "bad pageToken"}')
            if registry.fail_pages_from is not None and offset // size >= registry.fail_pages_from:
                self.close_connection = True
                return
            found = [s for s in registry.studies.values() if _matches(s, params)]
            page: dict = {"studies": found[offset:offset + size]}
            if offset + size < len(found):
                page["nextPageToken"] = _token(offset + size)
                registry.issued_tokens.append(page["nextPageToken"])
            if params.get("countTotal") == "true" and "pageToken" not in params:
                page["totalCount"] = len(found)
            self._send(200, json.dumps(page).encode())

        def _bulk(self, params: dict[str, str]) -> None:
            if params.get("format") != "json.zip":
                return self._send(400, b'{"message": "format must be json.zip"}')
            data, start = registry.bulk, 0
            wanted = self.headers.get("Range", "")
            if (registry.honour_range and wanted.startswith("bytes=")
                    and self.headers.get("If-Range") == registry.bulk_etag):
                start = int(wanted.removeprefix("bytes=").rstrip("-"))
            body = data[start:]
            self.send_response(206 if start else 200)
            self.send_header("Content-Type", "application/zip")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("ETag", registry.bulk_etag)
            self.send_header("Accept-Ranges", "bytes")
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            cut = registry.bulk_cut_at
            if cut is not None:
                registry.bulk_cut_at = None
                self.wfile.write(body[:cut])  # fewer bytes than Content-Length promised, then close
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler


@pytest.fixture()
def registry(samples):
    """A real HTTP server on a free loopback port serving the five shipped records as v2 JSON."""
    local = LocalRegistry([trial.to_ctgov() for trial in samples.values()])
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(local))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    local.url = f"http://127.0.0.1:{server.server_address[1]}{API}"
    yield local
    server.shutdown()
    server.server_close()


@pytest.fixture()
def pointed(settings, registry):
    return settings.model_copy(update={"ctgov_api_url": registry.url})


def _key_fields(trial) -> tuple:
    return (trial.nct_id, trial.brief_title, trial.official_title, trial.overall_status, trial.conditions,
            [(i.type, i.name) for i in trial.interventions], [(a.label, a.type) for a in trial.arms],
            trial.lead_sponsor.name if trial.lead_sponsor else None, trial.enrollment_count,
            trial.start_date, [(site.facility, site.city) for site in trial.locations])


def _read_back(folder) -> dict:
    records = list(read_records([folder]))
    assert not [r for r in records if isinstance(r, RecordFailure)], records
    return {r.nct_id: r for r in records}


def _assert_same_as_samples(folder, samples, expected_ids) -> None:
    read = _read_back(folder)
    assert set(read) == expected_ids
    for nct in expected_ids:
        assert _key_fields(read[nct]) == _key_fields(samples[nct])


def test_studies_by_id_are_written_as_received_and_read_back(pointed, registry, samples, tmp_path):
    """Three ids give three files holding the server's bytes exactly, which `read_records` reads back."""
    out = tmp_path / "out"
    wanted = ["NCT06281886", "nct07325539", "NCT07581821"]  # lower case is accepted
    report = fetch(pointed, out, ids=wanted, **FAST)
    expected = {"NCT06281886", "NCT07325539", "NCT07581821"}
    assert set(report.written) == expected and not report.failures
    for nct in expected:
        assert (out / f"{nct}.json").read_bytes() == registry.bodies[nct]
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".") and p.name != STATE_FILE) == []
    _assert_same_as_samples(out, samples, expected)


def test_a_second_run_skips_studies_already_there(pointed, registry, tmp_path):
    """Ids whose file exists are not asked for again."""
    out = tmp_path / "out"
    fetch(pointed, out, ids=["NCT06281886"], **FAST)
    registry.requests.clear()
    report = fetch(pointed, out, ids=["NCT06281886", "NCT05173246"], **FAST)
    assert report.skipped == ["NCT06281886"] and report.written == ["NCT05173246"]
    assert [path for path, _, _ in registry.requests] == [f"{API}/studies/NCT05173246"]


def test_unknown_id_is_named_and_the_others_still_come(registry, tmp_path, monkeypatch, capsys):
    """A 404 for NCT99999999 is reported by id; the two known ids are written; exit code 1."""
    monkeypatch.setenv("CTKG_CTGOV_API_URL", registry.url)
    out = tmp_path / "out"
    code = main(["fetch", "NCT06281886", "NCT99999999", "NCT07248696", "--out", str(out),
                 "--rate", "1000", "--backoff", "0.01", "--quiet"])
    assert code == 1
    errors = capsys.readouterr().err
    assert "ERROR NCT99999999: not in the registry (HTTP 404" in errors
    assert sorted(p.name for p in out.glob("NCT*.json")) == ["NCT06281886.json", "NCT07248696.json"]


def test_429_500_and_a_dropped_connection_are_retried(pointed, registry, samples, tmp_path):
    """A 429 (waiting what Retry-After says), a 500 and a dropped connection, then the study arrives."""
    out = tmp_path / "out"
    registry.inject("/studies/NCT05173246", (429, [("Retry-After", "0.2")]), (500, []), "drop")
    report = fetch(pointed, out, ids=["NCT05173246"], **FAST)
    assert report.written == ["NCT05173246"] and not report.failures
    assert len(registry.seen("/studies/NCT05173246")) == 4
    reasons = [retry.reason for retry in report.retries]
    assert reasons[:2] == ["HTTP 429", "HTTP 500"] and reasons[2].startswith("connection failed")
    # the 429's wait is the server's Retry-After, the others the doubling backoff from 0.01 s
    assert [retry.wait_s for retry in report.retries] == [0.2, 0.02, 0.04]
    _assert_same_as_samples(out, samples, {"NCT05173246"})


def test_retries_give_up_with_the_url_and_the_reason(pointed, registry, tmp_path):
    """A study that answers 503 every time fails after the attempts, naming the id and the status."""
    registry.inject("/studies/NCT06281886", *[(503, [])] * 3)
    report = fetch(pointed, tmp_path / "out", ids=["NCT06281886", "NCT07248696"], attempts=3, **FAST)
    assert report.written == ["NCT07248696"]
    [failure] = report.failures
    assert failure.what == "NCT06281886" and "HTTP 503; gave up after 3 attempts" in failure.message
    assert f"{registry.url}/studies/NCT06281886" in failure.message


@pytest.mark.parametrize(("query", "expected"), [
    # read from the conditions, interventions and lead sponsors of the five pages in data/
    (Query(condition="carcinoma"), {"NCT06281886", "NCT05173246", "NCT07581821"}),
    (Query(intervention="toripalimab"), {"NCT06281886", "NCT07325539"}),
    (Query(sponsor="Sun Yat-sen"), {"NCT06281886", "NCT05173246", "NCT07325539"}),
    (Query(condition="carcinoma", sponsor="Sun Yat-sen"), {"NCT06281886", "NCT05173246"}),
])
def test_query_pages_follow_next_page_token(pointed, registry, samples, tmp_path, query, expected):
    """Two studies a page: every page is fetched by the previous page's token, until there is none."""
    out = tmp_path / "out"
    report = fetch(pointed, out, query=query, page_size=2, **FAST)
    assert set(report.written) == expected and not report.failures and report.query_complete
    pages = registry.seen("/studies")
    assert len(pages) == (len(expected) + 1) // 2
    assert [params.get("pageToken") for params, _ in pages] == [None, *registry.issued_tokens]
    for params, _ in pages:
        assert {k: v for k, v in params.items() if k.startswith("query.")} == query.params()
    state = json.loads((out / STATE_FILE).read_text())
    [entry] = state["queries"].values()
    assert entry["complete"] is True and entry["next_page_token"] is None
    assert entry["studies_seen"] == entry["total_count"] == len(expected)
    _assert_same_as_samples(out, samples, expected)


def test_interrupted_query_continues_from_the_saved_token(pointed, registry, samples, tmp_path):
    """The server fails hard after page 1; the next run asks for page 2 by the saved token and
    neither asks for page 1 again nor rewrites its study."""
    out = tmp_path / "out"
    query = Query(sponsor="Sun Yat-sen")
    registry.fail_pages_from = 1
    first = fetch(pointed, out, query=query, page_size=1, attempts=2, **FAST)
    assert first.written == ["NCT06281886"] and first.query_complete is False
    [failure] = first.failures
    assert failure.what.startswith(f"{registry.url}/studies?") and "pageToken=" in failure.what
    assert "run the same command again" in failure.message
    state = json.loads((out / STATE_FILE).read_text())
    [entry] = state["queries"].values()
    assert entry["next_page_token"] == registry.issued_tokens[0] and entry["complete"] is False
    kept = (out / "NCT06281886.json").stat()

    registry.fail_pages_from = None
    registry.requests.clear()
    second = fetch(pointed, out, query=query, page_size=1, **FAST)
    assert second.written == ["NCT05173246", "NCT07325539"] and not second.failures and second.query_complete
    tokens = [params.get("pageToken") for params, _ in registry.seen("/studies")]
    assert None not in tokens and tokens[0] == entry["next_page_token"]
    after = (out / "NCT06281886.json").stat()
    assert (after.st_ino, after.st_mtime_ns) == (kept.st_ino, kept.st_mtime_ns)
    _assert_same_as_samples(out, samples, {"NCT06281886", "NCT05173246", "NCT07325539"})


def test_max_studies_stops_inside_a_page_and_a_larger_run_goes_on(pointed, registry, tmp_path):
    """--max-studies 1 on a page of 2 writes one study; a run with a limit of 3 writes the rest."""
    out = tmp_path / "out"
    query = Query(sponsor="Sun Yat-sen")
    first = fetch(pointed, out, query=query, page_size=2, max_studies=1, **FAST)
    assert first.written == ["NCT06281886"] and first.query_complete is False and not first.failures
    second = fetch(pointed, out, query=query, page_size=2, max_studies=3, **FAST)
    assert second.skipped == ["NCT06281886"] and second.written == ["NCT05173246", "NCT07325539"]
    assert second.query_complete


def test_a_page_that_is_not_json_names_the_url(registry, tmp_path, monkeypatch, capsys):
    """An HTML answer where a page of studies was expected: the error names the URL and says it is not JSON."""
    monkeypatch.setenv("CTKG_CTGOV_API_URL", registry.url)
    registry.inject("page:", "html")
    out = tmp_path / "out"
    code = main(["fetch", "--condition", "carcinoma", "--out", str(out), "--rate", "1000", "--quiet"])
    assert code == 1
    errors = capsys.readouterr().err
    line = next(line for line in errors.splitlines() if line.startswith("ERROR "))
    assert f"{registry.url}/studies?query.cond=carcinoma" in line
    assert "not JSON" in line and "text/html" in line and "Service temporarily unavailable" in line
    assert not list(out.glob("NCT*.json"))


def test_bulk_download_resumes_with_range_after_a_cut(pointed, registry, samples, tmp_path):
    """The ZIP is cut halfway; the client asks for the rest with Range and If-Range and gets it whole."""
    out = tmp_path / "out"
    half = len(registry.bulk) // 2
    registry.bulk_cut_at = half
    report = fetch(pointed, out, bulk=True, **FAST)
    assert not report.failures and report.bulk_file == out / BULK_FILE
    assert (out / BULK_FILE).read_bytes() == registry.bulk
    asks = registry.seen("/studies/download")
    assert len(asks) == 2 and "Range" not in asks[0][1]
    assert asks[1][1]["Range"] == f"bytes={half}-" and asks[1][1]["If-Range"] == registry.bulk_etag
    assert [retry.reason for retry in report.retries] == ["download broke off (RemoteProtocolError)"]
    assert not (out / f".{BULK_FILE}.part").exists()
    _assert_same_as_samples(out, samples, set(samples))


def test_bulk_download_interrupted_run_is_continued_by_the_next(pointed, registry, tmp_path):
    """A run that gives up keeps the partial file; the next run fetches only the missing bytes."""
    out = tmp_path / "out"
    cut = len(registry.bulk) // 3
    registry.bulk_cut_at = cut
    first = fetch(pointed, out, bulk=True, attempts=1, **FAST)
    assert first.failures and "run the same command again" in first.failures[0].message
    assert (out / f".{BULK_FILE}.part").stat().st_size == cut and not (out / BULK_FILE).exists()
    second = fetch(pointed, out, bulk=True, **FAST)
    assert not second.failures and (out / BULK_FILE).read_bytes() == registry.bulk
    assert registry.seen("/studies/download")[-1][1]["Range"] == f"bytes={cut}-"
    third = fetch(pointed, out, bulk=True, **FAST)
    assert third.skipped == [BULK_FILE] and len(registry.seen("/studies/download")) == 2


def test_bulk_download_starts_over_when_the_server_ignores_range(pointed, registry, tmp_path):
    """A server that answers a Range request with the whole file (200) gives the whole file, not a splice."""
    out = tmp_path / "out"
    registry.honour_range = False
    registry.bulk_cut_at = len(registry.bulk) // 2
    report = fetch(pointed, out, bulk=True, **FAST)
    assert not report.failures and (out / BULK_FILE).read_bytes() == registry.bulk


def test_cli_fetch_by_query_gives_files_kg_ingest_reads(registry, tmp_path, monkeypatch, capsys):
    """`kg fetch --sponsor` then `kg ingest OUT`: both exit 0 and ingest lists the three studies."""
    monkeypatch.setenv("CTKG_CTGOV_API_URL", registry.url)
    out = tmp_path / "fetched"
    assert main(["fetch", "--sponsor", "Sun Yat-sen", "--page-size", "2", "--out", str(out),
                 "--rate", "1000", "--quiet"]) == 0
    assert "3 studies written, 0 already there, 0 failed" in capsys.readouterr().out
    assert main(["ingest", str(out)]) == 0
    listed = capsys.readouterr().out
    assert "3 records read, 0 failed" in listed
    for nct in ("NCT06281886", "NCT05173246", "NCT07325539"):
        assert nct in listed


@pytest.mark.parametrize(("argv", "says"), [
    (["fetch"], "give NCT ids, a query"),
    (["fetch", "NCT123"], "'NCT123' is not an NCT id"),
    (["fetch", "--bulk", "NCT06281886"], "--bulk downloads every study"),
    (["fetch", "--condition", "x", "--page-size", "5000"], "page size must be between 1 and 1000"),
    (["fetch", "NCT06281886", "--rate", "0"], "--rate must be more than 0"),
])
def test_cli_usage_errors_exit_2(tmp_path, capsys, argv, says):
    """Wrong arguments exit 2 with a message saying what is wrong, before any request."""
    assert main([*argv, "--out", str(tmp_path / "out")]) == 2
    assert says in capsys.readouterr().err
