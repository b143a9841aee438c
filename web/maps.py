"""Folium map builders for the zone, served with self-hosted Leaflet and escaped popups."""

from __future__ import annotations

import math
import re
import shutil
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import folium
import pandas as pd
from folium.elements import JSCSSMixin
from folium.template import Template
from markupsafe import Markup

from geo.crs import WEB_DECIMALS
from geo.i18n import N_
from geo.layers import LAYERS, get_layer, parse_sectors

Translate = Callable[[str], str]
MAX_MAP_ZOOM = 20
STATIC_DIR = Path(__file__).resolve().parent / "static"
VENDOR_DIR = STATIC_DIR / "vendor"
NODE_MODULES = Path(__file__).resolve().parent / "assets" / "node_modules"


# --------------------------------------------------------------------------- vendor assets
# Every browser library, installed by npm (web/assets/package.json) and copied by
# ``python -m web.maps vendor`` into web/static/vendor/: destination -> source in node_modules.
VENDOR_FILES: dict[str, str] = {
    "leaflet/leaflet.js": "leaflet/dist/leaflet.js",
    "leaflet/leaflet.css": "leaflet/dist/leaflet.css",
    "leaflet/images": "leaflet/dist/images",
    "leaflet-draw/leaflet.draw.js": "leaflet-draw/dist/leaflet.draw.js",
    "leaflet-draw/leaflet.draw.css": "leaflet-draw/dist/leaflet.draw.css",
    "leaflet-draw/images": "leaflet-draw/dist/images",
    "jquery/jquery.min.js": "jquery/dist/jquery.min.js",
    "bootstrap/bootstrap.bundle.min.js": "bootstrap/dist/js/bootstrap.bundle.min.js",
    "bootstrap/bootstrap.bundle.min.js.map": "bootstrap/dist/js/bootstrap.bundle.min.js.map",
    "bootstrap/bootstrap.min.css": "bootstrap/dist/css/bootstrap.min.css",
    "bootstrap/bootstrap.min.css.map": "bootstrap/dist/css/bootstrap.min.css.map",
    "fontawesome/css/all.min.css": "@fortawesome/fontawesome-free/css/all.min.css",
    "fontawesome/webfonts": "@fortawesome/fontawesome-free/webfonts",
    "awesome-markers/leaflet.awesome-markers.js": "leaflet.awesome-markers/dist/leaflet.awesome-markers.js",
    "awesome-markers/leaflet.awesome-markers.css": "leaflet.awesome-markers/dist/leaflet.awesome-markers.css",
    "awesome-markers/images": "leaflet.awesome-markers/dist/images",
    "vectorgrid/Leaflet.VectorGrid.bundled.min.js": "leaflet.vectorgrid/dist/Leaflet.VectorGrid.bundled.min.js",
}

# What folium's Map template loads, by folium's own names, pointed at our copies. Left out on
# purpose: Bootstrap 3 glyphicons and folium's awesome-rotate CSS (only for glyphicon-prefixed
# or rotated awesome markers, which no map here uses; neither is published on npm).
MAP_JS: tuple[tuple[str, str], ...] = (
    ("leaflet", "leaflet/leaflet.js"),
    ("jquery", "jquery/jquery.min.js"),
    ("bootstrap", "bootstrap/bootstrap.bundle.min.js"),
    ("awesome_markers", "awesome-markers/leaflet.awesome-markers.js"),
)
MAP_CSS: tuple[tuple[str, str], ...] = (
    ("leaflet_css", "leaflet/leaflet.css"),
    ("bootstrap_css", "bootstrap/bootstrap.min.css"),
    ("awesome_markers_font_css", "fontawesome/css/all.min.css"),
    ("awesome_markers_css", "awesome-markers/leaflet.awesome-markers.css"),
)


