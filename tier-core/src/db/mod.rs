//! The database: choosing and connecting to it, the embedded server, the DDL.

pub mod connect;
pub mod ddl;
pub mod embedded;
mod home;
mod pgfiles;
mod tls;

pub use connect::connect;

use postgres::{Client, Config};

use crate::error::{Error, Result};

/// Where the database is: a connection configuration, or the embedded default.
#[derive(Clone)]
pub enum Target {
    /// A server given by URL, `DATABASE_URL` or the libpq variables.
    Config {
        /// The parsed configuration.
        config: Box<Config>,
        /// How to secure the connection.
        tls: connect::Tls,
        /// Where it came from, for messages (never the password).
        origin: String,
    },
    /// The embedded cluster under `$TIER_HOME`.
    Embedded,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Target {
    /// Resolves the database: `explicit` (`--database-url`), then `DATABASE_URL`, then the
    /// libpq variables (`PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE`), else the
    /// embedded default.
    pub fn resolve(explicit: Option<&str>) -> Result<Target> {
        if let Some(url) = explicit {
            return Self::parse(url, "the database URL given");
        }
        if let Ok(url) = std::env::var("DATABASE_URL") {
            if !url.is_empty() {
                return Self::parse(&url, "DATABASE_URL");
            }
        }
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        if [
            "PGHOST",
            "PGPORT",
            "PGUSER",
            "PGPASSWORD",
            "PGDATABASE",
            "PGSERVICE",
            "PGSSLMODE",
        ]
        .iter()
        .any(|k| var(k).is_some())
        {
            let mut c = Config::new();
            if let Some(h) = var("PGHOST") {
                c.host(&h);
            }
            if let Some(p) = var("PGPORT") {
                let port = p
                    .parse()
                    .map_err(|_| Error::Usage(format!("PGPORT `{p}` is not a port number")))?;
                c.port(port);
            }
            if let Some(u) = var("PGUSER") {
                c.user(&u);
            }
            if let Some(pw) = var("PGPASSWORD") {
                c.password(pw);
            }
            if let Some(d) = var("PGDATABASE") {
                c.dbname(&d);
            }
            let tls = connect::complete(&mut c, Default::default())?;
            // libpq's defaults for what neither the variables nor a service said.
            if c.get_hosts().is_empty() {
                c.host("localhost");
            }
            let user = match c.get_user() {
                Some(u) => u.to_string(),
                None => var("USER").unwrap_or_else(|| "postgres".into()),
            };
            c.user(&user);
            if c.get_dbname().is_none() {
                c.dbname(&user);
            }
            return Ok(Target::Config {
                config: Box::new(c),
                tls,
                origin: "PG* environment variables".into(),
            });
        }
        Ok(Target::Embedded)
    }

    /// Parses a URL or key=value connection string.
    pub fn parse(conn: &str, origin: &str) -> Result<Target> {
        let (config, tls) = connect::parse(conn).map_err(|e| match e {
            Error::Usage(m) => Error::Usage(format!("{origin}: {m}")),
            e => e,
        })?;
        Ok(Target::Config {
            config: Box::new(config),
            tls,
            origin: origin.into(),
        })
    }

    /// Says where the database is, without any password.
    pub fn describe(&self) -> String {
        match self {
            Target::Embedded => "the embedded PostgreSQL".into(),
            Target::Config { config, origin, .. } => {
                let hosts: Vec<String> = config
                    .get_hosts()
                    .iter()
                    .map(|h| match h {
                        postgres::config::Host::Tcp(s) => s.clone(),
                        postgres::config::Host::Unix(p) => p.display().to_string(),
                    })
                    .collect();
                format!(
                    "{}@{}:{}/{} (from {origin})",
                    config.get_user().unwrap_or("?"),
                    hosts.join(","),
                    config.get_ports().first().copied().unwrap_or(5432),
                    config.get_dbname().unwrap_or("?"),
                )
            }
        }
    }
}

/// Connects to the database chosen as [`Target::resolve`] says; the embedded default is created
/// and started when needed (and left running).
pub fn open(explicit: Option<&str>) -> Result<Client> {
    open_as(explicit, true)
}

/// Connects as [`open`] does, for a command that only reads: an embedded database that does not
/// exist is not created ([`Error::NoEmbedded`]); one that exists is started when stopped.
pub fn open_existing(explicit: Option<&str>) -> Result<Client> {
    open_as(explicit, false)
}

fn open_as(explicit: Option<&str>, create: bool) -> Result<Client> {
    let target = Target::resolve(explicit)?;
    match &target {
        Target::Embedded => {
            let cluster = embedded::Cluster::from_env()?;
            if !create && cluster.state() == embedded::State::Absent {
                return Err(Error::NoEmbedded {
                    home: cluster.home().to_path_buf(),
                });
            }
            cluster.start()?;
            connect(&cluster.config(embedded::DATABASE), &target.describe())
        }
        Target::Config { config, tls, .. } => {
            log::info!("connecting to {}", target.describe());
            connect::connect_tls(config, tls, &target.describe())
        }
    }
}
