"""JSON API operations on files: downloads (exports) and checked uploads (stage, then apply)."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any, Literal

from flask import Response, request, send_file
from pydantic import BaseModel, ConfigDict, Field

from geo import io as geo_io
from geo.i18n import N_
from geo.validate import ValidationError
from usecases import exports, uploads
from usecases.exports import EXPORTABLE, FORMATS, ExportQuery, LayerExportQuery
from web import deps
from web.api import (
    API_OPTIONS,
    IMPORTABLE,
    api_error_with_problems,
    bp,
    check_upload_size,
    endpoint,
    finite_json,
    invalid_response,
    upload_request,
)
from web.auth import current_role, signed_in_username
from web.openapi import Problem

__all__ = ["UploadPreview", "UploadApplied", "UploadConfirm"]

FORMAT_MEDIA = {
    "shp.zip": "application/zip",
    "gpkg": "application/geopackage+sqlite3",
    "geojson": "application/geo+json",
}


class Removal(BaseModel):
    id: str
    status: str | None


class Update(BaseModel):
    id: str
    changes: dict[str, list[Any]] = Field(description="{field: [before, after]}")


class UploadPreview(BaseModel):
    """What an upload would change; apply it with POST /api/uploads/{token}."""

    token: str
    layer: str
    source: str
    features: int
    mode: Literal[geo_io.MODES]  # type: ignore[valid-type]
    replace: bool
    adds: int = Field(description="New ids")
    updates: int = Field(description="Stored features the file changes")
    unchanged: int
    removals: int = Field(description="Stored features a replace removes")
    removals_by_status: dict[str, int]
    removed: list[Removal]
    updated: list[Update]
    ok: bool
    problem_count: int
    problems: list[Problem]
    ignored_columns: list[str]


class UploadApplied(BaseModel):
    layer: str
    written: int = Field(description="Features added or updated")
    added: int
    updated: int
    removed: int


UPLOAD_FORM = {
    "type": "object",
    "required": ["file", "layer"],
    "properties": {
        "file": {
            "type": "string",
            "format": "binary",
            "description": N_("A zipped shapefile, a GeoPackage or GeoJSON"),
        },
        "layer": {"type": "string", "enum": list(IMPORTABLE), "description": N_("Target layer")},
        "mode": {
            "type": "string",
            "enum": list(geo_io.MODES),
            "description": N_(
                "update (default): update ids in the file, add new ones; "
                "replace: also remove what the file lacks"
            ),
        },
        "replace": {"type": "boolean", "description": N_("The same as mode=replace")},
        "crs": {"type": "string", "description": N_("EPSG code for files without a CRS")},
        "src_layer": {"type": "string", "description": N_("Layer of a GeoPackage to read")},
        "encoding": {
            "type": "string",
            "description": N_("Encoding of the file's text when it does not say (e.g. cp1251)"),
        },
    },
}


# --------------------------------------------------------------------------- downloads
def export_response(layer: str, fmt: str, query: ExportQuery | LayerExportQuery) -> Response:
    """Write the export to a temporary folder and send it; the folder goes when sent."""
    work = Path(tempfile.mkdtemp(prefix="zoneplan-export-"))
    try:
        path = exports.export_file(
            deps.get_store(),
            layer,
            fmt,
            query,
            work,
            role=current_role(),
            servicing=deps.servicing_model(),
        )
        response = send_file(
            path, mimetype=FORMAT_MEDIA[fmt], as_attachment=True, download_name=path.name, max_age=0
        )
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    response.call_on_close(lambda: shutil.rmtree(work, ignore_errors=True))
    return response


FORMAT_RULE = "<any('shp.zip', gpkg, geojson):format>"
FORMAT_PARAM = {"format": {"type": "string", "enum": list(FORMATS)}}


@endpoint(
    "get",
    "/export/plots.{format}",
    summary=N_("Download the plots (the filtered catalogue)"),
    tag="exports",
    rule=f"/export/plots.{FORMAT_RULE}",
    query=ExportQuery,
    media=tuple(FORMAT_MEDIA.values()),
    errors=(401, 403),
    path_params=FORMAT_PARAM,
    description=N_(
        "Zipped shapefile (with .prj and UTF-8 .cpg), GeoPackage or GeoJSON (WGS84 unless "
        "crs says otherwise). Planners get every plot and field (no status: every status); "
        "others the plots the catalogue shows them, without occupants, projects, "
        "investment, jobs or demand. The catalogue filters narrow it."
    ),
)
def export_plots(format: str, query: ExportQuery):  # noqa: A002 - the path's name
    return export_response("plots", format, query)


@endpoint(
    "get",
    "/export/{layer}.{format}",
    summary=N_("Download a layer"),
    tag="exports",
    rule=f"/export/<layer>.{FORMAT_RULE}",
    query=LayerExportQuery,
    media=tuple(FORMAT_MEDIA.values()),
    errors=(401, 403),
    path_params={
        "layer": {"type": "string", "enum": [n for n in EXPORTABLE if n != "plots"]},
        **FORMAT_PARAM,
    },
    description=N_(
        "Zipped shapefile (with .prj and UTF-8 .cpg), GeoPackage or GeoJSON (WGS84 unless "
        "crs says otherwise). bbox for feature layers. Non-public layers for planners only."
    ),
)
def export(layer: str, format: str, query: LayerExportQuery):  # noqa: A002 - the path's name
    return export_response(layer, format, query)


# --------------------------------------------------------------------------- uploads
@bp.errorhandler(uploads.ConfirmationNeeded)
def _unconfirmed(err: uploads.ConfirmationNeeded):
    return api_error_with_problems(
        f"{err}: send confirm_removals={err.plan.removals}", 409, "confirm_removals"
    )


@endpoint(
    "post",
    "/uploads",
    summary=N_("Check a file for import (nothing is written)"),
    tag="uploads",
    form=UPLOAD_FORM,
    response=UploadPreview,
    roles=("planner",),
    description=N_(
        "Runs the same checks as `zoneplan import`. 200 with a token and what "
        "would change (new ids, updates field by field, and for mode=replace "
        "every removal with its status) when the file may be applied; 422 "
        "listing every problem otherwise (with that preview when the file "
        "could be read). A replace never removes reserved, "
        "allocated or occupied plots or plots an application names."
    ),
)
def upload():
    check_upload_size()
    data, options = upload_request(request.files.get("file"), request.form)
    plan, token = uploads.stage(
        deps.get_store(), data, options, user=signed_in_username(), names=API_OPTIONS
    )
    if token is None:  # refused: the problems, and what the file would have changed
        response = invalid_response(ValidationError(plan.problems))
        body = response.get_json()
        body["preview"] = plan.to_dict(limit=200)
        response.set_data(json.dumps(finite_json(body), ensure_ascii=False, default=str))
        return response
    return {"token": token, **plan.to_dict(limit=200)}


class UploadConfirm(BaseModel):
    """The second confirmation of a replace: how many removals the preview listed."""

    model_config = ConfigDict(extra="forbid")

    confirm_removals: int | None = Field(
        None,
        ge=0,
        description=N_(
            "Required when the import removes features: the number of "
            "removals the preview listed (a different number -> 409)"
        ),
    )


@endpoint(
    "post",
    "/uploads/{token}",
    summary=N_("Apply a checked upload in one transaction"),
    tag="uploads",
    body=UploadConfirm,
    body_required=False,
    response=UploadApplied,
    roles=("planner",),
    path_params={"token": {"type": "string"}},
    errors=(409, 422),
)
def apply(token: str, body: UploadConfirm):
    plan, written = uploads.confirm(
        deps.get_store(),
        token,
        user=signed_in_username(),
        confirm_removals=body.confirm_removals,
        names=API_OPTIONS,
    )
    return {
        "layer": plan.layer,
        "written": len(written),
        "added": plan.adds,
        "updated": len(plan.updates),
        "removed": plan.removals,
    }
