// Colour operations on RGB; alpha passes through. The arithmetic is the CPU backend's
// (16.16 fixed point; per-channel adjustments through the same 256-entry table).

@group(0) @binding(3) var<storage, read> lut: array<u32>;

fn pixel_index(id: vec3<u32>) -> i32 {
    if (id.x >= dst_width() || id.y >= dst_height()) {
        return -1;
    }
    return i32(id.y * dst_width() + id.x);
}

// One row of a 16.16 fixed-point colour matrix applied to a pixel, rounded. The matrices
// (LUMA_WEIGHTS, SEPIA_R/G/B) and FIXED_* are generated from engine/src/ops/color.rs.
fn fixed_dot(weights: vec3<u32>, p: vec4<u32>) -> u32 {
    return (weights.x * p.x + weights.y * p.y + weights.z * p.z + FIXED_HALF) >> FIXED_SHIFT;
}

// Rec. 601 luma.
fn luma(p: vec4<u32>) -> u32 {
    return fixed_dot(LUMA_WEIGHTS, p);
}

// brightness, contrast, gamma, invert: aux holds the table.
@compute @workgroup_size(16, 16)
fn table(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = pixel_index(id);
    if (i < 0) {
        return;
    }
    let p = unpack(src[i]);
    dst[i] = pack(vec4<u32>(lut[p.x], lut[p.y], lut[p.z], p.w));
}

@compute @workgroup_size(16, 16)
fn gray(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = pixel_index(id);
    if (i < 0) {
        return;
    }
    let p = unpack(src[i]);
    let y = luma(p);
    dst[i] = pack(vec4<u32>(y, y, y, p.w));
}

// params.a.x: factor with 8 fractional bits.
@compute @workgroup_size(16, 16)
fn saturation(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = pixel_index(id);
    if (i < 0) {
        return;
    }
    let p = unpack(src[i]);
    let y = i32(luma(p));
    let c = vec3<i32>(p.xyz);
    let out = clamp(vec3<i32>(y) + (((c - vec3<i32>(y)) * params.a.x + vec3<i32>(128)) >> vec3<u32>(8u)), vec3<i32>(0), vec3<i32>(255));
    dst[i] = pack(vec4<u32>(vec3<u32>(out), p.w));
}

@compute @workgroup_size(16, 16)
fn sepia(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = pixel_index(id);
    if (i < 0) {
        return;
    }
    let p = unpack(src[i]);
    let rgb = vec3<u32>(fixed_dot(SEPIA_R, p), fixed_dot(SEPIA_G, p), fixed_dot(SEPIA_B, p));
    dst[i] = pack(vec4<u32>(rgb, p.w));
}
