//! Shrink-on-load for progressive JPEG: when the image will be reduced eight times or more, it
//! is decoded at 1/4 scale or less (`jpeg_scaled`), and the scans of the coefficients that
//! cannot show there are dropped from the stream before it is read: every scan whose first
//! coefficient lies above [`HIGHEST_KEPT_AT_EIGHTH`] (in zig-zag order), and every later
//! refinement scan that touches such a band (refinement bits only make sense against the
//! coefficients their first scan set). What is kept decodes exactly as before.
//!
//! Dropping more was measured and left out (`scripts/fidelity.py`, against an ideal
//! thumbnail): without the last AC refinement scan (the coefficients' lowest bit, the most
//! expensive part of decoding) from a shrink of three, three corpus photos at 1280 px lost
//! 2.6-4.0 dB against vipsthumbnail's thumbnails.

/// Zig-zag index of the highest DCT coefficient kept at a shrink of eight or more: the
/// lowest five AC frequencies, plus DC. A 1/4-scale block (2×2 pixels) uses the lowest four.
const HIGHEST_KEPT_AT_EIGHTH: u8 = 5;

/// The smallest shrink at which scans are dropped.
const EIGHTH: f64 = 8.0;

/// Whether a first step that shrinks `shrink` times makes progressive JPEGs decode from a
/// pruned copy of their bytes (at most the input's size, held beside it while decoding).
pub(crate) fn prunes_at(shrink: f64) -> bool {
    shrink >= EIGHTH
}

/// The stream without the scans a `shrink` hides, or `None` when the file is not progressive,
/// the shrink is too small, nothing would be dropped, or the marker structure is not what this
/// walker expects (the full decoder then reports it properly).
pub(crate) fn prune_scans(bytes: &[u8], shrink: f64) -> Option<Vec<u8>> {
    if !prunes_at(shrink) {
        return None;
    }
    drop_scans(bytes, HIGHEST_KEPT_AT_EIGHTH)
}

/// Drops the bands above `highest_kept` with their refinements.
fn drop_scans(bytes: &[u8], highest_kept: u8) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(bytes.get(..2)?);
    let mut at = 2;
    let mut progressive = false;
    // (component, first, last) coefficient bands whose first scan was dropped.
    let mut dropped: Vec<(u8, u8, u8)> = Vec::new();
    let mut dropped_any = false;
    loop {
        while bytes.get(at) == Some(&0xFF) && bytes.get(at + 1) == Some(&0xFF) {
            at += 1;
        }
        if bytes.get(at) != Some(&0xFF) {
            return None;
        }
        let marker = *bytes.get(at + 1)?;
        match marker {
            0xD9 => break,
            0x01 | 0xD0..=0xD7 => {
                out.extend_from_slice(&bytes[at..at + 2]);
                at += 2;
                continue;
            }
            _ => {}
        }
        let length = usize::from(u16::from_be_bytes([
            *bytes.get(at + 2)?,
            *bytes.get(at + 3)?,
        ]));
        let segment_end = at.checked_add(2 + length)?;
        let segment = bytes.get(at..segment_end)?;
        match marker {
            0xC2 => progressive = true,
            0xC0 | 0xC1 | 0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => return None,
            _ => {}
        }
        if marker != 0xDA {
            out.extend_from_slice(segment);
            at = segment_end;
            continue;
        }
        if !progressive {
            return None;
        }
        let scan_end = entropy_data_end(bytes, segment_end)?;
        let header = segment.get(4..)?;
        let count = usize::from(*header.first()?);
        let components: Vec<u8> = (0..count)
            .map(|i| header.get(1 + 2 * i).copied())
            .collect::<Option<_>>()?;
        let first = *header.get(1 + 2 * count)?;
        let last = *header.get(2 + 2 * count)?;
        let successive_approximation = *header.get(3 + 2 * count)?;
        let refinement = successive_approximation >> 4 != 0;
        let keep = if first == 0 {
            true
        } else if !refinement {
            first <= highest_kept
        } else {
            !components.iter().any(|&c| {
                dropped
                    .iter()
                    .any(|&(dc, lo, hi)| dc == c && first <= hi && lo <= last)
            })
        };
        if keep {
            out.extend_from_slice(&bytes[at..scan_end]);
        } else {
            dropped_any = true;
            if !refinement {
                dropped.extend(components.iter().map(|&c| (c, first, last)));
            }
        }
        at = scan_end;
    }
    out.extend_from_slice(&[0xFF, 0xD9]);
    (out.len() + 2 < bytes.len() && dropped_any).then_some(out)
}

