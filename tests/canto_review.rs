//! Scenario 003 end to end: Canto assets through OpenText Workflow Service reviews, with the
//! outcome written back to Canto (both emulators, a real gateway). The approval loop: a pending
//! asset is reviewed; approved → delivered and `approved` in Canto; rejected → exception, Canto
//! status `restricted` and the reviewer's comment in a custom field. Rights expiry: a poll in
//! expiry mode starts exactly one review per asset per expiry date.

use crate::support::canto::{Emulator as Canto, Seed as CantoSeed};
use crate::support::workflow::{Emulator as Workflows, Seed as WorkflowSeed};
use crate::support::{Gateway, Options};

const PENDING: &str = "a1000000000000000000000000000002";

struct Review {
    gw: Gateway,
    canto: Canto,
    wf: Workflows,
    rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

/// Rules of the channel: deliver to `ecm` after the review `definition` approves.
fn rules(definition: &str, business_key: &str, name_pattern: &str) -> String {
    format!(
        r#"
[[accept]]
name = "asset"
pattern = '{name_pattern}'

[metadata]
fields = {{ asset_id = "{{transfer.source.id}}", scheme = "{{transfer.source.scheme}}", region = "{{transfer.source.region}}" }}

[target]
name = "demo-ecm"
destination = "{{transfer.source.scheme}}/{{file.name}}"
conflict = "version"

[workflow]
engine = "otws"
definition = "{definition}"
business_key = "{business_key}"
variables = {{ asset_id = "{{meta.asset_id}}", asset_type = "{{meta.scheme}}", market = "{{meta.region}}" }}
check_every_secs = 1
"#
    )
}

impl Review {
    fn start(source: &str, write_back: &str, rules_text: String) -> Review {
        Self::start_with(source, write_back, rules_text, |_| {})
    }

    /// As [`Review::start`], with `prepare` run on the Canto emulator before the gateway polls it.
    fn start_with(source: &str, write_back: &str, rules_text: String, prepare: impl FnOnce(&Canto)) -> Review {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        let canto = rt.block_on(Canto::start(CantoSeed::default()));
        prepare(&canto);
        let wf = rt.block_on(Workflows::start(WorkflowSeed::default()));
        let dir = tempfile::tempdir().expect("dir");
        let (cs, ws) = (dir.path().join("canto.secret"), dir.path().join("otws.secret"));
        std::fs::write(&cs, format!("{}\n", canto.seed().app_secret)).expect("secret");
        std::fs::write(&ws, format!("{}\n", wf.seed().client_secret)).expect("secret");
        let extra = format!(
            "[[targets]]\nname = \"canto\"\ntype = \"canto\"\n[targets.canto]\nbase_url = \"{cu}\"\noauth_url = \"{cu}\"\n\
             app_id = \"{app}\"\napp_secret_file = \"{cs}\"\n\n\
             [[workflows]]\nname = \"otws\"\nbase_url = \"{wu}\"\ntenant = \"{tenant}\"\nclient_id = \"{client}\"\n\
             client_secret_file = \"{ws}\"\n\n\
             [[accounts]]\nname = \"canto-intake\"\ndisabled = true\n\n\
             [[polls]]\nname = \"canto-review\"\nchannel = \"review\"\naccount = \"canto-intake\"\nevery_secs = 1\n\
             [polls.source]\ntype = \"canto\"\ntarget = \"canto\"\n{source}\n[polls.write_back]\n{write_back}\n",
            cu = canto.base_url(),
            app = canto.seed().app_id,
            cs = cs.display(),
            wu = wf.base_url(),
            tenant = wf.seed().tenant,
            client = wf.seed().client_id,
            ws = ws.display(),
        );
        let gw = Gateway::start(Options {
            extra,
            pipeline: true,
            own_rules: true,
            extra_rules: vec![("review.toml", rules_text)],
            ..Options::default()
        });
        Review { gw, canto, wf, rt, _dir: dir }
    }

