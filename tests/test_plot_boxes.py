"""The plots' boxes in memory (geo.store.plot_boxes) against the SQL they stand in for, on
both backends: same features, order and count for every filter the catalogue sends, at the
float32 edges of the index boxes, and after every kind of write."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from geo.crs import WORKING_EPSG
from geo.layers import PLOT_STATUSES
from geo.store import ListHas, Range, create_store, is_url, open_store, plot_boxes
from geo.store.gpkg_geom import connect
from planner.catalogue import parse_filters, search
from planner.visibility import plot_view

E, N = 650_000.0, 4_799_000.0
SECTOR_TEXTS = ["*", "food,light", " food , pharma ", "chemicals", None, "light,\tmachine", ""]
COLUMNS = list(plot_view("planner").fields)


def _plots(n: int, start: int = 0) -> gpd.GeoDataFrame:
    """``n`` plots on a grid with odd coordinates (float32 rounding bites), a few wider
    than a grid cell, statuses and allowed-sector texts mixed."""
    rng = np.random.default_rng(start + 11)
    side = int(np.ceil(np.sqrt(n)))
    i = np.arange(start, start + n)
    x = E + (i % side) * 130.0 + rng.uniform(0, 1, n) / 3
    y = N + (i // side) * 130.0 + rng.uniform(0, 1, n) / 7
    w = np.where(i % 97 == 5, 1_700.0, 40.0 + rng.uniform(0, 70, n))
    h = np.where(i % 89 == 3, 1_100.0, 60.0 + rng.uniform(0, 50, n))
    return gpd.GeoDataFrame(
        {
            "plot_id": [f"B-{(k * 37) % 100_000:05d}" for k in i],
            "status": [PLOT_STATUSES[k] for k in rng.integers(len(PLOT_STATUSES), size=n)],
            "sectors": [SECTOR_TEXTS[k % len(SECTOR_TEXTS)] for k in i],
        },
        geometry=shapely.box(x, y, x + w, y + h),
        crs=WORKING_EPSG,
    )


def _raw(location: str, sql: str, params: list[tuple]) -> None:
    """Write past the store's validation (as another tool could)."""
    if is_url(location):
        import psycopg

        with psycopg.connect(location.split("?")[0], autocommit=True) as conn:
            schema = location.split("search_path%3D")[1].split(",")[0]
            conn.execute(f'SET search_path TO "{schema}", public')
            conn.cursor().executemany(sql.replace("?", "%s"), params)
        return
    conn = connect(location)
    try:
        conn.executemany(sql, params)
        conn.commit()
    finally:
        conn.close()


@pytest.fixture
def zone(empty_location):
    """A zone of 400 plots, some with a NULL area and odd allowed-sector texts."""
    store = create_store(empty_location)
    store.insert("plots", _plots(400))
    ids = sorted(store.keys("plots"))
    store.close()
    _raw(
        empty_location, "UPDATE plots SET area_ha = NULL WHERE plot_id = ?", [(p,) for p in ids[:9]]
    )
    tricky = ["\u3000food\u2028", "fo od", "еда,food", "FOOD", ",food,"]
    _raw(
        empty_location, "UPDATE plots SET sectors = ? WHERE plot_id = ?", list(zip(tricky, ids[9:]))
    )
    store = open_store(empty_location)
    yield empty_location, store
    store.close()


def _boxes(store, rng: np.random.Generator, k: int) -> list[tuple[float, ...]]:
    """Random boxes over the zone, and boxes whose edges sit on plots' bounds or a hair
    (well below a float32 step there) beside them."""
    minx, miny, maxx, maxy = store.extent("plots")
    out = []
    for _ in range(k):
        x0, y0 = rng.uniform(minx - 300, maxx), rng.uniform(miny - 300, maxy)
        out.append((x0, y0, x0 + rng.uniform(1, 2_500), y0 + rng.uniform(1, 2_500)))
    bounds = shapely.bounds(store.read("plots")["geometry"].to_numpy()[:40])
    for b, hair in zip(bounds, np.tile([0.0, 1e-6, -1e-6, 4e-3, -4e-3], 8)):
        # a box ending where a plot starts, and one starting where it ends
        out.append((b[0] - 500, b[1] - 500, b[0] + hair, b[1] + hair))
        out.append((b[2] + hair, b[3] + hair, b[2] + 400, b[3] + 400))
    return out


