"""Asset layers: roads, gates, rail, substations, utility networks and protection zones."""

from __future__ import annotations

import numpy as np
from shapely.geometry import LineString, Point

from geo.layers import get_layer
from scripts.sample.frame import DUE, RAIL_PROT_M, SHIFT, SUB_PROT_M, U_SPACING, V_SPACING, pt

# --------------------------------------------------------------------------- asset data
# Records of the assets that are facts rather than geometry, by the layers' field names
# (a field left out is empty). Rail lines pair with the drawn rails in order.
SIDING_NOTE = "usable only via the Rail Access Road and Industrialnaya station"
RAIL_LINES: tuple[dict, ...] = (
    dict(asset_id="ML-1", name="Turksib mainline (Турксиб), western section", status="operational"),
    dict(asset_id="ML-2", name="Turksib mainline (Турксиб), eastern section", status="operational"),
    dict(
        asset_id="RS-1",
        name="Rail Access Road (Подъездной путь)",
        status="restricted",
        since="2018-12-20",
        due=DUE,
        note="accepted in 2018 with violations; violations to be dealt with and the line put "
        "into operation by 2022-10-30",
    ),
    *(
        dict(
            asset_id=f"SD-{k}",
            name=f"Siding {k} (Тупик №{k}), {side}",
            status="operational",
            since="2018-12-20",
            note=SIDING_NOTE,
        )
        for k, side in ((1, "south"), (2, "east"), (3, "west"))
    ),
)
STATION = dict(
    asset_id="RST-1",
    name="Индустриальная / Industrialnaya",
    built_yr=2017,
    status="closed",
    due=DUE,
    note="closed by the transport control inspectorate: derailment threat; to be put "
    "into operation by 2022-10-30",
)
SUBSTATIONS: dict[str, dict] = {
    "SS-7": dict(
        name="ПС-7 «Индустриальная» 110/10 kV",
        cap_mva=80.0,
        load_mva=61.8,
        kv=110.0,
        status="operational",
        note="2 x 40 MVA",
    ),
    "SS-12": dict(
        name="Substation No. 12 (ПС-12) 110/10 kV",
        cap_mva=50.0,
        load_mva=31.6,
        kv=110.0,
        status="under_repair",
        since="2022-03-15",
        due=DUE,
        note="cracks in supporting structures from soil subsidence; "
        "repair and restoration due 2022-10-30; 2 x 25 MVA",
    ),
    "SS-14": dict(
        name="ПС-14 «Литейная» 110/10 kV",
        cap_mva=50.0,
        load_mva=38.7,
        kv=110.0,
        status="operational",
        note="2 x 25 MVA; little headroom left once allocated plots connect",
    ),
    "SS-19": dict(
        name="ПС-19 «Южная» 35/10 kV",
        cap_mva=32.0,
        load_mva=24.4,
        kv=35.0,
        status="operational",
        note="2 x 16 MVA",
    ),
    "SS-30": dict(
        name="ПС-30 «Расширение» 110/10 kV (planned)",
        cap_mva=50.0,
        load_mva=0.0,
        kv=110.0,
        status="planned",
        due="2024-12-31",
        note="planned for expansion area EXP-1; 2 x 25 MVA",
    ),
}
# Pipe networks: layer -> (id prefix, SHIFT key, values every line shares). Each street
# run's main is cut where other mains of its network meet it (ids W-01a, W-01b, ...).
PIPES: dict[str, tuple[str, str, dict]] = {
    "water_mains": ("W", "water", dict(status="operational", since="2011-09-01")),
    "storm_sewers": (
        "SW",
        "storm",
        dict(
            built_yr=2018,
            status="not_commissioned",
            since="2018-12-20",
            note="built in 2018, never put into operation; akimat departments to audit "
            "the contractor's obligations, materials passed to law enforcement",
        ),
    ),
    "gas_mains": ("GM", "gas", dict(status="operational", since="2012-06-01")),
}


def _asset(layer: str, **values) -> dict:
    rec = {f.name: None for f in get_layer(layer).input_fields}
    rec.update(values)
    return rec


def _shifted(coords, shift) -> list:
    return [pt((x + shift[0], y + shift[1])) for x, y in coords]


