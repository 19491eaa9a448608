//! Hostile and broken inputs: every one gives a typed error, never a panic; a truncated
//! file of any format is refused. A panic inside the engine would come back as
//! `ErrorKind::Internal`, so that kind fails these tests.

mod common;

use common::{engine, read};
use prism_engine::{Engine, EngineConfig, ErrorKind, Limits, Pipeline};

fn pipeline() -> Pipeline {
    "fit:64x64|png".parse().unwrap()
}

/// Runs the engine and fails the test on a panic-turned-internal error.
fn assert_no_internal(engine: &Engine, bytes: &[u8], what: &str) -> Option<ErrorKind> {
    match engine.process(bytes, &pipeline()) {
        Ok(_) => None,
        Err(error) => {
            assert_ne!(error.kind(), ErrorKind::Internal, "{what}: {error}");
            Some(error.kind())
        }
    }
}

/// Small files of every format and coding the engine reads.
const SAMPLES: [&str; 12] = [
    "libjpeg-turbo/testorig.jpg",
    "libjpeg-turbo/testimgint.jpg",
    "generated/cmyk.jpg",
    "pngsuite/basn6a16.png",
    "pngsuite/basi3p08.png",
    "libwebp/test.webp",
    "libwebp/lossless1.webp",
    "libwebp/lossy_alpha1.webp",
    "generated/animated.gif",
    "generated/animated.webp",
    "heif/srgb.heic",
    "heif/srgb.avif",
];

#[test]
fn empty_garbage_and_wrong_magic_are_refused() {
    let engine = engine();
    assert_eq!(
        assert_no_internal(engine, b"", "empty"),
        Some(ErrorKind::Unsupported)
    );
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let garbage: Vec<u8> = (0..4096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    assert_eq!(
        assert_no_internal(engine, &garbage, "garbage"),
        Some(ErrorKind::Unsupported)
    );
    // A valid signature in front of the wrong body.
    for magic in [
        &b"\x89PNG\r\n\x1a\n"[..],
        b"\xff\xd8\xff\xe0",
        b"GIF89a",
        b"RIFF\x10\0\0\0WEBPVP8 ",
        b"\0\0\0\x18ftypheic\0\0\0\0mif1heic",
    ] {
        let mut bytes = magic.to_vec();
        bytes.extend_from_slice(&garbage);
        assert!(assert_no_internal(engine, &bytes, "wrong body").is_some());
    }
    let jpeg_body_png_magic = [
        &b"\x89PNG\r\n\x1a\n"[..],
        &read("libjpeg-turbo/testorig.jpg")[..],
    ]
    .concat();
    assert_eq!(
        assert_no_internal(engine, &jpeg_body_png_magic, "png magic"),
        Some(ErrorKind::Malformed)
    );
}

#[test]
fn truncation_at_every_offset_is_refused_without_panics() {
    let engine = engine();
    for sample in SAMPLES {
        let bytes = read(sample);
        let step = (bytes.len() / 400).max(1);
        for cut in (0..bytes.len()).step_by(step) {
            let what = format!("{sample} cut at {cut} of {}", bytes.len());
            let kind = assert_no_internal(engine, &bytes[..cut], &what);
            assert!(kind.is_some(), "{what}: a truncated file must be refused");
        }
    }
}

#[test]
fn a_cut_says_truncated_for_every_format() {
    // Cut just before the end marker: each decoder could still produce the whole first
    // frame (JPEG by filling in, GIF and animated WebP from their first frame).
    for (sample, keep) in [
        ("libjpeg-turbo/testorig.jpg", 2),
        ("generated/animated.gif", 1),
        ("generated/animated.webp", 14),
        ("libwebp/test.webp", 40),
        ("pngsuite/basn6a16.png", 3),
        ("heif/srgb.heic", 100),
        ("heif/srgb.avif", 100),
    ] {
        let bytes = read(sample);
        let error = engine()
            .process(&bytes[..bytes.len() - keep], &pipeline())
            .expect_err(sample);
        assert_eq!(error.kind(), ErrorKind::Malformed, "{sample}: {error}");
        assert!(error.to_string().contains("truncated"), "{sample}: {error}");
        engine().process(&bytes, &pipeline()).expect(sample);
    }
}

#[test]
fn flipped_bytes_never_panic() {
    let engine = engine();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as usize
    };
    for sample in SAMPLES {
        let original = read(sample);
        for round in 0..150 {
            let mut bytes = original.clone();
            for _ in 0..1 + round % 4 {
                let at = next() % bytes.len();
                bytes[at] ^= 1 << (next() % 8);
            }
            assert_no_internal(engine, &bytes, &format!("{sample} mutation {round}"));
        }
    }
}

