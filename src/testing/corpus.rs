//! Where the third-party corpus is, and how a test that needs it runs or is skipped.

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The variable that names the corpus directory.
pub const DIR_VAR: &str = "LINKRANK_CORPUS";
/// Set to `1` where the corpus must be present: a missing corpus fails the tests.
pub const REQUIRE_VAR: &str = "LINKRANK_REQUIRE_CORPUS";
/// A file to which every corpus test appends `ran` or `skipped` with its name.
pub const LOG_VAR: &str = "LINKRANK_CORPUS_LOG";

/// The corpus directory, or why there is none.
pub fn dir() -> Result<PathBuf, String> {
    match std::env::var_os(DIR_VAR) {
        Some(d) if !d.is_empty() => {
            let d = PathBuf::from(d);
            if d.join("MANIFEST.tsv").is_file() {
                Ok(d)
            } else {
                // A named directory that is not there is a mistake, never a skip.
                panic!(
                    "{DIR_VAR}={} holds no MANIFEST.tsv: not a corpus directory",
                    d.display()
                )
            }
        }
        _ => {
            let beside = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
            if beside.join("MANIFEST.tsv").is_file() {
                Ok(beside)
            } else {
                Err(format!(
                    "no third-party corpus: {DIR_VAR} is not set and {} does not exist",
                    beside.display()
                ))
            }
        }
    }
}

/// A file of the corpus. Only for tests that passed [`require`]: without a corpus this
/// panics, so a test that forgot its guard fails rather than passing vacuously.
pub fn path(name: &str) -> PathBuf {
    match dir() {
        Ok(d) => d.join(name),
        Err(why) => panic!("{why} (the test reading {name} must start with corpus::require())"),
    }
}

/// Guard at the top of a test that reads the corpus: `true` to run it. Without a corpus
/// the test is reported as skipped (by name, with the reason) and should return;
/// with `LINKRANK_REQUIRE_CORPUS=1` it fails instead.
pub fn require() -> bool {
    let name = std::thread::current()
        .name()
        .unwrap_or("an unnamed test")
        .to_owned();
    match dir() {
        Ok(_) => {
            log(&format!("ran\t{name}"));
            true
        }
        Err(why) => {
            if std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "1") {
                panic!("{why}, and {REQUIRE_VAR}=1 says it must be there");
            }
            eprintln!("skipped {name}: {why}");
            log(&format!("skipped\t{name}\t{why}"));
            false
        }
    }
}

fn log(line: &str) {
    let Some(file) = std::env::var_os(LOG_VAR) else {
        return;
    };
    // One short append per test: O_APPEND keeps lines from parallel tests whole.
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&file)
        .and_then(|mut f| f.write_all(format!("{line}\n").as_bytes()));
    if let Err(e) = written {
        panic!(
            "cannot append to {LOG_VAR}={}: {e}",
            Path::new(&file).display()
        );
    }
}
