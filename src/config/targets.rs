//! `[[targets]]`: each target's type and its settings table, validated into [`TargetConfig`]s.

use super::locate::{Checker, KeyPath};
use super::raw::RawTarget;
use super::{TargetConfig, TargetKind, canto, confluence, contentstack, dropbox, is_valid_name, opentext, resolve};
use std::collections::HashSet;
use std::path::Path;

/// Validates every `[[targets]]` entry; every problem is reported with its key.
pub fn build(raw: &[RawTarget], root: &KeyPath, base: &Path, ck: &mut Checker<'_>) -> Vec<TargetConfig> {
    let mut target_names = HashSet::new();
    raw.iter()
        .enumerate()
        .filter_map(|(i, t)| {
            let key = root.key("targets").index(i);
            if !is_valid_name(&t.name) {
                ck.report(&key.key("name"), format!("`{}` is not a valid target name", t.name));
            }
            if !target_names.insert(t.name.as_str()) {
                ck.report(&key.key("name"), format!("target `{}` is defined twice", t.name));
            }
            if t.kind != "fs" && t.root.is_some() {
                ck.report(&key.key("root"), format!("`root` is a setting of `fs` targets, not of `{}`", t.kind));
            }
            if t.kind != "opentext" && t.opentext.is_some() {
                ck.report(&key.key("opentext"), format!("[targets.opentext] does not belong to a `{}` target", t.kind));
            }
            if t.kind != "dropbox" && t.dropbox.is_some() {
                ck.report(&key.key("dropbox"), format!("[targets.dropbox] does not belong to a `{}` target", t.kind));
            }
            if t.kind != "confluence" && t.confluence.is_some() {
                ck.report(
                    &key.key("confluence"),
                    format!("[targets.confluence] does not belong to a `{}` target", t.kind),
                );
            }
            if t.kind != "contentstack" && t.contentstack.is_some() {
                ck.report(
                    &key.key("contentstack"),
                    format!("[targets.contentstack] does not belong to a `{}` target", t.kind),
                );
            }
            if t.kind == "confluence" {
                return match &t.confluence {
                    Some(c) => confluence::build(c, &key.key("confluence"), base, ck)
                        .map(|c| TargetConfig { name: t.name.clone(), kind: TargetKind::Confluence(Box::new(c)) }),
                    None => {
                        ck.report(
                            &key.key("type"),
                            "a `confluence` target needs a [targets.confluence] table (base_url, ...)",
                        );
                        None
                    }
                };
            }
            if t.kind != "canto" && t.canto.is_some() {
                ck.report(&key.key("canto"), format!("[targets.canto] does not belong to a `{}` target", t.kind));
            }
            if t.kind == "canto" {
                return match &t.canto {
                    Some(c) => canto::build(c, &key.key("canto"), base, ck)
                        .map(|c| TargetConfig { name: t.name.clone(), kind: TargetKind::Canto(Box::new(c)) }),
                    None => {
                        ck.report(&key.key("type"), "a `canto` target needs a [targets.canto] table (base_url, ...)");
                        None
                    }
                };
            }
            if t.kind == "contentstack" {
                return match &t.contentstack {
                    Some(c) => contentstack::build(c, &key.key("contentstack"), base, ck)
                        .map(|c| TargetConfig { name: t.name.clone(), kind: TargetKind::Contentstack(Box::new(c)) }),
                    None => {
                        ck.report(
                            &key.key("type"),
                            "a `contentstack` target needs a [targets.contentstack] table (api_key, ...)",
                        );
                        None
                    }
                };
            }
            if t.kind == "dropbox" {
                return match &t.dropbox {
                    Some(d) => dropbox::build(d, &key.key("dropbox"), base, ck)
                        .map(|c| TargetConfig { name: t.name.clone(), kind: TargetKind::Dropbox(Box::new(c)) }),
                    None => {
                        ck.report(
                            &key.key("type"),
                            "a `dropbox` target needs a [targets.dropbox] table (app_key, ...)",
                        );
                        None
                    }
                };
            }
            let kind = match (t.kind.as_str(), &t.root, &t.opentext) {
                ("fs", Some(r), _) => Some(TargetKind::Fs { root: resolve(base, r) }),
                ("fs", None, _) => {
                    ck.report(&key.key("type"), "an `fs` target needs `root = \"folder\"`");
                    None
                }
                ("opentext", _, Some(o)) => {
                    opentext::build(o, &key.key("opentext"), base, ck).map(|c| TargetKind::OpenText(Box::new(c)))
                }
                ("opentext", _, None) => {
                    ck.report(
                        &key.key("type"),
                        "an `opentext` target needs a [targets.opentext] table (base_url, ...)",
                    );
                    None
                }
                (other, _, _) => {
                    ck.report(
                        &key.key("type"),
                        format!("unknown target type `{other}`; known: fs, opentext, dropbox, confluence, canto, contentstack"),
                    );
                    None
                }
            };
            kind.map(|kind| TargetConfig { name: t.name.clone(), kind })
        })
        .collect()
}
