//! Why the store cannot be used: every module of the store fails with this one error.

use rusqlite::ErrorCode;

/// Why the store cannot be used, said so an administrator knows what to fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("the store {path} cannot be opened: {why}")]
    Open { path: String, why: String },
    #[error("the store's schema is version {found}, newer than this binary knows ({known}); use a newer operator")]
    NewerSchema { found: u32, known: u32 },
    #[error("the store {0} was deleted or replaced while the operator had it open")]
    Gone(String),
    #[error("the data directory {path} cannot be written: {why}")]
    Unwritable { path: String, why: String },
    #[error("the store {0} is corrupt; delete it to start a new one")]
    Corrupt(String),
    #[error("the store is full: its size budget ({0} bytes) is reached even after removing old rows")]
    Full(u64),
    #[error("no such {what}: {id}")]
    NotFound { what: &'static str, id: String },
}

impl Error {
    /// A fixed label for metrics and the `code` of `query`'s errors.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Sqlite(e) if is_corrupt(e) => "store-corrupt",
            Error::Sqlite(_) => "store-error",
            Error::Open { .. } => "store-unavailable",
            Error::NewerSchema { .. } => "store-newer-schema",
            Error::Gone(_) => "store-gone",
            Error::Unwritable { .. } => "store-unwritable",
            Error::Corrupt(_) => "store-corrupt",
            Error::Full(_) => "store-full",
            Error::NotFound { .. } => "not-found",
        }
    }
}

pub(crate) fn is_corrupt(e: &rusqlite::Error) -> bool {
    matches!(e.sqlite_error_code(), Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase))
}

impl Error {
    /// Another connection holds the database for the moment.
    pub(crate) fn is_busy(&self) -> bool {
        match self {
            Error::Sqlite(e) => {
                matches!(e.sqlite_error_code(), Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked))
            }
            Error::Open { why, .. } => why.contains("database is locked"),
            _ => false,
        }
    }
}

pub(crate) fn is_full(e: &Error) -> bool {
    matches!(e, Error::Sqlite(e) if e.sqlite_error_code() == Some(ErrorCode::DiskFull))
}
