//! Where an input (or a lake) is: standard input, a local path, or an object in a bucket —
//! told once, by [`Location::parse`], wherever the three part ways.

use std::path::{Path, PathBuf};

use super::object::Url;
use crate::error::Result;

/// Standard input, a local file or directory, or an `s3://` object or prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// `-`.
    Stdin,
    /// A path on this machine.
    Local(PathBuf),
    /// An object (or a prefix) in a bucket.
    Object(Url),
}

impl Location {
    /// Tells where `path` is: `-` is standard input, `s3://…` an object (a malformed URL is a
    /// usage error), anything else a local path.
    ///
    /// ```
    /// use tier_core::Location;
    /// assert_eq!(Location::parse("-".as_ref()).unwrap(), Location::Stdin);
    /// assert!(matches!(Location::parse("s3://lake/raw".as_ref()).unwrap(), Location::Object(_)));
    /// assert!(matches!(Location::parse("data/e.json".as_ref()).unwrap(), Location::Local(_)));
    /// assert!(Location::parse("s3://x".as_ref()).is_err());
    /// ```
    pub fn parse(path: &Path) -> Result<Location> {
        Ok(if path.as_os_str() == "-" {
            Location::Stdin
        } else if path.to_str().is_some_and(|s| s.starts_with("s3://")) {
            Location::Object(Url::parse(path)?)
        } else {
            Location::Local(path.to_path_buf())
        })
    }

    /// Whether `path` names an object (`s3://…`), however well formed.
    pub fn is_object(path: &Path) -> bool {
        path.to_str().is_some_and(|s| s.starts_with("s3://"))
    }
}
