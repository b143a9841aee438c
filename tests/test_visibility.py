"""The access policy (planner.visibility) on its own: statuses, fields and layers per role."""

from __future__ import annotations

import geopandas as gpd
import pytest
from shapely import box

from geo.layers import LAYERS, PLOT_STATUSES
from geo.store import NotFound
from planner.visibility import (
    HIDDEN_PLOT_FIELDS,
    Forbidden,
    check_readable,
    layer_fields,
    plot_not_found,
    plot_view,
    readable_layers,
)

PRIVATE = ("resident", "project", "invest", "jobs", "power_kw", "water_m3d")


@pytest.mark.parametrize("role", [None, "public", "investor", "nobody"])
def test_public_and_investors_see_no_candidates_and_no_private_fields(role):
    view = plot_view(role)
    assert view.statuses == tuple(s for s in PLOT_STATUSES if s != "candidate")
    assert set(PRIVATE) <= set(view.hidden_fields)
    assert {"plot_id", "cadastre", "status", "sectors", "hazard_ok", "exp_id", "area_ha"} == set(
        view.fields
    )
    assert view.key == "public" and not view.staff
    assert view.where() == {"status": list(view.statuses)}
    assert view.where(["occupied"]) == {"status": ["occupied"]}
    with pytest.raises(Forbidden) as err:
        view.where(["available", "candidate"])
    assert err.value.field == "status" and "candidate" in str(err.value)


@pytest.mark.parametrize("role", ["planner", "admin"])
def test_staff_see_everything(role):
    view = plot_view(role, "someone")
    assert view.statuses == PLOT_STATUSES and view.hidden_fields == ()
    assert view.fields == tuple(LAYERS["plots"].names)
    assert view.key == "staff" and view.staff and view.user == "someone"
    assert view.where() is None
    assert view.where(["candidate"]) == {"status": ["candidate"]}


def test_visible_drops_rows_and_columns_and_hidden_plots_look_missing():
    frame = gpd.GeoDataFrame(
        {
            "plot_id": ["A", "B"],
            "status": ["candidate", "reserved"],
            "resident": ["x", "y"],
            "project": ["p", "q"],
            "ready": ["now", "now"],
        },
        geometry=[box(0, 0, 1, 1), box(1, 1, 2, 2)],
        crs=32642,
    )
    public = plot_view("investor").visible(frame)
    assert public["plot_id"].tolist() == ["B"]
    assert "resident" not in public.columns and "project" not in public.columns
    assert {"ready", "geometry"} <= set(public.columns)
    assert len(plot_view("planner").visible(frame)) == 2
    view = plot_view(None)
    assert not view.sees({"status": "candidate"}) and view.sees({"status": "occupied"})
    assert view.record({"plot_id": "B", "jobs": 3}) == {"plot_id": "B"}
    with pytest.raises(NotFound) as hidden:
        view.require({"status": "candidate"}, "A")
    assert str(hidden.value) == str(plot_not_found("A"))
    with pytest.raises(NotFound) as missing:
        view.require(None, "A")
    assert str(missing.value) == str(hidden.value)


def test_layers_per_role():
    assert "users" not in readable_layers("admin")
    assert "applications" in readable_layers("planner")
    assert "applications" not in readable_layers("investor")
    with pytest.raises(Forbidden):
        check_readable("applications", None)
    with pytest.raises(NotFound):
        check_readable("users", "admin")
    assert not set(HIDDEN_PLOT_FIELDS) & set(layer_fields("plots", None))
    assert layer_fields("plots", "planner") == LAYERS["plots"].names
    assert layer_fields("roads", None) == LAYERS["roads"].names
