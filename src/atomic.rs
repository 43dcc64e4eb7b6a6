//! Atomic file writes: a checkpoint or shard is either the old file or the new
//! one, never half of each, even when the process is killed mid-write.

use crate::{Error, Result};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically: a temporary file beside it, flushed to
/// disk, then renamed over the target, so a reader never sees half a file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = AtomicFile::create(path)?;
    file.write_all(bytes).map_err(Error::io(file.tmp_path()))?;
    file.commit()
}

/// The temporary name `write_atomic` uses for `path` (`NAME.tmp`).
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// A file written in pieces that appears at its path only when complete:
/// the writes go to `NAME.tmp` beside it (buffered), and [`commit`] flushes
/// that to disk and renames it over the target. Dropped without a commit
/// (an error or a panic on the way), it deletes the temporary file, so the
/// target is left as it was.
///
/// [`commit`]: AtomicFile::commit
pub struct AtomicFile {
    path: PathBuf,
    tmp: PathBuf,
    file: Option<BufWriter<File>>,
}

impl AtomicFile {
    /// Starts writing `path` (creates its temporary file).
    pub fn create(path: &Path) -> Result<Self> {
        let tmp = tmp_path(path);
        let file = File::create(&tmp).map_err(Error::io(&tmp))?;
        Ok(Self {
            path: path.to_path_buf(),
            tmp,
            file: Some(BufWriter::with_capacity(1 << 20, file)),
        })
    }

    /// The temporary file the writes go to (for error messages).
    pub fn tmp_path(&self) -> &Path {
        &self.tmp
    }

    /// Flushes and syncs the temporary file and renames it over the target.
    pub fn commit(mut self) -> Result<()> {
        let writer = self.file.take().expect("an uncommitted file is open");
        let file = writer
            .into_inner()
            .map_err(|e| Error::io(&self.tmp)(e.into_error()))?;
        let synced = file.sync_all().map_err(Error::io(&self.tmp));
        drop(file);
        let renamed = synced
            .and_then(|()| std::fs::rename(&self.tmp, &self.path).map_err(Error::io(&self.path)));
        if renamed.is_err() {
            let _ = std::fs::remove_file(&self.tmp);
        }
        renamed
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file
            .as_mut()
            .expect("an uncommitted file is open")
            .write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.file
            .as_mut()
            .expect("an uncommitted file is open")
            .write_all(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file
            .as_mut()
            .expect("an uncommitted file is open")
            .flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_appears_only_when_committed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.bin");
        std::fs::write(&path, b"old").unwrap();
        let mut file = AtomicFile::create(&path).unwrap();
        file.write_all(b"new contents").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        drop(file);
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert!(
            !tmp_path(&path).exists(),
            "the abandoned temporary file stays"
        );
        let mut file = AtomicFile::create(&path).unwrap();
        file.write_all(b"new contents").unwrap();
        file.commit().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new contents");
        assert!(!tmp_path(&path).exists());
        write_atomic(&path, b"again").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"again");
    }
}
