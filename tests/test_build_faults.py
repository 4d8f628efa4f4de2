"""Faults during `kg build`: a build killed at any phase, a store folder that cannot be written and a
full disk each leave the store being served exactly as it was, and the next build succeeds.

Everything here is real: `kg build` and `kg serve` run as processes, the build is killed with SIGKILL,
folders are made unwritable by their mode (or, for root, the immutable attribute), and the disk is a
small tmpfs when this machine lets us mount one, or a file-size limit on the build process when not.
"""

from __future__ import annotations

import importlib.util
import os
import queue
import re
import resource
import signal
import subprocess
import sys
import threading
import time
import zipfile
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Callable, NamedTuple

import httpx
import pytest
from conftest import ROOT, SAMPLE_FILES, serving

from kg.build import build
from kg.cli import main
from kg.settings import Settings

_spec = importlib.util.spec_from_file_location("synth", ROOT / "benchmarks" / "synth.py")
synth = importlib.util.module_from_spec(_spec)
sys.modules["synth"] = synth  # dataclasses look their module up there
_spec.loader.exec_module(synth)

# The phases `kg build` announces on standard error, in order (kg/build.py).
PHASES = ["open", "map+load", "describe", "optimize", "dumps", "swap"]
PHASE_LINE = re.compile(r"phase (\S+): (started|done in .*)")
# Enough records, in chunks small enough, that map+load runs several chunks in two worker processes.
SYNTHETIC_RECORDS = 24
BUILD_ENV = {"CTKG_BUILD_CHUNK_RECORDS": "6", "CTKG_BUILD_WORKERS": "2"}
SAMPLE_GRAPHS = {f"http://localhost:8000/graph/{nct}" for nct in SAMPLE_FILES}
QUADS_PER_GRAPH = "SELECT ?g (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } } GROUP BY ?g"


class Synthetic(NamedTuple):
    zip: Path
    graphs: set[str]  # the named graph of every trial in it


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Synthetic:
    """A ZIP of realistic well-formed records (benchmarks/synth.py), enough for every phase to do real work."""
    path = tmp_path_factory.mktemp("synthetic") / "studies.zip"
    synth.write_zip(path, synth.records(SYNTHETIC_RECORDS, seed=5, malformed_rate=0))
    with zipfile.ZipFile(path) as archive:  # one study per member, named after its NCT id
        graphs = {f"http://localhost:8000/graph/{Path(name).stem}" for name in archive.namelist()}
    assert len(graphs) == SYNTHETIC_RECORDS
    return Synthetic(path, graphs)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The shipped records built into a store that a real `kg serve` process serves: (store link, URL)."""
    store_dir = tmp_path_factory.mktemp("served") / "store"
    build(Settings(store_dir=store_dir))
    with serving(store_dir) as url:
        yield store_dir, url


def served_answers(url: str) -> dict:
    """What a client sees: the quads of every graph, a trial's page and the dumps listed with their checksums."""
    rows = httpx.get(url + "/sparql", params={"query": QUADS_PER_GRAPH},
                     headers={"Accept": "application/sparql-results+json"}, timeout=30).json()["results"]["bindings"]
    trial = httpx.get(url + "/trial/NCT06281886", headers={"Accept": "text/turtle"}, timeout=30)
    dumps = httpx.get(url + "/dumps/", headers={"Accept": "application/json"}, timeout=30).json()["dumps"]
    return {
        "quads per graph": {row["g"]["value"]: int(row["n"]["value"]) for row in rows},
        "trial page": (trial.status_code, trial.text),
        "dumps": sorted((d["name"], d["sha256"]) for d in dumps),
    }


def leftovers(store_dir: Path) -> list[str]:
    """Anything a build leaves beside the store when it does not finish: a store being built, dumps being written."""
    stores = store_dir.parent / (store_dir.name + ".d")
    dumps = store_dir.parent / (store_dir.name + ".dumps")
    found = [p.name for p in stores.iterdir() if p.name.endswith(".building")]
    found += [p.name for p in dumps.iterdir() if p.name.endswith(".writing")] if dumps.is_dir() else []
    return found + [p.name for p in store_dir.parent.glob(f".{store_dir.name}.link-*")]


