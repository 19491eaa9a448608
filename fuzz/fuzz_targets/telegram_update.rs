//! A Telegram update as the webhook receives it (JSON): deserialising it and everything the
//! handlers read from it (command, image, caption, reply, preset button) never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|json: &[u8]| {
    for pipeline in prism_bot::fuzzing::read_update(json, "prism_bot") {
        prism_fuzz::check_canonical_round_trip(&pipeline);
    }
});
