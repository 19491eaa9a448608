// Shared by every kernel (prepended to each module at compile time).
// Pixels are RGBA8 packed into one u32, little-endian: r | g << 8 | b << 16 | a << 24.
// Every pass reads `src` and writes `dst`; `aux` (binding 3) is declared per module.

struct Params {
    // source width, source height, destination width, destination height
    size: vec4<u32>,
    a: vec4<i32>,
    b: vec4<i32>,
    f: vec4<f32>,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;

fn unpack(p: u32) -> vec4<u32> {
    return vec4<u32>(p & 255u, (p >> 8u) & 255u, (p >> 16u) & 255u, p >> 24u);
}

fn pack(c: vec4<u32>) -> u32 {
    let v = min(c, vec4<u32>(255u));
    return v.x | (v.y << 8u) | (v.z << 16u) | (v.w << 24u);
}

fn src_width() -> u32 { return params.size.x; }
fn src_height() -> u32 { return params.size.y; }
fn dst_width() -> u32 { return params.size.z; }
fn dst_height() -> u32 { return params.size.w; }

// The CPU backend's premultiplication (blur, pixelate; ops/alpha.rs, whose OPAQUE and
// PREMULTIPLY_HALF are generated in front): (c * a + 127) / 255.
fn premultiply(p: vec4<u32>) -> vec4<u32> {
    return vec4<u32>((p.xyz * p.w + vec3<u32>(PREMULTIPLY_HALF)) / OPAQUE, p.w);
}

// Its inverse: (c * 255 + a / 2) / a, capped at 255; 0 where a is 0.
fn unpremultiply(p: vec4<u32>) -> vec4<u32> {
    if (p.w == 0u) {
        return vec4<u32>(0u, 0u, 0u, 0u);
    }
    return vec4<u32>(min((p.xyz * OPAQUE + vec3<u32>(p.w / 2u)) / p.w, vec3<u32>(OPAQUE)), p.w);
}
