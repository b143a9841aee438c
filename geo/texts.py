"""Arrow text stripped of whitespace exactly as ``str.strip`` strips it, without Python."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

# The characters ``str.isspace`` knows (tests/test_io_fast.py checks them against every
# code point): the ASCII ones by byte, the others as the integers their UTF-8 bytes make.
ASCII_SPACE = np.zeros(256, dtype=bool)
ASCII_SPACE[list(b"\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f ")] = True
WIDE_SPACES = (
    "\x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u2028\u2029\u202f\u205f\u3000"
)
_WIDE_CODES = np.array([int.from_bytes(c.encode(), "big") for c in WIDE_SPACES])
_WIDE_LEAD = np.zeros(256, dtype=bool)
_WIDE_LEAD[[c.encode()[0] for c in WIDE_SPACES]] = True


def stripped(texts: pa.Array) -> pa.Array:
    """``str.strip`` of every value of ``texts``.

    The values that start or end with whitespace are told by their first and last bytes,
    and only those are stripped in Python.

    Returns
    -------
    pyarrow.Array
        ``texts`` itself when no value needs stripping, else the stripped values (string).
    """
    rows = spaced_ends(texts).tolist()
    if not rows:
        return texts
    values = texts.to_pylist()
    for i in rows:
        if values[i] is not None:
            values[i] = values[i].strip()
    return pa.array(values, type=pa.string())


def spaced_ends(texts: pa.Array) -> np.ndarray:
    """Positions of the values of ``texts`` that start or end with whitespace.

    Read from the bytes in the Arrow buffers; a null may have bytes there (it is stripped
    as None, i.e. left alone).
    """
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    _, offsets, data = texts.buffers()
    width = np.int64 if pa.types.is_large_string(texts.type) else np.int32
    bounds = np.frombuffer(offsets, width)[texts.offset : texts.offset + len(texts) + 1]
    start, end = bounds[:-1].astype(np.int64), bounds[1:].astype(np.int64)
    rows: np.ndarray = np.flatnonzero(end > start)
    if data is None or not len(rows):
        return rows
    raw: np.ndarray = np.frombuffer(data, np.uint8)
    start, end = start[rows], end[rows]

    def byte(at: np.ndarray, among: slice | np.ndarray = slice(None)) -> np.ndarray:
        """The byte at ``at`` of each value, kept inside it (a short value repeats a byte:
        the codes compared are 2 or 3 bytes long and start with a lead byte, never repeated)."""
        out: np.ndarray = raw[np.clip(at, start[among], end[among] - 1)]
        return out

    first, last = byte(start), byte(end - 1)
    spaced = ASCII_SPACE[first] | ASCII_SPACE[last]
    # Other whitespace is looked for exactly only where its lead byte is first, or second
    # or third from the end: few rows, even in Cyrillic text.
    lead = _WIDE_LEAD[first] | _WIDE_LEAD[byte(end - 2)]
    maybe = np.flatnonzero(lead | _WIDE_LEAD[byte(end - 3)])
    if len(maybe):

        def code(*positions: np.ndarray) -> np.ndarray:
            out = np.zeros(len(maybe), dtype=np.int64)
            for at in positions:
                out = out << 8 | byte(at, maybe)
            return out

        s, e = start[maybe], end[maybe]
        head, tail = code(s, s + 1, s + 2), code(e - 3, e - 2, e - 1)
        found = [np.isin(c, _WIDE_CODES) for c in (head, head >> 8, tail, tail & 0xFFFF)]
        spaced[maybe] |= np.logical_or.reduce(found)
    out: np.ndarray = rows[spaced]
    return out
