// Gaussian blur as two passes of f32 weights (the CPU backend's kernel, summed in the same
// order), and the box passes that stand in for it at large sigma (integer sums).
// Edges repeat the border pixel. params.a = (radius, premultiply on load,
// unpremultiply on store).

@group(0) @binding(3) var<storage, read> weights: array<f32>;

fn load(x: i32, y: i32) -> vec4<u32> {
    let cx = u32(clamp(x, 0, i32(src_width()) - 1));
    let cy = u32(clamp(y, 0, i32(src_height()) - 1));
    var p = unpack(src[cy * src_width() + cx]);
    if (params.a.y != 0) {
        p = premultiply(p);
    }
    return p;
}

fn store(id: vec3<u32>, p: vec4<u32>) {
    var out = p;
    if (params.a.z != 0) {
        out = unpremultiply(out);
    }
    dst[id.y * dst_width() + id.x] = pack(out);
}

fn gaussian(id: vec3<u32>, step: vec2<i32>) {
    if (id.x >= dst_width() || id.y >= dst_height()) {
        return;
    }
    let radius = params.a.x;
    var acc = vec4<f32>(0.0);
    for (var k = 0; k <= 2 * radius; k++) {
        let offset = step * (k - radius);
        acc += weights[k] * vec4<f32>(load(i32(id.x) + offset.x, i32(id.y) + offset.y));
    }
    store(id, vec4<u32>(clamp(acc + vec4<f32>(0.5), vec4<f32>(0.0), vec4<f32>(255.0))));
}

@compute @workgroup_size(16, 16)
fn gaussian_horizontal(@builtin(global_invocation_id) id: vec3<u32>) {
    gaussian(id, vec2<i32>(1, 0));
}

@compute @workgroup_size(16, 16)
fn gaussian_vertical(@builtin(global_invocation_id) id: vec3<u32>) {
    gaussian(id, vec2<i32>(0, 1));
}

fn box(id: vec3<u32>, step: vec2<i32>) {
    if (id.x >= dst_width() || id.y >= dst_height()) {
        return;
    }
    let radius = params.a.x;
    var sum = vec4<u32>(0u);
    for (var k = -radius; k <= radius; k++) {
        sum += load(i32(id.x) + step.x * k, i32(id.y) + step.y * k);
    }
    let window = u32(2 * radius + 1);
    store(id, (sum + vec4<u32>(u32(radius))) / window);
}

@compute @workgroup_size(16, 16)
fn box_horizontal(@builtin(global_invocation_id) id: vec3<u32>) {
    box(id, vec2<i32>(1, 0));
}

@compute @workgroup_size(16, 16)
fn box_vertical(@builtin(global_invocation_id) id: vec3<u32>) {
    box(id, vec2<i32>(0, 1));
}
