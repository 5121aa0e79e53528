//! Hostile command lines: each fails at once (before any experiment runs: nothing on stdout)
//! with exit status 1 (2 for clap's usage errors) and a message that says what is wrong.

use std::path::PathBuf;
use std::process::Command;

/// Runs the built binary with `args`; returns (exit code, stdout, stderr).
fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_revode-bench"))
        .args(args)
        .output()
        .expect("the revode-bench binary runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A fresh scratch directory under the target directory.
fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

fn assert_refused(args: &[&str], message: &str) {
    assert_exits(args, 1, message)
}

fn assert_exits(args: &[&str], status: i32, message: &str) {
    let (code, stdout, stderr) = run(args);
    assert_eq!(code, Some(status), "{args:?}: stderr {stderr}");
    assert!(stdout.is_empty(), "{args:?} ran something: {stdout}");
    assert!(
        stderr.contains(message),
        "{args:?}: expected {message:?} in {stderr:?}"
    );
}

#[test]
fn negative_numbers_reach_the_validators() {
    let dir = scratch("negative");
    let out = dir.to_str().expect("utf-8 path");
    assert_refused(
        &["--out", out, "sde-gan", "--rho", "-1"],
        "revode-bench: --rho must lie in (−1, 1), not -1",
    );
    assert_refused(
        &["--out", out, "sde-gan", "--steps", "0"],
        "--steps and --batch must be at least 1",
    );
    assert_refused(
        &["--out", out, "sde-gan", "--horizon", "-8"],
        "--horizon must be positive and finite, not -8",
    );
    // An unsigned value: clap's own message (usage error, status 2), not "unexpected
    // argument '-1'".
    assert_exits(
        &["--out", out, "sde-gan", "--seed", "-1"],
        2,
        "invalid value '-1' for '--seed <SEED>'",
    );
    assert_refused(
        &["--out", out, "--min-time", "-1", "stability"],
        "--min-time must be between 0 and 600 seconds, not -1",
    );
}

#[test]
fn training_settings_out_of_range_are_refused() {
    let dir = scratch("training");
    let out = dir.to_str().expect("utf-8 path");
    assert_refused(
        &["--out", out, "--seeds", "0", "pendulum"],
        "--seeds must be between 1 and 100",
    );
    assert_refused(
        &["--out", out, "pendulum", "--lr-final", "2"],
        "need --lr > 0, --lr-final in (0, 1] and --clip ≥ 0 (got 0.01, 2, 0)",
    );
    assert_refused(
        &["--out", out, "pendulum", "--clip", "-1"],
        "need --lr > 0, --lr-final in (0, 1] and --clip ≥ 0 (got 0.01, 1, -1)",
    );
}

#[test]
fn an_out_path_that_is_a_file_is_named_as_such() {
    let dir = scratch("file");
    let file = dir.join("report.txt");
    std::fs::write(&file, "x").expect("scratch file");
    let f = file.to_str().expect("utf-8 path");
    assert_refused(
        &["--out", f, "stability"],
        &format!("--out {f} is a file, not a directory"),
    );
    // Nothing was written to (or instead of) the file.
    assert_eq!(std::fs::read_to_string(&file).expect("still there"), "x");
}

#[cfg(target_os = "linux")]
#[test]
fn an_unwritable_out_directory_is_refused_before_the_run() {
    assert_refused(
        &["--out", "/proc/self", "stability"],
        "output directory /proc/self is not writable",
    );
}
