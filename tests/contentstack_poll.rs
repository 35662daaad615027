//! Contentstack as a polled source: entries of a content type matching a CMA query become
//! transfers of a channel (their JSON as the body), once per version, across polls.

use crate::support::contentstack::{Emulator, Seed};
use crate::support::{Gateway, Options};
use serde_json::json;

const RULES: &str = r#"
[[accept]]
name = "entry"
pattern = '^(?P<ct>[a-z_]+)-(?P<uid>blt[0-9a-f]+)-(?P<locale>[a-z-]+)-v(?P<v>\d+)\.json$'
content = "text"

[metadata]
fields = { entry_uid = "{transfer.source.uid}", title = "{transfer.source.title}", version = "{transfer.source.version}" }

[target]
name = "demo-ecm"
destination = "collected/{uid}/{file.name}"
"#;

#[test]
fn contentstack_poll_takes_matching_entries_once_per_version() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let emu = rt.block_on(Emulator::start(Seed::default()));
    let dir = tempfile::tempdir().expect("dir");
    let token = dir.path().join("cs.token");
    std::fs::write(&token, format!("{}\n", emu.seed().management_tokens[0])).expect("token");
    let entry = |title: &str, status: &str| {
        let mut f = serde_json::Map::new();
        f.insert("title".into(), json!(title));
        f.insert("status".into(), json!(status));
        f
    };
    let approved = emu.insert_entry("boilerplate", entry("Legal footer", "approved"));
    let draft = emu.insert_entry("boilerplate", entry("Draft claim", "draft"));
    let extra = format!(
        "[[targets]]\nname = \"cs\"\ntype = \"contentstack\"\n[targets.contentstack]\nbase_url = \"{}\"\napi_key = \"{}\"\n\
         management_token_file = \"{}\"\ncontent_type = \"boilerplate\"\nunique_field = \"source_id\"\n\
         environments = [\"production\"]\nlocales = [\"en-us\"]\n[targets.contentstack.fields]\n\
         title = {{ type = \"text\", from = \"{{title}}\" }}\nsource_id = {{ type = \"text\", from = \"{{id}}\" }}\n\n\
         [[accounts]]\nname = \"cs-intake\"\ndisabled = true\n\n\
         [[polls]]\nname = \"cs-approved\"\nchannel = \"cs-collected\"\naccount = \"cs-intake\"\nevery_secs = 1\n\
         [polls.source]\ntype = \"contentstack\"\ntarget = \"cs\"\nquery = '{{\"status\": \"approved\"}}'\n",
        emu.base_url(),
        emu.seed().api_key,
        token.display()
    );
    let gw = Gateway::start(Options {
        extra,
        pipeline: true,
        own_rules: true,
        extra_rules: vec![("cs-collected.toml", RULES.to_string())],
        ..Options::default()
    });
    let v1 = gw.dir.path().join(format!("ecm/collected/{approved}/boilerplate-{approved}-en-us-v1.json"));
    gw.wait_for(30, "the approved entry collected", || v1.exists());
    let body: serde_json::Value = serde_json::from_slice(&std::fs::read(&v1).expect("body")).expect("json");
    assert_eq!(body["title"], "Legal footer");
    let polls = || emu.requests().iter().filter(|r| r.path.ends_with("/content_types/boilerplate/entries")).count();
    let p0 = polls();
    gw.wait_for(30, "three more polls", || polls() >= p0 + 3);
    assert_eq!(gw.transfers().len(), 1, "taken once; the draft never");
    // a new version is taken again; the draft, approved now, too
    emu.edit_entry(&approved, |f| {
        f.insert("title".into(), json!("Legal footer (2027)"));
    });
    emu.edit_entry(&draft, |f| {
        f.insert("status".into(), json!("approved"));
    });
    let v2 = gw.dir.path().join(format!("ecm/collected/{approved}/boilerplate-{approved}-en-us-v2.json"));
    let d2 = gw.dir.path().join(format!("ecm/collected/{draft}/boilerplate-{draft}-en-us-v2.json"));
    gw.wait_for(30, "the new version and the newly approved entry", || v2.exists() && d2.exists());
    let p1 = polls();
    gw.wait_for(30, "three more polls", || polls() >= p1 + 3);
    assert_eq!(gw.transfers().len(), 3);
    let row = &gw.transfers()[0];
    assert_eq!(row.protocol, "contentstack");
}
