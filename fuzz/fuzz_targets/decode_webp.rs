//! Probe and decode of WEBP input. Seeds: fixtures/ (see scripts/fuzz.sh).
#![no_main]

use libfuzzer_sys::fuzz_target;
use prism_engine::ImageFormat;

fuzz_target!(|data: &[u8]| prism_fuzz::decode_as(ImageFormat::Webp, data));
