"""The typed refusals of the OGC API - Features core; each carries its HTTP status."""

from __future__ import annotations

from typing import Any


class OgcError(Exception):
    """A request the service refuses; ``status`` and ``code`` become the exception body."""

    status = 400
    code = "InvalidParameterValue"

    def __init__(self, description: str):
        super().__init__(description)
        self.description = description

    def body(self) -> dict[str, Any]:
        """The OGC exception document."""
        return {"code": self.code, "description": self.description}


class InvalidParameter(OgcError):
    """A query parameter is unknown, malformed or out of range (400)."""


class CollectionNotFound(OgcError):
    """No such collection or feature, or the role may not see it (404)."""

    status = 404
    code = "NotFound"


class MethodNotAllowed(OgcError):
    """The service is read-only: only GET (and HEAD, OPTIONS) on every /ogc path (405)."""

    status = 405
    code = "MethodNotAllowed"


class Forbidden(OgcError):
    """The collection is for planners; 401 for anonymous callers (so clients ask for
    credentials), 403 for signed-in ones."""

    code = "Forbidden"

    def __init__(self, description: str, *, anonymous: bool):
        super().__init__(description)
        self.status = 401 if anonymous else 403
        if anonymous:
            self.code = "Unauthorized"
