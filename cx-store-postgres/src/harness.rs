//! (feature `harness`) A PostgreSQL server for tests and benchmarks, and a fresh database for
//! each test.
//!
//! - With `DATABASE_URL` set, that server is used (the role needs `CREATEDB`).
//! - Otherwise a throwaway cluster is made from the installed server binaries: `initdb` and
//!   `pg_ctl` found on `PATH`, under `pg_config --bindir`, or in `/usr/lib/postgresql/*/bin`
//!   (newest first). It lives in a temporary directory, listens on a free port of 127.0.0.1 and
//!   on a unix socket in that directory, trusts local connections, and runs with `fsync` off
//!   (its data is thrown away). PostgreSQL refuses to run as root: as root, the directory is
//!   given to the `postgres` system user and the server binaries run as that user through
//!   `runuser`; as any other user they run directly.
//!
//! One cluster serves a whole test binary (a process): it is started lazily by the first test
//! that asks and stopped when the process ends. A process cannot run code at exit reliably
//! (statics are not dropped, and a killed process runs nothing), so the cluster is stopped by a
//! **watchdog**: a small shell process, detached in its own process group, that polls whether
//! the test process is alive and then runs `pg_ctl stop -m immediate` and removes the directory.
//! It works however the test process ends (success, panic, `SIGKILL`, Ctrl-C). As a second line,
//! each start first stops and removes clusters left by processes that no longer exist (a
//! `cx-pg-*` directory whose `owner.pid` is dead), so stray servers cannot accumulate.
//!
//! Each test gets its own database, created from a template database that was migrated once,
//! so a test starts from an empty, migrated schema in a few milliseconds.
//!
//! When no server can be had the functions return an error that says what to install (tests
//! fail; they never skip silently).

use crate::{PostgresOptions, PostgresStore};
use cx_core::{Error, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::{Mutex, OnceCell};

/// The server the tests use.
#[derive(Debug)]
pub struct Server {
    /// Connection settings of the administrative database (`postgres`, or `DATABASE_URL`'s).
    admin: tokio_postgres::Config,
    /// The throwaway cluster, if this process started one.
    cluster: Option<Cluster>,
}

/// A throwaway cluster this process started.
#[derive(Debug)]
struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    as_postgres: bool,
}

impl Server {
    /// Settings for database `name` on this server.
    pub fn config_for(&self, name: &str) -> tokio_postgres::Config {
        let mut config = self.admin.clone();
        config.dbname(name);
        config
    }

    /// Settings of the administrative database.
    pub fn admin_config(&self) -> &tokio_postgres::Config {
        &self.admin
    }

    /// Whether this process started the server (and may restart it).
    pub fn is_throwaway(&self) -> bool {
        self.cluster.is_some()
    }

    /// Restarts the throwaway cluster (`pg_ctl restart -m fast`), for fault tests. Every
    /// connection is cut; committed data stays. An error for a `DATABASE_URL` server.
    pub fn restart(&self) -> Result<()> {
        let Some(cluster) = &self.cluster else {
            return Err(harness_error(
                "restart needs the throwaway cluster (DATABASE_URL is set)".to_owned(),
            ));
        };
        cluster.pg_ctl(&["restart", "-m", "fast", "-w", "-t", "60"])
    }
}

impl Cluster {
    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Runs `pg_ctl <args> -D <data> -l <log>`.
    fn pg_ctl(&self, args: &[&str]) -> Result<()> {
        let data = self.data();
        let log = self.dir.join("server.log");
        let mut all: Vec<&str> = args.to_vec();
        let (data, log) = (path_str(&data)?, path_str(&log)?);
        all.extend(["-D", data, "-l", log]);
        run(&self.bin.join("pg_ctl"), &all, self.as_postgres).map_err(|e| {
            let tail = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(15).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            harness_error(format!(
                "{e}\nserver log (last lines):\n{}",
                tail.join("\n")
            ))
        })
    }
}

/// The server for this process: `DATABASE_URL`'s, or a throwaway cluster started on first use.
pub fn server() -> Result<&'static Server> {
    static SERVER: OnceLock<std::result::Result<Server, String>> = OnceLock::new();
    SERVER
        .get_or_init(|| start().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|message| harness_error(message.clone()))
}

