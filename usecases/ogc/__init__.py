"""OGC API - Features over the store: landing, conformance, collections, queryables and items.

Framework-free (pygeoapi's API core): an adapter hands in the role, the service's base URL
and the query parameters, and gets back plain dicts (GeoJSON, OGC documents) or a typed
:class:`~usecases.ogc.errors.OgcError` carrying its HTTP status. Every read goes through the
access policy (``planner.visibility``): the collections, rows and fields a role may see.

Parts implemented: 1 (Core, GeoJSON, HTML, OpenAPI 3.0), 2 (CRS by reference: CRS84,
EPSG:4326 and the storage CRS EPSG:32643) and 3 (queryables and simple property filters).
``numberMatched`` is one SQL ``count(*)`` over the R-tree and the attribute filter, cached per
layer revision, role view and query, so paging through a result pays it once.

Modules: ``errors`` (the typed refusals), ``metadata`` (CRSs, limits, landing, conformance,
collections, queryables), ``queries`` (validating request parameters), ``features`` (pages
of items and single items as GeoJSON) and ``openapi`` (the API definition). Callers import
from them directly.
"""
