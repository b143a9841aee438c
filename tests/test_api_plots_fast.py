"""The /api/plots page's cheaper parts answer exactly as the plain ways did: links built
from one query string, as url_for builds them."""

from __future__ import annotations

import pytest
from flask import url_for

from planner import catalogue as cat
from web.api_plots import _links

QUERIES = [
    {},
    {"limit": "7"},
    {"limit": "5", "offset": "10", "sort": "-area_ha"},
    {"bbox": "75.1,42.4,75.2,42.5", "sector": "food", "min_area": "0.1", "limit": "3"},
    {"status": "available,reserved", "offset": "2", "rail": "true", "as_of": "2026-01-01"},
]


@pytest.mark.parametrize("query", QUERIES)
def test_links_are_what_url_for_builds(app, query):
    filters = cat.parse_filters(query)
    page = cat.PlotPage(filters, 1000, {}, None, 32643, None)  # type: ignore[arg-type]
    with app.test_request_context("/api/plots"):
        want = [("self", url_for("api.list_plots", **filters.query_string()))]
        if filters.offset + filters.limit < 1000:
            step = filters.offset + filters.limit
            want.append(("next", url_for("api.list_plots", **filters.query_string(offset=step))))
        if filters.offset:
            back = max(0, filters.offset - filters.limit)
            want.append(("prev", url_for("api.list_plots", **filters.query_string(offset=back))))
        assert [(link["rel"], link["href"]) for link in _links(page)] == want
