//! Shrink-on-load at 1/8 scale: a JPEG that the first step shrinks eight times or more is
//! decoded from its DC coefficients alone, one pixel per 8×8 block (what libjpeg's DCT
//! scaling does at 1/8, and how libvips makes thumbnails). A block's DC coefficient is the
//! exact mean of its pixels, so the small image is the full decode box-filtered by eight,
//! made without the inverse DCT, without full-size colour conversion and upsampling, and,
//! for progressive files, without reading the AC scans at all (most of their bytes).
//!
//! Baseline files still have every AC code read (the codes are variable-length, so the only
//! way past them), but none is stored. Anything this reader does not expect (arithmetic
//! coding, 12-bit samples, CMYK, RGB-coded files, a corrupt code) makes it step aside:
//! [`decode`] returns `None` and zune-jpeg decodes the file in full, and reports what is
//! wrong with it.

use crate::frame::{Frame, Layout};

/// The smallest shrink of the first step at which a JPEG is decoded at 1/8 scale.
const EIGHTH: f64 = 8.0;

/// Whether a first step that shrinks `shrink` times lets a JPEG decode at 1/8 scale.
pub(crate) fn applies(shrink: f64) -> bool {
    shrink >= EIGHTH
}

/// The size of an image `width`×`height` decoded at 1/8 scale: one pixel per block.
pub(crate) fn reduced_size(width: u32, height: u32) -> (u32, u32) {
    (width.div_ceil(8), height.div_ceil(8))
}

/// The image at 1/8 scale as RGB (grey files too, as the full decoder gives them), or
/// `None` where this reader steps aside for the full decoder.
pub(crate) fn decode(bytes: &[u8]) -> Option<Frame> {
    let mut reader = DcReader::default();
    reader.read(bytes)?;
    reader.into_frame()
}

/// One component of the frame: its sampling factors, quantisation table and the DC
/// coefficient of each block (shifted by the successive-approximation bit, if any).
struct Component {
    id: u8,
    horizontal: usize,
    vertical: usize,
    quant_table: usize,
    /// Blocks per row of the interleaved (MCU-padded) layout.
    blocks_wide: usize,
    /// Blocks a non-interleaved scan codes: those covering the component's own samples.
    coded_wide: usize,
    coded_high: usize,
    dc: Vec<i16>,
}

/// A Huffman table as canonical code ranges per length (JPEG's Annex C), with a lookup of
/// the codes up to [`LOOKUP_BITS`] long.
#[derive(Clone)]
struct Huffman {
    /// (length, symbol) for every LOOKUP_BITS-bit prefix; length 0 where the code is longer.
    lookup: Vec<(u8, u8)>,
    /// For each length 1..=16: the largest code of that length (-1 when none), and the
    /// index in `symbols` of that length's first code minus the code itself.
    max_code: [i32; 17],
    offset: [i32; 17],
    symbols: Vec<u8>,
}

const LOOKUP_BITS: u32 = 9;

impl Huffman {
    fn new(counts: &[u8; 16], symbols: &[u8]) -> Option<Huffman> {
        let mut lookup = vec![(0u8, 0u8); 1 << LOOKUP_BITS];
        let mut max_code = [-1i32; 17];
        let mut offset = [0i32; 17];
        let mut code = 0i32;
        let mut index = 0usize;
        for length in 1..=16usize {
            let count = usize::from(counts[length - 1]);
            offset[length] = index as i32 - code;
            for _ in 0..count {
                let symbol = *symbols.get(index)?;
                if length <= LOOKUP_BITS as usize {
                    let shift = LOOKUP_BITS as usize - length;
                    let first = (code as usize) << shift;
                    let entries = lookup.get_mut(first..first + (1 << shift))?;
                    entries.fill((length as u8, symbol));
                }
                code += 1;
                index += 1;
            }
            if count > 0 {
                max_code[length] = code - 1;
            }
            if code > 1 << length {
                return None; // more codes than the length allows
            }
            code <<= 1;
        }
        Some(Huffman {
            lookup,
            max_code,
            offset,
            symbols: symbols.get(..index)?.to_vec(),
        })
    }
}

