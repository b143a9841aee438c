"""SteinLib STP files: read an undirected instance, write one for other solvers."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Hashable, Iterable
from pathlib import Path

from planner.steiner.instance import Edge


def read_stp(path: str | os.PathLike[str]) -> tuple[list[tuple[int, int, float]], list[int]]:
    """Read an undirected instance in SteinLib's STP format.

    Parameters
    ----------
    path
        File with ``SECTION Graph`` (``E u v cost`` lines), ``SECTION Terminals`` (``T v``
        lines) and a closing ``EOF``; other sections are skipped.

    Returns
    -------
    tuple
        ``(edges, terminals)``: ``(u, v, cost)`` triples with integer node ids, and the terminal ids.

    Raises
    ------
    ValueError
        On any malformed line, with its line number.
    """
    edges: list[tuple[int, int, float]] = []
    terminals: list[int] = []
    declared: dict[str, int] = {}
    section: str | None = None
    saw_header = saw_eof = False
    lines = Path(path).read_text().splitlines()
    for number, raw in enumerate(lines, start=1):
        words = raw.split("#", 1)[0].split()
        if not words:
            continue
        keyword = words[0].lower()

        def fail(message: str) -> ValueError:
            return ValueError(f"{path}: line {number}: {message}: {raw.strip()!r}")

        if not saw_header:
            if keyword != "33d32945":
                raise fail("not an STP file (expected the 33D32945 header)")
            saw_header = True
            continue
        if saw_eof:
            raise fail("text after EOF")
        if keyword == "eof":
            if section is not None:
                raise fail(f"EOF inside SECTION {section}")
            saw_eof = True
        elif keyword == "section":
            if section is not None or len(words) != 2:
                raise fail("misplaced SECTION")
            section = words[1].lower()
        elif keyword == "end":
            if section is None:
                raise fail("END outside a section")
            section = None
        elif section == "graph":
            _read_graph_line(words, declared, edges, fail)
        elif section == "terminals":
            _read_terminal_line(words, declared, terminals, fail)
    if not saw_eof:
        raise ValueError(f"{path}: line {len(lines)}: missing EOF")
    _check_declared(path, declared, edges, terminals)
    return edges, terminals


def _read_graph_line(
    words: list[str],
    declared: dict[str, int],
    edges: list[tuple[int, int, float]],
    fail: Callable[[str], ValueError],
) -> None:
    keyword = words[0].lower()
    try:
        if keyword in ("nodes", "edges") and len(words) == 2:
            declared[keyword] = int(words[1])
        elif keyword == "e" and len(words) == 4:
            u, v, cost = int(words[1]), int(words[2]), float(words[3])
            if not (1 <= u and 1 <= v) or ("nodes" in declared and max(u, v) > declared["nodes"]):
                raise fail("node id out of range")
            if not math.isfinite(cost) or cost < 0:
                raise fail("cost must be finite and non-negative")
            edges.append((u, v, cost))
        elif keyword in ("a", "arcs"):
            raise fail("directed arcs are not supported")
        else:
            raise fail("expected 'Nodes n', 'Edges m' or 'E u v cost'")
    except ValueError as error:
        if "line" in str(error):
            raise
        raise fail("bad number") from None


def _read_terminal_line(
    words: list[str],
    declared: dict[str, int],
    terminals: list[int],
    fail: Callable[[str], ValueError],
) -> None:
    keyword = words[0].lower()
    try:
        if keyword == "terminals" and len(words) == 2:
            declared["terminals"] = int(words[1])
        elif keyword == "t" and len(words) == 2:
            terminals.append(int(words[1]))
        else:
            raise fail("expected 'Terminals k' or 'T v'")
    except ValueError as error:
        if "line" in str(error):
            raise
        raise fail("bad number") from None


def _check_declared(
    path: str | os.PathLike[str],
    declared: dict[str, int],
    edges: list[tuple[int, int, float]],
    terminals: list[int],
) -> None:
    if "edges" in declared and declared["edges"] != len(edges):
        raise ValueError(f"{path}: declares {declared['edges']} edges but lists {len(edges)}")
    if "terminals" in declared and declared["terminals"] != len(terminals):
        raise ValueError(
            f"{path}: declares {declared['terminals']} terminals but lists {len(terminals)}"
        )
    if "nodes" in declared and any(not 1 <= t <= declared["nodes"] for t in terminals):
        raise ValueError(f"{path}: a terminal id is outside 1..{declared['nodes']}")


def write_stp(
    path: str | os.PathLike[str],
    edges: Iterable[Edge],
    terminals: Iterable[Hashable],
    *,
    name: str = "zoneplan",
) -> dict[Hashable, int]:
    """Write an instance in SteinLib's STP format.

    Parameters
    ----------
    path
        Output file.
    edges, terminals
        As for :func:`steiner_tree`.
    name
        Instance name for the Comment section.

    Returns
    -------
    dict
        The STP number (1..N) given to each node id; positive integer ids keep their value.
    """
    edge_list = list(edges)
    terminal_list = list(dict.fromkeys(terminals))
    ids = list(dict.fromkeys([x for u, v, _ in edge_list for x in (u, v)] + terminal_list))
    positive = [x for x in ids if type(x) is int and x >= 1]
    number: dict[Hashable, int] = (
        {x: x for x in positive}
        if len(positive) == len(ids)
        else {x: i for i, x in enumerate(ids, start=1)}
    )
    lines = [
        "33D32945 STP File, STP Format Version 1.0",
        "",
        "SECTION Comment",
        f'Name "{name}"',
        "END",
        "",
        "SECTION Graph",
        f"Nodes {max(number.values(), default=0)}",
        f"Edges {len(edge_list)}",
        *(f"E {number[u]} {number[v]} {float(c)!r}" for u, v, c in edge_list),
        "END",
        "",
        "SECTION Terminals",
        f"Terminals {len(terminal_list)}",
        *(f"T {number[t]}" for t in terminal_list),
        "END",
        "",
        "EOF",
    ]
    Path(path).write_text("\n".join(lines) + "\n")
    return number
