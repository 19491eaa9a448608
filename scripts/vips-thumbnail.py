#!/usr/bin/env python3
"""vipsthumbnail's work through pyvips, so that scripts/bench-vips.sh can run a newer libvips
(pip's pyvips-binary ships libvips 8.18) beside Debian's 8.14: each photo thumbnailed to fit a
SIZE box and saved as JPEG quality 85 without metadata, one after another, as vipsthumbnail
does.

    usage: vips-thumbnail.py SIZE OUTDIR PHOTO...
    needs: python3 -m venv V && V/bin/pip install pyvips-binary pyvips
"""
import os
import sys

import pyvips


def main(size, outdir, photos):
    for photo in photos:
        stem = os.path.splitext(os.path.basename(photo))[0]
        image = pyvips.Image.thumbnail(photo, size, height=size)
        image.jpegsave(os.path.join(outdir, stem + ".jpg"), Q=85, keep="none")


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], sys.argv[3:])
