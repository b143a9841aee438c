"""Languages: Russian, Kazakh and English, chosen by the user; every catalogue complete."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir, extract_from_file
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from conftest import unescape_js

ROOT = Path(__file__).resolve().parents[1]
TRANSLATIONS = ROOT / "web" / "translations"
KEYWORDS = {"_": None, "N_": None, "_l": None, "lazy_gettext": None, "gettext": None}
# The pages and modules of the map/accounts issue; other blueprints keep their own coverage.
OWN_FILES = [
    *(f"web/{m}.py" for m in ("__init__", "auth", "pages", "maps", "security", "deps")),
    *(
        f"web/templates/{t}.html"
        for t in ("base", "_legend", "map", "login", "account", "users", "error")
    ),
]


def _catalog(lang: str):
    with open(TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po", "rb") as fh:
        return read_po(fh, locale=lang)


def _extracted(folder: str) -> set[str]:
    method_map = [("**.py", "python"), ("**/templates/**.html", "jinja2")]
    out = set()
    for _file, _line, message, _comments, _ctx in extract_from_dir(
        str(ROOT / folder), method_map=method_map, keywords=KEYWORDS
    ):
        out.add(message if isinstance(message, str) else message[0])
    return out


def _own_strings() -> set[str]:
    out = set()
    for name in OWN_FILES:
        method = "jinja2" if name.endswith(".html") else "python"
        for _line, message, _comments, _ctx in extract_from_file(
            method, str(ROOT / name), keywords=KEYWORDS
        ):
            out.add(message if isinstance(message, str) else message[0])
    return out


# --------------------------------------------------------------------------- choosing
def test_default_language_follows_accept_language(client):
    ru = client.get("/", headers={"Accept-Language": "ru-RU,ru;q=0.9"}).get_data(as_text=True)
    assert '<html lang="ru">' in ru and "Индустриальная зона Алматы" in ru
    en = (
        client.application.test_client()
        .get("/", headers={"Accept-Language": "en-GB,en;q=0.8"})
        .get_data(as_text=True)
    )
    assert '<html lang="en">' in en and "Almaty Industrial Zone" in en
    other = (
        client.application.test_client()
        .get("/", headers={"Accept-Language": "de"})
        .get_data(as_text=True)
    )
    assert '<html lang="ru">' in other  # the zone's default


def test_language_link_switches_and_is_remembered(client):
    response = client.get("/lang/en?next=/login", headers={"Accept-Language": "ru"})
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    page = client.get("/login", headers={"Accept-Language": "ru"}).get_data(as_text=True)
    assert '<html lang="en">' in page and ">Log in<" in page
    client.get("/lang/ru")
    page = client.get("/login", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert '<html lang="ru">' in page and ">Войти<" in page
    client.get("/lang/kk")
    page = client.get("/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert '<html lang="kk">' in page and "Алматы индустриялық аймағы" in page


def test_unknown_language_and_foreign_next_are_ignored(client):
    response = client.get("/lang/xx?next=https://evil.example/")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    page = client.get("/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert '<html lang="en">' in page


def test_logged_in_choice_is_saved_on_the_account(app, login, store):
    from usecases import accounts

    c = app.test_client()
    login(c, "investor")
    c.get("/lang/en")
    assert accounts.get_user(store, "investor")["lang"] == "en"
    other = app.test_client()  # a new browser, Russian by its headers
    login(other, "investor")
    page = other.get("/applications", headers={"Accept-Language": "ru"}).get_data(as_text=True)
    assert '<html lang="en">' in page and "My applications" in page


def test_language_chosen_before_login_is_kept(app, login, store):
    from usecases import accounts

    c = app.test_client()
    c.get("/lang/en")
    login(c, "planner")
    assert accounts.get_user(store, "planner")["lang"] == "en"
    page = c.get("/planner", headers={"Accept-Language": "ru"}).get_data(as_text=True)
    assert '<html lang="en">' in page


# --------------------------------------------------------------------------- what is translated
def test_map_layers_statuses_and_legend_are_translated(client, store):
    ru = unescape_js(client.get("/", headers={"Accept-Language": "ru"}).get_data(as_text=True))
    for word in (
        "Участки",
        "Дороги",
        "Подстанции",
        "Условные обозначения",
        "свободен",
        "не действует",
        "в ремонте",
    ):
        assert word in ru, word
    assert "Rail stations" not in ru
    en = unescape_js(
        client.application.test_client()
        .get("/", headers={"Accept-Language": "en"})
        .get_data(as_text=True)
    )
    assert "Rail stations" in en and "available" in en


def test_data_is_shown_as_stored(client, store):
    road = store.read("roads").dropna(subset=["name"]).iloc[0]
    en = client.get(
        f"/map/features/roads/{road['asset_id']}", headers={"Accept-Language": "en"}
    ).get_json()["html"]
    from markupsafe import escape

    assert str(escape(road["name"])) in en  # a Cyrillic street name, untranslated


def test_servicing_answers_are_translated(client, store):
    pid = store.read("plots", where={"status": "available"}, limit=1).iloc[0]["plot_id"]
    ru = client.get(f"/map/features/plots/{pid}", headers={"Accept-Language": "ru"}).get_json()[
        "html"
    ]
    assert "Инженерное обеспечение" in ru
    assert "готовность" in ru or "можно строить сейчас" in ru
    assert "ready: " not in ru and "ready to build now" not in ru


# --------------------------------------------------------------------------- the catalogues
def test_russian_catalogue_covers_every_web_string_and_schema_label():
    from geo.layers import LAYERS
    from web.labels import VALUE_LABELS

    catalog = _catalog("ru")
    translated = {m.id for m in catalog if m.id and m.string}
    shown = [lyr for lyr in LAYERS.values() if not lyr.internal]  # bookkeeping is never shown
    wanted = _own_strings() | {lyr.label for lyr in shown} | set(VALUE_LABELS.values())
    wanted |= {
        f.label
        for lyr in shown
        for f in lyr.fields
        if not f.system and f.name not in ("pw_hash", "token_hash")
    }
    wanted -= {
        "API token hash",
        "Password hash",
        "Changes (JSON)",
        "Record",
        "Action",
        "Layer",
        "Feature",
        "When",
        "Target id",
    }
    missing = sorted(m for m in wanted if m not in translated)
    assert not missing, f"untranslated (run `make messages`, then translate): {missing[:10]}"


def test_russian_catalogue_covers_the_servicing_answers():
    planner = _extracted("planner")
    if not planner:
        pytest.skip("no marked strings in planner/")
    translated = {m.id for m in _catalog("ru") if m.id and m.string}
    covered = len(planner & translated) / len(planner)
    assert covered >= 0.9, (
        f"only {covered:.0%} of planner/ strings are translated; "
        f"missing: {sorted(planner - translated)[:8]}"
    )


@pytest.mark.parametrize("lang", ["ru", "kk"])
def test_compiled_catalogues_match_the_sources(lang):
    def plain(value):
        return value if isinstance(value, str) else tuple(value)

    po = {
        plain(m.id): plain(m.string)
        for m in _catalog(lang)
        if m.id and any(plain(m.string)) and plain(m.string) != plain(m.id)
    }
    with open(TRANSLATIONS / lang / "LC_MESSAGES" / "messages.mo", "rb") as fh:
        mo = {
            plain(m.id): plain(m.string)
            for m in read_mo(fh)
            if m.id and any(plain(m.string)) and plain(m.string) != plain(m.id)
        }
    assert po == mo, "the .mo is stale: run `make messages` (or pybabel compile)"


@pytest.mark.parametrize("lang", ["ru", "kk"])
def test_every_string_of_the_project_is_translated(lang):
    """100% coverage: each string marked in web/, planner/ and usecases/ has a translation."""
    marked = _extracted("web") | _extracted("planner") | _extracted("usecases")
    catalog = {m.id if isinstance(m.id, str) else m.id[0]: m for m in _catalog(lang) if m.id}
    stale = sorted(marked - set(catalog))
    assert not stale, f"not in the {lang} catalogue (run `make messages`): {stale[:10]}"

    def done(m):
        return all(m.string) if isinstance(m.string, tuple | list) else bool(m.string)

    untranslated = sorted(k for k in marked if not done(catalog[k]))
    assert not untranslated, f"{len(untranslated)} untranslated in {lang}: {untranslated[:10]}"


@pytest.mark.parametrize("lang", ["ru", "kk"])
def test_placeholders_survive_translation(lang):
    for m in _catalog(lang):
        if m.id and m.string:
            ids = m.id if isinstance(m.id, str) else m.id[0]
            text = m.string if isinstance(m.string, str) else m.string[0]
            pattern = r"\{\w+\}|%\(\w+\)[sd]"
            assert sorted(re.findall(pattern, ids)) == sorted(re.findall(pattern, text)), ids
