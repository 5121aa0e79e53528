//! A checkpoint is one atomic unit: a process killed at any point of saving leaves a checkpoint
//! that loads and resumes bit-identically (or, before the first save, none at all); truncated,
//! corrupted and old two-file checkpoints are refused with a typed error naming the files.

use revode_core::train::{self, Schedule, TrainConfig, TrainState, Trainer};
use revode_core::{checkpoint, Error, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Parameters: large enough that saving (write + fsync) dominates a step, so kills land mid-save.
const N: usize = 4096;
/// Steps of the child's run.
const STEPS: usize = 3000;

/// L = Σ (1 + i mod 7)·(p_i − cos i)² + 0.1·sin p_i: deterministic, with a non-trivial gradient.
fn loss_and_grad(_step: usize, p: &[f64], g: &mut [f64]) -> Result<f64> {
    let mut loss = 0.0;
    for (i, (&x, gi)) in p.iter().zip(g.iter_mut()).enumerate() {
        let w = 1.0 + (i % 7) as f64;
        let r = x - (i as f64).cos();
        loss += w * r * r + 0.1 * x.sin();
        *gi = 2.0 * w * r + 0.1 * x.cos();
    }
    Ok(loss / p.len() as f64)
}

fn fresh() -> TrainState {
    let p = (0..N).map(|i| (0.37 * i as f64).sin()).collect();
    TrainState::new(p, 1e-2, 1e-4, serde_json::json!({ "n": N })).unwrap()
}

/// The parameters' bits (the rest of the state is compared with `==`).
fn bits(s: &TrainState) -> Vec<u64> {
    s.params.iter().map(|x| x.to_bits()).collect()
}

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("revode-ckpt-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
#[ignore = "run as a child process by killed_saves_leave_a_loadable_checkpoint"]
fn child_saver() {
    let Ok(base) = std::env::var("REVODE_KILL_BASE") else {
        return;
    };
    let mut s = fresh();
    let opts = TrainConfig {
        checkpoint: Some(PathBuf::from(base)),
        checkpoint_every: 1,
        ..TrainConfig::new(STEPS, Schedule::constant(1e-2))
    };
    Trainer::new(opts).run(&mut s, loss_and_grad).unwrap();
}

/// Trains `s` to `steps` without checkpoints.
fn run_to(s: &mut TrainState, steps: usize) {
    Trainer::new(TrainConfig::new(steps, Schedule::constant(1e-2)))
        .run(s, loss_and_grad)
        .unwrap();
}

fn leftover_temporaries(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .count()
}

#[test]
fn killed_saves_leave_a_loadable_checkpoint() {
    let dir = tempdir("kill");
    let base = dir.join("run");
    let exe = std::env::current_exe().unwrap();
    // Pseudo-random kill delays (a fixed LCG: reproducible, no extra dependency).
    let mut lcg: u64 = 0x2545_f491_4f6c_dd1d;
    let (mut loaded, mut absent, mut mid_save) = (0, 0, 0);
    let mut checked_steps = Vec::new();
    for _ in 0..40 {
        lcg = lcg
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let delay = 20 + (lcg >> 33) % 180;
        let mut child = Command::new(&exe)
            .args(["child_saver", "--exact", "--ignored", "--test-threads=1"])
            .env("REVODE_KILL_BASE", &base)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        mid_save += usize::from(leftover_temporaries(&dir) > 0);
        match train::load(&base) {
            Ok(mut s) => {
                loaded += 1;
                let k = s.step();
                assert!((1..=STEPS).contains(&k));
                // Resume three steps and compare with an uninterrupted run, bit for bit.
                let target = (k + 3).min(STEPS);
                run_to(&mut s, target);
                let mut reference = fresh();
                run_to(&mut reference, target);
                assert!(
                    s == reference && bits(&s) == bits(&reference),
                    "resumed from step {k}: differs from the uninterrupted run"
                );
                checked_steps.push(k);
            }
            Err(Error::Io { .. }) if !checkpoint::file_of(&base).exists() => absent += 1,
            Err(e) => panic!("a killed save left a checkpoint that does not load: {e}"),
        }
    }
    eprintln!(
        "40 kills: {loaded} loaded and resumed bit-identically (steps {checked_steps:?}), \
         {absent} before the first save, {mid_save} killed while writing a temporary file"
    );
    assert!(
        loaded >= 30,
        "only {loaded} of 40 runs reached a checkpoint"
    );
    assert!(
        mid_save >= 1,
        "no kill landed inside a save: the test did not test anything"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn truncated_corrupted_and_two_file_checkpoints_are_refused() {
    let dir = tempdir("corrupt");
    let base = dir.join("c");
    let mut s = fresh();
    run_to(&mut s, 2);
    train::save(&s, &base).unwrap();
    let file = checkpoint::file_of(&base);
    let good = std::fs::read(&file).unwrap();
    assert_eq!(train::load(&base).unwrap(), s);

    let refused = |what: &str| match train::load(&base) {
        Err(Error::Checkpoint { files, .. }) => assert!(files.contains("c.safetensors"), "{what}"),
        other => panic!("{what}: expected a refused checkpoint, got {other:?}"),
    };
    // Truncated anywhere: in the header, in the data.
    for cut in [4, 40, good.len() / 2, good.len() - 1] {
        std::fs::write(&file, &good[..cut]).unwrap();
        refused(&format!("truncated at {cut}"));
    }
    // One flipped bit in the last parameter's bytes: caught by the content hash.
    let mut flipped = good.clone();
    let last = flipped.len() - 3;
    flipped[last] ^= 0x10;
    std::fs::write(&file, &flipped).unwrap();
    refused("flipped bit");

    // A two-file checkpoint of the old format: refused, naming both files.
    std::fs::write(&file, safetensors_without_revode_header()).unwrap();
    std::fs::write(
        base.with_extension("json"),
        b"{\"format\":\"revode-checkpoint-1\"}",
    )
    .unwrap();
    match train::load(&base) {
        Err(Error::Checkpoint { files, .. }) => {
            assert!(
                files.contains("c.safetensors") && files.contains("c.json"),
                "{files}"
            )
        }
        other => panic!("expected the old pair to be refused, got {other:?}"),
    }
    // The good checkpoint, restored, loads again.
    std::fs::write(&file, &good).unwrap();
    assert_eq!(train::load(&base).unwrap(), s);
    let _ = std::fs::remove_dir_all(dir);
}

fn safetensors_without_revode_header() -> Vec<u8> {
    use safetensors::tensor::{Dtype, TensorView};
    let bytes: Vec<u8> = [1.0f64, 2.0].iter().flat_map(|x| x.to_le_bytes()).collect();
    let view = TensorView::new(Dtype::F64, vec![2], &bytes).unwrap();
    safetensors::serialize(vec![("params".to_string(), view)], &None).unwrap()
}
