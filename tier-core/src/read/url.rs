//! `s3://bucket/key` URLs.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// An `s3://bucket/key` URL taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// The bucket.
    pub bucket: String,
    /// The key (or key prefix), without a leading `/`; may be empty.
    pub key: String,
}

impl Url {
    /// Parses an `s3://bucket/key` URL; anything else is a usage error.
    ///
    /// ```
    /// use tier_core::Url;
    /// let u = Url::parse("s3://lake/raw/2024/".as_ref()).unwrap();
    /// assert_eq!((u.bucket.as_str(), u.key.as_str()), ("lake", "raw/2024"));
    /// assert!(Url::parse("s3:///nobucket".as_ref()).is_err());
    /// ```
    pub fn parse(path: &Path) -> Result<Url> {
        let text = path.to_str().unwrap_or("");
        let bad =
            |why: &str| Error::Usage(format!("`{}` is not an s3:// URL: {why}", path.display()));
        let rest = text
            .strip_prefix("s3://")
            .ok_or_else(|| bad("it must start with s3://"))?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        let valid = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || ".-".contains(c);
        if bucket.len() < 3 || bucket.len() > 63 || !bucket.chars().all(valid) {
            return Err(bad(
                "the bucket name must be 3 to 63 lowercase letters, digits, dots or hyphens",
            ));
        }
        let key = key.trim_matches('/');
        if key.split('/').any(|s| s == "." || s == "..") || key.contains("//") {
            return Err(bad("a key has no empty, `.` or `..` parts"));
        }
        Ok(Url {
            bucket: bucket.to_string(),
            key: key.to_string(),
        })
    }

    /// The URL of a key below this one.
    pub fn join(&self, rel: &str) -> Url {
        let key = match self.key.as_str() {
            "" => rel.to_string(),
            k => format!("{k}/{rel}"),
        };
        Url {
            bucket: self.bucket.clone(),
            key,
        }
    }

    /// The URL as a path, as inputs are named.
    pub fn to_path(&self) -> PathBuf {
        PathBuf::from(self.to_string())
    }
}

impl std::fmt::Display for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}
