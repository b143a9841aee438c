"""Imports in separate processes: killed mid-write, and two writers at once."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_io_support import Y0, grid_plots, make_store, sha256

from geo.io import write_shapefile
from geo.store import open_store

ROOT = Path(__file__).resolve().parents[1]


def zoneplan(*argv: str | Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    code = "import sys; from zoneplan.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.Popen(
        [sys.executable, "-c", code, *map(str, argv)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )


def integrity(path: Path) -> str:
    """PRAGMA integrity_check (opening the file also rolls back a hot journal)."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


@pytest.mark.slow
def test_kill_during_import_leaves_store_as_before(tmp_path):
    db = make_store(tmp_path / "zone.gpkg")
    write_shapefile("plots", grid_plots(50_000), tmp_path)
    before = sha256(db)
    journal = Path(f"{db}-journal")
    size0 = db.stat().st_size
    proc = zoneplan("import", "plots", tmp_path / "plots.shp", "--db", db)
    deadline = time.monotonic() + 120
    # "mid-write": the rollback journal exists (a write transaction has started
    # changing pages) and the database file itself has grown (pages spilled)
    while time.monotonic() < deadline and proc.poll() is None:
        if journal.exists() and db.stat().st_size > size0:
            break
        time.sleep(0.002)
    assert proc.poll() is None, f"import finished before the kill: {proc.communicate()}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert journal.exists(), "no hot journal: the kill did not land mid-write"
    assert sha256(db) != before  # the file on disk was half-written...
    assert integrity(db) == "ok"  # ...and the first opener rolls the journal back
    assert not journal.exists()
    assert sha256(db) == before
    assert open_store(db).count("plots") == 6


@pytest.mark.slow
def test_two_writers_at_once(tmp_path):
    db = make_store(tmp_path / "zone.gpkg")
    for name, y0 in (("north", Y0 + 10_000), ("south", Y0 + 20_000)):
        folder = tmp_path / name
        folder.mkdir()
        write_shapefile("plots", grid_plots(5_000, y0=y0, prefix=name[0].upper()), folder)
    procs = [
        zoneplan("import", "plots", tmp_path / n / "plots.shp", "--db", db, "--user", n)
        for n in ("north", "south")
    ]
    outs = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert integrity(db) == "ok"
    store = open_store(db)
    assert store.count("plots") == 6 + 10_000
    assert {"north", "south"} <= set(store.read("audit")["username"])


@pytest.mark.slow
def test_two_writers_same_ids_insert_once(tmp_path):
    """The second writer re-plans inside its transaction: the ids are now stored and equal,
    so its update by id changes nothing (no duplicate, no second insert in the audit)."""
    db = make_store(tmp_path / "zone.gpkg")
    write_shapefile("plots", grid_plots(3_000, y0=Y0 + 10_000), tmp_path)
    procs = [zoneplan("import", "plots", tmp_path / "plots.shp", "--db", db) for _ in range(2)]
    outs = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert all("Traceback" not in err for _, err in outs)
    assert integrity(db) == "ok"
    store = open_store(db)
    assert store.count("plots") == 6 + 3_000
    bulk = store.read("audit", where={"layer": "plots", "action": "insert", "feat_id": "*"})
    assert len(bulk) == 1  # one bulk insert of 3,000, not two