/// Settings of a fresh, empty, migrated database on [`server`].
pub async fn fresh_database() -> Result<tokio_postgres::Config> {
    static TEMPLATE: OnceCell<String> = OnceCell::const_new();
    static CREATE: Mutex<()> = Mutex::const_new(());
    static NEXT: AtomicU64 = AtomicU64::new(0);

    let server = server()?;
    let template = TEMPLATE
        .get_or_try_init(|| async {
            let name = format!("cx_template_{}", std::process::id());
            admin_sql(server, &format!("DROP DATABASE IF EXISTS \"{name}\"")).await?;
            admin_sql(server, &format!("CREATE DATABASE \"{name}\"")).await?;
            // Migrate it once; the store's connections close when it drops.
            let store = PostgresStore::connect_with(
                PostgresOptions::from_config(server.config_for(&name)).pool_size(1),
            )
            .await?;
            drop(store);
            Ok::<_, Error>(name)
        })
        .await?;
    let name = format!(
        "cx_test_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    // Database names are generated here, never a caller's value; CREATE DATABASE takes no
    // parameters. One at a time: a template must have no other user while it is copied.
    let _one = CREATE.lock().await;
    admin_sql(
        server,
        &format!("CREATE DATABASE \"{name}\" TEMPLATE \"{template}\""),
    )
    .await?;
    Ok(server.config_for(&name))
}

/// A store on a fresh database (see [`fresh_database`]), with a pool of 16 connections.
pub async fn test_store() -> Result<PostgresStore> {
    let config = fresh_database().await?;
    PostgresStore::connect_with(PostgresOptions::from_config(config).pool_size(16)).await
}

/// Runs `sql` on the administrative database.
pub async fn admin_sql(server: &Server, sql: &str) -> Result<()> {
    let target = crate::error::Target::of(&server.admin);
    let (client, connection) = server
        .admin
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|e| crate::error::db(&target, "connect to the test server", e))?;
    let task = tokio::spawn(connection);
    let result = client
        .batch_execute(sql)
        .await
        .map_err(|e| crate::error::db(&target, "run an administrative statement", e));
    drop(client);
    let _ = task.await;
    result
}

fn harness_error(message: String) -> Error {
    Error::Storage {
        backend: "postgres",
        message: format!("test harness: {message}"),
        source: None,
    }
}

fn start() -> Result<Server> {
    if let Ok(url) = std::env::var("DATABASE_URL")
        && !url.trim().is_empty()
    {
        let admin = PostgresOptions::new(url).pg_config()?;
        return Ok(Server {
            admin,
            cluster: None,
        });
    }
    let bin = find_bindir().ok_or_else(|| {
        harness_error(
            "no PostgreSQL server binaries: `initdb` and `pg_ctl` are not on PATH, under \
             `pg_config --bindir` or in /usr/lib/postgresql/*/bin. Install the server \
             (Debian/Ubuntu: `apt-get install postgresql`; scripts/test does it) or set \
             DATABASE_URL to a server where the role may CREATE DATABASE."
                .to_owned(),
        )
    })?;
    let as_postgres = is_root()?;
    reap_stale_clusters(&bin, as_postgres);

    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("cx-pg-{}-{stamp}", std::process::id()));
    std::fs::create_dir_all(&dir)
        .map_err(|e| harness_error(format!("cannot create {}: {e}", dir.display())))?;
    std::fs::write(dir.join("owner.pid"), std::process::id().to_string())
        .map_err(|e| harness_error(format!("cannot write in {}: {e}", dir.display())))?;
    if as_postgres {
        let (uid, gid) = postgres_ids()?;
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).map_err(|e| {
            harness_error(format!(
                "cannot give {} to the postgres user: {e}",
                dir.display()
            ))
        })?;
    }
    let cluster = Cluster {
        dir: dir.clone(),
        bin: bin.clone(),
        as_postgres,
    };
    // The watchdog first: whatever happens next, the directory goes when this process does.
    spawn_watchdog(&cluster)?;

    let data = cluster.data();
    run(
        &bin.join("initdb"),
        &[
            "-D",
            path_str(&data)?,
            "-U",
            "cx",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ],
        as_postgres,
    )?;

    let mut last = None;
    for _ in 0..3 {
        let port = free_port()?;
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off -c max_connections=300",
            path_str(&dir)?
        );
        match cluster.pg_ctl(&["start", "-w", "-t", "60", "-o", &options]) {
            Ok(()) => {
                let mut admin = tokio_postgres::Config::new();
                admin
                    .host("127.0.0.1")
                    .port(port)
                    .user("cx")
                    .dbname("postgres")
                    .application_name("cx-harness");
                return Ok(Server {
                    admin,
                    cluster: Some(cluster),
                });
            }
            // Most likely the port was taken between probing and starting: try another.
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| harness_error("the server did not start".to_owned())))
}