def missing_vendor_files(vendor_dir: Path = VENDOR_DIR) -> list[str]:
    """The vendor files the pages need that are not in ``vendor_dir``."""
    return [dest for dest in VENDOR_FILES if not (vendor_dir / dest).exists()]


def install_vendor(node_modules: Path = NODE_MODULES, vendor_dir: Path = VENDOR_DIR) -> int:
    """Copy the npm-installed libraries into ``vendor_dir``; return how many entries.

    Raises
    ------
    FileNotFoundError
        When a source is absent (``npm ci --prefix web/assets`` has not run).
    """
    missing = [src for src in VENDOR_FILES.values() if not (node_modules / src).exists()]
    if missing:
        msg = (
            f"{len(missing)} asset(s) missing under {node_modules} (first: {missing[0]}); "
            "run `npm ci --prefix web/assets` (or `make setup`)"
        )
        raise FileNotFoundError(msg)
    if vendor_dir.exists():
        shutil.rmtree(vendor_dir)
    for dest, src in VENDOR_FILES.items():
        target = vendor_dir / dest
        target.parent.mkdir(parents=True, exist_ok=True)
        if (node_modules / src).is_dir():
            shutil.copytree(node_modules / src, target)
        else:
            shutil.copy2(node_modules / src, target)
    return len(VENDOR_FILES)


# --------------------------------------------------------------------------- vocabularies
# Schema labels and codes are English in geo.layers; these marks put them in the catalogues.
LAYER_LABELS = (
    N_("Zone boundary"),
    N_("Expansion areas"),
    N_("Plots"),
    N_("Roads"),
    N_("Gates"),
    N_("Rail lines"),
    N_("Rail stations"),
    N_("Substations"),
    N_("Power lines"),
    N_("Water mains"),
    N_("Storm sewers"),
    N_("Gas mains"),
    N_("Protection zones"),
    N_("Applications"),
    N_("Users"),
    N_("Plan targets"),
    N_("Audit trail"),
)
FIELD_LABELS = (
    N_("Zone id"),
    N_("Name"),
    N_("Operator"),
    N_("Area, ha"),
    N_("Expansion id"),
    N_("Status"),
    N_("Note"),
    N_("Plot id"),
    N_("Cadastral number"),
    N_("Allowed sectors"),
    N_("Occupant's sector"),
    N_("Resident"),
    N_("Project"),
    N_("Investment, tenge"),
    N_("Jobs"),
    N_("Power demand, kW"),
    N_("Water demand, m³/day"),
    N_("Needs rail"),
    N_("Hazard class"),
    N_("Highest hazard class allowed"),
    N_("Production floor, m²"),
    N_("Start year"),
    N_("Expansion area"),
    N_("Asset id"),
    N_("Road class"),
    N_("Status since"),
    N_("Due"),
    N_("Kind"),
    N_("Built"),
    N_("Capacity, MVA"),
    N_("Load, MVA"),
    N_("Voltage, kV"),
    N_("Feeding substation"),
    N_("Capacity, m³/day"),
    N_("Load, m³/day"),
    N_("Diameter, mm"),
    N_("Pressure"),
    N_("Protects"),
    N_("Width, m"),
    N_("Application id"),
    N_("Investor (user)"),
    N_("Company"),
    N_("Sector"),
    N_("Plot applied for"),
    N_("Minimum area, ha"),
    N_("Maximum area, ha"),
    N_("Power, kW"),
    N_("Water, m³/day"),
    N_("Priority"),
    N_("Reason"),
    N_("Plot reserved"),
    N_("Created"),
    N_("Updated"),
    N_("User name"),
    N_("Role"),
    N_("Language"),
    N_("Active"),
    N_("Target"),
    N_("Metric"),
    N_("Target value"),
    N_("By year"),
    N_("Source"),
)
# What one feature of a layer is called (popup titles).
FEATURE_NOUNS: dict[str, str] = {
    "zone": N_("Zone"),
    "expansion": N_("Expansion area"),
    "plots": N_("Plot"),
    "roads": N_("Road"),
    "gates": N_("Gate"),
    "rail_lines": N_("Rail line"),
    "rail_stations": N_("Rail station"),
    "substations": N_("Substation"),
    "power_lines": N_("Power line"),
    "water_mains": N_("Water main"),
    "storm_sewers": N_("Storm sewer"),
    "gas_mains": N_("Gas main"),
    "prot_zones": N_("Protection zone"),
}
# Codes stored in the data -> English words (the msgids).
VALUE_LABELS: dict[str, str] = {
    # plot statuses
    "candidate": N_("candidate"),
    "available": N_("available"),
    "reserved": N_("reserved"),
    "allocated": N_("allocated"),
    "occupied": N_("occupied"),
    # asset statuses
    "operational": N_("operational"),
    "restricted": N_("restricted"),
    "closed": N_("closed"),
    "under_repair": N_("under repair"),
    "not_commissioned": N_("not commissioned"),
    "planned": N_("planned"),
    # expansion and application statuses
    "proposed": N_("proposed"),
    "approved": N_("approved"),
    "submitted": N_("submitted"),
    "rejected": N_("rejected"),
    "withdrawn": N_("withdrawn"),
    # sectors
    "machine": N_("machine building"),
    "materials": N_("building materials"),
    "food": N_("food"),
    "pharma": N_("pharmaceuticals"),
    "chemicals": N_("chemicals"),
    "light": N_("light industry"),
    "logistics": N_("logistics"),
    "energy": N_("energy"),
    # road classes, rail kinds, pressures, protection kinds
    "arterial": N_("arterial"),
    "collector": N_("collector"),
    "local": N_("local"),
    "access": N_("access"),
    "mainline": N_("mainline"),
    "siding": N_("siding"),
    "spur": N_("spur"),
    "low": N_("low"),
    "medium": N_("medium"),
    "high": N_("high"),
    "substation": N_("substation"),
    "rail": N_("rail"),
    "power": N_("power"),
    "gas": N_("gas"),
    "water": N_("water"),
    # roles
    "public": N_("public"),
    "investor": N_("investor"),
    "planner": N_("planner"),
    "admin": N_("admin"),
}


