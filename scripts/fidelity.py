#!/usr/bin/env python3
"""Thumbnail fidelity beside speed: each photo thumbnailed by `prism` and by vipsthumbnail to fit
a SIZE box, both saved losslessly (PNG), each compared with an ideal thumbnail of exactly its
size: a full decode (Pillow, libjpeg-turbo at full scale, EXIF orientation applied) resized with
Pillow's Lanczos. Prints PSNR per photo (capped at 50 dB), the means, and the worst photos by
Prism minus vipsthumbnail.

    usage: scripts/fidelity.py PHOTO_DIR SIZE [PRISM=target/release/prism]
    needs: pip install pillow numpy; Debian's libvips-tools (vipsthumbnail)
"""
import math
import os
import subprocess
import sys
import tempfile

import numpy
from PIL import Image, ImageOps

CAP_DB = 50.0


def psnr(a, b):
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} and {b.shape}")
    error = numpy.mean((a.astype(numpy.float64) - b.astype(numpy.float64)) ** 2)
    if error == 0:
        return CAP_DB
    return min(CAP_DB, 10 * math.log10(255.0**2 / error))


def ideal(photo, size):
    """The reference for an output of `size` (width, height)."""
    with Image.open(photo) as image:
        image.draft(None, None)  # no DCT scaling: the full decode
        full = ImageOps.exif_transpose(image.convert("RGB"))
        return numpy.asarray(full.resize(size, Image.LANCZOS))


def pixels(path):
    with Image.open(path) as image:
        return numpy.asarray(image.convert("RGB"))


def main(photo_dir, size, prism):
    photos = sorted(
        os.path.join(photo_dir, name)
        for name in os.listdir(photo_dir)
        if name.lower().endswith((".jpg", ".jpeg"))
    )
    with tempfile.TemporaryDirectory() as out:
        prism_dir, vips_dir = os.path.join(out, "prism"), os.path.join(out, "vips")
        os.makedirs(prism_dir)
        os.makedirs(vips_dir)
        subprocess.run(
            [prism, "process", "--pipeline", f"fit:{size}x{size}|png", *photos, "-o", prism_dir],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        subprocess.run(
            ["vipsthumbnail", "-s", str(size), "-o", os.path.join(vips_dir, "%s.png"), *photos],
            check=True,
        )
        rows = []
        for photo in photos:
            stem = os.path.splitext(os.path.basename(photo))[0]
            scores = []
            for folder in (prism_dir, vips_dir):
                output = pixels(os.path.join(folder, stem + ".png"))
                reference = ideal(photo, (output.shape[1], output.shape[0]))
                scores.append(psnr(output, reference))
            rows.append((stem, *scores))
    print(f"{'photo':40} {'prism dB':>9} {'vips dB':>9} {'diff':>6}")
    for stem, mine, theirs in rows:
        print(f"{stem:40} {mine:9.2f} {theirs:9.2f} {mine - theirs:6.2f}")
    mean = lambda column: sum(row[column] for row in rows) / len(rows)
    worst = sorted(rows, key=lambda row: row[1] - row[2])[:3]
    print(f"size {size}: {len(rows)} photos; mean PSNR against the ideal: "
          f"prism {mean(1):.2f} dB, vipsthumbnail {mean(2):.2f} dB")
    print("worst, prism minus vipsthumbnail: " + ", ".join(
        f"{stem} {mine - theirs:+.1f} dB ({mine:.1f} against {theirs:.1f})"
        for stem, mine, theirs in worst))


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else "target/release/prism")
