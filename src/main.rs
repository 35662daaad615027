//! The `wharf` command line: serve, check a config, hash a password, verify the audit trail.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use wharf::config::Config;

#[derive(Parser)]
#[command(name = "wharf", version, about = "Managed file-transfer gateway (SFTP, FTP/FTPS)")]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "WHARF_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve {
        /// Config file (TOML).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate a config file; prints every problem as file:line:col: key: message (exit 2).
    Check {
        /// Config file (TOML).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Account helpers.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Audit trail tools.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Exception folders: list, resubmit or drop failed files.
    Exceptions {
        #[command(subcommand)]
        command: ExceptionsCommand,
    },
    /// Rule files: run their inline tests, explain a decision.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Outbound jobs: list them, run one now.
    Outbound {
        #[command(subcommand)]
        command: OutboundCommand,
    },
}

#[derive(Subcommand)]
enum OutboundCommand {
    /// Every job with its schedule, next run and last result.
    List {
        /// Config file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Run a job now, with the same effect as a scheduled run (exit 1 if it fails).
    Run {
        /// Config file.
        #[arg(long, short)]
        config: PathBuf,
        /// Job name.
        job: String,
    },
}

#[derive(Subcommand)]
enum ExceptionsCommand {
    /// Every file waiting in an exception folder, with its reason.
    List {
        /// Config file.
        #[arg(long, short)]
        config: PathBuf,
        /// Only this channel.
        #[arg(long)]
        channel: Option<String>,
    },
    /// Resubmit a failed transfer (moves its file into `retry/`, like ops can over SFTP).
    Retry {
        /// Config file.
        #[arg(long, short)]
        config: PathBuf,
        /// Transfer id (from `list`).
        id: String,
        /// Resubmit under this (corrected) file name.
        #[arg(long = "as")]
        rename: Option<String>,
    },
    /// Drop a failed transfer for good (moves its file into `discard/`; audited).
    Discard {
        /// Config file.
        #[arg(long, short)]
        config: PathBuf,
        /// Transfer id (from `list`).
        id: String,
    },
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Run every `[[test]]` of every channel; exit 1 if one fails.
    Test {
        /// Config file whose `[pipeline] rules` folder to test.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Show which accept entry a file name matches, its metadata and destination, or why not.
    Explain {
        /// Config file.
        #[arg(long, short)]
        config: PathBuf,
        /// Channel (rule file name without `.toml`).
        #[arg(long)]
        channel: String,
        /// Account whose attributes to use (default: none).
        #[arg(long)]
        account: Option<String>,
        /// The file name to explain.
        name: String,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Read a password from stdin and print its argon2id hash for `password_hash`.
    HashPassword,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the hash chain of the audit trail; reports the first broken line (exit 1).
    Verify {
        /// Config file whose audit trail to check.
        #[arg(long, short, conflicts_with = "file")]
        config: Option<PathBuf>,
        /// An audit trail file (e.g. a copy).
        #[arg(long)]
        file: Option<PathBuf>,
    },
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::{EnvFilter, filter::filter_fn, prelude::*};
    let filter =
        EnvFilter::try_from_env("WHARF_LOG").unwrap_or_else(|_| EnvFilter::new("info,libunftp=warn,russh=warn"));
    // libunftp's spans Debug-print whole sessions (kilobytes per line): keep its events, drop its spans.
    let no_libunftp_spans = filter_fn(|m| !(m.is_span() && m.target().starts_with("libunftp")));
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Text => registry
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_filter(no_libunftp_spans))
            .init(),
        LogFormat::Json => registry
            .with(tracing_subscriber::fmt::layer().json().with_writer(std::io::stderr).with_filter(no_libunftp_spans))
            .init(),
    }
}

fn load(config: &std::path::Path) -> Result<Config, ExitCode> {
    Config::load(config).map_err(|e| {
        eprintln!("{e}");
        eprintln!("{}: {} problem(s); nothing was started", config.display(), e.0.len());
        ExitCode::from(2)
    })
}

async fn serve(config: PathBuf) -> Result<ExitCode> {
    let config = match load(&config) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let running = wharf::gateway::start(config).await.context("cannot start the gateway")?;
    if let Some(a) = running.admin_addr {
        println!("wharf: admin listening on {a}");
    }
    if let Some(a) = running.sftp_addr {
        println!("wharf: sftp listening on {a}");
    }
    if let Some(a) = running.ftp_addr {
        println!("wharf: ftp listening on {a}");
    }
    running
        .run_until(async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
            }
        })
        .await;
    Ok(ExitCode::SUCCESS)
}

