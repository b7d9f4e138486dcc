"""The ``--html`` timeline pages of ``ledger explain`` and ``ledger replay`` in a real browser.

Debian's Chromium runs headless under Selenium, with chromedriver given by path so Selenium
Manager never downloads anything. Each page is opened from a ``file://`` URL and must load
without console errors, show its marks, and show the log's ``<script>`` message as plain text:
no script element in the DOM and no dialog. A control page that does run script proves the
detectors can see what they look for.

Without Chromium or chromedriver the tests skip with a reason naming the apt packages; with
``CI=true`` they fail instead, like the PostgreSQL cases in ``conftest.py``.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ledger.cli import cli
from tests.cli.test_replay import KEY, url

pytestmark = pytest.mark.browser

__all__ = ["url"]  # the log-building fixture of test_replay_cli, used here through migrated_url

APT = "apt-get install chromium chromium-driver"
HOSTILE = "<script>alert(1)</script>"
GUARDS = {"legacy", "hermes", "ledger"}
TRANSPARENT = "rgba(0, 0, 0, 0)"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but the browser tests cannot run: {reason}")
    pytest.skip(reason)


def _program(name: str) -> str:
    found = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else "")
    if not found:
        _unavailable(f"{name} is not installed ({APT})")
    return found


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Headless Chromium with a fresh profile, collecting every console message."""
    chromium, chromedriver = _program("chromium"), _program("chromedriver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _unavailable("selenium is not installed (pip install -e '.[dev]')")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An alert must stay open for the test to see it, not be dismissed by the driver.
    options.unhandled_prompt_behavior = "ignore"
    browser = webdriver.Chrome(options=options, service=Service(chromedriver))
    browser.set_page_load_timeout(30)
    try:
        yield browser
    finally:
        browser.quit()


def _open(driver: Any, page: Path) -> list[dict[str, Any]]:
    """Load ``page`` from a file:// URL; its console messages (the log is read and cleared).

    A page that opens a dialog fails here, after the dialog is closed so that it cannot break
    the tests that share the browser.
    """
    _dialog(driver)
    driver.get_log("browser")
    driver.get(page.resolve().as_uri())
    opened = _dialog(driver)
    assert opened is None, f"the page ran script: it opened a dialog saying {opened!r}"
    assert driver.execute_script("return document.readyState") == "complete"
    messages: list[dict[str, Any]] = driver.get_log("browser")
    return messages


def _dialog(driver: Any) -> str | None:
    """The text of an open alert/confirm/prompt, closing it; None when there is none."""
    from selenium.common.exceptions import NoAlertPresentException

    try:
        alert = driver.switch_to.alert
    except NoAlertPresentException:
        return None
    text: str = alert.text
    alert.accept()
    return text


@pytest.fixture(params=["explain", "replay"])
def page(request: pytest.FixtureRequest, url: str, tmp_path: Path) -> Path:
    """The HTML page written by ``ledger explain KEY --html`` or ``ledger replay --html``."""
    out = tmp_path / f"{request.param}.html"
    args = [KEY] if request.param == "explain" else []
    result = CliRunner().invoke(cli, [request.param, "--url", url, *args, "--html", str(out)])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: the page renders the replay report, whose backends agree (test_replay_cli)."""
    return f"sqlite:///{tmp_path / 'ledger.db'}"


def test_page_loads_without_console_errors(driver: Any, page: Path) -> None:
    """A self-contained page: nothing logged at error level, nothing fetched."""
    messages = _open(driver, page)
    assert [m for m in messages if m["level"] == "SEVERE"] == []
    assert driver.title == "ledger replay"
    assert driver.execute_script("return performance.getEntriesByType('resource').length") == 0


def test_page_shows_the_marks(driver: Any, page: Path) -> None:
    """False busts and missed changes are highlighted; the totals list the three guards."""
    from selenium.webdriver.common.by import By

    _open(driver, page)
    for verdict in ("false_bust", "missed_change"):
        cells = driver.find_elements(By.CSS_SELECTOR, f"table.timeline tr > td.decision.{verdict}")
        assert cells, f"no {verdict} cell"
        for cell in cells:
            assert cell.is_displayed()
            assert cell.value_of_css_property("background-color") != TRANSPARENT
    rows = driver.find_elements(By.CSS_SELECTOR, "#totals tr[data-guard]")
    assert {row.get_dom_attribute("data-guard") for row in rows} == GUARDS
    assert all(row.is_displayed() for row in rows)
    labels = [row.find_element(By.TAG_NAME, "td").text for row in rows]
    assert labels == ["mutable counter", "4-tuple fix", "ledger"]


def test_decision_titles_carry_the_reason(driver: Any, page: Path) -> None:
    """Hovering a decision cell shows its reason (and what changed) as the tooltip."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    _open(driver, page)
    cells = driver.find_elements(By.CSS_SELECTOR, "td.decision")
    assert cells
    reasons = set()
    for cell in cells:
        match = re.fullmatch(r"\S+ \((.+)\)", cell.text)
        assert match, cell.text
        reason = match.group(1)
        assert cell.get_dom_attribute("title").startswith(f"{reason} — "), reason
        reasons.add(reason)
    assert {"switch", "retracted", "foreign_write"} <= reasons
    target = driver.find_element(By.CSS_SELECTOR, "td.decision.missed_change")
    ActionChains(driver).move_to_element(target).perform()
    assert driver.execute_script("return arguments[0].matches(':hover')", target)
    assert target.value_of_css_property("cursor") == "help"


def test_script_in_a_message_is_shown_as_text(driver: Any, page: Path) -> None:
    """The log's ``<script>`` message is visible text; no script element, no dialog."""
    from selenium.webdriver.common.by import By

    _open(driver, page)  # fails if a dialog opened
    assert _dialog(driver) is None
    assert driver.find_elements(By.TAG_NAME, "script") == []
    assert HOSTILE in driver.find_element(By.TAG_NAME, "body").text
    events = [e for e in driver.find_elements(By.CSS_SELECTOR, "td.event") if HOSTILE in e.text]
    assert events
    assert all(e.is_displayed() for e in events)


def test_the_detectors_see_script_that_runs(driver: Any, tmp_path: Path) -> None:
    """Control: unescaped markup does open a dialog, leave a script and log an error."""
    from selenium.webdriver.common.by import By

    bad = tmp_path / "bad.html"
    bad.write_text(f"<!doctype html><p>{HOSTILE}</p><script>notDefined()</script>")
    driver.get(bad.resolve().as_uri())
    assert _dialog(driver) == "1"
    assert len(driver.find_elements(By.TAG_NAME, "script")) == 2
    assert HOSTILE not in driver.find_element(By.TAG_NAME, "body").text
    assert any(m["level"] == "SEVERE" for m in driver.get_log("browser"))
