//! Package names from a template such as `{partner}-{date:%Y%m%d}-{seq}.zip`, and the rule that
//! every name wharf writes into a box is one safe path component.
//!
//! Placeholders: `{job}`, `{account}`, `{partner}` (the account's `partner_id`, else its name),
//! `{run}` (the run id), `{date:FMT}` and `{time:FMT}` (the run's time in the job's time zone,
//! strftime), `{seq}` (the job's package counter, 4 digits) and `{seq:N}` (N digits). Values
//! are reduced to `A-Z a-z 0-9 . _ -`, so an attribute can never smuggle a `/` into a name.

use chrono::DateTime;
use chrono::format::{Item, StrftimeItems};
use chrono_tz::Tz;

/// Longest name wharf writes (bytes), well inside every filesystem's 255.
pub const MAX_NAME: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    Job,
    Account,
    Partner,
    Run,
    Date(String),
    Seq(usize),
}

/// A parsed naming template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameTemplate {
    text: String,
    parts: Vec<Part>,
}

/// The values a template is rendered with.
#[derive(Debug, Clone)]
pub struct NameVars<'a> {
    /// Job name.
    pub job: &'a str,
    /// Destination account.
    pub account: &'a str,
    /// The account's partner id.
    pub partner: &'a str,
    /// Run id.
    pub run: &'a str,
    /// The run's time, in the job's zone.
    pub at: DateTime<Tz>,
    /// Package number.
    pub seq: i64,
}

fn valid_strftime(fmt: &str) -> bool {
    !fmt.is_empty() && StrftimeItems::new(fmt).all(|i| !matches!(i, Item::Error))
}

impl NameTemplate {
    /// Parses a template.
    ///
    /// # Errors
    /// An unknown placeholder, an unclosed brace or a bad date format, as a sentence.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Lit(rest[..open].to_string()));
            }
            let Some(close) = rest[open..].find('}') else {
                return Err(format!("`{{` at `{}` is never closed", &rest[open..]));
            };
            let inner = &rest[open + 1..open + close];
            let (name, arg) = inner.split_once(':').map_or((inner, None), |(n, a)| (n, Some(a)));
            parts.push(match (name, arg) {
                ("job", None) => Part::Job,
                ("account", None) => Part::Account,
                ("partner", None) => Part::Partner,
                ("run", None) => Part::Run,
                ("seq", None) => Part::Seq(4),
                ("seq", Some(w)) => match w.parse::<usize>() {
                    Ok(w) if (1..=12).contains(&w) => Part::Seq(w),
                    _ => return Err(format!("`{{seq:{w}}}`: the width must be a number from 1 to 12")),
                },
                ("date" | "time", Some(f)) if valid_strftime(f) => Part::Date(f.to_string()),
                ("date" | "time", Some(f)) => return Err(format!("`{{{name}:{f}}}`: not a strftime format")),
                ("date", None) => Part::Date("%Y%m%d".into()),
                ("time", None) => Part::Date("%H%M%S".into()),
                _ => {
                    return Err(format!(
                        "unknown placeholder `{{{inner}}}`; use job, account, partner, run, seq, seq:N, date:FMT, time:FMT"
                    ));
                }
            });
            rest = &rest[open + close + 1..];
        }
        if rest.contains('}') {
            return Err("`}` without a `{` before it".into());
        }
        if !rest.is_empty() {
            parts.push(Part::Lit(rest.to_string()));
        }
        Ok(Self { text: text.to_string(), parts })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Renders a name and checks it is one safe path component.
    ///
    /// # Errors
    /// The result is not a safe file name (e.g. a literal `/`, a leading dot), as a sentence.
    pub fn render(&self, v: &NameVars<'_>) -> Result<String, String> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Job => out.push_str(&clean(v.job)),
                Part::Account => out.push_str(&clean(v.account)),
                Part::Partner => out.push_str(&clean(v.partner)),
                Part::Run => out.push_str(&clean(v.run)),
                Part::Date(f) => out.push_str(&clean(&v.at.format(f).to_string())),
                Part::Seq(w) => out.push_str(&format!("{:0w$}", v.seq, w = *w)),
            }
        }
        check_name(&out).map(|()| out)
    }
}

/// Reduces a value to characters that are safe in a file name (others become `_`).
pub fn clean(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' }).collect()
}

