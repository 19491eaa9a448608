//! The shrink-on-load rewrite of progressive JPEGs: it must never panic, and what it returns
//! must still be a JPEG of the same size that the decoder reads without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prism_engine::fuzzing::prune_scans;
use prism_fuzz::{check_error, engine};

fuzz_target!(|data: &[u8]| {
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
