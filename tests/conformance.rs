//! Conformance corpora (PngSuite, libjpeg-turbo, libwebp, EXIF orientation) and the
//! generated fixtures: everything decodes correctly or is refused with the right error.

mod common;

use common::{decode_png, engine, files, process, process_to_rgba, psnr, read};
use md5::{Digest, Md5};
use prism_engine::ErrorKind;

fn name(path: &std::path::Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn pngsuite_decodes_every_valid_file_and_refuses_the_corrupt_ones() {
    let all = files("pngsuite", "png");
    assert!(all.len() > 170);
    for path in &all {
        let bytes = std::fs::read(path).unwrap();
        let result = process(&bytes, "noorient|png");
        if name(path).starts_with('x') {
            let kind = result.err().map(|e| e.kind());
            assert!(
                matches!(kind, Some(ErrorKind::Malformed | ErrorKind::Unsupported)),
                "{}: corrupt file gave {kind:?}",
                name(path)
            );
        } else {
            let output = result.unwrap_or_else(|e| panic!("{}: {e}", name(path)));
            assert_eq!(
                (output.width, output.height),
                (output.input.width, output.input.height)
            );
        }
    }
}

#[test]
fn pngsuite_interlaced_files_equal_their_non_interlaced_twins() {
    let mut pairs = 0;
    for interlaced in files("pngsuite", "png")
        .into_iter()
        .filter(|p| name(p).starts_with("basi"))
    {
        let twin = interlaced.with_file_name(name(&interlaced).replacen("basi", "basn", 1));
        let a = process_to_rgba(&std::fs::read(&interlaced).unwrap(), "png");
        let b = process_to_rgba(&std::fs::read(&twin).unwrap(), "png");
        assert_eq!(a, b, "{}", name(&interlaced));
        pairs += 1;
    }
    assert!(pairs >= 15, "{pairs} pairs");
}

#[test]
fn libjpeg_turbo_images_decode_or_are_refused_as_unsupported() {
    let baseline = process_to_rgba(&read("libjpeg-turbo/testorig.jpg"), "png");
    let progressive = process_to_rgba(&read("libjpeg-turbo/testimgint.jpg"), "png");
    assert_eq!((baseline.width, baseline.height), (227, 149));
    let similarity = psnr(&baseline, &progressive);
    assert!(
        similarity > 30.0,
        "baseline vs progressive encodings of one image: {similarity:.1} dB"
    );
    for refused in ["libjpeg-turbo/monkey12.jpg", "libjpeg-turbo/testimgari.jpg"] {
        let error = process(&read(refused), "png").unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Unsupported, "{refused}: {error}");
    }
}

/// libwebp's own decoder output hashes (libwebp_tests.md5), as dwebp writes PPM and PAM.
fn libwebp_md5(file: &str, extension: &str) -> Option<String> {
    let list = String::from_utf8(read("libwebp/libwebp_tests.md5")).unwrap();
    let wanted = format!("{file}.{extension}");
    list.lines().find_map(|line| {
        let (hash, name) = line.split_once("  ")?;
        (name.trim() == wanted).then(|| hash.to_string())
    })
}

#[test]
fn libwebp_corpus_decodes_bit_identical_to_libwebp() {
    let (mut decoded, mut refused, mut checked) = (0, 0, 0);
    for path in files("libwebp", "webp") {
        let file = name(&path);
        match process(&std::fs::read(&path).unwrap(), "png") {
            Ok(output) => {
                decoded += 1;
                let image = decode_png(&output.bytes);
                let mut hasher = Md5::new();
                let expected = if output.has_alpha || output.input.has_alpha {
                    hasher.update(format!(
                        "P7\nWIDTH {}\nHEIGHT {}\nDEPTH 4\nMAXVAL 255\nTUPLTYPE RGB_ALPHA\nENDHDR\n",
                        image.width, image.height
                    ));
                    hasher.update(&image.pixels);
                    libwebp_md5(&file, "pam")
                } else {
                    hasher.update(format!("P6\n{} {}\n255\n", image.width, image.height));
                    let rgb: Vec<u8> = image
                        .pixels
                        .chunks_exact(4)
                        .flat_map(|p| [p[0], p[1], p[2]])
                        .collect();
                    hasher.update(&rgb);
                    libwebp_md5(&file, "ppm")
                };
                if let Some(expected) = expected {
                    let got: String = hasher
                        .finalize()
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect();
                    assert_eq!(got, expected, "{file} differs from libwebp's decoding");
                    checked += 1;
                }
            }
            Err(error) => {
                assert!(
                    matches!(error.kind(), ErrorKind::Malformed | ErrorKind::Unsupported),
                    "{file}: {error}"
                );
                refused += 1;
            }
        }
    }
    assert!(decoded >= 120, "decoded {decoded}, refused {refused}");
    eprintln!(
        "libwebp corpus: {decoded} decoded, {refused} refused, {checked} identical to libwebp's own decoding"
    );
    assert!(
        checked >= 90,
        "only {checked} files checked against libwebp"
    );
}

