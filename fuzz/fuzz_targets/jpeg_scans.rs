//! Shrink-on-load for JPEG. The rewrite of progressive files must never panic, and what it
//! returns must still be a JPEG of the same size that the decoder reads without panicking;
//! the 1/8-scale DC decode must never panic, and a frame it makes is an eighth of the header's.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prism_engine::fuzzing::{decode_at_eighth, prune_scans};
use prism_fuzz::{check_error, engine};

fuzz_target!(|data: &[u8]| {
    if let (Some(size), Ok(header)) = (decode_at_eighth(data), engine().probe(data)) {
        assert_eq!(size, (header.width.div_ceil(8), header.height.div_ceil(8)));
    }
    // Both rewrites: the lowest AC bit (a shrink of four), and the high bands too (eight).
    for shrink in [4.0, 8.0] {
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