fn hash_password() -> Result<ExitCode> {
    let mut input = String::new();
    if std::io::stdin().is_terminal() {
        eprint!("password: ");
    }
    std::io::stdin().read_to_string(&mut input).context("reading the password from stdin")?;
    let password = input.strip_suffix('\n').map(|s| s.strip_suffix('\r').unwrap_or(s)).unwrap_or(&input);
    if password.is_empty() {
        eprintln!("wharf: empty password refused");
        return Ok(ExitCode::from(2));
    }
    let hash = wharf::accounts::hash_password(password).map_err(anyhow::Error::msg)?;
    println!("{hash}");
    Ok(ExitCode::SUCCESS)
}

fn audit_verify(config: Option<PathBuf>, file: Option<PathBuf>) -> Result<ExitCode> {
    let path = match (config, file) {
        (_, Some(f)) => f,
        (Some(c), None) => match load(&c) {
            Ok(c) => c.spool.audit_log,
            Err(code) => return Ok(code),
        },
        (None, None) => anyhow::bail!("give --config FILE or --file PATH"),
    };
    match wharf::audit::verify(&path) {
        Ok(n) => {
            println!("{}: {n} lines, chain intact", path.display());
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{e}");
            Ok(ExitCode::from(1))
        }
    }
}

/// One file in an exception folder, from its `.error.json`.
struct Waiting {
    folder: PathBuf,
    file: String,
    reason: serde_json::Value,
}

fn waiting(config: &Config, channel: Option<&str>) -> Vec<Waiting> {
    let root = config.spool.root.join("exceptions");
    let mut out = Vec::new();
    let subdirs = |p: &std::path::Path| -> Vec<PathBuf> {
        std::fs::read_dir(p)
            .map(|d| d.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).map(|e| e.path()).collect())
            .unwrap_or_default()
    };
    for ch in subdirs(&root) {
        if channel.is_some_and(|c| ch.file_name().and_then(|n| n.to_str()) != Some(c)) {
            continue;
        }
        for folder in subdirs(&ch) {
            for e in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let Some(file) = name.strip_suffix(".error.json") else { continue };
                if !folder.join(file).is_file() {
                    continue;
                }
                let reason = std::fs::read(e.path())
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok())
                    .unwrap_or(serde_json::Value::Null);
                out.push(Waiting { folder: folder.clone(), file: file.to_string(), reason });
            }
        }
    }
    out.sort_by(|a, b| a.reason["transfer_id"].as_str().cmp(&b.reason["transfer_id"].as_str()));
    out
}

