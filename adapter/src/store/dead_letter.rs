//! The dead-letter file: records the database refused for good (a constraint, a value it
//! cannot store), one JSON line each with the reason, so the writer can go on with the
//! records after them and an operator can look at them. Next to the spill file, as
//! `<RECORD_SPILL_PATH>.dead`.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::RequestRecord;

pub(super) struct DeadLetter {
    path: PathBuf,
}

#[derive(Serialize)]
struct Entry<'a> {
    reason: &'a str,
    record: &'a RequestRecord,
}

impl DeadLetter {
    pub(super) fn beside(spill_path: &Path) -> DeadLetter {
        let mut path = spill_path.as_os_str().to_owned();
        path.push(".dead");
        DeadLetter { path: path.into() }
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Appends the record with the reason it was refused, and fsyncs.
    pub(super) fn set_aside(&self, record: &RequestRecord, reason: &str) -> io::Result<()> {
        let mut line = serde_json::to_vec(&Entry { reason, record })?;
        line.push(b'\n');
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        file.write_all(&line)?;
        file.sync_data()
    }
}
