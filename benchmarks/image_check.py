"""Image check benchmark: what ``amplify.media.check`` costs, per picture. Prints JSON.

    .venv/bin/python benchmarks/image_check.py [--compare]

Each picture is built in memory (nothing large is committed) and checked in a fresh
child process, so ``peak_rss_mb`` is that process's own high-water mark above an idle
baseline (Pillow's pixel buffers are not seen by tracemalloc, the operating system's
count sees them). Pictures:

- ``bomb_13000_rgba_png``: a real 13000×13000 RGBA PNG (169 megapixels, ~0.7 MB of
  compressed zeros), the picture of issue 9. Refused from its header.
- ``photo_4000x3000_jpeg``: a 12-megapixel phone photo. Accepted, normalised to 2048 px.
- ``png_7000x7000_rgb``: 49 megapixels, just under the cap: the most a PNG may cost.

``--compare`` also decodes the bomb the way the pages did before (Pillow's own limit,
``Image.open(...).load()``): about 1.4 GB and several seconds; leave it off on a busy machine.
"""

from __future__ import annotations

import io
import json
import resource
import subprocess
import sys
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def png(width: int, height: int, channels: int) -> bytes:
    """A complete PNG of zeros (black, or transparent), compressed row by row."""
    import struct

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    color_type = {3: 2, 4: 6}[channels]
    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    packer = zlib.compressobj(9)
    row = b"\0" * (width * channels + 1)
    data = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    signature = b"\x89PNG\r\n\x1a\n"
    return signature + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def photo(width: int, height: int) -> bytes:
    import os

    from PIL import Image

    noise = Image.frombytes("RGB", (256, 256), os.urandom(256 * 256 * 3)).resize((width, height))
    out = io.BytesIO()
    noise.save(out, format="JPEG", quality=90)
    return out.getvalue()


PICTURES = {
    "bomb_13000_rgba_png": lambda: png(13_000, 13_000, 4),
    "photo_4000x3000_jpeg": lambda: photo(4000, 3000),
    "png_7000x7000_rgb": lambda: png(7000, 7000, 3),
}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(name: str, how: str) -> dict[str, object]:
    """Runs in the child: build the picture, note the baseline, check it once."""
    from PIL import Image

    from amplify import media  # imported before the baseline: only the check is measured

    data = PICTURES[name]()
    baseline = _rss_mb()
    started = time.perf_counter()
    if how == "pillow_decode":  # the old way: Pillow's default limit, then decode
        Image.MAX_IMAGE_PIXELS = 89_478_485
        with Image.open(io.BytesIO(data)) as image:
            image.load()
        outcome = "decoded"
    else:
        try:
            checked = media.check(data, name)
            outcome = f"accepted {checked.width}x{checked.height} {checked.format}"
        except media.ImageRefused as exc:
            outcome = f"refused: {exc}"
    return {
        "bytes": len(data),
        "seconds": round(time.perf_counter() - started, 3),
        "peak_rss_mb": round(_rss_mb() - baseline, 1),
        "outcome": outcome,
    }


def measure(name: str, how: str = "check") -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", name, how],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(child(sys.argv[2], sys.argv[3])))
        sys.exit(0)
    report: dict[str, object] = {name: measure(name) for name in PICTURES}
    if "--compare" in sys.argv[1:]:
        old_way = measure("bomb_13000_rgba_png", "pillow_decode")
        report["bomb_13000_rgba_png_pillow_decode"] = old_way
    print(json.dumps(report, indent=2))