WHERES = [
    None,
    {"status": ["available"]},
    {"status": ["available", "reserved"], "sectors": ListHas("food")},
    {"status": list(PLOT_STATUSES), "area_ha": Range(0.4, None, or_null=True)},
    {"area_ha": Range(0.3, 0.6)},
    {"area_ha": Range(None, 0.5, or_null=True), "sectors": ListHas("fo od")},
    {"sectors": ListHas("еда")},
    {"status": ["occupied"], "sectors": ListHas("pharma"), "area_ha": Range(0.1, 9.0)},
]


def _same(store, bbox, where, order_by, limit, offset) -> bool:
    want = store.rows(
        "plots", COLUMNS, bbox=bbox, where=where, order_by=order_by, limit=limit,
        offset=offset, matched=True,
    )  # fmt: skip
    got = plot_boxes.page(
        store, COLUMNS, bbox=bbox, where=where, order_by=order_by, limit=limit, offset=offset
    )
    assert got is not None, "the boxes should answer"
    assert (got.matched, got.columns) == (want.matched, want.columns), (bbox, where)
    assert list(shapely.to_wkb(got.geometry)) == list(shapely.to_wkb(want.geometry))
    return True


def test_boxes_answer_as_the_sql(zone, monkeypatch):
    _, store = zone
    monkeypatch.setattr(plot_boxes, "MIN_HITS", 0)  # every viewport through the boxes
    assert plot_boxes.current(store, wait=True) is not None
    rng = np.random.default_rng(5)
    pages = [("plot_id", 10, 0), ("-plot_id", 7, 3), ("plot_id", 1000, 0), ("plot_id", 5, 10**6)]
    for k, bbox in enumerate(_boxes(store, rng, 60)):
        for where in WHERES:
            order_by, limit, offset = pages[k % len(pages)]
            _same(store, bbox, where, order_by, limit, offset)


def test_sql_answers_what_the_boxes_cannot(zone, monkeypatch):
    _, store = zone
    monkeypatch.setattr(plot_boxes, "MIN_HITS", 0)
    plot_boxes.current(store, wait=True)
    box = store.extent("plots")
    ask = dict(bbox=box, limit=5, offset=0)
    assert plot_boxes.page(store, COLUMNS, where=None, order_by="area_ha", **ask) is None
    assert (
        plot_boxes.page(store, COLUMNS, where={"exp_id": ["x"]}, order_by="plot_id", **ask) is None
    )
    for or_null in (False, True):  # a NaN bound: whatever the SQL makes of it
        where = {"area_ha": Range(float("nan"), 0.5, or_null=or_null)}
        got = plot_boxes.page(store, COLUMNS, where=where, order_by="plot_id", **ask)
        if got is not None:
            _same(store, box, where, "plot_id", 5, 0)
    # and the catalogue gives the same page either way
    params = {"bbox": "-180,-90,180,90", "sector": "food", "status": "available,reserved"}
    fast = search(store, parse_filters({**params, "limit": "30"}), role="planner")
    monkeypatch.setattr(plot_boxes, "MIN_HITS", 10**9)
    slow = search(store, parse_filters({**params, "limit": "30"}), role="planner")
    assert fast.matched == slow.matched and fast.records() == slow.records()


def _clear(store) -> None:
    with store.transaction() as session:
        session.clear("plots")


def test_every_write_is_seen(zone, monkeypatch):
    """Each write moves the plots' revision: the index of the revision before is never
    used for the one after (the SQL answers until the new one is built), and the new one
    answers as the SQL does. Writes through another connection count alike."""
    location, store = zone
    monkeypatch.setattr(plot_boxes, "MIN_HITS", 0)
    monkeypatch.setattr(plot_boxes, "REBUILD_SPACING", 0.0)
    other = open_store(location)
    box = store.extent("plots")
    where = {"status": ["available", "reserved"], "sectors": ListHas("food")}
    moved = sorted(store.keys("plots"))[20]
    writes = [
        lambda: other.insert("plots", _plots(1_500, start=400)),  # a bulk insert
        lambda: other.update("plots", moved, {"status": "available"}),
        lambda: other.update("plots", moved, {"sectors": "food"}),
        lambda: other.update(
            "plots",
            moved,
            {"geometry": shapely.box(box[0] - 900, box[1] - 900, box[0] - 800, box[1] - 800)},
        ),
        lambda: other.delete("plots", sorted(store.keys("plots"))[3]),
        lambda: _clear(other),
    ]
    try:
        for write in writes:
            held = plot_boxes.current(store, wait=True)
            assert held is not None
            write()
            assert held.revision != store.revision(["plots"])
            for corner in (box, (box[0] - 1_000, box[1] - 1_000, box[0] - 700, box[1] - 700)):
                got = plot_boxes.current(store, wait=True)
                assert got is not None and got.revision == store.revision(["plots"])
                _same(store, corner, where, "plot_id", 50, 0)
                _same(store, corner, None, "-plot_id", 2_000, 0)
    finally:
        other.close()


