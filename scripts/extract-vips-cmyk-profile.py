"""Writes libvips's fallback CMYK profile (engine/assets/cmyk-chemical-proof.icc) from the
libvips shared library in Debian's libvips42 package, where it is stored zlib-compressed (best compression, header 78 DA).

    usage: apt-get download libvips42 && dpkg -x libvips42_*.deb vips &&
           python3 scripts/extract-vips-cmyk-profile.py vips/usr/lib/x86_64-linux-gnu/libvips.so.42 OUT.icc
"""

import sys
import zlib

library, out = sys.argv[1], sys.argv[2]
data = open(library, "rb").read()
at = data.find(b"\x78\xda")
while at >= 0:
    try:
        profile = zlib.decompressobj().decompress(data[at : at + 4_000_000])
    except zlib.error:
        profile = b""
    # An ICC profile: "acsp" at byte 36; the CMYK one says so at byte 16.
    if profile[36:40] == b"acsp" and profile[16:20] == b"CMYK":
        open(out, "wb").write(profile)
        print(f"{out}: {len(profile)} bytes")
        sys.exit(0)
    at = data.find(b"\x78\xda", at + 1)
sys.exit("no CMYK profile found")