def tr_value(code: Any, translate: Translate) -> str:
    """A stored code (status, sector, class...) in the reader's language."""
    text = "" if code is None else str(code)
    return translate(VALUE_LABELS[text]) if text in VALUE_LABELS else text


def tr_label(text: str, translate: Translate) -> str:
    """A schema label (layer or field) in the reader's language."""
    return translate(text) if text else text


# --------------------------------------------------------------------------- styles
PLOT_COLOURS: dict[str, str] = {
    "candidate": "#b8a9c9",
    "available": "#2ca02c",
    "reserved": "#f0ad1e",
    "allocated": "#1f77b4",
    "occupied": "#8c6d5a",
}
STATUS_STROKES: dict[str, dict[str, Any]] = {
    # how an asset's status changes its base style: dashed and red when it cannot serve
    "operational": {},
    "restricted": {"color": "#e8590c", "dashArray": "10 6"},
    "closed": {"color": "#d62728", "dashArray": "6 6"},
    "under_repair": {"color": "#d62728", "dashArray": "3 5"},
    "not_commissioned": {"color": "#7f7f7f", "dashArray": "2 7"},
    "planned": {"opacity": 0.55, "dashArray": "1 6"},
}


@dataclass(frozen=True)
class LayerStyle:
    """How one layer is drawn."""

    name: str
    style: Mapping[str, Any]
    show: bool = True
    radius: float | None = None  # points: circle marker radius in pixels


