//! Shrink-on-load for JPEG: when the first step shrinks the image more than three, eight or
//! twenty-four times, it is decoded at 1/2, 1/4 or 1/8 scale ([`SCALES`]) straight from its DCT
//! coefficients, as libjpeg's DCT scaling does (and libvips with it). Each 8×8 block becomes
//! 4×4, 2×2 or 1×1 pixels through a reduced inverse DCT of its lowest frequencies, so the
//! inverse DCT, upsampling and colour conversion work on the small image, and only the small
//! image and the coefficients that can show in it are held: a 24 MP progressive photo at 1/2
//! scale keeps about 23 MB of coefficients where the full decode keeps 72 MB and a 72 MB frame
//! besides.
//!
//! At 1/8 a block's one pixel is its DC coefficient, the exact mean of its pixels: the AC
//! scans of a progressive file are not read at all. Baseline files (and progressive ones at
//! 1/2 and 1/4) still have every Huffman code read, since codes are variable-length and the
//! refinement scans need to know which coefficients are non-zero, but only the low ones are
//! kept. Anything this reader does not expect (arithmetic coding, 12-bit samples, CMYK,
//! RGB-coded files, a corrupt code) makes it step aside: [`decode`] returns `None` and
//! zune-jpeg decodes the file in full, and reports what is wrong with it.

use crate::frame::{Frame, Layout};

/// Pixels per block side at each scale a shrink picks, from the smallest image up, with the
/// shrink of the first step it takes more than. Chosen by `scripts/fidelity.py` (each thumbnail
/// against an ideal one: full decode, Lanczos to the same size; README "Fidelity"), so that
/// the resampler always has more than twice the reduction left, and more than three times
/// after 1/8:
/// - 1/8 from a shrink of sixteen (libvips' rule) left one corpus photo (17.6 times to 320 px)
///   1.8 dB below vipsthumbnail, and from eight (the rule before) the mean at 320 px was
///   42.4 dB against vipsthumbnail's 47.3, with one photo 15.7 dB below;
/// - 1/4 from exactly eight left eleven photos that shrink exactly 8 times up to 7.1 dB below;
/// - 1/2 from three holds (worst 0.3 dB below at 1280 px) once no refinement scan is dropped
///   (`jpeg_scans`).
const SCALES: [(usize, f64); 3] = [(1, 24.0), (2, 8.0), (4, 3.0)];

/// Pixels per block side (1, 2 or 4) for a first step that shrinks `shrink` times; `None` when
/// it shrinks three times or less, and the file decodes at full size.
pub(crate) fn block_side(shrink: f64) -> Option<usize> {
    SCALES
        .iter()
        .find(|&&(_, beyond)| shrink > beyond)
        .map(|&(side, _)| side)
}

/// The size of an image `width`×`height` decoded with `side` pixels per block side.
pub(crate) fn reduced_size(width: u32, height: u32, side: usize) -> (u32, u32) {
    let scale = |length: u32| (u64::from(length) * side as u64).div_ceil(8) as u32;
    (scale(width), scale(height))
}

/// The image decoded with `side` (1, 2 or 4) pixels per block side, as RGB (grey files
/// too, as the full decoder gives them), or `None` where this reader steps aside.
pub(crate) fn decode(bytes: &[u8], side: usize) -> Option<Frame> {
    if !matches!(side, 1 | 2 | 4) {
        return None;
    }
    let mut reader = ScaledReader {
        side,
        ..ScaledReader::default()
    };
    reader.read(bytes)?;
    reader.into_frame()
}

