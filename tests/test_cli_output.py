"""What the command line prints for people (issues #17 and #18): human units, one line per
repeated problem, plain "no file X", objective values with their meaning, a servicing table
whose key explains every mark, and progress only on a terminal."""

from __future__ import annotations

import json
import re

import pytest

from zoneplan.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_help_starts_with_what_the_tool_is_for(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "Plan and run an industrial zone" in out
    assert "thin translation" not in out and "geo/planner" not in out


@pytest.mark.parametrize(
    "argv",
    [
        ["allocate", "--applications", "nope.csv"],
        ["access", "steiner", "nope.stp"],
    ],
)
def test_missing_files_are_named_like_everywhere_else(capsys, sample_db, tmp_path, argv):
    missing = str(tmp_path / argv[-1])
    db = ["--db", str(sample_db)] if argv[0] == "allocate" else []
    code, out, err = run(capsys, *argv[:-1], missing, *db)
    assert code == 1 and out == ""
    assert f"error: no file {missing}" in err
    assert "Errno" not in err and "Traceback" not in err


def test_repeated_csv_problems_fold_into_one_line(capsys, sample_db, tmp_path):
    path = tmp_path / "apps.csv"
    rows = [f"B-{i:03d},1,2,food,maybe,10,1,1" for i in range(50)]
    rows.append("B-900,1,2,food,no,abc,1,1")
    path.write_text(
        "app_id,min_ha,max_ha,sector,rail_need,power_kw,invest,jobs\n" + "\n".join(rows)
    )
    code, out, err = run(capsys, "allocate", "--applications", str(path), "--db", str(sample_db))
    assert code == 1 and out == ""
    assert "(51 problem(s)); nothing was used" in err
    assert "50 lines: rail_need 'maybe' is not yes/no (line 2, line 3, line 4 and 47 more)" in err
    assert "line 52: power_kw 'abc' is not a number" in err
    assert err.count("is not yes/no") == 1


def test_allocate_prints_units_and_what_the_objective_means(capsys, sample_db):
    code, out, err = run(
        capsys, "allocate", "--db", str(sample_db), "--method", "greedy", "--objective", "jobs"
    )
    assert code == 0
    assert re.search(r"investment placed\s+\d+(\.\d)? bn ₸", out)
    assert re.search(r"jobs placed\s+\d[\d,]*\s", out) and not re.search(
        r"jobs placed\s+\S+\.00", out
    )
    assert "objective: jobs placed" in out
    assert not re.search(r"\d{1,3}(,\d{3}){3}\.\d\d", out)  # no 34,952,000,000.00
    assert "\r" not in err  # not a terminal: no progress line
    code, out, _ = run(capsys, "allocate", "--db", str(sample_db), "--method", "greedy")
    assert "weighted score: each placed application scores 0 to 1" in out


def test_objective_has_help(capsys):
    with pytest.raises(SystemExit):
        main(["allocate", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--objective {investment,jobs,count,weighted} what the optimiser maximises" in out


def test_servicing_table_says_overdue_and_explains_its_marks(capsys, sample_db):
    code, out, _ = run(capsys, "servicing", "--db", str(sample_db))
    assert code == 0
    row = next(line for line in out.splitlines() if line.startswith("P-002 "))
    assert row.rstrip().endswith("2022-10-30 overdue")
    assert "(no frontage) = the plot does not front a road" in out
    assert '"unknown (waits for …)" = a needed connection is missing' in out
    assert re.search(r"P-203 +G-2 204 m \(no frontage\)", out)
    code, out, _ = run(capsys, "servicing", "--db", str(sample_db), "--plot", "P-044")
    assert "gate G-4 at 826 m, 1.4 min" in out and "SS-7 at 1590 m" in out
    assert "1.38" not in out and "1589.9" not in out


def test_kpi_reads_in_human_units(capsys, sample_db):
    code, out, _ = run(capsys, "kpi", "--db", str(sample_db))
    assert code == 0
    assert "None" not in out and "1 committed plots" not in out
    assert "T-02 investment by 2022: 29.9 bn ₸ of 13.3 bn ₸ (224%)" in out
    assert "T-01 projects by 2022: 5 of 13 (38%)" in out
    assert "T-03 industrial parks by 2025: 6 of 40 (15%)" in out
    assert "T-04 production floor by 2025: 92,830 m² of 250,000 m² (37%)" in out
    assert "29,858,000,000" not in out
    # infrastructure per asset class: the 52 water mains in one line, not 52
    assert len(re.findall(r"\bW-\d", out)) == 1
    assert "water mains: 52 of 52 giving capacity" in out
    assert "SS-12: under repair, due 2022-10-30 (overdue): none" in out
    code, out, _ = run(capsys, "kpi", "--db", str(sample_db), "--json")
    doc = json.loads(out)
    assert doc["investment"]["invest"] == 289330000000.0
    parks = next(t for t in doc["targets"] if t["metric"] == "parks")
    assert parks["actual"] == 6.0 and "one occupant's plots are one park" in parks["basis"]


def test_init_folds_a_source_full_of_the_same_problem(tmp_path, capsys):
    import shutil

    import pyogrio

    from zoneplan.commands.core import SAMPLE_DIR

    source = tmp_path / "src"
    source.mkdir()
    for part in (".shp", ".shx", ".dbf", ".prj", ".cpg"):
        shutil.copy(SAMPLE_DIR / f"zone{part}", source / f"zone{part}")
    plots = pyogrio.read_dataframe(SAMPLE_DIR / "plots.shp")
    plots["status"] = "sold"
    pyogrio.write_dataframe(plots, source / "plots.shp", encoding="UTF-8")
    code, _, err = run(capsys, "init", "--db", str(tmp_path / "z.gpkg"), "--source", str(source))
    assert code == 1 and not (tmp_path / "z.gpkg").exists()
    assert f"{len(plots)} problem(s)" in err
    assert re.search(
        rf"{len(plots)} features: status: 'sold' is not one of .* \(P-001, P-002, P-003 and {len(plots) - 3} more\)",
        err,
    )
    assert err.count("'sold'") == 1


def test_each_command_is_found_in_the_module_the_table_names():
    """A run of one command builds the parser from its module alone (COMMAND_OWNERS): the
    table must name every command of the full parser, and each module its own."""
    import argparse
    import importlib

    from zoneplan.cli import COMMAND_MODULES, COMMAND_OWNERS, build_parser

    found = {}
    for module in COMMAND_MODULES:
        sub = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(f"zoneplan.commands.{module}").register(sub)
        found.update(dict.fromkeys(sub.choices, module))
    assert found == COMMAND_OWNERS
    for command, module in COMMAND_OWNERS.items():
        parser = build_parser(command)
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        assert command in sub.choices, module
    full = build_parser("--help")
    sub = next(a for a in full._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) == set(COMMAND_OWNERS)


def test_a_command_runs_without_importing_the_others(tmp_path):
    import subprocess
    import sys

    code = (
        "import sys; from zoneplan.cli import main; "
        f"main(['export', 'plots', '-o', {str(tmp_path / 'p.geojson')!r}, '--db', "
        f"{str(tmp_path / 'none.gpkg')!r}]); "
        "print(sorted(m for m in sys.modules if m.startswith(('scipy', 'planner.allocation', 'web'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_the_collector_is_settled_once_per_process(tmp_path):
    """Objects alive when the first command starts are frozen once; later runs in the same
    process (tests, a server) leave them and the thresholds as they are."""
    import subprocess
    import sys

    run = f"main(['export', 'plots', '-o', {str(tmp_path / 'p.geojson')!r}, '--db', " + (
        f"{str(tmp_path / 'none.gpkg')!r}])"
    )
    code = (
        "import gc; from zoneplan.cli import GC_THRESHOLD, main; "
        f"{run}; frozen = gc.get_freeze_count(); {run}; "
        "print(frozen > 1000, gc.get_freeze_count() == frozen, gc.get_threshold() == GC_THRESHOLD)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "True True True"
