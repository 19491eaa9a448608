//! The shrink-on-load rewrite of progressive JPEGs: it must never panic, and what it returns
//! must still be a JPEG of the same size that the decoder reads without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prism_engine::fuzzing::drop_high_frequency_scans;
use prism_fuzz::{check_error, engine};

fuzz_target!(|data: &[u8]| {
    let Some(pruned) = drop_high_frequency_scans(data) else {
        return;
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
});
