"""Shapefile, GeoPackage and GeoJSON files in and out, typed by the layer schemas.

Imports go ``read_upload``/``load_upload`` (any supported file -> frame in the
working CRS, :mod:`geo.io.read` over :mod:`geo.io.sources`) -> ``plan_import``
(every check, nothing written; a preview) -> ``apply_import`` (one transaction;
both in :mod:`geo.io.imports`). Exports go ``export_layers`` (a file written
beside its destination and renamed into place) or ``export_bytes`` for HTTP
(:mod:`geo.io.export`). Arrow typing lives in :mod:`geo.io.formats`, the
shapefile writer in :mod:`geo.io.shapefile`. None of these functions know about the CLI or Flask.
"""

from geo.io.export import (
    check_where,
    export_bytes,
    export_filename,
    export_layer_names,
    export_layers,
    parse_where,
)
from geo.io.formats import (
    CLI_OPTIONS,
    FORMATS,
    GPKG_VERSION,
    MEDIA_TYPES,
    NEVER_EXPORTED,
    NOT_IMPORTABLE,
    Source,
    read_file,
    to_arrow,
)
from geo.io.imports import (
    COMMITTED_STATUSES,
    MODES,
    ImportPlan,
    apply_import,
    import_envelope,
    import_file,
    plan_import,
    write_import,
)
from geo.io.read import Upload, importable_layer, load_upload, read_upload
from geo.io.shapefile import ShapefileLimitWarning, dbf_width, write_shapefile

__all__ = [
    "CLI_OPTIONS",
    "COMMITTED_STATUSES",
    "FORMATS",
    "GPKG_VERSION",
    "MEDIA_TYPES",
    "MODES",
    "NEVER_EXPORTED",
    "NOT_IMPORTABLE",
    "ImportPlan",
    "ShapefileLimitWarning",
    "Source",
    "Upload",
    "apply_import",
    "check_where",
    "dbf_width",
    "export_bytes",
    "export_filename",
    "export_layer_names",
    "export_layers",
    "import_envelope",
    "import_file",
    "importable_layer",
    "load_upload",
    "parse_where",
    "plan_import",
    "read_file",
    "read_upload",
    "to_arrow",
    "write_import",
    "write_shapefile",
]
