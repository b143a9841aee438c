"""Zip archives: uploads checked before a byte is extracted, downloads streamed in."""

from __future__ import annotations

import os
import stat
import struct
import tempfile
import time
import zipfile
import zlib
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

BytesLike = Any  # bytes, memoryview or a contiguous numpy array

DEFAULT_MAX_UNZIP_MB = 500
DEFAULT_MAX_MEMBERS = 1000
SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg")
_CHUNK = 1 << 20


class ArchiveError(ValueError):
    """An archive refused: corrupt, unsafe or without what was asked for."""


def max_unzip_bytes() -> int:
    """The uncompressed-size limit: ``ZONEPLAN_MAX_UNZIP_MB`` (default 500) MiB."""
    return int(float(os.environ.get("ZONEPLAN_MAX_UNZIP_MB", DEFAULT_MAX_UNZIP_MB)) * 2**20)


def max_members() -> int:
    """The member-count limit: ``ZONEPLAN_MAX_ZIP_MEMBERS`` (default 1000)."""
    return int(os.environ.get("ZONEPLAN_MAX_ZIP_MEMBERS", DEFAULT_MAX_MEMBERS))


def _unsafe_name(name: str) -> str | None:
    """Why a member name may not be extracted (None when it is safe)."""
    text = name.replace("\\", "/")
    if "\x00" in text:
        return "has a NUL byte in its name"
    if text.startswith("/") or (len(text) > 1 and text[1] == ":"):
        return "is an absolute path"
    if ".." in PurePosixPath(text).parts:
        return "would be written outside the extraction folder (../)"
    return None


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return info.create_system == 3 and stat.S_ISLNK(info.external_attr >> 16)


def check_zip(
    path: Path | str, *, limit_bytes: int | None = None, limit_members: int | None = None
) -> list[zipfile.ZipInfo]:
    """Check an archive before extraction and return its file members.

    Refuses archives that are not zips or are corrupt, members that would
    escape the extraction folder, absolute paths, symbolic links, encrypted
    members, too many members and a declared uncompressed total above the limit.

    Raises
    ------
    ArchiveError
        Naming the first offending member or the limit exceeded.
    """
    name = Path(path).name
    limit_bytes = max_unzip_bytes() if limit_bytes is None else limit_bytes
    limit_members = max_members() if limit_members is None else limit_members
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as err:
        raise ArchiveError(f"{name} is not a readable zip archive ({err})") from None
    if len(infos) > limit_members:
        raise ArchiveError(f"{name} has {len(infos)} members; at most {limit_members} are accepted")
    for info in infos:
        why = _unsafe_name(info.filename)
        if why is None and _is_symlink(info):
            why = "is a symbolic link"
        if why is None and info.flag_bits & 0x1:
            why = "is encrypted"
        if why:
            raise ArchiveError(f"{name}: member {info.filename!r} {why}; the archive was refused")
    total = sum(i.file_size for i in infos)
    if total > limit_bytes:
        raise ArchiveError(
            f"{name} would unpack to {total / 2**20:.1f} MiB, above the limit of "
            f"{limit_bytes / 2**20:.0f} MiB (ZONEPLAN_MAX_UNZIP_MB)"
        )
    return [i for i in infos if not i.is_dir()]


def extract_zip(
    path: Path | str, dest: Path | str, *, limit_bytes: int | None = None
) -> list[Path]:
    """Check ``path`` with :func:`check_zip`, then extract its files under ``dest``.

    Bytes are counted while they are written, so a member whose header
    understates its size cannot exceed the limit; every member's CRC is
    verified as it is read.

    Returns
    -------
    list of Path
        The files extracted.
    """
    limit_bytes = max_unzip_bytes() if limit_bytes is None else limit_bytes
    infos = check_zip(path, limit_bytes=limit_bytes)
    dest = Path(dest).resolve()
    written, out = 0, []
    try:
        with zipfile.ZipFile(path) as zf:
            for info in infos:
                target = dest.joinpath(*PurePosixPath(info.filename.replace("\\", "/")).parts)
                if dest not in target.resolve().parents:
                    raise ArchiveError(f"member {info.filename!r} escapes the extraction folder")
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as dst:
                    while chunk := src.read(_CHUNK):
                        written += len(chunk)
                        if written > limit_bytes:
                            raise ArchiveError(
                                f"{Path(path).name} unpacks to more than "
                                f"{limit_bytes / 2**20:.0f} MiB; refused"
                            )
                        dst.write(chunk)
                out.append(target)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as err:
        raise ArchiveError(f"{Path(path).name} is corrupt ({err})") from None
    except (OSError, ValueError) as err:
        if isinstance(err, ArchiveError):
            raise
        raise ArchiveError(f"{Path(path).name} could not be unpacked ({err})") from None
    return out