    fn instance_for(&self, business_key: &str) -> String {
        let mut id = None;
        self.gw.wait_for(30, &format!("a workflow instance for {business_key}"), || {
            id =
                self.wf.instances().into_iter().find(|i| i.business_key.as_deref() == Some(business_key)).map(|i| i.id);
            id.is_some()
        });
        id.expect("instance")
    }

    fn complete(&self, instance: &str, outcome: &str, vars: &[(&str, &str)]) {
        self.rt.block_on(self.wf.complete_task(instance, outcome, vars)).expect("the reviewer completes the task");
    }

    fn approval(&self, id: &str) -> String {
        self.canto.asset(id).map(|a| a.approval).unwrap_or_default().to_lowercase()
    }
}

fn approval_loop() -> Review {
    Review::start(
        "approval = \"pending\"",
        "approval = \"approved\"\nexcepted_approval = \"restricted\"\n\
         excepted_fields = { meta_replacement = \"Review: {reason}\" }",
        rules("approval", "canto-{transfer.source.id}-{transfer.source.modified}", r"^.+$"),
    )
}

#[test]
fn canto_approval_loop_approved_sets_the_asset_approved_after_delivery() {
    let r = approval_loop();
    let key_prefix = format!("canto-{PENDING}-");
    let mut instance = None;
    r.gw.wait_for(30, "the pending asset's review", || {
        instance =
            r.wf.instances()
                .into_iter()
                .find(|i| i.business_key.as_deref().is_some_and(|k| k.starts_with(&key_prefix)));
        instance.is_some()
    });
    let instance = instance.expect("instance");
    let var = |n: &str| instance.variables.get(n).map(|v| v.value.clone());
    assert_eq!(var("asset_id"), Some(serde_json::json!(PENDING)));
    assert_eq!(var("asset_type"), Some(serde_json::json!("image")), "routing variables from Canto");
    assert!(var("market").is_some());
    assert_eq!(r.approval(PENDING), "pending", "nothing is written back while the review is open");
    r.complete(&instance.id, "approved", &[]);
    r.gw.wait_for(30, "approved in Canto", || r.approval(PENDING) == "approved");
    assert_eq!(r.gw.in_state("delivered").len(), 1);
    let name = r.canto.asset(PENDING).expect("asset").name;
    assert!(r.gw.dir.path().join(format!("ecm/image/{name}")).exists());
}

#[test]
fn canto_approval_loop_rejected_writes_status_and_the_reviewers_comment_back() {
    let r = approval_loop();
    let key_prefix = format!("canto-{PENDING}-");
    let mut instance = None;
    r.gw.wait_for(30, "the pending asset's review", || {
        instance =
            r.wf.instances()
                .into_iter()
                .find(|i| i.business_key.as_deref().is_some_and(|k| k.starts_with(&key_prefix)));
        instance.is_some()
    });
    let id = instance.expect("instance").id;
    r.complete(&id, "rejected", &[("comment", "Crop the logo\nand use the 2026 palette")]);
    r.gw.wait_for(30, "restricted in Canto", || r.approval(PENDING) == "restricted");
    let note = r.canto.asset(PENDING).expect("asset").custom.get("meta_replacement").cloned().unwrap_or_default();
    assert!(note.starts_with("Review: rejected in workflow"), "{note}");
    assert!(note.contains("Crop the logo and use the 2026 palette"), "on one line: {note}");
    assert_eq!(r.gw.in_state("excepted").len(), 1);
    assert!(r.gw.in_state("delivered").is_empty());
}

#[test]
fn canto_rights_expiry_poll_starts_exactly_one_review_per_asset_per_expiry_date() {
    let today = chrono::Utc::now().date_naive();
    let soon = (today + chrono::Days::new(10)).format("%Y-%m-%d").to_string();
    let later = (today + chrono::Days::new(200)).format("%Y-%m-%d").to_string();
    let ids: Vec<String> = CantoSeed::default().assets.iter().map(|a| a.id.clone()).collect();
    // the dates are set before the gateway's first poll (the seed's own dates may fall in the window)
    let r = Review::start_with(
        "expiring_field = \"Rights expiry\"\nexpiring_within_days = 30",
        "fields = { meta_rights_status = \"in review\" }",
        rules(
            "rights_review",
            "rights-{transfer.source.id}-{transfer.source.expiry_date}",
            r"^[a-z0-9]+-expiry-\d{4}-\d{2}-\d{2}\.json$",
        ),
        |canto| {
            for id in &ids {
                let date = if *id == ids[0] { soon.clone() } else { later.clone() };
                canto.edit(id, |a| {
                    a.custom.insert("meta_rights_expiry".into(), date);
                });
            }
        },
    );
    assert!(ids.len() >= 3, "the demo seed has several assets: {ids:?}");
    let key = format!("rights-{}-{soon}", ids[0]);
    let instance = r.instance_for(&key);
    let searches = || r.canto.requests().iter().filter(|q| q.path == "/api/v1/search").count();
    let s0 = searches();
    r.gw.wait_for(30, "three more polls", || searches() >= s0 + 3);
    assert_eq!(r.wf.instances_started(&key), 1, "one review per asset and expiry date");
    assert_eq!(r.wf.instances().len(), 1, "nothing for assets outside the window");
    // reviewed: delivered (the metadata record), written back
    r.complete(&instance, "approved", &[]);
    r.gw.wait_for(30, "written back", || {
        r.canto.asset(&ids[0]).and_then(|a| a.custom.get("meta_rights_status").cloned()).as_deref() == Some("in review")
    });
    // the rights are extended to a new date inside the window: a new review, once
    let extended = (today + chrono::Days::new(20)).format("%Y-%m-%d").to_string();
    r.canto.edit(&ids[0], |a| {
        a.custom.insert("meta_rights_expiry".into(), extended.clone());
    });
    let key2 = format!("rights-{}-{extended}", ids[0]);
    r.instance_for(&key2);
    let s1 = searches();
    r.gw.wait_for(30, "three more polls", || searches() >= s1 + 3);
    assert_eq!(r.wf.instances_started(&key2), 1);
    assert_eq!(r.wf.instances().len(), 2);
}

#[test]
fn canto_localisation_poll_starts_one_workflow_per_region_for_a_changed_master() {
    let r = Review::start(
        "approval = \"approved\"\nkeyword = \"campaign-2026\"\nregions = [\"DE\", \"FR\", \"IT\"]",
        "",
        rules(
            "localisation",
            "loc-{transfer.source.id}-{transfer.source.target_region}-{transfer.source.modified}",
            r"^[a-z0-9]+-[A-Z]{2}-localise\.json$",
        ),
    );
    let master = "a1000000000000000000000000000001";
    let keys = |id: &str| -> Vec<String> {
        r.wf.instances()
            .into_iter()
            .filter_map(|i| i.business_key)
            .filter(|k| k.starts_with(&format!("loc-{id}-")))
            .collect()
    };
    r.gw.wait_for(30, "one workflow per region", || keys(master).len() == 3);
    let mut regions: Vec<String> = keys(master).iter().map(|k| k.split('-').nth(2).unwrap_or("").to_string()).collect();
    regions.sort();
    assert_eq!(regions, ["DE", "FR", "IT"]);
    let searches = || r.canto.requests().iter().filter(|q| q.path == "/api/v1/search").count();
    let s0 = searches();
    r.gw.wait_for(30, "three more polls", || searches() >= s0 + 3);
    assert_eq!(keys(master).len(), 3, "an unchanged master starts nothing more");
    for k in keys(master) {
        assert_eq!(r.wf.instances_started(&k), 1, "{k}");
    }
}