/// Where a scan's entropy-coded data ends: the next marker that is neither a stuffed
/// 0xFF00 nor a restart marker.
pub(super) fn entropy_data_end(bytes: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let offset = bytes.get(at..)?.iter().position(|&b| b == 0xFF)?;
        at += offset;
        match *bytes.get(at + 1)? {
            0x00 | 0xD0..=0xD7 => at += 2,
            0xFF => at += 1,
            _ => return Some(at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SOI, SOF2, then scans given as (component, first, last, Ah, Al), each with 3 data
    /// bytes.
    fn progressive(scans: &[(u8, u8, u8, u8, u8)]) -> Vec<u8> {
        let mut bytes = vec![
            0xFF, 0xD8, 0xFF, 0xC2, 0x00, 0x0B, 8, 0, 8, 0, 8, 1, 1, 0x11, 0,
        ];
        for &(component, first, last, ah, al) in scans {
            bytes.extend_from_slice(&[
                0xFF,
                0xDA,
                0x00,
                0x08,
                1,
                component,
                0x00,
                first,
                last,
                ah << 4 | al,
            ]);
            bytes.extend_from_slice(&[0x12, 0xFF, 0x00]);
        }
        bytes.extend_from_slice(&[0xFF, 0xD9]);
        bytes
    }

    /// (first, last, Ah) of each scan left.
    fn kept_scans(bytes: &[u8]) -> Vec<(u8, u8, u8)> {
        bytes
            .windows(10)
            .filter(|w| w[0] == 0xFF && w[1] == 0xDA)
            .map(|w| (w[7], w[8], w[9] >> 4))
            .collect()
    }

    /// libjpeg's default script for one component.
    const LIBJPEG_SCRIPT: [(u8, u8, u8, u8, u8); 6] = [
        (1, 0, 0, 0, 1),
        (1, 1, 5, 0, 2),
        (1, 6, 63, 0, 2),
        (1, 1, 63, 2, 1),
        (1, 0, 0, 1, 0),
        (1, 1, 63, 1, 0),
    ];

    #[test]
    fn below_eight_nothing_is_dropped_not_even_the_last_ac_bit() {
        assert_eq!(prune_scans(&progressive(&LIBJPEG_SCRIPT), 4.0), None);
        assert_eq!(prune_scans(&progressive(&LIBJPEG_SCRIPT), 7.9), None);
    }

    #[test]
    fn an_eighth_drops_high_bands_and_their_refinements_too() {
        let pruned = prune_scans(&progressive(&LIBJPEG_SCRIPT), 8.0).unwrap();
        assert_eq!(kept_scans(&pruned), vec![(0, 0, 0), (1, 5, 0), (0, 0, 1)]);
        assert!(pruned.ends_with(&[0xFF, 0xD9]));
    }

    #[test]
    fn nothing_to_drop_or_not_progressive_gives_none() {
        let script = progressive(&LIBJPEG_SCRIPT);
        assert_eq!(prune_scans(&script, 2.9), None, "too small a shrink");
        // One full-precision scan per band: no refinement to drop at a quarter.
        let whole_bands = progressive(&[(1, 0, 0, 0, 0), (1, 1, 5, 0, 0), (1, 6, 63, 0, 0)]);
        assert_eq!(prune_scans(&whole_bands, 4.0), None);
        assert!(prune_scans(&whole_bands, 8.0).is_some());
        let mut baseline = progressive(&[(1, 0, 63, 0, 0)]);
        baseline[3] = 0xC0;
        assert_eq!(prune_scans(&baseline, 8.0), None);
        for cut in 0..script.len() - 2 {
            let _ = prune_scans(&script[..cut], 8.0);
        }
    }
}
