//! The benchmark's one error type: a message saying what broke.

use std::fmt;

/// What went wrong, in words. Any standard error converts into it, so `?`
/// works everywhere; `fail` makes one from a message.
pub struct Error(pub String);

pub type Result<T> = std::result::Result<T, Error>;

impl<E: std::error::Error> From<E> for Error {
    fn from(e: E) -> Self {
        Error(e.to_string())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An error with this message.
pub fn fail<T>(msg: impl Into<String>) -> Result<T> {
    Err(Error(msg.into()))
}
