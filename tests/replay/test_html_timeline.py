"""The ``--html`` timeline page: rebuilds marked and linked to their causes, a filter without
script, compact times, a sticky header, an inline SVG chart, a size bound, and escaping.

Most checks run in headless Chromium (marked ``browser``; the ``driver`` of
``test_html_browser``: with ``CI=true`` they fail rather than skip when the browser is
missing); a few read the HTML text directly.
Logs are built in memory with ``test_replay``'s :class:`Log`, on keys of our choosing.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ledger.cli import cli
from ledger.events import CacheDecided, SessionOpened, SessionSwitched
from ledger.replay import ReplayReport, replay
from ledger.replay._explain import HTML_LIMIT, render_html
from tests.cli.test_replay import KEY as CLI_KEY
from tests.cli.test_replay import url
from tests.replay.test_html_browser import _open, driver
from tests.replay.test_replay import ME, OTHER, Log

browser = pytest.mark.browser

__all__ = ["driver", "url"]  # fixtures used through their names

GUARDS = {"legacy", "hermes", "ledger"}
KEY = "telegram:7"
HOSTILE_KEY = 'k"><script>alert(1)</script>'
HOSTILE_SESSION = "s\"><script>alert(2)</script><a href='x"
HOSTILE_WRITER = 'w"><img src=x onerror=alert(3)>'
TIME = re.compile(r"\d\d:\d\d:\d\d\.\d{3}")


class KeyLog(Log):
    """:class:`Log` on a key of our choosing, with recorded cache decisions and day jumps."""

    def __init__(self, key: str = KEY) -> None:
        super().__init__()
        self.key = key

    def open(self, sid: str, model: str = "m1", previous: str | None = None) -> None:
        opened = SessionOpened(
            session_id=sid, session_key=self.key, source="cli", reason="new", model=model
        )
        self.add(f"session-{sid}", opened)
        self.switch(sid, previous, "new")

    def switch(self, sid: str, previous: str | None, reason: Any = "resume") -> None:
        event = SessionSwitched(
            session_key=self.key, session_id=sid, previous_session_id=previous, reason=reason
        )
        self.add(f"key-{self.key}", event)

    def decided(self, sid: str | None, action: str, reason: str, writer: str = ME) -> None:
        """What a live cache recorded, just before the turn it decided for."""
        event = CacheDecided(session_key=self.key, session_id=sid, action=action, reason=reason)
        self.add(f"decisions-{self.key}", event, writer)

    def next_day(self) -> None:
        """Later events are recorded a day later."""
        self.start += dt.timedelta(days=1)


def story(key: str = KEY, session: str = "b", recorded: bool = False) -> KeyLog:
    """Switches, a foreign write while switched away, an undo, a model change and a day change.

    With ``recorded`` the gateway's cache recorded its decisions that were not hits, just before
    their turns; one is a miss after an eviction where the simulated ledger guard reuses (the
    one disagreement).
    """
    log = KeyLog(key)

    def decided(sid: str, action: str, reason: str) -> None:
        if recorded:
            log.decided(sid, action, reason)

    log.open("a")
    decided("a", "miss", "miss")
    log.turn("a")
    log.turn("a")
    log.open(session, previous="a")
    decided(session, "reuse", "switch")
    log.turn(session)
    log.switch("a", session)
    log.turn("a")
    log.message(session, "assistant", writer=OTHER)  # the foreign write
    log.switch(session, "a")
    decided(session, "rebuild", "foreign_write")
    log.turn(session)
    log.next_day()
    last = log.message(session, "assistant")
    log.undo(session, [last])
    decided(session, "rebuild", "retracted")
    log.turn(session)
    log.turn(session)
    decided(session, "miss", "miss")  # evicted meanwhile: the simulation cannot know
    log.turn(session)
    log.open("c", model="m2", previous=session)
    decided("c", "rebuild", "signature_changed")
    log.turn("c")
    return log


def page_of(log: Log, tmp_path: Path, name: str = "page", **options: Any) -> Path:
    out = tmp_path / f"{name}.html"
    out.write_text(render_html(replay(log.records, timeline=True), **options), encoding="utf-8")
    return out


def big_log(turns: int) -> KeyLog:
    """Two writers on three sessions, a foreign write every 7th turn, an undo every 11th."""
    log = KeyLog()
    log.open("a")
    log.open("b", previous="a")
    log.open("c", previous="b")
    sessions = ("a", "b", "c")
    for number in range(turns):
        sid = sessions[number % 3]
        log.switch(sid, sessions[(number - 1) % 3])
        log.turn(sid)
        if number % 7 == 0:
            log.message(sid, "assistant", writer=OTHER)
        if number % 11 == 0:
            log.undo(sid, [log.message(sid, "assistant")])
    return log


# -- the HTML text -------------------------------------------------------------------------------


class _Rows(HTMLParser):
    """The page's ``tr`` ids and classes, and every ``href``/``id``/``data-*`` attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, set[str]] = {}
        self.hrefs: list[str] = []
        self.ids: list[str] = []
        self.attributes: list[tuple[str, str]] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        found = {name: value or "" for name, value in attrs}
        self.attributes += found.items()
        if "id" in found:
            self.ids.append(found["id"])
        if tag == "tr" and "id" in found:
            self.rows[found["id"]] = set(found.get("class", "").split())
        if tag == "a":
            self.hrefs.append(found.get("href", ""))


