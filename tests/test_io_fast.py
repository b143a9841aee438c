"""The vectorised import checks agree with the schema's value-by-value rules."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely

from geo.layers import get_layer
from geo.validate import check_geometries, coerce_attributes, coerce_value

# Texts around the edges of the rules: Unicode whitespace Python strips (NBSP, NEL,
# ideographic space, line separator) where Arrow's regex \s is ASCII only, control
# characters, slashes, Cyrillic, blanks.
EDGY = [
    "P-1",
    " P-2 ",
    "\u00a0P-3",
    "P-4\u3000",
    "\x85P-5",
    "P-6\u2028",
    "P\u00a07",
    "P/8",
    "P\\9",
    "P\x0010",
    "P\x9f11",
    "Ж-12",
    "  ",
    "",
    "\t",
    "P\t13",
    "P-14\n",
    "x" * 80,
    "x" * 81,
]


def expected(field_name: str, values: list[object]) -> tuple[list[object], set[int]]:
    """What coerce_value says of each value: the typed value, and the rows it refuses."""
    fld = get_layer("plots").field(field_name)
    out, bad = [], set()
    for i, v in enumerate(values):
        try:
            out.append(coerce_value(fld, v))
        except ValueError:
            out.append(None)
            bad.add(i)
    return out, bad


@pytest.mark.parametrize("field", ["plot_id", "exp_id", "cadastre", "resident"])
@pytest.mark.parametrize("dtype", [object, "str", "large_string[pyarrow]"])
def test_text_columns_typed_as_value_by_value(field: str, dtype: object) -> None:
    n = len(EDGY)
    frame = pd.DataFrame(
        {
            "plot_id": [f"K-{i}" for i in range(n)],
            "status": ["available"] * n,
        }
    )
    frame[field] = pd.Series(EDGY, dtype=dtype)
    typed, problems = coerce_attributes(get_layer("plots"), frame)
    want, bad = expected(field, EDGY)
    assert {p.index for p in problems if p.field == field} == bad
    assert [v for i, v in enumerate(typed[field].tolist()) if i not in bad] == [
        v for i, v in enumerate(want) if i not in bad
    ]


@pytest.mark.parametrize("dtype", [object, "str", "large_string[pyarrow]"])
def test_clean_text_columns_take_the_fast_path_with_the_same_values(dtype: object) -> None:
    # Every value passes: the fast path answers, and must equal strip/None semantics.
    values = [" A-1", "B-2\u00a0", "\u3000C-3", "D-4", None, "  ", "Ж-5"]
    frame = pd.DataFrame(
        {
            "plot_id": [f"K-{i}" for i in range(len(values))],
            "status": ["available"] * len(values),
            "exp_id": pd.Series(values, dtype=dtype),
            "resident": pd.Series(values, dtype=dtype),
        }
    )
    typed, problems = coerce_attributes(get_layer("plots"), frame)
    assert problems == []
    want = ["A-1", "B-2", "C-3", "D-4", None, None, "Ж-5"]
    assert typed["exp_id"].tolist() == want
    assert typed["resident"].tolist() == want
    assert all(v is None or type(v) is str for v in typed["resident"].tolist())


def test_numbers_and_flags_typed_as_plain_python_values_as_value_by_value() -> None:
    columns = {
        "power_kw": pd.Series([1.5, np.nan, 3.0, 0.0]),
        "jobs": pd.Series([1, None, 3, 4], dtype="Int64"),
        "hazard": pd.Series([1.0, 2.0, np.nan, 3.0]),
        "rail_need": pd.Series([True, None, False, True], dtype="boolean"),
        "start_yr": pd.Series([2020, 2021, 2022, 2023], dtype="int32"),
    }
    frame = pd.DataFrame(
        {"plot_id": [f"K-{i}" for i in range(4)], "status": ["available"] * 4, **columns}
    )
    typed, problems = coerce_attributes(get_layer("plots"), frame)
    assert problems == []
    for name, column in columns.items():
        want, bad = expected(name, column.tolist())
        got = typed[name].tolist()
        assert not bad and got == want
        assert [type(v) for v in got] == [type(v) for v in want], name
    assert typed["floor_m2"].tolist() == [None] * 4  # absent optional column


def test_vocabulary_and_required_text_checked_in_bulk() -> None:
    frame = pd.DataFrame(
        {
            "plot_id": pd.Series(["A-1", "A-2", None, "A-4"], dtype="str"),
            "status": pd.Series(["available", "sold", "reserved", " occupied "], dtype="str"),
        }
    )
    typed, problems = coerce_attributes(get_layer("plots"), frame)
    assert sorted((p.index, p.field) for p in problems) == [(1, "status"), (2, "plot_id")]
    assert typed["status"].tolist()[3] == "occupied"


def test_geometry_checks_take_arrays_and_lists_alike() -> None:
    geoms = shapely.box(
        np.array([650_000.0, 650_100.0, 650_200.0]),
        4_798_000.0,
        [650_050, 650_100.5, 650_250],
        4_798_050,
    )
    geoms[1] = shapely.Polygon(
        [(650_100, 4_798_000), (650_110, 4_798_010), (650_110, 4_798_000), (650_100, 4_798_010)]
    )
    layer = get_layer("plots")
    ids = ["a", "b", "c"]
    from_array = check_geometries(layer, geoms, ids)
    from_list = check_geometries(layer, list(geoms), ids)
    from_series = check_geometries(layer, pd.Series(geoms), ids)
    assert from_array == from_list == from_series
    assert [(p.index, p.reason.split(":")[0]) for p in from_array] == [(1, "invalid geometry")]


@pytest.mark.parametrize(("n", "m"), [(300, 40), (40, 300)])
def test_overlaps_equal_a_double_loop_whichever_set_is_larger(n: int, m: int) -> None:
    import geopandas as gpd

    from geo.validate import overlaps

    rng = np.random.default_rng(n)

    def boxes(k: int) -> gpd.GeoSeries:
        x, y, w = rng.uniform(0, 400, k), rng.uniform(0, 400, k), rng.uniform(5, 40, k)
        return gpd.GeoSeries(shapely.box(x, y, x + w, y + w))

    a, b = boxes(n), boxes(m)
    brute = [
        (i, j, float(area))
        for i in range(n)
        for j in range(m)
        if (area := shapely.intersection(a.iloc[i], b.iloc[j]).area) > 1.0
    ]
    assert overlaps(a, b) == brute


@pytest.mark.parametrize("given_tree", [False, True])
def test_overlaps_within_one_set_equal_a_double_loop(given_tree: bool) -> None:
    import geopandas as gpd

    from geo.validate import overlaps

    rng = np.random.default_rng(7)
    x, y, w = rng.uniform(0, 300, 200), rng.uniform(0, 300, 200), rng.uniform(5, 40, 200)
    # random boxes (overlapping or apart), a grid sharing edges and corners, one box twice
    grid = np.arange(4) * 10.0
    gx, gy = (v.ravel() for v in np.meshgrid(grid + 500, grid + 500))
    boxes = np.concatenate([shapely.box(x, y, x + w, y + w), shapely.box(gx, gy, gx + 10, gy + 10)])
    geoms = gpd.GeoSeries(np.append(boxes, boxes[3]))
    n = len(geoms)
    brute = [
        (i, j, float(area))
        for i in range(n)
        for j in range(i + 1, n)
        if (area := shapely.intersection(geoms.iloc[i], geoms.iloc[j]).area) > 1.0
    ]
    tree = shapely.STRtree(geoms.values) if given_tree else None
    assert overlaps(geoms, tree=tree) == brute
    assert (3, n - 1, float(boxes[3].area)) in brute


def test_the_whitespace_table_is_what_str_isspace_knows() -> None:
    from geo.texts import ASCII_SPACE, WIDE_SPACES

    spaces = [chr(c) for c in range(0x110000) if chr(c).isspace()]
    assert [c for c in spaces if c.isascii()] == [chr(b) for b in np.flatnonzero(ASCII_SPACE)]
    assert [c for c in spaces if not c.isascii()] == list(WIDE_SPACES)


@pytest.mark.parametrize("kind", ["string", "large_string", "sliced", "chunked"])
def test_texts_stripped_as_str_strip_does(kind: str) -> None:
    import pyarrow as pa

    from geo.texts import WIDE_SPACES, stripped

    words = ["", "x", "Ж", "«Алатау»", "“q”", "a—", "…", "\u2027", "\u2030", "\u3001", "ab"]
    spaces = [" ", "\t", "\x1f", *WIDE_SPACES]
    values: list[str | None] = [None, *words]
    values += [w + s for w in words for s in spaces] + [s + w for w in words for s in spaces]
    values += [s + "Ж" + t for s in spaces for t in spaces[::7]] + [s + s for s in spaces]
    arrow_type = pa.large_string() if kind == "large_string" else pa.string()
    texts = pa.array(["pad", *values], type=arrow_type).slice(1)
    if kind == "chunked":
        texts = pa.chunked_array([texts.slice(0, 100), texts.slice(100)])
    out = stripped(texts if kind != "string" else pa.array(values, type=arrow_type))
    assert out.to_pylist() == [None if v is None else v.strip() for v in values]
