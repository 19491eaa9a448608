//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`): internals the public API
//! reaches only through a whole pipeline, so a fuzzer can aim at them directly.

use crate::codec::{jpeg_eighth, jpeg_scans};

/// The shrink-on-load rewrite of a progressive JPEG, as the decoder applies it when the
/// first step shrinks `shrink` times (`None`: left as it is).
pub fn prune_scans(bytes: &[u8], shrink: f64) -> Option<Vec<u8>> {
    jpeg_scans::prune_scans(bytes, shrink)
}

/// The 1/8-scale decode from DC coefficients that a first step shrinking eight times or more
/// uses: the size of the frame it makes, or `None` where it steps aside for the full decoder.
pub fn decode_at_eighth(bytes: &[u8]) -> Option<(u32, u32)> {
    jpeg_eighth::decode(bytes).map(|frame| (frame.width(), frame.height()))
}
