//! Each operation against an independently computed reference: ImageMagick 6's output for
//! the same operation on the same source (fixtures/reference/cases.tsv), by PSNR.

mod common;

use common::{decode_png, process_to_rgba, psnr, read};

#[test]
fn operations_match_imagemagick_within_stated_psnr() {
    let source = read("generated/source.png");
    let cases = String::from_utf8(read("reference/cases.tsv")).unwrap();
    let mut checked = 0;
    for line in cases
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let [name, pipeline, _imagemagick, min_psnr] = line.split('\t').collect::<Vec<_>>()[..]
        else {
            panic!("bad line {line}");
        };
        let ours = process_to_rgba(&source, pipeline);
        let reference = decode_png(&read(&format!("reference/{name}.png")));
        let got = psnr(&ours, &reference);
        let bound: f64 = min_psnr.parse().unwrap();
        eprintln!("{name:<14} {pipeline:<24} PSNR {got:>6.1} dB (bound {bound})");
        assert!(
            got >= bound,
            "{name} ({pipeline}): PSNR {got:.1} dB, expected at least {bound}"
        );
        checked += 1;
    }
    assert!(checked >= 19, "only {checked} cases read");
}
