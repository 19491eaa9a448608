//! EXIF orientation values and what each means geometrically.

use serde::{Deserialize, Serialize};

/// The eight EXIF orientations: how the stored pixels must be transformed to be upright.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Orientation {
    /// 1: stored upright.
    #[default]
    Normal,
    /// 2: mirrored left-right.
    FlipHorizontal,
    /// 3: upside down.
    Rotate180,
    /// 4: mirrored top-bottom.
    FlipVertical,
    /// 5: mirrored along the top-left/bottom-right diagonal.
    Transpose,
    /// 6: needs a 90° clockwise turn.
    Rotate90,
    /// 7: mirrored along the top-right/bottom-left diagonal.
    Transverse,
    /// 8: needs a 270° clockwise turn.
    Rotate270,
}

impl Orientation {
    /// Maps the EXIF tag value 1..=8; anything else is not an orientation.
    pub fn from_exif(value: u16) -> Option<Orientation> {
        Some(match value {
            1 => Orientation::Normal,
            2 => Orientation::FlipHorizontal,
            3 => Orientation::Rotate180,
            4 => Orientation::FlipVertical,
            5 => Orientation::Transpose,
            6 => Orientation::Rotate90,
            7 => Orientation::Transverse,
            8 => Orientation::Rotate270,
            _ => return None,
        })
    }

    pub fn exif_value(self) -> u16 {
        match self {
            Orientation::Normal => 1,
            Orientation::FlipHorizontal => 2,
            Orientation::Rotate180 => 3,
            Orientation::FlipVertical => 4,
            Orientation::Transpose => 5,
            Orientation::Rotate90 => 6,
            Orientation::Transverse => 7,
            Orientation::Rotate270 => 8,
        }
    }

    /// Whether applying it swaps width and height.
    pub fn swaps_dimensions(self) -> bool {
        matches!(
            self,
            Orientation::Transpose
                | Orientation::Rotate90
                | Orientation::Transverse
                | Orientation::Rotate270
        )
    }
}
