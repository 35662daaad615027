//! Runs the Canto emulator alone (for manual tests and the README's flows).
//! `cargo run --example canto-emulator -- --listen 127.0.0.1:8383 [--seed FILE]`; Ctrl-C stops it.

#[path = "../tests/support/canto/mod.rs"]
mod canto;

use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Command line of the emulator.
#[derive(Parser)]
#[command(about = "Strict emulator of the Canto DAM API (OAuth, search, details, batch edit, three-step upload)")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8383")]
    listen: SocketAddr,
    /// Seed file (JSON); without it the built-in demo seed.
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
        println!("{}", serde_json::to_string_pretty(&canto::Seed::default())?);
        return Ok(());
    }
    let seed = match &args.seed {
        Some(p) => canto::Seed::from_file(p)?,
        None => canto::Seed::default(),
    };
    let emu = canto::Emulator::start_on(args.listen, seed.clone()).await?;
    emu.faults().set_latency(std::time::Duration::from_millis(args.latency_ms));
    println!("base URL (https://{{account}}.canto.com) and oauth URL: {}", emu.base_url());
    println!("app_id {} app_secret {}", seed.app_id, seed.app_secret);
    for a in emu.assets() {
        println!("  {}/{} \"{}\" {} keywords [{}]", a.scheme, a.id, a.name, a.approval, a.keywords.join(", "));
    }
    tokio::signal::ctrl_c().await?;
    drop(emu);
    Ok(())
}
