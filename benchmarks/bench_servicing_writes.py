"""bench_servicing_writes: the first ``/api/plots`` request after each kind of write, and a
memory soak, at 100,000 synthetic plots over loopback HTTP.

One ``zoneplan serve`` (waitress, 8 threads) over a GeoPackage holding the sample zone's
infrastructure (synthetic) and ``--n`` synthetic plots (``bench_api``'s grid). Writes go
through a second store connection, as another server process or the CLI makes them:

- ``unrelated``: a user's language (the ``users`` table);
- ``plot edit``: one plot moved by 5 m and its demand changed;
- ``plot status``: one plot's status set (available or reserved);
- ``asset status``: substation SS-14 flipped between operational and under repair;
- ``plot delete``: one plot deleted (its row kept by the writer);
- ``plot insert``: a plot the writer deleted inserted again (same outline, so the store's
  checks pass; the server holds no plot of that id any more, so it is a new plot).

After each write the first ``/api/plots`` request (1.5 km box, ``--query`` filters: area
and sector by default, page of 100, servicing facts joined) is timed, then a second one; ``warm`` is the same
request with nothing written; then the first popup (``/api/servicing/{id}`` of a plot on
the page, every plot's readiness not cached after a plot write). Baseline, same run: what the reader waited for before this
change, rebuilding the servicing model and every plot's record after any write
(``ServicingModel(snapshot)`` + ``answer()`` for every plot), timed in-process.

The soak: ``--soak`` rounds of one write (the three kinds and a plot status change in
turn) and one read; the server's RSS before, after and its peak (VmHWM).

    .venv/bin/python benchmarks/bench_servicing_writes.py --n 100000 --db /tmp/zone100k.gpkg
    .venv/bin/python benchmarks/bench_servicing_writes.py --n 100000 --build \
        --db postgresql://postgres@127.0.0.1:5432/zp_bench
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from shapely import affinity

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_api  # noqa: E402
from synth import build as build_store  # noqa: E402

from geo.store import open_store  # noqa: E402

TODAY = "2026-01-01"
SUB = "SS-14"


def rss_mib(pid: int) -> dict[str, float]:
    """The process's resident set now and at its peak, MiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            out[line.split(":")[0]] = round(int(line.split()[1]) / 1024, 1)
    return out


class Writer:
    """Writes through its own store connection (another process's view of the store)."""

    def __init__(self, db: str, n: int):
        from usecases import accounts

        self.store = open_store(db)
        if accounts.get_user(self.store, "investor") is None:
            accounts.create_user(self.store, "investor", "investor", "bench-password-1")
        self.rng = random.Random(7)
        self.n = n
        self.lang = 0
        self.sub_open = True
        self.deleted: list[Any] = []  # frames of one row

    def unrelated(self) -> None:
        from usecases import accounts

        self.lang += 1
        accounts.set_lang(self.store, "investor", ("en", "ru")[self.lang % 2])

    def _plot(self) -> str:
        return f"S-{self.rng.randrange(self.n):07d}"

    def plot_edit(self) -> None:
        pid = self._plot()
        row = self.store.get("plots", pid)
        self.store.update(
            "plots",
            pid,
            {
                "geometry": affinity.translate(row["geometry"], 5.0, 0.0),
                "power_kw": round(self.rng.uniform(50, 3000), 1),
            },
        )

    def plot_status(self) -> None:
        pid = self._plot()
        self.store.update("plots", pid, {"status": self.rng.choice(["available", "reserved"])})

    def plot_delete(self) -> None:
        pid = self._plot()
        while any(str(r["plot_id"].iloc[0]) == pid for r in self.deleted):
            pid = self._plot()
        row = self.store.read("plots", where={"plot_id": pid})
        self.store.delete("plots", pid)
        self.deleted.append(row)

    def plot_insert(self) -> None:
        if not self.deleted:
            self.plot_delete()
        row = self.deleted.pop()
        self.store.insert("plots", row.drop(columns=[c for c in ("version",) if c in row]))

    def asset_status(self) -> None:
        self.sub_open = not self.sub_open
        status = "operational" if self.sub_open else "under_repair"
        self.store.update("substations", SUB, {"status": status})


def timed_get(conn, path: str) -> float:
    t = time.perf_counter()
    status, body = bench_api.get(conn, path)
    if status != 200:
        raise RuntimeError(f"{path}: HTTP {status} {body[:200]!r}")
    return (time.perf_counter() - t) * 1000.0


