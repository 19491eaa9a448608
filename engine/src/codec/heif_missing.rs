//! HEIF and AVIF in a build without the `heif` feature: recognised, and refused as
//! unsupported with the reason.

use super::{Decoded, ImageInfo};
use crate::error::Error;
use crate::format::ImageFormat;

fn missing() -> Error {
    Error::Unsupported("HEIF and AVIF input: this build has no `heif` feature".into())
}

pub(super) fn availability() -> Result<(), Error> {
    Err(missing())
}

pub(super) fn probe(_: &[u8], _: ImageFormat) -> Result<ImageInfo, Error> {
    Err(missing())
}

pub(super) fn is_complete(_: &[u8]) -> bool {
    true
}

pub(super) fn decode(_: &[u8], _: &ImageInfo) -> Result<Decoded, Error> {
    Err(missing())
}