def _node_lines(lines: list[list]) -> list[list[list]]:
    """Split each line at interior vertices that other lines share (network noding)."""
    seen: dict = {}
    for idx, coords in enumerate(lines):
        for p in coords:
            seen.setdefault(p, set()).add(idx)
    out = []
    for idx, coords in enumerate(lines):
        parts, current = [], [coords[0]]
        for p in coords[1:-1]:
            current.append(p)
            if len(seen[p]) > 1:
                parts.append(current)
                current = [p]
        current.append(coords[-1])
        parts.append(current)
        out.append(parts)
    return out


def _runs(line: list, edges: set) -> list[list]:
    """Maximal runs of consecutive lattice nodes along ``line`` joined by road edges."""
    out, cur = [], [line[0]]
    for a, b in zip(line[:-1], line[1:]):
        if (a, b) in edges:
            cur.append(b)
        else:
            if len(cur) > 1:
                out.append(cur)
            cur = [b]
    if len(cur) > 1:
        out.append(cur)
    return out


def _networks(g: dict, rng) -> dict:
    n = g["lat"].nodes
    nj = len(V_SPACING)

    def path(*nodes) -> list:
        return [n[x] for x in nodes]

    # power: feeders leave each substation to the road on its west or south side
    feeders = {
        "SS-7": [
            ((3, 1), (4, 1), (5, 1), (6, 1)),
            ((4, 1), (3, 1), (2, 1), (1, 1), (0, 1)),
            ((3, 2), (3, 1), (3, 0)),
            ((3, 1), (3, 2), (2, 2)),
        ],
        "SS-12": [
            ((1, 2), (1, 3), (1, 4), (0, 4)),
            ((2, 2), (1, 2), (0, 2), (0, 3)),
            ((1, 3), (1, 2), (1, 1)),
        ],
        "SS-14": [
            ((4, 2), (4, 3), (4, 4), (5, 4)),
            ((5, 2), (4, 2), (3, 2), (3, 3), (3, 4)),
            ((4, 2), (5, 2), (6, 2)),
            ((4, 3), (4, 2), (4, 1)),
        ],
        "SS-19": [
            ((1, 0), (2, 0), (3, 0), (4, 0), (5, 0), (6, 0)),
            ((1, 1), (1, 0)),
            ((2, 0), (1, 0), (1, 1), (0, 1)),
        ],
    }
    power = []
    for sub, specs in feeders.items():
        s = g["subs"][sub]
        d = 5.0 + 1.5 * len(power)  # each substation's cables on their own line
        for k, spec in enumerate(specs):
            a, b = np.array(n[spec[0]]), np.array(n[spec[1]])
            t = float(np.clip(np.dot(np.subtract(s, a), b - a) / np.dot(b - a, b - a), 0, 1))
            foot = a + t * (b - a)
            coords = [s, pt(foot + (d, d))] + [pt(np.add(n[x], (d, d))) for x in spec[1:]]
            power.append(dict(coords=coords, sub=sub, k=k + 1))
    # a planned feeder from the planned substation to the southern gate road
    s30 = g["subs"]["SS-30"]
    power.append(
        dict(
            coords=[s30, pt((n[3, 0][0] + 5.0, s30[1])), pt(np.add(n[3, 0], (5, -5)))],
            sub="SS-30",
            k=1,
            planned=True,
        )
    )

    # water, gas and storm mains: one main per street run, named after the street
    edges = set(g["lat"].edges())
    runs = []  # (axis, index, [nodes])
    for i in range(len(U_SPACING) + 1):
        runs += [("col", i, r) for r in _runs([(i, j) for j in range(nj + 1)], edges)]
    for j in range(nj + 1):
        runs += [("row", j, r) for r in _runs([(i, j) for i in range(len(U_SPACING) + 1)], edges)]
    water, gas, storm = [], [], []
    for axis, idx, nodes in runs:
        street = g["col_names"][idx] if axis == "col" else g["row_names"][idx]
        coords = path(*nodes)
        diam = (
            500
            if (axis, idx) == ("row", 2)
            else 400
            if (axis, idx) == ("col", 3)
            else 300
            if (axis, idx) in (("col", 1), ("col", 5), ("row", 0))
            else 200
        )
        cap = {500: 24_000.0, 400: 9_000.0, 300: 5_500.0, 200: 2_400.0}[diam]
        share = 0.94 if (axis, idx) == ("col", 3) else float(rng.uniform(0.45, 0.8))
        water.append(
            dict(
                coords=coords,
                name=("Water trunk, " if diam == 500 else "Water main, ") + street,
                cap_m3d=cap,
                load_m3d=float(round(cap * share, -1)),
                diam_mm=diam,
            )
        )
        if (axis, idx) == ("row", 2):
            gas.append(
                dict(coords=coords, pressure="high", name="High-pressure gas main, " + street)
            )
        elif (axis, idx) in (("row", 3), ("row", 4)):
            gas.append(dict(coords=coords, pressure="low", name="Gas main, " + street))
        elif (axis == "col" and 1 <= idx <= 4) or (axis, idx) == ("row", 1):
            gas.append(dict(coords=coords, pressure="medium", name="Gas main, " + street))
        if axis == "col" or (axis, idx) == ("row", 0):
            storm.append(
                dict(
                    coords=coords,
                    name="Storm (rain) sewer, " + street + " (ливневая канализация)",
                    diam_mm=1200 if axis == "row" else 800 if idx % 2 else 1000,
                )
            )
    return dict(power=power, water_mains=water, gas_mains=gas, storm_sewers=storm)


