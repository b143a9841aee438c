"""Updating a layer from a file: check, stage, confirm and apply, for the CLI and the web alike."""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from geo import io as geo_io
from geo.io import CLI_OPTIONS, ImportPlan, Source
from geo.store import NotFound, Store
from geo.store.base import now_iso
from geo.validate import Problem, ValidationError

__all__ = [
    "ImportOptions",
    "ConfirmationNeeded",
    "check",
    "apply",
    "stage",
    "preview",
    "confirm",
    "drop",
    "UPLOAD_TTL_S",
    "MAX_STAGED_PER_USER",
]

UPLOAD_TTL_S = 3600
# Older staged uploads of the same person are dropped beyond this many.
MAX_STAGED_PER_USER = 3
_GONE = "no such upload (it may have expired, or been applied); upload the file again"


@dataclass(frozen=True)
class ImportOptions:
    """What the person chose for an import.

    Parameters
    ----------
    layer : str
        The target layer.
    mode : {"update", "replace"}
        See :func:`geo.io.plan_import`.
    crs : str, optional
        EPSG code of the coordinates, for files without a CRS.
    src_layer : str, optional
        Layer of a GeoPackage, or shapefile of a zip holding several.
    encoding : str, optional
        Encoding of the file's text when it does not say (or says wrongly).
    filename : str, optional
        The name the file was given (uploads arrive as bytes).
    """

    layer: str
    mode: str = "update"
    crs: str | None = None
    src_layer: str | None = None
    encoding: str | None = None
    filename: str | None = None


class ConfirmationNeeded(Exception):
    """A replace removes features and the person has not confirmed that many removals."""

    def __init__(self, plan: ImportPlan):
        self.plan = plan
        by_status = ", ".join(f"{n} {s}" for s, n in plan.removals_by_status.items())
        super().__init__(
            f"this replace removes {plan.removals} feature(s) of {plan.layer} "
            f"({by_status}); confirm the removals to write it"
        )


