//! kindred-bench: builds Kindred in release mode, runs it on SQLite and on
//! PostgreSQL, plays remote instances on loopback (real RSA keys, real
//! draft-cavage signatures, real HTTP), and prints each figure with its
//! target and its ratio to the RSA limit measured in the same run.
//! See docs/PERFORMANCE.md.

mod error;
mod fanout;
mod http;
mod inbound;
mod limit;
mod read;
mod report;
mod server;
mod signing;
mod sim;
mod slow;
mod stats;

use std::{path::PathBuf, process::ExitCode, sync::Arc};

use clap::Parser;
use serde_json::json;

use crate::{
    error::{Result, fail},
    limit::Limit,
    report::{Row, Section},
    server::{Db, Launch},
    signing::Key,
};

#[derive(Parser, Debug)]
#[command(about = "Benchmark Kindred under signed federation load on loopback")]
struct Args {
    /// Seconds-scale run with few instances (what CI runs): checks that
    /// every part works, not how fast.
    #[arg(long)]
    smoke: bool,
    /// Sections to run, comma-separated: limit, inbound, fanout, read,
    /// memory, slow (default: all). The limit is always measured.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// sqlite, postgres or both.
    #[arg(long, default_value = "both")]
    db: String,
    /// An existing PostgreSQL database to connect to as an admin: a fresh
    /// database is created beside it for each section and dropped after
    /// (options after `?` are kept). Without TLS by default, as the
    /// shipped docker-compose.yml connects (postgres:16 has TLS off; sqlx
    /// would otherwise encrypt each statement on loopback when the server
    /// offers TLS, as Debian's does).
    #[arg(
        long,
        default_value = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
    )]
    pg_url: String,
    /// The kindred binary; by default `cargo build --release --bin kindred`
    /// is run and target/release/kindred used.
    #[arg(long)]
    kindred: Option<PathBuf>,
    /// Also write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Don't pin the server and the load generator to different cores.
    #[arg(long)]
    no_pin: bool,
    /// Instances following the group in the fan-out (default 1,000; smoke 20).
    #[arg(long)]
    fanout_instances: Option<usize>,
    /// Posts per second in the slow-remote section (capped at what one core
    /// can sign unless --force-slow-rate).
    #[arg(long, default_value_t = 20.0)]
    slow_rate: f64,
    #[arg(long)]
    force_slow_rate: bool,
}

/// What every section gets.
pub struct Ctx {
    pub launch: Launch,
    pub limit: Limit,
    pub keys: Vec<Arc<Key>>,
    pub smoke: bool,
    pub fanout_instances: usize,
    pub slow_rate: f64,
    pub force_slow_rate: bool,
    /// Kindred's `delivery.per_host`.
    pub per_host: usize,
}

/// Resident memory of one server: at idle after start, peak, and at the end.
#[derive(Clone, Copy, Debug, Default)]
pub struct MemSample {
    pub idle_kib: u64,
    pub peak_kib: u64,
    pub after_kib: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("kindred-bench: {}", e.0);
            ExitCode::FAILURE
        }
    }
}

fn workspace_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(PathBuf::from).unwrap_or(here)
}

