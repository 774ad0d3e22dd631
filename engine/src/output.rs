//! output (temporary stub)
#![allow(missing_docs)]
use std::path::Path;
pub fn write_files_atomically(dir: &Path, files: &[(String, Vec<u8>)]) -> std::io::Result<()> { std::fs::create_dir_all(dir)?; for (n, b) in files { write_atomically(&dir.join(n), b)?; } Ok(()) }
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> { let tmp = path.with_extension("tmp"); std::fs::write(&tmp, bytes)?; std::fs::rename(tmp, path) }
