"""Each parser reads its layout, not five files: other orders, missing sections, longer lists."""

from __future__ import annotations

from conftest import DATA, SAMPLE_FILES
from kg.sources import read_bytes

CTGOV_PAGE = (DATA / SAMPLE_FILES["NCT05173246"]).read_text(encoding="utf-8")


def _sections(page: str) -> tuple[str, list[tuple[str, str]]]:
    """Split a ClinicalTrials.gov-style page into its header and (heading, body) pairs (test helper)."""
    from kg.sources.ctgov_page import SECTIONS

    lines = page.splitlines(keepends=True)
    header, parts, current = [], [], None
    for line in lines:
        if line.strip() in SECTIONS:
            current = [line.strip(), []]
            parts.append(current)
        elif current is None:
            header.append(line)
        else:
            current[1].append(line)
    return "".join(header), [(h, "".join(body)) for h, body in parts]


def _read(text: str):
    (record,) = read_bytes(text.encode("utf-8"), "edited.txt")
    assert not hasattr(record, "message"), str(record)
    return record


def test_ctgov_page_with_sections_reversed_and_some_missing():
    """Sections in reverse order, with References and Study Groups removed, still parse to the same values."""
    header, parts = _sections(CTGOV_PAGE)
    kept = [(h, b) for h, b in parts if h not in ("References", "Study Groups")]
    page = header + "".join(f"{h}\n{b}" for h, b in reversed(kept))
    trial = _read(page)
    assert trial.nct_id == "NCT05173246"
    assert trial.overall_status == "RECRUITING"
    assert trial.enrollment_count == 43
    assert trial.references == [] and trial.arms == []
    assert [i.name for i in trial.interventions] == ["JS001", "nab-paclitaxel", "Cisplatin", "Carboplatin"]
    assert trial.lead_sponsor.name == "Sun Yat-sen University"
    assert len(trial.eligibility.exclusion) == 19


def test_ctgov_page_with_a_second_site_and_a_primary_completion_date():
    """A longer Locations list and a date label the samples lack are read too."""
    page = CTGOV_PAGE.replace(
        "Site Status RECRUITING\n",
        "Site Status RECRUITING\n\nHenan Cancer Hospital\n\nZhengzhou, Henan, China\n\nSite Status NOT_YET_RECRUITING\n",
    ).replace(
        "Study Completion Date\n", "Primary Completion Date\n\n2025-12\n\nStudy Completion Date\n"
    )
    trial = _read(page)
    assert [(l.facility, l.city, l.state, l.status) for l in trial.locations] == [
        ("Sun Yat-sen University Cancer Center", "Guangzhou", "Guangdong", "RECRUITING"),
        ("Henan Cancer Hospital", "Zhengzhou", "Henan", "NOT_YET_RECRUITING"),
    ]
    # Two sites: the page's facility contacts can no longer be attributed, so none is guessed.
    assert all(not l.contacts for l in trial.locations)
    assert trial.primary_completion_date.date == "2025-12"  # a partial date stays partial


def test_ctgov_page_blurbs_are_never_data():
    """The sentence under each section heading of every CT.gov-style sample is not in any value."""
    for name in ("000_9efd11cc5e19c434.txt", "001_3720859e41622b64.txt", "002_f812caaae7d7cedb.txt"):
        page = (DATA / name).read_text(encoding="utf-8")
        lines = [l for l in page.splitlines() if l.strip()]
        headings = {"Basic Information", "Brief Summary", "Detailed Description", "Conditions", "Study Design",
                    "Study Groups", "Interventions", "Eligibility Criteria", "Sponsors", "Locations", "References"}
        blurbs = [lines[i + 1] for i, l in enumerate(lines[:-1]) if l in headings]
        assert len(blurbs) >= 9
        dumped = _read(page).model_dump_json()
        for blurb in blurbs:
            assert blurb not in dumped, blurb


def test_veeva_page_without_treatments_and_trial_design():
    """A Veeva page missing its Treatments and Trial design parts still gives status, phase and conditions."""
    page = (DATA / SAMPLE_FILES["NCT07325539"]).read_text(encoding="utf-8")
    start, end = page.index("Treatments\n"), page.index("Study type\n")
    page = page[:start] + page[end:]
    page = page[: page.index("Trial design\n")] + page[page.index("Trial contacts and locations\n"):]
    trial = _read(page)
    assert trial.nct_id == "NCT07325539"
    assert trial.overall_status == "NOT_YET_RECRUITING"
    assert trial.phases == ["PHASE2"]
    assert trial.interventions == [] and trial.arms == []
    assert trial.design.masking is None


def test_trialfinder_page_with_two_sites_and_two_treatments():
    """A TrialFinderData page with more sites and treatments reads them all, boilerplate still skipped."""
    page = (DATA / SAMPLE_FILES["NCT07581821"]).read_text(encoding="utf-8")
    page = page.replace(
        "Zhuhai, Guangdong, China\n\nHow to Talk",
        "Zhuhai, Guangdong, China\nSun Yat-sen University Cancer Center Guangzhou, Guangdong, China, 510060\n"
        "Guangzhou, Guangdong, China\n\nHow to Talk",
    ).replace("\n\nLocations (1)", "\n\nRADIATION\n\nPalliative radiotherapy\n\n30 Gy in 10 fractions\n\nLocations (2)")
    trial = _read(page)
    assert [(l.facility, l.city, l.zip) for l in trial.locations] == [
        ("Fifth Affiliated Hospital of Sun Yat-sen University", "Zhuhai", "519000"),
        ("Sun Yat-sen University Cancer Center", "Guangzhou", "510060"),
    ]
    assert [(i.type.value, i.name) for i in trial.interventions] == [
        ("DRUG", "Sintilimab + Anlotinib + taxane-based chemotherapy"),
        ("RADIATION", "Palliative radiotherapy"),
    ]
