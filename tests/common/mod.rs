//! Helpers shared by the end-to-end tests: fixture paths, an independent PNG decoder for
//! checking outputs, and PSNR.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};

use prism_engine::{Engine, EngineConfig, Output, Pipeline};

pub fn fixture(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(relative)
}

pub fn read(relative: &str) -> Vec<u8> {
    std::fs::read(fixture(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

/// Every file in a fixture folder with the given extension, sorted.
pub fn files(folder: &str, extension: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixture(folder))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == extension))
        .collect();
    files.sort();
    files
}

/// The JPEGs (.jpg, .jpeg) in any folder, read and sorted by name: the photos the load and
/// soak tests send when pointed at a corpus.
pub fn jpegs_in(folder: &Path) -> Vec<Vec<u8>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(folder)
        .unwrap_or_else(|e| panic!("{}: {e}", folder.display()))
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "jpg" || e == "jpeg"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|path| std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .collect()
}

/// One engine (and worker pool) shared by all tests of a binary.
pub fn engine() -> &'static Engine {
    static ENGINE: std::sync::OnceLock<Engine> = std::sync::OnceLock::new();
    ENGINE.get_or_init(|| Engine::new(EngineConfig::default()).expect("engine starts"))
}

pub fn process(bytes: &[u8], pipeline: &str) -> Result<Output, prism_engine::Error> {
    let pipeline: Pipeline = pipeline
        .parse()
        .unwrap_or_else(|e| panic!("{pipeline}: {e}"));
    engine().process(bytes, &pipeline)
}

/// Decoded 8-bit RGBA pixels (gray and RGB expanded, opaque alpha added).
#[derive(Debug, Clone, PartialEq)]
pub struct Rgba {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

/// Decodes a PNG with the `png` crate (independent of the engine's decoding path).
pub fn decode_png(bytes: &[u8]) -> Rgba {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().unwrap();
    let mut buffer = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buffer).unwrap();
    buffer.truncate(info.buffer_size());
    let pixels = match info.color_type {
        png::ColorType::Rgba => buffer,
        png::ColorType::Rgb => buffer
            .chunks_exact(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect(),
        png::ColorType::Grayscale => buffer.iter().flat_map(|&l| [l, l, l, 255]).collect(),
        png::ColorType::GrayscaleAlpha => buffer
            .chunks_exact(2)
            .flat_map(|p| [p[0], p[0], p[0], p[1]])
            .collect(),
        png::ColorType::Indexed => unreachable!("expanded"),
    };
    Rgba {
        width: info.width,
        height: info.height,
        pixels,
    }
}

/// Runs `pipeline` (which must end in `png`) and decodes the result.
pub fn process_to_rgba(bytes: &[u8], pipeline: &str) -> Rgba {
    let output = process(bytes, pipeline).unwrap_or_else(|e| panic!("{pipeline}: {e}"));
    decode_png(&output.bytes)
}

/// Peak signal-to-noise ratio over RGB (alpha ignored); infinity when identical.
pub fn psnr(a: &Rgba, b: &Rgba) -> f64 {
    assert_eq!(
        (a.width, a.height),
        (b.width, b.height),
        "dimensions differ"
    );
    let mut squared = 0f64;
    let mut count = 0f64;
    for (pa, pb) in a.pixels.chunks_exact(4).zip(b.pixels.chunks_exact(4)) {
        for c in 0..3 {
            let d = f64::from(pa[c]) - f64::from(pb[c]);
            squared += d * d;
            count += 1.0;
        }
    }
    if squared == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255f64 * 255.0 / (squared / count)).log10()
    }
}