#[test]
fn all_exif_orientations_come_out_alike() {
    for kind in ["Landscape", "Portrait"] {
        let upright = process_to_rgba(
            &read(&format!("exif-orientation/{kind}_1.jpg")),
            "fit:400|png",
        );
        for n in [0, 2, 3, 4, 5, 6, 7, 8] {
            let file = format!("exif-orientation/{kind}_{n}.jpg");
            let oriented = process_to_rgba(&read(&file), "fit:400|png");
            // Each file was JPEG-encoded separately (measured 28-37 dB); a wrong turn gives ~12.
            let similarity = psnr(&upright, &oriented);
            assert!(
                similarity > 25.0,
                "{file}: {similarity:.1} dB against {kind}_1"
            );
        }
    }
}

#[test]
fn without_orient_the_stored_pixels_differ() {
    let upright = process_to_rgba(&read("exif-orientation/Landscape_1.jpg"), "fit:400|png");
    let stored = process_to_rgba(
        &read("exif-orientation/Landscape_3.jpg"),
        "noorient|fit:400|png",
    );
    let similarity = psnr(&upright, &stored);
    assert!(similarity < 20.0, "upside-down copy: {similarity:.1} dB");
}

#[test]
fn orientation_is_read_from_png_and_webp_exif_too() {
    let source = decode_png(&read("generated/source.png"));
    for file in ["generated/orient6.png", "generated/orient6.webp"] {
        let oriented = process_to_rgba(&read(file), "png");
        assert_eq!(oriented, source, "{file}");
        let stored = process_to_rgba(&read(file), "noorient|png");
        assert_eq!(
            (stored.width, stored.height),
            (64, 96),
            "{file}: noorient keeps the stored layout"
        );
    }
}

#[test]
fn jpeg_variants_decode_with_correct_colours() {
    let source = decode_png(&read("generated/source.png"));
    for (file, bound) in [
        ("generated/progressive.jpg", 35.0),
        ("generated/restart.jpg", 35.0),
        ("generated/icc.jpg", 35.0),
    ] {
        let decoded = process_to_rgba(&read(file), "png");
        let similarity = psnr(&source, &decoded);
        assert!(
            similarity > bound,
            "{file}: {similarity:.1} dB against the source"
        );
    }
    // Untagged ink goes through a press profile, as libvips reads it (fixtures/generated/make.sh).
    for ink in ["cmyk", "ycck"] {
        let decoded = process_to_rgba(&read(&format!("generated/{ink}.jpg")), "png");
        let reference = decode_png(&read(&format!("generated/{ink}.srgb.png")));
        let similarity = psnr(&reference, &decoded);
        assert!(
            similarity > 40.0,
            "{ink}: {similarity:.1} dB against libvips"
        );
    }
    let gray = process_to_rgba(&read("generated/gray.jpg"), "png");
    assert!(
        gray.pixels
            .chunks_exact(4)
            .all(|p| p[0] == p[1] && p[1] == p[2])
    );
}

