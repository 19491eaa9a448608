#!/usr/bin/env python3
"""Lossy against lossless WebP on a folder of photographs, run in one go.

Usage: scripts/webp-quality.py PRISM_BINARY PHOTO_DIR [QUALITY ...]

For each quality (default 80) it runs `prism process` with `fit:1280x1280|webp:Q` and once
with `fit:1280x1280|webp:lossless`; the lossless output holds exactly the resized pixels, so
it is the source each lossy file is compared with (PSNR over RGB). Prints total bytes, the
ratio to lossless, the median and worst PSNR and the CPU time of each run. Needs Pillow and
numpy (python3 -m venv; pip install pillow numpy).
"""
import os
import resource
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image


def run(prism, photos, pipeline, out):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(
        [prism, "process", photos, "-o", out, "--threads", "1", "--pipeline", pipeline],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {name: os.path.join(out, name) for name in sorted(os.listdir(out))}, cpu


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    prism, photos = sys.argv[1], sys.argv[2]
    qualities = [int(q) for q in sys.argv[3:]] or [80]
    with tempfile.TemporaryDirectory() as tmp:
        lossless, lossless_cpu = run(
            prism, photos, "fit:1280x1280|webp:lossless", os.path.join(tmp, "lossless")
        )
        lossless_bytes = sum(os.path.getsize(p) for p in lossless.values())
        print(f"{len(lossless)} photos; lossless WebP {lossless_bytes / 1e6:.2f} MB, "
              f"{lossless_cpu:.2f} s CPU")
        for quality in qualities:
            lossy, cpu = run(
                prism, photos, f"fit:1280x1280|webp:{quality}", os.path.join(tmp, f"q{quality}")
            )
            total = sum(os.path.getsize(p) for p in lossy.values())
            scores = sorted(
                psnr(
                    np.asarray(Image.open(lossless[name]).convert("RGB")),
                    np.asarray(Image.open(path).convert("RGB")),
                )
                for name, path in lossy.items()
            )
            print(f"webp:{quality}: {total / 1e6:.2f} MB = {total / lossless_bytes:.3f} x lossless; "
                  f"PSNR median {scores[len(scores) // 2]:.1f} dB, worst {scores[0]:.1f} dB; "
                  f"{cpu:.2f} s CPU")


if __name__ == "__main__":
    main()
