"""Texts of the browser libraries (Leaflet's controls, geoman's drawing tools) and of HTTP
error pages in the reader's language, for the pages' data-config."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from geo.i18n import N_

Translate = Callable[[str], str]


def leaflet_texts(_: Translate) -> dict[str, Any]:
    """Leaflet's control texts and the measuring tool's (static/leaflet-i18n.js applies them)."""
    return {
        "zoomIn": _("Zoom in"),
        "zoomOut": _("Zoom out"),
        "layers": _("Layers"),
        "m": _("m"),
        "km": _("km"),
        "measure": measure_labels(_),
    }


def geoman_texts(_: Translate) -> dict[str, dict[str, str]]:
    """The texts of geoman's tools the pages offer, in geoman's translation layout
    (``map.pm.setLang("zp", texts, "en")``: anything missing stays English)."""
    return {
        "tooltips": {
            "firstVertex": _("Click to place the first corner"),
            "continueLine": _("Click to continue drawing"),
            "finishLine": _("Click any existing corner to finish"),
            "finishPoly": _("Click the first corner to finish"),
            "finishRect": _("Click to finish"),
        },
        "actions": {
            "finish": _("Finish"),
            "cancel": _("Cancel"),
            "removeLastVertex": _("Remove the last corner"),
        },
        "buttonTitles": {
            "drawPolyButton": _("Draw a polygon"),
            "drawRectButton": _("Draw a rectangle"),
            "editButton": _("Edit corners"),
            "deleteButton": _("Remove a drawing"),
        },
    }


#: Titles of the HTTP errors the site shows as pages (werkzeug's names are English).
ERROR_TITLES = {
    400: N_("Bad request"),
    403: N_("Forbidden"),
    404: N_("Not found"),
    405: N_("Method not allowed"),
    413: N_("Upload too large"),
    429: N_("Too many requests"),
    500: N_("Server error"),
}


def error_title(code: int | None, name: str, _: Translate) -> str:
    """An HTTP error's title in the reader's language (werkzeug's name when unknown)."""
    return _(ERROR_TITLES[code]) if code in ERROR_TITLES else name


#: The API's groups of operations (``tag`` of :func:`web.api.endpoint`), for /api/docs.
API_TAGS = (
    N_("allocation"),
    N_("applications"),
    N_("exports"),
    N_("jobs"),
    N_("layers"),
    N_("planning"),
    N_("plots"),
    N_("search"),
    N_("uploads"),
)


def measure_labels(translate: Translate) -> dict[str, str]:
    """The measuring tool's words (web/static/measure.js) in the reader's language."""
    return {
        "measure": translate(N_("Measure distance and area")),
        "hint": translate(N_("Click points on the map; double-click to finish.")),
        "distance": translate(N_("Distance")),
        "area": translate(N_("Area")),
        "finish": translate(N_("Finish")),
        "clear": translate(N_("Clear")),
        "m": translate(N_("m")),
        "km": translate(N_("km")),
        "m2": translate(N_("m²")),
        "ha": translate(N_("ha")),
    }
