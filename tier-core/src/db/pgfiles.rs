//! libpq's files: the connection service file (`PGSERVICEFILE`, `~/.pg_service.conf`,
//! `PGSYSCONFDIR`) and the password file (`PGPASSFILE`, `~/.pgpass`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::connect::{home, read_small, var};
use crate::error::{Error, Result};

/// The parameters of a service in `pg_service.conf` (`PGSERVICEFILE`, `~/.pg_service.conf`,
/// then `$PGSYSCONFDIR/pg_service.conf`).
pub(super) fn service(name: &str) -> Result<BTreeMap<String, String>> {
    let files: Vec<PathBuf> = [
        var("PGSERVICEFILE").map(PathBuf::from),
        home().map(|h| h.join(".pg_service.conf")),
        var("PGSYSCONFDIR").map(|d| PathBuf::from(d).join("pg_service.conf")),
    ]
    .into_iter()
    .flatten()
    .collect();
    for f in &files {
        let Ok(text) = read_small(f).map(|b| String::from_utf8_lossy(&b).into_owned()) else {
            continue;
        };
        if let Some(params) = service_in(&text, name) {
            return Ok(params);
        }
    }
    Err(Error::Usage(format!(
        "service `{name}` not found in {}",
        files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )))
}

/// The parameters of the service `name` in the text of a `pg_service.conf`, if it is there.
///
/// ```
/// let text = "# comment\n[app]\nhost = db\nport=6432\n[other]\nhost=x\n";
/// let p = tier_core::db::connect::service_in(text, "app").unwrap();
/// assert_eq!((p["host"].as_str(), p["port"].as_str()), ("db", "6432"));
/// assert!(tier_core::db::connect::service_in(text, "none").is_none());
/// ```
pub fn service_in(text: &str, name: &str) -> Option<BTreeMap<String, String>> {
    let mut inside = false;
    let mut found = false;
    let mut params = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = section == name;
            found |= inside;
            continue;
        }
        if inside {
            if let Some((k, v)) = line.split_once('=') {
                params.insert(k.trim().to_string(), v.trim().to_string());
            }
        }
    }
    found.then_some(params)
}

/// The password of `.pgpass` (`PGPASSFILE`) for a connection, as libpq finds it; a file that
/// others may read is ignored, with a warning.
pub(super) fn pgpass(host: &str, port: u16, db: &str, user: &str) -> Option<String> {
    let path = var("PGPASSFILE")
        .map(PathBuf::from)
        .or_else(|| home().map(|h| h.join(".pgpass")))?;
    let meta = std::fs::metadata(&path).ok()?;
    if std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o077 != 0 {
        log::warn!(
            "{}: others may read this password file; it is ignored (chmod 0600 it)",
            path.display()
        );
        return None;
    }
    if !meta.is_file() {
        log::warn!(
            "{}: not a plain file; it is not read as a password file",
            path.display()
        );
        return None;
    }
    let text = String::from_utf8(read_small(&path).ok()?).ok()?;
    password_in(&text, host, port, db, user)
}

/// The password a `.pgpass` text gives a connection, as libpq finds it: the first line whose
/// host, port, database and user match (`*` matches any; `\:` and `\\` are escapes).
///
/// ```
/// let text = "# comment\nh:5432:*:u:p\\:w\n*:*:*:*:other\n";
/// let pw = tier_core::db::connect::password_in(text, "h", 5432, "db", "u");
/// assert_eq!(pw.as_deref(), Some("p:w"));
/// ```
pub fn password_in(text: &str, host: &str, port: u16, db: &str, user: &str) -> Option<String> {
    let port = port.to_string();
    for line in text.lines() {
        if line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        // Fields split at unescaped colons; `\:` and `\\` are escapes.
        let mut fields = vec![String::new()];
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => fields.last_mut()?.extend(chars.next()),
                ':' if fields.len() < 5 => fields.push(String::new()),
                c => fields.last_mut()?.push(c),
            }
        }
        if fields.len() != 5 {
            continue;
        }
        let ok = |f: &str, v: &str| f == "*" || f == v;
        if ok(&fields[0], host)
            && ok(&fields[1], &port)
            && ok(&fields[2], db)
            && ok(&fields[3], user)
        {
            return Some(fields[4].clone());
        }
    }
    None
}
