"""Small helpers shared by the page parsers: lines, labelled values, lists, addresses."""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field
from typing import Callable, TypeVar

from kg.sources.errors import RecordError

T = TypeVar("T")

LIST_MARKER = re.compile(r"^\s*(?:[*\-•]|\d{1,3}[.)])\s+")


@dataclass
class Section:
    """The lines under one page heading (blank lines kept, so paragraphs survive)."""

    heading: str
    lines: list[str] = field(default_factory=list)

    @property
    def items(self) -> list[str]:
        """The non-blank lines, stripped."""
        return [line.strip() for line in self.lines if line.strip()]

    @property
    def text(self) -> str:
        """The section as one text, paragraphs separated by one blank line."""
        return collapse("\n".join(self.lines))


def collapse(text: str) -> str:
    """Dedent, drop trailing spaces and surrounding blank lines, keep at most one blank line in a row."""
    lines = [line.rstrip() for line in textwrap.dedent(text).splitlines()]
    text = "\n".join(lines).strip("\n")
    return re.sub(r"\n{3,}", "\n\n", text)


def read_enum(parse: Callable[[str], T], text: str, where: str) -> T:
    """Apply a display-value reader, turning its ValueError into a RecordError at ``where``."""
    try:
        return parse(text)
    except ValueError as exc:
        raise RecordError(str(exc), where) from None


def read_choice(parse: Callable[[str], T], text: str) -> T | str:
    """An enumerated value: the v2 value when the text is known, else the text as written.

    Unknown values are not reading errors: SHACL validation reports them with their place on the page.
    """
    try:
        return parse(text)
    except ValueError:
        return text.strip()


def labelled(items: list[str], labels: set[str]) -> dict[str, list[str]]:
    """Group lines under the label line that precedes them (``Recruitment Status`` / ``RECRUITING``)."""
    groups: dict[str, list[str]] = {}
    current: str | None = None
    for item in items:
        if item in labels:
            current = item
            groups.setdefault(current, [])
        elif current is not None:
            groups[current].append(item)
    return groups


def inline_value(item: str, label: str) -> str | None:
    """``Group Type EXPERIMENTAL`` -> ``EXPERIMENTAL``; ``Role: CONTACT`` -> ``CONTACT``; None if no match."""
    match = re.match(rf"^{re.escape(label)}\s*:?\s*(.*)$", item)
    return match.group(1).strip() if match else None


def split_list_items(lines: list[str]) -> list[str]:
    """Items of a bulleted or numbered list; lines without a marker continue the item above."""
    items: list[str] = []
    base_indent: int | None = None
    for line in lines:
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        marker = LIST_MARKER.match(line)
        if marker and (base_indent is None or indent <= base_indent):
            base_indent = indent
            items.append(line[marker.end():].strip())
        elif items:
            items[-1] = f"{items[-1]}\n{line.strip()}"
        else:
            items.append(line.strip())
    return items


def split_inline_numbered(text: str) -> list[str]:
    """``1. a 2. b 3. c`` written on one line -> ``[a, b, c]``.

    Numbers must follow each other (1, 2, 3 ...), which keeps "v1.1" or "1.0 g" inside an item.
    """
    starts: list[tuple[int, int]] = []
    position = 0
    number = 1
    while True:
        match = re.compile(rf"(?:^|(?<=\s)){number}\.\s").search(text, position)
        if not match:
            break
        starts.append((match.start(), match.end()))
        position = match.end()
        number += 1
    if not starts:
        return [text.strip()] if text.strip() else []
    items = []
    for index, (_, body_start) in enumerate(starts):
        end = starts[index + 1][0] if index + 1 < len(starts) else len(text)
        items.append(text[body_start:end].strip())
    return items


POSTAL_CODE = re.compile(r"^[A-Z0-9][A-Z0-9 \-]{2,9}$")


def split_address(text: str) -> dict[str, str | None]:
    """``Guangzhou, Guangdong, China`` / ``Zhuhai, Guangdong, China, 519000`` -> city, state, zip, country."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    zip_code = None
    if parts and any(ch.isdigit() for ch in parts[-1]) and POSTAL_CODE.match(parts[-1]):
        zip_code = parts.pop()
    result: dict[str, str | None] = {"city": None, "state": None, "zip": zip_code, "country": None}
    if parts:
        result["country"] = parts.pop()
    if parts:
        result["city"] = parts.pop(0)
    if parts:
        # A zip written before the country ("Boston, Massachusetts, 02115, United States").
        if any(ch.isdigit() for ch in parts[-1]) and POSTAL_CODE.match(parts[-1]) and not zip_code:
            result["zip"] = parts.pop()
        result["state"] = ", ".join(parts) or None
    return result


# Words that pages run into a conditions line but that name no disease (they are keywords).
NON_CONDITION_TERMS = (
    "quality of life", "efficacy", "safety", "toxicity", "tolerability", "survival",
    "prognosis", "pharmacokinetics", "immunotherapy", "chemotherapy", "radiotherapy",
    "chemoradiotherapy", "biomarker", "biomarkers",
)


DISEASE_HEAD = re.compile(
    r"\b(carcinoma|cancer|cancinoma|tumou?r|neoplasms?|lymphoma|leuka?emia|sarcoma|melanoma|myeloma|glioma|"
    r"blastoma|mesothelioma|disease|syndrome|metastas[ie]s)$", re.I)


def peel_keywords(line: str) -> tuple[str, list[str]]:
    """``Esophageal Squamous Cell Carcinoma Efficacy Toxicity`` -> (condition, [Efficacy, Toxicity]).

    Words are peeled only when what remains ends like a disease name, so "Cardiac Toxicity" stays whole.
    """
    words = line.split()
    keywords: list[str] = []
    changed = True
    while changed and len(words) > 1:
        changed = False
        for term in NON_CONDITION_TERMS:
            size = len(term.split())
            if len(words) > size and " ".join(words[-size:]).lower() == term:
                keywords.insert(0, " ".join(words[-size:]))
                words = words[:-size]
                changed = True
                break
    if keywords and not DISEASE_HEAD.search(" ".join(words)):
        return line.strip(), []
    return " ".join(words), keywords
