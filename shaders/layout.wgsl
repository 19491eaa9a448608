// Packed RGB (3 bytes a pixel, as the decoders write it) to and from the RGBA words every
// other kernel reads, so that an RGB frame crosses the bus in its own 3 bytes a pixel.

// One invocation per pixel; its 3 bytes at byte 3i may straddle two words. Alpha is opaque.
@compute @workgroup_size(16, 16)
fn unpack_rgb(@builtin(global_invocation_id) id: vec3<u32>) {
    if (id.x >= dst_width() || id.y >= dst_height()) {
        return;
    }
    let pixel = id.y * dst_width() + id.x;
    let start = 3u * pixel;
    let word = start / 4u;
    let shift = (start % 4u) * 8u;
    var bits = src[word] >> shift;
    if (shift > 8u) {
        bits = bits | (src[word + 1u] << (32u - shift));
    }
    dst[pixel] = (bits & 0xffffffu) | (OPAQUE << 24u);
}

// One invocation per output word (params.a.x of them, laid out dst_width() to a row):
// bytes 4w .. 4w+3 of the packed RGB stream.
@compute @workgroup_size(16, 16)
fn pack_rgb(@builtin(global_invocation_id) id: vec3<u32>) {
    let word = id.y * dst_width() + id.x;
    if (id.x >= dst_width() || word >= u32(params.a.x)) {
        return;
    }
    let pixels = dst_width() * dst_height();
    var bits = 0u;
    for (var k = 0u; k < 4u; k = k + 1u) {
        let byte = 4u * word + k;
        let pixel = byte / 3u;
        if (pixel < pixels) {
            let channel = (src[pixel] >> (8u * (byte % 3u))) & 255u;
            bits = bits | (channel << (8u * k));
        }
    }
    dst[word] = bits;
}