def parsed(text: str) -> _Rows:
    rows = _Rows()
    rows.feed(text)
    return rows


def test_every_link_has_its_target_and_ids_are_unique(tmp_path: Path) -> None:
    """Each ``#e-N`` link lands on a row that exists; ``e-<position>`` ids are unique."""
    found = parsed(page_of(story(recorded=True), tmp_path).read_text())
    assert len(found.ids) == len(set(found.ids))
    links = [h for h in found.hrefs if h.startswith("#e-")]
    assert links
    assert all(h[1:] in found.rows for h in links)
    rebuilds = [i for i, classes in found.rows.items() if {"turn", "rebuild"} <= classes]
    assert rebuilds
    assert all(re.fullmatch(r"e-\d+", i) for i in found.rows)


def test_log_text_in_keys_sessions_and_writers_never_becomes_markup(tmp_path: Path) -> None:
    """A key, session id and writer holding ``"><script>`` stay text, in attributes too."""
    log = story(HOSTILE_KEY, HOSTILE_SESSION)
    log.message(HOSTILE_SESSION, "assistant", writer=HOSTILE_WRITER)
    log.switch(HOSTILE_SESSION, "c")
    log.turn(HOSTILE_SESSION)
    whole = page_of(log, tmp_path).read_text()
    capped = page_of(log, tmp_path, limit=10).read_text()  # the filtered layout
    assert html.escape(HOSTILE_WRITER) in whole
    assert f"foreign write by {html.escape(HOSTILE_WRITER)}" in whole  # a cause link's label
    for text in (whole, capped):
        _no_markup_from_the_log(text)


def _no_markup_from_the_log(text: str) -> None:
    assert "<script" not in text
    assert "<img" not in text
    assert "<a href='x" not in text
    assert html.escape(HOSTILE_KEY) in text
    assert html.escape(HOSTILE_SESSION) in text
    found = parsed(text)
    assert found.tags <= {
        "html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "b", "i", "code",
        "table", "thead", "tbody", "tr", "th", "td", "small", "br", "a", "input", "label",
        "section", "svg", "g", "text", "line", "rect",
    }  # fmt: skip
    assert ("data-key", HOSTILE_KEY) in found.attributes  # escaped, so it parses back whole
    assert all(re.fullmatch(r"#[ek]-\d+", h) for h in found.hrefs)
    assert not any(name.startswith("on") for name, _value in found.attributes)


def test_a_large_replay_gives_a_small_page(tmp_path: Path) -> None:
    """Tens of thousands of events: the page keeps the marked turns up to the limit, and its
    size is bound by the limit, not by the log."""
    log = big_log(12_000)
    report = replay(log.records, timeline=True)
    assert report.events > 35_000
    capped = render_html(report).encode()
    assert len(capped) < 2_000_000
    rows = parsed(capped.decode()).rows
    assert len(rows) <= HTML_LIMIT
    assert all({"rebuild"} & c or {"disagree"} & c or {"cause"} & c for c in rows.values())
    assert b'id="left-out"' in capped
    assert b"ledger explain KEY --html FILE" in capped
    small = render_html(report, limit=300).encode()
    assert len(parsed(small.decode()).rows) <= 300
    assert len(small) < len(capped) / 3
    assert b"did not fit and were left out" in small
    (tmp_path / "big.html").write_bytes(capped)


