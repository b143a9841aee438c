"""Terminal progress: drawn on a terminal, silent in pipes and logs."""

from __future__ import annotations

import io
import os
import pty

from zoneplan.progress import terminal_progress


def test_progress_is_silent_when_not_a_terminal():
    out = io.StringIO()
    show = terminal_progress("design", out)
    show(0.5, "solving")
    show(1.0, "done")
    assert out.getvalue() == ""


def test_progress_draws_one_line_on_a_terminal():
    master, slave = pty.openpty()
    with os.fdopen(slave, "w") as tty:
        show = terminal_progress("design", tty, every_s=0.0)
        show(0.25, "corridor graph")
        show(1.0, "done")
    chunks = []
    while True:  # a pty hands its output back in pieces; read until the closed end
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    text = b"".join(chunks).decode()
    assert "\rdesign:  25% corridor graph" in text and text.rstrip().endswith("100% done")
