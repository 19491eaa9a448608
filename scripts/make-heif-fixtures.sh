#!/usr/bin/env bash
# HEIF and AVIF fixtures (fixtures/heif/) made with Debian's encoders (heif-enc from
# libheif-examples: x265 for HEIC, aom for AVIF), and their sRGB references made by libvips
# (heifload, then `icc_transform ... srgb`, as `vipsthumbnail -e srgb` does), independently
# of Prism. tests/heif.rs compares Prism's output with them.
#
#   needs: apt-get install libheif-examples imagemagick libvips-tools
set -euo pipefail
cd "$(dirname "$0")/.."
out=fixtures/heif
magick=/usr/bin/convert # not a shell stand-in earlier on PATH
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out/reference"

# The Display P3 fixture of fixtures/colour (a photo whose values mean P3 colours), as an
# iPhone stores it: HEVC with the ICC profile in a `colr prof` box.
"$magick" fixtures/colour/display-p3.jpg "$tmp/p3.png"
heif-enc -q 85 "$tmp/p3.png" -o "$out/display-p3.heic" >/dev/null
# The same values tagged by code points only (`colr nclx`, primaries 12 = P3, transfer
# 13 = sRGB's curve), as AVIF encoders write them. libvips 8.14 ignores nclx, so its
# reference is libvips's conversion of the decoded values with the Display P3 profile given.
"$magick" "$tmp/p3.png" -strip "$tmp/p3-untagged.png"
# heif-enc 1.15 ignores its --colour_primaries options and writes "unspecified" (2, 2), so
# the box is rewritten: primaries 2 -> 12, transfer 2 -> 13 (the AV1 data is untouched).
heif-enc -A -q 85 "$tmp/p3-untagged.png" -o "$tmp/p3-unspecified.avif" >/dev/null
python3 - "$tmp/p3-unspecified.avif" "$out/display-p3-nclx.avif" <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
unspecified, p3 = b"colrnclx\x00\x02\x00\x02", b"colrnclx\x00\x0c\x00\x0d"
assert data.count(unspecified) == 1, "one nclx box with unspecified primaries"
open(sys.argv[2], "wb").write(data.replace(unspecified, p3))
PY
# Untagged sRGB: AVIF, HEIC, and 10-bit HEIC from 16 bits per channel (10-bit AVIF trips an
# assertion in bookworm's aom through heif-enc).
"$magick" fixtures/photos/dragonfly-1280.jpg -resize 320x -strip "$tmp/srgb.png"
heif-enc -A -q 85 "$tmp/srgb.png" -o "$out/srgb.avif" >/dev/null
"$magick" "$tmp/srgb.png" -depth 16 "PNG48:$tmp/srgb16.png"
heif-enc -q 85 -b 10 "$tmp/srgb16.png" -o "$out/srgb-10bit.heic" >/dev/null
heif-enc -q 85 "$tmp/srgb.png" -o "$out/srgb.heic" >/dev/null
# Stored landscape and turned a quarter anticlockwise by an `irot` property, as an iPhone
# stores a portrait photo (heif-enc cannot write one: scripts/heif-add-irot.py edits it in).
python3 scripts/heif-add-irot.py "$out/srgb.heic" "$out/rotated.heic" 1
# Transparency: alpha falling from opaque at the left to clear at the right.
"$magick" "$tmp/srgb.png" -alpha set -channel A -fx "1-i/w" +channel "$tmp/alpha.png"
heif-enc -q 85 "$tmp/alpha.png" -o "$out/alpha.heic" >/dev/null

for file in display-p3.heic srgb.avif srgb-10bit.heic srgb.heic rotated.heic; do
    vips icc_transform "$out/$file" "$tmp/ref.v" srgb --intent relative --depth 8 --embedded
    vips copy "$tmp/ref.v" "$out/reference/${file%.*}-${file##*.}.srgb.png[strip]"
done
vips copy "$out/alpha.heic" "$out/reference/alpha-heic.png[strip]"
python3 scripts/write-display-p3-icc.py "$tmp/display-p3.icc"
vips icc_transform "$out/display-p3-nclx.avif" "$tmp/ref.v" srgb --intent relative --depth 8 \
    --input-profile "$tmp/display-p3.icc" 2>/dev/null # the warning that nclx is ignored
vips copy "$tmp/ref.v" "$out/reference/display-p3-nclx-avif.srgb.png[strip]"
