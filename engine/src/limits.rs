//! Resource limits, checked against the probed header before any pixel buffer exists.

use crate::error::Error;

/// Limits that protect the engine from decompression bombs and oversized requests.
///
/// Defaults follow imgproxy: 50 MiB of input, 50 megapixels in and out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    /// Largest accepted input, in bytes.
    pub max_input_bytes: usize,
    /// Largest accepted input image, in pixels (width × height).
    pub max_pixels: u64,
    /// Largest image any step of a pipeline may produce, in pixels.
    pub max_output_pixels: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_input_bytes: 50 << 20,
            max_pixels: 50_000_000,
            max_output_pixels: 50_000_000,
        }
    }
}

impl Limits {
    pub(crate) fn check_input_bytes(&self, len: usize) -> Result<(), Error> {
        if len > self.max_input_bytes {
            return Err(Error::Limits(format!(
                "input is {len} bytes, the limit is {} bytes",
                self.max_input_bytes
            )));
        }
        Ok(())
    }

    pub(crate) fn check_input_pixels(&self, width: u32, height: u32) -> Result<(), Error> {
        check_pixels("input is", width, height, self.max_pixels)
    }

    pub(crate) fn check_output_pixels(&self, width: u32, height: u32) -> Result<(), Error> {
        check_pixels(
            "a step would produce",
            width,
            height,
            self.max_output_pixels,
        )
    }
}

fn check_pixels(what: &str, width: u32, height: u32, limit: u64) -> Result<(), Error> {
    let pixels = u64::from(width) * u64::from(height);
    if pixels > limit {
        return Err(Error::Limits(format!(
            "{what} {width}x{height} ({pixels} pixels), the limit is {limit} pixels"
        )));
    }
    Ok(())
}
