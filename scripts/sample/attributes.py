"""Plot attributes: occupants, sectors, demands, statuses and the seeded residents."""

from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry import LineString

from geo.layers import SECTORS, get_layer
from scripts.sample.frame import V_SPACING

RU_ROOTS = [
    "Алатау",
    "Жетысу",
    "Тянь-Шань",
    "Медеу",
    "Туран",
    "Кайнар",
    "Береке",
    "Арман",
    "Достык",
    "Сункар",
    "Байтерек",
    "Илийский",
    "Капшагай",
    "Шыгыс",
    "Нурлы",
    "Асем",
]
EN_ROOTS = [
    "Steppe",
    "Alatau",
    "Zhetysu",
    "Silk Way",
    "Tien Shan",
    "Medeu",
    "Kazakh",
    "Eurasia",
    "Almaty",
    "Caspian",
    "Altyn",
    "Baikonur",
    "Saryarka",
    "Ile",
]
SECTOR_NOUN = {
    "machine": (["Машзавод", "Техмаш", "Агромаш"], ["Machinery", "Engineering", "Motors"]),
    "materials": (
        ["Металл", "Стройматериалы", "Бетон"],
        ["Steel", "Building Materials", "Polymers"],
    ),
    "food": (["Агро", "Фуд", "Молоко"], ["Foods", "Agro", "Dairy"]),
    "pharma": (["Фарм", "Медпрепараты"], ["Pharma", "Medical"]),
    "chemicals": (["Химпром", "Лакокраска"], ["Chemicals", "Coatings"]),
    "light": (["Текстиль", "Мебель"], ["Textiles", "Furniture"]),
    "logistics": (["Логистик", "Транзит"], ["Logistics", "Terminals"]),
    "energy": (["Энергомаш", "Кабель"], ["Energy Systems", "Cable Works"]),
}
PROJECTS = {
    "machine": [
        "Agricultural machinery assembly",
        "Metal structures fabrication",
        "Electrical equipment plant",
        "Bus and truck body assembly",
    ],
    "materials": [
        "Dry building mixes",
        "PVC pipe production",
        "Aerated concrete blocks",
        "Steel wire and mesh",
    ],
    "food": [
        "Dairy processing",
        "Meat processing plant",
        "Confectionery factory",
        "Flour mill and bakery",
    ],
    "pharma": ["Generic drugs (GMP)", "Medical disposables", "Infusion solutions plant"],
    "chemicals": ["Paints and coatings", "Household chemicals", "Polymer packaging film"],
    "light": ["Garment factory", "Footwear production", "Furniture factory"],
    "logistics": ["Bonded warehouse", "Cold-chain distribution centre", "Cross-dock terminal"],
    "energy": ["Solar panel assembly", "Transformer repair works", "Cable and wire plant"],
}
KW_PER_HA = {
    "machine": 260,
    "materials": 420,
    "food": 220,
    "pharma": 300,
    "chemicals": 360,
    "light": 130,
    "logistics": 70,
    "energy": 260,
}
M3D_PER_HA = {
    "machine": 12,
    "materials": 25,
    "food": 60,
    "pharma": 40,
    "chemicals": 45,
    "light": 15,
    "logistics": 4,
    "energy": 10,
}
HAZARD = {
    "machine": (2, 4),
    "materials": (2, 4),
    "food": (1, 2),
    "pharma": (2, 3),
    "chemicals": (3, 5),
    "light": (1, 2),
    "logistics": (1, 2),
    "energy": (2, 3),
}
ALLOWED = [
    "*",
    "*",
    "*",
    "machine,materials,logistics,energy",
    "food,pharma,light,logistics",
    "machine,materials,chemicals,energy",
    "machine,light,logistics,food",
]
RAIL_ALLOWED = "machine,materials,logistics,energy,chemicals"

