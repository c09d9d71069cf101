//! `tier db`: the embedded server (start, stop, status, url, psql, destroy).

use tier_core::db::embedded::{Cluster, State};
use tier_core::Error;

use crate::*;

/// An error unless the embedded cluster exists (commands that only read create nothing).
pub(crate) fn exists(cluster: &Cluster) -> Result<(), Error> {
    if cluster.state() == State::Absent {
        return Err(Error::NoEmbedded {
            home: cluster.home().to_path_buf(),
        });
    }
    Ok(())
}

/// Asks a yes/no question on the terminal; no terminal means no.
pub(crate) fn confirm(question: &str) -> Result<bool, Error> {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        return Ok(false);
    }
    eprint!("{question}");
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|e| Error::io("-", e))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

pub(crate) fn db_command(action: DbAction) -> Result<Outcome, Error> {
    let cluster = Cluster::from_env()?;
    match action {
        DbAction::Start => {
            cluster.start()?;
            println!("running: {}", cluster.url());
        }
        DbAction::Stop => {
            cluster.stop()?;
            println!("stopped");
        }
        DbAction::Status => {
            // Looks only: nothing is created or started. Exit 0 when it runs, 3 when not (as
            // `pg_ctl status`).
            let state = cluster.state();
            match state {
                State::Running => println!("running: {}", cluster.url()),
                State::Stopped => println!("stopped"),
                State::Absent => println!("not created"),
            }
            println!("  home:   {}", cluster.home().display());
            println!("  data:   {}", cluster.data_dir().display());
            println!("  socket: {}", cluster.socket_dir().display());
            if state != State::Running {
                return Ok(Outcome::NotRunning);
            }
        }
        DbAction::Url => {
            exists(&cluster)?;
            println!("{}", cluster.url());
        }
        DbAction::Destroy { yes } => {
            if cluster.state() == State::Absent && !cluster.home().join("pgdata").exists() {
                println!(
                    "nothing to remove: no embedded database under {}",
                    cluster.home().display()
                );
                return Ok(Outcome::Ok);
            }
            if !yes
                && !confirm(&format!(
                    "remove the embedded database at {} and every table in it? [y/N] ",
                    cluster.data_dir().display()
                ))?
            {
                return Err(Error::Usage(
                    "not removed (say --yes to remove without asking)".into(),
                ));
            }
            match cluster.destroy()? {
                Some(data) => println!("removed {}", data.display()),
                None => println!("removed"),
            }
        }
        DbAction::Psql { args } => {
            exists(&cluster)?;
            cluster.start()?;
            let status = std::process::Command::new("psql")
                .arg(cluster.url())
                .args(&args)
                .status()
                .map_err(|e| Error::Embedded(format!("cannot run psql: {e}")))?;
            if !status.success() {
                return Err(Error::Embedded(format!("psql exited with {status}")));
            }
        }
    }
    Ok(Outcome::Ok)
}
