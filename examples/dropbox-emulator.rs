//! Runs the Dropbox API v2 emulator alone (for manual tests and benchmarks of the connector).
//! `cargo run --example dropbox-emulator -- --listen 127.0.0.1:8282 [--seed FILE] [--latency-ms N]`;
//! Ctrl-C stops it. Point the connector's `api_url` and `content_url` both at the printed base URL.

#[path = "../tests/support/dropbox/mod.rs"]
mod dropbox;

use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Command line of the emulator.
#[derive(Parser)]
#[command(about = "Strict emulator of the Dropbox API v2 (files, upload sessions, OAuth2 refresh)")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8282")]
    listen: SocketAddr,
    /// Seed file (JSON, e.g. deploy/dropbox-emulator.seed.json); without it the built-in demo seed.
    #[arg(long)]
    seed: Option<PathBuf>,
    /// Latency added before every reply, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Print the default seed as JSON and exit.
    #[arg(long)]
    print_default_seed: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.print_default_seed {
        println!("{}", serde_json::to_string_pretty(&dropbox::Seed::default())?);
        return Ok(());
    }
    let seed = match &args.seed {
        Some(p) => dropbox::Seed::from_file(p)?,
        None => dropbox::Seed::default(),
    };
    let emu = dropbox::Emulator::start_on(args.listen, seed.clone()).await?;
    emu.faults().set_latency(std::time::Duration::from_millis(args.latency_ms));
    println!("base URL (api_url and content_url): {}", emu.base_url());
    println!("app key: {}  app secret: {}  refresh token: {}", seed.app_key, seed.app_secret, seed.refresh_token);
    println!(
        "access tokens live {} s; write lock: {} at once, wait {} ms, commit {} ms",
        seed.access_token_ttl_secs, seed.write_concurrency, seed.write_lock_wait_ms, seed.commit_ms
    );
    for f in emu.list("") {
        println!("file {} ({} bytes, rev {})", f.path_display, f.size, f.rev);
    }
    tokio::signal::ctrl_c().await?;
    drop(emu);
    Ok(())
}
