//! Shrink-on-load for JPEG. The rewrite of progressive files must never panic, and what it
//! returns must still be a JPEG of the same size that the decoder reads without panicking;
//! the decode at 1/2, 1/4 and 1/8 scale must never panic, and a frame it makes has the
//! header's size scaled.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prism_engine::fuzzing::{decode_scaled, prune_scans};
use prism_fuzz::{LIMITS, check_error, engine};

fuzz_target!(|data: &[u8]| {
    // Within the engine's limits, as in the product, where they are checked before decoding.
    let header = engine().probe(data).ok();
    if let Some(header) =
        header.filter(|h| u64::from(h.width) * u64::from(h.height) <= LIMITS.max_pixels)
    {
        for side in [1, 2, 4] {
            if let Some(size) = decode_scaled(data, side) {
                let scaled = |length: u32| (u64::from(length) * side as u64).div_ceil(8) as u32;
                assert_eq!(size, (scaled(header.width), scaled(header.height)));
            }
        }
    }
    // The rewrite (from a shrink of eight: the bands a 1/4-scale decode cannot show).
    for shrink in [8.0, 30.0] {
        let Some(pruned) = prune_scans(data, shrink) else {
            continue;
        };
        assert!(pruned.len() <= data.len(), "the rewrite only removes scans");
        let original = engine().probe(data);
        match engine().decode(&pruned) {
            Ok((info, _)) => {
                if let Ok(original) = original {
                    assert_eq!((info.width, info.height), (original.width, original.height));
                }
            }
            Err(error) => check_error(&error),
        }
    }
});
