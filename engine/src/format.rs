//! Image formats, recognised from the bytes' signatures (never from a file name).

use serde::{Deserialize, Serialize};

/// A format the engine reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    Jpeg,
    Png,
    Webp,
    Gif,
    /// HEIF with HEVC images (`.heic`, what iPhones store).
    Heif,
    /// HEIF with AV1 images.
    Avif,
}

/// ISO base media file brands (the `ftyp` box) of HEIF still images and collections.
const HEIF_BRANDS: [&[u8; 4]; 8] = [
    b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1",
];
const AVIF_BRANDS: [&[u8; 4]; 2] = [b"avif", b"avis"];

/// The brands an ISO base media file declares: its major brand and the compatible ones.
fn iso_brands(bytes: &[u8]) -> Option<impl Iterator<Item = &[u8]>> {
    if bytes.get(4..8)? != b"ftyp" {
        return None;
    }
    let declared = u32::from_be_bytes(bytes.get(0..4)?.try_into().ok()?) as usize;
    let ftyp = &bytes[..declared.min(bytes.len()).min(256)];
    let major = ftyp.get(8..12)?;
    let compatible = ftyp.get(16..).unwrap_or_default().chunks_exact(4);
    Some(std::iter::once(major).chain(compatible))
}

impl ImageFormat {
    /// Recognises the format from the first bytes; `None` for anything else.
    pub fn sniff(bytes: &[u8]) -> Option<ImageFormat> {
        if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(ImageFormat::Jpeg)
        } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(ImageFormat::Png)
        } else if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
            Some(ImageFormat::Webp)
        } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
            Some(ImageFormat::Gif)
        } else {
            // AV1 first: an AVIF file also lists the generic HEIF brand `mif1`.
            let brands: Vec<&[u8]> = iso_brands(bytes)?.collect();
            let any_of =
                |wanted: &[&[u8; 4]]| brands.iter().any(|brand| wanted.iter().any(|w| brand == w));
            if any_of(&AVIF_BRANDS) {
                Some(ImageFormat::Avif)
            } else if any_of(&HEIF_BRANDS) {
                Some(ImageFormat::Heif)
            } else {
                None
            }
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "jpeg",
            ImageFormat::Png => "png",
            ImageFormat::Webp => "webp",
            ImageFormat::Gif => "gif",
            ImageFormat::Heif => "heif",
            ImageFormat::Avif => "avif",
        }
    }
}

impl std::fmt::Display for ImageFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A format the engine writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    Jpeg,
    Png,
    /// WebP, lossy at the pipeline's quality or lossless (`webp:lossless`).
    Webp,
}

impl OutputFormat {
    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "jpg",
            OutputFormat::Png => "png",
            OutputFormat::Webp => "webp",
        }
    }

    pub fn mime_type(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "image/jpeg",
            OutputFormat::Png => "image/png",
            OutputFormat::Webp => "image/webp",
        }
    }
}

impl std::fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OutputFormat::Jpeg => "jpeg",
            OutputFormat::Png => "png",
            OutputFormat::Webp => "webp",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_each_signature_and_refuses_others() {
        assert_eq!(
            ImageFormat::sniff(&[0xFF, 0xD8, 0xFF, 0xE0]),
            Some(ImageFormat::Jpeg)
        );
        assert_eq!(
            ImageFormat::sniff(b"\x89PNG\r\n\x1a\nxxxx"),
            Some(ImageFormat::Png)
        );
        assert_eq!(
            ImageFormat::sniff(b"RIFF\0\0\0\0WEBPVP8 "),
            Some(ImageFormat::Webp)
        );
        assert_eq!(ImageFormat::sniff(b"GIF89a"), Some(ImageFormat::Gif));
        assert_eq!(
            ImageFormat::sniff(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic"),
            Some(ImageFormat::Heif)
        );
        assert_eq!(
            ImageFormat::sniff(b"\0\0\0\x1cftypavif\0\0\0\0avifmif1miaf"),
            Some(ImageFormat::Avif)
        );
        // Generic HEIF major brand, AV1 among the compatible ones.
        assert_eq!(
            ImageFormat::sniff(b"\0\0\0\x18ftypmif1\0\0\0\0mif1avif"),
            Some(ImageFormat::Avif)
        );
        // An MP4 video is an ISO file too, but not an image.
        assert_eq!(
            ImageFormat::sniff(b"\0\0\0\x18ftypisom\0\0\0\0isomavc1"),
            None
        );
        assert_eq!(ImageFormat::sniff(b"\0\0\0\x08ftyp"), None);
        assert_eq!(ImageFormat::sniff(b"RIFF\0\0\0\0WAVE"), None);
        assert_eq!(ImageFormat::sniff(b"BM"), None);
        assert_eq!(ImageFormat::sniff(b""), None);
    }
}