LAYER_STYLES: tuple[LayerStyle, ...] = (
    LayerStyle(
        "zone",
        {
            "color": "#222222",
            "weight": 3,
            "fill": True,
            "fillColor": "#ffffff",
            "fillOpacity": 0.35,
        },
    ),
    LayerStyle(
        "expansion",
        {
            "color": "#7b2cbf",
            "weight": 2,
            "dashArray": "8 5",
            "fillColor": "#c8b6e2",
            "fillOpacity": 0.25,
        },
    ),
    LayerStyle(
        "prot_zones",
        {
            "color": "#e377c2",
            "weight": 1,
            "dashArray": "3 3",
            "fillColor": "#f7b6d2",
            "fillOpacity": 0.25,
        },
        show=False,
    ),
    LayerStyle("plots", {"color": "#404040", "weight": 1, "fillOpacity": 0.65}),
    LayerStyle("roads", {"color": "#a3a3a3", "weight": 6, "opacity": 0.95, "lineCap": "butt"}),
    LayerStyle("water_mains", {"weight": 2, "color": "#1f77b4"}),
    LayerStyle("storm_sewers", {"weight": 2, "color": "#17becf"}),
    LayerStyle("gas_mains", {"weight": 2, "color": "#d4a100"}),
    LayerStyle("power_lines", {"weight": 2, "color": "#9467bd"}),
    LayerStyle("rail_lines", {"color": "#111111", "weight": 4}),
    LayerStyle(
        "gates",
        {"color": "#222222", "weight": 2, "fillColor": "#ffffff", "fillOpacity": 1},
        radius=5,
    ),
    LayerStyle(
        "rail_stations",
        {"color": "#111111", "weight": 3, "fillColor": "#ffffff", "fillOpacity": 1},
        radius=9,
    ),
    LayerStyle(
        "substations",
        {"color": "#9467bd", "weight": 3, "fillColor": "#e5d8f5", "fillOpacity": 1},
        radius=8,
    ),
)
ROAD_WEIGHTS = {"arterial": 11, "collector": 8, "local": 6, "access": 4}


# --------------------------------------------------------------------------- popups
_HIDDEN = {"version", "pw_hash", "token_hash"}


def _present(value: Any) -> bool:
    if value is None or value is pd.NA:
        return False
    if isinstance(value, float) and math.isnan(value):
        return False
    return not (isinstance(value, str) and not value.strip())


def format_value(layer: str, name: str, value: Any, translate: Translate) -> str:
    """One attribute as text for people: codes translated, numbers grouped, data as stored."""
    fld = get_layer(layer).field(name)
    if fld.type == "bool":
        return translate(N_("yes")) if bool(value) else translate(N_("no"))
    if name.endswith("_yr"):
        return str(int(value))  # a year, not a quantity: no grouping
    if fld.type in ("int", "float"):
        number = float(value)
        text = (
            f"{int(number):,d}" if fld.type == "int" else f"{number:,.2f}".rstrip("0").rstrip(".")
        )
        return text.replace(",", "\u202f")  # narrow no-break space groups thousands
    if name == "sectors":
        allowed = parse_sectors(value)
        return (
            translate(N_("all"))
            if allowed is None
            else ", ".join(tr_value(s, translate) for s in sorted(allowed))
        )
    if fld.choices is not None:
        return tr_value(value, translate)
    return str(value)