/// One path component that is safe to write into a box: not empty, at most [`MAX_NAME`]
/// bytes, no `/`, `\` or control characters, not `.`/`..`, not hidden (a leading dot, which
/// also keeps wharf's reserved `.wharf` names out).
///
/// # Errors
/// Why the name is unsafe.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the name is empty".into());
    }
    if name.len() > MAX_NAME {
        return Err(format!("`{name}` is longer than {MAX_NAME} bytes"));
    }
    if name.starts_with('.') {
        return Err(format!("`{name}` starts with a dot (hidden names are reserved)"));
    }
    if let Some(c) = name.chars().find(|c| matches!(c, '/' | '\\') || c.is_control()) {
        return Err(format!("`{}` contains {c:?}, which is not allowed in a file name", name.escape_debug()));
    }
    Ok(())
}

/// A source item's relative path turned into safe `/`-separated components (for zip entries and
/// published files): empty, `.` and `..` components are dropped, unsafe characters replaced.
/// `None` when nothing is left.
pub fn safe_relative(path: &str) -> Option<String> {
    let parts: Vec<String> = path
        .split(['/', '\\'])
        .filter(|c| !c.is_empty() && *c != "." && *c != "..")
        .map(|c| {
            let c: String = c.chars().map(|ch| if ch.is_control() { '_' } else { ch }).collect();
            let c = c.trim_start_matches('.').to_string();
            if c.len() > MAX_NAME {
                let mut end = MAX_NAME;
                while !c.is_char_boundary(end) {
                    end -= 1;
                }
                c[..end].to_string()
            } else {
                c
            }
        })
        .filter(|c| !c.is_empty())
        .collect();
    if parts.is_empty() { None } else { Some(parts.join("/")) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn vars(partner: &str) -> NameVars<'_> {
        NameVars {
            job: "acme-daily",
            account: "acme",
            partner,
            run: "01J",
            at: chrono_tz::Europe::Berlin.with_ymd_and_hms(2026, 12, 2, 6, 0, 0).single().expect("a valid time"),
            seq: 7,
        }
    }

    #[test]
    fn renders_the_documented_placeholders() {
        let t = NameTemplate::parse("{partner}-{date:%Y%m%d}-{seq}.zip").expect("parses");
        assert_eq!(t.render(&vars("ACME")).expect("renders"), "ACME-20261202-0007.zip");
        let t = NameTemplate::parse("{job}_{account}_{time}_{seq:2}_{run}.zip").expect("parses");
        assert_eq!(t.render(&vars("ACME")).expect("renders"), "acme-daily_acme_060000_07_01J.zip");
    }

    #[test]
    fn values_cannot_break_out_of_the_name() {
        let t = NameTemplate::parse("{partner}.zip").expect("parses");
        assert_eq!(t.render(&vars("x/../globex")).expect("renders"), "x_.._globex.zip");
        assert!(t.render(&vars("../globex")).is_err(), "a leading dot is refused");
        let t = NameTemplate::parse("{partner}").expect("parses");
        // a value that would make a hidden or reserved name is refused, not written
        assert!(t.render(&vars(".wharf-build")).is_err());
        let t = NameTemplate::parse("{date:%Y/%m/%d}.zip").expect("parses");
        assert_eq!(t.render(&vars("A")).expect("renders"), "2026_12_02.zip");
        let t = NameTemplate::parse("a/b-{seq}.zip").expect("parses");
        assert!(t.render(&vars("A")).unwrap_err().contains("not allowed"));
    }

    #[test]
    fn bad_templates_are_explained() {
        assert!(NameTemplate::parse("{nope}.zip").unwrap_err().contains("unknown placeholder `{nope}`"));
        assert!(NameTemplate::parse("{seq.zip").unwrap_err().contains("never closed"));
        assert!(NameTemplate::parse("x}.zip").unwrap_err().contains("without a `{`"));
        assert!(NameTemplate::parse("{seq:0}").unwrap_err().contains("width"));
        assert!(NameTemplate::parse("{date:%Q}").unwrap_err().contains("strftime"));
    }

    #[test]
    fn relative_paths_are_made_safe() {
        assert_eq!(safe_relative("../../etc/passwd").as_deref(), Some("etc/passwd"));
        assert_eq!(safe_relative("/abs/./x.pdf").as_deref(), Some("abs/x.pdf"));
        assert_eq!(safe_relative("a\\..\\b\u{7}.pdf").as_deref(), Some("a/b_.pdf"));
        assert_eq!(safe_relative(".hidden/.x").as_deref(), Some("hidden/x"));
        assert_eq!(safe_relative("../.."), None);
    }
}