#[test]
fn corrupt_conformance_files_are_refused() {
    let engine = engine();
    let mut refused = 0;
    for path in common::files("pngsuite", "png") {
        if path.file_name().unwrap().to_string_lossy().starts_with('x') {
            let kind = assert_no_internal(
                engine,
                &std::fs::read(&path).unwrap(),
                &path.display().to_string(),
            );
            assert!(kind.is_some(), "{} must be refused", path.display());
            refused += 1;
        }
    }
    assert_eq!(refused, 14);
    // libwebp's deliberately broken files: an error or an image, never a panic.
    for broken in [
        "libwebp/bad_palette_index.webp",
        "libwebp/bug3.webp",
        "libwebp/very_short.webp",
    ] {
        assert_no_internal(engine, &read(broken), broken);
    }
}

/// A JPEG whose frame header claims 60000×60000, in well under a kilobyte.
fn huge_jpeg_header() -> Vec<u8> {
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x11, 0x08];
    bytes.extend_from_slice(&60000u16.to_be_bytes());
    bytes.extend_from_slice(&60000u16.to_be_bytes());
    bytes.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
    bytes.extend_from_slice(&[
        0xFF, 0xDA, 0x00, 0x0C, 3, 1, 0, 2, 0x11, 3, 0x11, 0, 0x3F, 0,
    ]);
    bytes.resize(900, 0x55);
    bytes
}

fn huge_png_header() -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    bytes.extend_from_slice(&100_000u32.to_be_bytes());
    bytes.extend_from_slice(&100_000u32.to_be_bytes());
    bytes.extend_from_slice(&[8, 2, 0, 0, 0, 0, 0, 0, 0]); // depth, colour type, ..., crc
    bytes.extend_from_slice(b"\0\0\0\0IDAT\0\0\0\0");
    bytes
}

fn huge_gif_header() -> Vec<u8> {
    let mut bytes = b"GIF89a".to_vec();
    bytes.extend_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0x3B]);
    bytes
}

/// A lossless WebP header claiming 16000×16000 (256 megapixels).
fn huge_webp_header() -> Vec<u8> {
    let size_bits: u32 = 15999 | (15999 << 14);
    let mut vp8l = vec![0x2F];
    vp8l.extend_from_slice(&size_bits.to_le_bytes());
    vp8l.extend_from_slice(&[0; 16]);
    let mut bytes = b"RIFF".to_vec();
    bytes.extend_from_slice(&(4 + 8 + vp8l.len() as u32).to_le_bytes());
    bytes.extend_from_slice(b"WEBPVP8L");
    bytes.extend_from_slice(&(vp8l.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&vp8l);
    bytes
}

#[test]
fn huge_dimensions_are_refused_from_the_header() {
    let engine = engine();
    for (what, bytes) in [
        ("jpeg 60000x60000", huge_jpeg_header()),
        ("png 100000x100000", huge_png_header()),
        ("gif 65535x65535", huge_gif_header()),
        ("webp 16000x16000", huge_webp_header()),
    ] {
        assert!(bytes.len() < 1024, "{what}");
        let started = std::time::Instant::now();
        let error = engine.process(&bytes, &pipeline()).unwrap_err();
        // Reported, not asserted: machines are shared and noisy.
        eprintln!("{what}: refused in {:?}: {error}", started.elapsed());
        assert_eq!(error.kind(), ErrorKind::Limits, "{what}: {error}");
        assert_eq!(
            engine.probe(&bytes).unwrap_err().kind(),
            ErrorKind::Limits,
            "{what}"
        );
    }
}

#[test]
fn configured_limits_are_enforced() {
    let bytes = read("generated/source.png"); // 96x64
    let tight = |limits: Limits| {
        Engine::new(EngineConfig {
            limits,
            ..EngineConfig::default()
        })
        .unwrap()
    };
    let small_input = tight(Limits {
        max_input_bytes: 1000,
        ..Limits::default()
    });
    assert_eq!(
        small_input.process(&bytes, &pipeline()).unwrap_err().kind(),
        ErrorKind::Limits
    );
    let few_pixels = tight(Limits {
        max_pixels: 96 * 64 - 1,
        ..Limits::default()
    });
    assert_eq!(
        few_pixels.process(&bytes, &pipeline()).unwrap_err().kind(),
        ErrorKind::Limits
    );
    let small_output = tight(Limits {
        max_output_pixels: 10_000,
        ..Limits::default()
    });
    let enlarge: Pipeline = "scale:2|png".parse().unwrap();
    assert_eq!(
        small_output.process(&bytes, &enlarge).unwrap_err().kind(),
        ErrorKind::Limits
    );
    assert!(small_output.process(&bytes, &pipeline()).is_ok());
}

/// Inputs the fuzz targets found (README "Proof"), kept in fixtures/fuzz: each is refused with a
/// typed error, through the whole engine and through the decode stage alone.
#[test]
fn fuzz_findings_stay_fixed() {
    let engine = engine();
    // decode_png: a PLTE chunk of 14 bytes (not whole RGB entries) made png 0.18 panic.
    let bytes = read("fuzz/png-plte-not-whole-entries.png");
    assert_eq!(
        assert_no_internal(engine, &bytes, "PLTE of 14 bytes"),
        Some(ErrorKind::Malformed)
    );
    let error = engine.decode(&bytes).expect_err("refused");
    assert_eq!(error.kind(), ErrorKind::Malformed, "{error}");
}
