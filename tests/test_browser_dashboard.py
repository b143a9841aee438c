"""Browser tests (Debian's Chromium, a real server) of the plan dashboard and the printable
plot sheet: the dashboard shows the figures of `zoneplan kpi --json` on the same store, and
both print to one A4 page."""

from __future__ import annotations

import json
import re

import pytest
from conftest import ARTIFACTS, PASSWORDS

from zoneplan.cli import main

pytestmark = pytest.mark.browser


def log_in(page, base, user, lang="en"):
    page.goto(base + "/login", wait_until="domcontentloaded")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORDS[user])
    page.click("form button[type=submit]")
    page.wait_for_load_state("domcontentloaded")
    page.goto(f"{base}/lang/{lang}?next=/", wait_until="domcontentloaded")


def pdf_pages(data: bytes) -> int:
    """Pages in a PDF (Chromium writes one /Type /Page object per page)."""
    return len(re.findall(rb"/Type\s*/Page(?!s)", data))


def print_view(page, name: str) -> None:
    """A screenshot of the print layout at A4's printable width, to look at."""
    size = page.viewport_size
    page.set_viewport_size({"width": 718, "height": 1030})
    page.wait_for_timeout(300)  # the charts follow their boxes' new size
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)
    page.set_viewport_size(size)


def kpi_json(capsys, store_path) -> dict:
    capsys.readouterr()
    assert main(["kpi", "--db", str(store_path), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_dashboard_shows_the_kpi_figures_and_prints_on_one_page(
    live_server, page, store_path, capsys
):
    expected = kpi_json(capsys, store_path)
    log_in(page, live_server, "planner")
    page.goto(live_server + "/dashboard", wait_until="load")
    page.wait_for_selector("#zp-dashboard[data-charts='4']")
    rows = page.locator("#zp-dash-targets tr[data-target]")
    assert rows.count() == len(expected["targets"]) == 4
    for t in expected["targets"]:
        row = page.locator(f"#zp-dash-targets tr[data-target='{t['target_id']}']")
        assert float(row.get_attribute("data-actual")) == t["actual"]
        assert float(row.get_attribute("data-target-value")) == t["target"]
    invest = page.locator("#zp-dash-targets tr[data-metric='invest']").inner_text()
    assert "29.9 bn ₸" in invest and "13.3 bn ₸" in invest and "224%" in invest
    parks = page.locator("#zp-dash-targets tr[data-metric='parks']").inner_text()
    assert "6" in parks and "40" in parks and "15%" in parks
    figures = page.locator("#zp-dash-figures")
    assert (
        float(figures.locator("[data-key=invest]").get_attribute("data-value"))
        == (expected["investment"]["invest"])
    )
    assert "289 bn ₸" in figures.locator("[data-key=invest]").inner_text()
    jobs = figures.locator("[data-key=jobs]")
    assert int(jobs.get_attribute("data-value")) == expected["investment"]["jobs"] == 7145
    assert int(figures.locator("[data-key=plots]").get_attribute("data-value")) == expected["plots"]
    ready = figures.locator("[data-key=ready]")
    assert int(ready.get_attribute("data-value")) == expected["ready_to_build"]["plots"]
    # the substation under repair is listed at zero, with its status
    heads = {h["asset_id"]: h for h in expected["headroom"] if h["layer"] == "substations"}
    ss12 = page.locator("#zp-dash-headroom li[data-asset='SS-12']")
    assert float(ss12.get_attribute("data-value")) == heads["SS-12"]["headroom"] == 0.0
    assert "under repair" in ss12.inner_text() and "0 kW" in ss12.inner_text()
    assert page.zp_errors == [] and page.zp_blocked == []
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
    page.emulate_media(media="print")
    pdf = page.pdf(format="A4", print_background=True)
    (ARTIFACTS / "dashboard.pdf").write_bytes(pdf)
    assert pdf_pages(pdf) == 1
    print_view(page, "dashboard-print.png")
    page.emulate_media(media="screen")
    # in Russian: the locale's decimal comma
    page.goto(live_server + "/lang/ru?next=/dashboard", wait_until="load")
    page.wait_for_selector("#zp-dashboard[data-charts='4']")
    assert "29,9" in page.locator("#zp-dash-targets tr[data-metric='invest']").inner_text()
    page.screenshot(path=str(ARTIFACTS / "dashboard-ru.png"), full_page=True)
    assert page.zp_errors == []


def test_plot_sheet_prints_on_one_a4_page(live_server, page):
    page.goto(live_server + "/lang/en?next=/plots/P-044", wait_until="domcontentloaded")
    page.click("#zp-sheet-link")
    page.wait_for_load_state("load")
    assert page.url.endswith("/plots/P-044/sheet")
    assert page.locator("#zp-sheet svg path.zp-svg-own").count() == 1
    assert page.locator("#zp-sheet svg path.zp-svg-road").count() > 0
    explain = page.locator("#zp-sheet-explain").inner_text()
    assert "road: fronts" in explain and "ready to build now" in explain
    assert "Cadastral number" in page.locator("#zp-sheet").inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "plot-sheet.png"), full_page=True)
    page.emulate_media(media="print")
    assert not page.locator(".zp-header").is_visible()
    pdf = page.pdf(format="A4", print_background=True)
    (ARTIFACTS / "plot-sheet.pdf").write_bytes(pdf)
    assert pdf_pages(pdf) == 1
    print_view(page, "plot-sheet-print.png")
    assert page.zp_errors == [] and page.zp_blocked == []
