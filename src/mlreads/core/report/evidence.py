"""A published run's evidence: its figures and text artifacts, copied into the ledger next to its JSON.

    results/<id>/<budget>-s<seed>.json      the entry (mlreads publish)
    results/<id>/<budget>-s<seed>/          its figures (PNG, at most MAX_FIGURE_BYTES each) and text artifacts

A figure larger than MAX_FIGURE_BYTES is re-encoded with a 256-colour palette (plots have few colours) and, if still
too large, scaled down until it fits, so the whole ledger's images stay small in git (about 15 MB for every claim).
Only files that resolve inside the run folder are read (`results.inside`); names are reduced to safe file names.
"""

from __future__ import annotations

import io
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from mlreads.core.run.results import (
    MAX_ARTIFACT_BYTES,
    BadResult,
    inside,
    printable,
    read_limited,
)

MAX_FIGURE_BYTES = 300_000
MAX_TEXT_BYTES = 1_000_000
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def artifacts_dir(entry_file: Path) -> Path:
    """The folder of an entry's evidence: `results/<id>/quick-s0.json` -> `results/<id>/quick-s0/`."""
    return Path(entry_file).with_suffix("")


def safe_name(name: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(name).name).lstrip(".") or "artifact"
    return name[:100]


def shrink_png(data: bytes, limit: int = MAX_FIGURE_BYTES) -> bytes:
    """The PNG itself when it fits in `limit` bytes; else palette-quantised, then scaled down by 0.8 per try."""
    if len(data) <= limit:
        return data
    from PIL import Image

    img = Image.open(io.BytesIO(data))
    img.load()
    img = img.convert("RGBA" if "A" in img.getbands() else "RGB")

    def encode(im) -> bytes:
        buf = io.BytesIO()
        method = Image.Quantize.FASTOCTREE if im.mode == "RGBA" else Image.Quantize.MEDIANCUT
        im.quantize(256, method=method).save(buf, format="PNG", optimize=True)
        return buf.getvalue()

    out, scale = encode(img), 1.0
    while len(out) > limit and min(img.size) * scale > 32:
        scale *= 0.8
        size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
        out = encode(img.resize(size, Image.Resampling.LANCZOS))
    return out


def copy_artifacts(result: dict, run_dir: Path, dest: Path, warn: Callable[[str], None]) -> tuple[list, dict, dict]:
    """Copy the run's figures (shrunk) and text artifacts into `dest` (replaced); return the entry's new
    (figures, captions, texts), naming the copied files. What cannot be copied safely is skipped with a warning."""
    if dest.is_symlink() or dest.is_file():
        dest.unlink()
    elif dest.is_dir():
        shutil.rmtree(dest)
    figures, captions, texts, used = [], {}, {}, set()

    def take(name: str, limit: int, what: str) -> tuple[str, bytes] | None:
        src = inside(run_dir, name)
        if src is None:
            warn(f"{what} {printable(name)!r} is not a file inside the run folder; not copied")
            return None
        try:
            data = read_limited(src, limit)
        except BadResult as e:
            warn(f"{what} {printable(name)!r}: {printable(e)}; not copied")
            return None
        out = safe_name(name)
        while out in used:
            out = "_" + out
        used.add(out)
        return out, data

    for fig in result.get("figures") or []:
        got = take(fig, MAX_ARTIFACT_BYTES, "figure")
        if got is None:
            continue
        name, data = got
        if not data.startswith(PNG_MAGIC):
            warn(f"figure {printable(fig)!r} is not a PNG file; not copied")
            continue
        dest.mkdir(parents=True, exist_ok=True)
        (dest / name).write_bytes(shrink_png(data))
        figures.append(name)
        if fig in (result.get("captions") or {}):
            captions[name] = result["captions"][fig]
    for key, fname in (result.get("texts") or {}).items():
        got = take(fname, MAX_TEXT_BYTES, "text artifact")
        if got is None:
            continue
        dest.mkdir(parents=True, exist_ok=True)
        (dest / got[0]).write_bytes(got[1])
        texts[key] = got[0]
    return figures, captions, texts
