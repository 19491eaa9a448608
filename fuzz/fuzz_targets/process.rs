//! The whole engine: a pipeline (the input's first line) run on an image (the rest) through
//! the pool. Any outcome but a panic or an internal error is fine; an output must be an image
//! of the size the engine reports.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prism_engine::Pipeline;
use prism_fuzz::{LIMITS, check_error, engine};

fuzz_target!(|data: &[u8]| {
    let Some(newline) = data.iter().position(|&b| b == b'\n') else {
        return;
    };
    let (Ok(text), image) = (std::str::from_utf8(&data[..newline]), &data[newline + 1..]) else {
        return;
    };
    let Ok(pipeline) = text.parse::<Pipeline>() else {
        return;
    };
    match engine().process(image, &pipeline) {
        Ok(output) if output.bytes.len() <= LIMITS.max_input_bytes => {
            let info = engine()
                .probe(&output.bytes)
                .unwrap_or_else(|error| panic!("the engine's own output does not probe: {error}"));
            assert_eq!((info.width, info.height), (output.width, output.height));
        }
        Ok(_) => {}
        Err(error) => check_error(&error),
    }
});
