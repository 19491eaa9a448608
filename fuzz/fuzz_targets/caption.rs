//! The bot's caption parser (spaced words or pipeline text): never panics, and what it
//! accepts is a pipeline whose canonical text round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(pipeline) = prism_bot::fuzzing::parse_caption(text) {
        prism_fuzz::check_canonical_round_trip(&pipeline);
    }
});
