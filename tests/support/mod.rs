//! Test harness: starts a real `wharf` binary on ephemeral loopback ports in a temporary folder
//! and drives it with real clients (OpenSSH `sftp`, `curl`, Rust FTP client).
#![allow(dead_code)]

pub mod canto;
pub mod confluence;
pub mod contentstack;
pub mod dropbox;
pub mod otcs;
pub mod workflow;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Passwords of the test accounts.
pub const PASSWORDS: [(&str, &str); 3] = [("acme", "acme-pw"), ("globex", "globex-pw"), ("ops", "ops-pw")];

/// How the gateway under test is configured.
#[derive(Clone, Default)]
pub struct Options {
    /// Serve FTPS (self-signed certificate made by the harness).
    pub tls: bool,
    /// Refuse plain FTP.
    pub require_tls: bool,
    /// Extra TOML appended to the config (more accounts, etc.).
    pub extra: String,
    /// `[sessions]` body (defaults: generous limits, 200 ms auth delay).
    pub sessions: Option<String>,
    /// Run the rules pipeline with the repository's shipped `rules/` and an fs target `demo-ecm`
    /// writing to `<dir>/ecm`.
    pub pipeline: bool,
    /// With `pipeline`: use a private copy of `rules/` in the test folder (to edit it).
    pub own_rules: bool,
    /// With `own_rules`: edits made to the copy before the gateway starts, as
    /// `(file in rules/, text to find, replacement)`; each must change its file.
    pub rules_edits: Vec<(&'static str, String, String)>,
    /// With `own_rules`: rule files added to the copy, as `(file in rules/, text)`.
    pub extra_rules: Vec<(&'static str, String)>,
}

/// A running gateway under test. Killed (and its folder removed) on drop.
pub struct Gateway {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub sftp_port: u16,
    pub ftp_port: u16,
    /// The admin HTTP port, when the config has `[admin]`.
    pub admin_port: u16,
    pub keys: HashMap<String, PathBuf>,
    child: Option<Child>,
    stderr_log: PathBuf,
}

/// An argon2id PHC string for `password` (accounts added through `Options::extra`).
pub fn hash(password: &str) -> String {
    wharf::accounts::hash_password(password).expect("hash")
}

fn keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let key = dir.join(format!("{name}_key"));
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen runs");
    assert!(st.success(), "ssh-keygen failed");
    let public = std::fs::read_to_string(key.with_extension("pub")).expect("public key");
    (key, public.trim().to_string())
}

impl Gateway {
    /// Starts a gateway with the standard accounts (acme, globex, ops).
    pub fn start(opts: Options) -> Gateway {
        let dir = tempfile::Builder::new().prefix("wharf-test-").tempdir().expect("tempdir");
        let mut keys = HashMap::new();
        let mut accounts = String::new();
        for (name, pw) in PASSWORDS {
            let (key, public) = keygen(dir.path(), name);
            keys.insert(name.to_string(), key);
            let mounts = if name == "ops" {
                r#"{ path = "/exceptions", box = "exceptions", scope = "all", permissions = ["list", "read", "write", "rename", "delete", "mkdir"] },"#.to_string()
            } else {
                r#"{ path = "/invoices", box = "inbound", channel = "invoices", permissions = ["list", "write", "read", "rename"] },
  { path = "/outbound", box = "outbound", permissions = ["list", "read", "delete"] },
  { path = "/exceptions", box = "exceptions", scope = "own", permissions = ["list", "read"] },"#
                    .to_string()
            };
            accounts.push_str(&format!(
                "\n[[accounts]]\nname = \"{name}\"\npassword_hash = \"{}\"\nauthorized_keys = \"{public}\"\nattributes = {{ partner_id = \"{}\" }}\nmounts = [\n  {mounts}\n]\n",
                hash(pw),
                name.to_uppercase()
            ));
        }
        let mut ftp = String::from(
            "[ftp]\nlisten = \"127.0.0.1:0\"\npassive_ports = [49152, 60999]\nadvertised_address = \"127.0.0.1\"\n",
        );
        if opts.tls || opts.require_tls {
            let rcgen::CertifiedKey { cert, signing_key } =
                rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                    .expect("certificate");
            std::fs::write(dir.path().join("ftps.crt"), cert.pem()).expect("write cert");
            std::fs::write(dir.path().join("ftps.key"), signing_key.serialize_pem()).expect("write key");
            ftp.push_str(&format!(
                "require_tls = {}\n[ftp.tls]\ncert = \"ftps.crt\"\nkey = \"ftps.key\"\n",
                opts.require_tls
            ));
        }
        let sessions = opts.sessions.clone().unwrap_or_else(|| {
            "max_per_account = 64\nmax_per_address = 128\nauth_failure_delay_ms = 200\nidle_timeout_secs = 120\n".into()
        });
        let pipeline = if opts.pipeline {
            let mut rules = format!("{}/rules", env!("CARGO_MANIFEST_DIR"));
            if opts.own_rules {
                let copy = dir.path().join("rules");
                copy_dir(std::path::Path::new(&rules), &copy);
                for (file, from, to) in &opts.rules_edits {
                    let path = copy.join(file);
                    let text = std::fs::read_to_string(&path).expect("rule file");
                    assert!(text.contains(from.as_str()), "{file} no longer contains {from:?}; update the test");
                    std::fs::write(&path, text.replace(from.as_str(), to)).expect("edit rules");
                }
                for (file, text) in &opts.extra_rules {
                    std::fs::write(copy.join(file), text).expect("add a rule file");
                }
                rules = copy.display().to_string();
            }
            format!(
                "[pipeline]\nrules = \"{rules}\"\nworkers = 2\n\n[[targets]]\nname = \"demo-ecm\"\ntype = \"fs\"\nroot = \"ecm\"\n\n"
            )
        } else {
            String::new()
        };
        let text = format!(
            "{pipeline}[spool]\nroot = \"spool\"\n\n[sessions]\n{sessions}\n[sftp]\nlisten = \"127.0.0.1:0\"\nhost_key = \"host_key\"\n\n{ftp}\n{accounts}\n{}\n",
            opts.extra
        );
        let config = dir.path().join("wharf.toml");
        std::fs::write(&config, text).expect("write config");
        let stderr_log = dir.path().join("wharf.log");
        let mut gw = Gateway { dir, config, sftp_port: 0, ftp_port: 0, admin_port: 0, keys, child: None, stderr_log };
        gw.spawn();
        gw
    }

