//! Connecting as libpq does: `sslmode` and the certificates, `.pgpass`, services, the
//! application name; TLS through rustls.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use postgres::{Client, Config, NoTls};

pub use super::pgfiles::{password_in, service_in};
use super::pgfiles::{pgpass, service};
use super::tls::make_tls;
use crate::error::{Error, Result};

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SslMode {
    /// Never TLS.
    Disable,
    /// Plain first, TLS if the server insists.
    Allow,
    /// TLS when the server offers it, else plain (the default).
    #[default]
    Prefer,
    /// TLS, the server's certificate not checked (unless a root certificate is there).
    Require,
    /// TLS, the certificate signed by a trusted root.
    VerifyCa,
    /// TLS, the certificate signed by a trusted root and naming the host.
    VerifyFull,
}

impl FromStr for SslMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<SslMode> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(Error::Usage(format!(
                    "sslmode `{other}` is not one of disable, allow, prefer, require, verify-ca, verify-full"
                )))
            }
        })
    }
}

/// How to secure a connection.
#[derive(Debug, Clone, Default)]
pub struct Tls {
    /// The `sslmode`.
    pub mode: SslMode,
    /// `sslrootcert`: the trusted roots (PEM).
    pub root_cert: Option<PathBuf>,
    /// `sslcert`: the client's certificate (PEM).
    pub cert: Option<PathBuf>,
    /// `sslkey`: the client's key (PEM).
    pub key: Option<PathBuf>,
}

/// The libpq parameters tier handles itself rather than the driver.
const OURS: [&str; 5] = ["sslmode", "sslrootcert", "sslcert", "sslkey", "service"];

pub(super) fn var(k: &str) -> Option<String> {
    std::env::var(k).ok().filter(|v| !v.is_empty())
}

pub(super) fn home() -> Option<PathBuf> {
    var("HOME").map(PathBuf::from)
}

/// The most read of a password, service or certificate file.
const MAX_FILE: u64 = 1 << 20;

/// Reads a plain file of at most [`MAX_FILE`] bytes: a FIFO or a device is refused before it
/// is opened (so nothing waits on it), a larger file is an error.
pub(super) fn read_small(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a plain file"));
    }
    let mut out = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_FILE + 1)
        .read_to_end(&mut out)?;
    if out.len() as u64 > MAX_FILE {
        return Err(std::io::Error::other("larger than 1 MiB"));
    }
    Ok(out)
}

/// A URL's percent-encoded text, decoded (what is not UTF-8 then stands as U+FFFD).
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// Splits a connection string (URL or `key=value`) into what the driver parses and the
/// parameters of [`OURS`].
fn split_params(conn: &str) -> (String, BTreeMap<String, String>) {
    let mut ours = BTreeMap::new();
    let conn = conn.trim();
    if let Some(after) = conn
        .strip_prefix("postgres://")
        .or_else(|| conn.strip_prefix("postgresql://"))
    {
        // As libpq: the user info runs to an `@` met before any `/`, and may hold a `?`.
        let authority_end = after.find(['@', '/']).unwrap_or(after.len());
        let from = match after.as_bytes().get(authority_end) {
            Some(b'@') => conn.len() - after.len() + authority_end,
            _ => 0,
        };
        let Some(q) = conn[from..].find('?').map(|q| from + q) else {
            return (conn.to_string(), ours);
        };
        let (base, query) = (&conn[..q], &conn[q + 1..]);
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let key = percent_decode(k);
            if OURS.contains(&key.as_str()) {
                ours.insert(key, percent_decode(v));
            } else {
                kept.push(pair);
            }
        }
        let rest = if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        return (rest, ours);
    }
    // key=value pairs; values may be single-quoted with \' and \\ escapes.
    let mut kept = Vec::new();
    let mut chars = conn.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let key: String =
            std::iter::from_fn(|| chars.next_if(|&c| c != '=' && !c.is_whitespace())).collect();
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        chars.next_if_eq(&'=');
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '\'' => break,
                    c => value.push(c),
                }
            }
        } else {
            value.extend(std::iter::from_fn(|| chars.next_if(|c| !c.is_whitespace())));
        }
        if OURS.contains(&key.as_str()) {
            ours.insert(key, value);
        } else {
            kept.push(format!(
                "{key}='{}'",
                value.replace('\\', "\\\\").replace('\'', "\\'")
            ));
        }
    }
    (kept.join(" "), ours)
}

