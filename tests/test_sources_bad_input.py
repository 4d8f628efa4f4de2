"""Bad input gives one clear error naming the file and the problem; good records still come through."""

from __future__ import annotations

import json
import shutil
import zipfile

import pytest

from conftest import DATA, SAMPLE_FILES
from kg.cli import main
from kg.sources import RecordFailure, read_records

GOOD_PAGE = DATA / SAMPLE_FILES["NCT06281886"]


def _bad_files(folder):
    """One file of each kind of bad input the issue names, with the words its error must contain."""
    page = GOOD_PAGE.read_text(encoding="utf-8")
    cases = {
        "malformed.json": ('{"protocolSection": {"identificationModule": {"nctId": "NCT01234567",, }}}', "malformed JSON"),
        "truncated.json": ('{"studies": [{"protocolSection": {"identificationModule": {"nctId": "NCT0', "truncated"),
        "unknown.txt": ("Dear colleague,\n\nplease find the minutes of our meeting attached.\n", "unknown layout"),
        "no_nct.txt": (page.replace("NCT ID: NCT06281886", "NCT ID:"), "NCT ID"),
        "empty.json": ("", "empty file"),
        "blank.txt": ("  \n\n", "empty file"),
        "not_a_study.json": ('{"hello": "world"}', "not a ClinicalTrials.gov v2 study"),
        "bad_nct.json": ('{"protocolSection": {"identificationModule": {"nctId": "NCT12"}}}', "nct_id"),
    }
    for name, (text, _) in cases.items():
        (folder / name).write_text(text, encoding="utf-8")
    (folder / "latin1.txt").write_bytes("Essai clinique: étude de phase 2\n".encode("latin-1"))
    cases["latin1.txt"] = ("", "not UTF-8")
    with zipfile.ZipFile(folder / "whole.zip", "w") as z:
        z.writestr("NCT06281886.json", json.dumps({"protocolSection": {"identificationModule": {"nctId": "NCT06281886"}}}))
    (folder / "truncated.zip").write_bytes((folder / "whole.zip").read_bytes()[:40])
    cases["truncated.zip"] = ("", "ZIP")
    return {name: words for name, (_, words) in cases.items()}


def test_each_bad_file_gives_one_clear_error_and_good_records_survive(tmp_path):
    """Every bad file yields exactly one failure naming it and its problem; the good ones still load."""
    expected = _bad_files(tmp_path)
    for name in SAMPLE_FILES.values():
        shutil.copy(DATA / name, tmp_path / name)
    records = list(read_records([tmp_path]))
    failures = {r.file.rsplit("/", 1)[-1]: r for r in records if isinstance(r, RecordFailure)}
    good = sorted(r.nct_id for r in records if not isinstance(r, RecordFailure))
    assert sorted(failures) == sorted(expected)
    for name, words in expected.items():
        assert words in str(failures[name]), (name, str(failures[name]))
        assert name in str(failures[name])
    # the five samples and the one study inside whole.zip
    assert good == sorted([*SAMPLE_FILES, "NCT06281886"])


def test_a_bad_study_in_a_list_page_names_its_index(tmp_path, samples):
    """In a {"studies": [...]} page, a bad study is reported by its JSON pointer and the rest are read."""
    good = samples["NCT05173246"].to_ctgov()
    page = tmp_path / "page.json"
    page.write_text(json.dumps({"studies": [good, {"protocolSection": {"statusModule": {}}}, good]}), encoding="utf-8")
    records = list(read_records([page]))
    assert [type(r).__name__ for r in records] == ["Trial", "RecordFailure", "Trial"]
    assert records[1].member == "/studies/1"
    assert "no NCT id" in records[1].message


def test_missing_path_is_an_error_not_a_crash(tmp_path):
    """A path that does not exist is reported like any other bad input."""
    (failure,) = read_records([tmp_path / "nowhere"])
    assert isinstance(failure, RecordFailure) and "no such file" in failure.message


def test_kg_ingest_lists_the_samples_and_exits_0(capsys):
    """`kg ingest data/` prints one line per trial and a total, exit code 0."""
    assert main(["ingest", str(DATA)]) == 0
    out = capsys.readouterr().out
    for nct in SAMPLE_FILES:
        assert nct in out
    assert "5 records read, 0 failed" in out
    assert "NCT06281886  ctgov-page" in out and "arms=2 interventions=5 sites=1" in out


def test_kg_ingest_reports_bad_records_with_exit_1_and_writes_the_good(tmp_path, capsys):
    """With one bad file among good ones: an error line on stderr, exit 1, --out holds the good studies."""
    (tmp_path / "broken.json").write_text("{", encoding="utf-8")
    out_file = tmp_path / "out.json"
    assert main(["ingest", str(DATA), str(tmp_path / "broken.json"), "--out", str(out_file)]) == 1
    captured = capsys.readouterr()
    assert "broken.json" in captured.err and "malformed JSON" in captured.err
    written = json.loads(out_file.read_text(encoding="utf-8"))
    ids = [s["protocolSection"]["identificationModule"]["nctId"] for s in written["studies"]]
    assert sorted(ids) == sorted(SAMPLE_FILES)
    again = [r.nct_id for r in read_records([out_file])]
    assert sorted(again) == sorted(SAMPLE_FILES)


@pytest.mark.parametrize("garbage", [b"\x00\x01\x02binary", b"\xff\xfe\x00t\x00e\x00x\x00t"])
def test_binary_input_is_refused_cleanly(tmp_path, garbage):
    """Binary content is reported as not UTF-8 text rather than crashing the reader."""
    path = tmp_path / "blob.bin"
    path.write_bytes(garbage)
    (failure,) = read_records([path])
    assert isinstance(failure, RecordFailure)
    assert "not UTF-8" in failure.message or "unknown layout" in failure.message
