//! The `prism` binary end to end: process, info, ops, exit codes.

use std::path::{Path, PathBuf};
use std::process::Command;

fn prism() -> Command {
    Command::new(env!("CARGO_BIN_EXE_prism"))
}

fn fixture(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(relative)
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("prism-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn process_writes_results_with_new_extensions_and_a_summary() {
    let out = scratch("process");
    let result = prism()
        .args([
            "process",
            "--threads",
            "2",
            "--pipeline",
            "fit:50x50|webp",
            "-o",
        ])
        .arg(&out)
        .arg(fixture("generated/source.png"))
        .arg(fixture("generated/cmyk.jpg"))
        .arg(fixture("exif-orientation/Landscape_6.jpg"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert!(
        result.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&result.stderr)
    );
    for name in ["source.webp", "cmyk.webp", "Landscape_6.webp"] {
        let bytes = std::fs::read(out.join(name)).unwrap();
        assert!(bytes.starts_with(b"RIFF"), "{name}");
    }
    assert!(stdout.contains("3 images, 0 failed"), "{stdout}");
    assert!(
        stdout.contains("images/s") && stdout.contains("MP/s") && stdout.contains("p99"),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn one_bad_file_fails_alone_and_sets_the_exit_code() {
    let out = scratch("failures");
    let result = prism()
        .args(["process", "-o"])
        .arg(&out)
        .arg(fixture("pngsuite/xd0n2c08.png"))
        .arg(fixture("generated/source.png"))
        .output()
        .unwrap();
    assert_eq!(result.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        stderr.contains("xd0n2c08.png") && stderr.contains("malformed"),
        "{stderr}"
    );
    assert!(
        out.join("source.jpg").exists(),
        "the good file is still processed"
    );
    assert!(String::from_utf8_lossy(&result.stdout).contains("2 images, 1 failed"));
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn directories_and_globs_expand_and_same_stems_do_not_overwrite() {
    let out = scratch("expand");
    let glob = fixture("exif-orientation").join("Landscape_[12].jpg");
    let result = prism()
        .args(["process", "--pipeline", "thumbnail", "-o"])
        .arg(&out)
        .arg(glob.to_string_lossy().as_ref())
        .arg(fixture("exif-orientation/Landscape_1.jpg"))
        .output()
        .unwrap();
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["Landscape_1-2.jpg", "Landscape_1.jpg", "Landscape_2.jpg"]
    );
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn bad_pipeline_is_a_usage_error_naming_the_step() {
    let result = prism()
        .args([
            "process",
            "-o",
            "/tmp/unused",
            "--pipeline",
            "fit:10|wobble",
        ])
        .arg(fixture("generated/source.png"))
        .output()
        .unwrap();
    assert_eq!(result.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.contains("step 2 `wobble`: unknown step"), "{stderr}");
}

/// A run that succeeds says nothing that looks like a failure: no driver or loader noise
/// (Mesa's Vulkan device-select layer printed "error: XDG_RUNTIME_DIR is invalid" on every run).
#[test]
fn successful_runs_print_no_error_lines() {
    let out = scratch("quiet");
    let runs = [
        prism()
            .args([
                "process",
                "--threads",
                "1",
                "--pipeline",
                "fit:40x40|png",
                "-o",
            ])
            .arg(&out)
            .arg(fixture("generated/source.png"))
            .output()
            .unwrap(),
        prism()
            .arg("info")
            .arg(fixture("generated/source.png"))
            .output()
            .unwrap(),
        prism().arg("ops").output().unwrap(),
    ];
    for result in runs {
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert!(result.status.success(), "{stderr}");
        assert!(!stderr.to_lowercase().contains("error"), "{stderr}");
    }
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn info_reports_headers_as_text_and_json() {
    let result = prism()
        .arg("info")
        .arg(fixture("exif-orientation/Landscape_6.jpg"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&result.stdout);
    assert!(text.contains("jpeg 1200x1800, orientation 6"), "{text}");

    let result = prism()
        .args(["info", "--json"])
        .arg(fixture("generated/icc.jpg"))
        .arg(fixture("pngsuite/xs1n0g01.png"))
        .output()
        .unwrap();
    assert_eq!(result.status.code(), Some(1), "one file is not an image");
    let json: serde_json::Value = serde_json::from_slice(&result.stdout).unwrap();
    assert_eq!(json[0]["info"]["format"], "jpeg");
    assert_eq!(json[0]["info"]["has_icc_profile"], true);
    assert!(json[1]["error"].as_str().unwrap().contains("unsupported"));
}

#[test]
fn ops_lists_operations_filters_and_presets() {
    let result = prism().arg("ops").output().unwrap();
    let text = String::from_utf8_lossy(&result.stdout);
    for needle in [
        "fit:WxH",
        "pixelate:N",
        "mitchell",
        "sticker",
        "longest:512|webp:85|maxkb:512",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

#[test]
fn gpu_info_names_the_adapter_or_says_why_there_is_none() {
    let result = prism().args(["gpu-info", "--json"]).output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&result.stdout).unwrap();
    if result.status.success() {
        let adapter = &report["adapter"];
        for field in ["name", "backend", "device_type", "driver"] {
            assert!(adapter[field].is_string(), "{report}");
        }
        assert!(adapter["max_binding_bytes"].as_u64().unwrap() > 0);
        // A software adapter is never what `auto` uses.
        assert_eq!(
            report["auto_uses_it"],
            !adapter["software"].as_bool().unwrap()
        );
    } else {
        assert!(!in_ci(), "CI has lavapipe: {report}");
        assert!(report["reason"].is_string(), "{report}");
    }
    let text = prism().arg("gpu-info").output().unwrap();
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(
        stdout.contains("adapter:") || stdout.contains("no GPU:"),
        "{stdout}"
    );
}

#[test]
fn backend_gpu_processes_on_the_gpu_and_cpu_stays_on_the_cpu() {
    for (backend, expected) in [("gpu", "on gpu"), ("cpu", "on cpu")] {
        let out = scratch(&format!("backend-{backend}"));
        let result = prism()
            .args([
                "--backend",
                backend,
                "process",
                "--pipeline",
                "fit:64x64|gray|png",
                "-o",
            ])
            .arg(&out)
            .arg(fixture("photos/dragonfly-1280.jpg"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert!(result.status.success(), "{stderr}");
        assert!(stderr.contains(&format!("backend {backend}")), "{stderr}");
        let gpu_missing = stderr.contains("CPU only");
        assert!(!(gpu_missing && in_ci()), "CI has lavapipe: {stderr}");
        if !gpu_missing {
            let stdout = String::from_utf8_lossy(&result.stdout);
            assert!(stdout.contains(expected), "{stdout}");
        }
        let _ = std::fs::remove_dir_all(out);
    }
    let refused = prism().args(["--backend", "tpu", "ops"]).output().unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("auto, cpu or gpu"));
}
