//! Pixelation: every `size`×`size` block takes its average colour.

use super::alpha::with_premultiplied;
use crate::frame::Frame;

pub fn pixelate(frame: &mut Frame, size: u32) {
    with_premultiplied(frame, |frame| average_blocks(frame, size as usize));
}

fn average_blocks(frame: &mut Frame, size: usize) {
    let (width, height) = (frame.width() as usize, frame.height() as usize);
    let bpp = frame.bytes_per_pixel();
    let stride = frame.stride();
    let data = frame.data_mut();
    for block_y in (0..height).step_by(size) {
        let rows = block_y..(block_y + size).min(height);
        for block_x in (0..width).step_by(size) {
            let columns = block_x * bpp..(block_x + size).min(width) * bpp;
            let mut sums = [0u64; 4];
            for y in rows.clone() {
                for px in data[y * stride..][columns.clone()].chunks_exact(bpp) {
                    for (sum, &v) in sums.iter_mut().zip(px) {
                        *sum += u64::from(v);
                    }
                }
            }
            let count = (rows.len() * columns.len() / bpp) as u64;
            let mean = sums.map(|s| ((s + count / 2) / count) as u8);
            for y in rows.clone() {
                for px in data[y * stride..][columns.clone()].chunks_exact_mut(bpp) {
                    px.copy_from_slice(&mean[..bpp]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Layout;

    #[test]
    fn averages_blocks_including_the_ragged_edge() {
        // 3×1 gray row, blocks of 2: [10, 20] -> 15, [90] -> 90.
        let data = [10u8, 20, 90].iter().flat_map(|&v| [v, v, v]).collect();
        let mut frame = Frame::new(3, 1, Layout::Rgb8, data).unwrap();
        pixelate(&mut frame, 2);
        let got: Vec<u8> = frame.data().chunks_exact(3).map(|p| p[0]).collect();
        assert_eq!(got, vec![15, 15, 90]);
    }
}
