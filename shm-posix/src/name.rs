//! Segment names: checked up front, before any system call.

use std::fmt;

/// Longest segment name in bytes (without the leading slash). Shorter than
/// `NAME_MAX` so the names derived from it (named semaphores) still fit.
pub const MAX_NAME_LEN: usize = 200;

/// A segment name was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameError {
    /// Nothing after the optional leading slash.
    Empty,
    /// Longer than [`MAX_NAME_LEN`] bytes.
    TooLong {
        /// Length given, without the leading slash.
        len: usize,
    },
    /// A `/` after the optional leading one (names are not paths).
    Slash {
        /// Byte position of the slash.
        at: usize,
    },
    /// A NUL byte.
    Nul {
        /// Byte position of the NUL.
        at: usize,
    },
    /// `.` or `..`, which name directories.
    Dots,
    /// Starts with `sem.`: `/dev/shm/sem.X` is the file of named semaphore
    /// `X`, so such a segment and that semaphore would be one file.
    SemaphorePrefix,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(f, "empty segment name: give a name such as `/my-app`"),
            Self::TooLong { len } => {
                write!(f, "segment name of {len} bytes is too long: use at most {MAX_NAME_LEN}")
            }
            Self::Slash { at } => {
                write!(f, "segment name has a `/` at byte {at}: only a leading slash is allowed")
            }
            Self::Nul { at } => write!(f, "segment name has a NUL byte at {at}: leave it out"),
            Self::Dots => write!(f, "segment name cannot be `.` or `..`: give a name such as `/my-app`"),
            Self::SemaphorePrefix => write!(
                f,
                "segment name cannot start with `sem.` (/dev/shm/sem.X is named semaphore X's file): pick another name"
            ),
        }
    }
}

impl std::error::Error for NameError {}

/// Checks `name` and returns it in the canonical form `/name`.
///
/// ```
/// use shm_posix::{canonical_name, NameError};
/// assert_eq!(canonical_name("demo").unwrap(), "/demo");
/// assert_eq!(canonical_name("/demo").unwrap(), "/demo");
/// assert_eq!(canonical_name("../etc/passwd"), Err(NameError::Slash { at: 2 }));
/// ```
pub fn canonical_name(name: &str) -> Result<String, NameError> {
    let bare = name.strip_prefix('/').unwrap_or(name);
    if bare.is_empty() {
        return Err(NameError::Empty);
    }
    if let Some(at) = bare.bytes().position(|b| b == 0) {
        return Err(NameError::Nul { at });
    }
    if let Some(at) = bare.bytes().position(|b| b == b'/') {
        return Err(NameError::Slash { at });
    }
    if bare.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong { len: bare.len() });
    }
    if bare == "." || bare == ".." {
        return Err(NameError::Dots);
    }
    if bare.starts_with("sem.") {
        return Err(NameError::SemaphorePrefix);
    }
    Ok(format!("/{bare}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_name_has_its_error() {
        let long = "x".repeat(MAX_NAME_LEN + 1);
        let max = "x".repeat(MAX_NAME_LEN);
        let cases: [(&str, Result<String, NameError>); 14] = [
            ("a", Ok("/a".into())),
            ("/a", Ok("/a".into())),
            (&max, Ok(format!("/{max}"))),
            ("", Err(NameError::Empty)),
            ("/", Err(NameError::Empty)),
            ("//a", Err(NameError::Slash { at: 0 })),
            ("a/b", Err(NameError::Slash { at: 1 })),
            ("../x", Err(NameError::Slash { at: 2 })),
            ("a\0b", Err(NameError::Nul { at: 1 })),
            (&long, Err(NameError::TooLong { len: MAX_NAME_LEN + 1 })),
            (".", Err(NameError::Dots)),
            ("/..", Err(NameError::Dots)),
            ("/sem.x", Err(NameError::SemaphorePrefix)),
            ("sem", Ok("/sem".into())),
        ];
        for (name, want) in cases {
            assert_eq!(canonical_name(name), want, "name {name:?}");
        }
    }
}
