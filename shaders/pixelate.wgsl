// Pixelation in two passes: one invocation per block sums its premultiplied pixels into
// `dst` (one packed mean per block), then every pixel takes its block's mean.
// params.a.x = block size.

@group(0) @binding(3) var<storage, read> unused: array<u32>;

fn blocks_across() -> u32 {
    return (src_width() + u32(params.a.x) - 1u) / u32(params.a.x);
}

@compute @workgroup_size(16, 16)
fn block_means(@builtin(global_invocation_id) id: vec3<u32>) {
    let size = u32(params.a.x);
    let across = blocks_across();
    let down = (src_height() + size - 1u) / size;
    if (id.x >= across || id.y >= down) {
        return;
    }
    let x0 = id.x * size;
    let y0 = id.y * size;
    let x1 = min(x0 + size, src_width());
    let y1 = min(y0 + size, src_height());
    var sum = vec4<u32>(0u);
    for (var y = y0; y < y1; y++) {
        for (var x = x0; x < x1; x++) {
            sum += premultiply(unpack(src[y * src_width() + x]));
        }
    }
    let count = (x1 - x0) * (y1 - y0);
    dst[id.y * across + id.x] = pack((sum + vec4<u32>(count / 2u)) / count);
}

// src holds the means; the destination has the image's size.
@compute @workgroup_size(16, 16)
fn fill_blocks(@builtin(global_invocation_id) id: vec3<u32>) {
    if (id.x >= dst_width() || id.y >= dst_height()) {
        return;
    }
    let size = u32(params.a.x);
    let across = (dst_width() + size - 1u) / size;
    let mean = unpack(src[(id.y / size) * across + id.x / size]);
    dst[id.y * dst_width() + id.x] = pack(unpremultiply(mean));
}
