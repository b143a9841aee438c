"""The application lifecycle: submit, list, withdraw, accept (reserving the plot), reject.

On a four-plot store without infrastructure, so the needs here carry no power, water or rail
demand (tests/test_reservation.py checks capacity on the sample zone)."""

from __future__ import annotations

import re
import shutil

import geopandas as gpd
import pytest
import shapely

from geo.crs import WORKING_EPSG
from geo.store import Conflict, Invalid, NotFound, create_store, open_store
from planner import applications as apps
from planner.catalogue import Forbidden, search
from usecases import applications as usecase

E, N = 650_000.0, 4_799_000.0
NEEDS = {
    "project": "Автокомпоненты",
    "company": "ТОО «Астана Моторс»",
    "sector": "machine",
    "min_ha": 1.5,
    "max_ha": 4,
    "power_kw": 0,
    "water_m3d": None,
    "rail_need": False,
    "hazard": 3,
    "invest": 5.2e9,
    "jobs": 250,
}


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    zone = create_store(tmp_path_factory.mktemp("apps") / "z.gpkg")
    zone.insert(
        "plots",
        gpd.GeoDataFrame(
            {
                "plot_id": ["P-1", "P-2", "P-3", "P-4"],
                "status": ["available", "available", "reserved", "available"],
                "sectors": ["*", "machine,food", "*", "food"],
            },
            geometry=[
                shapely.box(E, N, E + 200, N + 100),
                shapely.box(E + 300, N, E + 600, N + 100),
                shapely.box(E + 700, N, E + 900, N + 100),
                shapely.box(E + 1000, N, E + 1200, N + 100),
            ],
            crs=WORKING_EPSG,
        ),
    )
    return zone.path


@pytest.fixture()
def zone(template, tmp_path):
    """A fresh copy of the four-plot store for each test (building one takes a second)."""
    shutil.copy(template, tmp_path / "z.gpkg")
    return open_store(tmp_path / "z.gpkg")


def submit(zone, user="aliya", **changes):
    return usecase.apply(zone, {**NEEDS, **changes}, user=user, role="investor").application


def test_investor_submits_for_any_plot_and_sees_it(zone):
    app = submit(zone)
    assert app["status"] == "submitted" and app["investor"] == "aliya" and app["plot_id"] is None
    assert app["project"] == "Автокомпоненты" and app["company"] == "ТОО «Астана Моторс»"
    assert app["rail_need"] is False and app["jobs"] == 250 and app["version"] == 1
    assert app["created"] and app["created"] == app["updated"]
    assert [a["app_id"] for a in apps.list_applications(zone, user="aliya", role="investor")] == [
        app["app_id"]
    ]


def test_specific_plot_must_exist_be_available_and_fit(zone):
    assert submit(zone, plot_id="P-2")["plot_id"] == "P-2"
    with pytest.raises(NotFound, match="no plot 'P-9'"):
        submit(zone, plot_id="P-9")
    with pytest.raises(Conflict, match="P-3 is reserved"):
        submit(zone, plot_id="P-3")
    with pytest.raises(Invalid) as err:
        submit(zone, plot_id="P-4")
    assert err.value.problems[0].field == "sector" and "allows food" in str(err.value)
    with pytest.raises(Invalid, match="outside the 1.5–1.8 ha applied for"):
        submit(zone, plot_id="P-1", max_ha=1.8)


@pytest.mark.parametrize(
    "changes, field",
    [
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
    ],
)
def test_bad_fields_are_named_and_nothing_is_written(zone, changes, field):
    with pytest.raises(Invalid) as err:
        submit(zone, **changes)
    assert field in [p.field for p in err.value.problems]
    assert zone.count("applications") == 0


def test_required_fields_and_body_shape(zone):
    with pytest.raises(Invalid) as err:
        usecase.apply(zone, {}, user="aliya", role="investor")
    assert {"project", "sector", "min_ha", "max_ha"} <= {p.field for p in err.value.problems}
    with pytest.raises(Invalid, match="JSON object"):
        usecase.apply(zone, ["x"], user="aliya", role="investor")


