"""Coordinate reference systems: the metric working CRS and WGS84 for the web."""

from __future__ import annotations

import re
from functools import lru_cache

import geopandas as gpd
import pandas as pd
from pyproj import CRS, Transformer
from pyproj.aoi import AreaOfInterest
from pyproj.database import query_crs_info
from pyproj.enums import PJType

#: UTM 43N covers Almaty: the sample zone's CRS and that of a store made without another.
DEFAULT_EPSG = 32643
#: The CRS code not yet handed a store's own (:attr:`geo.store.Store.epsg`) assumes: file
#: reading and import checks (geo/io) and the OGC API's storage CRS (usecases/ogc).
WORKING_EPSG = DEFAULT_EPSG
WGS84_EPSG = 4326
WEB_DECIMALS = 6  # ~0.1 m at this latitude: enough for plots, light for pages


def working_crs() -> CRS:
    """The CRS of :data:`WORKING_EPSG` (code with a store uses ``crs_of(store.epsg)``)."""
    return _crs(WORKING_EPSG)


@lru_cache(maxsize=16)
def _crs(epsg: int) -> CRS:
    return CRS.from_epsg(epsg)


def crs_of(epsg: int) -> CRS:
    """The (cached) pyproj CRS of an EPSG code."""
    return _crs(epsg)


def epsg_of(frame: pd.DataFrame) -> int:
    """The EPSG code a GeoDataFrame declares (a store's reads declare the store's).

    Raises
    ------
    ValueError
        When it declares no CRS with an EPSG code.
    """
    crs = getattr(frame, "crs", None)
    epsg = crs.to_epsg() if crs is not None else None
    if epsg is None:
        raise ValueError("the data carries no EPSG CRS")
    return int(epsg)


def parse_epsg(text: str | int) -> int:
    """Parse ``4326``, ``"4326"`` or ``"EPSG:4326"`` into an EPSG code.

    Raises
    ------
    ValueError
        When the text is not an EPSG code PROJ knows.
    """
    match = re.fullmatch(r"\s*(?:epsg:)?(\d{4,6})\s*", str(text), flags=re.IGNORECASE)
    if not match:
        raise ValueError(f"CRS {text!r} is not an EPSG code such as 4326 or EPSG:32643")
    code = int(match.group(1))
    try:
        _crs(code)
    except Exception:
        raise ValueError(f"EPSG:{code} is not a CRS PROJ knows") from None
    return code


@lru_cache(maxsize=1)
def export_epsg_codes() -> tuple[int, ...]:
    """EPSG codes offered for downloads: the geographic and projected CRSs in use where the
    working CRS is (for UTM 43N: Kazakhstan, Kyrgyzstan, ... ), plus WGS84 and Web Mercator.

    Zoned grid systems (a zone number per point, no single projection) are left out.
    """
    area = working_crs().area_of_use
    aoi = AreaOfInterest(area.west, area.south, area.east, area.north) if area else None
    found = query_crs_info(
        auth_name="EPSG",
        pj_types=[PJType.PROJECTED_CRS, PJType.GEOGRAPHIC_2D_CRS],
        area_of_interest=aoi,
        contains=False,
        allow_deprecated=False,
    )
    codes = {WGS84_EPSG, 3857, WORKING_EPSG}
    for info in found:
        operation = _crs(int(info.code)).coordinate_operation
        if operation is None or "zoned grid" not in operation.method_name.lower():
            codes.add(int(info.code))
    return tuple(sorted(codes))


@lru_cache(maxsize=32)
def transformer(src: int, dst: int) -> Transformer:
    """A cached, always_xy transformer between two EPSG codes."""
    return Transformer.from_crs(_crs(src), _crs(dst), always_xy=True)


def to_wgs84(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Reproject a frame to WGS84 for GeoJSON and the browser."""
    return gdf.to_crs(WGS84_EPSG)
