//! Runs the OpenText Workflow Service emulator alone (for manual tests and the README's flows).
//! `cargo run --example workflow-emulator -- --listen 127.0.0.1:8484 [--seed FILE]`; Ctrl-C stops it.

#[path = "../tests/support/workflow/mod.rs"]
mod workflow;

use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Command line of the emulator.
#[derive(Parser)]
#[command(about = "Strict emulator of OpenText Workflow Service (tenant OAuth, process instances, tasks)")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8484")]
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
        println!("{}", serde_json::to_string_pretty(&workflow::Seed::default())?);
        return Ok(());
    }
    let seed = match &args.seed {
        Some(p) => workflow::Seed::from_file(p)?,
        None => workflow::Seed::default(),
    };
    let emu = workflow::Emulator::start_on(args.listen, seed.clone()).await?;
    emu.faults().set_latency(std::time::Duration::from_millis(args.latency_ms));
    println!("API: {}/workflow/v1   token: {}", emu.base_url(), emu.token_url());
    println!("tenant {} client_id {} client_secret {}", seed.tenant, seed.client_id, seed.client_secret);
    for d in &seed.definitions {
        println!("  definition {} \"{}\" tasks [{}]", d.key, d.name, d.tasks.join(", "));
    }
    tokio::signal::ctrl_c().await?;
    drop(emu);
    Ok(())
}
