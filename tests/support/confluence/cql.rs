//! The CQL subset of `search.rs` (v1 content search): tokenizer, parser and evaluator.
//!
//! Supported: fields `type`, `space` / `space.key`, `label`, `title`, `lastmodified`, `created`,
//! `id`; operators `=`, `!=`, `~`, `!~` (title), `>`, `>=`, `<`, `<=` (dates), `in (…)`, `not in (…)`;
//! `AND`, `OR`, `NOT`, parentheses; `ORDER BY lastmodified|created|title|id [ASC|DESC]`, comma
//! separated. Anything else (other fields, functions such as `now("-1d")`, `currentUser()`) is a
//! 400 with a v1 error body, like unparsable CQL on Confluence.
//!
//! Decisions: dates (`"2024-03-04"`, `"2024-03-04 15:30"`, `"2024/03/04 15:30"`, RFC 3339) are UTC
//! (Confluence uses the user's time zone) and compare at the precision written (a day, a minute,
//! a second); `title ~ "x y*"` matches when every term (without `*`) occurs in the title, case
//! insensitive (Confluence stems words; close enough for selection); without `ORDER BY` results
//! come by id; only current, visible pages are found.

use super::state::{Page, State};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
}

fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let c: Vec<char> = s.chars().collect();
    let mut out = vec![];
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch.is_whitespace() {
            i += 1;
        } else if ch == '"' || ch == '\'' {
            let mut v = String::new();
            i += 1;
            loop {
                match c.get(i) {
                    None => return Err("unterminated string".into()),
                    Some('\\') => {
                        v.extend(c.get(i + 1));
                        i += 2;
                    }
                    Some(x) if *x == ch => {
                        i += 1;
                        break;
                    }
                    Some(x) => {
                        v.push(*x);
                        i += 1;
                    }
                }
            }
            out.push(Tok::Str(v));
        } else if ch == '(' {
            out.push(Tok::LParen);
            i += 1;
        } else if ch == ')' {
            out.push(Tok::RParen);
            i += 1;
        } else if ch == ',' {
            out.push(Tok::Comma);
            i += 1;
        } else if "=!~<>".contains(ch) {
            let two: String = c[i..(i + 2).min(c.len())].iter().collect();
            let op = match two.as_str() {
                "!=" => "!=",
                "!~" => "!~",
                ">=" => ">=",
                "<=" => "<=",
                _ => match ch {
                    '=' => "=",
                    '~' => "~",
                    '>' => ">",
                    '<' => "<",
                    _ => return Err("unexpected '!'".into()),
                },
            };
            i += op.len();
            out.push(Tok::Op(op));
        } else if ch.is_alphanumeric() || "._-:".contains(ch) {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || "._-:".contains(c[i])) {
                i += 1;
            }
            out.push(Tok::Word(c[start..i].iter().collect()));
        } else {
            return Err(format!("unexpected character '{ch}'"));
        }
    }
    Ok(out)
}

/// A parsed condition tree.
#[derive(Debug)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Cond { field: String, op: String, values: Vec<String> },
}

struct Parser {
    t: Vec<Tok>,
    i: usize,
}

fn kw(t: Option<&Tok>, k: &str) -> bool {
    matches!(t, Some(Tok::Word(w)) if w.eq_ignore_ascii_case(k))
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.t.get(self.i)
    }
    fn bump(&mut self) -> Option<Tok> {
        let t = self.t.get(self.i).cloned();
        self.i += 1;
        t
    }
    fn or(&mut self) -> Result<Expr, String> {
        let mut e = self.and()?;
        while kw(self.peek(), "or") {
            self.i += 1;
            e = Expr::Or(Box::new(e), Box::new(self.and()?));
        }
        Ok(e)
    }
    fn and(&mut self) -> Result<Expr, String> {
        let mut e = self.unary()?;
        while kw(self.peek(), "and") {
            self.i += 1;
            e = Expr::And(Box::new(e), Box::new(self.unary()?));
        }
        Ok(e)
    }
    fn unary(&mut self) -> Result<Expr, String> {
        if kw(self.peek(), "not") {
            self.i += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.peek() == Some(&Tok::LParen) {
            self.i += 1;
            let e = self.or()?;
            if self.bump() != Some(Tok::RParen) {
                return Err("expected ')'".into());
            }
            return Ok(e);
        }
        self.cond()
    }
    fn value(&mut self) -> Result<String, String> {
        match self.bump() {
            Some(Tok::Str(s)) => Ok(s),
            Some(Tok::Word(w)) => {
                if self.peek() == Some(&Tok::LParen) {
                    return Err(format!("functions such as {w}() are not supported by this emulator"));
                }
                Ok(w)
            }
            t => Err(format!("expected a value, found {t:?}")),
        }
    }
    fn cond(&mut self) -> Result<Expr, String> {
        let field = match self.bump() {
            Some(Tok::Word(w)) => w.to_lowercase(),
            t => return Err(format!("expected a field, found {t:?}")),
        };
        let op = match self.bump() {
            Some(Tok::Op(o)) => o.to_string(),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("in") => "in".into(),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("not") && kw(self.peek(), "in") => {
                self.i += 1;
                "not in".into()
            }
            t => return Err(format!("expected an operator after {field}, found {t:?}")),
        };
        let values = if op.ends_with("in") {
            if self.bump() != Some(Tok::LParen) {
                return Err("expected '(' after in".into());
            }
            let mut v = vec![self.value()?];
            while self.peek() == Some(&Tok::Comma) {
                self.i += 1;
                v.push(self.value()?);
            }
            if self.bump() != Some(Tok::RParen) {
                return Err("expected ')'".into());
            }
            v
        } else {
            vec![self.value()?]
        };
        let ok_ops: &[&str] = match field.as_str() {
            "type" | "space" | "space.key" | "label" | "id" => &["=", "!=", "in", "not in"],
            "title" => &["=", "!=", "~", "!~"],
            "lastmodified" | "created" => &["=", "!=", ">", ">=", "<", "<="],
            _ => return Err(format!("the field '{field}' is not supported by this emulator")),
        };
        if !ok_ops.contains(&op.as_str()) {
            return Err(format!("the operator '{op}' is not supported for field '{field}'"));
        }
        if field == "type" {
            let known = ["page", "blogpost", "comment", "attachment", "whiteboard", "database", "folder", "embed"];
            if let Some(v) = values.iter().find(|v| !known.contains(&v.as_str())) {
                return Err(format!("unknown content type '{v}'"));
            }
        }
        if field == "lastmodified" || field == "created" {
            for v in &values {
                parse_date(v)?;
            }
        }
        Ok(Expr::Cond { field, op, values })
    }
}