def test_only_investors_submit(zone):
    with pytest.raises(Forbidden):
        usecase.apply(zone, NEEDS, user="pat", role="planner")


def test_investors_see_only_their_own(zone):
    mine, theirs = submit(zone), submit(zone, user="bolat")
    assert [a["app_id"] for a in apps.list_applications(zone, user="bolat", role="investor")] == [
        theirs["app_id"]
    ]
    assert {a["app_id"] for a in apps.list_applications(zone, user="pat", role="planner")} == {
        mine["app_id"],
        theirs["app_id"],
    }
    with pytest.raises(NotFound):
        apps.get_application(zone, mine["app_id"], user="bolat", role="investor")
    with pytest.raises(NotFound):
        usecase.withdraw(zone, mine["app_id"], user="bolat", role="investor")


def test_withdraw_once(zone):
    app = submit(zone)
    out = usecase.withdraw(zone, app["app_id"], user="aliya", role="investor")
    assert out["status"] == "withdrawn" and out["version"] == 2
    with pytest.raises(Conflict, match="withdrawn"):
        usecase.withdraw(zone, app["app_id"], user="aliya", role="investor")


def test_accept_reserves_the_plot_in_one_transaction(zone):
    app = submit(zone)
    out = usecase.accept(zone, app["app_id"], "P-2", user="pat", role="planner")
    assert out["status"] == "reserved" and out["assigned"] == "P-2"
    plot = zone.get("plots", "P-2")
    assert plot["status"] == "reserved"
    # the plot carries the application's demand and identity
    assert (
        plot["resident"],
        plot["project"],
        plot["sector"],
        plot["jobs"],
        plot["invest"],
        plot["hazard"],
    ) == ("ТОО «Астана Моторс»", "Автокомпоненты", "machine", 250, 5.2e9, 3)
    # the investor sees it; the catalogue no longer offers the plot
    mine = apps.get_application(zone, app["app_id"], user="aliya", role="investor")
    assert mine["status"] == "reserved"
    from planner.catalogue import parse_filters

    assert "P-2" not in search(zone, parse_filters({})).rows["plot_id"].tolist()
    audit = zone.read("audit")
    assert {"plots", "applications"} <= set(audit["layer"]) and set(audit["username"]) >= {"pat"}


def test_withdrawing_an_accepted_application_releases_the_plot(zone):
    app = submit(zone)
    usecase.accept(zone, app["app_id"], "P-2", user="pat", role="planner")
    out = usecase.withdraw(zone, app["app_id"], user="aliya", role="investor")
    assert out["status"] == "withdrawn" and out["assigned"] == "P-2"
    plot = zone.get("plots", "P-2")
    assert plot["status"] == "available"
    assert all(
        plot[f] is None
        for f in (
            "resident",
            "project",
            "sector",
            "jobs",
            "invest",
            "power_kw",
            "water_m3d",
            "hazard",
            "rail_need",
        )
    )


def test_a_plot_taken_by_someone_else_is_not_released(zone):
    first, second = submit(zone), submit(zone, user="bolat", company="ТОО «Другая»")
    usecase.accept(zone, first["app_id"], "P-2", user="pat", role="planner")
    # a planner frees the plot by hand, and it goes to the second application
    zone.update("plots", "P-2", {"status": "available"}, user="pat")
    usecase.accept(zone, second["app_id"], "P-2", user="pat", role="planner")
    usecase.reject(zone, first["app_id"], "late", user="pat", role="planner")
    plot = zone.get("plots", "P-2")
    assert plot["status"] == "reserved" and plot["resident"] == "ТОО «Другая»"