def store_versions(store_dir: Path) -> set[str]:
    return {p.name for p in (store_dir.parent / (store_dir.name + ".d")).iterdir()}


# ------------------------------------------------------------------ processes


def group_members(pgid: int) -> dict[int, str]:
    """The live processes of a process group, by pid, with their command lines (zombies are not alive)."""
    members = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # it ended while we looked
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) ": state, ppid, pgrp, ...
        if int(fields[2]) == pgid and fields[0] != "Z":
            members[int(entry.name)] = cmdline
    return members


def wait_until_gone(pgid: int, wait_s: float = 20) -> dict[int, str]:
    """Wait for the processes of a killed group to end; what is still alive after ``wait_s``."""
    deadline = time.monotonic() + wait_s
    while (alive := group_members(pgid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive


class PhaseWatch:
    """Reads a build's standard error as it comes and keeps its phase lines; the progress bar redraws
    with carriage returns, so lines end at either \\r or \\n."""

    def __init__(self, process: subprocess.Popen):
        self.process = process
        self.text = ""
        self.phases: list[str] = []
        self._lines: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        pending = b""
        while chunk := os.read(self.process.stderr.fileno(), 4096):
            pending += chunk
            *lines, pending = re.split(rb"[\r\n]", pending)
            for line in lines:
                self._lines.put(line.decode(errors="replace"))
        self._lines.put(pending.decode(errors="replace"))
        self._lines.put(None)

    def _take(self, timeout: float) -> str | None:
        line = self._lines.get(timeout=timeout)
        if line is not None:
            self.text += line + "\n"
            if found := PHASE_LINE.search(line):  # the bar's last redraw may lead the line
                self.phases.append(found.group(0).strip())
        return line

    def wait_for(self, wanted: str, wait_s: float = 120) -> None:
        deadline = time.monotonic() + wait_s
        while True:
            line = self._take(max(0.1, deadline - time.monotonic()))
            if line is None:
                pytest.fail(f"the build ended before {wanted!r}:\n{self.text}")
            if self.phases and self.phases[-1] == wanted and line.endswith(wanted):
                return

    def rest(self) -> str:
        """Everything still to come, once the process has ended."""
        while self._take(30) is not None:
            pass
        self._thread.join()
        return self.text


def start_build(store_dir: Path, records: Path, limit_file_bytes: int | None = None) -> subprocess.Popen:
    """`kg build` as its own process group (so that its workers can be told apart and killed with it);
    ``limit_file_bytes``: the largest file it may write (RLIMIT_FSIZE), to make a disk that fills."""

    def limit() -> None:  # runs in the child before it execs; Python ignores SIGXFSZ, so a write fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_file_bytes, limit_file_bytes))

    return subprocess.Popen(
        [sys.executable, "-m", "kg.cli", "build", str(records)],
        env=dict(os.environ, CTKG_STORE_DIR=str(store_dir), **BUILD_ENV),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
        preexec_fn=limit if limit_file_bytes else None,
    )


def spawned_workers(pgid: int) -> list[int]:
    return [pid for pid, cmdline in group_members(pgid).items() if "spawn_main" in cmdline]


# ------------------------------------------------------------------ 1. killed at each phase


@pytest.mark.parametrize("phase", PHASES)
def test_build_killed_at_each_phase_leaves_the_served_store_unchanged(phase, served, synthetic):
    """SIGKILL to `kg build` and its workers as a phase starts changes nothing served, leaves no process
    behind, and the next build succeeds and clears what the killed one left."""
    store_dir, url = served
    before = served_answers(url)
    assert set(before["quads per graph"]) >= SAMPLE_GRAPHS and len(before["dumps"]) == 4
    live = store_dir.resolve()

    process = start_build(store_dir, synthetic.zip)
    watch = PhaseWatch(process)
    try:
        watch.wait_for(f"phase {phase}: started")
        if phase == "map+load":  # kill it while its worker processes map records, not before they exist
            deadline = time.monotonic() + 60
            while len(spawned_workers(process.pid)) < 2 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert len(spawned_workers(process.pid)) == 2, watch.text
        os.killpg(process.pid, signal.SIGKILL)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    watch.rest()

    assert process.returncode == -signal.SIGKILL
    assert wait_until_gone(process.pid) == {}
    killed_at = store_dir.resolve()
    if killed_at == live:
        assert watch.phases[-1] == f"phase {phase}: started", watch.text
        assert served_answers(url) == before
    else:
        # Only the swap moves the link, in one rename, microseconds after it is announced: a kill that lands
        # just after that rename finds the new store complete, and it serves whole. (Rare; both are atomic.)
        assert phase == "swap" and f"phase {phase}: started" in watch.phases, watch.text
        now = served_answers(url)
        trials = {g for g in now["quads per graph"] if "/graph/NCT" in g}
        assert trials and trials <= synthetic.graphs
        assert len(now["dumps"]) == 4 and now["dumps"] != before["dumps"]

    assert main(["build", "--store", str(store_dir), "--quiet"]) == 0
    assert leftovers(store_dir) == []
    assert store_versions(store_dir) == {store_dir.resolve().name, killed_at.name}
    after = served_answers(url)
    assert after["quads per graph"] == before["quads per graph"]  # the same records: the same graphs
    assert after["dumps"] != before["dumps"]  # ... from the new store, with its own dumps


def test_build_killed_after_map_and_load_leaves_the_served_validation_report_unchanged(served, synthetic):
    """`/validate/report` describes the store being served, not a build that was killed before its swap."""
    store_dir, url = served
    report_before = httpx.get(url + "/validate/report", headers={"Accept": "application/json"}, timeout=30).json()
    process = start_build(store_dir, synthetic.zip)
    watch = PhaseWatch(process)
    try:
        watch.wait_for("phase describe: started")
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    watch.rest()
    try:
        report_after = httpx.get(url + "/validate/report", headers={"Accept": "application/json"}, timeout=30).json()
        assert set(report_before["trials"]) == set(SAMPLE_FILES)
        assert report_after == report_before
    finally:  # the tests after this one start from a store with no leftovers
        assert main(["build", "--store", str(store_dir), "--quiet"]) == 0


def test_workers_end_when_only_the_build_process_is_killed(served, synthetic):
    """The OOM killer kills one process, not a group: the build's workers must not live on without it."""
    store_dir, url = served
    before = served_answers(url)
    process = start_build(store_dir, synthetic.zip)
    watch = PhaseWatch(process)
    try:
        watch.wait_for("phase map+load: started")
        deadline = time.monotonic() + 60
        while len(spawned_workers(process.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(spawned_workers(process.pid)) == 2, watch.text
        os.kill(process.pid, signal.SIGKILL)  # the main process only
        process.wait()
        left = wait_until_gone(process.pid)
    finally:
        if group_members(process.pid):
            os.killpg(process.pid, signal.SIGKILL)
    watch.rest()
    assert left == {}
    assert served_answers(url) == before
    assert main(["build", "--store", str(store_dir), "--quiet"]) == 0
    assert leftovers(store_dir) == []


# ------------------------------------------------------------------ 2. a store folder that cannot be written


def _can_create_in(folder: Path) -> bool:
    probe = folder / ".probe"
    try:
        probe.mkdir()
    except OSError:
        return False
    probe.rmdir()
    return True


@contextmanager
def unwritable(folder: Path):
    """Make ``folder`` refuse new entries: by its mode or, for root (whom modes do not stop), by the
    immutable attribute. Skips when neither works here."""
    mode = folder.stat().st_mode
    folder.chmod(0o500)
    immutable = False
    try:
        if _can_create_in(folder):  # running as root
            folder.chmod(mode)
            immutable = subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0
            if not immutable or _can_create_in(folder):
                pytest.skip("neither the folder's mode nor `chattr +i` stops writes here")
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(mode)


@pytest.mark.parametrize("which", ["store versions folder", "folder holding the store link"])
def test_unwritable_store_folder_is_a_clear_error_and_changes_nothing(which, served):
    """A store folder that cannot be written stops `kg build` with exit 2 and one line naming the folder
    and the problem, before anything moved (the link's folder is found out only at the swap)."""
    store_dir, url = served
    before = served_answers(url)
    live, versions, left = store_dir.resolve(), store_versions(store_dir), leftovers(store_dir)
    if which == "store versions folder":
        folder = store_dir.parent / (store_dir.name + ".d")
        expected = f"the store folder {folder} is not writable"
    else:
        folder = store_dir.parent
        expected = f"cannot write the store link in {folder}: "
    with unwritable(folder):
        process = start_build(store_dir, ROOT / "data")
        _, stderr = process.communicate(timeout=300)
        stderr = stderr.decode()
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert process.returncode == 2 and "Traceback" not in stderr, stderr
    assert len(errors) == 1 and expected in errors[0], stderr
    assert errors[0].endswith(f"the store being served ({live}) is unchanged")
    if which == "folder holding the store link":
        assert "Permission denied" in errors[0] or "Operation not permitted" in errors[0]
    assert store_dir.resolve() == live and store_versions(store_dir) == versions and leftovers(store_dir) == left
    assert served_answers(url) == before


# ------------------------------------------------------------------ 3. a full disk

# A tmpfs with room for one store of the shipped records (about 2 MiB with its dumps), not for a second.
TMPFS_SIZE, TMPFS_ROOMY_SIZE = "3m", "12m"
FILE_LIMIT_BYTES = 128 << 10  # the largest file the build may write: smaller than its stores' table files


class SmallDisk(NamedTuple):
    store_dir: Path
    file_limit: int | None  # RLIMIT_FSIZE for the build, when the disk is not a real small one
    problem: str  # what the build's error must say
    make_room: Callable[[], None]


@pytest.fixture(params=["tmpfs", "file-size limit"])
def small_disk(request, tmp_path, served):
    """A real tmpfs too small for a second store when this machine lets us mount one; else writes that fail
    at a file-size limit (on the store the module's server serves)."""
    if request.param == "file-size limit":
        yield SmallDisk(served[0], FILE_LIMIT_BYTES, "File too large", make_room=lambda: None)
        return
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "ctkg-test", str(disk)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}); the file-size limit case stands in")

    def make_room() -> None:
        subprocess.run(["mount", "-o", f"remount,size={TMPFS_ROOMY_SIZE}", str(disk)], check=True)

    try:
        yield SmallDisk(disk / "store", None, "No space left on device", make_room)
    finally:
        if subprocess.run(["umount", str(disk)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "--lazy", str(disk)], check=True)  # a process still had it open


def test_full_disk_is_a_clear_error_and_nothing_half_built_is_served(small_disk, served):
    """Writes failing for want of room stop `kg build` with exit 2 and one line saying where and what;
    no store or dumps half-written are left or served, and with room again the next build succeeds."""
    store_dir = small_disk.store_dir
    if store_dir == served[0]:
        server = nullcontext(served[1])
    else:  # a store of its own on the small disk, and a server of its own
        build(Settings(store_dir=store_dir))
        server = serving(store_dir)
    with server as url:
        before = served_answers(url)
        live, versions, left = store_dir.resolve(), store_versions(store_dir), leftovers(store_dir)
        process = start_build(store_dir, ROOT / "data", limit_file_bytes=small_disk.file_limit)
        _, stderr = process.communicate(timeout=300)
        stderr = stderr.decode()
        errors = [line for line in stderr.splitlines() if line.startswith("error:")]
        assert process.returncode == 2 and "Traceback" not in stderr, stderr
        assert len(errors) == 1 and small_disk.problem in errors[0], stderr
        assert f"cannot write the new build under {store_dir.parent}: " in errors[0]
        assert errors[0].endswith(f"the store being served ({live}) is unchanged")
        assert store_dir.resolve() == live and store_versions(store_dir) == versions and leftovers(store_dir) == left
        assert served_answers(url) == before

        small_disk.make_room()
        assert main(["build", "--store", str(store_dir), "--quiet"]) == 0
        assert leftovers(store_dir) == [] and store_dir.resolve() != live
        assert served_answers(url)["quads per graph"] == before["quads per graph"]
