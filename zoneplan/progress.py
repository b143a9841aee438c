"""Progress of long commands on the terminal (and silence in logs and pipes)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

Progress = Callable[[float, str], None]


def terminal_progress(label: str, stream: TextIO | None = None, every_s: float = 0.2) -> Progress:
    """A ``progress(fraction, message)`` callback drawing one line on a terminal.

    When ``stream`` (default stderr) is not a terminal it does nothing, so logs and
    pipes never receive carriage returns.
    """
    out = stream or sys.stderr
    if not out.isatty():

        def quiet(fraction: float, message: str = "") -> None:
            return None

        return quiet
    last = [0.0]

    def show(fraction: float, message: str = "") -> None:
        now = time.monotonic()
        if now - last[0] < every_s and fraction < 1.0:
            return
        last[0] = now
        text = f"{label}: {100 * min(max(fraction, 0.0), 1.0):3.0f}% {message}"[:100]
        out.write("\r" + text.ljust(100))
        if fraction >= 1.0:
            out.write("\n")
        out.flush()

    return show
