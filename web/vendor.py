"""The browser libraries the pages use: copied from npm's install into web/static/vendor/."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent / "static"
VENDOR_DIR = STATIC_DIR / "vendor"
NODE_MODULES = Path(__file__).resolve().parent / "assets" / "node_modules"

# Every browser library, installed by npm (web/assets/package.json) and copied by
# ``python -m web.vendor`` into web/static/vendor/: destination -> source in node_modules.
VENDOR_FILES: dict[str, str] = {
    "leaflet/leaflet.js": "leaflet/dist/leaflet.js",
    "leaflet/leaflet.css": "leaflet/dist/leaflet.css",
    "leaflet/images": "leaflet/dist/images",
    "geoman/leaflet-geoman.min.js": "@geoman-io/leaflet-geoman-free/dist/leaflet-geoman.min.js",
    "geoman/leaflet-geoman.css": "@geoman-io/leaflet-geoman-free/dist/leaflet-geoman.css",
    "jquery/jquery.min.js": "jquery/dist/jquery.min.js",
    "bootstrap/bootstrap.bundle.min.js": "bootstrap/dist/js/bootstrap.bundle.min.js",
    "bootstrap/bootstrap.bundle.min.js.map": "bootstrap/dist/js/bootstrap.bundle.min.js.map",
    "bootstrap/bootstrap.min.css": "bootstrap/dist/css/bootstrap.min.css",
    "bootstrap/bootstrap.min.css.map": "bootstrap/dist/css/bootstrap.min.css.map",
    "fontawesome/css/all.min.css": "@fortawesome/fontawesome-free/css/all.min.css",
    "fontawesome/webfonts": "@fortawesome/fontawesome-free/webfonts",
    "awesome-markers/leaflet.awesome-markers.js": "leaflet.awesome-markers/dist/leaflet.awesome-markers.js",
    "awesome-markers/leaflet.awesome-markers.css": "leaflet.awesome-markers/dist/leaflet.awesome-markers.css",
    "awesome-markers/images": "leaflet.awesome-markers/dist/images",
    "vectorgrid/Leaflet.VectorGrid.bundled.min.js": "leaflet.vectorgrid/dist/Leaflet.VectorGrid.bundled.min.js",
    "chartjs/chart.umd.min.js": "chart.js/dist/chart.umd.min.js",
    "chartjs/LICENSE.md": "chart.js/LICENSE.md",
}


def missing_vendor_files(vendor_dir: Path = VENDOR_DIR) -> list[str]:
    """The vendor files the pages need that are not in ``vendor_dir``."""
    return [dest for dest in VENDOR_FILES if not (vendor_dir / dest).exists()]


def install_vendor(node_modules: Path = NODE_MODULES, vendor_dir: Path = VENDOR_DIR) -> int:
    """Copy the npm-installed libraries into ``vendor_dir``; return how many entries.

    Raises
    ------
    FileNotFoundError
        When a source is absent (``npm ci --prefix web/assets`` has not run).
    """
    missing = [src for src in VENDOR_FILES.values() if not (node_modules / src).exists()]
    if missing:
        msg = (
            f"{len(missing)} asset(s) missing under {node_modules} (first: {missing[0]}); "
            "run `npm ci --prefix web/assets` (or `make setup`)"
        )
        raise FileNotFoundError(msg)
    if vendor_dir.exists():
        shutil.rmtree(vendor_dir)
    for dest, src in VENDOR_FILES.items():
        target = vendor_dir / dest
        target.parent.mkdir(parents=True, exist_ok=True)
        if (node_modules / src).is_dir():
            shutil.copytree(node_modules / src, target)
        else:
            shutil.copy2(node_modules / src, target)
    return len(VENDOR_FILES)


def main(argv: list[str] | None = None) -> int:
    """``python -m web.vendor``: copy npm-installed libraries into web/static/vendor."""
    args = sys.argv[1:] if argv is None else argv
    if args:
        print("usage: python -m web.vendor (no arguments)", file=sys.stderr)
        return 2
    try:
        n = install_vendor()
    except FileNotFoundError as err:
        print(f"web.vendor: error: {err}", file=sys.stderr)
        return 1
    print(f"copied {n} vendor assets into {VENDOR_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
