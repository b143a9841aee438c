"""Marking UI messages for translation without translating them (the edges translate)."""

from __future__ import annotations

__all__ = ["N_"]


def N_(message: str) -> str:
    """Mark ``message`` for extraction into the catalogues (pybabel keyword ``N_``); a no-op."""
    return message