def asset_layers(g: dict, rng) -> dict:
    """Every asset layer's records (field name -> value, and ``geometry``), by layer name."""
    nets = _networks(g, rng)
    out: dict[str, list] = {
        "roads": [
            _asset(
                "roads",
                asset_id=f"R-{k + 1:03d}",
                name=r["name"],
                **{"class": r["cls"]},
                status="operational",
                since="2011-09-01" if r["cls"] != "access" else "2018-12-20",
                geometry=LineString(r["coords"]),
            )
            for k, r in enumerate(g["roads"])
        ],
        "gates": [
            _asset(
                "gates",
                asset_id=f"G-{k + 1}",
                name=gt["name"],
                status="operational",
                since="2011-09-01",
                geometry=Point(gt["coords"]),
            )
            for k, gt in enumerate(g["gates"])
        ],
        "rail_lines": [
            _asset("rail_lines", **meta, kind=r["kind"], geometry=LineString(r["coords"]))
            for meta, r in zip(RAIL_LINES, g["rails"])
        ],
        "rail_stations": [_asset("rail_stations", **STATION, geometry=Point(g["station"]))],
        "substations": [
            _asset("substations", asset_id=sid, **meta, geometry=Point(g["subs"][sid]))
            for sid, meta in SUBSTATIONS.items()
        ],
        "power_lines": [
            _asset(
                "power_lines",
                asset_id=f"PL-{p['sub'][3:]}-{p['k']}",
                name=f"10 kV feeder {p['k']} from {p['sub']}",
                kv=10.0,
                sub_id=p["sub"],
                status="planned" if p.get("planned") else "operational",
                due="2024-12-31" if p.get("planned") else None,
                geometry=LineString(p["coords"]),
            )
            for p in nets["power"]
        ],
    }
    for layer, (prefix, shift, common) in PIPES.items():
        lines = nets[layer]
        shifted = [_shifted(line["coords"], SHIFT[shift]) for line in lines]
        out[layer] = [
            _asset(
                layer,
                asset_id=f"{prefix}-{k + 1:02d}{chr(97 + m)}",
                **{f: v for f, v in line.items() if f != "coords"},
                **common,
                geometry=LineString(part),
            )
            for k, (line, parts) in enumerate(zip(lines, _node_lines(shifted)))
            for m, part in enumerate(parts)
        ]
    out["prot_zones"] = [
        _asset(
            "prot_zones",
            asset_id=f"PZ-{sid}",
            name=f"Protection zone of {sid}",
            kind="substation",
            width_m=SUB_PROT_M,
            status="planned" if meta["status"] == "planned" else "operational",
            geometry=Point(g["subs"][sid]).buffer(SUB_PROT_M, cap_style="square"),
        )
        for sid, meta in SUBSTATIONS.items()
    ] + [
        _asset(
            "prot_zones",
            asset_id=f"PZ-{meta['asset_id']}",
            name=f"Rail protection zone of {meta['asset_id']}",
            kind="rail",
            width_m=RAIL_PROT_M[r["kind"]],
            status="operational",
            geometry=LineString(r["coords"]).buffer(RAIL_PROT_M[r["kind"]]),
        )
        for meta, r in zip(RAIL_LINES, g["rails"])
    ]
    return out
