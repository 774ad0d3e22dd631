//! Writes output files atomically, so a reader (or a crash mid-write) never sees half a file.
//!
//! Each file is written to a hidden temporary file in the same directory, flushed to disk,
//! and renamed over the target: a rename within one directory replaces the old file in one
//! step on every platform we support, while a write in place would leave a truncated file
//! behind if the run were killed.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// At most this many threads write (and flush) files at once.
const MAX_WRITERS: usize = 16;

/// Creates `dir` (and its parents) and writes every `(name, bytes)` into it atomically.
///
/// Names are relative to `dir` and must be plain file names. The temporary files are written
/// and flushed to disk concurrently, by up to [`MAX_WRITERS`] threads (a flush waits for the disk, and
/// concurrent flushes share the filesystem's journal commits: a report's dozen files cost
/// about one flush instead of a dozen), then renamed in order. If any write fails, no file is
/// renamed, every temporary is removed, and the first failing file's error is returned.
pub fn write_files_atomically(dir: &Path, files: &[(String, Vec<u8>)]) -> io::Result<()> {
    fs::create_dir_all(dir).map_err(|e| at(dir, e))?;
    if let Some((name, _)) = files.iter().find(|(name, _)| !is_plain_file_name(name)) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("report file name {name:?} is not a plain file name"),
        ));
    }
    // A rename cannot replace a directory; find that out before anything is renamed, so a
    // failed write leaves every old file in place.
    for (name, _) in files {
        let target = dir.join(name);
        if fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir()) {
            let e = io::Error::new(io::ErrorKind::IsADirectory, "is a directory");
            return Err(at(&target, e));
        }
    }
    let temps = files
        .iter()
        .map(|(name, _)| temp_path(&dir.join(name)))
        .collect::<io::Result<Vec<PathBuf>>>()?;
    let per_thread = files.len().div_ceil(MAX_WRITERS).max(1);
    let written: Vec<io::Result<()>> = std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(per_thread)
            .zip(temps.chunks(per_thread))
            .map(|(files, temps)| {
                scope.spawn(move || {
                    let write = |((_, bytes), temp): (&(String, Vec<u8>), &PathBuf)| {
                        write_and_sync(temp, bytes).map_err(|e| at(temp, e))
                    };
                    files.iter().zip(temps).map(write).collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|_| vec![Err(io::Error::other("a writer thread panicked"))])
            })
            .collect()
    });
    let mut result = written.into_iter().collect::<io::Result<()>>();
    if result.is_ok() {
        for ((name, _), temp) in files.iter().zip(&temps) {
            let target = dir.join(name);
            result = fs::rename(temp, &target).map_err(|e| at(&target, e));
            if result.is_err() {
                break;
            }
        }
    }
    if result.is_err() {
        // Best effort: the error worth reporting is the one that made us stop.
        for temp in &temps {
            let _ = fs::remove_file(temp);
        }
    }
    result
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename.
///
/// The parent directory must exist. On error the temporary file is removed and any previous
/// file at `path` is left untouched.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let temp = temp_path(path)?;
    let result = write_and_sync(&temp, bytes).and_then(|()| fs::rename(&temp, path));
    if result.is_err() {
        // Best effort: the error worth reporting is the one that made us stop.
        let _ = fs::remove_file(&temp);
    }
    result.map_err(|e| at(path, e))
}

/// `write_atomically` for a file that several processes may write at once (with the same
/// bytes), such as the manifest every shard writes into a shared directory: each writer's temp
/// file carries `writer` in its name, so one writer's rename cannot take another's temp file.
pub fn write_atomically_shared(path: &Path, bytes: &[u8], writer: &str) -> io::Result<()> {
    let temp = temp_path(path)?;
    let mut name = temp.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{writer}"));
    let temp = temp.with_file_name(name);
    let result = write_and_sync(&temp, bytes).and_then(|()| fs::rename(&temp, path));
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// `e`, its message naming `path`: the error a user sees must say which file failed.
fn at(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// `dir/.name.tmp` for `dir/name`: hidden, and in the same directory so rename is atomic.
fn temp_path(path: &Path) -> io::Result<PathBuf> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} has no file name", path.display()),
        )
    })?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(".tmp");
    Ok(path.with_file_name(temp_name))
}

fn write_and_sync(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = File::create(path)?;
    file.write_all(bytes)?;
    // Without the sync, a power loss after the rename could leave an empty file in place.
    file.sync_all()
}

/// A name that stays inside the output directory: no separators, not `.` or `..`.
fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch_dir(test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "archsim-output-{test}-{pid}",
            pid = std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn writes_files_and_leaves_no_temporaries() {
        let dir = scratch_dir("writes").join("nested");
        let files = vec![
            ("a.txt".to_string(), b"first".to_vec()),
            ("b.bin".to_string(), vec![0, 1, 2]),
        ];
        write_files_atomically(&dir, &files).expect("writes");
        assert_eq!(fs::read(dir.join("a.txt")).expect("a"), b"first");
        assert_eq!(fs::read(dir.join("b.bin")).expect("b"), [0, 1, 2]);
        let mut names: Vec<String> = fs::read_dir(&dir)
            .expect("lists")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["a.txt", "b.bin"]);
        let _ = fs::remove_dir_all(dir.parent().expect("parent"));
    }

    #[test]
    fn a_failed_write_renames_nothing_and_leaves_no_temporaries() {
        let dir = scratch_dir("fails");
        fs::create_dir_all(dir.join(".b.txt.tmp")).expect("a directory where b's temp goes");
        fs::write(dir.join("a.txt"), b"old").expect("an old a");
        // More files than writer threads, so that threads write several each.
        let mut files: Vec<(String, Vec<u8>)> = (0..40)
            .map(|i| (format!("f{i}.txt"), vec![i as u8]))
            .collect();
        files.insert(0, ("a.txt".to_string(), b"new".to_vec()));
        files.insert(20, ("b.txt".to_string(), b"b".to_vec()));
        write_files_atomically(&dir, &files).expect_err("b cannot be written");
        assert_eq!(fs::read(dir.join("a.txt")).expect("a"), b"old");
        let mut names: Vec<String> = fs::read_dir(&dir)
            .expect("lists")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, [".b.txt.tmp", "a.txt"]);
        fs::remove_dir(dir.join(".b.txt.tmp")).expect("rmdir");
        files.remove(20);
        write_files_atomically(&dir, &files).expect("writes");
        assert_eq!(fs::read(dir.join("a.txt")).expect("a"), b"new");
        assert_eq!(fs::read(dir.join("f39.txt")).expect("f39"), [39]);
        assert_eq!(fs::read_dir(&dir).expect("lists").count(), 41);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn overwrites_an_existing_file() {
        let dir = scratch_dir("overwrites");
        fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join("f.txt");
        write_atomically(&path, b"a much longer old content").expect("first");
        write_atomically(&path, b"new").expect("second");
        assert_eq!(fs::read(&path).expect("reads"), b"new");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn rejects_names_that_leave_the_directory() {
        let dir = scratch_dir("rejects");
        let files = vec![("../escape.txt".to_string(), Vec::new())];
        let err = write_files_atomically(&dir, &files).expect_err("rejected");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn missing_parent_is_an_error_and_leaves_nothing() {
        let dir = scratch_dir("missing");
        let err = write_atomically(&dir.join("f.txt"), b"x").expect_err("no parent");
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(!dir.exists());
    }
}