def full_rebuild_ms(db: str) -> float:
    """The reader's wait before incremental servicing: snapshot, model, every record."""
    from geo.layers import FEATURE_LAYERS
    from planner.servicing import ServicingModel

    store = open_store(db)
    t = time.perf_counter()
    model = ServicingModel(store.snapshot(FEATURE_LAYERS), today=TODAY)
    model.answer()
    store.close()
    return (time.perf_counter() - t) * 1000.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument(
        "--db",
        default="/tmp/bench_servicing_writes.gpkg",
        help="GeoPackage path (built when missing) or PostGIS URL (built with --build)",
    )
    ap.add_argument("--build", action="store_true", help="build the store first")
    ap.add_argument("--repeat", type=int, default=5, help="writes of each kind")
    ap.add_argument("--soak", type=int, default=1000, help="write+read rounds (0: none)")
    ap.add_argument("--no-baseline", action="store_true", help="skip the full rebuild")
    ap.add_argument("--soak-only", action="store_true", help="no timed writes before the soak")
    ap.add_argument(
        "--query",
        default=bench_api.QUERY,
        help="filters besides the box (at 1M plots, 30-48 m squares: min_area=0.15)",
    )
    args = ap.parse_args()
    out: dict[str, Any] = {"n": args.n, "load_before": os.getloadavg()}
    db = str(args.db)
    out["db"] = db.split("@")[-1]
    if args.build or ("://" not in db and not Path(db).exists()):
        out["store"] = build_store(db, args.n, ROOT / "benchmarks" / "out" / "synth")
    writer = Writer(db, args.n)
    os.environ["ZONEPLAN_TODAY"] = TODAY
    proc, port = bench_api.start("indexed", db)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        path = "/api/plots?bbox=" + bench_api.boxes(1, args.n)[0] + "&" + args.query
        t = time.perf_counter()
        status, body = bench_api.get(conn, path)
        if status != 200:
            raise RuntimeError(f"{path}: HTTP {status} {body[:200]!r}")
        out["cold_first_ms"] = round((time.perf_counter() - t) * 1000.0, 1)
        out["returned"] = json.loads(body)["numberReturned"]  # a page with plots on it
        warm = [timed_get(conn, path) for _ in range(20)]
        out["warm_ms"] = round(statistics.median(warm), 1)
        out["warm_load"] = os.getloadavg()[0]
        print(f"cold {out['cold_first_ms']} ms, warm {out['warm_ms']} ms", file=sys.stderr)
        page = json.loads(body)["features"]
        popup = "/api/servicing/" + str(page[0]["id"])  # the popup of a plot on the page
        out["popup_warm_ms"] = round(statistics.median(timed_get(conn, popup) for _ in range(5)), 1)
        kinds = {
            "unrelated": writer.unrelated,
            "plot edit": writer.plot_edit,
            "plot status": writer.plot_status,
            "asset status": writer.asset_status,
            "plot delete": writer.plot_delete,
            "plot insert": writer.plot_insert,
        }
        after: dict[str, dict[str, Any]] = {}
        for name, write in kinds.items():
            first, second, pop = [], [], []
            for _ in range(args.repeat if not args.soak_only else 0):
                write()
                first.append(timed_get(conn, path))
                second.append(timed_get(conn, path))
                write()  # again, then the popup first: every plot's readiness not cached
                pop.append(timed_get(conn, popup))
            if not first:
                continue
            after[name] = {
                "first_ms": [round(x, 1) for x in first],
                "first_median_ms": round(statistics.median(first), 1),
                "second_median_ms": round(statistics.median(second), 1),
                "first_vs_warm": round(statistics.median(first) / out["warm_ms"], 2),
                "popup_first_ms": [round(x, 1) for x in pop],
                "popup_first_median_ms": round(statistics.median(pop), 1),
                "popup_vs_warm": round(statistics.median(pop) / out["popup_warm_ms"], 2),
                "load": os.getloadavg()[0],
            }
            print(name, after[name], file=sys.stderr, flush=True)
        out["after_write"] = after
        if after:  # warm again, nothing written since (the start's may share the warm-up)
            warm_end = [timed_get(conn, path) for _ in range(20)]
            out["warm_end_ms"] = round(statistics.median(warm_end), 1)
            out["warm_end_load"] = os.getloadavg()[0]
            print(f"warm at the end {out['warm_end_ms']} ms", file=sys.stderr, flush=True)
        if args.soak:
            writes = [
                writer.unrelated,
                writer.plot_edit,
                writer.asset_status,
                writer.plot_status,
                writer.plot_delete,
                writer.plot_insert,
            ]
            paths = ["/api/plots?bbox=" + b + "&" + args.query for b in bench_api.boxes(50, args.n)]
            before = rss_mib(proc.pid)
            lat, samples = [], []
            t0 = time.perf_counter()
            for i in range(args.soak):
                writes[i % len(writes)]()
                lat.append(timed_get(conn, paths[i % len(paths)]))
                if i % 100 == 99:
                    now = rss_mib(proc.pid)
                    samples.append(now["VmRSS"])
                    recent = sorted(lat[-100:])
                    print(
                        f"  soak {i + 1}: RSS {now['VmRSS']} MiB, peak {now['VmHWM']} MiB, "
                        f"read p50 {recent[50]:.0f} ms over the last 100, "
                        f"{time.perf_counter() - t0:.0f} s, load {os.getloadavg()[0]:.1f}",
                        file=sys.stderr,
                        flush=True,
                    )
            lat.sort()
            out["soak"] = {
                "rounds": args.soak,
                "seconds": round(time.perf_counter() - t0, 1),
                "rss_before_mib": before["VmRSS"],
                "rss_after_mib": rss_mib(proc.pid)["VmRSS"],
                "rss_peak_mib": rss_mib(proc.pid)["VmHWM"],
                "rss_every_100_mib": samples,
                "read_p50_ms": round(lat[len(lat) // 2], 1),
                "read_p99_ms": round(lat[int(len(lat) * 0.99)], 1),
            }
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    if not args.no_baseline:
        out["baseline_full_rebuild_ms"] = round(full_rebuild_ms(db), 1)
        print(f"baseline {out['baseline_full_rebuild_ms']} ms", file=sys.stderr)
    if not args.no_baseline and after:
        out["asset_status_speedup_vs_rebuild"] = round(
            out["baseline_full_rebuild_ms"] / after["asset status"]["first_median_ms"], 1
        )
        out["plot_edit_speedup_vs_rebuild"] = round(
            out["baseline_full_rebuild_ms"] / after["plot edit"]["first_median_ms"], 1
        )
    out["load_after"] = os.getloadavg()
    out["date"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