def test_stale_boxes_are_not_used(zone, monkeypatch):
    location, store = zone
    monkeypatch.setattr(plot_boxes, "MIN_HITS", 0)
    monkeypatch.setattr(plot_boxes, "REBUILD_SPACING", 10**6.0)  # no rebuild during the test
    plot_boxes.current(store, wait=True)
    kept = plot_boxes._KEPT[store]
    kept.next_build = float("inf")
    # a bulk insert (one "*" audit record): no patch, and no rebuild yet
    store.insert("plots", _plots(1_500, start=400))
    page = plot_boxes.page(
        store,
        COLUMNS,
        bbox=store.extent("plots"),
        where=None,
        order_by="plot_id",
        limit=5,
        offset=0,
    )
    assert page is None  # the SQL answers this revision


def test_sample_zone(sample_location, monkeypatch):
    """The shipped sample (a store as made before the boxes existed: nothing to migrate,
    they are read from the geometry index every store has)."""
    monkeypatch.setattr(plot_boxes, "MIN_HITS", 0)
    store = open_store(sample_location)
    try:
        assert plot_boxes.current(store, wait=True) is not None
        rng = np.random.default_rng(1)
        for bbox in _boxes(store, rng, 20):
            for where in WHERES[:4]:
                _same(store, bbox, where, "plot_id", 100, 0)
    finally:
        store.close()


def test_a_write_after_the_index_is_never_answered_from_it(zone, monkeypatch):
    """A plot hidden from the public (made a candidate) by another process after the
    index was built: the next page is never the index's, but the one of the new
    revision's (patched with the write)."""
    location, store = zone
    monkeypatch.setattr(plot_boxes, "MIN_HITS", 0)
    monkeypatch.setattr(plot_boxes, "REBUILD_SPACING", 0.0)
    held = plot_boxes.current(store, wait=True)
    public = {"status": list(plot_view(None).statuses)}
    ask = dict(bbox=store.extent("plots"), where=public, order_by="plot_id", limit=20, offset=0)
    first = plot_boxes.page(store, COLUMNS, **ask)
    assert first is not None and first.columns["plot_id"]
    other = open_store(location)
    try:
        other.update("plots", first.columns["plot_id"][0], {"status": "candidate"})
    finally:
        other.close()
    # the index patched with that write answers (as the SQL: the candidate left out)
    got = plot_boxes.page(store, COLUMNS, **ask)
    assert got is not None and first.columns["plot_id"][0] not in got.columns["plot_id"]
    assert held.stale
    fresh = plot_boxes.current(store, wait=True)
    assert fresh is not None and fresh is not held
    _same(store, ask["bbox"], public, "plot_id", 20, 0)


def _columns(boxes) -> dict[str, list]:
    """Each plot's arrays as plain values (codes decoded: their order may differ)."""
    return {
        "ids": boxes.ids.tolist(),
        "boxes": [tuple(b) for b in np.nan_to_num(boxes.boxes, nan=-1.0).tolist()],
        "status": [boxes.status_values[c] for c in boxes.status],
        "sectors": [boxes.sector_values[c] for c in boxes.sectors],
        "area": np.nan_to_num(boxes.area, nan=-1.0).tolist(),
    }


