//! Shared by the examples: store selection, and text wrapping for printed explanations.
//!
//! Store selection: `--store postgres://user@host/db` (or `DATABASE_URL`
//! in the environment) runs them on PostgreSQL, `--store memory` (the default) in memory.

use cx::MemoryStore;
use cx::store::Store;
use std::error::Error;
use std::sync::Arc;

/// The store the command line asks for, and the arguments left once `--store URL` is taken out.
pub(crate) async fn store_from_args(
    args: impl Iterator<Item = String>,
) -> Result<(Arc<dyn Store>, Vec<String>), Box<dyn Error>> {
    let mut url = std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty());
    let mut rest = Vec::new();
    let mut args = args;
    while let Some(arg) = args.next() {
        match arg.strip_prefix("--store") {
            Some("") => url = Some(args.next().ok_or("--store needs a value")?),
            Some(eq) if eq.starts_with('=') => url = Some(eq[1..].to_owned()),
            _ => rest.push(arg),
        }
    }
    let store: Arc<dyn Store> = match url.as_deref() {
        None | Some("memory") => Arc::new(MemoryStore::new()),
        Some(url) => Arc::new(cx_store_postgres::PostgresStore::connect(url).await?),
    };
    Ok((store, rest))
}

/// `text` in lines of at most `width` characters, broken at spaces.
pub(crate) fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}
