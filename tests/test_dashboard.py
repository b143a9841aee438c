"""The plan dashboard, the map's plan summary and the plot sheet through the test client:
who may open what, and what each role reads there (the access policy of
planner/visibility.py)."""

from __future__ import annotations

import pytest

from planner.visibility import PUBLIC_KPI_KEYS, kpi_view


def test_only_planners_and_admins_open_the_dashboard(
    client, investor_client, planner_client, admin_client
):
    anonymous = client.get("/dashboard")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    assert investor_client.get("/dashboard").status_code == 403
    for staff in (planner_client, admin_client):
        page = staff.get("/dashboard", headers={"Accept-Language": "en"})
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        assert 'data-target="T-03"' in html and "vendor/chartjs/chart.umd.min.js" in html


def test_dashboard_refuses_a_bad_date_in_words(planner_client):
    html = planner_client.get("/dashboard?as_of=someday").get_data(as_text=True)
    assert "&#39;someday&#39; is not a date" in html
    later = planner_client.get("/dashboard?as_of=2021-06-01").get_data(as_text=True)
    assert 'data-target="T-01" data-metric="projects" data-actual="0.0"' in later


def test_plan_progress_for_everyone_linked_from_the_map(client, planner_client):
    html = client.get("/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert 'id="zp-plan-summary" href="/plan"' in html
    plan = client.get("/plan", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert 'data-target="T-03" data-metric="parks" data-actual="6.0"' in plan
    assert "29.9 bn ₸" in plan and 'href="/dashboard"' not in plan  # the link is for staff
    assert 'href="/dashboard"' in planner_client.get("/plan").get_data(as_text=True)


def test_public_kpi_view_names_no_plot():
    report = {"as_of": None, "today": "2026-01-01", "targets": [], "investment": {}, "headroom": []}
    assert set(kpi_view(report, "public")) == set(PUBLIC_KPI_KEYS)
    assert set(kpi_view(report, "investor")) == set(PUBLIC_KPI_KEYS)
    assert kpi_view(report, "planner") == report


@pytest.mark.parametrize("who", ["client", "investor_client"])
def test_candidate_plots_have_no_sheet_but_for_staff(request, who, planner_client):
    reader = request.getfixturevalue(who)
    hidden = reader.get("/plots/P-189/sheet")
    assert hidden.status_code == 404
    assert reader.get("/plots/NO-SUCH/sheet").status_code == 404
    assert planner_client.get("/plots/P-189/sheet").status_code == 200


def test_sheet_shows_what_the_reader_may_see(client, planner_client):
    public = client.get("/plots/P-047/sheet", headers={"Accept-Language": "en"}).get_data(
        as_text=True
    )
    staff = planner_client.get("/plots/P-047/sheet").get_data(as_text=True)
    # candidates nearby are drawn for planners only
    assert "zp-svg-candidate" not in public and "zp-svg-candidate" in staff
    assert public.count('class="zp-svg-own"') == 1 and "What the plot can connect to" in public
    occupied = client.get("/plots/P-096/sheet").get_data(as_text=True)
    assert "Asia Steel Pipe" not in occupied
    assert "Asia Steel Pipe" in planner_client.get("/plots/P-096/sheet").get_data(as_text=True)
    detail = client.get("/plots/P-047").get_data(as_text=True)
    assert 'href="/plots/P-047/sheet"' in detail
