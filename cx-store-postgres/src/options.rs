//! Connection options.

use cx_core::{Error, Result};
use std::fmt;
use std::time::Duration;

/// How to connect: the server URL and the pool's size and timeouts.
///
/// ```
/// use cx_store_postgres::PostgresOptions;
/// use std::time::Duration;
///
/// let options = PostgresOptions::new("postgres://cx:secret@db:5432/cx")
///     .pool_size(32)
///     .connect_timeout(Duration::from_secs(5));
/// assert!(!format!("{options:?}").contains("secret"));
/// ```
#[derive(Clone)]
pub struct PostgresOptions {
    source: Source,
    pub(crate) pool_size: usize,
    pub(crate) connect_timeout: Duration,
    pub(crate) acquire_timeout: Duration,
}

impl PostgresOptions {
    /// Options for the server at `url` (`postgres://user:password@host:port/database` or the
    /// `key=value` form); a pool of 16 connections, 10 s to connect, 30 s to get a connection.
    pub fn new(url: impl Into<String>) -> Self {
        PostgresOptions {
            source: Source::Url(url.into()),
            pool_size: 16,
            connect_timeout: Duration::from_secs(10),
            acquire_timeout: Duration::from_secs(30),
        }
    }

    /// At most `n` connections (at least 1).
    #[must_use]
    pub fn pool_size(mut self, n: usize) -> Self {
        self.pool_size = n.max(1);
        self
    }

    /// How long connecting may take.
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long to wait for a free connection when all are in use.
    #[must_use]
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// Options for a driver configuration (the defaults of [`new`](Self::new) otherwise).
    pub fn from_config(config: tokio_postgres::Config) -> Self {
        PostgresOptions {
            source: Source::Config(Box::new(config)),
            ..PostgresOptions::new("")
        }
    }

    /// The driver's configuration, parsed from the URL.
    pub fn pg_config(&self) -> Result<tokio_postgres::Config> {
        let mut config: tokio_postgres::Config = match &self.source {
            Source::Config(config) => (**config).clone(),
            Source::Url(url) => url.parse().map_err(|e| {
                // The driver's parse errors name the option, never its value.
                Error::validation(
                    "PostgreSQL connection URL",
                    "url",
                    format!("does not parse: {e}"),
                )
            })?,
        };
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(self.connect_timeout);
        }
        Ok(config)
    }
}

/// Where the connection settings come from.
#[derive(Clone)]
enum Source {
    Url(String),
    Config(Box<tokio_postgres::Config>),
}

impl fmt::Debug for PostgresOptions {
    /// The URL without its password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let target = match self.pg_config() {
            Ok(config) => crate::error::Target::of(&config).0,
            Err(_) => "(unparsable URL)".to_owned(),
        };
        f.debug_struct("PostgresOptions")
            .field("target", &target)
            .field("pool_size", &self.pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("acquire_timeout", &self.acquire_timeout)
            .finish()
    }
}
