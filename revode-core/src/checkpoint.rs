//! Checkpoints as one atomic unit: a single safetensors file whose header carries the JSON
//! metadata and a content hash of every tensor.
//!
//! A checkpoint is written to a temporary file in the target directory, flushed to disk
//! (`fsync`), and renamed over the old one; the directory is then flushed too. A reader
//! therefore sees either the previous checkpoint or the new one, never a mix, and a process
//! killed at any point leaves the previous checkpoint usable. [`read`] re-hashes the tensors
//! (64-bit FNV-1a over names, shapes and bytes) and refuses a truncated, corrupted or foreign
//! file with [`Error::Checkpoint`], naming the file(s).

use crate::files::io;
use crate::{Error, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The format tag stored in every checkpoint header.
pub const FORMAT: &str = "revode-checkpoint-2";

/// Named `f64` vectors plus free-form JSON metadata: what a checkpoint holds.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    /// Free-form metadata (step, optimiser settings, model description, …).
    pub meta: serde_json::Value,
    /// Named flat tensors (read back sorted by name, the order the file stores them in).
    pub tensors: Vec<(String, Vec<f64>)>,
}

impl Checkpoint {
    /// The tensor called `name`, or a typed error naming the file it was expected in.
    pub fn tensor(&self, name: &str, file: &Path) -> Result<&[f64]> {
        self.tensors
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
            .ok_or_else(|| corrupt(file, format!("no tensor '{name}'")))
    }
}

/// The one file a checkpoint at `base` lives in: `base` with the extension `safetensors`.
pub fn file_of(base: &Path) -> PathBuf {
    base.with_extension("safetensors")
}

fn corrupt(file: &Path, message: impl Into<String>) -> Error {
    Error::Checkpoint {
        files: file.display().to_string(),
        message: message.into(),
    }
}

/// 64-bit FNV-1a over the tensors' names, lengths and little-endian bytes, in name order.
fn content_hash(tensors: &[(String, Vec<f64>)]) -> u64 {
    let mut sorted: Vec<&(String, Vec<f64>)> = tensors.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h ^= b as u64;
            h = h.wrapping_mul(PRIME);
        }
    };
    for (name, v) in sorted {
        eat(name.as_bytes());
        eat(&(v.len() as u64).to_le_bytes());
        for x in v {
            eat(&x.to_le_bytes());
        }
    }
    h
}

pub use crate::files::write_atomic;

/// Saves `ckpt` as one file at `file_of(base)`, atomically.
pub fn write(ckpt: &Checkpoint, base: &Path) -> Result<()> {
    use safetensors::tensor::{Dtype, TensorView};
    let file = file_of(base);
    let bufs: Vec<Vec<u8>> = ckpt
        .tensors
        .iter()
        .map(|(_, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect())
        .collect();
    let mut views = Vec::with_capacity(bufs.len());
    for ((name, v), b) in ckpt.tensors.iter().zip(&bufs) {
        let view = TensorView::new(Dtype::F64, vec![v.len()], b)
            .map_err(|e| io(&file, format!("tensor '{name}': {e:?}")))?;
        views.push((name.clone(), view));
    }
    let meta = serde_json::to_string(&ckpt.meta).map_err(|e| io(&file, e))?;
    let header = HashMap::from([
        ("format".to_string(), FORMAT.to_string()),
        ("meta".to_string(), meta),
        (
            "hash".to_string(),
            format!("{:016x}", content_hash(&ckpt.tensors)),
        ),
    ]);
    let bytes =
        safetensors::serialize(views, &Some(header)).map_err(|e| io(&file, format!("{e:?}")))?;
    write_atomic(&file, &bytes)
}

/// Reads a checkpoint written by [`write`], verifying its format and content hash.
///
/// A missing file is [`Error::Io`]; a truncated, corrupted, foreign or two-file (pre-2)
/// checkpoint is [`Error::Checkpoint`] naming the file(s).
pub fn read(base: &Path) -> Result<Checkpoint> {
    let file = file_of(base);
    let bytes = std::fs::read(&file).map_err(|e| io(&file, e))?;
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| {
        corrupt(
            &file,
            format!("truncated or not a safetensors file ({e:?})"),
        )
    })?;
    let fields = header.metadata().clone().unwrap_or_default();
    let legacy = base.with_extension("json");
    match fields.get("format").map(String::as_str) {
        Some(FORMAT) => {}
        None if legacy.exists() => {
            return Err(Error::Checkpoint {
                files: format!("{} and {}", file.display(), legacy.display()),
                message: "a two-file checkpoint of an older revode: nothing proves the two \
                          files belong to the same step, so it is not loaded"
                    .into(),
            })
        }
        other => {
            return Err(corrupt(
                &file,
                format!("unknown checkpoint format {other:?} (expected {FORMAT})"),
            ))
        }
    }
    let tensors_file = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| corrupt(&file, format!("truncated or corrupt ({e:?})")))?;
    let mut tensors = Vec::new();
    let mut names: Vec<String> = header.tensors().into_keys().collect();
    names.sort();
    for name in names {
        let t = tensors_file
            .tensor(&name)
            .map_err(|e| corrupt(&file, format!("tensor '{name}': {e:?}")))?;
        if t.dtype() != safetensors::tensor::Dtype::F64 || t.shape().len() != 1 {
            return Err(corrupt(
                &file,
                format!("tensor '{name}' is not a 1-D f64 tensor"),
            ));
        }
        let v = t
            .data()
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect();
        tensors.push((name, v));
    }
    let want = fields.get("hash").cloned().unwrap_or_default();
    let got = format!("{:016x}", content_hash(&tensors));
    if want != got {
        return Err(corrupt(
            &file,
            format!("content hash mismatch (header {want}, data {got}): corrupted"),
        ));
    }
    let meta_text = fields.get("meta").cloned().unwrap_or_default();
    let meta = serde_json::from_str(&meta_text)
        .map_err(|e| corrupt(&file, format!("metadata is not JSON: {e}")))?;
    Ok(Checkpoint { meta, tensors })
}
