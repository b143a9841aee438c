"""How long after one plot edit a 5 km viewport is answered from the plots' boxes again.

Each run opens the store in a child process of the code under test (this worktree, or
``--baseline``'s), builds the boxes, then ``--edits`` times: another connection changes
one plot's status (as another worker would), and the first 5 km page after the commit is
asked for every 10 ms until the boxes answer it (``plot_boxes.page`` not None; until then
the SQL would). ``REBUILD_SPACING`` is 0 in both, so the baseline rebuilds at once (its
best case). Runs alternate branch and baseline (ABAB), each printing its load average::

    .venv/bin/python benchmarks/bench_box_patch.py --db STORE --baseline /work/wt/x-base
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOX_M = 5_000.0
COLUMNS = ["plot_id", "status", "area_ha", "sectors"]


def child(db: str, edits: int) -> dict[str, object]:
    """Build the boxes of ``db``, then time ``edits`` edits until the boxes answer."""
    import numpy as np

    from geo.store import open_store, plot_boxes

    plot_boxes.REBUILD_SPACING = 0.0
    store, other = open_store(db), open_store(db)
    t = time.perf_counter()
    assert plot_boxes.current(store, wait=True) is not None
    build_s = time.perf_counter() - t
    x0, y0, x1, y1 = store.extent("plots")
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    bbox = (cx - BOX_M / 2, cy - BOX_M / 2, cx + BOX_M / 2, cy + BOX_M / 2)
    ask = dict(bbox=bbox, where={"status": ["available", "reserved"]}, order_by="plot_id")
    first = store.rows("plots", ["plot_id", "status"], bbox=bbox, limit=edits)
    answer_ms, first_ms, misses = [], [], []
    for pid, was in zip(first.columns["plot_id"], first.columns["status"]):
        # a status it does not have: an edit that writes (and moves the revision)
        other.update("plots", pid, {"status": "reserved" if was == "available" else "available"})
        t0 = time.perf_counter()
        tries = 0
        while True:
            t1 = time.perf_counter()
            got = plot_boxes.page(store, COLUMNS, limit=100, offset=0, **ask)  # type: ignore[arg-type]
            if got is not None:
                break
            tries += 1
            time.sleep(0.01)
        answer_ms.append((time.perf_counter() - t0) * 1e3)
        first_ms.append((time.perf_counter() - t1) * 1e3)
        misses.append(tries)
        time.sleep(0.5)
    store.close()
    other.close()
    import geo

    return {
        "code": str(Path(geo.__file__).parent.parent),
        "build_s": round(build_s, 2),
        "answer_ms": [round(v, 1) for v in answer_ms],
        "answering_page_ms": [round(v, 1) for v in first_ms],
        "pages_by_sql": misses,
        "median_answer_ms": round(float(np.median(answer_ms)), 1),
    }


def run(code: Path, db: str, edits: int) -> dict[str, object]:
    """One child run of the code in ``code`` (its modules first on the path)."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_box_patch.py"), "--child",
         "--db", db, "--edits", str(edits)],
        cwd=code, env=env, capture_output=True, text=True, check=True, timeout=1800,
    )  # fmt: skip
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    """Run the rounds and print each run and the medians (JSON lines)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", required=True)
    ap.add_argument("--baseline", type=Path)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--edits", type=int, default=3)
    ap.add_argument("--child", action="store_true")
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.db, args.edits)))
        return 0
    answers: dict[str, list[float]] = {"branch": [], "baseline": []}
    for r in range(args.rounds):
        order = [("branch", ROOT), ("baseline", args.baseline)]
        for name, code in order if r % 2 == 0 else order[::-1]:
            load = os.getloadavg()[0]
            got = run(code, args.db, args.edits)
            answers[name] += got["answer_ms"]  # type: ignore[arg-type]
            print(json.dumps({"round": r, "code": name, "load": round(load, 1), **got}))
            sys.stdout.flush()
    medians = {k: statistics.median(v) for k, v in answers.items()}
    ratio = medians["baseline"] / max(medians["branch"], 1e-9)
    print(json.dumps({"median_answer_ms": medians, "ratio_baseline_over_branch": round(ratio, 1),
                      "load": round(os.getloadavg()[0], 1)}))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
