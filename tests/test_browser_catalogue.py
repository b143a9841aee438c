"""Browser tests of the catalogue: Debian's Chromium against a real waitress server, every
other host blocked. An investor filters, list and map agree, applies and sees the state; a
shapefile downloaded from the page opens with pyshp and keeps Cyrillic text."""

from __future__ import annotations

import json
import urllib.request
import zipfile

import pytest
import shapefile
from conftest import ARTIFACTS, PASSWORDS

pytestmark = pytest.mark.browser
HIGHLIGHT = "#e8590c"


def api(base: str, path: str) -> dict:
    with urllib.request.urlopen(base + path, timeout=20) as r:
        return json.loads(r.read())


def loaded(page) -> int:
    """Wait for the list to be drawn; the number of plots matched."""
    page.wait_for_function(
        "() => { const m = document.getElementById('zp-catalogue')"
        ".getAttribute('data-matched'); return m !== null && "
        "!document.getElementById('zp-catalogue').hasAttribute('aria-busy'); }"
    )
    return int(page.get_attribute("#zp-catalogue", "data-matched"))


def listed(page) -> list[str]:
    return page.eval_on_selector_all("#zp-plot-table tbody tr", "rs => rs.map(r => r.dataset.plot)")


def drawn(page) -> list[str]:
    return page.eval_on_selector_all("path.zp-plot", "ps => ps.map(p => p.dataset.plot)")


def log_in(page, base, user):
    page.goto(base + "/login?next=/plots", wait_until="domcontentloaded")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORDS[user])
    page.click("form button[type=submit], form input[type=submit]")
    page.wait_for_load_state("domcontentloaded")


def test_filters_keep_list_map_and_url_in_sync(live_server, page):
    page.goto(live_server + "/lang/en?next=/plots", wait_until="domcontentloaded")
    everything = loaded(page)
    assert everything == api(live_server, "/api/plots?limit=1")["numberMatched"] > 0
    page.fill("input[name=min_area]", "2")
    page.click("#zp-filters button[type=submit]")
    page.wait_for_url("**/plots?min_area=2")
    matched = loaded(page)
    want = [f["id"] for f in api(live_server, "/api/plots?min_area=2&limit=1000")["features"]]
    assert 0 < matched == len(want) < everything
    assert listed(page) == want and sorted(drawn(page)) == sorted(want)
    assert page.inner_text("#zp-count").startswith(f"{matched} ")
    # a select filters at once and the link can be shared
    page.select_option("select[name=sector]", "food")
    page.wait_for_url("**/plots?min_area=2&sector=food")
    food = [
        f["id"]
        for f in api(live_server, "/api/plots?min_area=2&sector=food&limit=1000")["features"]
    ]
    assert (
        loaded(page) == len(food) and listed(page) == food and sorted(drawn(page)) == sorted(food)
    )
    # sorting the list by area, largest first
    page.click("button.zp-sort[data-sort=area_ha]")
    page.click("button.zp-sort[data-sort=area_ha]")
    page.wait_for_url("**sort=-area_ha")
    loaded(page)
    areas = [
        float(t.replace(",", ""))
        for t in page.eval_on_selector_all(
            "#zp-plot-table tbody tr td:nth-child(2)", "tds => tds.map(t => t.textContent)"
        )
    ]
    assert areas == sorted(areas, reverse=True)
    # list -> map
    target = listed(page)[min(2, len(food) - 1)]
    page.click(f"#zp-plot-table tr[data-plot='{target}'] td:nth-child(2)")
    assert page.get_attribute(f"path.zp-plot[data-plot='{target}']", "stroke") == HIGHLIGHT
    assert page.locator(f"path.zp-plot[stroke='{HIGHLIGHT}']").count() == 1
    page.wait_for_timeout(600)  # the map flies to the plot
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "catalogue.png"))
    # map -> list
    other = listed(page)[0]
    page.dispatch_event(f"path.zp-plot[data-plot='{other}']", "click")
    assert "zp-selected" in page.get_attribute(f"tr[data-plot='{other}']", "class")
    assert page.locator("tr.zp-selected").count() == 1
    shared = page.url
    page.goto(shared, wait_until="domcontentloaded")
    assert loaded(page) == len(food) and page.input_value("input[name=min_area]") == "2"
    assert page.zp_blocked == [], page.zp_blocked[:3]
    assert page.zp_errors == [], page.zp_errors[:3]


def test_investor_applies_and_sees_the_state(live_server, page):
    log_in(page, live_server, "investor")
    page.goto(live_server + "/lang/en?next=/plots?sector=food", wait_until="domcontentloaded")
    loaded(page)
    pid = listed(page)[0]
    page.click(f"#zp-plot-table tr[data-plot='{pid}'] a")
    page.wait_for_url(f"**/plots/{pid}")
    page.wait_for_selector("#zp-catalogue[data-map-ready=true]")
    page.wait_for_selector("#zp-plot-map path.zp-plot")
    page.wait_for_timeout(300)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "catalogue-plot.png"), full_page=True)
    page.fill("input[name=project]", "Тепличный комплекс")
    page.fill("input[name=company]", "ТОО «Жасыл Алма»")
    page.select_option("select[name=sector]", "food")
    page.fill("input[name=power_kw]", "250")
    page.fill("input[name=jobs]", "60")
    page.click(".zp-apply button[type=submit]")
    page.wait_for_url("**/applications")
    row = page.locator("tr", has_text="Тепличный комплекс")
    assert row.count() == 1 and "submitted" in row.inner_text()
    assert row.locator("a", has_text=pid).count() == 1
    page.screenshot(path=str(ARTIFACTS / "catalogue-applications.png"), full_page=True)
    # withdrawing changes the state the investor sees
    row.locator("button", has_text="Withdraw").click()
    page.wait_for_load_state("domcontentloaded")
    assert "withdrawn" in page.locator("tr", has_text="Тепличный комплекс").inner_text()
    assert page.zp_blocked == [] and page.zp_errors == []


def test_shapefile_downloads_open_with_pyshp_and_keep_cyrillic(live_server, page, tmp_path):
    page.goto(live_server + "/lang/en?next=/plots?min_area=3", wait_until="domcontentloaded")
    matched = loaded(page)
    with page.expect_download() as info:
        page.click("a.zp-download[data-format='shp.zip']")
    path = tmp_path / "plots.zip"
    info.value.save_as(path)
    with zipfile.ZipFile(path) as z:
        z.extractall(tmp_path / "plots")
    plots = shapefile.Reader(str(tmp_path / "plots" / "plots"), encoding="utf-8")
    assert len(plots) == matched and all(r["area_ha"] >= 3 for r in plots.records())
    page.goto(live_server + "/downloads", wait_until="domcontentloaded")
    with page.expect_download() as info:
        page.click("a[href='/api/export/roads.shp.zip']")
    info.value.save_as(tmp_path / "roads.zip")
    with zipfile.ZipFile(tmp_path / "roads.zip") as z:
        z.extractall(tmp_path / "roads")
    assert (tmp_path / "roads" / "roads.cpg").read_text().strip().upper().replace("-", "") == "UTF8"
    names = [
        r["name"] or ""
        for r in shapefile.Reader(str(tmp_path / "roads" / "roads"), encoding="utf-8").records()
    ]
    assert any("\u0400" <= ch <= "\u04ff" for name in names for ch in name)
    assert page.zp_blocked == []