/// A CQL date and the precision it was written with (`%Y-%m-%d` day, `… %H:%M` minute, RFC 3339 second).
fn parse_date(v: &str) -> Result<(DateTime<Utc>, &'static str), String> {
    let v = v.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok((t.with_timezone(&Utc), "%Y-%m-%dT%H:%M:%S"));
    }
    for f in ["%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M", "%Y-%m-%dT%H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(v, f) {
            return Ok((t.and_utc(), "%Y-%m-%dT%H:%M"));
        }
    }
    for f in ["%Y-%m-%d", "%Y/%m/%d"] {
        if let Ok(d) = NaiveDate::parse_from_str(v, f) {
            return Ok((d.and_hms_opt(0, 0, 0).map(|t| t.and_utc()).unwrap_or_default(), "%Y-%m-%d"));
        }
    }
    Err(format!("'{v}' is not a valid date (yyyy-MM-dd, yyyy-MM-dd HH:mm, yyyy/MM/dd HH:mm or ISO 8601)"))
}

/// Whether a page matches.
pub fn eval(e: &Expr, st: &State, p: &Page) -> bool {
    match e {
        Expr::And(a, b) => eval(a, st, p) && eval(b, st, p),
        Expr::Or(a, b) => eval(a, st, p) || eval(b, st, p),
        Expr::Not(a) => !eval(a, st, p),
        Expr::Cond { field, op, values } => {
            let key = st.spaces.get(&p.space_id).map(|s| s.key.as_str()).unwrap_or("");
            let any = |f: &dyn Fn(&str) -> bool| values.iter().any(|v| f(v));
            let hit = match field.as_str() {
                "type" => any(&|v| v == "page"),
                "space" | "space.key" => any(&|v| v == key),
                "label" => any(&|v| p.labels.iter().any(|l| l.name == v.to_lowercase())),
                "id" => any(&|v| v == p.id.to_string()),
                "title" if op.contains('~') => {
                    let t = p.title.to_lowercase();
                    values[0]
                        .to_lowercase()
                        .split(|c: char| !c.is_alphanumeric())
                        .filter(|w| !w.is_empty())
                        .all(|w| t.contains(w))
                }
                "title" => any(&|v| v == p.title),
                _ => {
                    let at = if field == "created" { p.created_at } else { p.version.created_at };
                    let Ok((v, prec)) = parse_date(&values[0]) else { return false };
                    let (a, b) = (at.format(prec).to_string(), v.format(prec).to_string());
                    return match op.as_str() {
                        "=" => a == b,
                        "!=" => a != b,
                        ">" => a > b,
                        ">=" => a >= b,
                        "<" => a < b,
                        _ => a <= b,
                    };
                }
            };
            if op.starts_with('!') || op == "not in" { !hit } else { hit }
        }
    }
}

/// Splits `… ORDER BY a desc, b` off; returns the condition text and the sort keys.
/// `ORDER BY` keys: field and descending.
pub type Order = Vec<(String, bool)>;

fn split_order(cql: &str) -> Result<(String, Order), String> {
    let lower = cql.to_lowercase();
    let Some(at) = lower.find(" order by ").or_else(|| lower.starts_with("order by ").then_some(0)) else {
        return Ok((cql.to_string(), vec![]));
    };
    let cond = cql[..at].to_string();
    let rest = &cql[at..].trim_start()["order by".len()..];
    let mut keys = vec![];
    for part in rest.split(',') {
        let mut w = part.split_whitespace();
        let f = w.next().ok_or("empty ORDER BY")?.to_lowercase();
        if !["lastmodified", "created", "title", "id"].contains(&f.as_str()) {
            return Err(format!("ORDER BY {f} is not supported by this emulator"));
        }
        let desc = match w.next().map(str::to_lowercase).as_deref() {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(x) => return Err(format!("unexpected '{x}' in ORDER BY")),
        };
        if w.next().is_some() {
            return Err("unexpected text in ORDER BY".into());
        }
        keys.push((f, desc));
    }
    Ok((cond, keys))
}

/// Parses a whole query: the condition (none for a bare `ORDER BY`) and the sort keys.
pub fn parse(cql: &str) -> Result<(Option<Expr>, Order), String> {
    let (cond, order) = split_order(cql)?;
    let toks = tokenize(&cond)?;
    if toks.is_empty() {
        return if order.is_empty() { Err("empty query".into()) } else { Ok((None, order)) };
    }
    let mut p = Parser { t: toks, i: 0 };
    let e = p.or()?;
    if p.i < p.t.len() {
        return Err(format!("unexpected {:?}", p.t[p.i]));
    }
    Ok((Some(e), order))
}