/// Where `initdb` and `pg_ctl` are.
fn find_bindir() -> Option<PathBuf> {
    let has_both = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if has_both(&dir) {
                // Follow a symlink (Debian links them from elsewhere) to the real directory.
                let real = std::fs::canonicalize(dir.join("initdb"))
                    .ok()
                    .and_then(|p| p.parent().map(Path::to_path_buf));
                return Some(real.filter(|d| has_both(d)).unwrap_or(dir));
            }
        }
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if has_both(&dir) {
            return Some(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            has_both(&bin).then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// Whether this process runs as root (the owner of `/proc/self` is its effective user).
fn is_root() -> Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata("/proc/self")
        .map_err(|e| harness_error(format!("cannot tell the current user: {e}")))?;
    Ok(meta.uid() == 0)
}

/// The uid and gid of the `postgres` system user.
fn postgres_ids() -> Result<(u32, u32)> {
    let id = |flag: &str| -> Result<u32> {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .map_err(|e| harness_error(format!("cannot run `id`: {e}")))?;
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .map_err(|_| {
                harness_error(
                    "running as root, the server must run as the `postgres` system user, which \
                     does not exist; create it (`useradd --system postgres`) or run the tests \
                     as another user"
                        .to_owned(),
                )
            })
    };
    Ok((id("-u")?, id("-g")?))
}

/// Runs a server binary (as `postgres` through `runuser` when we are root) and fails with its
/// output if it fails.
fn run(program: &Path, args: &[&str], as_postgres: bool) -> Result<()> {
    let mut command = if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    command
        .args(args)
        .stdin(Stdio::null())
        // The tools' own directory may be unreadable to `postgres` (root's home).
        .current_dir(std::env::temp_dir());
    let out = command.output().map_err(|e| {
        harness_error(format!(
            "cannot run {}{}: {e}",
            program.display(),
            if as_postgres {
                " through runuser (needed as root)"
            } else {
                ""
            }
        ))
    })?;
    if !out.status.success() {
        return Err(harness_error(format!(
            "{} {} failed ({}): {}{}",
            program.display(),
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(())
}

/// A TCP port of 127.0.0.1 that nothing listens on now.
fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| harness_error(format!("cannot find a free port: {e}")))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| harness_error(format!("cannot find a free port: {e}")))
}

fn path_str(path: &Path) -> Result<&str> {
    path.to_str()
        .ok_or_else(|| harness_error(format!("{} is not UTF-8", path.display())))
}

/// The shell text of the watchdog: waits for process `$1` to end, then stops the cluster in
/// directory `$2` with `$3/pg_ctl` (as `postgres` if `$4` is `1`) and removes the directory.
const WATCHDOG: &str = r#"
while kill -0 "$1" 2>/dev/null; do sleep 1; done
if [ "$4" = 1 ]; then
    runuser -u postgres -- "$3/pg_ctl" stop -D "$2/data" -m immediate -w -t 30 >/dev/null 2>&1
else
    "$3/pg_ctl" stop -D "$2/data" -m immediate -w -t 30 >/dev/null 2>&1
fi
rm -rf "$2"
"#;

/// Starts the watchdog of `cluster` (see the module docs), detached from this process's group.
fn spawn_watchdog(cluster: &Cluster) -> Result<()> {
    use std::os::unix::process::CommandExt;
    Command::new("sh")
        .args(["-c", WATCHDOG, "cx-pg-watchdog"])
        .arg(std::process::id().to_string())
        .arg(&cluster.dir)
        .arg(&cluster.bin)
        .arg(if cluster.as_postgres { "1" } else { "0" })
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map(drop)
        .map_err(|e| harness_error(format!("cannot start the cluster's watchdog: {e}")))
}

/// Stops and removes clusters whose owning process is gone (best effort).
fn reap_stale_clusters(bin: &Path, as_postgres: bool) {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.filter_map(|e| e.ok()) {
        let dir = entry.path();
        let is_ours = entry.file_name().to_string_lossy().starts_with("cx-pg-");
        let Ok(owner) = std::fs::read_to_string(dir.join("owner.pid")) else {
            continue;
        };
        let alive = Path::new("/proc").join(owner.trim()).exists();
        if !is_ours || alive {
            continue;
        }
        if let Ok(data) = path_str(&dir.join("data")) {
            let _ = run(
                &bin.join("pg_ctl"),
                &["stop", "-D", data, "-m", "immediate", "-w", "-t", "30"],
                as_postgres,
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