/// The kindred binary: the one given, or a fresh release build.
fn kindred_binary(given: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(p) = given {
        // Absolute: the server runs in its own temporary directory.
        return if p.exists() {
            Ok(std::fs::canonicalize(&p)?)
        } else {
            fail(format!("no kindred binary at {}", p.display()))
        };
    }
    let root = workspace_root();
    eprintln!("building kindred (cargo build --release --bin kindred)…");
    let status =
        std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--release", "--bin", "kindred"])
            .current_dir(&root)
            .status()?;
    if !status.success() {
        return fail("cargo build --release --bin kindred failed");
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target"));
    Ok(target.join("release").join("kindred"))
}

/// Pin this process (all its threads) to core 1 when there are two cores or
/// more and `taskset` exists; the server then goes on core 0.
fn pin_self() -> bool {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores < 2 {
        return false;
    }
    std::process::Command::new("taskset")
        .args(["-a", "-p", "-c", "1", &std::process::id().to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Move the calling thread onto `cores` (a `taskset` list such as "0,1"):
/// the inbound section's signers use the server's idle core too while they
/// sign ahead, and go back to core 1 when the clock starts.
pub fn pin_thread(cores: &str) -> bool {
    let Ok(link) = std::fs::read_link("/proc/thread-self") else {
        return false;
    };
    let Some(tid) = link.file_name().and_then(|t| t.to_str()) else {
        return false;
    };
    std::process::Command::new("taskset")
        .args(["-p", "-c", cores, tid])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Raise the open-file limit to its hard limit (1,000 listeners and their
/// connections); children inherit it.
fn raise_nofile() {
    let _ = std::process::Command::new("prlimit")
        .args([
            "--pid",
            &std::process::id().to_string(),
            "--nofile=unlimited:unlimited",
        ])
        .stderr(std::process::Stdio::null())
        .status();
    if let Ok(out) = std::process::Command::new("sh")
        .args(["-c", "ulimit -Hn"])
        .output()
    {
        let hard = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let _ = std::process::Command::new("prlimit")
            .args([
                "--pid",
                &std::process::id().to_string(),
                &format!("--nofile={hard}:{hard}"),
            ])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

fn run(args: Args) -> Result<bool> {
    let all = ["limit", "inbound", "fanout", "read", "memory", "slow"];
    let only: Vec<String> = if args.only.is_empty() {
        all.iter().map(|s| s.to_string()).collect()
    } else {
        args.only.iter().map(|s| s.trim().to_lowercase()).collect()
    };
    if let Some(bad) = only.iter().find(|s| !all.contains(&s.as_str())) {
        return fail(format!(
            "unknown section {bad:?}; choose from {}",
            all.join(", ")
        ));
    }
    let dbs = match args.db.as_str() {
        "sqlite" => vec![Db::Sqlite],
        "postgres" => vec![Db::Postgres],
        "both" => vec![Db::Sqlite, Db::Postgres],
        other => return fail(format!("--db {other}: choose sqlite, postgres or both")),
    };
    let bin = kindred_binary(args.kindred.clone())?;
    raise_nofile();
    let pinned = !args.no_pin && pin_self();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(bench(args, only, dbs, bin, pinned))
}

async fn bench(
    args: Args,
    only: Vec<String>,
    dbs: Vec<Db>,
    bin: PathBuf,
    pinned: bool,
) -> Result<bool> {
    let has = |s: &str| only.iter().any(|o| o == s);
    println!(
        "kindred-bench{} — {}; server {}",
        if args.smoke { " (smoke)" } else { "" },
        if pinned {
            "server pinned to core 0, load generator to core 1"
        } else {
            "not pinned (one core, no taskset, or --no-pin)"
        },
        bin.display()
    );
    let limit =
        tokio::task::spawn_blocking(move || limit::measure(if args.smoke { 0.5 } else { 3.0 }))
            .await??;
    let limit_section = Section {
        title: "1. Limit (one core, RSA-2048: verify and sign with ring 0.17)".into(),
        db: "-".into(),
        rows: vec![
            Row::info(
                "verify /s (ring, what Kindred verifies with)",
                limit.verify_per_sec,
                "/s",
            )
            .ratio(
                limit.verify_per_sec / limit.rsa_verify_per_sec.max(f64::MIN_POSITIVE),
                "× rsa's verify",
            ),
            Row::info("sign /s (ring)", limit.sign_per_sec, "/s"),
            Row::info(
                "verify /s with rsa (comparison only)",
                limit.rsa_verify_per_sec,
                "/s",
            ),
        ],
        notes: vec![
            "\"verify /s\" is the limit the other sections compare with; rsa 0.9 (what Kindred verified with before ring) is timed for comparison only".into(),
        ],
    };
    report::print(&limit_section);
    let mut sections = vec![limit_section];

    let keys = signing::generate_keys(if args.smoke { 2 } else { 8 }).await?;
    let per_host = std::env::var("KINDRED_DELIVERY__PER_HOST")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let ctx = Ctx {
        launch: Launch {
            bin,
            pg_url: args.pg_url.clone(),
            pin: pinned,
            env: vec![],
        },
        limit,
        keys,
        smoke: args.smoke,
        fanout_instances: args
            .fanout_instances
            .unwrap_or(if args.smoke { 20 } else { 1000 }),
        slow_rate: args.slow_rate,
        force_slow_rate: args.force_slow_rate,
        per_host,
    };

    let mut ok = true;
    for db in dbs {
        let mut mem: Vec<MemSample> = Vec::new();
        if has("inbound") {
            ok &= record(
                inbound::run(&ctx, db).await,
                "inbound",
                db,
                &mut sections,
                &mut mem,
            );
        }
        if has("fanout") {
            ok &= record(
                fanout::run(&ctx, db).await,
                "fanout",
                db,
                &mut sections,
                &mut mem,
            );
        }
        if has("read") || (has("memory") && mem.is_empty()) {
            ok &= record(
                read::run(&ctx, db).await,
                "read",
                db,
                &mut sections,
                &mut mem,
            );
        }
        if has("memory") && !mem.is_empty() {
            let s = memory_section(&mem, db);
            report::print(&s);
            sections.push(s);
        }
        if has("slow") {
            let mut slow_mem = Vec::new();
            ok &= record(
                slow::run(&ctx, db).await,
                "slow",
                db,
                &mut sections,
                &mut slow_mem,
            );
        }
    }

    if let Some(path) = &args.json {
        let out = json!({
            "tool": "kindred-bench",
            "smoke": args.smoke,
            "pinned": pinned,
            "unix_time": std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            "limit": {"verify_per_sec": limit.verify_per_sec, "sign_per_sec": limit.sign_per_sec, "rsa_verify_per_sec": limit.rsa_verify_per_sec},
            "sections": sections.iter().map(report::to_json).collect::<Vec<_>>(),
        });
        std::fs::write(path, serde_json::to_string_pretty(&out).unwrap_or_default())?;
        println!("\nresults written to {}", path.display());
    }
    if !ok {
        eprintln!("\nkindred-bench: some sections failed (see above)");
    }
    Ok(ok)
}

/// Print and keep a section's result; false when it failed.
fn record(
    r: Result<(Section, MemSample)>,
    name: &str,
    db: Db,
    sections: &mut Vec<Section>,
    mem: &mut Vec<MemSample>,
) -> bool {
    match r {
        Ok((mut s, m)) => {
            s.db = db.name().into();
            report::print(&s);
            sections.push(s);
            mem.push(m);
            true
        }
        Err(e) => {
            eprintln!("\n!! {name} [{}] failed: {}", db.name(), e.0);
            false
        }
    }
}

/// Section 5, memory, from the servers of sections 2–4: idle after start (each
/// started fresh), peak (VmHWM) under load, and resident at the end.
fn memory_section(mem: &[MemSample], db: Db) -> Section {
    let mib = |k: u64| k as f64 / 1024.0;
    let idle = mem.iter().map(|m| m.idle_kib).max().unwrap_or(0);
    let peak = mem.iter().map(|m| m.peak_kib).max().unwrap_or(0);
    let after = mem.last().map_or(0, |m| m.after_kib);
    Section {
        title: "5. Memory (server resident set)".into(),
        db: db.name().into(),
        rows: vec![
            Row::info("idle after start", mib(idle), "MiB").target("≤ 30 MiB", mib(idle) <= 30.0),
            Row::info("peak during 2–4", mib(peak), "MiB").target("≤ 150 MiB", mib(peak) <= 150.0),
            Row::info("after the read load (3 s; smoke 1 s)", mib(after), "MiB")
                .target("near idle (≤ 2 × idle)", after <= 2 * idle.max(1))
                .ratio(after as f64 / idle.max(1) as f64, "× idle"),
        ],
        notes: vec![
            "each section starts a fresh server; idle is the largest of their idle figures".into(),
        ],
    }
}
