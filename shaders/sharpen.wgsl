// Unsharp mask: out = in + amount * (in - blurred) on RGB, alpha kept.
// src is the original, aux the blurred copy; params.f.x = amount.

@group(0) @binding(3) var<storage, read> blurred: array<u32>;

@compute @workgroup_size(16, 16)
fn combine(@builtin(global_invocation_id) id: vec3<u32>) {
    if (id.x >= dst_width() || id.y >= dst_height()) {
        return;
    }
    let i = id.y * dst_width() + id.x;
    let p = unpack(src[i]);
    let v = vec3<f32>(p.xyz);
    let soft = vec3<f32>(unpack(blurred[i]).xyz);
    // Rounds half away from zero like the CPU's f32::round (negative values clamp to 0).
    let sharp = floor(v + params.f.x * (v - soft) + vec3<f32>(0.5));
    dst[i] = pack(vec4<u32>(vec3<u32>(clamp(sharp, vec3<f32>(0.0), vec3<f32>(255.0))), p.w));
}