SEEDS = {
    "steel": dict(
        resident="Asia Steel Pipe Corporation",
        sector="materials",
        project="Large-diameter welded steel pipe, 100 kt/yr (export to UZ, TM, TJ, RU, CN, KG)",
        status="occupied",
        invest=38_000_000_000.0,
        jobs=520,
        power_kw=9200.0,
        water_m3d=620.0,
        rail_need=True,
        hazard=3,
        floor_m2=46_000.0,
        start_yr=2019,
    ),
    "greenhouse": dict(
        resident="BRB APK (ТОО «BRB АПК»)",
        sector="food",
        project="Greenhouse complex, 7.2 kt vegetables/yr (export to RU, UAE)",
        status="occupied",
        invest=21_000_000_000.0,
        jobs=430,
        power_kw=4300.0,
        water_m3d=1150.0,
        rail_need=False,
        hazard=1,
        floor_m2=118_000.0,
        start_yr=2020,
    ),
    "valtherm": dict(
        resident="Valtherm",
        sector="machine",
        project="Aluminium and bimetallic radiators, 20 M units/yr "
        "(under construction; export mainly to RU)",
        status="allocated",
        invest=12_500_000_000.0,
        jobs=290,
        power_kw=6400.0,
        water_m3d=240.0,
        rail_need=False,
        hazard=3,
        floor_m2=36_000.0,
        start_yr=2021,
    ),
    "auto": dict(
        resident="ТОО «Алматы Автокомпонент»",
        sector="machine",
        project="Auto-components plant: seats, plastic parts, accessories, "
        "multimedia systems (construction from autumn 2022)",
        status="allocated",
        invest=24_000_000_000.0,
        jobs=650,
        power_kw=5200.0,
        water_m3d=160.0,
        rail_need=False,
        hazard=3,
        floor_m2=42_000.0,
        start_yr=2022,
    ),
}
OCCUPANT_FIELDS = (
    "resident",
    "project",
    "sector",
    "invest",
    "jobs",
    "power_kw",
    "water_m3d",
    "rail_need",
    "hazard",
    "floor_m2",
    "start_yr",
)


def company_name(rng, sector: str, used: set) -> str:
    ru, en = SECTOR_NOUN[sector]
    for _ in range(50):
        if rng.random() < 0.5:
            name = f"ТОО «{rng.choice(RU_ROOTS)} {rng.choice(ru)}»"
        else:
            name = f"{rng.choice(EN_ROOTS)} {rng.choice(en)} LLP"
        if name not in used:
            used.add(name)
            return name
    name = f"{name} {len(used)}"
    used.add(name)
    return name


def _occupant(rng, sector: str, ha: float, status: str, used: set) -> dict:
    intensity = float(rng.uniform(0.6, 1.4))
    h_lo, h_hi = HAZARD[sector]
    return dict(
        resident=company_name(rng, sector, used),
        sector=sector,
        project=str(rng.choice(PROJECTS[sector])),
        invest=float(round(ha * rng.uniform(0.35e9, 1.6e9), -6)),
        jobs=int(max(8, round(ha * rng.uniform(10, 42)))),
        power_kw=float(round(ha * KW_PER_HA[sector] * intensity, -1)),
        water_m3d=float(round(ha * M3D_PER_HA[sector] * float(rng.uniform(0.6, 1.4)), 1)),
        rail_need=bool(sector in ("materials", "machine", "logistics") and rng.random() < 0.3),
        hazard=int(rng.integers(h_lo, h_hi + 1)),
        floor_m2=float(round(ha * 1e4 * rng.uniform(0.22, 0.55), -1)),
        start_yr=int(
            rng.integers(2006, 2022) if status == "occupied" else rng.integers(2021, 2024)
        ),
    )


