"""Folium map builders for the zone (self-hosted Leaflet), layer styles and the legend."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import folium
from folium.elements import JSCSSMixin
from folium.template import Template

from geo.crs import WEB_DECIMALS
from geo.i18n import N_
from geo.layers import LAYERS, get_layer
from web.i18n import leaflet_texts, measure_labels
from web.labels import Translate, tr_label, tr_value

MAX_MAP_ZOOM = 20


# What the zone map page loads in its head, by folium's names, pointed at our copies: Leaflet,
# and Bootstrap's CSS for the page around the map. Folium's other defaults (jQuery, Bootstrap's
# JS, awesome markers and their icon font) are left out: the map draws no folium marker or
# popup, and six fewer requests make the page load sooner.
MAP_JS: tuple[tuple[str, str], ...] = (("leaflet", "leaflet/leaflet.js"),)
MAP_CSS: tuple[tuple[str, str], ...] = (
    ("leaflet_css", "leaflet/leaflet.css"),
    ("bootstrap_css", "bootstrap/bootstrap.min.css"),
)


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
#: Layers a click never picks: the zone boundary is the frame every click falls inside, so its
#: popup would open on every miss and hide what the reader meant to hit.
UNPICKED = frozenset({"zone"})
PICK_PIXELS = 6  # how near a click must come to a line or an area's edge, in screen pixels
PICK_MARGIN = 4  # beyond a point marker's drawn edge, so a click anywhere on it hits


def pick_pixels(layer: str) -> float:
    """How near (screen pixels) a click must come to a feature of ``layer`` to hit it: point
    markers count their whole drawn circle (radius and half the stroke) plus a margin."""
    spec = next((s for s in LAYER_STYLES if s.name == layer), None)
    if spec is None or spec.radius is None:
        return PICK_PIXELS
    return spec.radius + spec.style.get("weight", 0) / 2 + PICK_MARGIN


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
            "pick": spec.name not in UNPICKED,
        }
        for spec in LAYER_STYLES
    ]


def search_labels(translate: Translate) -> dict[str, Any]:
    """The plot search box's words (web/static/search.js) in the reader's language."""
    return {
        "search": translate(N_("Search plots")),
        "placeholder": translate(N_("Plot id or cadastral number")),
        "none": translate(N_("No plot found.")),
        "error": translate(N_("Search failed:")),
        "fields": {
            "cadastre": translate(N_("Cadastral number")),
            "resident": translate(N_("Resident")),
        },
        "statuses": {code: tr_value(code, translate) for code in PLOT_COLOURS},
    }


def build_zone_map(
    bounds: tuple[float, float, float, float] | None,
    *,
    translate: Translate,
    static_url: Callable[[str], str],
    tiles: str,
    pick: str,
    feature: str,
    search: str,
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
    feature : str
        One feature's popup URL with ``__layer__`` and ``__id__`` placeholders.
    search : str
        The plot search URL (``/api/search``).
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
        "feature": feature,
        "search": search,
        "leaflet": leaflet_texts(translate),
        "labels": {
            "search": search_labels(translate),
            "measure": measure_labels(translate),
            "print": translate(N_("Print the map")),
        },
    }
    VectorTileLayers(
        config,
        [
            ("vectorgrid", static_url("vendor/vectorgrid/Leaflet.VectorGrid.bundled.min.js")),
            ("zp", static_url("zp.js")),
            ("zp_leaflet_i18n", static_url("leaflet-i18n.js")),
            ("zp_search", static_url("search.js")),
            ("zp_measure", static_url("measure.js")),
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
