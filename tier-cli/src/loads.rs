//! `tier loads`: the ledger, newest first (a database's or a lake's).

use std::io::Write;

use tier_core::Error;

use crate::*;

pub(crate) fn loads(args: LoadsArgs) -> Result<Outcome, Error> {
    let mut rows = match &args.lake {
        Some(dir) => {
            let mut rows = tier_core::lake_ledger(dir)?;
            rows.retain(|l| args.table.as_deref().is_none_or(|t| l.target_table == t));
            rows.reverse();
            rows
        }
        None => {
            let mut client = tier_core::db::open_existing(args.database_url.as_deref())?;
            let ledger = tier_core::Ledger::new(&args.schema);
            match ledger.list(&mut client, args.table.as_deref(), args.limit) {
                Ok(rows) => rows,
                // No ledger yet: nothing was loaded.
                Err(e)
                    if e.state() == Some(tier_core::postgres::error::SqlState::UNDEFINED_TABLE) =>
                {
                    Vec::new()
                }
                Err(e) => return Err(e),
            }
        }
    };
    rows.truncate(args.limit.max(0) as usize);
    let mut out = std::io::stdout().lock();
    let text = match args.report {
        ReportFormat::Json => {
            serde_json::to_string(&serde_json::json!({ "loads": rows }))
                .map_err(|e| Error::Usage(e.to_string()))?
                + "\n"
        }
        ReportFormat::Text => {
            let mut t = String::new();
            for l in &rows {
                t.push_str(&format!(
                    "{:>6}  {:<9}  {}  {} records: {} loaded, {} duplicates, {} rejected  {}  {}\n",
                    l.load_id,
                    l.status,
                    tier_core::visible(&l.target_table),
                    l.records,
                    l.loaded,
                    l.duplicates,
                    l.rejected,
                    l.finished_at,
                    tier_core::visible(&l.source),
                ));
            }
            t
        }
    };
    let _ = out.write_all(text.as_bytes());
    Ok(Outcome::Ok)
}
