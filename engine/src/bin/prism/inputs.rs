//! Turns the command line's files, directories and globs into a list of input paths and
//! unique output paths.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// Extensions picked up when a directory is given (named files are always tried: the
/// format itself is sniffed from the bytes).
const IMAGE_EXTENSIONS: [&str; 8] = ["jpg", "jpeg", "png", "webp", "gif", "heic", "heif", "avif"];

pub fn expand(arguments: &[String]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for argument in arguments {
        let path = Path::new(argument);
        if path.is_dir() {
            walk(path, &mut files).with_context(|| format!("reading directory {argument}"))?;
        } else if path.exists() {
            files.push(path.to_path_buf());
        } else if argument.contains(['*', '?', '[']) {
            let matches = glob::glob(argument).with_context(|| format!("bad glob {argument}"))?;
            let before = files.len();
            files.extend(matches.filter_map(Result::ok).filter(|p| p.is_file()));
            if files.len() == before {
                bail!("{argument} matches no file");
            }
        } else {
            bail!("{argument}: no such file or directory");
        }
    }
    Ok(files)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, files)?;
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        {
            files.push(path);
        }
    }
    Ok(())
}

/// Output stem for each input: the input's stem, with `-2`, `-3`... added when two inputs
/// share one, so no result overwrites another.
pub fn unique_stems(files: &[PathBuf]) -> Vec<String> {
    let mut taken = HashSet::new();
    files
        .iter()
        .map(|file| {
            let stem = file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "image".into());
            let mut candidate = stem.clone();
            let mut n = 2;
            while !taken.insert(candidate.clone()) {
                candidate = format!("{stem}-{n}");
                n += 1;
            }
            candidate
        })
        .collect()
}
