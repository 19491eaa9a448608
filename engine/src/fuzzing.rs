//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`): internals the public API
//! reaches only through a whole pipeline, so a fuzzer can aim at them directly.

use crate::codec::{jpeg_scaled, jpeg_scans};

/// The shrink-on-load rewrite of a progressive JPEG, as the decoder applies it when the
/// first step shrinks `shrink` times (`None`: left as it is).
pub fn prune_scans(bytes: &[u8], shrink: f64) -> Option<Vec<u8>> {
    jpeg_scans::prune_scans(bytes, shrink)
}

/// The decode at reduced scale (`side` pixels per 8×8 block: 1, 2 or 4) that a first step
/// shrinking more than three times uses: the size of the frame it makes, or `None` where it steps
/// aside for the full decoder.
pub fn decode_scaled(bytes: &[u8], side: usize) -> Option<(u32, u32)> {
    jpeg_scaled::decode(bytes, side).map(|frame| (frame.width(), frame.height()))
}