#[test]
fn first_frame_of_animations() {
    let source = decode_png(&read("generated/source.png"));
    let webp = process_to_rgba(&read("generated/animated.webp"), "png");
    assert_eq!(webp, source, "lossless animated WebP: first frame exactly");
    let gif = process_to_rgba(&read("generated/animated.gif"), "png");
    let similarity = psnr(&gif, &source);
    assert!(
        similarity > 20.0,
        "GIF first frame (256-colour palette): {similarity:.1} dB"
    );

    let partial = process_to_rgba(&read("generated/partial.gif"), "png");
    assert_eq!((partial.width, partial.height), (40, 30));
    let pixel = |x: usize, y: usize| &partial.pixels[(y * 40 + x) * 4..][..4];
    assert_eq!(pixel(0, 0)[3], 0, "outside the first frame is transparent");
    assert_eq!(pixel(5, 7), &[255, 0, 0, 255]);
    assert_eq!(pixel(24, 16), &[255, 0, 0, 255]);
    assert_eq!(pixel(25, 17)[3], 0);
}

#[test]
fn outputs_are_oriented_carry_no_exif_and_keep_rgb_icc_profiles_only_when_asked() {
    let output = process(&read("exif-orientation/Landscape_6.jpg"), "jpeg").unwrap();
    assert_eq!((output.width, output.height), (1800, 1200));
    assert!(
        !output.bytes.windows(6).any(|w| w == b"Exif\0\0"),
        "EXIF must not be written"
    );

    let carries_profile = |bytes: &[u8]| bytes.windows(12).any(|w| w == b"ICC_PROFILE\0");
    let converted = process(&read("generated/icc.jpg"), "fit:50|jpeg").unwrap();
    assert!(converted.input.has_icc_profile);
    assert!(!carries_profile(&converted.bytes), "converted to sRGB");
    let kept = process(&read("generated/icc.jpg"), "keepicc|fit:50|jpeg").unwrap();
    assert!(carries_profile(&kept.bytes), "RGB profile kept");
}

#[test]
fn default_output_is_jpeg_when_opaque_and_png_with_alpha() {
    let opaque = process(&read("generated/source.png"), "").unwrap();
    assert_eq!(opaque.format, prism_engine::OutputFormat::Jpeg);
    let translucent = process(&read("generated/translucent.webp"), "").unwrap();
    assert_eq!(translucent.format, prism_engine::OutputFormat::Png);
    let rgba = decode_png(&translucent.bytes);
    assert!(
        rgba.pixels
            .chunks_exact(4)
            .all(|p| (126..=129).contains(&p[3])),
        "alpha kept"
    );
}

#[test]
fn sticker_preset_meets_telegram_rules_on_a_12mp_photo() {
    let output = process(&read("photos/dragonfly-12mp.jpg"), "sticker").unwrap();
    assert_eq!(output.format, prism_engine::OutputFormat::Webp);
    assert_eq!(output.width.max(output.height), 512);
    assert!(
        output.bytes.len() <= 512 * 1024,
        "{} bytes",
        output.bytes.len()
    );
}

#[test]
fn lossy_webp_is_far_smaller_than_lossless_and_close_to_it() {
    let photo = read("photos/dragonfly-12mp.jpg");
    let lossless = process(&photo, "fit:1280|webp:lossless").unwrap();
    let lossy = process(&photo, "fit:1280|webp:80").unwrap();
    assert_eq!(lossy.format, prism_engine::OutputFormat::Webp);
    let ratio = lossy.bytes.len() as f64 / lossless.bytes.len() as f64;
    assert!(ratio < 0.5, "lossy is {ratio:.3} x lossless");
    // Decoded by the engine (image-webp, bit-exact to libwebp on its corpus) into PNG.
    let exact = process_to_rgba(&lossless.bytes, "png");
    let approximate = process_to_rgba(&lossy.bytes, "png");
    assert_eq!(
        exact,
        process_to_rgba(&photo, "fit:1280|png"),
        "lossless keeps every pixel"
    );
    let similarity = psnr(&exact, &approximate);
    assert!(similarity > 36.0, "{similarity:.1} dB");
    let smaller = process(&photo, "fit:1280|webp:80|maxkb:40").unwrap();
    assert!(
        smaller.bytes.len() <= 40 * 1024,
        "{} bytes",
        smaller.bytes.len()
    );
}

