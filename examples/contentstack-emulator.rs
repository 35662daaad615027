//! Runs the Contentstack Content Management API emulator alone (manual tests, the README's flows).
//! `cargo run --example contentstack-emulator -- --listen 127.0.0.1:8484 [--seed FILE] [--latency-ms N]`;
//! Ctrl-C stops it. Point the connector's `base_url` at the printed URL.

#[path = "../tests/support/contentstack/mod.rs"]
mod contentstack;

use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Command line of the emulator.
#[derive(Parser)]
#[command(about = "Strict emulator of the Contentstack Content Management API (entries, assets, publish)")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8484")]
    listen: SocketAddr,
    /// Seed file (JSON, e.g. deploy/contentstack-emulator.seed.json); without it the built-in seed.
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
        println!("{}", serde_json::to_string_pretty(&contentstack::Seed::default())?);
        return Ok(());
    }
    let seed = match &args.seed {
        Some(p) => contentstack::Seed::from_file(p)?,
        None => contentstack::Seed::default(),
    };
    let emu = contentstack::Emulator::start_on(args.listen, seed.clone()).await?;
    emu.faults().set_latency(std::time::Duration::from_millis(args.latency_ms));
    println!("base URL: {}", emu.base_url());
    println!("api_key: {}  management tokens: {}", seed.api_key, seed.management_tokens.len());
    println!("content types: {:?}", seed.content_types.keys().collect::<Vec<_>>());
    println!("environments: {:?}  locales: {:?}", seed.environments, seed.locales);
    println!("rate limit: {} reads/s, {} writes/s", seed.reads_per_sec, seed.writes_per_sec);
    tokio::signal::ctrl_c().await?;
    drop(emu);
    Ok(())
}
