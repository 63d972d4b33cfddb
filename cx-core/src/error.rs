//! The one error type of `cx`.

use std::fmt;

/// A boxed error from a dependency (a database driver, an I/O call), kept as the `source`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Every error `cx` returns. Variants are named by meaning and carry what a caller needs to act.
///
/// Messages name the item and the field that were wrong; they never include the value of an
/// identity or of an attribute marked PII.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A definition or a record is invalid: `item` names it (`offer "upgrade-5g"`, `touchpoint
    /// "t-17" (#3 in batch)`), `field` the part that is wrong.
    #[error("invalid {item}: `{field}` {reason}")]
    Validation {
        /// The item that is invalid, with its id.
        item: String,
        /// The field (a dotted path) that is wrong.
        field: String,
        /// Why it is wrong.
        reason: String,
    },

    /// A rule (eligibility, suitability, segment, feature filter...) does not compile.
    #[error("invalid rule in {item} at {position}: {message}")]
    InvalidRule {
        /// The definition the rule belongs to.
        item: String,
        /// Where in the rule text the problem is (line:column, 1-based).
        position: Position,
        /// What is wrong.
        message: String,
    },

    /// A document (catalogue file, JSON payload) could not be parsed.
    #[error("cannot parse {source_name} as {format}{}: {message}", fmt_path(.path))]
    Parse {
        /// The file name or `"<string>"`.
        source_name: String,
        /// `yaml`, `json` or `toml`.
        format: &'static str,
        /// Where in the document the error is, as a path such as `offers[3].value`.
        path: String,
        /// What is wrong, with line and column where the parser gives them.
        message: String,
    },

    /// Something that was looked up does not exist.
    #[error("{kind} {id:?} not found")]
    NotFound {
        /// What kind of thing: `customer`, `decision`, `catalog version`...
        kind: &'static str,
        /// Its id.
        id: String,
    },

    /// The request conflicts with what is stored (an identity owned by another customer, a
    /// catalogue changed since it was read, a decision id reused with other content).
    #[error("conflict on {kind} {id:?}: {reason}")]
    Conflict {
        /// What kind of thing is in conflict.
        kind: &'static str,
        /// Its id (never a PII value).
        id: String,
        /// Why.
        reason: String,
    },

    /// The storage backend failed (connection lost, I/O error...).
    #[error("{backend} storage error: {message}")]
    Storage {
        /// `memory`, `postgres`...
        backend: &'static str,
        /// What failed, including where it tried to connect (never a password).
        message: String,
        /// The driver's error.
        #[source]
        source: Option<BoxError>,
    },

    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

fn fmt_path(path: &str) -> String {
    if path.is_empty() || path == "." {
        String::new()
    } else {
        format!(" at `{path}`")
    }
}

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A position in a rule's text (1-based line and column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

impl Error {
    /// Shorthand for [`Error::Validation`].
    pub fn validation(
        item: impl Into<String>,
        field: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Error::Validation {
            item: item.into(),
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`Error::NotFound`].
    pub fn not_found(kind: &'static str, id: impl Into<String>) -> Self {
        Error::NotFound {
            kind,
            id: id.into(),
        }
    }

    /// Shorthand for [`Error::Conflict`].
    pub fn conflict(kind: &'static str, id: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Conflict {
            kind,
            id: id.into(),
            reason: reason.into(),
        }
    }
}
