"""Browser test of updating a layer from a file: Debian's Chromium against a real waitress
server. A planner downloads the plots, keeps only the available ones, uploads the file with
"Replace" ticked, sees every removal listed in red with counts per status, and the write is
refused naming the committed plots; the store stays byte-identical. Then an update by id
changes one cadastral number, versioned and audited."""

from __future__ import annotations

import hashlib
import json
import re

import pytest
from conftest import ARTIFACTS, PASSWORDS

from geo.store import open_store

pytestmark = pytest.mark.browser


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def log_in(page, base: str) -> None:
    page.goto(base + "/lang/en?next=/login", wait_until="domcontentloaded")
    page.fill("input[name=username]", "planner")
    page.fill("input[name=password]", PASSWORDS["planner"])
    page.click("form button[type=submit], form input[type=submit]")
    page.wait_for_load_state("domcontentloaded")


def download_plots(page, base: str, tmp_path) -> dict:
    page.goto(base + "/downloads", wait_until="domcontentloaded")
    with page.expect_download() as info:
        page.click("a.zp-download[href$='/plots.geojson']")
    path = tmp_path / "plots.geojson"
    info.value.save_as(path)
    return json.loads(path.read_text(encoding="utf-8"))


def upload(page, base: str, path, *, replace: bool) -> None:
    page.goto(base + "/upload", wait_until="domcontentloaded")
    page.select_option("select[name=layer]", "plots")
    page.set_input_files("input[name=file]", str(path))
    if replace:
        page.check("#zp-replace")
    page.click(".zp-upload-form button[type=submit]")
    page.wait_for_load_state("domcontentloaded")


def test_replace_lists_removals_in_red_and_refuses_committed_plots(
    live_server, page, store_path, tmp_path
):
    log_in(page, live_server)
    data = download_plots(page, live_server, tmp_path)
    data["features"] = [f for f in data["features"] if f["properties"]["status"] == "available"]
    partial = tmp_path / "available.geojson"
    partial.write_text(json.dumps(data), encoding="utf-8")
    store = open_store(store_path)
    committed = set(
        store.read("plots", where={"status": ["reserved", "allocated", "occupied"]})["plot_id"]
    )
    before = sha256(store_path)

    upload(page, live_server, partial, replace=True)
    removals = page.locator("#zp-removals")
    assert removals.is_visible()
    colour = removals.evaluate("e => getComputedStyle(e).color")
    red, green, blue = map(int, re.findall(r"\d+", colour)[:3])
    assert red > 100 and green < 60 and blue < 60, colour
    counts = dict(
        zip(
            page.eval_on_selector_all("#zp-removals li", "ls => ls.map(l => l.dataset.status)"),
            map(
                int,
                page.eval_on_selector_all(
                    "#zp-removals li strong", "ss => ss.map(s => s.textContent)"
                ),
            ),
        )
    )
    assert counts["occupied"] + counts["allocated"] + counts["reserved"] == len(committed)
    assert sum(counts.values()) == store.count("plots") - len(data["features"])
    assert page.locator("#zp-confirm").count() == 0  # nothing to confirm: refused
    refusal = page.inner_text("#zp-rejected")
    assert "a replace never removes committed plots" in refusal
    assert all(key in refusal for key in committed)
    page.screenshot(path=str(ARTIFACTS / "upload-replace-refused.png"), full_page=True)
    assert sha256(store_path) == before

    # the same file without "Replace": an update by id, nothing removed
    data["features"][0]["properties"]["cadastre"] = "999"
    key = data["features"][0]["properties"]["plot_id"]
    old = store.get("plots", key)
    partial.write_text(json.dumps(data), encoding="utf-8")
    upload(page, live_server, partial, replace=False)
    assert page.locator("#zp-removals").count() == 0
    assert f"{key}: cadastre {old['cadastre']} → 999" in page.inner_text("#zp-updates")
    page.click("#zp-confirm button[type=submit]")
    page.wait_for_load_state("domcontentloaded")
    assert store.get("plots", key)["cadastre"] == "999"
    assert store.get("plots", key)["version"] == old["version"] + 1
    assert (
        set(store.read("plots", where={"status": ["reserved", "allocated", "occupied"]})["plot_id"])
        == committed
    )
    # the refused upload answers 422, which Chromium logs; nothing else may go wrong
    assert [e for e in page.zp_errors if "status of 422" not in e] == []
    assert page.zp_blocked == []