def test_html_limit_is_an_option_of_both_commands(url: str, tmp_path: Path) -> None:
    """``--html-limit N`` caps the page of ``explain`` and of ``replay``."""
    for command, args in (("explain", [CLI_KEY]), ("replay", [])):
        out = tmp_path / f"{command}.html"
        result = CliRunner().invoke(
            cli, [command, "--url", url, *args, "--html", str(out), "--html-limit", "5"]
        )
        assert result.exit_code == 0, result.output
        found = parsed(out.read_text())
        assert 0 < len(found.rows) <= 5
        assert 'id="left-out"' in out.read_text()
    result = CliRunner().invoke(cli, ["replay", "--url", url, "--html-limit", "-1"])
    assert result.exit_code != 0


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: the page renders the replay report, whose backends agree (test_replay_cli)."""
    return f"sqlite:///{tmp_path / 'ledger.db'}"


# -- in Chromium ---------------------------------------------------------------------------------


def _visible_rows(driver: Any) -> list[Any]:
    from selenium.webdriver.common.by import By

    return [
        row
        for row in driver.find_elements(By.CSS_SELECTOR, "table.timeline tbody tr[id]")
        if row.is_displayed()
    ]


def _cells(row: Any) -> list[str]:
    from selenium.webdriver.common.by import By

    return [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]


@browser
@pytest.mark.parametrize("limit", [HTML_LIMIT, 8])
def test_a_rebuild_links_to_the_foreign_write_that_caused_it(
    driver: Any, tmp_path: Path, limit: int
) -> None:
    """Follow the link of the highlighted foreign-write rebuild: it lands on the other writer's
    message, which is highlighted as the target (whole page, and filtered page)."""
    from selenium.webdriver.common.by import By

    _open(driver, page_of(story(), tmp_path, limit=limit))
    turns = driver.find_elements(By.CSS_SELECTOR, "tr.turn.rebuild")
    assert turns
    for turn in turns:
        assert turn.value_of_css_property("background-color") != "rgba(0, 0, 0, 0)"
        assert "rebuild" in turn.find_element(By.CSS_SELECTOR, "td.mark").text
    (turn,) = [t for t in turns if "rebuild (foreign_write)" in t.text]
    link = turn.find_element(By.CSS_SELECTOR, "td.causes a")
    assert "foreign write by gw-2" in link.text
    href = link.get_dom_attribute("href")
    link.click()
    assert driver.execute_script("return location.hash") == href
    target = driver.execute_script("return document.querySelector(':target')")
    assert target.get_dom_attribute("id") == href[1:]
    assert target.tag_name == "tr"
    assert target.is_displayed()
    assert {"message", "cause"} <= set(target.get_dom_attribute("class").split())
    cells = _cells(target)
    assert cells[1] == href[3:]  # its position
    assert cells[3] == OTHER  # written by another writer
    assert target.value_of_css_property("outline-style") == "solid"
    # The cause links back to the turn it caused.
    back = target.find_element(By.CSS_SELECTOR, "td.mark a")
    assert back.get_dom_attribute("href") == f"#{turn.get_dom_attribute('id')}"
    # The decision compared baseline → live: the foreign write is the one event in between.
    low, high = (
        int(n) for n in re.findall(r"\d+", turn.find_element(By.CSS_SELECTOR, "td.seq").text)
    )
    assert high - low == 1


@browser
def test_every_rebuild_is_marked_and_linked(driver: Any, tmp_path: Path) -> None:
    """Each rebuild row carries the marker and at least one cause link whose row exists; the
    retraction and the model change are among the causes."""
    from selenium.webdriver.common.by import By

    _open(driver, page_of(story(), tmp_path))
    labels = []
    for turn in driver.find_elements(By.CSS_SELECTOR, "tr.turn.rebuild"):
        assert turn.find_element(By.CSS_SELECTOR, "td.mark").text.startswith("⟳ rebuild")
        links = turn.find_elements(By.CSS_SELECTOR, "td.causes a")
        assert links, turn.text
        for link in links:
            target = link.get_dom_attribute("href")[1:]
            assert driver.find_elements(By.ID, target)
            labels.append(link.text)
    assert any("retraction" in label for label in labels)
    assert any("reconfiguration" in label and "model m2" in label for label in labels)


@browser
def test_the_filter_shows_only_rebuilds_disagreements_and_their_causes(
    driver: Any, tmp_path: Path
) -> None:
    """The checkbox hides the quiet rows with CSS alone (the page has no script)."""
    from selenium.webdriver.common.by import By

    _open(driver, page_of(story(recorded=True), tmp_path))
    assert driver.find_elements(By.TAG_NAME, "script") == []
    everything = _visible_rows(driver)
    box = driver.find_element(By.ID, "only-busts")
    assert not box.is_selected()
    driver.find_element(By.CSS_SELECTOR, "label[for=only-busts]").click()
    assert box.is_selected()
    shown = _visible_rows(driver)
    assert 0 < len(shown) < len(everything)
    turns = [r for r in shown if "turn" in r.get_dom_attribute("class").split()]
    assert turns
    for row in shown:
        classes = set(row.get_dom_attribute("class").split())
        if "turn" in classes:
            assert classes & {"rebuild", "disagree"}, row.text
        else:  # a cause, or the recorded decision of a shown turn
            assert "quiet" not in classes, row.text
    hidden = [r for r in everything if r not in shown]
    assert any("turn" in r.get_dom_attribute("class").split() for r in hidden)
    assert all("quiet" in r.get_dom_attribute("class").split() for r in hidden)
    marked = driver.find_elements(By.CSS_SELECTOR, "tr.turn.rebuild, tr.turn.disagree")
    assert all(r.is_displayed() for r in marked)
    box.click()
    assert len(_visible_rows(driver)) == len(everything)


@browser
def test_the_chart_is_inline_svg_with_one_series_per_guard(driver: Any, tmp_path: Path) -> None:
    """One strip per guard, plus the live cache's when decisions were recorded; each says its
    rebuild total, which matches the totals table."""
    from selenium.webdriver.common.by import By

    for recorded, series in ((False, GUARDS), (True, GUARDS | {"live"})):
        log = story(recorded=recorded)
        report = replay(log.records, timeline=True)
        _open(driver, page_of(log, tmp_path, name=f"chart-{recorded}"))
        chart = driver.find_element(By.CSS_SELECTOR, "body > svg#chart")
        assert chart.is_displayed()
        assert driver.execute_script("return arguments[0].namespaceURI", chart).endswith("svg")
        groups = chart.find_elements(By.CSS_SELECTOR, "g.series")
        assert {g.get_dom_attribute("data-guard") for g in groups} == series
        for group in groups:
            name = group.get_dom_attribute("data-guard")
            bars = group.find_elements(By.CSS_SELECTOR, "rect.rebuild")
            total = group.text
            if name in GUARDS:
                rebuilds = report.guards[name].rebuilds
                assert f"{rebuilds} rebuilds" in total
                assert bool(bars) == (rebuilds > 0)
            else:
                assert "rebuilds" in total
                assert "disagreements" in total
        assert driver.execute_script("return performance.getEntriesByType('resource').length") == 0


@browser
def test_live_decisions_are_shown_beside_the_simulated_guards(driver: Any, tmp_path: Path) -> None:
    """Recorded decisions fill a ``live`` column; a turn where the live cache missed and the
    simulated ledger guard reused is marked as a disagreement; the page says which is which."""
    from selenium.webdriver.common.by import By

    _open(driver, page_of(story(recorded=True), tmp_path))
    heads = [th.text for th in driver.find_elements(By.CSS_SELECTOR, "table.timeline thead th")]
    assert "live\nrecorded" in heads
    assert "ledger\nsimulated" in heads
    legend = driver.find_element(By.ID, "legend").text
    assert "simulated" in legend
    assert "recorded" in legend
    differs = driver.find_elements(By.CSS_SELECTOR, "td.live.disagree")
    assert len(differs) == 1
    assert differs[0].text.startswith("miss (miss)")
    assert "≠ simulated reuse" in differs[0].text
    row = differs[0].find_element(By.XPATH, "..")
    assert "disagree" in row.get_dom_attribute("class").split()
    agrees = [c.text for c in driver.find_elements(By.CSS_SELECTOR, "td.live.agree")]
    assert any(t.startswith("rebuild (foreign_write)") for t in agrees)
    assert "reuse (hit)" in agrees
    # The recorded decision links to its own row in the timeline.
    link = driver.find_element(By.CSS_SELECTOR, "td.live a")
    assert driver.find_element(By.ID, link.get_dom_attribute("href")[1:]).text


@browser
def test_times_are_compact_with_the_date_once_per_day(driver: Any, tmp_path: Path) -> None:
    """``HH:MM:SS.mmm`` in every row; a date row starts each day."""
    from selenium.webdriver.common.by import By

    _open(driver, page_of(story(), tmp_path))
    times = [c.text for c in driver.find_elements(By.CSS_SELECTOR, "td.time")]
    assert times
    assert all(TIME.fullmatch(t) for t in times)
    days = [r.text for r in driver.find_elements(By.CSS_SELECTOR, "tr.day")]
    assert days == ["2026-01-01", "2026-01-02"]


@browser
def test_the_table_header_stays_on_screen(driver: Any, tmp_path: Path) -> None:
    """Scrolled into a long table, its header sticks to the top of the window."""
    from selenium.webdriver.common.by import By

    _open(driver, page_of(big_log(200), tmp_path))
    header = driver.find_element(By.CSS_SELECTOR, "table.timeline thead th")
    assert header.value_of_css_property("position") == "sticky"
    table = driver.find_element(By.CSS_SELECTOR, "table.timeline")
    driver.execute_script(
        "arguments[0].scrollIntoView(); window.scrollBy(0, arguments[0].offsetHeight / 2)", table
    )
    table_top = driver.execute_script("return arguments[0].getBoundingClientRect().top", table)
    header_top = driver.execute_script("return arguments[0].getBoundingClientRect().top", header)
    assert table_top < -100
    assert abs(header_top) < 2


@browser
def test_the_page_of_a_large_replay_loads_and_its_links_resolve(
    driver: Any, tmp_path: Path
) -> None:
    """The capped page of a large replay: no errors, the note, every link lands on a row."""
    from selenium.webdriver.common.by import By

    big = page_of(big_log(12_000), tmp_path, name="big")
    assert big.stat().st_size < 2_000_000
    messages = _open(driver, big)
    assert [m for m in messages if m["level"] == "SEVERE"] == []
    assert driver.find_element(By.ID, "left-out").is_displayed()
    dangling = driver.execute_script(
        "return [...document.querySelectorAll('a[href^=\"#\"]')]"
        ".filter(a => !document.getElementById(a.hash.slice(1))).length"
    )
    assert dangling == 0
    assert driver.find_element(By.ID, "only-busts").is_selected()


@browser
def test_hostile_names_stay_text_in_the_browser(driver: Any, tmp_path: Path) -> None:
    """A key and session id holding ``"><script>`` show as text: no script, no dialog."""
    from selenium.webdriver.common.by import By

    log = story(HOSTILE_KEY, HOSTILE_SESSION)
    for limit in (HTML_LIMIT, 10):
        _open(driver, page_of(log, tmp_path, name=f"hostile-{limit}", limit=limit))
        assert driver.find_elements(By.TAG_NAME, "script") == []
        assert driver.find_element(By.CSS_SELECTOR, "section.key h2").text == HOSTILE_KEY
        section = driver.find_element(By.CSS_SELECTOR, "section.key")
        assert section.get_dom_attribute("data-key") == HOSTILE_KEY
        sessions = {r.find_elements(By.TAG_NAME, "td")[4].text for r in _visible_rows(driver)}
        assert HOSTILE_SESSION in sessions
        links = driver.find_elements(By.CSS_SELECTOR, "td.causes a")
        assert links
        assert all(re.fullmatch(r"#e-\d+", a.get_dom_attribute("href")) for a in links)


def test_report_fields_feed_the_page() -> None:
    """Sanity of the story: the live cache's decisions were matched to their turns."""
    report: ReplayReport = replay(story(recorded=True).records, timeline=True)
    recorded = [e.recorded for e in report.keys[KEY].timeline if e.recorded is not None]
    assert [(r.action, r.reason) for r in recorded] == [
        ("miss", "miss"),
        ("reuse", "switch"),
        ("rebuild", "foreign_write"),
        ("rebuild", "retracted"),
        ("miss", "miss"),
        ("rebuild", "signature_changed"),
    ]
    assert report.recorded.disagreements == 1
