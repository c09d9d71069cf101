//! The embedded server's home on disk: folders made private, a lock on the home, and what
//! running as root takes (the `postgres` account, the folders it may enter and own).

use std::path::Path;
use std::process::{Command, Stdio};

use super::embedded::USER;

use crate::error::{Error, Result};

pub(super) fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// `path`, or the nearest of its ancestors that exists.
pub(super) fn nearest_existing(path: &Path) -> &Path {
    path.ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("/"))
}

/// Whether a path is made only of characters that need no quoting in a setting's list.
pub(super) fn plain(path: &Path) -> bool {
    path.as_os_str()
        .as_encoded_bytes()
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || b"/._-+@%=:".contains(&b))
}

/// An exclusive lock on `home/.lock`, released when dropped.
pub(super) struct HomeLock(#[allow(dead_code)] std::fs::File);

impl HomeLock {
    pub(super) fn take(home: &Path) -> Result<HomeLock> {
        use std::os::unix::io::AsRawFd;
        std::fs::create_dir_all(home).map_err(|e| Error::io(home, e))?;
        let path = home.join(".lock");
        let file = std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        // SAFETY: flock on a descriptor we own; it has no other preconditions.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(Error::io(&path, std::io::Error::last_os_error()));
        }
        Ok(HomeLock(file))
    }
}

/// The name of the account tier runs as.
pub(super) fn account_name() -> Result<String> {
    // SAFETY: getpwuid returns a pointer into static storage or null; it is read at once.
    unsafe {
        let pw = libc::getpwuid(libc::geteuid());
        if pw.is_null() || (*pw).pw_name.is_null() {
            return Err(Error::Embedded(
                "cannot tell the name of this account".into(),
            ));
        }
        Ok(std::ffi::CStr::from_ptr((*pw).pw_name)
            .to_string_lossy()
            .into_owned())
    }
}

pub(super) fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io(path, e))
}

/// Makes `dir` the server's private socket directory: created with mode 0700 and owned by the
/// server's account; one that exists already is used only when it is a directory (not a link)
/// owned by that account with mode 0700.
pub(super) fn private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let owner = if running_as_root() {
        postgres_uid()?
    } else {
        // SAFETY: geteuid has no preconditions and cannot fail.
        unsafe { libc::geteuid() }
    };
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {
            set_mode(dir, 0o700)?;
            if running_as_root() {
                chown_to_postgres(dir)?;
            }
            return Ok(());
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(Error::io(dir, e)),
    }
    let meta = std::fs::symlink_metadata(dir).map_err(|e| Error::io(dir, e))?;
    if !meta.is_dir() || meta.uid() != owner || meta.mode() & 0o777 != 0o700 {
        return Err(Error::Embedded(format!(
            "{} exists and is not a private directory of the server's account (mode 0700); \
             remove it or choose another TIER_HOME",
            dir.display()
        )));
    }
    Ok(())
}

pub(super) fn postgres_uid() -> Result<u32> {
    let name = std::ffi::CString::new(USER).expect("no NUL");
    // SAFETY: getpwnam returns a pointer into static storage or null; it is read at once.
    unsafe {
        let pw = libc::getpwnam(name.as_ptr());
        if pw.is_null() {
            return Err(Error::Embedded(
                "there is no postgres account to run the server".into(),
            ));
        }
        Ok((*pw).pw_uid)
    }
}

pub(super) fn postgres_can_enter(dir: &Path) -> bool {
    Command::new("runuser")
        .args(["-u", "postgres", "--", "test", "-x"])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

pub(super) fn chown_to_postgres(dir: &Path) -> Result<()> {
    let ok = Command::new("chown")
        .args(["postgres:postgres"])
        .arg(dir)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if ok {
        Ok(())
    } else {
        Err(Error::Embedded(format!(
            "cannot give {} to the postgres account",
            dir.display()
        )))
    }
}