def test_an_occupied_plot_is_not_released(zone):
    app = submit(zone)
    usecase.accept(zone, app["app_id"], "P-2", user="pat", role="planner")
    for status in ("allocated", "occupied"):
        zone.update("plots", "P-2", {"status": status}, user="pat")
    with pytest.raises(Conflict, match="P-2 is occupied"):
        usecase.withdraw(zone, app["app_id"], user="aliya", role="investor")
    assert (
        apps.get_application(zone, app["app_id"], user="pat", role="planner")["status"]
        == "reserved"
    )


def test_accept_refuses_unavailable_or_unsuitable_plots_and_writes_nothing(zone):
    app = submit(zone)
    with pytest.raises(Conflict, match="P-3 is reserved"):
        usecase.accept(zone, app["app_id"], "P-3", user="pat", role="planner")
    with pytest.raises(usecase.Refused) as err:
        usecase.accept(zone, app["app_id"], "P-4", user="pat", role="planner")
    assert [b.rule for b in err.value.breaches] == ["sector"]
    assert "plot P-4 allows food, not machine" in str(err.value)
    with pytest.raises(Invalid) as err:
        usecase.accept(zone, app["app_id"], None, user="pat", role="planner")
    assert err.value.problems[0].field == "plot_id"
    with pytest.raises(NotFound, match="no plot 'P-404'"):  # as GET /api/plots/P-404 answers
        usecase.accept(zone, app["app_id"], "P-404", user="pat", role="planner")
    assert (
        apps.get_application(zone, app["app_id"], user="pat", role="planner")["status"]
        == "submitted"
    )
    assert zone.get("plots", "P-4")["status"] == "available"


def test_accept_defaults_to_the_plot_applied_for(zone):
    app = submit(zone, plot_id="P-1")
    assert usecase.accept(zone, app["app_id"], user="pat", role="planner")["assigned"] == "P-1"


def test_a_plot_cannot_be_reserved_twice(zone):
    first, second = submit(zone), submit(zone, user="bolat")
    usecase.accept(zone, first["app_id"], "P-1", user="pat", role="planner")
    with pytest.raises(Conflict, match="P-1 is reserved"):
        usecase.accept(zone, second["app_id"], "P-1", user="pat", role="planner")
    assert (
        apps.get_application(zone, second["app_id"], user="pat", role="planner")["status"]
        == "submitted"
    )


def test_stale_versions_conflict(zone):
    app = submit(zone)
    with pytest.raises(Conflict, match="changed by someone else"):
        usecase.reject(zone, app["app_id"], "no", user="pat", role="planner", version=7)
    with pytest.raises(Conflict):
        usecase.accept(zone, app["app_id"], "P-1", user="pat", role="planner", version=0)
    assert zone.get("plots", "P-1")["status"] == "available"
    usecase.reject(zone, app["app_id"], "no", user="pat", role="planner", version=1)


def test_reject_needs_a_reason_the_investor_sees(zone):
    app = submit(zone)
    with pytest.raises(Invalid) as err:
        usecase.reject(zone, app["app_id"], "   ", user="pat", role="planner")
    assert err.value.problems[0].field == "reason"
    usecase.reject(
        zone, app["app_id"], "Зона не допускает класс опасности 3", user="pat", role="planner"
    )
    mine = apps.list_applications(zone, user="aliya", role="investor")[0]
    assert mine["status"] == "rejected" and mine["reason"] == "Зона не допускает класс опасности 3"
    with pytest.raises(Conflict):
        usecase.accept(zone, app["app_id"], "P-1", user="pat", role="planner")


def test_only_planners_decide(zone):
    app = submit(zone)
    with pytest.raises(Forbidden):
        usecase.accept(zone, app["app_id"], "P-1", user="aliya", role="investor")
    with pytest.raises(Forbidden):
        usecase.reject(zone, app["app_id"], "x", user="aliya", role="investor")
    with pytest.raises(NotFound):
        usecase.reject(zone, "A-nope", "x", user="pat", role="planner")