def popup_html(
    layer: str, row: Mapping[str, Any], translate: Translate, extra_lines: Iterable[str] = ()
) -> str:
    """Popup HTML for one feature; every value (and every extra line) is escaped."""
    lyr = get_layer(layer)
    title = row.get("name") if _present(row.get("name")) else row.get(lyr.key)
    noun = (
        translate(FEATURE_NOUNS[layer])
        if layer in FEATURE_NOUNS
        else tr_label(lyr.label, translate)
    )
    if str(title).casefold().startswith(str(noun).casefold()):
        # a name that already says what it is ("Substation No. 12") needs no noun before it
        parts = [Markup('<div class="zp-popup"><h6><span>{}</span></h6><table>').format(title)]
    else:
        parts = [
            Markup('<div class="zp-popup"><h6>{} <span>{}</span></h6><table>').format(noun, title)
        ]
    for fld in lyr.fields:
        if fld.name in _HIDDEN or (fld.name in ("name", lyr.key) and title == row.get(fld.name)):
            continue
        value = row.get(fld.name)
        if not _present(value):
            continue
        parts.append(
            Markup("<tr><th>{}</th><td>{}</td></tr>").format(
                tr_label(fld.label, translate), format_value(layer, fld.name, value, translate)
            )
        )
    parts.append(Markup("</table>"))
    lines = [line for line in extra_lines if line]
    if lines:
        parts.append(
            Markup('<p class="zp-servicing-title">{}</p><ul class="zp-servicing">').format(
                translate(N_("Servicing"))
            )
        )
        parts += [Markup("<li>{}</li>").format(line) for line in lines]
        parts.append(Markup("</ul>"))
    parts.append(Markup("</div>"))
    return str(Markup("").join(parts))


# --------------------------------------------------------------------------- the map
class VectorTileLayers(JSCSSMixin):
    """Every layer of the zone as vector tiles (web/static/tilemap.js over Leaflet.VectorGrid),
    with a layer control; a click asks the server for the feature's popup."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = window.zpTileMap({{ this._parent.get_name() }},
                                                     {{ this.config|tojson }});
        {% endmacro %}
    """)

    def __init__(self, config: Mapping[str, Any], js: list[tuple[str, str]]):
        super().__init__()
        self._name = "VectorTileLayers"
        self.config = dict(config)
        self.default_js = js


def _static(
    url_for: Callable[[str], str], pairs: Iterable[tuple[str, str]]
) -> list[tuple[str, str]]:
    return [(name, url_for(f"vendor/{path}")) for name, path in pairs]


def tile_layer_specs(translate: Translate) -> list[dict[str, Any]]:
    """Each map layer's name, label, geometry, base style and visibility, bottom first."""
    return [
        {
            "name": spec.name,
            "label": tr_label(LAYERS[spec.name].label, translate),
            "geometry": LAYERS[spec.name].geometry,
            "asset": LAYERS[spec.name].asset,
            "style": dict(spec.style),
            "radius": spec.radius,
            "show": spec.show,
        }
        for spec in LAYER_STYLES
    ]


def build_zone_map(
    bounds: tuple[float, float, float, float] | None,
    *,
    translate: Translate,
    static_url: Callable[[str], str],
    tiles: str,
    pick: str,
    tiles_url: str | None = None,
    tiles_attribution: str | None = None,
) -> folium.Map:
    """The zone map: every layer as styled vector tiles, popups fetched on click.

    The page holds no features, so its weight does not depend on the store's size.

    Parameters
    ----------
    bounds : (west, south, east, north) in WGS84, optional
        What to fit the view to (the zone); None centres on Almaty.
    translate : callable
        gettext of the reader's language.
    static_url : callable
        Maps a path under /static to its URL (``url_for('static', filename=...)``).
    tiles : str
        The vector tile URL template with ``__layer__`` for the layer name.
    pick : str
        The URL answering what lies under a click (``/map/features``).
    tiles_url, tiles_attribution : str, optional
        A basemap tile URL template; None draws the vectors on a plain background.
    """
    box = (
        None
        if bounds is None
        else [
            [round(bounds[1], WEB_DECIMALS), round(bounds[0], WEB_DECIMALS)],
            [round(bounds[3], WEB_DECIMALS), round(bounds[2], WEB_DECIMALS)],
        ]
    )
    centre = (
        [43.33, 76.87]
        if box is None
        else [
            round((box[0][0] + box[1][0]) / 2, WEB_DECIMALS),
            round((box[0][1] + box[1][1]) / 2, WEB_DECIMALS),
        ]
    )
    m = folium.Map(
        location=centre,
        zoom_start=14,
        tiles=None,
        control_scale=False,
        prefer_canvas=False,
        max_zoom=MAX_MAP_ZOOM,
    )
    m.default_js = _static(static_url, MAP_JS)
    m.default_css = _static(static_url, MAP_CSS)
    if tiles_url:
        folium.TileLayer(
            tiles=tiles_url,
            attr=tiles_attribution or "",
            name=translate(N_("Basemap")),
            overlay=False,
            control=False,
            max_zoom=MAX_MAP_ZOOM,
        ).add_to(m)
    config = {
        "tiles": tiles,
        "pick": pick,
        "maxZoom": MAX_MAP_ZOOM,
        "layers": tile_layer_specs(translate),
        "plotColours": PLOT_COLOURS,
        "statusStrokes": STATUS_STROKES,
        "roadWeights": ROAD_WEIGHTS,
    }
    VectorTileLayers(
        config,
        [
            ("vectorgrid", static_url("vendor/vectorgrid/Leaflet.VectorGrid.bundled.min.js")),
            ("zp_tilemap", static_url("tilemap.js")),
        ],
    ).add_to(m)
    if box is not None:
        m.fit_bounds(box, padding=(12, 12))
    return m