def check(
    store: Store, source: Source, options: ImportOptions, *, names: Mapping[str, str] = CLI_OPTIONS
) -> ImportPlan:
    """Read a file and plan its import (nothing is written).

    ``names`` says how the options are called where the person gave the file,
    for messages. Unreadable files become a ValidationError with one ``file``
    problem, so every caller reports them the same way.

    Raises
    ------
    ValidationError
        When the file cannot be read or placed at all.
    """
    try:
        upload = geo_io.read_upload(
            source,
            options.layer,
            src_layer=options.src_layer,
            crs=options.crs,
            filename=options.filename,
            encoding=options.encoding,
            options=names,
            epsg=store.epsg,
        )
        return geo_io.plan_import(store, options.layer, upload, mode=options.mode)
    except ValidationError:
        raise
    except (ValueError, KeyError, OSError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        raise ValidationError([Problem(None, None, "file", str(message))]) from None


def _require_confirmation(plan: ImportPlan, confirm_removals: int | None) -> None:
    if plan.removals and confirm_removals != plan.removals:
        raise ConfirmationNeeded(plan)


def apply(
    store: Store, plan: ImportPlan, *, user: str, confirm_removals: int | None = None
) -> list[str]:
    """Write a checked plan in one transaction; return the ids added or updated.

    A plan that removes features is written only when ``confirm_removals``
    equals how many it removes (the second confirmation the person gave after
    seeing the list).

    Raises
    ------
    ConfirmationNeeded, ValidationError
        Nothing is written.
    """
    _require_confirmation(plan, confirm_removals)
    return geo_io.apply_import(store, plan, user=user)


# --------------------------------------------------------------------------- staged uploads
def stage(
    store: Store,
    data: bytes,
    options: ImportOptions,
    *,
    user: str,
    names: Mapping[str, str] = CLI_OPTIONS,
) -> tuple[ImportPlan, str | None]:
    """Check an uploaded file and keep it in the store, owned by ``user``, when it may
    be applied. Returns the plan and the token that confirms it (None when refused).

    Expired uploads (older than ``UPLOAD_TTL_S``) and the person's oldest beyond
    ``MAX_STAGED_PER_USER`` are dropped in the same transaction.
    """
    plan = check(store, data, options, names=names)
    if not plan.ok:
        return plan, None
    token = secrets.token_urlsafe(24)
    with store.transaction(user) as tx:
        for old in _stale_tokens(store, user):
            _forget(tx, old)
        tx.insert(
            "uploads",
            pd.DataFrame(
                [
                    {
                        "token": token,
                        "username": user,
                        "layer": options.layer,
                        "options": json.dumps(
                            {
                                k: v
                                for k, v in asdict(options).items()
                                if k not in ("layer", "filename")
                            }
                        ),
                        "filename": (options.filename or "")[-120:] or None,
                        "size": len(data),
                        "created": now_iso(),
                    }
                ]
            ),
        )
        tx.insert(
            "upload_data",
            pd.DataFrame([{"token": token, "data": base64.b64encode(data).decode("ascii")}]),
        )
    return plan, token


def _stale_tokens(store: Store, user: str) -> list[str]:
    rows = store.read("uploads", order_by="created")  # ties: in the order staged
    cutoff = (
        dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(seconds=UPLOAD_TTL_S)
    ).isoformat(timespec="seconds")
    expired = rows.loc[rows["created"] < cutoff, "token"].tolist()
    mine = rows.loc[(rows["username"] == user) & (rows["created"] >= cutoff), "token"].tolist()
    return expired + mine[: max(0, len(mine) - MAX_STAGED_PER_USER + 1)]  # oldest first


def _forget(tx: Any, token: str) -> None:
    for table in ("uploads", "upload_data"):
        try:
            tx.delete(table, token)
        except NotFound:
            pass


def _staged(store: Store, token: str, user: str) -> tuple[bytes, ImportOptions]:
    """The file and options of ``user``'s staged upload ``token``.

    Raises
    ------
    NotFound
        For malformed, unknown, expired or someone else's tokens (all alike).
    """
    if (
        not isinstance(token, str)
        or not 16 <= len(token) <= 64
        or not token.replace("-", "").replace("_", "").isalnum()
    ):
        raise NotFound(_GONE)
    meta = store.read("uploads", where={"token": token})
    if meta.empty or meta["username"].iloc[0] != user:
        raise NotFound(_GONE)
    age = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.datetime.fromisoformat(
        meta["created"].iloc[0]
    )
    if age.total_seconds() > UPLOAD_TTL_S:
        raise NotFound(_GONE)
    data = store.read("upload_data", where={"token": token})
    if data.empty:
        raise NotFound(_GONE)
    options = ImportOptions(
        layer=meta["layer"].iloc[0],
        filename=meta["filename"].iloc[0],
        **json.loads(meta["options"].iloc[0] or "{}"),
    )
    return base64.b64decode(data["data"].iloc[0]), options


def preview(
    store: Store, token: str, *, user: str, names: Mapping[str, str] = CLI_OPTIONS
) -> tuple[ImportPlan, ImportOptions]:
    """Check ``user``'s staged upload again against the store as it is now."""
    data, options = _staged(store, token, user)
    return check(store, data, options, names=names), options


def confirm(
    store: Store,
    token: str,
    *,
    user: str,
    confirm_removals: int | None = None,
    names: Mapping[str, str] = CLI_OPTIONS,
) -> tuple[ImportPlan, list[str]]:
    """Apply ``user``'s staged upload: checked again, written and forgotten in one
    transaction. Returns the plan and the ids added or updated.

    Raises
    ------
    NotFound
        Unknown, expired or someone else's token.
    ConfirmationNeeded
        A replace whose removals were not confirmed (the upload stays staged).
    ValidationError
        The file no longer fits the store; nothing is written.
    """
    data, options = _staged(store, token, user)
    plan = check(store, data, options, names=names)
    if plan.problems:
        raise ValidationError(plan.problems)
    _require_confirmation(plan, confirm_removals)
    with store.transaction(user) as tx:
        written = geo_io.write_import(tx, store, plan)
        _forget(tx, token)
    return plan, written


def drop(store: Store, token: str, *, user: str) -> None:
    """Forget ``user``'s staged upload (cancelled); unknown tokens are ignored."""
    meta = store.read("uploads", where={"token": token}) if isinstance(token, str) else None
    if meta is None or meta.empty or meta["username"].iloc[0] != user:
        return
    with store.transaction(user) as tx:
        _forget(tx, token)
