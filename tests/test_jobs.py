"""Background jobs: state in the store, progress, cancellation, exclusivity, the JSON API."""

from __future__ import annotations

import threading
import time

import pytest

from geo.store import open_store
from usecases import jobs
from usecases.jobs import Busy, JobRunner


def _until(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _spin(release: threading.Event):
    """A job that reports progress until released or cancelled."""

    def fn(ctx):
        i = 0
        while not release.is_set():
            ctx.progress(min(i / 100, 0.99), f"step {i}")
            i += 1
            time.sleep(0.01)
        return {"steps": i}

    return fn


def test_a_job_runs_and_keeps_its_result_in_the_store(store, store_path):
    runner = JobRunner(store)
    job_id = runner.submit(
        "square", {"n": 12}, lambda ctx: {"value": ctx.params["n"] ** 2}, user="planner"
    )
    job = runner.wait(job_id)
    assert (job["state"], job["result"], job["progress"]) == ("done", {"value": 144}, 1.0)
    assert job["params"] == {"n": 12} and job["username"] == "planner" and job["finished"]
    # another process on the same store reads the same job
    assert JobRunner(open_store(store_path)).get(job_id)["result"] == {"value": 144}


def test_progress_is_recorded_and_any_process_can_cancel(store, store_path, monkeypatch):
    monkeypatch.setattr(jobs, "PROGRESS_EVERY_S", 0.0)
    release = threading.Event()
    runner = JobRunner(store)
    job_id = runner.submit("spin", {}, _spin(release), user="planner")
    _until(lambda: (runner.get(job_id)["progress"] or 0) > 0.02)
    assert runner.get(job_id)["state"] == "running"
    assert runner.get(job_id)["message"].startswith("step ")
    other = JobRunner(open_store(store_path))
    other.cancel(job_id, user="planner2")
    job = runner.wait(job_id)
    release.set()
    assert job["state"] == "cancelled" and job["result"] is None


def test_a_cancel_while_running_wins_over_a_result_that_comes_after(store):
    """Cancel pressed while the job ran, the job then finished anyway (it had no progress
    report left): the job ends cancelled, its result dropped."""
    runner = JobRunner(store)

    def finishes_after_cancel(ctx):
        runner.cancel(ctx.job_id, user="planner")
        return {"proposal": [1, 2, 3]}

    job = runner.wait(runner.submit("quick", {}, finishes_after_cancel, user="planner"))
    assert job["state"] == "cancelled" and job["result"] is None
    done = runner.wait(runner.submit("quick", {}, lambda ctx: {"n": 1}, user="planner"))
    assert done["state"] == "done" and done["result"] == {"n": 1}


def test_a_queued_job_is_cancelled_before_it_starts(store):
    release = threading.Event()
    runner = JobRunner(store, workers=1)
    first = runner.submit("spin", {}, _spin(release), user="planner")
    second = runner.submit("spin", {}, _spin(release), user="planner")
    assert runner.get(second)["state"] == "queued"
    assert runner.cancel(second, user="planner")["state"] == "cancelled"
    release.set()
    assert runner.wait(first)["state"] == "done"
    assert runner.wait(second)["state"] == "cancelled"


def test_exclusive_jobs_run_one_at_a_time_per_store(store):
    release = threading.Event()
    runner = JobRunner(store)
    first = runner.submit("allocation", {}, _spin(release), user="planner", exclusive=True)
    with pytest.raises(Busy, match=first):
        runner.submit("allocation", {}, _spin(release), user="planner", exclusive=True)
    other_kind = runner.submit("subdivision", {}, lambda ctx: {}, user="planner", exclusive=True)
    release.set()
    assert runner.wait(first)["state"] == "done" and runner.wait(other_kind)["state"] == "done"
    again = runner.submit(
        "allocation", {}, lambda ctx: {"ok": True}, user="planner", exclusive=True
    )
    assert runner.wait(again)["result"] == {"ok": True}


def test_failures_are_reported_in_words_and_bugs_without_internals(store):
    runner = JobRunner(store)

    def refuse(ctx):
        raise ValueError("the area EXP-9 does not exist")

    def crash(ctx):
        return {}["missing"]

    refused = runner.wait(runner.submit("x", {}, refuse, user="planner"))
    crashed = runner.wait(runner.submit("x", {}, crash, user="planner"))
    assert (refused["state"], refused["error"]) == ("failed", "the area EXP-9 does not exist")
    assert crashed["state"] == "failed" and "KeyError" in crashed["error"]
    assert "missing" not in crashed["error"]


def test_a_job_whose_process_died_is_reported_failed(store):
    runner = JobRunner(store)
    store.insert(
        "jobs",
        __import__("pandas").DataFrame(
            [
                {
                    "job_id": "dead",
                    "kind": "allocation",
                    "state": "running",
                    "username": "planner",
                    "created": "2026-01-01T00:00:00",
                    "heartbeat": "2026-01-01T00:00:00",
                }
            ]
        ),
    )
    job = runner.get("dead")
    assert job["state"] == "failed" and "stopped" in job["error"]
    # and it does not block a new exclusive run
    assert (
        runner.wait(runner.submit("allocation", {}, lambda ctx: {}, user="p", exclusive=True))[
            "state"
        ]
        == "done"
    )


def test_job_writes_leave_no_audit_and_touch_only_the_jobs_revision(store):
    runner = JobRunner(store)
    plots, audit = store.revision(["plots"]), store.count("audit")
    runner.wait(runner.submit("x", {}, lambda ctx: {}, user="planner"))
    assert store.revision(["plots"]) == plots and store.count("audit") == audit


# --------------------------------------------------------------------------- the JSON API
@pytest.fixture
def planner(planner_client, csrf_token):
    planner_client.zp_headers = {"X-CSRFToken": csrf_token(planner_client, "/account")}
    return planner_client


def test_api_polls_lists_and_cancels_jobs(app, planner, investor_client, client):
    from web import deps

    release = threading.Event()
    with app.app_context():
        runner = deps.get_jobs()
        job_id = runner.submit("spin", {"area": "EXP-1"}, _spin(release), user="planner")
    try:
        job = planner.get(f"/api/jobs/{job_id}").get_json()
        assert job["kind"] == "spin" and job["params"] == {"area": "EXP-1"}
        assert job["state"] in ("queued", "running")
        listed = planner.get("/api/jobs?kind=spin").get_json()["jobs"]
        assert [j["job_id"] for j in listed] == [job_id]
        assert client.get(f"/api/jobs/{job_id}").status_code == 401
        assert investor_client.get(f"/api/jobs/{job_id}").status_code == 403
        assert planner.get("/api/jobs/nope").status_code == 404
        assert planner.post(f"/api/jobs/{job_id}/cancel").status_code == 400  # no CSRF token
        r = planner.post(f"/api/jobs/{job_id}/cancel", headers=planner.zp_headers)
        assert r.status_code == 200 and r.get_json()["cancel"] is True
        _until(lambda: planner.get(f"/api/jobs/{job_id}").get_json()["state"] == "cancelled")
    finally:
        release.set()
