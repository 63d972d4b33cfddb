//! Driver and pool errors, mapped to [`cx_core::Error`] at the boundary.
//!
//! - A unique violation is [`Error::Conflict`] (the operation says on what).
//! - Everything else is [`Error::Storage`] with backend `postgres`; a failure to reach the server
//!   says where it tried to connect (host, port, database, user: never the password).

use cx_core::Error;
use deadpool_postgres::PoolError;
use tokio_postgres::error::SqlState;

/// Where the store connects, for error messages: `host:port/database as user`, no password.
#[derive(Debug, Clone)]
pub(crate) struct Target(pub(crate) String);

impl Target {
    pub(crate) fn of(config: &tokio_postgres::Config) -> Self {
        use tokio_postgres::config::Host;
        let hosts: Vec<String> = config
            .get_hosts()
            .iter()
            .enumerate()
            .map(|(i, host)| {
                let port = config
                    .get_ports()
                    .get(i)
                    .or_else(|| config.get_ports().first())
                    .copied()
                    .unwrap_or(5432);
                match host {
                    Host::Tcp(name) => format!("{name}:{port}"),
                    Host::Unix(path) => format!("{}:{port} (unix socket)", path.display()),
                }
            })
            .collect();
        let hosts = if hosts.is_empty() {
            "localhost:5432 (default)".to_owned()
        } else {
            hosts.join(",")
        };
        let user = config.get_user().unwrap_or("(default user)");
        let db = config.get_dbname().unwrap_or(user);
        Target(format!("postgresql://{user}@{hosts}/{db}"))
    }
}

/// Maps a driver error from an operation described by `doing` (`"append touchpoints"`).
pub(crate) fn db(target: &Target, doing: &str, e: tokio_postgres::Error) -> Error {
    if let Some(state) = e.code() {
        if *state == SqlState::UNIQUE_VIOLATION {
            let constraint = e
                .as_db_error()
                .and_then(|d| d.constraint())
                .unwrap_or("a unique constraint")
                .to_owned();
            return Error::conflict(
                "row",
                constraint.clone(),
                format!("{doing}: a concurrent writer stored the same key ({constraint})"),
            );
        }
        let message = e
            .as_db_error()
            .map(|d| d.message().to_owned())
            .unwrap_or_else(|| e.to_string());
        return Error::Storage {
            backend: "postgres",
            message: format!(
                "{doing} failed on {}: {message} (SQLSTATE {})",
                target.0,
                state.code()
            ),
            source: Some(Box::new(e)),
        };
    }
    let closed = e.is_closed();
    Error::Storage {
        backend: "postgres",
        message: if closed {
            format!("{doing}: the connection to {} was lost", target.0)
        } else {
            format!("{doing} failed on {}: {e}", target.0)
        },
        source: Some(Box::new(e)),
    }
}

/// Whether `e` means the connection itself is gone or unusable (rather than one statement
/// failing): closed, an I/O error, or a server error of class 08 (connection exception) or
/// 57P01-57P03 (the server shut the session down, or is starting or stopping).
pub(crate) fn is_connection_failure(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        Some(state) => {
            let code = state.code();
            code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
        }
        None => std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>()),
    }
}

/// Maps a pool error (no connection could be had).
pub(crate) fn pool(target: &Target, e: PoolError) -> Error {
    let message = match &e {
        PoolError::Timeout(kind) => {
            format!(
                "no connection to {} within the pool's timeout ({kind:?})",
                target.0
            )
        }
        PoolError::Backend(inner) => format!("cannot connect to {}: {}", target.0, describe(inner)),
        PoolError::Closed => format!("the connection pool for {} is closed", target.0),
        other => format!("cannot get a connection to {}: {other}", target.0),
    };
    Error::Storage {
        backend: "postgres",
        message,
        source: Some(Box::new(e)),
    }
}

/// A driver error's message, with the server's own message where there is one.
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{} (SQLSTATE {})", d.message(), d.code().code()),
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                text.push_str(": ");
                text.push_str(&s.to_string());
                source = s.source();
            }
            text
        }
    }
}
