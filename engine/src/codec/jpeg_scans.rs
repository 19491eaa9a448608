//! Shrink-on-load for progressive JPEG: when the image will be reduced eight times or more,
//! the scans that only carry high spatial frequencies cannot show in the result, and they
//! are where most of a progressive file's decoding time goes. This drops them from the
//! stream before zune-jpeg sees it (libvips gets the same effect from libjpeg's DCT scaling).
//!
//! A scan is dropped when its first coefficient lies above `highest_kept` (in zig-zag
//! order), and so is every later refinement scan that touches a dropped band: refinement
//! bits only make sense against the coefficients their first scan set.

/// Zig-zag index of the highest DCT coefficient kept at a shrink of eight or more: the
/// lowest five AC frequencies, plus DC. Above the output's Nyquist frequency at 1/8 scale.
pub(crate) const HIGHEST_KEPT_AT_EIGHTH: u8 = 5;

/// The stream without its high-frequency scans, or `None` when the file is not progressive,
/// nothing would be dropped, or the marker structure is not what this walker expects (the
/// full decoder then reports it properly).
pub(crate) fn drop_high_frequency_scans(bytes: &[u8], highest_kept: u8) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(bytes.get(..2)?);
    let mut at = 2;
    let mut progressive = false;
    // (component, first, last) coefficient bands whose first scan was dropped.
    let mut dropped: Vec<(u8, u8, u8)> = Vec::new();
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
        let refinement = header.get(3 + 2 * count)? >> 4 != 0;
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
        } else if !refinement {
            dropped.extend(components.iter().map(|&c| (c, first, last)));
        }
        at = scan_end;
    }
    out.extend_from_slice(&[0xFF, 0xD9]);
    (out.len() + 2 < bytes.len() && !dropped.is_empty()).then_some(out)
}

/// Where a scan's entropy-coded data ends: the next marker that is neither a stuffed
/// 0xFF00 nor a restart marker.
fn entropy_data_end(bytes: &[u8], mut at: usize) -> Option<usize> {
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

    /// SOI, SOF2, then scans given as (component, first, last, Ah), each with 3 data bytes.
    fn progressive(scans: &[(u8, u8, u8, u8)]) -> Vec<u8> {
        let mut bytes = vec![
            0xFF, 0xD8, 0xFF, 0xC2, 0x00, 0x0B, 8, 0, 8, 0, 8, 1, 1, 0x11, 0,
        ];
        for &(component, first, last, ah) in scans {
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
                ah << 4,
            ]);
            bytes.extend_from_slice(&[0x12, 0xFF, 0x00]);
        }
        bytes.extend_from_slice(&[0xFF, 0xD9]);
        bytes
    }

    fn kept_scans(bytes: &[u8]) -> Vec<(u8, u8, u8)> {
        bytes
            .windows(10)
            .filter(|w| w[0] == 0xFF && w[1] == 0xDA)
            .map(|w| (w[7], w[8], w[9] >> 4))
            .collect()
    }

    #[test]
    fn drops_high_bands_and_their_refinements_only() {
        // libjpeg's default script for one component.
        let bytes = progressive(&[
            (1, 0, 0, 0),
            (1, 1, 5, 0),
            (1, 6, 63, 0),
            (1, 1, 63, 2),
            (1, 0, 0, 1),
            (1, 1, 63, 1),
        ]);
        let pruned = drop_high_frequency_scans(&bytes, 5).unwrap();
        assert_eq!(kept_scans(&pruned), vec![(0, 0, 0), (1, 5, 0), (0, 0, 1)]);
        assert!(pruned.ends_with(&[0xFF, 0xD9]));
    }

    #[test]
    fn nothing_to_drop_or_not_progressive_gives_none() {
        assert_eq!(
            drop_high_frequency_scans(&progressive(&[(1, 0, 0, 0), (1, 1, 63, 0)]), 5),
            None
        );
        let mut baseline = progressive(&[(1, 0, 63, 0)]);
        baseline[3] = 0xC0;
        assert_eq!(drop_high_frequency_scans(&baseline, 5), None);
        let full = progressive(&[(1, 0, 0, 0), (1, 6, 63, 0)]);
        for cut in 0..full.len() - 2 {
            let _ = drop_high_frequency_scans(&full[..cut], 5);
        }
    }
}
