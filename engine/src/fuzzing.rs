//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`): internals the public API
//! reaches only through a whole pipeline, so a fuzzer can aim at them directly.

use crate::codec::jpeg_scans;

/// The shrink-on-load rewrite of a progressive JPEG, as the decoder applies it when the
/// first step shrinks `shrink` times (`None`: left as it is).
pub fn prune_scans(bytes: &[u8], shrink: f64) -> Option<Vec<u8>> {
    jpeg_scans::prune_scans(bytes, shrink)
}