/// Smooth sky, 1200×400, with a 280×160 patch of the dragonfly photo pasted at `left`.
fn sky_with_subject_at(left: u32) -> (Vec<u8>, impl Fn(u32, u32) -> [u8; 3]) {
    let subject = process_to_rgba(
        &read("photos/dragonfly-1280.jpg"),
        "fit:640|crop:240,120,280,160|png",
    );
    let sky = |_x: u32, y: u32| [40 + (y / 10) as u8, 110 + (y / 8) as u8, 220];
    let (width, height) = (1200u32, 400u32);
    let mut rgb = Vec::with_capacity((width * height * 3) as usize);
    for y in 0..height {
        for x in 0..width {
            let (sx, sy) = (x.wrapping_sub(left), y.wrapping_sub(120));
            if sx < subject.width && sy < subject.height {
                let at = ((sy * subject.width + sx) * 4) as usize;
                rgb.extend_from_slice(&subject.pixels[at..at + 3]);
            } else {
                rgb.extend_from_slice(&sky(x, y));
            }
        }
    }
    let mut png = Vec::new();
    let mut encoder = png::Encoder::new(&mut png, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder
        .write_header()
        .unwrap()
        .write_image_data(&rgb)
        .unwrap();
    (png, sky)
}

#[test]
fn smart_fill_follows_an_off_centre_subject() {
    for left in [0, 40, 460, 860, 920] {
        let (scene, sky) = sky_with_subject_at(left);
        let centred = (400..=520).contains(&left);
        for (gravity, must_hold) in [("attention", true), ("entropy", true), ("centre", centred)] {
            // 1200x400 to 400x400 crops only, so the output pixels are the scene's.
            let out = process_to_rgba(&scene, &format!("fill:400x400:{gravity}|png"));
            let subject_pixels = out
                .pixels
                .chunks_exact(4)
                .enumerate()
                .filter(|(i, px)| {
                    let y = *i as u32 / out.width;
                    px[..3] != sky(0, y)
                })
                .count();
            let held = subject_pixels as f64 / (280.0 * 160.0);
            if must_hold {
                assert!(held > 0.99, "{gravity} at {left}: {held:.2} of the subject");
            } else {
                assert!(
                    held < 0.01,
                    "{gravity} at {left}: {held:.2}: the test can fail"
                );
            }
        }
    }
}

#[test]
fn decoding_for_a_shrink_reduces_the_scale_beyond_three() {
    let photo = read("photos/dragonfly-12mp.jpg");
    let (info, full) = engine().decode(&photo).expect("decodes");
    assert_eq!((full.width(), full.height()), (info.width, info.height));
    // Up to three the full size (the same pixels: nothing is skipped); 1/2 scale beyond three,
    // 1/4 beyond eight, 1/8 beyond twenty-four, rounded up.
    let cases = [
        (2.0, 8),
        (3.0, 8),
        (3.1, 4),
        (8.0, 4),
        (8.5, 2),
        (24.0, 2),
        (30.0, 1),
    ];
    for (shrink, side) in cases {
        let (_, frame) = engine().decode_for_shrink(&photo, shrink).expect("decodes");
        let expected = |length: u32| (length * side).div_ceil(8);
        assert_eq!(
            (frame.width(), frame.height()),
            (expected(info.width), expected(info.height)),
            "shrink {shrink}"
        );
        if side == 8 {
            assert_eq!(frame.data(), full.data(), "shrink {shrink}");
        }
    }
    let (_, nan) = engine()
        .decode_for_shrink(&photo, f64::NAN)
        .expect("decodes");
    assert_eq!(nan.data(), full.data(), "NaN counts as no shrink");
}

#[test]
fn progressive_shrink_on_load_stays_close_to_a_full_decode() {
    // On a 4224x3168 progressive photo, fit:1000 shrinks 4.2x, so the photo decodes at 1/2
    // scale, and fit:320 13x, so it decodes at 1/4 without the scans of the bands that cannot
    // show there; fit:120 35x, so it decodes at 1/8 from DC coefficients alone. A first step
    // that does not resample (two flips) forces the full decode.
    let photo = read("photos/dragonfly-12mp.jpg");
    for fit in ["fit:1000", "fit:320", "fit:120"] {
        let pruned = process_to_rgba(&photo, &format!("{fit}|png"));
        let full = process_to_rgba(&photo, &format!("flip:h|flip:h|{fit}|png"));
        let similarity = psnr(&pruned, &full);
        assert!(similarity > 40.0, "{fit}: {similarity:.1} dB");
        assert!(similarity.is_finite(), "{fit}: scans were actually skipped");
    }
}
