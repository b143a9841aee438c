"""``zoneplan access steiner`` solves SteinLib files end to end."""

from __future__ import annotations

import json

from planner.access import write_stp
from zoneplan.cli import main

# A star beats the triangle: terminals 1, 2, 3 joined through Steiner vertex 4.
EDGES = [(1, 2, 10.0), (2, 3, 10.0), (1, 3, 10.0), (1, 4, 6.0), (2, 4, 6.0), (3, 4, 6.0)]


def test_solves_a_file_and_proves_the_optimum(tmp_path, capsys):
    path = tmp_path / "star.stp"
    write_stp(path, EDGES, [1, 2, 3])
    assert main(["access", "steiner", str(path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["cost"] == 18.0 and doc["optimal"] is True and doc["lower_bound"] == 18.0
    assert sorted(tuple(e[:2]) for e in doc["tree"]) == [(1, 4), (2, 4), (3, 4)]
    out = tmp_path / "tree.csv"
    assert main(["access", "steiner", str(path), "--heuristic", "-o", str(out)]) == 0
    assert "cost 18" in capsys.readouterr().out
    assert out.read_text().splitlines()[0] == "u,v,cost" and len(out.read_text().splitlines()) == 4


def test_bad_files_and_arguments_are_clear_errors(tmp_path, capsys):
    bad = tmp_path / "bad.stp"
    bad.write_text("garbage\n")
    assert main(["access", "steiner", str(bad)]) == 1
    assert "line 1" in capsys.readouterr().err
    good = tmp_path / "ok.stp"
    write_stp(good, EDGES, [1, 2])
    assert main(["access", "steiner", str(good), "--time-limit", "0"]) == 1
    assert "positive" in capsys.readouterr().err
