"""The OpenAPI document is generated from the models the API validates with, and the API
honours it: schemathesis drives every operation through the WSGI app (bounded examples)."""

from __future__ import annotations

import re

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, assume, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

from planner.applications import ApplicationIn
from planner.catalogue import PlotFilters

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES = 8
# The WSGI transport hands back bodies as sent; ask for them uncompressed (HTTP clients
# get brotli or gzip from flask-compress).
IDENTITY = {"Accept-Encoding": "identity"}


@pytest.fixture
def bearer(store):
    from usecases import accounts

    return {"Authorization": f"Bearer {accounts.issue_token(store, 'planner')}"}


def _summary(err: BaseException) -> str:
    """The failures of a schemathesis/hypothesis error, one line each."""
    if isinstance(err, BaseExceptionGroup):
        return "; ".join(_summary(e) for e in err.exceptions)
    text = str(err).strip()
    return text[:1500]


def test_api_honours_its_document(app, bearer):
    """No 5xx and no response the document does not describe, for every operation.

    schemathesis' pytest plugin does not run under this pytest, so each operation's
    strategy is driven with hypothesis directly (bounded: a few examples each).
    """
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    failures = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            phases=(Phase.explicit, Phase.generate),  # report, don't shrink: CI time
            suppress_health_check=list(HealthCheck),
        )
        def run(case):
            case.call_and_validate(headers={**IDENTITY, **bearer}, checks=CHECKS)

        try:
            run()
        except (Exception, BaseExceptionGroup) as err:  # noqa: BLE001 - collect them all
            failures.append(f"{operation.label}: {_summary(err)}")
    assert operations >= 15
    assert not failures, "\n\n".join(failures)


def _breaks_a_stated_order(query: dict) -> bool:
    """Whether a query breaks the cross-parameter rules the document states in words
    (JSON Schema cannot): min_area <= max_area and bbox minimum <= maximum."""
    query = query or {}
    low, high = query.get("min_area"), query.get("max_area")
    if low is not None and high is not None and float(low) > float(high):
        return True
    if query.get("bbox"):
        w, s, e, n = (float(v) for v in str(query["bbox"]).split(","))
        return w > e or s > n
    return False


def test_schema_valid_queries_are_accepted(app, bearer):
    """Every GET operation answers schema-valid parameters (bbox ranges, EPSG codes, ISO
    dates, statuses...) without 400/422: what the document allows, the API takes."""
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    failures, operations = [], 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.method.upper() != "GET":
            continue
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=3 * EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case):
            assume(not _breaks_a_stated_order(case.query))
            case.call_and_validate(
                headers=bearer, checks=[not_a_server_error, positive_data_acceptance]
            )

        try:
            run()
        except (Exception, BaseExceptionGroup) as err:  # noqa: BLE001 - collect them all
            failures.append(f"{operation.label}: {_summary(err)}")
    assert operations >= 8
    assert not failures, "\n\n".join(failures)


def test_document_states_ranges_orders_and_crs_codes(client):
    doc = client.get("/api/openapi.json").get_json()
    plots = {p["name"]: p for p in doc["paths"]["/api/plots"]["get"]["parameters"]}
    bbox = plots["bbox"]["schema"]["pattern"]
    assert re.fullmatch(bbox, "76.8,43.2,77,43.4") and re.fullmatch(bbox, "-180,-90,180,90")
    for bad in ("181,0,182,1", "0,91,1,92", "0,0,1", "1e3,0,1,1"):
        assert not re.fullmatch(bbox, bad), bad
    assert "max_area" in plots["min_area"]["description"]
    assert "minLon <= maxLon" in plots["bbox"]["description"]
    export = {p["name"]: p for p in doc["paths"]["/api/export/plots.{format}"]["get"]["parameters"]}
    codes = export["crs"]["schema"]["enum"]
    assert {"EPSG:4326", "EPSG:3857", "EPSG:32643"} <= set(codes)
    assert "EPSG:32600" not in codes  # a zoned grid system, not one projection
    layer = {
        p["name"]
        for p in doc["paths"]["/api/export/{layer}.{format}"]["get"]["parameters"]
        if p["in"] == "query"
    }
    assert layer == {"bbox", "crs"}  # plot filters only where they apply


