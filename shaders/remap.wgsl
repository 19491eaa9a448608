// Crop, rotate, flip and EXIF orientation: every destination pixel copies one source pixel
// at an integer affine position. params.a = (ax, bx, cx), params.b = (ay, by, cy):
// source x = ax * x + bx * y + cx, source y = ay * x + by * y + cy.

@compute @workgroup_size(16, 16)
fn remap(@builtin(global_invocation_id) id: vec3<u32>) {
    if (id.x >= dst_width() || id.y >= dst_height()) {
        return;
    }
    let x = i32(id.x);
    let y = i32(id.y);
    let sx = params.a.x * x + params.a.y * y + params.a.z;
    let sy = params.b.x * x + params.b.y * y + params.b.z;
    dst[id.y * dst_width() + id.x] = src[u32(sy) * src_width() + u32(sx)];
}
