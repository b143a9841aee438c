"""A server builds the servicing model at start-up in the background: the catalogue's first
request finds it built, and tiles and pages answer while it builds."""

from __future__ import annotations

import threading

import pytest

import usecases.servicing
from planner.servicing import ServicingModel
from web import create_app
from web.deps import EXTENSION, RevisionCache


@pytest.fixture
def fresh_app(store_path):
    """An app with a cache of its own (nothing built yet)."""
    return create_app(
        {
            "ZONEPLAN_DB": str(store_path),
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "ZONEPLAN_CACHE": RevisionCache(),
        }
    )


def test_first_catalogue_request_after_warm_up_builds_nothing(fresh_app, monkeypatch):
    fresh_app.extensions[EXTENSION].warm_up().join(timeout=300)
    calls: list[str] = []
    facts, init = ServicingModel.facts, ServicingModel.__init__

    def counted_facts(self, *args, **kwargs):
        calls.append("facts")
        return facts(self, *args, **kwargs)

    def counted_init(self, *args, **kwargs):
        calls.append("model")
        init(self, *args, **kwargs)

    monkeypatch.setattr(ServicingModel, "facts", counted_facts)
    monkeypatch.setattr(ServicingModel, "__init__", counted_init)
    response = fresh_app.test_client().get("/api/plots?limit=5")
    assert response.status_code == 200
    assert response.get_json()["numberReturned"] == 5
    assert response.get_json()["features"][0]["properties"]["ready"] is not None
    assert calls == []


def test_tiles_and_pages_answer_while_the_model_builds(fresh_app, monkeypatch):
    started, release = threading.Event(), threading.Event()

    class Slow(ServicingModel):
        def __init__(self, *args, **kwargs):
            started.set()
            assert release.wait(120)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(usecases.servicing, "ServicingModel", Slow)
    thread = fresh_app.extensions[EXTENSION].warm_up()
    try:
        assert started.wait(60)
        client = fresh_app.test_client()
        tile = client.get("/tiles/plots/14/11690/5999.mvt")
        assert tile.status_code == 200 and tile.data
        assert client.get("/").status_code == 200
        assert thread.is_alive()  # still building: neither waited for it
    finally:
        release.set()
        thread.join(timeout=300)
    assert not thread.is_alive()
    assert fresh_app.test_client().get("/api/plots?limit=1").status_code == 200
