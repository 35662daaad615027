//! Workflow gates through a real gateway: a file uploaded over SFTP into a channel whose rules
//! have a `[workflow]` waits (`awaiting_workflow`) for an approval instance in the Workflow
//! Service emulator; a reviewer completes the task through the emulator's API; approved files
//! are delivered, rejected ones go to exceptions with the reviewer's comment, an instance open
//! past its timeout is an exception naming it, and waiting survives a restart (kill -9).

use crate::support::workflow::{Emulator, Seed};
use crate::support::{Gateway, Options, hash, text};

const RULES: &str = r#"
[[accept]]
name = "asset"
pattern = '^(?P<asset>[A-Z0-9]{3,12})_(?P<market>[A-Z]{2})\.pdf$'
extensions = ["pdf"]

[metadata]
fields = { asset_id = "{asset}", market = "{market}" }

[target]
name = "demo-ecm"
destination = "Approved/{market}/{file.name}"

[workflow]
engine = "otws"
definition = "approval"
variables = { asset_id = "{meta.asset_id}", market = "{market}" }
check_every_secs = 1
timeout_secs = TIMEOUT
"#;

struct Gate {
    gw: Gateway,
    emu: Emulator,
    rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl Gate {
    fn start(timeout_secs: u64) -> Gate {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        let emu = rt.block_on(Emulator::start(Seed::default()));
        let dir = tempfile::tempdir().expect("dir");
        let secret = dir.path().join("otws.secret");
        std::fs::write(&secret, format!("{}\n", emu.seed().client_secret)).expect("secret");
        let extra = format!(
            "[[accounts]]\nname = \"agency\"\npassword_hash = \"{}\"\nmounts = [\n  {{ path = \"/assets\", box = \"inbound\", \
             channel = \"approvals\", permissions = [\"list\", \"write\"] }},\n]\n\n\
             [[workflows]]\nname = \"otws\"\nbase_url = \"{}\"\ntenant = \"{}\"\nclient_id = \"{}\"\nclient_secret_file = \"{}\"\n\
             timeout_secs = 10\n",
            hash("agency-pw"),
            emu.base_url(),
            emu.seed().tenant,
            emu.seed().client_id,
            secret.display()
        );
        let gw = Gateway::start(Options {
            extra,
            pipeline: true,
            own_rules: true,
            extra_rules: vec![("approvals.toml", RULES.replace("TIMEOUT", &timeout_secs.to_string()))],
            ..Options::default()
        });
        Gate { gw, emu, rt, _dir: dir }
    }

    fn upload(&self, name: &str) {
        let local = self.gw.dir.path().join(name);
        std::fs::write(&local, b"%PDF-1.7\n% an asset for review\n").expect("file");
        let out = self.gw.sftp_password("agency", "agency-pw", &format!("put {} /assets/{name}\n", local.display()));
        assert!(out.status.success(), "{}", text(&out));
    }

    /// The transfer of `name` once it waits, and its workflow instance.
    fn waiting(&self, name: &str) -> (String, String) {
        let mut found = None;
        self.gw.wait_for(20, &format!("{name} to wait for its workflow"), || {
            found = self.gw.transfers().into_iter().find(|t| t.name == name && t.state == "awaiting_workflow");
            found.is_some()
        });
        let id = found.expect("waiting").id;
        let key = format!("wharf-{id}");
        let instance = self.emu.instances().into_iter().find(|i| i.business_key.as_deref() == Some(&key));
        (id, instance.expect("an instance with the transfer's business key").id)
    }

    fn complete(&self, instance: &str, outcome: &str, vars: &[(&str, &str)]) {
        self.rt.block_on(self.emu.complete_task(instance, outcome, vars)).expect("the reviewer completes the task");
    }

    fn state_of(&self, id: &str) -> String {
        self.gw.transfers().into_iter().find(|t| t.id == id).map(|t| t.state).unwrap_or_default()
    }

    fn wait_state(&self, id: &str, state: &str) {
        self.gw.wait_for(30, &format!("transfer {id} to be {state}"), || self.state_of(id) == state);
    }
}

#[test]
fn workflow_gate_delivers_a_file_once_its_reviewer_approves() {
    let g = Gate::start(3600);
    g.upload("A1001_DE.pdf");
    let (id, instance) = g.waiting("A1001_DE.pdf");
    let inst = g.emu.instance(&instance).expect("instance");
    assert_eq!(inst.definition_key, "approval");
    let var = |n: &str| inst.variables.get(n).map(|v| v.value.clone());
    assert_eq!(var("asset_id"), Some(serde_json::json!("A1001")), "{:?}", inst.variables);
    assert_eq!(var("market"), Some(serde_json::json!("DE")));
    assert_eq!(var("wharf_transfer_id"), Some(serde_json::json!(id.clone())));
    // nothing is delivered while the review is open
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(g.state_of(&id), "awaiting_workflow");
    assert!(!g.gw.dir.path().join("ecm/Approved/DE/A1001_DE.pdf").exists());
    g.complete(&instance, "approved", &[]);
    g.wait_state(&id, "delivered");
    assert!(g.gw.dir.path().join("ecm/Approved/DE/A1001_DE.pdf").exists());
    assert_eq!(g.emu.instances_started(&format!("wharf-{id}")), 1, "one instance, never a second");
    let audit = g.gw.audit();
    for event in ["workflow_started", "workflow_approved", "delivered"] {
        assert!(audit.iter().any(|e| e["event"] == event && e["transfer_id"] == id.as_str()), "{event}: {audit:?}");
    }
}

#[test]
fn workflow_gate_sends_a_rejected_file_to_exceptions_with_the_reviewers_comment() {
    let g = Gate::start(3600);
    g.upload("B2002_FR.pdf");
    let (id, instance) = g.waiting("B2002_FR.pdf");
    g.complete(&instance, "rejected", &[("comment", "Logo is outdated; use the 2026 artwork")]);
    g.wait_state(&id, "excepted");
    let txt = g.gw.spool().join("exceptions/approvals/agency/B2002_FR.pdf.error.txt");
    g.gw.wait_for(10, "the exception files", || txt.exists());
    let why = std::fs::read_to_string(&txt).expect("error.txt");
    assert!(why.contains("rejected in workflow") && why.contains("Logo is outdated"), "{why}");
    assert!(why.contains(&instance), "the reason names the instance: {why}");
    assert!(!g.gw.dir.path().join("ecm/Approved/FR/B2002_FR.pdf").exists(), "nothing delivered");
}

#[test]
fn workflow_gate_times_out_an_instance_left_open_with_a_reason_naming_it() {
    let g = Gate::start(2);
    g.upload("C3003_IT.pdf");
    let (id, instance) = g.waiting("C3003_IT.pdf");
    g.wait_state(&id, "excepted");
    let row = g.gw.transfers().into_iter().find(|t| t.id == id).expect("row");
    let reason = row.reason.unwrap_or_default();
    assert!(reason.contains("still open at its deadline") && reason.contains(&instance), "{reason}");
    assert!(reason.contains("/workflow/v1/process-instances/"), "a link to the instance: {reason}");
}

#[test]
fn workflow_watcher_resumes_after_a_restart_and_starts_no_second_instance() {
    let mut g = Gate::start(3600);
    g.upload("D4004_ES.pdf");
    let (id, instance) = g.waiting("D4004_ES.pdf");
    g.gw.kill9();
    // the review ends while wharf is down
    g.complete(&instance, "approved", &[]);
    g.gw.spawn();
    g.wait_state(&id, "delivered");
    assert_eq!(g.emu.instances_started(&format!("wharf-{id}")), 1);
    // and a file that arrives after the restart gets its own instance
    g.upload("E5005_ES.pdf");
    let (id2, instance2) = g.waiting("E5005_ES.pdf");
    assert_ne!(instance2, instance);
    g.gw.restart();
    assert_eq!(g.state_of(&id2), "awaiting_workflow", "still waiting after the restart");
    g.complete(&instance2, "approved", &[]);
    g.wait_state(&id2, "delivered");
}
