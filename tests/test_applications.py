"""The application lifecycle: submit, list, withdraw, accept (reserving the plot), reject."""
from __future__ import annotations

import shutil

import geopandas as gpd
import pytest
import shapely

from geo.crs import WORKING_EPSG
from geo.store import Conflict, Invalid, NotFound, create_store, open_store
from planner import applications as apps
from planner.catalogue import Forbidden, search

E, N = 650_000.0, 4_799_000.0
NEEDS = {"project": "Автокомпоненты", "company": "ТОО «Астана Моторс»", "sector": "machine",
         "min_ha": 1.5, "max_ha": 4, "power_kw": 800, "water_m3d": 20, "rail_need": True,
         "hazard": 3, "invest": 5.2e9, "jobs": 250}


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    store = create_store(tmp_path_factory.mktemp("apps") / "z.gpkg")
    store.insert("plots", gpd.GeoDataFrame({
        "plot_id": ["P-1", "P-2", "P-3", "P-4"],
        "status": ["available", "available", "reserved", "available"],
        "sectors": ["*", "machine,food", "*", "food"],
    }, geometry=[shapely.box(E, N, E + 200, N + 100), shapely.box(E + 300, N, E + 600, N + 100),
                 shapely.box(E + 700, N, E + 900, N + 100), shapely.box(E + 1000, N, E + 1200, N + 100)],
        crs=WORKING_EPSG))
    return store.path


@pytest.fixture()
def store(template, tmp_path):
    """A fresh copy of the four-plot store for each test (building one takes a second)."""
    shutil.copy(template, tmp_path / "z.gpkg")
    return open_store(tmp_path / "z.gpkg")


def submit(store, user="aliya", **changes):
    return apps.create(store, {**NEEDS, **changes}, user=user, role="investor")


def test_investor_submits_for_any_plot_and_sees_it(store):
    app = submit(store)
    assert app["status"] == "submitted" and app["investor"] == "aliya" and app["plot_id"] is None
    assert app["project"] == "Автокомпоненты" and app["company"] == "ТОО «Астана Моторс»"
    assert app["rail_need"] is True and app["jobs"] == 250 and app["version"] == 1
    assert app["created"] and app["created"] == app["updated"]
    assert [a["app_id"] for a in apps.list_applications(store, user="aliya", role="investor")] \
        == [app["app_id"]]


def test_specific_plot_must_exist_be_available_and_fit(store):
    assert submit(store, plot_id="P-2")["plot_id"] == "P-2"
    with pytest.raises(Invalid) as err:
        submit(store, plot_id="P-9")
    assert err.value.problems[0].field == "plot_id"
    with pytest.raises(Conflict, match="P-3 is reserved"):
        submit(store, plot_id="P-3")
    with pytest.raises(Invalid) as err:
        submit(store, plot_id="P-4")
    assert err.value.problems[0].field == "sector" and "allows food" in str(err.value)
    with pytest.raises(Invalid, match="outside 1.5-1.8 ha"):
        submit(store, plot_id="P-1", max_ha=1.8)


@pytest.mark.parametrize("changes, field", [
    ({"sector": "oil"}, "sector"),
    ({"min_ha": -1}, "min_ha"),
    ({"min_ha": 5, "max_ha": 2}, "max_ha"),
    ({"project": "  "}, "project"),
    ({"hazard": 9}, "hazard"),
    ({"jobs": 2.5}, "jobs"),
    ({"power_kw": "lots"}, "power_kw"),
    ({"owner": "x"}, "owner"),
    ({"status": "reserved"}, "status"),
    ({"investor": "someone-else"}, "investor"),
])
def test_bad_fields_are_named_and_nothing_is_written(store, changes, field):
    with pytest.raises(Invalid) as err:
        submit(store, **changes)
    assert field in [p.field for p in err.value.problems]
    assert store.count("applications") == 0


def test_required_fields_and_body_shape(store):
    with pytest.raises(Invalid) as err:
        apps.create(store, {}, user="aliya", role="investor")
    assert {"project", "sector", "min_ha", "max_ha"} <= {p.field for p in err.value.problems}
    with pytest.raises(Invalid, match="JSON object"):
        apps.create(store, ["x"], user="aliya", role="investor")


def test_only_investors_submit(store):
    with pytest.raises(Forbidden):
        apps.create(store, NEEDS, user="pat", role="planner")


def test_investors_see_only_their_own(store):
    mine, theirs = submit(store), submit(store, user="bolat")
    assert [a["app_id"] for a in apps.list_applications(store, user="bolat", role="investor")] \
        == [theirs["app_id"]]
    assert {a["app_id"] for a in apps.list_applications(store, user="pat", role="planner")} \
        == {mine["app_id"], theirs["app_id"]}
    with pytest.raises(NotFound):
        apps.get_application(store, mine["app_id"], user="bolat", role="investor")
    with pytest.raises(NotFound):
        apps.withdraw(store, mine["app_id"], user="bolat", role="investor")


