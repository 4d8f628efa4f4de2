"""The query page in a real headless Chromium (Debian's chromium + chromium-driver, installed when missing)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import httpx
import pytest

T000, T001, T004 = "NCT06281886", "NCT05173246", "NCT07581821"


def _install_chromium() -> None:
    """The test setup installs Debian's chromium and its driver when the machine lacks them."""
    if shutil.which("apt-get") is None:
        pytest.fail("chromium/chromedriver are missing and apt-get is not available to install them")
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    command = sudo + ["apt-get", "install", "-y", "--no-install-recommends", "chromium", "chromium-driver"]
    if subprocess.run(command, env=env, capture_output=True).returncode != 0:
        subprocess.run(sudo + ["apt-get", "update"], env=env, capture_output=True, check=True)
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            pytest.fail("could not install chromium and chromium-driver: " + done.stderr[-2000:])


@pytest.fixture(scope="module")
def browser():
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        _install_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-extensions", "--no-first-run",
                 "--window-size=1400,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=shutil.which("chromedriver")), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _wait(driver, condition, timeout=20):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition)


def _set_query(driver, text: str) -> None:
    driver.execute_script("document.getElementById('query').value = arguments[0];", text)


def _run_and_wait(driver) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, "run").click()
    _wait(driver, lambda d: "ms" in d.find_element(By.ID, "status").text)


def test_query_page_runs_an_example_and_shows_rows(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    browser.get(f"{server}/query")
    # The named queries arrive as examples.
    _wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#examples option")) > 20)
    Select(browser.find_element(By.ID, "examples")).select_by_value("pd1-vegfr-tki-trials")
    assert "VEGFRTyrosineKinaseInhibitor" in browser.find_element(By.ID, "query").get_attribute("value")
    _run_and_wait(browser)
    rows = browser.find_elements(By.CSS_SELECTOR, "#results-table tbody tr")
    assert [row.find_elements(By.TAG_NAME, "td")[0].text for row in rows] == [T000, T004]
    status = browser.find_element(By.ID, "status").text
    assert re.fullmatch(r"2 rows in \d+ ms(, computed ahead or asked before)?", status), status
    assert browser.find_element(By.ID, "downloads").is_displayed()


def test_query_page_binds_example_parameters_and_links_iris_to_their_pages(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    browser.get(f"{server}/query")
    _wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#examples option")) > 20)
    Select(browser.find_element(By.ID, "examples")).select_by_value("trials-by-drug")
    text = browser.find_element(By.ID, "query").get_attribute("value")
    # Bound in the outer group and again in the group whose FILTER tests the name.
    assert text.count('VALUES (?drug_name) { ("toripalimab") }  # parameters: change them here') == 2
    _wait(browser, lambda d: httpx.get(f"{server}/status").json()["warm"]["state"] == "done")
    _run_and_wait(browser)
    # The example as the page sent it finds the answer the server computed ahead (service.warm).
    assert "computed ahead" in browser.find_element(By.ID, "status").text
    links = browser.find_elements(By.CSS_SELECTOR, "#results-table tbody a")
    assert links and links[0].get_attribute("href").endswith("/drug/toripalimab")
    # Follow a trial IRI to its page.
    _set_query(browser, "PREFIX ctkg: <ontology/>\nSELECT ?trial WHERE { ?trial a ctkg:Trial } ORDER BY ?trial")
    _run_and_wait(browser)
    first = browser.find_element(By.CSS_SELECTOR, "#results-table tbody a")
    assert first.text == f"http://localhost:8000/trial/{T001}"
    first.click()
    _wait(browser, lambda d: d.current_url.endswith(f"/trial/{T001}"))
    assert T001 in browser.title
    assert browser.find_elements(By.CSS_SELECTOR, 'script[type="application/ld+json"]')
    # The trial page links its arms and drugs onward.
    hrefs = [a.get_attribute("href") for a in browser.find_elements(By.TAG_NAME, "a")]
    assert any(h.endswith(f"/trial/{T001}/arm/1") for h in hrefs)
    assert any(h.endswith("/drug/toripalimab") for h in hrefs)


def test_query_page_shows_the_servers_error(server, browser):
    from selenium.webdriver.common.by import By

    browser.get(f"{server}/query")
    _set_query(browser, "SELECT ?x WHERE { ?x ")
    browser.find_element(By.ID, "run").click()
    error = _wait(browser, lambda d: d.find_elements(By.ID, "error"))[0]
    assert error.text.startswith("400")
    assert "failed after" in browser.find_element(By.ID, "status").text
