//! Pipeline text: parsing never panics, and `parse(canonical(p)) == p` for every pipeline
//! that parses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prism_engine::Pipeline;

fuzz_target!(|text: &str| {
    if let Ok(pipeline) = text.parse::<Pipeline>() {
        prism_fuzz::check_canonical_round_trip(&pipeline);
    }
});