_REMOTE = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)


@dataclass(frozen=True)
class RenderedMap:
    """A folium map split for embedding in a page: head tags, body markup, the script."""

    header: str
    html: str
    script: str
    map_id: str


def render_map(m: folium.Map) -> RenderedMap:
    """Render ``m`` in parts; refuse any element that would load from another host."""
    fig = m.get_root()
    assert isinstance(fig, folium.Figure), "a folium map's root is its Figure"
    fig.render()
    header = fig.header.render()
    html = fig.html.render()
    script = fig.script.render()
    if _REMOTE.search(header) or _REMOTE.search(html):
        found = _REMOTE.search(header + html)
        assert found is not None, "matched just above"
        msg = (
            f"a map element references another host near {found.group(0)!r}; "
            "override its default_js/default_css with /static/vendor/ copies"
        )
        raise RuntimeError(msg)
    return RenderedMap(header, html, script, m.get_name())


#: Line layers told apart by colour in the legend (statuses are told apart by dashes).
NETWORK_LAYERS = ("roads", "rail_lines", "power_lines", "water_mains", "storm_sewers", "gas_mains")


def legend(
    translate: Translate, statuses: Iterable[str] | None = None
) -> dict[str, list[dict[str, str]]]:
    """Legend entries for the page template: plot statuses (those in ``statuses``, default
    all), asset statuses and the colour of each network."""
    shown = set(PLOT_COLOURS if statuses is None else statuses)
    plots = [
        {"label": tr_value(s, translate), "colour": c, "code": s}
        for s, c in PLOT_COLOURS.items()
        if s in shown
    ]
    assets = [
        {
            "label": tr_value(s, translate),
            "code": s,
            "colour": STATUS_STROKES[s].get("color", "#333333"),
            "dash": STATUS_STROKES[s].get("dashArray", ""),
        }
        for s in STATUS_STROKES
    ]
    styles = {style.name: style.style for style in LAYER_STYLES}
    networks = [
        {
            "label": tr_label(get_layer(name).label, translate),
            "code": name,
            "colour": styles[name]["color"],
            "width": min(styles[name].get("weight", 2), 5),
        }
        for name in NETWORK_LAYERS
    ]
    return {"plots": plots, "assets": assets, "networks": networks}


def main(argv: list[str] | None = None) -> int:
    """``python -m web.maps vendor``: copy npm-installed libraries into web/static/vendor."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] != ["vendor"]:
        print("usage: python -m web.maps vendor", file=sys.stderr)
        return 2
    try:
        n = install_vendor()
    except FileNotFoundError as err:
        print(f"web.maps vendor: error: {err}", file=sys.stderr)
        return 1
    print(f"copied {n} vendor assets into {VENDOR_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
