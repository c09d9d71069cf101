//! A watcher's loading slot: a PostgreSQL loader (whose connection also holds the claims) or a
//! lake, and what tells a passing failure of the database from a failure of the file.

use super::*;

/// Where one of a watcher's jobs loads: a connection to PostgreSQL, or a lake.
pub(super) enum Worker {
    Postgres(Box<Loader>),
    Lake(Box<Lake>),
}

/// The advisory lock class of a watcher's claims (the key is the file's name, hashed).
const CLAIM_CLASS: i32 = 7_419_202;

impl Worker {
    pub(super) fn open(dest: &Destination, opts: &LoadOptions) -> Result<Worker> {
        Ok(match dest {
            Destination::Postgres { database_url } => Worker::Postgres(Box::new(Loader::connect(
                database_url.as_deref(),
                opts.clone(),
            )?)),
            Destination::Lake(root) => Worker::Lake(Box::new(Lake::open(root, opts.clone())?)),
        })
    }

    /// Claims a file for this watcher's connection; false when another watcher holds it.
    pub(super) fn claim(&mut self, path: &Path) -> Result<bool> {
        match self {
            Worker::Postgres(l) => {
                let source = path.display().to_string();
                Ok(l.client()
                    .query_one(
                        "SELECT pg_try_advisory_lock($1, hashtext($2))",
                        &[&CLAIM_CLASS, &source],
                    )?
                    .get(0))
            }
            // A lake lets one of two loads of the same content commit; the other skips.
            _ => Ok(true),
        }
    }

    pub(super) fn release(&mut self, path: &Path) {
        if let Worker::Postgres(l) = self {
            let source = path.display().to_string();
            let _ = l.client().execute(
                "SELECT pg_advisory_unlock($1, hashtext($2))",
                &[&CLAIM_CLASS, &source],
            );
        }
    }

    pub(super) fn load(&mut self, path: &Path, observer: &dyn Observer) -> Result<FileReport> {
        match self {
            Worker::Postgres(l) => l.load_file(path, observer),
            Worker::Lake(l) => l.load_file(path, observer),
        }
    }

    /// Whether the ledger settled this file after it was listed (another watcher loaded it while
    /// this one went down its list): one query, asked of PostgreSQL only.
    pub(super) fn done_elsewhere(&mut self, schema: &str, f: &Listed) -> bool {
        if !matches!(self, Worker::Postgres(_)) {
            return false;
        }
        let source = f.path.display().to_string();
        self.settled(schema, std::slice::from_ref(&source))
            .is_ok_and(|rows| rows.iter().any(|(_, b, at)| settles(f, *b, *at)))
    }

    /// Of these sources, the loads that settled them: (source, bytes, finished at).
    pub(super) fn settled(
        &mut self,
        schema: &str,
        sources: &[String],
    ) -> Result<Vec<(String, u64, f64)>> {
        let lines = match self {
            Worker::Postgres(l) => return Ledger::new(schema).settled(l.client(), sources),
            Worker::Lake(l) => l.ledger()?,
        };
        let wanted: std::collections::HashSet<&str> = sources.iter().map(String::as_str).collect();
        Ok(lines
            .into_iter()
            .filter(|l| wanted.contains(l.source.as_str()))
            .filter(|l| crate::sink::ledger::settles(&l.status, l.error.as_deref()))
            .map(|l| {
                let at = crate::schema::timestamp::Timestamp::parse(&l.finished_at)
                    .map_or(0.0, |t| t.0 as f64 / 1e6);
                (l.source, l.bytes, at)
            })
            .collect())
    }
}

/// Whether an error is the database's (or the lake's storage's) rather than the file's: the file
/// is worth another try once it is back.
pub(super) fn transient(e: &Error) -> bool {
    match e {
        Error::Failed { source, .. } => transient(source),
        e => matches!(
            e.kind(),
            ErrorKind::Database | ErrorKind::Embedded | ErrorKind::Interrupted
        ),
    }
}