    /// Starts the binary and waits for its "listening" lines.
    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.stderr_log).expect("log file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_wharf"))
            .args(["serve", "--config"])
            .arg(&self.config)
            .env("WHARF_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start wharf");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        let (mut sftp, mut ftp) = (None, None);
        while sftp.is_none() || ftp.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    let port = line.rsplit(':').next().and_then(|p| p.trim().parse::<u16>().ok());
                    if line.starts_with("wharf: sftp listening on") {
                        sftp = port;
                    } else if line.starts_with("wharf: ftp listening on") {
                        ftp = port;
                    } else if line.starts_with("wharf: admin listening on") {
                        self.admin_port = port.unwrap_or(0);
                    }
                }
                Err(_) => panic!("wharf did not start within 30 s; log:\n{}", self.log()),
            }
        }
        self.sftp_port = sftp.unwrap_or(0);
        self.ftp_port = ftp.unwrap_or(0);
    }

    /// The gateway's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }

    /// SIGKILL: no chance to clean up, like a power cut for the process.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kill -9 and start again on the same folder (new ports).
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// The spool folder.
    pub fn spool(&self) -> PathBuf {
        self.dir.path().join("spool")
    }

    /// Runs OpenSSH `sftp -b` with key authentication as `account`.
    pub fn sftp(&self, account: &str, batch: &str) -> Output {
        let key = &self.keys[account];
        let file = self.dir.path().join(format!("batch-{}", ulid::Ulid::generate()));
        std::fs::write(&file, batch).expect("batch file");
        let out = Command::new("sftp")
            .args(ssh_opts(self.sftp_port))
            .arg("-i")
            .arg(key)
            .arg("-b")
            .arg(&file)
            .arg(format!("{account}@127.0.0.1"))
            .stdin(Stdio::null())
            .output()
            .expect("sftp runs");
        let _ = std::fs::remove_file(&file);
        out
    }

    /// Runs OpenSSH `sftp -b` with password authentication (through SSH_ASKPASS).
    pub fn sftp_password(&self, account: &str, password: &str, batch: &str) -> Output {
        let askpass = self.dir.path().join(format!("askpass-{}", ulid::Ulid::generate()));
        {
            let mut f = std::fs::File::create(&askpass).expect("askpass");
            writeln!(f, "#!/bin/sh\necho '{password}'").expect("write askpass");
        }
        std::fs::set_permissions(&askpass, std::os::unix::fs::PermissionsExt::from_mode(0o700)).expect("chmod");
        let file = self.dir.path().join(format!("batch-{}", ulid::Ulid::generate()));
        std::fs::write(&file, batch).expect("batch file");
        let out = Command::new("sftp")
            .args(["-o", "BatchMode=no", "-o", "PreferredAuthentications=password", "-o", "NumberOfPasswordPrompts=1"])
            .args(ssh_opts(self.sftp_port))
            .arg("-b")
            .arg(&file)
            .arg(format!("{account}@127.0.0.1"))
            .env("SSH_ASKPASS", &askpass)
            .env("SSH_ASKPASS_REQUIRE", "force")
            .env("DISPLAY", "none")
            .stdin(Stdio::null())
            .output()
            .expect("sftp runs");
        let _ = std::fs::remove_file(&file);
        out
    }

    /// An FTP URL for curl (`ftp://user:pw@127.0.0.1:port/path`).
    pub fn ftp_url(&self, account: &str, path: &str) -> String {
        let pw = PASSWORDS.iter().find(|(a, _)| *a == account).map_or("x", |(_, p)| p);
        format!("ftp://{account}:{pw}@127.0.0.1:{}{path}", self.ftp_port)
    }

    /// Every journal row, oldest first.
    pub fn transfers(&self) -> Vec<wharf::spool::journal::TransferRow> {
        let path = self.spool().join("journal.db");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            let j = wharf::spool::journal::Journal::open(&path).await.expect("journal");
            let rows = j.all().await.expect("rows");
            j.close().await;
            rows
        })
    }

    /// Transfers in `state`.
    pub fn in_state(&self, state: &str) -> Vec<wharf::spool::journal::TransferRow> {
        self.transfers().into_iter().filter(|t| t.state == state).collect()
    }

    /// Transfers in state `received`.
    pub fn received(&self) -> Vec<wharf::spool::journal::TransferRow> {
        self.transfers().into_iter().filter(|t| t.state == "received").collect()
    }

    /// The audit trail, parsed.
    pub fn audit(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.spool().join("audit.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Waits until `f` holds (polling), or panics after `secs`.
    pub fn wait_for(&self, secs: u64, what: &str, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}; log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir").flatten() {
        let dst = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).expect("copy");
        }
    }
}

/// OpenSSH options for a throwaway loopback server.
pub fn ssh_opts(port: u16) -> Vec<String> {
    [
        "-q",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "ConnectTimeout=20",
        "-P",
    ]
    .iter()
    .map(ToString::to_string)
    .chain([port.to_string()])
    .collect()
}

/// Writes `len` bytes of pseudo-random data (a fixed pattern per seed) and returns its SHA-256.
pub fn random_file(path: &Path, len: usize, seed: u64) -> String {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut data = Vec::with_capacity(len);
    while data.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    data.truncate(len);
    std::fs::write(path, &data).expect("write random file");
    sha256_file(path)
}

/// SHA-256 of a file, hex.
pub fn sha256_file(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).expect("read file")))
}

/// stdout + stderr of a client run, for assertion messages.
pub fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs curl with arguments; returns its output.
pub fn curl(args: &[&str]) -> Output {
    Command::new("curl").args(["-sS", "--max-time", "60"]).args(args).stdin(Stdio::null()).output().expect("curl runs")
}
