"""HiGHS instances that print nothing: one process-wide guard for every solver in planner."""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import highspy

__all__ = ["silent_highs"]

_LOCK = threading.Lock()
_banner_swallowed = False


def silent_highs() -> highspy.Highs:
    """A ``highspy.Highs`` with logging off.

    HiGHS prints a banner on C stdout the first time a process constructs one,
    before ``output_flag`` can be switched off; that first construction runs with
    file descriptor 1 pointed at the null device, under one lock shared by every
    caller (allocation, Steiner, access design), so no thread's output is lost.
    """
    import highspy

    global _banner_swallowed
    with _LOCK:
        if not _banner_swallowed:
            _swallow_banner(highspy)
            _banner_swallowed = True
        highs = highspy.Highs()  # type: ignore[no-untyped-call]  # highspy's __init__ has no annotations
    highs.setOptionValue("output_flag", False)
    return highs


def _swallow_banner(highspy: ModuleType) -> None:
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        highspy.Highs()
        _flush_c_stdout()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def _flush_c_stdout() -> None:
    try:
        ctypes.CDLL(None).fflush(None)
    except (
        OSError,
        AttributeError,
    ):  # no C runtime reachable this way (e.g. Windows): nothing buffered
        pass
