//! Runs the Confluence Cloud emulator alone (for manual tests and benchmarks of the connector).
//! `cargo run --example confluence-emulator -- --listen 127.0.0.1:8282 [--seed FILE]`; Ctrl-C stops it.

#[path = "../tests/support/confluence/mod.rs"]
mod confluence;

use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Command line of the emulator.
#[derive(Parser)]
#[command(about = "Strict emulator of the Confluence Cloud REST API (v2 + the v1 search, label and attachment calls)")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8282")]
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
        println!("{}", serde_json::to_string_pretty(&confluence::Seed::default())?);
        return Ok(());
    }
    let seed = match &args.seed {
        Some(p) => confluence::Seed::from_file(p)?,
        None => confluence::Seed::default(),
    };
    let emu = confluence::Emulator::start_on(args.listen, seed.clone()).await?;
    emu.faults().set_latency(std::time::Duration::from_millis(args.latency_ms));
    println!("base URL (https://{{site}}.atlassian.net): {}", emu.base_url());
    println!("OAuth base (api.atlassian.com/ex/confluence/{{cloudId}}): {}", emu.oauth_base_url());
    for u in &seed.users {
        println!("basic auth: {}:{} (account {})", u.email, u.api_token, u.account_id);
    }
    let o = &seed.oauth;
    println!(
        "bearer: {} (cloudId {}, refresh {}, client {}/{})",
        o.access_token, o.cloud_id, o.refresh_token, o.client_id, o.client_secret
    );
    for s in &seed.spaces {
        let pages = emu.pages_in(&s.key);
        println!("space {} {} \"{}\" ({} pages)", s.id, s.key, s.name, pages.len());
        for p in pages {
            let hidden = if p.restricted { " (restricted: 404 for the API user)" } else { "" };
            println!("  page {} \"{}\" v{} labels [{}]{hidden}", p.id, p.title, p.version, p.labels.join(", "));
        }
    }
    tokio::signal::ctrl_c().await?;
    drop(emu);
    Ok(())
}