/// Completes a configuration as libpq would: the service's parameters where the string set
/// none, TLS settings (string, then service, then `PGSSL*`), the application name (`tier`
/// unless set or `PGAPPNAME`), and the password from `.pgpass` when none is given.
pub fn complete(config: &mut Config, mut ours: BTreeMap<String, String>) -> Result<Tls> {
    if let Some(name) = ours.remove("service").or_else(|| var("PGSERVICE")) {
        for (k, v) in service(&name)? {
            match k.as_str() {
                "host" | "hostaddr" if config.get_hosts().is_empty() => {
                    config.host(&v);
                }
                "port" if config.get_ports().is_empty() => {
                    let p = v
                        .parse()
                        .map_err(|_| Error::Usage(format!("service {name}: port `{v}`")))?;
                    config.port(p);
                }
                "user" if config.get_user().is_none() => {
                    config.user(&v);
                }
                "dbname" if config.get_dbname().is_none() => {
                    config.dbname(&v);
                }
                "password" if config.get_password().is_none() => {
                    config.password(v);
                }
                "application_name" if config.get_application_name().is_none() => {
                    config.application_name(&v);
                }
                k if OURS.contains(&k) => {
                    ours.entry(k.to_string()).or_insert(v);
                }
                _ => {}
            }
        }
    }
    // libpq's environment fills in what neither the string nor a service said.
    if config.get_hosts().is_empty() {
        if let Some(h) = var("PGHOST") {
            config.host(&h);
        }
    }
    if config.get_ports().is_empty() {
        if let Some(p) = var("PGPORT") {
            let port = p
                .parse()
                .map_err(|_| Error::Usage(format!("PGPORT `{p}` is not a port number")))?;
            config.port(port);
        }
    }
    if config.get_user().is_none() {
        if let Some(u) = var("PGUSER") {
            config.user(&u);
        }
    }
    if config.get_dbname().is_none() {
        if let Some(d) = var("PGDATABASE") {
            config.dbname(&d);
        }
    }
    if config.get_password().is_none() {
        if let Some(pw) = var("PGPASSWORD") {
            config.password(pw);
        }
    }
    let pick = |k: &str, env: &str| ours.get(k).cloned().or_else(|| var(env));
    let tls = Tls {
        mode: match pick("sslmode", "PGSSLMODE") {
            Some(m) => m.parse()?,
            None => SslMode::Prefer,
        },
        root_cert: pick("sslrootcert", "PGSSLROOTCERT").map(PathBuf::from),
        cert: pick("sslcert", "PGSSLCERT").map(PathBuf::from),
        key: pick("sslkey", "PGSSLKEY").map(PathBuf::from),
    };
    if config.get_application_name().is_none() {
        config.application_name(&var("PGAPPNAME").unwrap_or_else(|| "tier".into()));
    }
    if config.get_password().is_none() {
        let host = match config.get_hosts().first() {
            Some(postgres::config::Host::Tcp(h)) => h.clone(),
            _ => "localhost".into(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let user = config.get_user().unwrap_or("postgres").to_string();
        let db = config.get_dbname().unwrap_or(&user).to_string();
        if let Some(pw) = pgpass(&host, port, &db, &user) {
            config.password(pw);
        }
    }
    Ok(tls)
}

/// Parses a URL or `key=value` connection string with libpq's TLS, service and password
/// conventions.
///
/// ```
/// use tier_core::db::connect::{parse, SslMode};
/// let (c, tls) = parse("postgresql://u@db.example/app?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem").unwrap();
/// assert_eq!(tls.mode, SslMode::VerifyFull);
/// assert_eq!(tls.root_cert.unwrap().to_str(), Some("/etc/ca.pem"));
/// assert_eq!(c.get_dbname(), Some("app"));
/// let (_, tls) = parse("host=db user=u sslmode='require'").unwrap();
/// assert_eq!(tls.mode, SslMode::Require);
/// ```
pub fn parse(conn: &str) -> Result<(Config, Tls)> {
    let (rest, ours) = split_params(conn);
    let rest = with_env_port(&rest);
    let mut config = Config::from_str(&rest)
        .map_err(|e| Error::Usage(format!("not a valid PostgreSQL connection string ({e})")))?;
    let tls = complete(&mut config, ours)?;
    Ok((config, tls))
}

/// A URL whose hosts name no port gets `PGPORT`'s, as libpq gives it (the driver would take
/// 5432).
fn with_env_port(conn: &str) -> String {
    let (Some(port), Some(after)) = (
        var("PGPORT"),
        conn.strip_prefix("postgres://")
            .or_else(|| conn.strip_prefix("postgresql://")),
    ) else {
        return conn.to_string();
    };
    let start = conn.len() - after.len();
    let end = start + after.find(['/', '?']).unwrap_or(after.len());
    let authority = &conn[start..end];
    let hosts_at = authority.rfind('@').map_or(0, |i| i + 1);
    let hosts = &authority[hosts_at..];
    if hosts.is_empty() || port.parse::<u16>().is_err() {
        return conn.to_string();
    }
    let hosts: Vec<String> = hosts
        .split(',')
        .map(|h| {
            // A port follows the host, after `]` for an IPv6 address.
            let tail = h.rsplit(']').next().unwrap_or(h);
            if tail.contains(':') {
                h.to_string()
            } else {
                format!("{h}:{port}")
            }
        })
        .collect();
    format!(
        "{}{}{}",
        &conn[..start + hosts_at],
        hosts.join(","),
        &conn[end..]
    )
}

/// Connects to a configured server without TLS (the embedded server's Unix socket).
pub fn connect(config: &Config, what: &str) -> Result<Client> {
    config
        .connect(NoTls)
        .map_err(|e| Error::database(&format!("cannot connect to {what}"), e))
}

/// Connects with the TLS of `tls`, as libpq's `sslmode` says.
pub fn connect_tls(config: &Config, tls: &Tls, what: &str) -> Result<Client> {
    let fail = |e| Error::database(&format!("cannot connect to {what}"), e);
    let mut config = config.clone();
    match tls.mode {
        SslMode::Disable => connect(&config, what),
        SslMode::Allow => connect(&config, what).or_else(|_| {
            config.ssl_mode(postgres::config::SslMode::Require);
            config.connect(make_tls(tls)?).map_err(fail)
        }),
        SslMode::Prefer => {
            config.ssl_mode(postgres::config::SslMode::Prefer);
            config.connect(make_tls(tls)?).map_err(fail)
        }
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
            config.ssl_mode(postgres::config::SslMode::Require);
            config.connect(make_tls(tls)?).map_err(fail)
        }
    }
}

#[cfg(test)]
#[path = "connect_tests.rs"]
mod tests;
