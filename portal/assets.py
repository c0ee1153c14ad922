"""Static assets: fingerprinting at build time and the manifest the templates read.

The build step (``portal build-assets``, run by the Makefile after Sass) copies each built file to a
name with its content hash, writes a gzip twin for WhiteNoise to serve, and records the mapping in
``manifest.json``. Fingerprinted files can then be cached for a year.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import shutil
from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent / "static"
DIST_DIR = STATIC_DIR / "dist"
NODE_MODULES = Path(__file__).resolve().parent.parent / "node_modules"
IMAGES_SOURCE = NODE_MODULES / "nhsuk-frontend" / "dist" / "nhsuk" / "assets" / "images"
FINGERPRINTED = re.compile(r"\.[0-9a-f]{12}\.\w+$")
COMPRESSIBLE = {".css", ".js", ".svg", ".json", ".ico"}


def build(dist: Path = DIST_DIR, images_source: Path = IMAGES_SOURCE) -> dict[str, str]:
    """Fingerprint and precompress everything Sass left in ``dist``; return the manifest."""
    if images_source.is_dir():
        shutil.copytree(images_source, dist / "images", dirs_exist_ok=True)
    for stale in dist.glob("*.*"):
        if FINGERPRINTED.search(stale.name.removesuffix(".gz")):
            stale.unlink()
    manifest: dict[str, str] = {}
    for source in sorted(dist.glob("*.css")):
        digest = hashlib.sha256(source.read_bytes()).hexdigest()[:12]
        target = source.with_name(f"{source.stem}.{digest}{source.suffix}")
        shutil.copyfile(source, target)
        manifest[source.name] = target.name
    for path in sorted(dist.rglob("*")):
        if path.is_file() and path.suffix in COMPRESSIBLE:
            path.with_name(path.name + ".gz").write_bytes(gzip.compress(path.read_bytes(), 9, mtime=0))
    (dist / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return manifest


def load_manifest(dist: Path = DIST_DIR) -> dict[str, str]:
    path = dist / "manifest.json"
    if not path.exists():
        raise RuntimeError(f"{path} is missing: build the assets first (make assets)")
    return json.loads(path.read_text(encoding="utf-8"))


def is_immutable(path: str, url: str) -> bool:
    """WhiteNoise hook: fingerprinted files never change, so browsers may keep them for a year."""
    return bool(FINGERPRINTED.search(url.removesuffix(".gz")))
