"""The OGC benchmark script runs end to end on the sample zone (zoneplan alone, no pygeoapi)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_ogc.py"


def _bench_ogc():
    spec = importlib.util.spec_from_file_location("bench_ogc", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_bench_ogc_runs_on_the_sample_zone(store_path, tmp_path, capsys):
    bench = _bench_ogc()
    argv = ["--db", str(store_path), "--sample", "--baselines", "none", "--workdir", str(tmp_path)]
    argv += ["--boxes", "3", "--fresh", "8", "--seconds", "1", "--rounds", "2", "--clients", "2"]
    assert bench.main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    ours = report["zoneplan"]
    assert ours["requests"] > 0 and ours["errors"] == 0
    assert ours["fresh_boxes"]["requests"] > 0 and ours["fresh_boxes"]["errors"] == 0
    assert ours["features_median"] > 0  # the boxes do meet the sample's available plots
    assert ours["numberMatched_equals_features"] is True
    assert len(report["load_average_each_round"]) == 2


def test_bench_ogc_sample_needs_an_existing_store(tmp_path):
    bench = _bench_ogc()
    argv = ["--db", str(tmp_path / "none.gpkg"), "--sample", "--baselines", "none"]
    with pytest.raises(SystemExit):
        bench.main([*argv, "--workdir", str(tmp_path)])
    assert not (tmp_path / "none.gpkg").exists()