def test_matching_filters_find_plots_for_an_any_plot_application(zone):
    f = apps.matching_filters({**NEEDS, "rail_need": False, "power_kw": 0, "water_m3d": None})
    assert (f.min_area, f.max_area, f.sector, f.rail, f.min_power) == (
        1.5,
        4.0,
        "machine",
        None,
        None,
    )
    assert search(zone, f).rows["plot_id"].tolist() == ["P-1", "P-2"]


# ----------------------------------------------------------------- the page (web/catalogue.py)
def _csrf(client, path="/applications"):
    from conftest import scrape_csrf

    return scrape_csrf(client.get(path).get_data(as_text=True))


ANY_PLOT = {
    "project": "Склад",
    "company": "ТОО «Логистика»",
    "sector": "logistics",
    "min_ha": "0.5",
    "max_ha": "30",
    "power_kw": "",
    "water_m3d": "",
    "jobs": "15",
}


def test_page_lifecycle_investor_and_planner(investor_client, planner_client, client, store):
    assert client.get("/applications").status_code == 302
    token = _csrf(investor_client)
    r = investor_client.post("/applications", data={**ANY_PLOT, "csrf_token": token})
    assert r.status_code == 302
    mine = store.read("applications", where={"project": "Склад"})
    app_id = mine["app_id"].iloc[0]
    page = investor_client.get("/applications").get_data(as_text=True)
    assert app_id in page and f"/applications/{app_id}/withdraw" in page
    # the planner sees it with candidate plots, and rejects it with a reason
    staff = planner_client.get("/applications").get_data(as_text=True)
    assert f"/applications/{app_id}/accept" in staff and f"/applications/{app_id}/reject" in staff
    ptoken = _csrf(planner_client)
    r = planner_client.post(
        f"/applications/{app_id}/reject",
        data={"reason": "Участок под склад не предусмотрен", "csrf_token": ptoken},
    )
    assert r.status_code == 302
    page = investor_client.get("/applications").get_data(as_text=True)
    assert "Участок под склад не предусмотрен" in page
    assert f"/applications/{app_id}/withdraw" not in page
    # a second one is accepted for a candidate plot from the form's list
    investor_client.post(
        "/applications", data={**ANY_PLOT, "project": "Склад-2", "csrf_token": token}
    )
    second = store.read("applications", where={"project": "Склад-2"})["app_id"].iloc[0]
    staff = planner_client.get("/applications").get_data(as_text=True)
    form = staff[staff.index(f"/applications/{second}/accept") :]
    plot_id = re.search(r'<option value="([^"]+)"', form).group(1)
    r = planner_client.post(
        f"/applications/{second}/accept", data={"plot_id": plot_id, "csrf_token": ptoken}
    )
    assert r.status_code == 302 and store.get("plots", plot_id)["status"] == "reserved"
    assert store.get("applications", second)["assigned"] == plot_id
    # investors cannot accept; withdrawing the accepted one gives the plot back
    assert (
        investor_client.post(
            f"/applications/{second}/accept", data={"plot_id": plot_id, "csrf_token": token}
        ).status_code
        == 403
    )
    assert (
        planner_client.post(
            "/applications/A-nope/reject", data={"reason": "x", "csrf_token": ptoken}
        ).status_code
        == 404
    )
    r = investor_client.post(
        f"/applications/{second}/withdraw", data={"csrf_token": token}, follow_redirects=True
    )
    assert f"Участок {plot_id} освобождён" in r.get_data(as_text=True)  # Russian by default
    assert store.get("plots", plot_id)["status"] == "available"


def test_page_form_errors_name_the_field(investor_client, planner_client, store):
    before = store.count("applications")
    r = investor_client.post(
        "/applications", data={**ANY_PLOT, "sector": "oil", "csrf_token": _csrf(investor_client)}
    )
    assert r.status_code == 422 and 'id="err-sector"' in r.get_data(as_text=True)
    assert store.count("applications") == before
    r = planner_client.post("/applications", data={**ANY_PLOT, "csrf_token": _csrf(planner_client)})
    assert r.status_code == 403