/// Reads entropy-coded bits MSB first, removing stuffed zero bytes; at a marker it feeds
/// zeros and remembers that it ran past the data.
struct Bits<'a> {
    data: &'a [u8],
    at: usize,
    buffer: u64,
    count: u32,
    /// How many of the buffer's lowest bits are zeros fed past the data's end.
    padding: u32,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8], at: usize) -> Bits<'a> {
        Bits {
            data,
            at,
            buffer: 0,
            count: 0,
            padding: 0,
        }
    }

    fn refill(&mut self) {
        while self.count <= 56 {
            let byte = match self.data.get(self.at) {
                Some(&0xFF) if self.data.get(self.at + 1) == Some(&0x00) => {
                    self.at += 2;
                    0xFF
                }
                Some(&0xFF) | None => {
                    // A marker (or the end): zeros from here on.
                    self.count += 8;
                    self.padding += 8;
                    continue;
                }
                Some(&byte) => {
                    self.at += 1;
                    byte
                }
            };
            self.buffer |= u64::from(byte) << (56 - self.count);
            self.count += 8;
        }
    }

    /// Whether bits past the data's end were consumed: the data ended too soon.
    fn overrun(&self) -> bool {
        self.count < self.padding
    }

    fn peek(&mut self, bits: u32) -> u32 {
        if self.count < bits {
            self.refill();
        }
        (self.buffer >> (64 - bits)) as u32
    }

    fn skip(&mut self, bits: u32) {
        self.buffer <<= bits;
        self.count -= bits;
    }

    fn take(&mut self, bits: u32) -> u32 {
        if bits == 0 {
            return 0;
        }
        let value = self.peek(bits);
        self.skip(bits);
        value
    }

    fn decode(&mut self, table: &Huffman) -> Option<u8> {
        let prefix = self.peek(16);
        let (length, symbol) = table.lookup[(prefix >> (16 - LOOKUP_BITS)) as usize];
        if length > 0 {
            self.skip(u32::from(length));
            return Some(symbol);
        }
        for length in LOOKUP_BITS as usize + 1..=16 {
            let code = (prefix >> (16 - length)) as i32;
            if code <= table.max_code[length] {
                self.skip(length as u32);
                return table
                    .symbols
                    .get((code + table.offset[length]) as usize)
                    .copied();
            }
        }
        None // no code of up to 16 bits matches: corrupt data
    }

    /// A `size`-bit magnitude category's value (JPEG's EXTEND).
    fn signed(&mut self, size: u8) -> i32 {
        if size == 0 || size > 16 {
            return 0;
        }
        let value = self.take(u32::from(size)) as i32;
        if value < 1 << (size - 1) {
            value - (1 << size) + 1
        } else {
            value
        }
    }

    /// Drops the bits left in the current byte and the restart marker that must follow.
    fn restart(&mut self) -> Option<()> {
        // Bytes already pulled into the buffer are whole bytes of data before the marker.
        self.buffer = 0;
        self.count = 0;
        self.padding = 0;
        match (self.data.get(self.at), self.data.get(self.at + 1)) {
            (Some(0xFF), Some(0xD0..=0xD7)) => {
                self.at += 2;
                Some(())
            }
            _ => None,
        }
    }
}

/// The markers' state as the stream is read in order.
#[derive(Default)]
struct DcReader {
    width: usize,
    height: usize,
    progressive: bool,
    max_horizontal: usize,
    max_vertical: usize,
    components: Vec<Component>,
    quant_dc: [u16; 4],
    dc_tables: [Option<Huffman>; 4],
    ac_tables: [Option<Huffman>; 4],
    restart_interval: usize,
    adobe_transform: Option<u8>,
}

