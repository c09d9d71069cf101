//! Connecting to a configured server.

use postgres::{Client, Config, NoTls};

use crate::error::{Error, Result};

/// Connects to a configured server.
pub fn connect(config: &Config, what: &str) -> Result<Client> {
    config
        .connect(NoTls)
        .map_err(|e| Error::database(&format!("cannot connect to {what}"), e))
}