def test_a_write_is_patched_in_as_a_full_build_reads_it(zone, monkeypatch):
    """After each write of a few plots (through another connection) the next index is
    the last one patched with them, no full build: its arrays equal a full build's, it
    answers as the SQL, and the index before is left as it was for its readers. Bulk
    writes and a clear, which the audit trail does not name plot by plot, are read whole."""
    location, store = zone
    monkeypatch.setattr(plot_boxes, "MIN_HITS", 0)
    monkeypatch.setattr(plot_boxes, "REBUILD_SPACING", 0.0)
    builds: list[int] = []
    full = plot_boxes.build
    monkeypatch.setattr(plot_boxes, "build", lambda s: builds.append(1) or full(s))
    other = open_store(location)
    box = store.extent("plots")
    ids = sorted(store.keys("plots"))
    far = shapely.box(box[0] - 900, box[1] - 900, box[0] - 800, box[1] - 800)
    near = shapely.box(box[0] + 10, box[1] + 10, box[0] + 90, box[1] + 70)
    # filed in the cell left of (below) the one its far corner lies in, wider than any
    wide = shapely.box(box[0] + 990, box[1] + 990, box[0] + 1_440, box[1] + 1_440)
    corner = (box[0] + 1_430, box[1] + 1_430, box[0] + 1_500, box[1] + 1_500)

    def update(pid, **values):
        return lambda: other.update("plots", pid, values)

    writes = [
        ("patch", lambda: other.insert("plots", _plots(3, start=400))),  # new ids among
        ("patch", lambda: other.insert("plots", _plots(1, start=900).assign(plot_id="ZZ-1"))),
        ("patch", lambda: other.insert("plots", _plots(1, start=901).assign(plot_id="0-first"))),
        ("patch", update(ids[20], status="available")),
        ("patch", update(ids[21], status="candidate", sectors="fo od,new sector")),
        ("patch", update(ids[22], geometry=far)),  # outside the grid: kept apart
        ("patch", update(ids[23], geometry=near)),  # area and box both move
        ("patch", update(ids[25], geometry=wide)),
        ("patch", update(ids[24], geometry=shapely.box(*box[:2], box[0] + 2_000, box[1] + 30))),
        ("patch", lambda: other.delete("plots", ids[3])),
        ("patch", lambda: other.delete("plots", "0-first")),
        (
            "patch",
            lambda: [  # several writes between two pages
                other.insert("plots", _plots(2, start=950)),
                other.delete("plots", ids[5]),
                other.update("plots", ids[6], {"geometry": near, "status": "available"}),
            ],
        ),
        ("full", lambda: other.insert("plots", _plots(1_500, start=1_000))),  # one "*" record
        ("patch", update(ids[30], status="occupied")),
        ("full", lambda: _clear(other)),
        ("patch", lambda: other.insert("plots", _plots(5, start=3_000))),
    ]
    rng = np.random.default_rng(3)
    try:
        for kind, write in writes:
            held = plot_boxes.current(store, wait=True)
            assert held is not None
            before, made = _columns(held), len(builds)
            write()
            got = plot_boxes.current(store)  # no wait: a patch is made in the caller
            if kind == "full":
                assert got is None or len(builds) > made
                got = plot_boxes.current(store, wait=True)
            else:
                assert len(builds) == made, "patched, not built whole"
            assert got is not None and got is not held
            assert got.revision == store.revision(["plots"])
            assert _columns(held) == before  # copy-on-write
            whole = full(store)
            assert whole is not None and _columns(got) == _columns(whole)
            for q in _boxes(store, rng, 15) if len(got.ids) else []:
                assert sorted(got.hits(q)) == sorted(whole.hits(q)), q
            for q in (box, far.bounds, near.bounds, corner):
                _same(store, q, None, "plot_id", 2_000, 0)
                _same(store, q, {"status": ["available", "candidate"]}, "-plot_id", 9, 0)
    finally:
        other.close()


def test_a_write_the_log_cannot_name_is_read_whole(zone, monkeypatch):
    """Plots restored (``zoneplan migrate``: the revision moves, no audit record): the
    patch cannot say what changed, so the index is built whole."""
    location, store = zone
    monkeypatch.setattr(plot_boxes, "MIN_HITS", 0)
    held = plot_boxes.current(store, wait=True)
    assert held is not None and plot_boxes.patched(held, store) is held
    with store.transaction() as session:
        copied = store.read("plots").head(2).assign(plot_id=["R-1", "R-2"], status="occupied")
        session.restore("plots", copied)
    assert plot_boxes.patched(held, store) is None
    got = plot_boxes.current(store, wait=True)
    assert got is not None and len(got.ids) == len(held.ids) + 2
    _same(store, store.extent("plots"), None, "plot_id", 2_000, 0)


def test_a_background_build_on_a_closed_store_gives_up_quietly(zone):
    """The rebuild thread of a store closed under it (a server stopping) ends without an
    exception (PostGIS: its pool is gone; a GeoPackage still reads the file) and is no
    longer marked as building."""
    store = open_store(zone[0])
    kept = plot_boxes._Kept()
    kept.building = True
    store.close()
    plot_boxes._rebuild(store, kept)
    assert not kept.building
