//! The library's error type: every failure a user can cause names the file or
//! field at fault and, where there is one, what would fix it.

use std::path::{Path, PathBuf};

/// Everything that can go wrong in seer's library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or folder could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder concerned.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A file was read but its contents are not what seer expects.
    #[error("{}: {reason}", path.display())]
    BadFile {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A setting, flag or input value is invalid; the message names it.
    #[error("{0}")]
    Invalid(String),
    /// A tokenizer failed; the message says how.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// A tensor operation failed.
    #[error("tensor operation failed: {0}")]
    Tensor(#[from] candle_core::Error),
}

/// seer's result type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An I/O error on `path`, for use with `map_err`.
    pub fn io(path: impl AsRef<Path>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.as_ref().to_path_buf();
        move |source| Error::Io { path, source }
    }

    /// A malformed file at `path`.
    pub fn bad_file(path: impl AsRef<Path>, reason: impl Into<String>) -> Error {
        Error::BadFile {
            path: path.as_ref().to_path_buf(),
            reason: reason.into(),
        }
    }
}
