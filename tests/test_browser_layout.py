"""Every role in every language on `/` and `/plots`, at desktop and phone (390 px) widths, in
headless Chromium: the header menu, the language switch and logging in or out are reachable,
nothing overflows sideways, and on a phone the legend, layer list and filters start folded.
Screenshots go to test-artifacts/layout/ (git-ignored)."""

from __future__ import annotations

import pytest
from conftest import ARTIFACTS, PASSWORDS

pytestmark = pytest.mark.browser

WIDTHS = {"desktop": (1400, 900), "phone": (390, 844)}
LANGUAGES = ("en", "ru", "kk")
LOG_IN = {"en": "Log in", "ru": "Войти", "kk": "Кіру"}
SHOTS = ARTIFACTS / "layout"


def log_in(page, base, user):
    page.goto(base + "/login", wait_until="domcontentloaded")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORDS[user])
    page.click("main form button[type=submit]")
    page.wait_for_load_state("domcontentloaded")


def _inside_viewport(page, locator) -> None:
    """The element is shown and lies wholly inside the viewport's width."""
    assert locator.is_visible(), locator
    box = locator.bounding_box()
    width = page.evaluate("innerWidth")
    assert box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5, (locator, box, width)


def _no_sideways_overflow(page) -> None:
    sizes = page.evaluate("[document.scrollingElement.scrollWidth, innerWidth]")
    assert sizes[0] <= sizes[1], f"the page is {sizes[0]} px wide in a {sizes[1]} px window"


def _wait_ready(page, path: str) -> None:
    if path == "/":
        page.wait_for_function("() => window.zpMapTiles && !window.zpMapTiles.grid._loading")
    else:
        page.wait_for_function(
            "() => { const r = document.getElementById('zp-catalogue');"
            " return r && r.dataset.matched !== undefined && !r.hasAttribute('aria-busy'); }"
        )


def _check_header(page, width: str, lang: str, role: str, shot: str) -> None:
    header = page.locator("header.zp-header")
    toggle = header.locator(".zp-menu-toggle")
    if width == "phone":
        assert toggle.is_visible() and not header.locator(".zp-nav").is_visible()
        toggle.click()
        assert toggle.get_attribute("aria-expanded") == "true"
        page.screenshot(path=str(SHOTS / f"{shot}-menu.png"))
    else:
        assert not toggle.is_visible()
    for code in LANGUAGES:
        _inside_viewport(page, header.locator(f".zp-langs a[hreflang={code}]"))
    _inside_viewport(page, header.locator(".zp-nav a").first)
    if role == "public":
        _inside_viewport(page, header.get_by_role("link", name=LOG_IN[lang]))
    else:
        _inside_viewport(page, header.locator(".zp-user button.zp-link"))  # log out
        _inside_viewport(page, header.locator(".zp-me"))
    if width == "phone":
        page.keyboard.press("Escape")
        assert toggle.get_attribute("aria-expanded") == "false"
        assert not header.locator(".zp-nav").is_visible()


def _check_page(page, path: str, width: str) -> None:
    if path == "/":
        legend = page.locator("details.zp-legend")
        layers = page.locator(".leaflet-control-layers")
        tools = (".zp-search-input", ".zp-measure-button", ".zp-print-button")
        for tool in tools:
            _inside_viewport(page, page.locator(tool))
        if width == "phone":
            assert legend.get_attribute("open") is None
            assert "leaflet-control-layers-expanded" not in (layers.get_attribute("class") or "")
            # folded, the legend and layer list leave most of the map free
            boxes = [legend.bounding_box(), layers.bounding_box()]
            assert sum(b["width"] * b["height"] for b in boxes) < 0.1 * 390 * 790
            legend.locator("summary").click()
            assert legend.locator("li").first.is_visible()
            _inside_viewport(page, legend)
        else:
            assert legend.get_attribute("open") is not None
            assert "leaflet-control-layers-expanded" in layers.get_attribute("class")
    else:
        filters = page.locator("details.zp-filters-box")
        rows = page.locator("#zp-plot-table tbody tr")
        assert rows.count() > 0
        _inside_viewport(page, page.locator("#zp-cat-map"))
        _inside_viewport(page, page.locator(".zp-search-input"))
        if width == "phone":
            assert filters.get_attribute("open") is None
            filters.locator(":scope > summary").click()
            _inside_viewport(page, page.locator("input[name=min_area]"))
            _inside_viewport(page, page.locator("#zp-filters button[type=submit]"))
        _inside_viewport(page, rows.first.locator("a"))


@pytest.mark.parametrize("role", ["public", "investor", "planner"])
def test_pages_fit_every_width_language_and_role(live_server, page, role):
    if role != "public":
        log_in(page, live_server, role)
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width, (w, h) in WIDTHS.items():
        page.set_viewport_size({"width": w, "height": h})
        for lang in LANGUAGES:
            for path in ("/", "/plots"):
                response = page.goto(f"{live_server}/lang/{lang}?next={path}")
                assert response.ok, (lang, path)
                assert page.get_attribute("html", "lang") == lang
                _wait_ready(page, path)
                _no_sideways_overflow(page)
                name = f"{role}-{lang}-{width}-{'map' if path == '/' else 'plots'}"
                page.screenshot(path=str(SHOTS / f"{name}.png"))
                _check_header(page, width, lang, role, name)
                _check_page(page, path, width)
                _no_sideways_overflow(page)
    assert page.zp_blocked == [], page.zp_blocked[:3]
    assert page.zp_errors == [], page.zp_errors[:3]


def test_every_other_page_fits_a_phone(live_server, page, store):
    """Pages beyond the map and the catalogue, as an admin (who may open them all)."""
    pid = store.read("plots", where={"status": ["available"]}).iloc[0]["plot_id"]
    paths = (
        "/login",
        f"/plots/{pid}",
        "/applications",
        "/downloads",
        "/upload",
        "/planner",
        "/planner/subdivide",
        "/planner/access",
        "/planner/history",
        "/admin/users",
        "/account",
        "/api/docs",
        "/ogc",
    )
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, live_server, "admin")
    SHOTS.mkdir(parents=True, exist_ok=True)
    for path in paths:
        response = page.goto(f"{live_server}/lang/ru?next={path}", wait_until="networkidle")
        assert response.ok, path
        _no_sideways_overflow(page)
        assert page.locator(".zp-menu-toggle").is_visible(), path
        page.screenshot(path=str(SHOTS / f"admin-ru-phone{path.replace('/', '-')}.png"))
    assert page.zp_blocked == [], page.zp_blocked[:3]
