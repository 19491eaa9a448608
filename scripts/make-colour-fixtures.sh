#!/usr/bin/env bash
# Colour-managed fixtures (fixtures/colour/) and their sRGB references, made only with tools
# from Debian's packages: ImageMagick tags a photo with each profile (assigned, so the same
# values now mean other colours) or converts it to CMYK; libvips (`vips icc_transform ...
# srgb`, the conversion `vipsthumbnail -e srgb` runs) converts each back to sRGB as the
# reference (fixtures/colour/reference/), independently of Prism. tests/colour.rs compares
# Prism's output with them.
#
#   needs: apt-get install imagemagick libvips-tools icc-profiles-free colord-data argyll
set -euo pipefail
cd "$(dirname "$0")/.."
out=fixtures/colour
icc=/usr/share/color/icc
magick=/usr/bin/convert # not a shell stand-in earlier on PATH
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"

# An untagged sRGB photo, small enough for a fixture.
"$magick" fixtures/photos/dragonfly-1280.jpg -resize 320x -strip "$tmp/base.png"

# A CMYK press profile other than the default one Prism assumes: Argyll's colprof from the
# FOGRA39 measurements in icc-profiles-free.
cp "$icc/FOGRA39L.ti3" "$tmp/"
(cd "$tmp" && colprof -ql -D "FOGRA39L (Argyll colprof)" FOGRA39L >/dev/null)

# sRGB's own profile: nothing to convert.
"$magick" "$tmp/base.png" -profile "$icc/sRGB.icc" -quality 95 "$out/srgb.jpg"
# Display P3, as every iPhone photo carries (the profile written by a script: no Debian
# package ships one).
python3 scripts/write-display-p3-icc.py "$tmp/display-p3.icc"
"$magick" "$tmp/base.png" -profile "$tmp/display-p3.icc" -quality 95 "$out/display-p3.jpg"
# RGB profiles, assigned: Adobe RGB, ProPhoto, Apple RGB (gamma 1.8, like Apple's Generic RGB).
"$magick" "$tmp/base.png" -profile "$icc/colord/AdobeRGB1998.icc" -quality 95 "$out/adobe-rgb.jpg"
"$magick" "$tmp/base.png" -profile "$icc/colord/ProPhotoRGB.icc" -quality 95 "$out/prophoto.jpg"
"$magick" "$tmp/base.png" -profile "$icc/colord/AppleRGB.icc" -quality 95 "$out/apple-rgb.jpg"
# 16 bits per channel with transparency, in ProPhoto.
"$magick" "$tmp/base.png" -alpha set -channel A -fx "0.5+0.5*i/w" +channel -depth 16 \
    -profile "$icc/colord/ProPhotoRGB.icc" "PNG64:$out/prophoto-16bit-alpha.png"
# Grey with an L* tone curve (far from sRGB's).
"$magick" "$tmp/base.png" -colorspace Gray -profile "$icc/Gray-CIE_L.icc" -quality 95 "$out/grey-lstar.jpg"
# CMYK converted through FOGRA39, with the profile and without it.
"$magick" "$tmp/base.png" -profile "$icc/sRGB.icc" -profile "$tmp/FOGRA39L.icc" -quality 95 \
    "$out/cmyk-fogra39.jpg"
"$magick" "$out/cmyk-fogra39.jpg" +profile "*" -quality 95 "$out/cmyk-untagged.jpg"

mkdir -p "$out/reference"
for file in "$out"/*.jpg "$out"/*.png; do
    name=$(basename "${file%.*}")
    vips icc_transform "$file" "$tmp/ref.v" srgb --intent relative --depth 8
    # 8-bit RGB(A) PNG without a profile.
    vips copy "$tmp/ref.v" "$out/reference/$name.srgb.png[strip]"
done
# The stored values, unconverted, for `keepicc`.
vips copy "$out/prophoto.jpg" "$out/reference/prophoto.stored.png[strip]"
ls -la "$out" "$out/reference"