def test_successful_answers_match_the_document(app, store, bearer):
    """Random ids mostly meet 404s, so walk the happy paths too and validate each answer."""
    from usecases import accounts

    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    investor = {"Authorization": f"Bearer {accounts.issue_token(store, 'investor')}"}
    plots = store.read("plots", where={"status": "available"})["plot_id"].tolist()

    def call(path, method, who, status, **parts):
        case = schema[path][method].Case(**parts)
        response = case.call_and_validate(headers={**IDENTITY, **who}, checks=CHECKS)
        assert response.status_code == status, (path, response.text[:300])
        return response.json()

    call("/api/plots/{plot_id}", "GET", {}, 200, path_parameters={"plot_id": plots[0]})
    call(
        "/api/servicing/{plot_id}",
        "GET",
        {},
        200,
        path_parameters={"plot_id": plots[0]},
        query={"as_of": "2022-11-01"},
    )
    call("/api/plots", "GET", {}, 200, query={"min_area": 1, "sort": "-ready", "limit": 5})
    call("/api/layers/{name}", "GET", bearer, 200, path_parameters={"name": "applications"})
    call(
        "/api/export/{layer}.{format}",
        "GET",
        {},
        200,
        path_parameters={"layer": "roads", "format": "geojson"},
    )
    body = {"project": "Завод", "sector": "food", "min_ha": 0.1, "max_ha": 50}
    apps = [call("/api/applications", "POST", investor, 201, body=body) for _ in range(3)]
    call(
        "/api/applications/{app_id}",
        "GET",
        investor,
        200,
        path_parameters={"app_id": apps[0]["app_id"]},
    )
    call(
        "/api/applications/{app_id}/withdraw",
        "POST",
        investor,
        200,
        path_parameters={"app_id": apps[0]["app_id"]},
        body={},
    )
    call(
        "/api/applications/{app_id}/reject",
        "POST",
        bearer,
        200,
        path_parameters={"app_id": apps[1]["app_id"]},
        body={"reason": "нет"},
    )
    free = [
        p
        for p in plots
        if store.get("plots", p)["sectors"] in (None, "*")
        or "food" in store.get("plots", p)["sectors"]
    ]
    call(
        "/api/applications/{app_id}/accept",
        "POST",
        bearer,
        200,
        path_parameters={"app_id": apps[2]["app_id"]},
        body={"plot_id": free[0]},
    )
    call("/api/applications", "GET", bearer, 200)


def test_document_is_openapi_3_from_the_validating_models(client):
    doc = client.get("/api/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    plots = doc["paths"]["/api/plots"]["get"]
    params = {p["name"]: p["schema"] for p in plots["parameters"]}
    assert set(params) == set(PlotFilters.model_fields)
    assert params["limit"]["maximum"] == 10_000 and params["min_area"]["minimum"] == 0
    assert params["sector"]["enum"] == list(
        PlotFilters.model_json_schema()["properties"]["sector"]["anyOf"][0]["enum"]
    )
    body = doc["paths"]["/api/applications"]["post"]["requestBody"]["content"]["application/json"]
    name = body["schema"]["$ref"].rsplit("/", 1)[1]
    assert (
        doc["components"]["schemas"][name]["properties"].keys() == ApplicationIn.model_fields.keys()
    )
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            for code, response in op["responses"].items():
                if code.startswith(("4", "5")):
                    assert response["content"]["application/json"]["schema"]["$ref"].endswith(
                        "/ErrorOut"
                    ), (method, path, code)
    secured = doc["paths"]["/api/applications/{app_id}/accept"]["post"]
    assert "401" in secured["responses"] and "403" in secured["responses"] and secured["security"]


def test_registry_covers_every_api_route(app):
    from web.openapi import REGISTRY

    documented = {("/api" + path).replace("{", "<").replace("}", ">") for _m, path in REGISTRY}
    routes = {
        r.rule
        for r in app.url_map.iter_rules()
        if r.rule.startswith("/api/")
        and r.endpoint.startswith("api.")
        and r.rule not in ("/api/openapi.json", "/api/docs")
    }
    routes = {"/api/export/<layer>.<format>" if "export" in r else r for r in routes}
    assert routes <= documented, routes - documented