def plot_attributes(rng, zone_plots: list, cand_plots: list, g: dict) -> list[dict]:
    lat = g["lat"]
    sidings = shapely.union_all(
        [LineString(r["coords"]) for r in g["rails"] if r["kind"] == "siding"]
    )
    rows = []
    for k, (geom, cell) in enumerate(zone_plots):
        rows.append(
            dict(
                geometry=geom,
                cell=cell,
                ha=geom.area / 1e4,
                rail=geom.distance(sidings) < 20.0,
                exp=None,
            )
        )
    for geom in cand_plots:
        rows.append(
            dict(
                geometry=geom,
                cell=None,
                ha=geom.area / 1e4,
                rail=False,
                exp="EXP-1",
                status="candidate",
            )
        )
    nzone = len(zone_plots)

    def pick(pred, key):
        options = [i for i in range(nzone) if pred(rows[i]) and "status" not in rows[i]]
        return max(options, key=key)

    seeds = {
        "steel": pick(lambda r: r["rail"] and r["cell"] == (2, 2), lambda i: rows[i]["ha"]),
        "greenhouse": pick(lambda r: r["cell"] == (1, 0), lambda i: rows[i]["ha"]),
        "valtherm": pick(lambda r: r["cell"] == (4, 0), lambda i: -abs(rows[i]["ha"] - 6.5)),
        "auto": pick(lambda r: r["cell"] == (3, 2), lambda i: -abs(rows[i]["ha"] - 8.0)),
    }
    for key, i in seeds.items():
        rows[i].update(SEEDS[key])
        rows[i]["sectors"] = RAIL_ALLOWED if rows[i]["rail"] else "*"
        rows[i]["hazard_ok"] = 4
    # rail-side plots kept free for rail-dependent investors
    rail_free = [i for i in range(nzone) if rows[i]["rail"] and "status" not in rows[i]]
    for i in rail_free[::3][:5]:
        rows[i]["status"] = "available"
    # the remaining statuses: available plots lean to the newer east and south
    rest = [i for i in range(nzone) if "status" not in rows[i]]
    lat_cells = lat.cells
    east = {c: (c[0] + (len(V_SPACING) - c[1])) for c in lat_cells}
    weights = np.array([1.0 + east[rows[i]["cell"]] ** 1.5 for i in rest])
    n_avail = 52 - sum(1 for i in range(nzone) if rows[i].get("status") == "available")
    order = list(rng.choice(rest, size=len(rest), replace=False, p=weights / weights.sum()))
    plan = ["available"] * n_avail + ["candidate"] * 3 + ["reserved"] * 10 + ["allocated"] * 10
    for i, status in zip(order, plan):
        rows[i]["status"] = status
    for i in rest:
        rows[i].setdefault("status", "occupied")

    used = {r["resident"] for r in rows if "resident" in r}
    sector_cycle = list(SECTORS)
    occupied = [
        i
        for i in range(nzone)
        if rows[i]["status"] in ("occupied", "allocated") and "resident" not in rows[i]
    ]
    for n_, i in enumerate(occupied):
        r = rows[i]
        allowed = str(rng.choice(ALLOWED)) if not r["rail"] else RAIL_ALLOWED
        choices = sorted(SECTORS if allowed == "*" else allowed.split(","))
        sector = (
            sector_cycle[n_]
            if n_ < len(sector_cycle) and sector_cycle[n_] in choices
            else str(rng.choice(choices))
        )
        if n_ < len(sector_cycle):
            allowed = "*"
            sector = sector_cycle[n_]
        r.update(_occupant(rng, sector, r["ha"], r["status"], used))
        if r["rail"] and sector in ("materials", "machine", "logistics"):
            r["rail_need"] = True
        r["sectors"] = allowed
        r["hazard_ok"] = int(max(r["hazard"], rng.integers(2, 6)))
    for i, r in enumerate(rows):
        if r["status"] in ("occupied", "allocated"):
            continue
        r["sectors"] = RAIL_ALLOWED if r["rail"] else str(rng.choice(ALLOWED))
        r["hazard_ok"] = int(rng.integers(2, 6)) if not r["rail"] else 4
        if r["status"] == "reserved":
            choices = sorted(SECTORS if r["sectors"] == "*" else r["sectors"].split(","))
            sector = str(rng.choice(choices))
            r.update(
                resident=company_name(rng, sector, used),
                sector=sector,
                project=str(rng.choice(PROJECTS[sector])),
            )

    out = []
    for k, r in enumerate(rows):
        cell = r["cell"]
        cad = (
            f"20-321-{(cell[1] * 10 + cell[0] + 1):03d}-{k + 101:03d}"
            if cell is not None and r["status"] != "candidate"
            else None
        )
        rec = {f.name: None for f in get_layer("plots").input_fields}
        rec.update({key: r[key] for key in rec if key in r})
        rec.update(plot_id=f"P-{k + 1:03d}", cadastre=cad, exp_id=r["exp"], geometry=r["geometry"])
        out.append(rec)
    return out