@contextmanager
def extracted(path: Path | str) -> Iterator[Path]:
    """Extract a checked archive into a temporary folder that is removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="zoneplan-unzip-") as tmp:
        extract_zip(path, tmp)
        yield Path(tmp)


DATASET_SUFFIXES = (".shp", ".dbf", ".gpkg", ".geojson", ".json")


def _datasets(folder: Path) -> list[Path]:
    """Shapefiles (and lone ``.dbf`` tables) in ``folder`` at any depth, else
    GeoPackages and GeoJSON files."""
    found = sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and "__MACOSX" not in p.parts and p.suffix.lower() in DATASET_SUFFIXES
    )
    shps = [
        p
        for p in found
        if p.suffix.lower() == ".shp" or (p.suffix.lower() == ".dbf" and sibling(p, ".shp") is None)
    ]
    return shps or [p for p in found if p.suffix.lower() != ".dbf"]


def find_dataset(
    folder: Path | str,
    *,
    layer: str | None = None,
    src_layer: str | None = None,
    choose: str = "--src-layer NAME",
) -> Path:
    """The one file to read from an extracted archive.

    Shapefiles are looked for first, then GeoPackages and GeoJSON. With
    several, ``src_layer`` (a file stem, or a file name such as ``plots.shp``,
    folders in the archive ignored) chooses, else the one named like
    ``layer``; the message lists the candidates otherwise, and says how to
    choose (``choose``: the option's name where the person gave the file).

    Raises
    ------
    ArchiveError
        When there is none, the choice is ambiguous, or the chosen shapefile
        lacks its ``.shx`` or ``.dbf``.
    """
    folder = Path(folder)
    found = _datasets(folder)
    if not found:
        names = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
        listing = ", ".join(names[:10]) + (" ..." if len(names) > 10 else "") or "nothing"
        raise ArchiveError(f"the archive holds no shapefile (.shp); it contains: {listing}")
    stems = [p.stem for p in found]
    if src_layer is not None:
        wanted = PurePosixPath(src_layer.replace("\\", "/")).name.lower()
        chosen = [p for p in found if wanted in (p.stem.lower(), p.name.lower())]
        if not chosen:
            raise ArchiveError(
                f"the archive has no file {src_layer!r}; it holds: {', '.join(stems)}"
            )
    elif len(found) == 1:
        chosen = found
    else:
        chosen = [p for p in found if layer and p.stem.lower() == layer.lower()]
        if len(chosen) != 1:
            raise ArchiveError(
                f"the archive holds {len(found)} files ({', '.join(stems)}); "
                f"choose one with {choose}"
            )
    if chosen[0].suffix.lower() == ".shp":
        require_siblings(chosen[0])
    return chosen[0]


def sibling(shp: Path, suffix: str) -> Path | None:
    """The file beside ``shp`` with ``suffix`` in any letter case (None if absent)."""
    for cand in shp.parent.glob(shp.stem + ".*"):
        if cand.stem == shp.stem and cand.suffix.lower() == suffix:
            return cand
    return None


def require_siblings(shp: Path) -> None:
    """Refuse a shapefile without its ``.shx`` or ``.dbf`` (ArchiveError naming them)."""
    missing = [s for s in (".shx", ".dbf") if sibling(shp, s) is None]
    if missing:
        raise ArchiveError(
            f"shapefile {shp.name} lacks its {' and '.join(missing)} file(s); "
            "a shapefile needs .shp, .shx and .dbf (and .prj for its CRS)"
        )


# Deflate level of the zips the service writes: level 1 deflates a .dbf (mostly padding)
# ~2.5x faster than zlib's default 6, for a zip ~20% larger (benchmarks/RESULTS_io.md).
DEFAULT_ZIP_LEVEL = 1
# Bytes deflated as one piece: small enough that both cores share even one large member,
# large enough that the restart of the compressor's window costs well under 1% of the size.
_PIECE = 4 << 20
_ZIP64_LIMIT = 0xFFFFFFFF
_ZIP64_MEMBERS = 0xFFFF


def write_zip(
    out: Path | str, files: Iterable[tuple[Path, str]], *, level: int = DEFAULT_ZIP_LEVEL
) -> Path:
    """Zip ``(file, name in archive)`` pairs into ``out`` (deflated, see :func:`write_zip_streams`)."""

    def chunks(path: Path) -> Iterator[bytes]:
        with open(path, "rb") as fh:
            while piece := fh.read(_PIECE):
                yield piece

    members = [(name, path.stat().st_size, chunks(path)) for path, name in files]
    return write_zip_streams(out, members, level=level)


def _deflate(data: bytes | memoryview, level: int) -> bytes:
    """One piece as raw deflate ending on a byte boundary, not final: pieces deflated
    apart (by separate threads; zlib releases the GIL) concatenate into one stream."""
    comp = zlib.compressobj(level, zlib.DEFLATED, -15)
    return comp.compress(data) + comp.flush(zlib.Z_SYNC_FLUSH)


def _pieces(blocks: Iterable[BytesLike]) -> Iterator[memoryview]:
    """``blocks`` cut or gathered into pieces of about ``_PIECE`` bytes."""
    pending: list[memoryview] = []
    size = 0
    for block in blocks:
        view = memoryview(block)
        if not view.nbytes:
            continue  # an empty layer's record blocks (a zero-length view cannot be cast)
        view = view.cast("B")
        while len(view):
            take = view[: _PIECE - size]
            pending.append(take)
            size += len(take)
            view = view[len(take) :]
            if size >= _PIECE:
                yield memoryview(b"".join(pending)) if len(pending) > 1 else pending[0]
                pending, size = [], 0
    if pending:
        yield memoryview(b"".join(pending)) if len(pending) > 1 else pending[0]


def _dos_time(when: time.struct_time) -> tuple[int, int]:
    return (
        (when.tm_hour << 11) | (when.tm_min << 5) | (when.tm_sec // 2),
        ((when.tm_year - 1980) << 9) | (when.tm_mon << 5) | when.tm_mday,
    )


def write_zip_streams(
    out: Path | str,
    members: Iterable[tuple[str, int, Iterable[BytesLike]]],
    *,
    level: int = DEFAULT_ZIP_LEVEL,
    threads: int = 1,
    force_zip64: bool = False,
) -> Path:
    """Zip members given as ``(name in archive, size in bytes, blocks of bytes)`` into ``out``.

    With ``threads`` > 1 each member is deflated in ~4 MiB pieces by that many threads
    and the pieces joined into one deflate stream (large members take every core). The
    default is one stream in this thread: on a busy machine (more runnable processes
    than cores) the threads cost more than they save (bench_io, RESULTS_io.md). Zip64
    records are written where sizes or offsets need them (or always, with
    ``force_zip64``); ``size`` is the member's uncompressed size, which decides up front
    whether its local header needs Zip64 fields.
    """
    date_time = _dos_time(time.localtime())
    central: list[bytes] = []
    with open(out, "wb") as fh, ThreadPoolExecutor(max(1, threads)) as pool:
        for name, size, blocks in members:
            member = _Member(name, size, level, date_time, force_zip64)
            central.append(member.write(fh, blocks, pool if threads > 1 else None, threads))
        _write_directory(fh, central, force_zip64)
    return Path(out)


@dataclass
class _Member:
    name: str
    size: int
    level: int
    date_time: tuple[int, int]
    force_zip64: bool
    crc: int = 0
    written: int = 0

    def _counted(self, blocks: Iterable[BytesLike]) -> Iterator[memoryview]:
        for piece in _pieces(blocks):
            self.crc = zlib.crc32(piece, self.crc)
            self.written += len(piece)
            yield piece

    def _deflated(self, pieces: Iterator[memoryview]) -> Iterator[bytes]:
        comp = zlib.compressobj(self.level, zlib.DEFLATED, -15)
        for piece in pieces:
            yield comp.compress(piece)
        yield comp.flush()

    def _deflated_apart(
        self, pieces: Iterator[memoryview], pool: ThreadPoolExecutor, workers: int
    ) -> Iterator[bytes]:
        queue: deque[Future[bytes]] = deque()
        for piece in pieces:
            queue.append(pool.submit(_deflate, piece, self.level))
            while len(queue) > 2 * workers:
                yield queue.popleft().result()
        while queue:
            yield queue.popleft().result()
        yield zlib.compressobj(self.level, zlib.DEFLATED, -15).flush()  # the final, empty block

    def write(
        self,
        fh: BinaryIO,
        blocks: Iterable[BytesLike],
        pool: ThreadPoolExecutor | None,
        workers: int,
    ) -> bytes:
        """Write the member (local header, data); return its central directory record."""
        name, size, date_time = self.name, self.size, self.date_time
        offset = fh.tell()
        encoded = name.encode("utf-8")
        flags = 0x800 if not encoded.isascii() else 0
        zip64 = self.force_zip64 or size * 1.01 + (1 << 20) >= _ZIP64_LIMIT
        version = 45 if zip64 else 20
        extra = struct.pack("<HHQQ", 1, 16, 0, 0) if zip64 else b""
        fh.write(b"\0" * (30 + len(encoded) + len(extra)))  # the header, once sizes are known
        pieces = self._counted(blocks)
        stream = (
            self._deflated(pieces) if pool is None else self._deflated_apart(pieces, pool, workers)
        )
        compressed = 0
        for data in stream:
            fh.write(data)
            compressed += len(data)
        crc, written = self.crc, self.written
        if written != size:
            raise ValueError(f"{name}: {written} bytes written, {size} announced")
        if not zip64 and compressed >= _ZIP64_LIMIT:
            raise ValueError(f"{name}: deflated to {compressed} bytes, beyond a zip without Zip64")
        end = fh.tell()
        fh.seek(offset)
        small = (_ZIP64_LIMIT, _ZIP64_LIMIT) if zip64 else (compressed, written)
        if zip64:
            extra = struct.pack("<HHQQ", 1, 16, written, compressed)
        fh.write(
            struct.pack(
                "<IHHHHHIIIHH",
                0x04034B50,
                version,
                flags,
                8,
                *date_time,
                crc,
                *small,
                len(encoded),
                len(extra),
            )
            + encoded
            + extra
        )
        fh.seek(end)
        big_offset = zip64 or offset >= _ZIP64_LIMIT
        fields = [written, compressed] if zip64 else []
        fields += [offset] if big_offset else []
        cextra = struct.pack(f"<HH{len(fields)}Q", 1, 8 * len(fields), *fields) if fields else b""
        return (
            struct.pack(
                "<IHHHHHHIIIHHHHHII",
                0x02014B50,
                (3 << 8) | version,
                version,
                flags,
                8,
                *date_time,
                crc,
                *small,
                len(encoded),
                len(cextra),
                0,
                0,
                0,
                0o100644 << 16,
                _ZIP64_LIMIT if big_offset else offset,
            )
            + encoded
            + cextra
        )


def _write_directory(fh: BinaryIO, central: list[bytes], force_zip64: bool) -> None:
    start = fh.tell()
    for record in central:
        fh.write(record)
    size = fh.tell() - start
    count = len(central)
    if force_zip64 or count >= _ZIP64_MEMBERS or start >= _ZIP64_LIMIT or size >= _ZIP64_LIMIT:
        end64 = fh.tell()
        fh.write(
            struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, count, count, size, start)
        )
        fh.write(struct.pack("<IIQI", 0x07064B50, 0, end64, 1))
        count, size, start = (
            min(count, _ZIP64_MEMBERS),
            min(size, _ZIP64_LIMIT),
            min(start, _ZIP64_LIMIT),
        )
    fh.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, size, start, 0))