/// Zig-zag position to natural (row-major) position in an 8×8 block.
const NATURAL_ORDER: [u8; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

/// Where the coefficient at each zig-zag position is kept in a `side`×`side` block of low
/// frequencies, or `None` when it cannot show at that scale.
fn kept_slots(side: usize) -> [Option<u8>; 64] {
    let mut slots = [None; 64];
    for (slot, &natural) in slots.iter_mut().zip(&NATURAL_ORDER) {
        let (row, column) = (usize::from(natural) / 8, usize::from(natural) % 8);
        if row < side && column < side {
            *slot = Some((row * side + column) as u8);
        }
    }
    slots
}

/// One component of the frame: its sampling factors, quantisation table, and either its
/// pixels (baseline: each block is transformed as soon as it is read) or its low-frequency
/// coefficients (progressive: transformed once every scan has been read).
struct Component {
    id: u8,
    horizontal: usize,
    vertical: usize,
    quant_table: usize,
    /// Blocks per row of the interleaved (MCU-padded) layout, and rows of blocks.
    blocks_wide: usize,
    blocks_high: usize,
    /// Blocks a non-interleaved scan codes: those covering the component's own samples.
    coded_wide: usize,
    coded_high: usize,
    /// `side`² coefficients per block, natural order, not yet dequantised.
    coefficients: Vec<i16>,
    /// Per block, which zig-zag positions are non-zero (progressive refinement needs all 63).
    non_zero: Vec<u64>,
    /// `side` pixels per block side, `blocks_wide * side` per row (baseline only).
    samples: Vec<u8>,
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
struct ScaledReader {
    side: usize,
    width: usize,
    height: usize,
    progressive: bool,
    max_horizontal: usize,
    max_vertical: usize,
    components: Vec<Component>,
    quant: [QuantTable; 4],
    dc_tables: [Option<Huffman>; 4],
    ac_tables: [Option<Huffman>; 4],
    restart_interval: usize,
    adobe_transform: Option<u8>,
}

/// Quantisation steps in zig-zag order.
#[derive(Clone, Copy)]
struct QuantTable([u16; 64]);

impl Default for QuantTable {
    fn default() -> QuantTable {
        QuantTable([0; 64])
    }
}

/// What one scan decodes, fixed for all its blocks.
struct ScanKind {
    progressive: bool,
    first: usize,
    last: usize,
    high: u8,
    low: u32,
}

impl ScaledReader {
    /// Walks the markers, decoding each scan; `None` where it steps aside.
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
            let length = usize::from(read_u16(bytes, at)?);
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
        let side = self.side;
        for (id, horizontal, vertical, quant_table) in sampling {
            let samples_wide = (self.width * horizontal).div_ceil(self.max_horizontal);
            let samples_high = (self.height * vertical).div_ceil(self.max_vertical);
            let (blocks_wide, blocks_high) = (mcus_wide * horizontal, mcus_high * vertical);
            let blocks = blocks_wide.checked_mul(blocks_high)?;
            let mut component = Component {
                id,
                horizontal,
                vertical,
                quant_table,
                blocks_wide,
                blocks_high,
                coded_wide: samples_wide.div_ceil(8),
                coded_high: samples_high.div_ceil(8),
                coefficients: Vec::new(),
                non_zero: Vec::new(),
                samples: Vec::new(),
            };
            if progressive {
                component.coefficients = vec![0; blocks.checked_mul(side * side)?];
                if side > 1 {
                    component.non_zero = vec![0; blocks];
                }
            } else {
                component.samples = vec![0; blocks.checked_mul(side * side)?];
            }
            self.components.push(component);
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
            let QuantTable(table) = self.quant.get_mut(slot)?;
            let len = match precision {
                0 => {
                    for (step, &value) in table.iter_mut().zip(body.get(1..65)?) {
                        *step = u16::from(value);
                    }
                    65
                }
                1 => {
                    for (index, step) in table.iter_mut().enumerate() {
                        *step = read_u16(body, 1 + 2 * index)?;
                    }
                    129
                }
                _ => return None,
            };
            body = body.get(len..)?;
        }
        Some(())
    }

    /// Decodes one scan starting at `data`; returns where its entropy-coded data ends.
    fn scan(&mut self, bytes: &[u8], header: &[u8], data: usize) -> Option<usize> {
        let count = usize::from(*header.first()?);
        if count == 0 || count > self.components.len() || self.coded_as_rgb() {
            return None;
        }
        let mut members = Vec::with_capacity(count);
        for index in 0..count {
            let spec = header.get(1 + 2 * index..3 + 2 * index)?;
            let component = self.components.iter().position(|c| c.id == spec[0])?;
            let dc_table = self.dc_tables.get(usize::from(spec[1] >> 4))?.clone();
            let ac_table = self.ac_tables.get(usize::from(spec[1] & 15))?.clone();
            members.push((component, dc_table, ac_table));
        }
        let tail = header.get(1 + 2 * count..4 + 2 * count)?;
        let kind = ScanKind {
            progressive: self.progressive,
            first: usize::from(tail[0]),
            last: usize::from(tail[1]),
            high: tail[2] >> 4,
            low: u32::from(tail[2] & 15),
        };
        let end = super::jpeg_scans::entropy_data_end(bytes, data)?;
        if kind.progressive {
            let is_ac = kind.first > 0;
            if is_ac && self.side == 1 {
                return Some(end); // AC bands: nothing in them shows at 1/8 scale
            }
            // A DC scan has no AC; an AC scan one component and a band within 1..=63.
            let valid = if is_ac {
                count == 1 && kind.first <= kind.last && kind.last < 64
            } else {
                kind.last == 0
            };
            if !valid || kind.low > 13 {
                return None;
            }
        }
        let side = self.side;
        let slots = kept_slots(side);
        let basis = idct_basis(side);
        let idct = inverse_dct_for(side);
        let steps = members
            .iter()
            .map(|&(component, ..)| {
                let table = self.quant.get(self.components[component].quant_table)?;
                Some(dequantisation(&table.0, &slots))
            })
            .collect::<Option<Vec<_>>>()?;
        let mut bits = Bits::new(bytes.get(..end)?, data);
        let mut predictions = [0i32; 4];
        // A progressive AC scan codes one component, with the member's AC table.
        let mut band = match &members[..] {
            [(_, _, Some(table))] if kind.progressive && kind.first > 0 => Some(AcBand {
                table,
                kind: &kind,
                slots: &slots,
                eob_run: 0,
            }),
            _ => None,
        };
        let mut block = [0i32; 16];
        let single = (members.len() == 1).then_some(members[0].0);
        let (units_wide, units_high) = match single {
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
        // Counted down rather than found by division: a division per block is a measurable
        // share of a progressive file's many scans.
        let mut until_restart = interval;
        let units = (0..units_high).flat_map(|y| (0..units_wide).map(move |x| (x, y)));
        for (unit_x, unit_y) in units {
            if interval > 0 {
                if until_restart == 0 {
                    bits.restart()?;
                    predictions = [0; 4];
                    if let Some(band) = &mut band {
                        band.eob_run = 0;
                    }
                    until_restart = interval;
                }
                until_restart -= 1;
            }
            for (member, (component, dc_table, ac_table)) in members.iter().enumerate() {
                let c = &mut self.components[*component];
                let (across, down) = match single {
                    Some(_) => (1, 1),
                    None => (c.horizontal, c.vertical),
                };
                for v in 0..down {
                    for h in 0..across {
                        let (x, y) = (unit_x * across + h, unit_y * down + v);
                        let index = y * c.blocks_wide + x;
                        if y >= c.blocks_high {
                            return None;
                        }
                        if !kind.progressive {
                            block.fill(0);
                            let dc =
                                decode_dc(&mut bits, dc_table.as_ref()?, &mut predictions[member])?;
                            block[0] = dc;
                            read_ac(&mut bits, ac_table.as_ref()?, &slots, &mut block)?;
                            let coefficients = dequantised(&block, &steps[member]);
                            let stride = c.blocks_wide * side;
                            let at = (x * side, y * side);
                            idct(&coefficients, &basis, &mut c.samples, stride, at)?;
                        } else if kind.first == 0 {
                            let coefficients = c.coefficients.get_mut(index * side * side..)?;
                            if kind.high == 0 {
                                let dc = decode_dc(
                                    &mut bits,
                                    dc_table.as_ref()?,
                                    &mut predictions[member],
                                )?;
                                coefficients[0] = (dc << kind.low) as i16;
                            } else if bits.take(1) == 1 {
                                coefficients[0] |= 1 << kind.low;
                            }
                        } else {
                            let coefficients = c
                                .coefficients
                                .get_mut(index * side * side..(index + 1) * side * side)?;
                            let non_zero = c.non_zero.get_mut(index)?;
                            let block = BandBlock {
                                coefficients,
                                non_zero,
                            };
                            let band = band.as_mut()?;
                            if kind.high == 0 {
                                band.first(&mut bits, block)?;
                            } else {
                                band.refine(&mut bits, block)?;
                            }
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

    /// Whether three components hold R, G and B as they are rather than YCbCr (by their ids,
    /// or an Adobe marker's transform): the full decoder knows how, so this reader steps
    /// aside before reading any scan.
    fn coded_as_rgb(&self) -> bool {
        let rgb_ids = self.components.iter().map(|c| c.id).eq(*b"RGB");
        self.components.len() == 3 && (rgb_ids || self.adobe_transform.is_some_and(|t| t != 1))
    }

    /// The pixels: progressive coefficients transformed, chroma placed by its sampling
    /// (bilinear, centred as the full decoder's upsampling is), JFIF YCbCr to RGB.
    fn into_frame(mut self) -> Option<Frame> {
        if self.coded_as_rgb() {
            return None; // an Adobe marker after the first scan said so
        }
        let side = self.side;
        if self.progressive {
            let slots = kept_slots(side);
            let basis = idct_basis(side);
            let idct = inverse_dct_for(side);
            for c in &mut self.components {
                let steps = dequantisation(&self.quant.get(c.quant_table)?.0, &slots);
                let stride = c.blocks_wide * side;
                c.samples = vec![0; c.coefficients.len()];
                let mut block = [0i32; 16];
                for (index, stored) in c.coefficients.chunks_exact(side * side).enumerate() {
                    for (value, &coefficient) in block.iter_mut().zip(stored) {
                        *value = i32::from(coefficient);
                    }
                    let at = (
                        (index % c.blocks_wide) * side,
                        (index / c.blocks_wide) * side,
                    );
                    idct(
                        &dequantised(&block, &steps),
                        &basis,
                        &mut c.samples,
                        stride,
                        at,
                    )?;
                }
                c.coefficients = Vec::new();
                c.non_zero = Vec::new();
            }
        }
        let (width, height) = reduced_size(self.width as u32, self.height as u32, side);
        let (width, height) = (width as usize, height as usize);
        let planes: Vec<Plane> = self
            .components
            .iter()
            .map(|c| {
                Plane::new(
                    c,
                    side,
                    self.max_horizontal,
                    self.max_vertical,
                    width,
                    height,
                )
            })
            .collect();
        let mut pixels = vec![0u8; width * height * 3];
        let mut rows = vec![vec![0f32; width]; planes.len()];
        // R, G and B of one row, converted a channel at a time (which vectorises) and only
        // then interleaved.
        let mut channels = [vec![0u8; width], vec![0u8; width], vec![0u8; width]];
        let mut blended = Vec::new();
        for (y, out) in pixels.chunks_exact_mut(width * 3).enumerate() {
            for (plane, row) in planes.iter().zip(&mut rows) {
                plane.row(y, &mut blended, row);
            }
            let [red_row, green_row, blue_row] = &mut channels;
            match rows.as_slice() {
                [grey] => {
                    for (pixel, &y) in out.chunks_exact_mut(3).zip(grey) {
                        pixel.fill(to_byte(y));
                    }
                    continue;
                }
                [luma, blue, red] => {
                    let samples = luma.iter().zip(blue).zip(red);
                    let bytes = red_row
                        .iter_mut()
                        .zip(green_row.iter_mut())
                        .zip(blue_row.iter_mut());
                    for (((r, g), b), ((&y, &cb), &cr)) in bytes.zip(samples) {
                        let (cb, cr) = (cb - 128.0, cr - 128.0);
                        *r = to_byte(y + 1.402 * cr);
                        *g = to_byte(y - 0.344_136 * cb - 0.714_136 * cr);
                        *b = to_byte(y + 1.772 * cb);
                    }
                }
                _ => return None,
            }
            let bytes = red_row.iter().zip(green_row.iter()).zip(blue_row.iter());
            for (pixel, ((&r, &g), &b)) in out.chunks_exact_mut(3).zip(bytes) {
                pixel.copy_from_slice(&[r, g, b]);
            }
        }
        Frame::new(width as u32, height as u32, Layout::Rgb8, pixels).ok()
    }
}

/// A sample rounded to a byte: truncation after adding a half, as `f32::round` is a library
/// call on x86-64 and would keep the loops from vectorising.
fn to_byte(value: f32) -> u8 {
    truncated_byte(value + 0.5)
}

/// `value` clamped to 0-255 and truncated. The conversion is written so that loops of it
/// vectorise: `as u8` saturates, which x86-64 does one value at a time (a third of the
/// colour conversion's time); clamped first, the unchecked conversion is one instruction per
/// four values. `max` and `min` return the bound for NaN, so nothing out of range reaches it.
#[allow(clippy::manual_clamp)] // `clamp` passes NaN through, and the conversion must not see it
fn truncated_byte(value: f32) -> u8 {
    let clamped = value.max(0.0).min(255.0);
    // SAFETY: `clamped` is finite and within 0-255, which an i32 holds.
    let whole: i32 = unsafe { clamped.to_int_unchecked() };
    whole as u8
}

/// A component's samples placed on the output grid.
struct Plane<'a> {
    samples: &'a [u8],
    stride: usize,
    /// For each output column (row): the two neighbouring samples and the weight of the second.
    columns: Vec<(usize, usize, f32)>,
    rows: Vec<(usize, usize, f32)>,
    /// Whether output columns are the samples themselves (the component is not subsampled
    /// across), which skips the horizontal interpolation.
    columns_are_samples: bool,
    /// Whether there are two output columns per sample (4:2:0, 4:2:2): then away from the
    /// edges the columns follow a fixed pattern, computed without looking up each one's taps.
    columns_doubled: bool,
}

impl<'a> Plane<'a> {
    fn new(
        c: &'a Component,
        side: usize,
        max_horizontal: usize,
        max_vertical: usize,
        width: usize,
        height: usize,
    ) -> Plane<'a> {
        // Where each output pixel's centre falls on the component's sample grid.
        let taps = |count: usize, factor: usize, max: usize, limit: usize| {
            let scale = factor as f32 / max as f32;
            (0..count)
                .map(|i| {
                    let at = ((i as f32 + 0.5) * scale - 0.5).max(0.0);
                    let low = (at as usize).min(limit.max(1) - 1);
                    (low, (low + 1).min(limit.max(1) - 1), at - low as f32)
                })
                .collect::<Vec<_>>()
        };
        let columns = taps(width, c.horizontal, max_horizontal, c.coded_wide * side);
        let columns_are_samples = columns
            .iter()
            .enumerate()
            .all(|(x, &(left, _, weight))| left == x && weight == 0.0);
        Plane {
            samples: &c.samples,
            stride: c.blocks_wide * side,
            columns,
            rows: taps(height, c.vertical, max_vertical, c.coded_high * side),
            columns_are_samples,
            columns_doubled: 2 * c.horizontal == max_horizontal,
        }
    }

    /// Output row `y` into `out`; `blended` is scratch for the two sample rows mixed.
    fn row(&self, y: usize, blended: &mut Vec<f32>, out: &mut [f32]) {
        let (top, bottom, weight) = self.rows[y];
        let sample_row = |row: usize| {
            self.samples
                .get(row * self.stride..(row + 1) * self.stride)
                .unwrap_or_default()
        };
        let (upper, lower) = (sample_row(top), sample_row(bottom));
        // Between the two rows first, on the component's own (narrower) grid.
        blended.clear();
        blended.extend(
            upper
                .iter()
                .zip(lower)
                .map(|(&a, &b)| f32::from(a) * (1.0 - weight) + f32::from(b) * weight),
        );
        if self.columns_are_samples && blended.len() >= out.len() {
            out.copy_from_slice(&blended[..out.len()]);
            return;
        }
        // Output columns 2k and 2k+1 lie a quarter of a sample either side of sample k:
        // 1:3 between samples k-1 and k, and 3:1 between k and k+1, exactly as their taps
        // say, for every k from 1 whose k+1 is a sample the taps may reach.
        let mut placed = 0;
        if self.columns_doubled
            && let Some(&(_, reach, _)) = self.columns.last()
            && let (Some(middle), Some(samples)) = (out.get_mut(2..), blended.get(..=reach))
        {
            for (pair, near) in middle.chunks_exact_mut(2).zip(samples.windows(3)) {
                pair[0] = near[0] * 0.25 + near[1] * 0.75;
                pair[1] = near[1] * 0.75 + near[2] * 0.25;
                placed += 2;
            }
        }
        let sample = |column: usize| blended.get(column).copied().unwrap_or(128.0);
        let (head, rest) = self.columns.split_at(self.columns.len().min(2));
        let tail = rest.get(placed..).unwrap_or_default();
        let taps = head.iter().enumerate().chain((2 + placed..).zip(tail));
        for (x, &(left, right, weight)) in taps {
            if let Some(value) = out.get_mut(x) {
                *value = sample(left) * (1.0 - weight) + sample(right) * weight;
            }
        }
    }
}

/// Each kept coefficient's quantisation step, in the block's slot order.
fn dequantisation(quant: &[u16; 64], slots: &[Option<u8>; 64]) -> [f32; 16] {
    let mut steps = [0f32; 16];
    for (&step, slot) in quant.iter().zip(slots) {
        if let Some(slot) = slot {
            steps[usize::from(*slot)] = f32::from(step);
        }
    }
    steps
}

/// The reduced inverse DCT: `SIDE`×`SIDE` pixels from as many lowest frequencies (already
/// dequantised), written at `at` (x, y) into `samples`. Each pixel is the 8-point transform
/// evaluated at the centre of the pixels it stands for, as libjpeg's reduced transforms are.
fn inverse_dct<const SIDE: usize>(
    coefficients: &[f32; 16],
    basis: &[f32; 16],
    samples: &mut [u8],
    stride: usize,
    (x0, y0): (usize, usize),
) -> Option<()> {
    // Rows of frequencies to rows of pixels, then down the columns; each step adds one
    // frequency's basis row to a whole row at once, which the compiler turns into vector
    // arithmetic (the usual sum per pixel over frequencies does not vectorise).
    let mut horizontal = [[0f32; SIDE]; SIDE];
    for (v, row) in horizontal.iter_mut().enumerate() {
        for u in 0..SIDE {
            let coefficient = coefficients[v * SIDE + u];
            for (value, &weight) in row.iter_mut().zip(&basis[u * SIDE..(u + 1) * SIDE]) {
                *value += coefficient * weight;
            }
        }
    }
    for y in 0..SIDE {
        let mut pixels = [128.5f32; SIDE]; // level shift, and rounding for the truncation below
        for (v, row) in horizontal.iter().enumerate() {
            let weight = basis[v * SIDE + y];
            for (value, &term) in pixels.iter_mut().zip(row) {
                *value += weight * term;
            }
        }
        let start = (y0 + y) * stride + x0;
        let out = samples.get_mut(start..start + SIDE)?;
        for (pixel, value) in out.iter_mut().zip(pixels) {
            *pixel = truncated_byte(value);
        }
    }
    Some(())
}

/// [`inverse_dct`] for `side`, chosen once per image.
type InverseDct = fn(&[f32; 16], &[f32; 16], &mut [u8], usize, (usize, usize)) -> Option<()>;

fn inverse_dct_for(side: usize) -> InverseDct {
    match side {
        1 => inverse_dct::<1>,
        2 => inverse_dct::<2>,
        _ => inverse_dct::<4>,
    }
}

/// Dequantises a block's kept coefficients.
fn dequantised(block: &[i32; 16], steps: &[f32; 16]) -> [f32; 16] {
    let mut coefficients = [0f32; 16];
    for ((value, &coefficient), &step) in coefficients.iter_mut().zip(block).zip(steps) {
        *value = coefficient as f32 * step;
    }
    coefficients
}

/// The reduced transform's basis, `[u * side + x]`: C(u)/2 · cos((2x+1)uπ / 2·side), where
/// C(0) = 1/√2 and C(u) = 1 otherwise.
fn idct_basis(side: usize) -> [f32; 16] {
    let mut basis = [0f32; 16];
    for x in 0..side {
        for u in 0..side {
            let weight = if u == 0 {
                std::f32::consts::FRAC_1_SQRT_2
            } else {
                1.0
            } / 2.0;
            let angle = ((2 * x + 1) * u) as f32 * std::f32::consts::PI / (2 * side) as f32;
            basis[u * side + x] = weight * angle.cos();
        }
    }
    basis
}

fn decode_dc(bits: &mut Bits, table: &Huffman, prediction: &mut i32) -> Option<i32> {
    let size = bits.decode(table)?;
    if size > 11 {
        return None;
    }
    *prediction = prediction.wrapping_add(bits.signed(size));
    Some(*prediction)
}

/// A baseline block's 63 AC coefficients: the kept ones into `block`, the rest read past.
fn read_ac(
    bits: &mut Bits,
    table: &Huffman,
    slots: &[Option<u8>; 64],
    block: &mut [i32; 16],
) -> Option<()> {
    let mut k = 1;
    while k < 64 {
        let symbol = bits.decode(table)?;
        let (run, size) = (usize::from(symbol >> 4), symbol & 15);
        if size == 0 {
            if run != 15 {
                return Some(()); // end of block
            }
            k += 16;
            continue;
        }
        k += run;
        let value = bits.signed(size);
        if let Some(slot) = *slots.get(k)? {
            block[usize::from(slot)] = value;
        }
        k += 1;
    }
    Some(())
}

/// A progressive AC scan's fixed parts, and the end-of-band run it carries from block to block.
struct AcBand<'s> {
    table: &'s Huffman,
    kind: &'s ScanKind,
    slots: &'s [Option<u8>; 64],
    eob_run: u32,
}

/// One block as a progressive AC scan sees it: its kept coefficients, and which zig-zag
/// positions are non-zero.
struct BandBlock<'b> {
    coefficients: &'b mut [i16],
    non_zero: &'b mut u64,
}

impl AcBand<'_> {
    /// The band's first scan, for one block (G.1.2.2 of the JPEG standard).
    fn first(&mut self, bits: &mut Bits, block: BandBlock) -> Option<()> {
        let (table, kind, slots, eob_run) = (self.table, self.kind, self.slots, &mut self.eob_run);
        let BandBlock {
            coefficients,
            non_zero,
        } = block;
        if *eob_run > 0 {
            *eob_run -= 1;
            return Some(());
        }
        let mut k = kind.first;
        while k <= kind.last {
            let symbol = bits.decode(table)?;
            let (run, size) = (u32::from(symbol >> 4), symbol & 15);
            if size == 0 {
                if run < 15 {
                    *eob_run = (1 << run) - 1 + bits.take(run);
                    return Some(());
                }
                k += 16;
                continue;
            }
            k += run as usize;
            let value = bits.signed(size) << kind.low;
            if k > kind.last {
                return None;
            }
            *non_zero |= 1 << k;
            if let Some(slot) = slots[k] {
                *coefficients.get_mut(usize::from(slot))? = value as i16;
            }
            k += 1;
        }
        Some(())
    }

    /// A refinement scan of the band, for one block (G.1.2.3): one more bit of every
    /// coefficient already non-zero, and new coefficients of magnitude one.
    fn refine(&mut self, bits: &mut Bits, block: BandBlock) -> Option<()> {
        let (table, kind, slots, eob_run) = (self.table, self.kind, self.slots, &mut self.eob_run);
        let BandBlock {
            coefficients,
            non_zero,
        } = block;
        // Positions are found in the non-zero mask with bit operations rather than by
        // stepping through the band one coefficient at a time.
        let mut known = *non_zero;
        let bit = 1i16 << kind.low;
        let band_end = kind.last + 1;
        let mut k = kind.first;
        if *eob_run == 0 {
            while k <= kind.last {
                let symbol = bits.decode(table)?;
                let (run, size) = (symbol >> 4, symbol & 15);
                let mut new_value = 0i16;
                if size != 0 {
                    new_value = if bits.take(1) == 1 { bit } else { -bit };
                } else if run != 15 {
                    *eob_run = (1 << run) + bits.take(u32::from(run));
                    break;
                }
                // Past `run` zero coefficients to the next zero one, correcting the non-zero
                // ones on the way (all the rest of the band when it has too few zeros).
                let mut zeros = !known & positions(k, band_end);
                for _ in 0..run {
                    zeros &= zeros.wrapping_sub(1);
                }
                let target = match zeros {
                    0 => band_end,
                    _ => zeros.trailing_zeros() as usize,
                };
                correct_each(bits, slots, coefficients, bit, known & positions(k, target))?;
                k = target;
                if new_value != 0 {
                    if k > kind.last {
                        return None;
                    }
                    known |= 1 << k;
                    if let Some(slot) = slots[k] {
                        *coefficients.get_mut(usize::from(slot))? = new_value;
                    }
                }
                k += 1;
            }
        }
        if *eob_run > 0 {
            // Inside an end-of-band run: only corrections, for the rest of the band.
            correct_each(
                bits,
                slots,
                coefficients,
                bit,
                known & positions(k, band_end),
            )?;
            *eob_run -= 1;
        }
        *non_zero = known;
        Some(())
    }
}

/// The zig-zag positions `from..to` as a mask (empty when `from >= to`; `to` at most 64).
fn positions(from: usize, to: usize) -> u64 {
    let below = |end: usize| match u64::MAX.checked_shl(end as u32) {
        Some(high) => !high,
        None => u64::MAX,
    };
    below(to) & !below(from)
}

/// [`correct`] for each position set in `mask`, in zig-zag order.
fn correct_each(
    bits: &mut Bits,
    slots: &[Option<u8>; 64],
    coefficients: &mut [i16],
    bit: i16,
    mut mask: u64,
) -> Option<()> {
    while mask != 0 {
        let k = mask.trailing_zeros() as usize;
        mask &= mask - 1;
        correct(bits, slots, coefficients, bit, k)?;
    }
    Some(())
}

/// A refinement's correction bit for the coefficient at zig-zag `k`, already non-zero: when
/// set, the coefficient moves one `bit` further from zero (once).
fn correct(
    bits: &mut Bits,
    slots: &[Option<u8>; 64],
    coefficients: &mut [i16],
    bit: i16,
    k: usize,
) -> Option<()> {
    if bits.take(1) == 1
        && let Some(slot) = slots[k]
    {
        let value = coefficients.get_mut(usize::from(slot))?;
        if *value & bit == 0 {
            // Wrapping: a corrupt file can have put any value there.
            *value = if *value >= 0 {
                value.wrapping_add(bit)
            } else {
                value.wrapping_sub(bit)
            };
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

    fn fixture(path: &str) -> Vec<u8> {
        let path = format!("{}/../fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn steps_aside_for_what_it_does_not_read() {
        for path in [
            "libjpeg-turbo/monkey12.jpg",   // 12-bit samples
            "libjpeg-turbo/testimgari.jpg", // arithmetic coding
            "colour/cmyk-fogra39.jpg",      // four components
        ] {
            for side in [1, 2, 4] {
                assert!(decode(&fixture(path), side).is_none(), "{path}");
            }
        }
    }

    #[test]
    fn cut_or_corrupt_data_never_panics() {
        for path in ["libjpeg-turbo/testimgint.jpg", "photos/dragonfly-1280.jpg"] {
            let bytes = fixture(path);
            // About 50 cuts and 50 corruptions a file, at every scale (the test build is slow).
            let step = bytes.len() / 50;
            for cut in (0..bytes.len()).step_by(step) {
                for side in [1, 2, 4] {
                    let _ = decode(&bytes[..cut], side);
                }
            }
            for at in (step / 2..bytes.len()).step_by(step) {
                let mut corrupt = bytes.clone();
                corrupt[at] ^= 0x5A;
                for side in [1, 2, 4] {
                    let _ = decode(&corrupt, side);
                }
            }
        }
    }

    #[test]
    fn bits_read_through_stuffing_and_stop_at_a_marker() {
        // Data bytes with 0xFF among them (stuffed as FF 00 in the stream), then a marker.
        let data: Vec<u8> = (0..200u32)
            .map(|i| {
                if i % 11 == 3 {
                    0xFF
                } else {
                    (i * 37 % 251) as u8
                }
            })
            .collect();
        let mut stream = Vec::new();
        for &byte in &data {
            stream.push(byte);
            if byte == 0xFF {
                stream.push(0x00);
            }
        }
        stream.extend([0xFF, 0xD9]);
        for width in [1, 3, 7, 8, 13, 16] {
            let mut bits = Bits::new(&stream, 0);
            let mut read = 0usize;
            while read + width <= data.len() * 8 {
                let expected = (read..read + width).fold(0u32, |value, bit| {
                    (value << 1) | u32::from(data[bit / 8] >> (7 - bit % 8) & 1)
                });
                assert_eq!(
                    bits.take(width as u32),
                    expected,
                    "width {width} at bit {read}"
                );
                read += width;
            }
            assert!(!bits.overrun(), "width {width}");
            // Past the data: zeros, and the reader knows it ran over.
            bits.take(16);
            bits.take(16);
            assert!(bits.overrun(), "width {width}");
        }
    }
}
