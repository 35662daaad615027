//! Scenario 001's "templates CS → Confluence": an outbound job takes the documents of a Content
//! Server folder and keeps one Confluence page per template, its body from the template (an HTML
//! file) or the template attached (any other file), updated with the next version number when
//! the template gets a new version, and never sent twice.

use crate::confluence::Cfl;
use crate::opentext::{Ecm, direct_target, target};
use crate::support::{Gateway, Options, text};
use std::process::Output;
use wharf::targets::{Conflict, Delivery, Document, Target};

/// Files `name` with `body` into the Content Server folder (a new version when it is there).
fn file_template(ecm: &Ecm, folder: i64, name: &str, body: &[u8]) {
    let direct = direct_target(ecm, &format!("root_folder = {folder}\n"));
    let path = ecm.secrets.path().join(format!("tpl-{}", body.len()));
    std::fs::write(&path, body).expect("body");
    let doc = Document {
        transfer_id: format!("tpl-{name}-{}", body.len()),
        body: path,
        destination: name.into(),
        sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(body)),
        size: body.len() as u64,
        account: "ops".into(),
        channel: "templates".into(),
        metadata: Default::default(),
        conflict: Conflict::Version,
    };
    let got = ecm._rt.block_on(direct.deliver(&doc));
    assert!(matches!(got, Delivery::Delivered(_)), "{name}: {got:?}");
}

fn run(gw: &Gateway) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_wharf"))
        .args(["outbound", "run", "templates-to-wiki", "--config"])
        .arg(&gw.config)
        .output()
        .expect("wharf runs")
}

#[test]
fn confluence_templates_in_content_server_become_pages_updated_on_a_new_version() {
    let c = Cfl::start();
    let ecm = Ecm::start();
    let folder = ecm.folder_id("Enterprise/Invoices");
    file_template(
        &ecm,
        folder,
        "Project Charter.html",
        b"<!DOCTYPE html><html><head><title>t</title></head><body><h1 onclick=\"x()\">Charter</h1>\
          <script>alert(1)</script><p>Scope v1</p></body></html>",
    );
    file_template(&ecm, folder, "Checklist.docx", b"PK\x03\x04 not really a docx, but bytes to attach");
    let extra = format!(
        "{}{}\n[[jobs]]\nname = \"templates-to-wiki\"\naccount = \"acme\"\n\
         [jobs.source]\ntype = \"opentext\"\ntarget = \"otcs\"\nfolder = {folder}\n\
         [jobs.package]\nformat = \"files\"\n[jobs.destination]\ntype = \"confluence\"\ntarget = \"wiki\"\n",
        c.target_toml(""),
        target(&ecm, &format!("root_folder = {folder}\n"))
    );
    let gw = Gateway::start(Options { extra, ..Options::default() });
    // Confluence failing: the run fails, no page appears, nothing is marked exported
    c.emu.faults().fail_next(50, 503);
    let failed = run(&gw);
    assert!(!failed.status.success(), "{}", text(&failed));
    assert!(c.emu.pages_in("ENG").iter().all(|p| p.title != "Project Charter"));
    c.emu.faults().reset();
    let out = run(&gw);
    assert!(out.status.success(), "{}", text(&out));
    let page = |title: &str| {
        let found: Vec<_> = c.emu.pages_in("ENG").into_iter().filter(|p| p.title == title).collect();
        assert_eq!(found.len(), 1, "one page {title:?}: {found:?}");
        found.into_iter().next().expect("one")
    };
    let charter = page("Project Charter");
    assert_eq!(charter.body_storage, "<h1>Charter</h1><p>Scope v1</p>", "scripts and handlers are dropped");
    assert_eq!(charter.version, 1);
    let checklist = page("Checklist");
    let attached = c.emu.attachment_bytes(&checklist.id, "Checklist.docx").expect("attached");
    assert!(attached.starts_with(b"PK\x03\x04 not really"), "{attached:?}");
    // nothing new: nothing sent, no new version
    let again = run(&gw);
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing new"), "{}", text(&again));
    assert_eq!(page("Project Charter").version, 1);
    // the template gets a new version in Content Server: the same page, the next version
    file_template(
        &ecm,
        folder,
        "Project Charter.html",
        b"<html><body><h1>Charter</h1><p>Scope v2 (revised)</p></body></html>",
    );
    let updated = run(&gw);
    assert!(updated.status.success(), "{}", text(&updated));
    let v2 = page("Project Charter");
    assert_eq!((v2.id.as_str(), v2.version), (charter.id.as_str(), 2), "{v2:?}");
    assert_eq!(v2.body_storage, "<h1>Charter</h1><p>Scope v2 (revised)</p>");
    assert!(gw.audit().iter().any(|e| e["event"] == "package_published"
        && e["path"].as_str().is_some_and(|p| p == "confluence:wiki/Project Charter.html")));
}

#[test]
fn confluence_destinations_of_outbound_jobs_are_checked() {
    let c = Cfl::start();
    let base = format!(
        "[spool]\nroot = \"s\"\n[sftp]\nlisten = \"127.0.0.1:0\"\nhost_key = \"k\"\n[[accounts]]\nname = \"acme\"\ndisabled = true\n{}",
        c.target_toml("")
    );
    let check = |job: &str| {
        let text = format!(
            "{base}\n[[jobs]]\nname = \"j\"\naccount = \"acme\"\n[jobs.source]\ntype = \"dir\"\npath = \"x\"\n{job}"
        );
        match wharf::config::Config::parse(&c.dir.path().join("w.toml"), &text) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    };
    let zip = check("[jobs.destination]\ntype = \"confluence\"\ntarget = \"wiki\"\n");
    assert!(zip.contains("jobs[0].package.format: a Confluence destination publishes each file as a page"), "{zip}");
    let folder = check(
        "[jobs.package]\nformat = \"files\"\n[jobs.destination]\ntype = \"confluence\"\ntarget = \"wiki\"\nfolder = \"x\"\n",
    );
    assert!(
        folder.contains("jobs[0].destination.folder: Confluence pages go under the target's `parent_page`"),
        "{folder}"
    );
    let wrong =
        check("[jobs.package]\nformat = \"files\"\n[jobs.destination]\ntype = \"dropbox\"\ntarget = \"wiki\"\n");
    assert!(wrong.contains("jobs[0].destination.target: no `dropbox` target named `wiki`"), "{wrong}");
    assert_eq!(
        check("[jobs.package]\nformat = \"files\"\n[jobs.destination]\ntype = \"confluence\"\ntarget = \"wiki\"\n"),
        ""
    );
}
