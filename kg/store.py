"""The embedded Oxigraph store on disk, built aside and swapped in atomically.

``settings.store_dir`` is a symbolic link to the live store (``<store_dir>.d/<build-id>``).
A build writes a new directory next to it and, only when the build has finished, points the
link at it with one atomic ``rename``. A build that fails or is killed leaves the link, and so
the store being served, untouched. The previous store is kept until the next successful build
so that a reader that still has it open is not pulled from under. A build that cannot write its
files (a full disk, a folder that became read-only) ends with a StoreError saying where and what,
and that the store being served is unchanged (``write_failure``).
"""

from __future__ import annotations

import fcntl
import gc
import os
import shutil
import traceback
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from pyoxigraph import Store


class StoreError(RuntimeError):
    pass


class StoreBusy(StoreError):
    """Another build or update holds the store's write lock."""


# ``.<store name>.link-<pid>``: the new link, written beside the old one before it replaces it.
LINK_TMP_PREFIX = ".{name}.link-"


def stores_root(store_dir: Path) -> Path:
    return store_dir.parent / (store_dir.name + ".d")


@contextmanager
def store_lock(store_dir: Path, timeout: float | None = None):
    """One writer at a time: a build and an update (or two updates) each start from the live store
    and swap in their result, so interleaved they would lose one another's changes.

    An advisory ``flock`` on a file beside the link; the kernel releases it if the holder dies.
    ``timeout`` None waits as long as it takes; otherwise StoreBusy after ``timeout`` seconds.
    """
    lock_path = store_dir.parent / f".{store_dir.name}.lock"
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(lock_path, "a")
    except OSError as exc:
        raise StoreError(f"cannot create the store's lock file {lock_path}: {exc.strerror or exc}") from None
    deadline = None if timeout is None else time.monotonic() + timeout
    with handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if deadline is not None and time.monotonic() >= deadline:
                    raise StoreBusy(f"another build or update of {store_dir} is running; try again shortly") from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def live_store_path(store_dir: Path) -> Path | None:
    """The directory the link points to, or None when no store has been built."""
    if store_dir.is_symlink():
        target = store_dir.resolve()
        return target if target.is_dir() else None
    if store_dir.is_dir():  # a plain directory given by the user
        return store_dir
    return None


def new_build_dir(store_dir: Path, build_id: str) -> Path:
    root = stores_root(store_dir)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the store folder {root}: {exc.strerror or exc}; {_kept(store_dir)}") from None
    if not os.access(root, os.W_OK):
        raise StoreError(f"the store folder {root} is not writable; {_kept(store_dir)}")
    path = root / f"{build_id}-{uuid.uuid4().hex[:8]}.building"
    if path.exists():
        shutil.rmtree(path)
    return path


def discard_build(path: Path, failure: BaseException | None = None) -> None:
    """Remove a build that failed before its swap.

    pyoxigraph has no ``close()``: RocksDB keeps writing into the folder (a flush, its LOG) until
    the last reference to the Store is gone, and the traceback of ``failure`` holds references
    through the frames it passed. Those frames have finished, so their locals are cleared first.
    """
    if failure is not None and failure.__traceback__ is not None:
        traceback.clear_frames(failure.__traceback__)
    gc.collect()
    for _ in range(3):  # a late write can recreate a file while the tree is being removed
        shutil.rmtree(path, ignore_errors=True)
        if not path.exists():
            return


def swap_in(store_dir: Path, built: Path) -> Path:
    """Make ``built`` the live store with an atomic rename of the link; keep one previous store."""
    final = built.with_suffix("") if built.suffix == ".building" else built
    if store_dir.exists() and not store_dir.is_symlink():
        raise StoreError(f"{store_dir} is a real folder, not a link this tool manages; move it away first")
    previous = live_store_path(store_dir)
    link_tmp = store_dir.parent / f"{LINK_TMP_PREFIX.format(name=store_dir.name)}{os.getpid()}"
    # The new link is written before the build is renamed: when the folder holding the link cannot be
    # written, the swap fails with nothing moved and the caller discards the build as a whole.
    try:
        if link_tmp.is_symlink() or link_tmp.exists():
            link_tmp.unlink()
        link_tmp.symlink_to(os.path.relpath(final, store_dir.parent))
    except OSError as exc:
        raise StoreError(f"cannot write the store link in {store_dir.parent}: {exc.strerror or exc}; "
                         f"{_kept(store_dir)}") from None
    try:
        if final != built:
            built.rename(final)
        os.replace(link_tmp, store_dir)
    except OSError as exc:
        link_tmp.unlink(missing_ok=True)
        if final != built and final.exists() and not built.exists():
            final.rename(built)  # back under its .building name, so that it is discarded like any failed build
        raise StoreError(f"cannot swap in the new store {final}: {exc.strerror or exc}; {_kept(store_dir)}") from None
    _prune(store_dir, keep={final, previous})
    return final


def _prune(store_dir: Path, keep: set[Path | None]) -> None:
    """Remove stores that are neither live nor the one before it, and leftovers of failed builds."""
    root = stores_root(store_dir)
    for path in root.iterdir():
        if path.resolve() not in {k.resolve() for k in keep if k}:
            shutil.rmtree(path, ignore_errors=True)
    # A writer killed between writing its new link and renaming it over the old one leaves the link behind.
    prefix = LINK_TMP_PREFIX.format(name=store_dir.name)
    for stale in store_dir.parent.iterdir():
        if stale.name.startswith(prefix):
            stale.unlink(missing_ok=True)


def _kept(store_dir: Path) -> str:
    """How a failed build or update leaves things: the end of its error message."""
    live = live_store_path(store_dir)
    return f"the store being served ({live}) is unchanged" if live else "no store was being served"


def write_failure(store_dir: Path, dumps_root: Path, failure: OSError) -> StoreError:
    """A build that could not write its files (a full disk, a file-size limit, a folder turned read-only),
    said as where and what, for a person rather than as a traceback."""
    if failure.errno is None:  # pyoxigraph's IO errors carry RocksDB's message, file included, but no errno
        problem = str(failure)
    else:
        problem = failure.strerror or str(failure)
        if failure.filename:
            problem += f": {failure.filename}"
    # The store, its dumps and the build's reports are written under one folder unless the dumps are put elsewhere.
    folder = os.path.commonpath([stores_root(store_dir), dumps_root])
    return StoreError(f"cannot write the new build under {folder}: {problem}; the build was discarded and "
                      f"{_kept(store_dir)}")


def open_read_only(store_dir: Path) -> Store:
    path = live_store_path(store_dir)
    if path is None:
        raise StoreError(f"no store at {store_dir}: run `kg build` first")
    return Store.read_only(str(path))