def test_withdraw_only_when_submitted(store):
    app = submit(store)
    out = apps.withdraw(store, app["app_id"], user="aliya", role="investor")
    assert out["status"] == "withdrawn" and out["version"] == 2
    with pytest.raises(Conflict, match="withdrawn"):
        apps.withdraw(store, app["app_id"], user="aliya", role="investor")


def test_accept_reserves_the_plot_in_one_transaction(store):
    app = submit(store)
    out = apps.accept(store, app["app_id"], "P-2", user="pat", role="planner")
    assert out["status"] == "reserved" and out["assigned"] == "P-2"
    assert store.get("plots", "P-2")["status"] == "reserved"
    # the investor sees it, can no longer withdraw; the catalogue no longer offers the plot
    mine = apps.get_application(store, app["app_id"], user="aliya", role="investor")
    assert mine["status"] == "reserved"
    with pytest.raises(Conflict):
        apps.withdraw(store, app["app_id"], user="aliya", role="investor")
    from planner.catalogue import parse_filters
    assert "P-2" not in search(store, parse_filters({})).rows["plot_id"].tolist()
    audit = store.read("audit")
    assert {"plots", "applications"} <= set(audit["layer"]) and set(audit["username"]) >= {"pat"}


def test_accept_refuses_unavailable_or_unsuitable_plots_and_writes_nothing(store):
    app = submit(store)
    with pytest.raises(Conflict, match="P-3 is reserved"):
        apps.accept(store, app["app_id"], "P-3", user="pat", role="planner")
    with pytest.raises(Invalid) as err:
        apps.accept(store, app["app_id"], "P-4", user="pat", role="planner")
    assert err.value.problems[0].field == "sector"
    with pytest.raises(Invalid) as err:
        apps.accept(store, app["app_id"], None, user="pat", role="planner")
    assert err.value.problems[0].field == "plot_id"
    with pytest.raises(Invalid):
        apps.accept(store, app["app_id"], "P-404", user="pat", role="planner")
    assert apps.get_application(store, app["app_id"], user="pat", role="planner")["status"] == "submitted"
    assert store.get("plots", "P-4")["status"] == "available"


def test_accept_defaults_to_the_plot_applied_for(store):
    app = submit(store, plot_id="P-1")
    assert apps.accept(store, app["app_id"], user="pat", role="planner")["assigned"] == "P-1"


def test_a_plot_cannot_be_reserved_twice(store):
    first, second = submit(store), submit(store, user="bolat")
    apps.accept(store, first["app_id"], "P-1", user="pat", role="planner")
    with pytest.raises(Conflict, match="P-1 is reserved"):
        apps.accept(store, second["app_id"], "P-1", user="pat", role="planner")
    assert apps.get_application(store, second["app_id"], user="pat", role="planner")["status"] \
        == "submitted"


def test_stale_versions_conflict(store):
    app = submit(store)
    with pytest.raises(Conflict, match="changed by someone else"):
        apps.reject(store, app["app_id"], "no", user="pat", role="planner", version=7)
    with pytest.raises(Conflict):
        apps.accept(store, app["app_id"], "P-1", user="pat", role="planner", version=0)
    assert store.get("plots", "P-1")["status"] == "available"
    apps.reject(store, app["app_id"], "no", user="pat", role="planner", version=1)


def test_reject_needs_a_reason_the_investor_sees(store):
    app = submit(store)
    with pytest.raises(Invalid) as err:
        apps.reject(store, app["app_id"], "   ", user="pat", role="planner")
    assert err.value.problems[0].field == "reason"
    apps.reject(store, app["app_id"], "Зона не допускает класс опасности 3",
                user="pat", role="planner")
    mine = apps.list_applications(store, user="aliya", role="investor")[0]
    assert mine["status"] == "rejected" and mine["reason"] == "Зона не допускает класс опасности 3"
    with pytest.raises(Conflict):
        apps.accept(store, app["app_id"], "P-1", user="pat", role="planner")


def test_only_planners_decide(store):
    app = submit(store)
    with pytest.raises(Forbidden):
        apps.accept(store, app["app_id"], "P-1", user="aliya", role="investor")
    with pytest.raises(Forbidden):
        apps.reject(store, app["app_id"], "x", user="aliya", role="investor")
    with pytest.raises(NotFound):
        apps.reject(store, "A-nope", "x", user="pat", role="planner")


def test_matching_filters_find_plots_for_an_any_plot_application(store):
    f = apps.matching_filters({**NEEDS, "rail_need": False, "power_kw": 0, "water_m3d": None})
    assert (f.min_area, f.max_area, f.sector, f.rail, f.min_power) == (1.5, 4.0, "machine", None, None)
    assert search(store, f).rows["plot_id"].tolist() == ["P-1", "P-2"]
