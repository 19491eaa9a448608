// Separable convolution with fast_image_resize's integer arithmetic, so the GPU output
// matches the CPU backend: i16-range weights at `precision` bits, a rounding half added,
// the sum shifted back and clamped. The vertical pass runs first (as it does for 8-bit
// images on the CPU) and premultiplies alpha on load; the horizontal pass divides it out.
//
// aux: [start, count] per output index, then `window` weights per output index.
// params.a = (precision, premultiply on load, unpremultiply on store, window)

@group(0) @binding(3) var<storage, read> table: array<i32>;

// fast_image_resize's multiply: (c * a + 128) with the /255 done as two shifts.
fn fir_premultiply(p: vec4<u32>) -> vec4<u32> {
    let t = p.xyz * p.w + vec3<u32>(128u);
    return vec4<u32>(((t >> vec3<u32>(8u)) + t) >> vec3<u32>(8u), p.w);
}

// fast_image_resize's divide: a reciprocal with 8 fractional bits, rounded.
fn fir_unpremultiply(p: vec4<u32>) -> vec4<u32> {
    if (p.w == 0u) {
        return vec4<u32>(0u, 0u, 0u, 0u);
    }
    let recip = ((255u * 512u) / p.w + 1u) >> 1u;
    return vec4<u32>(min((p.xyz * recip + vec3<u32>(128u)) >> vec3<u32>(8u), vec3<u32>(255u)), p.w);
}

fn load(index: u32) -> vec4<i32> {
    var p = unpack(src[index]);
    if (params.a.y != 0) {
        p = fir_premultiply(p);
    }
    return vec4<i32>(p);
}

fn finish(sum: vec4<i32>) -> u32 {
    let shifted = sum >> vec4<u32>(u32(params.a.x));
    var p = vec4<u32>(clamp(shifted, vec4<i32>(0), vec4<i32>(255)));
    if (params.a.z != 0) {
        p = fir_unpremultiply(p);
    }
    return pack(p);
}

// Weights for output index `i` of `n` outputs along the pass's axis.
fn bounds(i: u32) -> vec2<u32> {
    return vec2<u32>(u32(table[2u * i]), u32(table[2u * i + 1u]));
}

@compute @workgroup_size(16, 16)
fn vertical(@builtin(global_invocation_id) id: vec3<u32>) {
    if (id.x >= dst_width() || id.y >= dst_height()) {
        return;
    }
    let span = bounds(id.y);
    let weights = 2u * dst_height() + id.y * u32(params.a.w);
    var sum = vec4<i32>(1 << (u32(params.a.x) - 1u));
    for (var k = 0u; k < span.y; k++) {
        sum += load((span.x + k) * src_width() + id.x) * table[weights + k];
    }
    dst[id.y * dst_width() + id.x] = finish(sum);
}

@compute @workgroup_size(16, 16)
fn horizontal(@builtin(global_invocation_id) id: vec3<u32>) {
    if (id.x >= dst_width() || id.y >= dst_height()) {
        return;
    }
    let span = bounds(id.x);
    let weights = 2u * dst_width() + id.x * u32(params.a.w);
    var sum = vec4<i32>(1 << (u32(params.a.x) - 1u));
    let row = id.y * src_width();
    for (var k = 0u; k < span.y; k++) {
        sum += load(row + span.x + k) * table[weights + k];
    }
    dst[id.y * dst_width() + id.x] = finish(sum);
}
