//! HEIF (HEVC) and AVIF input, against libvips's reading of the same files
//! (scripts/make-heif-fixtures.sh): sizes, colour (ICC and nclx tags converted to sRGB),
//! 10-bit, transparency, and the same limits as the other formats. Needs libheif at run
//! time (Debian's libheif1, which .ci/run installs).

mod common;

use common::{decode_png, engine, process, process_to_rgba, psnr, read};
use prism_engine::{ErrorKind, ImageFormat, Limits, OutputFormat, heif_support};

/// The bar against libvips; both decode with libheif, so most files sit far above.
const MIN_PSNR_AGAINST_LIBVIPS: f64 = 35.0;

fn has_icc_chunk(png: &[u8]) -> bool {
    png.windows(4).any(|w| w == b"iCCP")
}

#[test]
fn libheif_is_available_to_the_engine() {
    heif_support().expect("libheif loads (apt-get install libheif1)");
}

#[test]
fn probe_reads_format_size_profile_and_alpha() {
    for (file, format, profile, alpha) in [
        ("srgb.heic", ImageFormat::Heif, false, false),
        ("srgb-10bit.heic", ImageFormat::Heif, false, false),
        ("srgb.avif", ImageFormat::Avif, false, false),
        ("display-p3.heic", ImageFormat::Heif, true, false),
        ("display-p3-nclx.avif", ImageFormat::Avif, true, false),
        ("alpha.heic", ImageFormat::Heif, false, true),
        ("rotated.heic", ImageFormat::Heif, false, false),
    ] {
        let info = engine().probe(&read(&format!("heif/{file}"))).expect(file);
        assert_eq!(info.format, format, "{file}");
        // The size as displayed: after the file's own rotation.
        let size = if file == "rotated.heic" {
            (240, 320)
        } else {
            (320, 240)
        };
        assert_eq!((info.width, info.height), size, "{file}");
        assert_eq!(info.has_icc_profile, profile, "{file}");
        assert_eq!(info.has_alpha, alpha, "{file}");
    }
}

#[test]
fn decoded_pixels_match_libvips_in_srgb() {
    for (file, reference) in [
        ("srgb.heic", "heif/reference/srgb-heic.srgb.png"),
        ("srgb-10bit.heic", "heif/reference/srgb-10bit-heic.srgb.png"),
        ("srgb.avif", "heif/reference/srgb-avif.srgb.png"),
        ("rotated.heic", "heif/reference/rotated-heic.srgb.png"),
        ("display-p3.heic", "heif/reference/display-p3-heic.srgb.png"),
        // libvips 8.14 ignores nclx tags: the reference is its conversion from P3, told
        // the profile.
        (
            "display-p3-nclx.avif",
            "heif/reference/display-p3-nclx-avif.srgb.png",
        ),
    ] {
        let bytes = read(&format!("heif/{file}"));
        let output = process(&bytes, "png").expect(file);
        assert!(!has_icc_chunk(&output.bytes), "{file}: converted to sRGB");
        let ours = decode_png(&output.bytes);
        let similarity = psnr(&ours, &decode_png(&read(reference)));
        eprintln!("{file}: {similarity:.1} dB against libvips");
        assert!(
            similarity >= MIN_PSNR_AGAINST_LIBVIPS,
            "{file}: {similarity:.1} dB against libvips"
        );
        if file.starts_with("display-p3") {
            // Proof the tag mattered: the stored values are far from the conversion, and
            // keepicc carries a profile that says what they mean.
            let kept = process(&bytes, "keepicc|png").expect(file);
            assert!(
                has_icc_chunk(&kept.bytes),
                "{file}: keepicc keeps a profile"
            );
            let unconverted = psnr(&decode_png(&kept.bytes), &decode_png(&read(reference)));
            assert!(
                unconverted < similarity - 5.0,
                "{file}: unconverted {unconverted:.1} dB, converted {similarity:.1} dB"
            );
        }
    }
}

#[test]
fn transparency_survives() {
    let ours = process_to_rgba(&read("heif/alpha.heic"), "png");
    let reference = decode_png(&read("heif/reference/alpha-heic.png"));
    assert_eq!(
        (ours.width, ours.height),
        (reference.width, reference.height)
    );
    let alpha = |image: &common::Rgba, x: u32| image.pixels[(x as usize) * 4 + 3];
    // Opaque on the left, almost clear on the right, as libvips reads it.
    assert!(alpha(&ours, 0) > 240 && alpha(&ours, 319) < 15);
    let worst = ours
        .pixels
        .chunks_exact(4)
        .zip(reference.pixels.chunks_exact(4))
        .map(|(a, b)| a[3].abs_diff(b[3]))
        .max();
    assert!(worst <= Some(2), "alpha differs from libvips by {worst:?}");
}

#[test]
fn resized_output_in_every_format() {
    let bytes = read("heif/display-p3.heic");
    for (pipeline, format, size) in [
        ("fit:160x160|jpeg:85", OutputFormat::Jpeg, (160, 120)),
        (
            "fill:100x100:attention|webp:80",
            OutputFormat::Webp,
            (100, 100),
        ),
    ] {
        let output = process(&bytes, pipeline).expect(pipeline);
        assert_eq!(output.format, format, "{pipeline}");
        let info = engine().probe(&output.bytes).expect(pipeline);
        assert_eq!((info.width, info.height), size, "{pipeline}");
    }
    // A portrait photo stays portrait through a resize.
    let output = process(&read("heif/rotated.heic"), "fit:160x160|jpeg:85").unwrap();
    let info = engine().probe(&output.bytes).unwrap();
    assert_eq!((info.width, info.height), (120, 160));
}

/// A copy of `file` whose `ispe` (image spatial extent) box claims `width`×`height`.
fn with_claimed_size(file: &str, width: u32, height: u32) -> Vec<u8> {
    let mut bytes = read(file);
    let at = bytes
        .windows(4)
        .position(|w| w == b"ispe")
        .expect("an ispe box")
        + 8; // type, then version and flags
    bytes[at..at + 4].copy_from_slice(&width.to_be_bytes());
    bytes[at + 4..at + 8].copy_from_slice(&height.to_be_bytes());
    bytes
}

#[test]
fn limits_are_checked_from_the_header() {
    let max_pixels = Limits::default().max_pixels;
    let side = ((max_pixels as f64).sqrt() as u32) + 100;
    for file in ["heif/srgb.heic", "heif/srgb.avif"] {
        let bytes = with_claimed_size(file, side, side);
        let error = engine().probe(&bytes).expect_err(file);
        assert_eq!(error.kind(), ErrorKind::Limits, "{file}: {error}");
        let error = process(&bytes, "png").expect_err(file);
        assert_eq!(error.kind(), ErrorKind::Limits, "{file}: {error}");
    }
}

#[test]
fn a_header_that_lies_about_the_size_is_refused() {
    // Memory and every step's size are planned from the header: other pixels are refused.
    let bytes = with_claimed_size("heif/srgb.heic", 16, 16);
    let error = process(&bytes, "png").expect_err("16x16 header over 320x240 pixels");
    assert_eq!(error.kind(), ErrorKind::Malformed, "{error}");
}
