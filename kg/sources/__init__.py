"""Read trial records from files, folders and ZIPs; the format is detected, never passed in.

``read_records(paths)`` yields a ``Trial`` for each record read and a ``RecordFailure`` for
each one that could not be: one bad record never stops the others.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from pydantic import ValidationError

from kg.model import SourceFormat, Source, Trial
from kg.sources import ctgov_json, ctgov_page, trialfinder_page, veeva_page
from kg.sources.errors import RecordError

PAGE_LAYOUTS = (
    (SourceFormat.CTGOV_PAGE, ctgov_page),
    (SourceFormat.VEEVA_PAGE, veeva_page),
    (SourceFormat.TRIALFINDER_PAGE, trialfinder_page),
)
SKIPPED_NAMES = {"README", "README.md", "LICENSE", "NOTICE"}


@dataclass(frozen=True)
class RecordFailure:
    """A record that could not be read: which file (and member), which field, what is wrong."""

    file: str
    message: str
    field: str | None = None
    member: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}!{self.member}" if self.member else self.file
        field = f" [{self.field}]" if self.field else ""
        return f"{where}{field}: {self.message}"


def display_path(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)


@dataclass(frozen=True)
class RawRecord:
    """The bytes of one file or ZIP member, not parsed yet (a build parses these in worker processes)."""

    data: bytes
    file: str
    member: str | None = None

    def parse(self) -> Iterator[Trial | RecordFailure]:
        return read_bytes(self.data, self.file, member=self.member)


def read_records(paths: Iterable[str | Path]) -> Iterator[Trial | RecordFailure]:
    for raw in read_raw(paths):
        if isinstance(raw, RecordFailure):
            yield raw
        else:
            yield from raw.parse()


def read_raw(paths: Iterable[str | Path]) -> Iterator[RawRecord | RecordFailure]:
    """Every file (or ZIP member) under the paths, as bytes; one at a time, so memory stays flat."""
    for path in map(Path, paths):
        if not path.exists():
            yield RecordFailure(str(path), "no such file or folder")
        elif path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and not child.name.startswith(".") and child.name not in SKIPPED_NAMES:
                    yield from _read_file(child)
        else:
            yield from _read_file(path)


def read_file(path: Path) -> Iterator[Trial | RecordFailure]:
    return read_records([path])


def _read_file(path: Path) -> Iterator[RawRecord | RecordFailure]:
    name = display_path(path)
    if zipfile.is_zipfile(path) or path.suffix.lower() == ".zip":
        yield from _read_zip(path, name)
        return
    try:
        data = path.read_bytes()
    except OSError as exc:
        yield RecordFailure(name, f"cannot read: {exc.strerror or exc}")
        return
    yield RawRecord(data, name)


def _read_zip(path: Path, name: str) -> Iterator[RawRecord | RecordFailure]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        yield RecordFailure(name, f"not a readable ZIP archive (truncated or damaged): {exc}")
        return
    with archive:
        for info in archive.infolist():
            if info.is_dir() or Path(info.filename).name.startswith("."):
                continue
            try:
                data = archive.read(info)
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                yield RecordFailure(name, f"damaged ZIP member: {exc}", member=info.filename)
                continue
            yield RawRecord(data, name, info.filename)


def read_bytes(data: bytes, name: str, member: str | None = None) -> Iterator[Trial | RecordFailure]:
    def fail(message: str, field: str | None = None, at: str | None = member) -> RecordFailure:
        return RecordFailure(name, message, field, at)

    if not data.strip():
        yield fail("empty file")
        return
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        yield fail(f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})")
        return
    digest = hashlib.sha256(data).hexdigest()
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        yield from _read_json(text, name, member, digest)
        return
    for fmt, layout in PAGE_LAYOUTS:
        if layout.looks_like(text):
            source = Source(file=name, member=member, format=fmt, sha256=digest)
            try:
                yield layout.parse(text, source)
            except RecordError as exc:
                yield fail(exc.message, exc.field)
            except ValidationError as exc:
                yield fail(_validation_message(exc))
            return
    yield fail(
        "unknown layout: neither ClinicalTrials.gov v2 JSON nor a ClinicalTrials.gov-style, "
        "ClinicalTrials.Veeva or TrialFinderData page"
    )


def _read_json(text: str, name: str, member: str | None, digest: str) -> Iterator[Trial | RecordFailure]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        truncated = " (the file ends early: truncated?)" if exc.pos >= len(text.rstrip()) - 1 else ""
        yield RecordFailure(name, f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}{truncated}",
                            member=member)
        return
    if isinstance(document, dict) and "studies" in document:
        studies, pointer = document["studies"], "/studies"
    elif isinstance(document, list):
        studies, pointer = document, ""
    else:
        studies, pointer = [document], None
    if not isinstance(studies, list):
        yield RecordFailure(name, "'studies' is not a list", "/studies", member)
        return
    for index, study in enumerate(studies):
        at = member if pointer is None else f"{member + '#' if member else ''}{pointer}/{index}"
        source = Source(file=name, member=at, format=SourceFormat.CTGOV_JSON, sha256=digest)
        try:
            yield ctgov_json.study_to_trial(study, source)
        except ValidationError as exc:
            yield RecordFailure(name, _validation_message(exc), _pointer_of(exc), at)
        except (RecordError, ValueError, KeyError, TypeError, AttributeError) as exc:
            message = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
            yield RecordFailure(name, f"not a ClinicalTrials.gov v2 study: {message}", None, at)


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:3]:
        location = ".".join(str(p) for p in error["loc"])
        parts.append(f"{location}: {error['msg']} (got {error.get('input')!r})")
    more = f" (+{exc.error_count() - 3} more)" if exc.error_count() > 3 else ""
    return "; ".join(parts) + more


def _pointer_of(exc: ValidationError) -> str | None:
    errors = exc.errors()
    return ".".join(str(p) for p in errors[0]["loc"]) if errors else None


__all__ = ["RawRecord", "RecordFailure", "read_raw", "read_records", "read_file", "read_bytes", "RecordError"]