impl DcReader {
    /// Walks the markers, decoding each scan's DC coefficients; `None` where it steps aside.
    fn read(&mut self, bytes: &[u8]) -> Option<()> {
        let mut at = 2;
        loop {
            while bytes.get(at) == Some(&0xFF) && bytes.get(at + 1) == Some(&0xFF) {
                at += 1;
            }
            if *bytes.get(at)? != 0xFF {
                return None;
            }
            let marker = *bytes.get(at + 1)?;
            at += 2;
            if marker == 0xD9 {
                return (!self.components.is_empty()).then_some(());
            }
            if matches!(marker, 0x01 | 0xD0..=0xD7) {
                continue;
            }
            let length = usize::from(u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]));
            let body = bytes.get(at + 2..at.checked_add(length)?)?;
            at += length;
            match marker {
                0xC0 | 0xC1 => self.frame(body, false)?,
                0xC2 => self.frame(body, true)?,
                0xC3 | 0xC5..=0xCF => return None, // lossless, hierarchical, arithmetic
                0xC4 => self.huffman_tables(body)?,
                0xDB => self.quant_tables(body)?,
                0xDD => self.restart_interval = usize::from(read_u16(body, 0)?),
                0xEE if body.starts_with(b"Adobe") => self.adobe_transform = body.get(11).copied(),
                0xDA => at = self.scan(bytes, body, at)?,
                _ => {}
            }
        }
    }

    fn frame(&mut self, body: &[u8], progressive: bool) -> Option<()> {
        if !self.components.is_empty() || *body.first()? != 8 {
            return None; // a second frame, or not 8-bit samples
        }
        self.progressive = progressive;
        self.height = usize::from(read_u16(body, 1)?);
        self.width = usize::from(read_u16(body, 3)?);
        let count = usize::from(*body.get(5)?);
        if self.width == 0 || self.height == 0 || !matches!(count, 1 | 3) {
            return None;
        }
        let mut sampling = Vec::with_capacity(count);
        for index in 0..count {
            let spec = body.get(6 + 3 * index..9 + 3 * index)?;
            let (horizontal, vertical) = (usize::from(spec[1] >> 4), usize::from(spec[1] & 15));
            if !(1..=4).contains(&horizontal) || !(1..=4).contains(&vertical) || spec[2] > 3 {
                return None;
            }
            sampling.push((spec[0], horizontal, vertical, usize::from(spec[2])));
        }
        // One component is coded block by block whatever its factors say.
        if count == 1 {
            sampling[0].1 = 1;
            sampling[0].2 = 1;
        }
        self.max_horizontal = sampling.iter().map(|s| s.1).max()?;
        self.max_vertical = sampling.iter().map(|s| s.2).max()?;
        let mcus_wide = self.width.div_ceil(8 * self.max_horizontal);
        let mcus_high = self.height.div_ceil(8 * self.max_vertical);
        for (id, horizontal, vertical, quant_table) in sampling {
            let samples_wide = (self.width * horizontal).div_ceil(self.max_horizontal);
            let samples_high = (self.height * vertical).div_ceil(self.max_vertical);
            let (blocks_wide, blocks_high) = (mcus_wide * horizontal, mcus_high * vertical);
            self.components.push(Component {
                id,
                horizontal,
                vertical,
                quant_table,
                blocks_wide,
                coded_wide: samples_wide.div_ceil(8),
                coded_high: samples_high.div_ceil(8),
                dc: vec![0; blocks_wide.checked_mul(blocks_high)?],
            });
        }
        Some(())
    }

    fn huffman_tables(&mut self, mut body: &[u8]) -> Option<()> {
        while !body.is_empty() {
            let (class, slot) = (body[0] >> 4, usize::from(body[0] & 15));
            let counts: &[u8; 16] = body.get(1..17)?.try_into().ok()?;
            let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
            let table = Huffman::new(counts, body.get(17..17 + total)?)?;
            match class {
                0 => *self.dc_tables.get_mut(slot)? = Some(table),
                1 => *self.ac_tables.get_mut(slot)? = Some(table),
                _ => return None,
            }
            body = &body[17 + total..];
        }
        Some(())
    }

    fn quant_tables(&mut self, mut body: &[u8]) -> Option<()> {
        while !body.is_empty() {
            let (precision, slot) = (body[0] >> 4, usize::from(body[0] & 15));
            // Only the first entry (the DC step) matters here.
            let (dc, len) = match precision {
                0 => (u16::from(*body.get(1)?), 65),
                1 => (read_u16(body, 1)?, 129),
                _ => return None,
            };
            *self.quant_dc.get_mut(slot)? = dc;
            body = body.get(len..)?;
        }
        Some(())
    }

    /// Decodes one scan starting at `data`; returns where its entropy-coded data ends.
    fn scan(&mut self, bytes: &[u8], header: &[u8], data: usize) -> Option<usize> {
        let count = usize::from(*header.first()?);
        if count == 0 || count > self.components.len() {
            return None;
        }
        let mut members = Vec::with_capacity(count);
        for index in 0..count {
            let spec = header.get(1 + 2 * index..3 + 2 * index)?;
            let component = self.components.iter().position(|c| c.id == spec[0])?;
            let dc_table = self.dc_tables.get(usize::from(spec[1] >> 4))?.as_ref();
            let ac_table = self.ac_tables.get(usize::from(spec[1] & 15))?.as_ref();
            members.push((component, dc_table, ac_table));
        }
        let tail = header.get(1 + 2 * count..4 + 2 * count)?;
        let (first, last, successive) = (tail[0], tail[1], tail[2]);
        let (high, low) = (successive >> 4, u32::from(successive & 15));
        let end = super::jpeg_scans::entropy_data_end(bytes, data)?;
        if self.progressive && first > 0 {
            return Some(end); // AC bands: nothing in them shows at 1/8 scale
        }
        if self.progressive && last != 0 {
            return None; // DC and AC mixed in one progressive scan: invalid
        }
        let mut bits = Bits::new(bytes.get(..end)?, data);
        let mut predictions = [0i32; 4];
        let progressive = self.progressive;
        // Decodes one block of a member into `dc`.
        let block = |bits: &mut Bits, prediction: &mut i32, member: usize, dc: &mut i16| {
            let (_, dc_table, ac_table) = members[member];
            if !progressive {
                *dc = decode_dc(bits, dc_table?, prediction)? as i16;
                skip_ac(bits, ac_table?)
            } else if high == 0 {
                *dc = (decode_dc(bits, dc_table?, prediction)? << low) as i16;
                Some(())
            } else {
                if bits.take(1) == 1 {
                    *dc |= 1 << low;
                }
                Some(())
            }
        };
        let single = (members.len() == 1).then_some(members[0].0);
        let (mcus_wide, mcus_high) = match single {
            // A single-component scan codes the component's own blocks, one per unit.
            Some(only) => {
                let c = &self.components[only];
                (c.coded_wide, c.coded_high)
            }
            None => (
                self.width.div_ceil(8 * self.max_horizontal),
                self.height.div_ceil(8 * self.max_vertical),
            ),
        };
        let interval = self.restart_interval;
        for unit in 0..mcus_wide * mcus_high {
            if interval > 0 && unit > 0 && unit % interval == 0 {
                bits.restart()?;
                predictions = [0; 4];
            }
            let (mcu_x, mcu_y) = (unit % mcus_wide, unit / mcus_wide);
            if let Some(only) = single {
                let c = &mut self.components[only];
                let dc = c.dc.get_mut(mcu_y * c.blocks_wide + mcu_x)?;
                block(&mut bits, &mut predictions[0], 0, dc)?;
            } else {
                for (member, &(component, ..)) in members.iter().enumerate() {
                    let c = &mut self.components[component];
                    for v in 0..c.vertical {
                        for h in 0..c.horizontal {
                            let (x, y) = (mcu_x * c.horizontal + h, mcu_y * c.vertical + v);
                            let dc = c.dc.get_mut(y * c.blocks_wide + x)?;
                            block(&mut bits, &mut predictions[member], member, dc)?;
                        }
                    }
                }
            }
            if bits.overrun() {
                return None; // the scan's data ended before its blocks did
            }
        }
        Some(end)
    }

    /// The pixels: each block's mean (DC × step / 8 + 128), chroma placed by its sampling
    /// (bilinear, centred as the full decoder's upsampling is), JFIF YCbCr to RGB.
    fn into_frame(self) -> Option<Frame> {
        let (width, height) = reduced_size(self.width as u32, self.height as u32);
        let (width, height) = (width as usize, height as usize);
        let rgb_ids = self.components.iter().map(|c| c.id).eq(*b"RGB");
        if self.components.len() == 3 && (rgb_ids || self.adobe_transform.is_some_and(|t| t != 1)) {
            return None; // RGB coded as-is: the full decoder knows how
        }
        let planes: Vec<Vec<f32>> = self
            .components
            .iter()
            .map(|c| self.plane(c, width, height))
            .collect::<Option<_>>()?;
        let mut pixels = Vec::with_capacity(width * height * 3);
        let byte = |v: f32| v.round().clamp(0.0, 255.0) as u8;
        match planes.as_slice() {
            [grey] => pixels.extend(grey.iter().flat_map(|&y| [byte(y); 3])),
            [luma, blue, red] => {
                for ((&y, &cb), &cr) in luma.iter().zip(blue).zip(red) {
                    let (cb, cr) = (cb - 128.0, cr - 128.0);
                    pixels.push(byte(y + 1.402 * cr));
                    pixels.push(byte(y - 0.344_136 * cb - 0.714_136 * cr));
                    pixels.push(byte(y + 1.772 * cb));
                }
            }
            _ => return None,
        }
        Frame::new(width as u32, height as u32, Layout::Rgb8, pixels).ok()
    }

    /// One component's samples on the output grid (one pixel per luma block).
    fn plane(&self, c: &Component, width: usize, height: usize) -> Option<Vec<f32>> {
        let step = f32::from(*self.quant_dc.get(c.quant_table)?);
        let level = |x: usize, y: usize| {
            let x = x.min(c.coded_wide - 1);
            let y = y.min(c.coded_high - 1);
            let dc = c.dc.get(y * c.blocks_wide + x).copied().unwrap_or(0);
            f32::from(dc) * step / 8.0 + 128.0
        };
        let (scale_x, scale_y) = (
            c.horizontal as f32 / self.max_horizontal as f32,
            c.vertical as f32 / self.max_vertical as f32,
        );
        if c.coded_wide == 0 || c.coded_high == 0 {
            return None;
        }
        // Where each output pixel's centre falls on the component's block grid.
        let taps = |count: usize, scale: f32, limit: usize| -> Vec<(usize, usize, f32)> {
            (0..count)
                .map(|i| {
                    let at = ((i as f32 + 0.5) * scale - 0.5).max(0.0);
                    let low = (at as usize).min(limit - 1);
                    (low, (low + 1).min(limit - 1), at - low as f32)
                })
                .collect()
        };
        let columns = taps(width, scale_x, c.coded_wide);
        let rows = taps(height, scale_y, c.coded_high);
        let mut plane = Vec::with_capacity(width * height);
        for &(top, bottom, fy) in &rows {
            for &(left, right, fx) in &columns {
                let upper = level(left, top) * (1.0 - fx) + level(right, top) * fx;
                let lower = level(left, bottom) * (1.0 - fx) + level(right, bottom) * fx;
                plane.push(upper * (1.0 - fy) + lower * fy);
            }
        }
        Some(plane)
    }
}

