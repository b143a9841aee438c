"""``zoneplan init`` and ``info``: the sample store, refusals that leave everything as it was."""

from __future__ import annotations

import hashlib
import json
import shutil

import pandas as pd
import pyogrio

from zoneplan.cli import main
from zoneplan.commands.core import SAMPLE_DIR


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_init_builds_the_sample_and_info_describes_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ZONEPLAN_ADMIN_PASSWORD", "admin-pass-123")
    db = tmp_path / "z.gpkg"
    assert main(["init", "--db", str(db)]) == 0
    assert "synthetic sample" in capsys.readouterr().out
    assert main(["info", "--db", str(db), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["layers"]["plots"]["count"] >= 150
    assert info["layers"]["users"]["count"] == 3
    assert info["plots_by_status"]["available"]["area_ha"] > 0
    lon0, lat0, lon1, lat1 = info["layers"]["zone"]["extent_wgs84"]
    assert 76.8 < lon0 < lon1 < 76.9 and 43.3 < lat0 < lat1 < 43.4


def test_init_refuses_to_overwrite_without_force(tmp_path, capsys):
    db = tmp_path / "z.gpkg"
    db.write_bytes(b"precious")
    assert main(["init", "--db", str(db)]) == 1
    assert "--force" in capsys.readouterr().err
    assert db.read_bytes() == b"precious"


def test_a_bad_source_builds_nothing_and_keeps_the_old_store(tmp_path, capsys):
    db = tmp_path / "z.gpkg"
    assert main(["init", "--db", str(db)]) == 0
    before = digest(db)
    source = tmp_path / "src"
    shutil.copytree(SAMPLE_DIR, source)
    (source / "plots.prj").unlink()
    assert main(["init", "--db", str(tmp_path / "new.gpkg"), "--source", str(source)]) == 1
    assert "plots.shp" in capsys.readouterr().err
    assert not (tmp_path / "new.gpkg").exists()
    assert main(["init", "--db", str(db), "--force", "--source", str(source)]) == 1
    assert digest(db) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".zoneplan")]


def test_overlapping_plots_in_a_source_are_refused(tmp_path, capsys):
    source = tmp_path / "src"
    source.mkdir()
    for part in (".shp", ".shx", ".dbf", ".prj", ".cpg"):
        shutil.copy(SAMPLE_DIR / f"zone{part}", source / f"zone{part}")
    plots = pyogrio.read_dataframe(SAMPLE_DIR / "plots.shp").head(1)
    twin = plots.copy()
    twin["plot_id"] = "P-999"
    pyogrio.write_dataframe(pd.concat([plots, twin]), source / "plots.shp", encoding="UTF-8")
    assert main(["init", "--db", str(tmp_path / "z.gpkg"), "--source", str(source)]) == 1
    err = capsys.readouterr().err
    assert "P-999" in err and "overlaps" in err
    assert not (tmp_path / "z.gpkg").exists()
