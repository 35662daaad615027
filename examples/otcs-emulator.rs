//! Runs the OpenText Content Server emulator alone (for manual tests and benchmarks of the connector).
//! `cargo run --example otcs-emulator -- --listen 127.0.0.1:8181 [--seed FILE]`; Ctrl-C stops it.

#[path = "../tests/support/otcs/mod.rs"]
mod otcs;

use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Command line of the emulator.
#[derive(Parser)]
#[command(about = "Strict emulator of the OpenText Content Server REST and Business Workspaces APIs")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8181")]
    listen: SocketAddr,
    /// Seed file (JSON); without it the built-in demo seed.
    #[arg(long)]
    seed: Option<PathBuf>,
    /// Latency added before every reply, in milliseconds (benchmarks: `benches/opentext-throughput`).
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
        println!("{}", serde_json::to_string_pretty(&otcs::Seed::default())?);
        return Ok(());
    }
    let seed = match &args.seed {
        Some(p) => otcs::Seed::from_file(p)?,
        None => otcs::Seed::default(),
    };
    let emu = otcs::Emulator::start_on(args.listen, seed.clone()).await?;
    emu.faults().set_latency(std::time::Duration::from_millis(args.latency_ms));
    println!("base URL: {}", emu.base_url());
    println!("users: {}", seed.users.iter().map(|u| u.username.as_str()).collect::<Vec<_>>().join(", "));
    for f in emu.children(otcs::ENTERPRISE_ID) {
        println!("folder {} Enterprise/{}", f.id, f.name);
    }
    for c in &seed.categories {
        println!("category {} {}", c.id, c.name);
    }
    for t in &seed.workspace_types {
        let tpl: Vec<String> = t.templates.iter().map(|x| format!("{} {}", x.id, x.name)).collect();
        println!(
            "workspace type {} {} (templates: {}; location {})",
            t.wksp_type_id,
            t.name,
            tpl.join(", "),
            t.location_id
        );
    }
    for w in &seed.workspaces {
        println!("workspace {} {} (bo_id {})", w.id, w.name, w.bo_id);
    }
    tokio::signal::ctrl_c().await?;
    drop(emu);
    Ok(())
}
