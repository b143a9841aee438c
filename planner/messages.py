"""Request-model validation errors (pydantic) in words, in the reader's language: the one
place that turns pydantic's error types into our own messages."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from geo.i18n import N_

Translate = Callable[[str], str]

#: Our words for pydantic's error types (and for the custom ones our validators raise with
#: ``pydantic_core.PydanticCustomError``); ``{...}`` are filled from the error's context.
TEMPLATES: dict[str, str] = {
    "missing": N_("required"),
    "extra_forbidden": N_("unknown field; known fields: {known}"),
    "int_parsing": N_("give a whole number (not “{input}”)"),
    "int_type": N_("give a whole number (not “{input}”)"),
    "int_from_float": N_("give a whole number (not {input})"),
    "float_parsing": N_("give a number (not “{input}”)"),
    "float_type": N_("give a number (not “{input}”)"),
    "finite_number": N_("give a finite number"),
    "bool_parsing": N_("give true or false (not “{input}”)"),
    "bool_type": N_("give true or false (not “{input}”)"),
    "string_type": N_("give text"),
    "string_too_short": N_("give at least {min_length} character(s)"),
    "string_too_long": N_("give at most {max_length} characters"),
    "greater_than_equal": N_("must be at least {ge}"),
    "greater_than": N_("must be more than {gt}"),
    "less_than_equal": N_("must be at most {le}"),
    "less_than": N_("must be less than {lt}"),
    "literal_error": N_("must be one of {expected}"),
    "enum": N_("must be one of {expected}"),
    "dict_type": N_("give a JSON object"),
    "model_type": N_("give a JSON object"),
    "model_attributes_type": N_("give a JSON object"),
    "list_type": N_("give a list"),
    "tuple_type": N_("give a list"),
    "too_short": N_("give at least {min_length} item(s)"),
    "too_long": N_("give at most {max_length} items"),
    "unknown_sectors": N_("unknown sector code(s) {unknown}; use {known} or *"),
    "below_minimum_area": N_("{value} ha is below the minimum {low} ha"),
}
NOT_AN_OBJECT = N_("the body must be a JSON object")
#: Our validators' fixed sentences (raised as ValueError), marked here for the catalogues.
SENTENCES = (
    N_("give a date as YYYY-MM-DD"),
    N_("give at least one status"),
    N_("longitudes must lie in -180..180 and latitudes in -90..90"),
    N_("give minLon,minLat,maxLon,maxLat with min <= max"),
)


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def describe(
    error: Mapping[str, Any], *, known: Iterable[str] = (), translate: Translate | None = None
) -> str:
    """One pydantic error (an item of ``ValidationError.errors()``) in our words.

    Parameters
    ----------
    error : mapping
        With ``type``, ``msg`` and, where pydantic gives them, ``ctx`` and ``input``.
    known : iterable of str
        The model's field names, named when an unknown one is sent.
    translate : callable, optional
        gettext of the reader's language; English when None.
    """
    tr = translate or (lambda s: s)
    kind = error.get("type", "")
    ctx = dict(error.get("ctx") or {})
    if kind == "value_error":  # our validators' own sentences (SENTENCES)
        return tr(str(ctx.get("error", error.get("msg", ""))).removeprefix("Value error, "))
    template = TEMPLATES.get(kind)
    if template is None:  # a type we have no words for: pydantic's English, not nothing
        return str(error.get("msg", kind))
    if "expected" in ctx:
        ctx["expected"] = str(ctx["expected"]).replace(" or ", ", ")
    values = {
        **{k: str(v) for k, v in ctx.items()},
        "input": _shown(error.get("input")),
        "known": ", ".join(known),
    }
    try:
        return tr(template).format(**values)
    except (KeyError, IndexError):  # a translation naming a value this error lacks
        return template.format(**values)


def problems(
    err: ValidationError, *, known: Iterable[str] = (), translate: Translate | None = None
) -> list[tuple[str | None, str]]:
    """``(field, message)`` for each error of ``err``: the top-level field (None for the
    body itself) and :func:`describe`'s words."""
    known = list(known)
    return [
        (str(e["loc"][0]) if e.get("loc") else None, describe(e, known=known, translate=translate))
        for e in err.errors()
    ]