fn exceptions(command: ExceptionsCommand) -> Result<ExitCode> {
    let (config, id, to) = match &command {
        ExceptionsCommand::List { config, channel } => {
            let config = match load(config) {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            let list = waiting(&config, channel.as_deref());
            for w in &list {
                let r = &w.reason;
                println!(
                    "{}  {}/{}  {}  attempt {}\n    {}",
                    r["transfer_id"].as_str().unwrap_or("?"),
                    r["channel"].as_str().unwrap_or("?"),
                    r["account"].as_str().unwrap_or("?"),
                    w.file,
                    r["attempt"],
                    r["reason"].as_str().unwrap_or("(no reason recorded)")
                );
            }
            println!("{} file(s) in exception folders", list.len());
            return Ok(ExitCode::SUCCESS);
        }
        ExceptionsCommand::Retry { config, id, rename } => (config, id, Some(rename.clone())),
        ExceptionsCommand::Discard { config, id } => (config, id, None),
    };
    let config = match load(config) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let Some(w) = waiting(&config, None).into_iter().find(|w| w.reason["transfer_id"].as_str() == Some(id.as_str()))
    else {
        eprintln!("no file of transfer {id} in an exception folder (see `wharf exceptions list`)");
        return Ok(ExitCode::from(2));
    };
    let (sub, name) = match &to {
        Some(rename) => (wharf::pipeline::resubmit::RETRY, rename.clone().unwrap_or_else(|| w.file.clone())),
        None => (wharf::pipeline::resubmit::DISCARD, w.file.clone()),
    };
    if name.is_empty() || name.contains('/') || name.starts_with('.') || wharf::vfs::path::check_name(&name).is_err() {
        eprintln!("`{name}` is not a plain file name");
        return Ok(ExitCode::from(2));
    }
    let dir = w.folder.join(sub);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    // The sidecar (kept beside the file when it was excepted) goes first: the resubmit reads it as
    // overrides when it takes the file.
    let meta = w.folder.join(wharf::rules::sidecar_name(&w.file));
    if to.is_some() && meta.exists() {
        std::fs::rename(&meta, dir.join(wharf::rules::sidecar_name(&name)))
            .with_context(|| format!("moving {} into {}", meta.display(), dir.display()))?;
    }
    std::fs::rename(w.folder.join(&w.file), dir.join(&name))
        .with_context(|| format!("moving {} into {}", w.file, dir.display()))?;
    println!("{} → {}/{name}; the running gateway takes it within seconds", w.file, dir.display());
    Ok(ExitCode::SUCCESS)
}

async fn outbound(command: OutboundCommand) -> Result<ExitCode> {
    let (OutboundCommand::List { config } | OutboundCommand::Run { config, .. }) = &command;
    let config = match load(config) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    match command {
        OutboundCommand::List { .. } => wharf::outbound::cli::list(&config).await.map(|()| ExitCode::SUCCESS),
        OutboundCommand::Run { job, .. } => {
            Ok(if wharf::outbound::cli::run(&config, &job).await? { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
    }
}

fn load_rules(config: &std::path::Path) -> Result<(Config, wharf::rules::Rules), ExitCode> {
    let config = load(config)?;
    match wharf::gateway::load_rules(&config) {
        Ok(Some(rules)) => Ok((config, rules)),
        Ok(None) => {
            eprintln!("{}: no [pipeline] section, so no rules to use", config.source.display());
            Err(ExitCode::from(2))
        }
        Err(e) => {
            eprintln!("{e}");
            Err(ExitCode::from(2))
        }
    }
}

fn rules_test(config: &std::path::Path) -> Result<ExitCode> {
    let (_, rules) = match load_rules(config) {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    let results = rules.run_tests();
    let failed = results.iter().filter(|r| !r.passed).count();
    for r in &results {
        println!("{r}");
    }
    let channels = rules.channels().count();
    println!("{} passed, {failed} failed ({channels} channels)", results.len() - failed);
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn rules_explain(config: &std::path::Path, channel: &str, account: Option<&str>, name: &str) -> Result<ExitCode> {
    let (config, rules) = match load_rules(config) {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    let Some(set) = rules.get(channel) else {
        eprintln!(
            "no channel `{channel}`; known: {}",
            rules.channels().map(|c| c.channel()).collect::<Vec<_>>().join(", ")
        );
        return Ok(ExitCode::from(2));
    };
    let mut input = wharf::rules::Input::named(name);
    if let Some(a) = account {
        let Some(acc) = config.account(a) else {
            eprintln!("no account `{a}` in {}", config.source.display());
            return Ok(ExitCode::from(2));
        };
        input.account = wharf::rules::Account { name: acc.name.clone(), attributes: acc.attributes.clone() };
    }
    println!("{}", set.explain(&input));
    Ok(ExitCode::SUCCESS)
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let result = match cli.command {
        Command::Serve { config } => serve(config).await,
        Command::Check { config } => Ok(match load(&config) {
            Ok(c) => match wharf::gateway::load_rules(&c) {
                Ok(rules) => {
                    let channels = rules.as_ref().map_or(0, |r| r.channels().count());
                    println!("{}: ok ({} accounts, {channels} rule files)", c.source.display(), c.accounts.len());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::from(2)
                }
            },
            Err(code) => code,
        }),
        Command::User { command: UserCommand::HashPassword } => hash_password(),
        Command::Audit { command: AuditCommand::Verify { config, file } } => audit_verify(config, file),
        Command::Rules { command: RulesCommand::Test { config } } => rules_test(&config),
        Command::Exceptions { command } => exceptions(command),
        Command::Outbound { command } => outbound(command).await,
        Command::Rules { command: RulesCommand::Explain { config, channel, account, name } } => {
            rules_explain(&config, &channel, account.as_deref(), &name)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("wharf: {e:#}");
            ExitCode::from(1)
        }
    }
}
