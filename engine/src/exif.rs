//! Reads the one EXIF field the engine needs: the orientation tag (0x0112).
//!
//! Hand-written because it is forty lines of bounds-checked TIFF walking; every read is
//! checked, so a hostile EXIF block yields "no orientation", never a panic.

use crate::orientation::Orientation;

const ORIENTATION_TAG: u16 = 0x0112;

/// Orientation stored in an EXIF block (a TIFF structure, optionally behind `Exif\0\0`).
/// Missing, unreadable or out-of-range values mean [`Orientation::Normal`].
pub fn orientation(exif: &[u8]) -> Orientation {
    read_orientation(exif.strip_prefix(b"Exif\0\0").unwrap_or(exif))
        .and_then(Orientation::from_exif)
        .unwrap_or(Orientation::Normal)
}

fn read_orientation(tiff: &[u8]) -> Option<u16> {
    let little_endian = match tiff.get(0..2)? {
        b"II" => true,
        b"MM" => false,
        _ => return None,
    };
    let u16_at = |at: usize| -> Option<u16> {
        let b: [u8; 2] = tiff.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(if little_endian {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        })
    };
    let u32_at = |at: usize| -> Option<u32> {
        let b: [u8; 4] = tiff.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(if little_endian {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    };
    let ifd0 = usize::try_from(u32_at(4)?).ok()?;
    let entries = u16_at(ifd0)?;
    for index in 0..usize::from(entries) {
        let entry = ifd0.checked_add(2)?.checked_add(index.checked_mul(12)?)?;
        if u16_at(entry)? == ORIENTATION_TAG {
            // Type SHORT (3), count 1: the value sits in the first two bytes of the value field.
            return u16_at(entry + 8);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiff_with_orientation(little_endian: bool, value: u16) -> Vec<u8> {
        let w16 = |v: u16| {
            if little_endian {
                v.to_le_bytes()
            } else {
                v.to_be_bytes()
            }
        };
        let w32 = |v: u32| {
            if little_endian {
                v.to_le_bytes()
            } else {
                v.to_be_bytes()
            }
        };
        let mut out = Vec::new();
        out.extend_from_slice(if little_endian { b"II" } else { b"MM" });
        out.extend_from_slice(&w16(42));
        out.extend_from_slice(&w32(8));
        out.extend_from_slice(&w16(1));
        out.extend_from_slice(&w16(ORIENTATION_TAG));
        out.extend_from_slice(&w16(3));
        out.extend_from_slice(&w32(1));
        out.extend_from_slice(&w16(value));
        out.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        out
    }

    #[test]
    fn reads_both_byte_orders_and_the_exif_prefix() {
        assert_eq!(
            orientation(&tiff_with_orientation(true, 6)),
            Orientation::Rotate90
        );
        assert_eq!(
            orientation(&tiff_with_orientation(false, 8)),
            Orientation::Rotate270
        );
        let mut prefixed = b"Exif\0\0".to_vec();
        prefixed.extend(tiff_with_orientation(true, 3));
        assert_eq!(orientation(&prefixed), Orientation::Rotate180);
    }

    #[test]
    fn broken_or_out_of_range_means_normal() {
        assert_eq!(
            orientation(&tiff_with_orientation(true, 9)),
            Orientation::Normal
        );
        assert_eq!(orientation(b""), Orientation::Normal);
        assert_eq!(orientation(b"II*\0\xff\xff\xff\xff"), Orientation::Normal);
        let full = tiff_with_orientation(false, 6);
        for cut in 0..full.len() {
            let _ = orientation(&full[..cut]);
        }
    }
}
