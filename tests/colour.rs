//! Colour management against an independent conversion: each file in fixtures/colour/ is
//! tagged with an ICC profile (sRGB, other RGB, grey, CMYK, or CMYK without one) and
//! reference/NAME.srgb.png is libvips's conversion of it to sRGB
//! (scripts/make-colour-fixtures.sh).
//! Prism's default output must match that conversion; `keepicc` keeps the old behaviour.

mod common;

use common::{decode_png, files, process, process_to_rgba, psnr, read};

/// The bar against libvips, with room for JPEG re-decoding differences.
const MIN_PSNR_AGAINST_LIBVIPS: f64 = 35.0;

fn has_icc_chunk(png: &[u8]) -> bool {
    png.windows(4).any(|w| w == b"iCCP")
}

#[test]
fn profiled_inputs_match_libvips_conversion_to_srgb() {
    let inputs: Vec<_> = files("colour", "jpg")
        .into_iter()
        .chain(files("colour", "png"))
        .collect();
    assert!(inputs.len() >= 8, "fixtures/colour is incomplete");
    for input in inputs {
        let name = input.file_name().unwrap().to_string_lossy().into_owned();
        let stem = name.rsplit_once('.').unwrap().0;
        let bytes = std::fs::read(&input).unwrap();
        let output = process(&bytes, "noorient|png").unwrap();
        assert!(
            !has_icc_chunk(&output.bytes),
            "{name}: converted output carries no profile"
        );
        let ours = decode_png(&output.bytes);
        let reference = decode_png(&read(&format!("colour/reference/{stem}.srgb.png")));
        let similarity = psnr(&ours, &reference);
        assert!(
            similarity >= MIN_PSNR_AGAINST_LIBVIPS,
            "{name}: {similarity:.1} dB against libvips's sRGB conversion"
        );
        // Proof that the profile mattered: the stored values are far from the conversion.
        if !name.starts_with("cmyk") && !name.starts_with("srgb") {
            let stored = process_to_rgba(&bytes, "noorient|keepicc|png");
            let unconverted = psnr(&stored, &reference);
            assert!(
                unconverted < similarity - 5.0,
                "{name}: unconverted {unconverted:.1} dB, converted {similarity:.1} dB"
            );
        }
    }
}

#[test]
fn keepicc_keeps_the_rgb_profile_and_the_stored_values() {
    let output = process(&read("colour/prophoto.jpg"), "noorient|keepicc|png").unwrap();
    assert!(has_icc_chunk(&output.bytes), "profile carried into the PNG");
    let stored = decode_png(&read("colour/reference/prophoto.stored.png"));
    let similarity = psnr(&decode_png(&output.bytes), &stored);
    assert!(
        similarity > 45.0,
        "{similarity:.1} dB against the stored values (libvips's decode)"
    );
}

#[test]
fn untagged_and_srgb_inputs_are_left_exactly_as_they_were() {
    // No profile, and sRGB's own: nothing to convert, bit-identical to keepicc.
    for file in ["photos/dragonfly-1280.jpg", "colour/srgb.jpg"] {
        let bytes = read(file);
        assert_eq!(
            process_to_rgba(&bytes, "noorient|png"),
            process_to_rgba(&bytes, "noorient|keepicc|png"),
            "{file}"
        );
    }
}

/// Components in a JPEG's frame header (SOF0..SOF2).
fn jpeg_components(jpeg: &[u8]) -> u8 {
    let at = jpeg
        .windows(2)
        .position(|w| w[0] == 0xFF && (0xC0..=0xC2).contains(&w[1]))
        .expect("a frame header");
    jpeg[at + 9]
}

/// PNG colour type from IHDR (0 grey, 2 RGB, 4 grey + alpha, 6 RGBA).
fn png_colour_type(png: &[u8]) -> u8 {
    png[25]
}

#[test]
fn grey_stays_one_channel_where_the_format_allows() {
    // A grey scan with an L* profile: converted, and still one channel.
    let scan = read("colour/grey-lstar.jpg");
    let jpeg = process(&scan, "jpeg:90").unwrap();
    assert_eq!(jpeg_components(&jpeg.bytes), 1);
    let png = process(&scan, "png").unwrap();
    assert_eq!(png_colour_type(&png.bytes), 0);
    assert!(!has_icc_chunk(&png.bytes));
    // The pixels are the same as the three-channel conversion's.
    let reference = decode_png(&read("colour/reference/grey-lstar.srgb.png"));
    let similarity = psnr(&reference, &decode_png(&png.bytes));
    assert!(similarity >= MIN_PSNR_AGAINST_LIBVIPS, "{similarity:.1} dB");
    // A `gray` step makes any photo neutral; transparency stays as grey + alpha.
    let photo = read("colour/srgb.jpg");
    assert_eq!(
        jpeg_components(&process(&photo, "gray|jpeg").unwrap().bytes),
        1
    );
    assert_eq!(jpeg_components(&process(&photo, "jpeg").unwrap().bytes), 3);
    let translucent = read("generated/translucent.webp");
    assert_eq!(
        png_colour_type(&process(&translucent, "gray|png").unwrap().bytes),
        4
    );
    assert_eq!(
        png_colour_type(&process(&translucent, "png").unwrap().bytes),
        6
    );
}
