//! `include/shm_format.h` is generated from `shm_core::format`: this test
//! writes the header text from the Rust constants and fails when the
//! checked-in copy differs. Regenerate it with
//! `SHM_BLESS=1 cargo test -p shm-core --test c_header`.
//!
//! A second test checks that every scalar constant of the format module
//! reaches the header, so a word added to a table cannot be left out of it.
#![cfg(not(shm_loom))]
// A text comparison and file reads: nothing for Miri to check.
#![cfg(not(miri))]

use std::path::{Path, PathBuf};

const BLESS: &str = "SHM_BLESS=1 cargo test -p shm-core --test c_header";

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn generated() -> String {
    let mut text = String::new();
    shm_core::format::write_c_header(&mut text).expect("writing to a String cannot fail");
    text
}

#[test]
fn checked_in_header_matches_the_format_module() {
    let path = crate_dir().join("include/shm_format.h");
    let want = generated();
    if std::env::var_os("SHM_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &want).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    if have == want {
        return;
    }
    let first = have.lines().zip(want.lines()).position(|(a, b)| a != b);
    let hint = match first {
        Some(i) => format!(
            "first difference at line {}:\n  checked in: {}\n  generated:  {}",
            i + 1,
            have.lines().nth(i).unwrap_or(""),
            want.lines().nth(i).unwrap_or("")
        ),
        None => format!("the files differ in length ({} vs {} lines)", have.lines().count(), want.lines().count()),
    };
    panic!(
        "{} is out of date with shm_core::format ({hint}).\nIf the format change is intended, regenerate it with\n    {BLESS}\nand commit the new header.",
        path.display()
    );
}

/// `pub const NAME: <integer>` items of one format source file, with the
/// module path they are reachable at (`format::queue`, or
/// `format::header::state` for a nested module).
fn constants(file: &Path, module: &str) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let mut nested: Option<String> = None;
    let mut out = Vec::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("pub mod ").and_then(|r| r.strip_suffix(" {")) {
            nested = Some(name.to_owned());
        } else if line == "}" {
            nested = None;
        }
        let Some(rest) = line.trim_start().strip_prefix("pub const ") else { continue };
        let Some((name, ty)) = rest.split_once(": ") else { continue };
        let scalar = ["u16", "u32", "u64", "usize"].iter().any(|t| ty.starts_with(&format!("{t} ")));
        if scalar {
            match &nested {
                Some(inner) => out.push(format!("{module}::{inner}::{name}")),
                None => out.push(format!("{module}::{name}")),
            }
        }
    }
    out
}

#[test]
fn every_format_constant_reaches_the_header() {
    let dir = crate_dir().join("src/format");
    let generator = std::fs::read_to_string(dir.join("c_header.rs")).unwrap();
    let mut missing = Vec::new();
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_str().unwrap().to_owned();
        if stem == "c_header" {
            continue;
        }
        let module = if stem == "mod" { "format".to_owned() } else { format!("format::{stem}") };
        for path_name in constants(&path, &module) {
            seen += 1;
            let used = generator.match_indices(&path_name).any(|(at, _)| {
                let next = generator[at + path_name.len()..].chars().next();
                !next.is_some_and(|c| c.is_alphanumeric() || c == '_')
            });
            if !used {
                missing.push(path_name);
            }
        }
    }
    assert!(seen > 80, "found only {seen} constants: did the format module move?");
    assert!(missing.is_empty(), "constants not written to shm_format.h (add them to format/c_header.rs): {missing:?}");
}