fn decode_dc(bits: &mut Bits, table: &Huffman, prediction: &mut i32) -> Option<i32> {
    let size = bits.decode(table)?;
    if size > 11 {
        return None;
    }
    *prediction = prediction.wrapping_add(bits.signed(size));
    Some(*prediction)
}

/// Reads past a block's 63 AC coefficients.
fn skip_ac(bits: &mut Bits, table: &Huffman) -> Option<()> {
    let mut k = 1;
    while k < 64 {
        let symbol = bits.decode(table)?;
        let (run, size) = (symbol >> 4, u32::from(symbol & 15));
        if size == 0 {
            if run != 15 {
                return Some(()); // end of block
            }
            k += 16;
        } else {
            k += usize::from(run) + 1;
            bits.take(size);
        }
    }
    Some(())
}

fn read_u16(body: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*body.get(at)?, *body.get(at + 1)?]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jpeg_encoder::{ColorType, Encoder, SamplingFactor};

    fn fixture(path: &str) -> Vec<u8> {
        let path = format!("{}/../fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// The full decode (zune-jpeg), each 8×8 block averaged: what the DC coefficients hold.
    fn full_decode_box_filtered(bytes: &[u8]) -> Frame {
        let info = super::super::jpeg::probe(bytes).expect("probe");
        let full = super::super::jpeg::decode(bytes, &info, 1.0)
            .expect("full decode")
            .frame;
        let (width, height) = (full.width() as usize, full.height() as usize);
        let (small_width, small_height) = reduced_size(width as u32, height as u32);
        let mut pixels = Vec::new();
        for by in 0..small_height as usize {
            for bx in 0..small_width as usize {
                let mut sum = [0u32; 3];
                let mut count = 0;
                for y in by * 8..(by * 8 + 8).min(height) {
                    for x in bx * 8..(bx * 8 + 8).min(width) {
                        let at = (y * width + x) * 3;
                        for (s, &v) in sum.iter_mut().zip(&full.data()[at..at + 3]) {
                            *s += u32::from(v);
                        }
                        count += 1;
                    }
                }
                pixels.extend(sum.map(|s| ((s + count / 2) / count) as u8));
            }
        }
        Frame::new(small_width, small_height, Layout::Rgb8, pixels).expect("frame")
    }

    fn psnr(a: &Frame, b: &Frame) -> f64 {
        assert_eq!((a.width(), a.height()), (b.width(), b.height()));
        let squared: f64 = a
            .data()
            .iter()
            .zip(b.data())
            .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
            .sum();
        let mse = squared / a.data().len() as f64;
        10.0 * (255.0f64.powi(2) / mse.max(1e-9)).log10()
    }

    /// A noisy gradient encoded with the given settings.
    fn encoded(
        width: u16,
        height: u16,
        colour: ColorType,
        setup: impl Fn(&mut Encoder<&mut Vec<u8>>),
    ) -> Vec<u8> {
        let channels = if colour == ColorType::Luma { 1 } else { 3 };
        let pixels: Vec<u8> = (0..usize::from(width) * usize::from(height) * channels)
            .map(|i| {
                let (x, y) = (
                    (i / channels) % usize::from(width),
                    (i / channels) / usize::from(width),
                );
                (x * 255 / usize::from(width)) as u8 / 3
                    + (y * 97 % 64) as u8
                    + (i * 31 % 17) as u8
                    + (i % channels * 40) as u8
            })
            .collect();
        let mut out = Vec::new();
        let mut encoder = Encoder::new(&mut out, 90);
        setup(&mut encoder);
        encoder
            .encode(&pixels, width, height, colour)
            .expect("encode");
        out
    }

    #[test]
    fn matches_the_full_decode_averaged_over_each_block() {
        let mut cases: Vec<(String, Vec<u8>)> = [
            "photos/dragonfly-12mp.jpg",    // progressive 4:2:0
            "photos/dragonfly-1280.jpg",    // baseline
            "libjpeg-turbo/testorig.jpg",   // baseline, odd size
            "libjpeg-turbo/testimgint.jpg", // restart intervals
            "exif-orientation/Landscape_5.jpg",
            "colour/grey-lstar.jpg",
        ]
        .iter()
        .map(|path| (path.to_string(), fixture(path)))
        .collect();
        for (name, sampling) in [
            ("4:4:4", SamplingFactor::R_4_4_4),
            ("4:2:2", SamplingFactor::R_4_2_2),
            ("4:2:0", SamplingFactor::R_4_2_0),
            ("4:4:0", SamplingFactor::R_4_4_0),
        ] {
            for progressive in [false, true] {
                cases.push((
                    format!("{name} progressive={progressive} restart=3"),
                    encoded(203, 117, ColorType::Rgb, |e| {
                        e.set_sampling_factor(sampling);
                        e.set_progressive(progressive);
                        e.set_restart_interval(3);
                    }),
                ));
            }
        }
        cases.push((
            "grey progressive".into(),
            encoded(99, 250, ColorType::Luma, |e| e.set_progressive(true)),
        ));
        // Photos score 45-56 dB, the generated files 39-45; lowest is libjpeg's test image
        // (sharp saturated edges, 29x19 pixels at 1/8) at 28.9 dB.
        for (name, bytes) in &cases {
            let eighth = decode(bytes).unwrap_or_else(|| panic!("{name}: stepped aside"));
            let expected = full_decode_box_filtered(bytes);
            let quality = psnr(&eighth, &expected);
            assert!(
                quality >= 27.0,
                "{name}: {quality:.1} dB from the full decode averaged"
            );
        }
    }

    #[test]
    fn steps_aside_for_what_it_does_not_read() {
        for path in [
            "libjpeg-turbo/monkey12.jpg",   // 12-bit samples
            "libjpeg-turbo/testimgari.jpg", // arithmetic coding
            "colour/cmyk-fogra39.jpg",      // four components
        ] {
            assert!(decode(&fixture(path)).is_none(), "{path}");
        }
    }

    #[test]
    fn cut_or_corrupt_data_never_panics() {
        for path in ["libjpeg-turbo/testimgint.jpg", "photos/dragonfly-1280.jpg"] {
            let bytes = fixture(path);
            for cut in (0..bytes.len()).step_by(97) {
                let _ = decode(&bytes[..cut]);
            }
            for at in (0..bytes.len()).step_by(53) {
                let mut corrupt = bytes.clone();
                corrupt[at] ^= 0x5A;
                let _ = decode(&corrupt);
            }
        }
    }
}
