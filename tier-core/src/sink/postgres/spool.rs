//! The reject spool: rejects encoded as binary COPY rows in a temporary file while the rows
//! stream, copied into the rejects table at the end.

use super::*;

/// Rejects of a load, kept in a temporary file (so a file of bad records never fills memory)
/// until the rows' COPY is done, then copied into the rejects table.
pub(super) struct Spool {
    pub(super) file: Option<std::fs::File>,
}

impl Spool {
    pub(super) fn new() -> Spool {
        Spool { file: None }
    }

    pub(super) fn write(&mut self, bytes: &[u8]) -> Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        if self.file.is_none() {
            let f = tempfile::tempfile().map_err(|e| Error::io(std::env::temp_dir(), e))?;
            self.file = Some(f);
        }
        let f = self.file.as_mut().expect("created above");
        f.write_all(bytes)
            .map_err(|e| Error::io(std::env::temp_dir(), e))
    }

    pub(super) fn copy_into(self, tx: &mut Transaction<'_>, rejects: &str) -> Result<()> {
        use std::io::{Seek, SeekFrom};
        let Some(mut f) = self.file else {
            return Ok(());
        };
        let tmp = |e| Error::io(std::env::temp_dir(), e);
        f.seek(SeekFrom::Start(0)).map_err(tmp)?;
        let mut writer = tx.copy_in(&format!(
            "COPY {rejects} (_load_id, _record_index, reason, raw) FROM STDIN (FORMAT binary)"
        ))?;
        writer.write_all(HEADER).map_err(copy_error)?;
        std::io::copy(&mut f, &mut writer).map_err(copy_error)?;
        writer.write_all(TRAILER).map_err(copy_error)?;
        writer.finish()?;
        Ok(())
    }
}
