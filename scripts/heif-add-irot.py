#!/usr/bin/env python3
"""Adds an `irot` (rotation) property to the primary image of a one-image HEIF file, as
iPhones store portrait photos: pixels as the sensor read them, plus a rotation to display.
heif-enc 1.15 cannot write one, so the boxes are edited: an `irot` box at the end of `ipco`,
its index in the image's `ipma` entry, the enclosing sizes, and `iloc`'s file offsets
(the data after `meta` moves by the bytes added).

    heif-add-irot.py IN OUT QUARTER_TURNS_ANTICLOCKWISE
"""
import struct
import sys


def boxes(data, start, end):
    """(type, start, header length, end) of each box in data[start:end]."""
    at = start
    while at < end:
        size, kind = struct.unpack(">I4s", data[at : at + 8])
        assert size >= 8, "no 64-bit or open-ended boxes here"
        yield kind, at, 8, at + size
        at += size


def child(data, parent_start, parent_header, parent_end, kind, full_box=False):
    body = parent_start + parent_header + (4 if full_box else 0)
    for found, start, header, end in boxes(data, body, parent_end):
        if found == kind:
            return start, header, end
    raise SystemExit(f"no {kind!r} box")


def main(source, target, turns):
    data = bytearray(open(source, "rb").read())
    meta = next(b for b in boxes(data, 0, len(data)) if b[0] == b"meta")[1:]
    iprp = child(data, *meta, b"iprp", full_box=True)
    ipco = child(data, *iprp, b"ipco")
    ipma = child(data, *iprp, b"ipma")
    iloc = child(data, *meta, b"iloc", full_box=True)
    properties = len(list(boxes(data, ipco[0] + 8, ipco[2])))

    # ipma: version/flags, entry count, then item id, association count, associations.
    version, flags = data[ipma[0] + 8], int.from_bytes(data[ipma[0] + 9 : ipma[0] + 12], "big")
    assert version == 0 and flags & 1 == 0, "7-bit property indices, 16-bit item ids"
    entries = struct.unpack(">I", data[ipma[0] + 12 : ipma[0] + 16])[0]
    assert entries == 1, "one image"
    count_at = ipma[0] + 16 + 2
    count = data[count_at]
    association = bytes([0x80 | (properties + 1)])  # essential, 1-based index
    insert_association_at = count_at + 1 + count

    irot = struct.pack(">I4sB", 9, b"irot", turns & 3)
    added = len(irot) + len(association)

    # iloc offsets of data after meta shift by `added` (meta grows before mdat).
    iloc_at = iloc[0] + 8
    iloc_version = data[iloc_at]
    sizes = data[iloc_at + 4]
    offset_size, length_size = sizes >> 4, sizes & 15
    base_offset_size = data[iloc_at + 5] >> 4
    index_size = data[iloc_at + 5] & 15 if iloc_version in (1, 2) else 0
    at = iloc_at + 6
    items = struct.unpack(">H", data[at : at + 2])[0]
    at += 2
    for _ in range(items):
        at += 2  # item id
        if iloc_version in (1, 2):
            at += 2  # construction method: 0 (file offsets) expected
        at += 2  # data reference index
        if base_offset_size:
            base = int.from_bytes(data[at : at + base_offset_size], "big")
            if base > meta[2] - meta[0]:
                data[at : at + base_offset_size] = (base + added).to_bytes(base_offset_size, "big")
            at += base_offset_size
        extents = struct.unpack(">H", data[at : at + 2])[0]
        at += 2
        for _ in range(extents):
            at += index_size
            offset = int.from_bytes(data[at : at + offset_size], "big")
            if offset >= meta[2]:
                data[at : at + offset_size] = (offset + added).to_bytes(offset_size, "big")
            at += offset_size + length_size

    # Edit from the back (ipma, then ipco, then their parents), so that positions not yet
    # used stay valid.
    def grow(start, by):
        size = struct.unpack(">I", data[start : start + 4])[0]
        data[start : start + 4] = struct.pack(">I", size + by)

    data[insert_association_at:insert_association_at] = association
    data[count_at] = count + 1
    grow(ipma[0], len(association))
    data[ipco[2] : ipco[2]] = irot
    grow(ipco[0], len(irot))
    grow(iprp[0], added)
    grow(meta[0], added)
    open(target, "wb").write(data)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
