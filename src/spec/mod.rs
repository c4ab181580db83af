//! The spec: parsing `stack.toml` into a [`RawSpec`], with every error located.

mod error;
mod located;
mod model;
mod recover;

use std::ops::Range;

pub use error::{nearest, SourceMap, SpecError, SpecErrors};
pub use located::Located;
pub use model::*;
pub use recover::{Dropped, DroppedEntry, Segment};

/// The default spec: two load balancers sharing a virtual IP, three web, three app and
/// three Galera database hosts. `nixstack init` writes it; commands use it when no spec
/// is given and there is no `./stack.toml`.
pub const DEFAULT_SPEC: &str = include_str!("../../examples/default.toml");

/// A spec's text and the name it is reported under.
#[derive(Debug, Clone)]
pub struct SpecSource {
    pub name: String,
    pub text: String,
}

impl SpecSource {
    pub fn embedded_default() -> Self {
        SpecSource { name: "<embedded default>".into(), text: DEFAULT_SPEC.into() }
    }
    pub fn source_map(&self) -> SourceMap<'_> {
        SourceMap::new(&self.name, &self.text)
    }
}

/// Reads the spec the user meant: the given path, else `./stack.toml`, else the embedded
/// default. Says on stderr which one it used, since the three give different stacks.
pub fn read(path: Option<&std::path::Path>) -> anyhow::Result<SpecSource> {
    use anyhow::Context;
    let local = std::path::Path::new("stack.toml");
    let source = match path {
        Some(path) => SpecSource {
            name: path.display().to_string(),
            text: std::fs::read_to_string(path).with_context(|| format!("cannot read spec {}", path.display()))?,
        },
        None if local.exists() => SpecSource {
            name: "stack.toml".into(),
            text: std::fs::read_to_string(local).context("cannot read ./stack.toml")?,
        },
        None => SpecSource::embedded_default(),
    };
    eprintln!("nixstack: using spec {}", source.name);
    Ok(source)
}

/// Parses spec text. Never panics: any input gives a spec or located errors, all of them
/// (see [`parse_recovering`]).
pub fn parse(source: &SpecSource) -> Result<RawSpec, SpecErrors> {
    let parsed = parse_recovering(source);
    match parsed.spec {
        Some(spec) if parsed.errors.is_empty() => Ok(spec),
        _ => Err(SpecErrors::sorted(parsed.errors)),
    }
}

/// What parsing found: the spec, when enough of it is well-formed to build one (with the
/// malformed entries left out), every shape error, and what was left out.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub spec: Option<RawSpec>,
    pub errors: Vec<SpecError>,
    pub dropped: Dropped,
}

/// Parses spec text and reports every shape error in it: serde stops at the first one, so
/// each error's entry is dropped and the rest deserialized again (src/spec/recover.rs). A
/// TOML syntax error ends parsing: there is no document to recover in.
pub fn parse_recovering(source: &SpecSource) -> Parsed {
    let map = source.source_map();
    let document = match toml_edit::ImDocument::parse(source.text.as_str()) {
        Ok(document) => document,
        Err(error) => {
            let errors = vec![from_toml(&map, error.message(), error.span())];
            return Parsed { spec: None, errors, dropped: Dropped::default() };
        }
    };
    let mut root = document.as_table().clone();
    let mut errors = Vec::new();
    let mut dropped = Dropped::default();
    loop {
        // A DocumentMut built from a parsed table keeps the table's spans, which `Located`
        // fields and the error locations need.
        let attempt = toml_edit::de::from_document::<RawSpec>(toml_edit::DocumentMut::from(root.clone()));
        let error = match attempt {
            Ok(spec) => return Parsed { spec: Some(spec), errors, dropped },
            Err(error) => error,
        };
        let (message, span) = (error.message(), error.span());
        // A table that lacks a key because its malformed value was dropped reports that
        // key as missing: the first error already said what is wrong with it.
        let consequence =
            missing_field(message).is_some_and(|key| dropped.0.iter().any(|entry| entry.explains_missing(key, &span)));
        if !consequence {
            errors.push(from_toml(&map, message, span.clone()));
        }
        let Some(mut entry) = span.and_then(|at| recover::drop_entry(&mut root, &at)) else {
            return Parsed { spec: None, errors, dropped };
        };
        entry.suggestion = unknown_field_suggestion(message);
        dropped.0.push(entry);
    }
}

/// "missing field `roles`" → `roles`.
fn missing_field(message: &str) -> Option<&str> {
    message.trim().strip_prefix("missing field `")?.split('`').next()
}

/// "unknown field `adress`, expected one of `address`, …" → the known key meant, if any.
fn unknown_field_suggestion(message: &str) -> Option<String> {
    let rest = message.trim().strip_prefix("unknown field `")?;
    let (word, candidates) = word_and_candidates(rest);
    suggestion(word, &candidates).map(str::to_string)
}

/// Turns a TOML/serde error into a located error with an `expected` and a hint.
fn from_toml(map: &SourceMap<'_>, message: &str, span: Option<Range<usize>>) -> SpecError {
    let span = span.unwrap_or(0..0);
    let message = message.trim().to_string();
    let (headline, detail) = match message.split_once('\n') {
        Some((head, rest)) => (head.trim(), rest.trim()),
        None => (message.as_str(), ""),
    };
    let located = map.error(span.clone(), headline);
    let value = map.text.get(span.clone()).unwrap_or_default();

    if let Some(rest) = headline.strip_prefix("unknown field `") {
        return unknown_word(located, rest, "key");
    }
    if let Some(rest) = headline.strip_prefix("unknown variant `") {
        return unknown_word(located, rest, "value");
    }
    if let Some(rest) = headline.strip_prefix("missing field `") {
        let field = rest.split('`').next().unwrap_or_default();
        return missing_key(located, field);
    }
    if let Some(rest) = headline.strip_prefix("invalid type: ") {
        let (found, expected) = rest.split_once(", expected ").unwrap_or((rest, "another type"));
        let expected = describe_type(expected);
        let hint = if found.starts_with("string") && (expected.contains("integer") || expected == "true or false") {
            "remove the quotes: numbers and booleans are written bare, e.g. `port = 8080`, `internal = true`"
                .to_string()
        } else if found.starts_with("string") && expected.starts_with("a list") {
            format!("put the value in brackets: [{value}]")
        } else if expected == "a quoted string" {
            format!("put the value in quotes: \"{}\"", value.trim_matches('"'))
        } else {
            format!("this is {found}; write {expected} instead")
        };
        let message = format!("expected {expected}, found {found}");
        return SpecError { message, ..located }.expected(expected).hint(hint);
    }
    if headline.contains("IPv4 address syntax")
        || headline.contains("IP address syntax")
        || headline.contains("invalid IPv4 network")
    {
        // std's Ipv4Addr says "invalid IPv4 address syntax"; ipnet's Ipv4Net says
        // "invalid IP address syntax" for anything that is not `a.b.c.d/len`.
        let is_network = !headline.contains("IPv4 address");
        let written = value.trim_matches('"');
        return if is_network {
            let hint = match written.split_once('/') {
                None => format!("add the prefix length, e.g. \"{written}/24\""),
                Some((_, len)) if len.parse::<u8>().map_or(true, |l| l > 32) => {
                    "the prefix length is 0 to 32, e.g. \"10.0.0.0/24\"".to_string()
                }
                Some(_) => {
                    "four numbers from 0 to 255, a slash and the prefix length, e.g. \"10.0.0.0/24\"".to_string()
                }
            };
            SpecError { message: format!("`{written}` is not an IPv4 network"), ..located }
                .expected("an IPv4 network in CIDR notation (address/prefix length)")
                .hint(hint)
        } else {
            SpecError { message: format!("`{written}` is not an IPv4 address"), ..located }
                .expected("a dotted IPv4 address: four numbers from 0 to 255")
                .hint("e.g. \"10.10.0.21\"; networks (with /len) belong in [networks]")
        };
    }
    if headline.starts_with("duplicate key") || detail.starts_with("duplicate key") {
        let what = if headline.starts_with("duplicate key") { headline } else { detail };
        let (expected, hint) = if headline.starts_with("invalid table header") {
            ("each table once", "merge the two tables into one, or rename one of them")
        } else {
            ("each key once per table", "remove one of the two definitions")
        };
        return SpecError { message: what.to_string(), ..located }.expected(expected).hint(hint);
    }
    if let Some(rest) = headline.strip_prefix("invalid value: ") {
        let (found, expected) = rest.split_once(", expected ").unwrap_or((rest, "a valid value"));
        let expected = describe_type(expected);
        let message = format!("{} is out of range", found.replace('`', ""));
        return SpecError { message, ..located }.expected(expected).hint("pick a number in that range");
    }
    syntax_error(located, headline, detail, map.text, span.start)
}

/// A TOML syntax error, with what the parser wanted said in words.
fn syntax_error(located: SpecError, headline: &str, detail: &str, text: &str, at: usize) -> SpecError {
    let rest_of_line: String = located.snippet.chars().skip(located.column.saturating_sub(1)).collect();
    let before = text.get(..at).unwrap_or_default().trim_end_matches([' ', '\t']);
    match headline {
        // toml gives no message for a few errors; say what is there instead.
        "" if before.ends_with('=') => SpecError { message: "a key without a value".into(), ..located }
            .expected("a value after `=`")
            .hint("write a value, e.g. `port = 8080`, or remove the line"),
        "" if text.get(at..).is_some_and(|rest| rest.starts_with('\r') && !rest.starts_with("\r\n")) => {
            SpecError { message: "a carriage return without a newline".into(), ..located }
                .expected("lines ending in `\\n` or `\\r\\n`")
                .hint("save the file with Unix (LF) or Windows (CRLF) line endings")
        }
        "" => SpecError { message: "invalid TOML".into(), ..located }
            .expected(expected_tokens(detail).unwrap_or_else(|| "valid TOML".into()))
            .hint("see https://toml.io for the syntax; docs/spec.md for the keys"),
        "invalid basic string" | "invalid literal string" => {
            // Point at the opening quote rather than the end of the line.
            let quote = if headline == "invalid basic string" { '"' } else { '\'' };
            let opening = located.snippet.rfind(quote).map(|byte| located.snippet[..byte].chars().count());
            let located = match opening {
                Some(col) if col + 1 < located.column => {
                    let width = located.snippet.chars().count() - col;
                    SpecError { column: col + 1, width, ..located }
                }
                _ => located,
            };
            SpecError { message: "string is not closed".into(), ..located }
                .expected(format!("a closing `{quote}` on the same line"))
                .hint(format!("close the string with `{quote}`; use triple quotes for text that spans lines"))
        }
        "invalid string" if rest_of_line.trim().is_empty() || rest_of_line.trim_start().starts_with('#') => {
            SpecError { message: "a key without a value".into(), ..located }
                .expected("a value after `=`")
                .hint("write a value, e.g. `port = 8080`, or remove the line")
        }
        "invalid string" => {
            let word = rest_of_line
                .split(|c: char| c.is_whitespace() || c == '#' || c == ',')
                .next()
                .unwrap_or_default()
                .to_string();
            let width = word.chars().count().max(1);
            SpecError { message: format!("`{word}` is not a TOML value"), width, ..located }
                .expected("a quoted string, a number, true/false, a list [...] or a table {...}")
                .hint(format!("put text in quotes: \"{word}\""))
        }
        "invalid table header" => SpecError { message: "table header is not closed".into(), ..located }
            .expected(expected_tokens(detail).unwrap_or_else(|| "`]`".into()))
            .hint("table headers look like `[hosts.web1]` and end with `]`"),
        _ => located
            .expected(expected_tokens(detail).unwrap_or_else(|| "valid TOML".into()))
            .hint("see https://toml.io for the syntax; docs/spec.md for the keys"),
    }
}

/// toml's "expected `.`, `]`" → "`.`, `]`".
fn expected_tokens(detail: &str) -> Option<String> {
    detail.strip_prefix("expected ").map(|tokens| format!("one of {tokens}"))
}

/// serde's type names in the words of a TOML user.
fn describe_type(expected: &str) -> String {
    match expected {
        "u8" => "an integer from 0 to 255".into(),
        "u16" => "an integer from 0 to 65535".into(),
        "u32" | "u64" | "usize" => "a non-negative integer".into(),
        "a boolean" => "true or false".into(),
        "a sequence" => "a list, e.g. [\"web\", \"app\"]".into(),
        "a string" | "a borrowed string" => "a quoted string".into(),
        "a map" => "a table".into(),
        other if other.starts_with("struct ") => "a table".into(),
        other if other.starts_with("IPv4 address") || other.starts_with("an IPv4") => "a quoted IPv4 address".into(),
        other => other.to_string(),
    }
}

/// An example of each required key, for the hint.
fn missing_key(located: SpecError, field: &str) -> SpecError {
    let table = match field {
        "stack" => Some("[stack]\nname = \"shop\"\ndomain = \"shop.example.com\""),
        "networks" => Some("[networks]\nprivate = \"10.10.0.0/24\"\npublic = \"203.0.113.0/24\""),
        "hosts" => Some("[hosts.web1]\nroles = [\"web\"]"),
        _ => None,
    };
    if let Some(example) = table {
        // Top-level tables: toml points at the file start, where the table could go.
        return SpecError { message: format!("the spec has no [{field}] table"), ..located }
            .expected(format!("a [{field}] table"))
            .hint(format!("add it, e.g. `{}`", example.replace('\n', "` / `")));
    }
    let example = match field {
        "name" => "name = \"shop\"",
        "domain" => "domain = \"shop.example.com\"",
        "private" => "private = \"10.10.0.0/24\"",
        "public" => "public = \"203.0.113.0/24\"",
        "roles" => "roles = [\"web\"]",
        "vip" => "vip = \"203.0.113.10\"",
        "database" => "database = \"shop\"",
        "from" => "from = \"198.51.100.0/24\"",
        "to" => "to = \"@web\"",
        "port" => "port = 9100",
        _ => "",
    };
    let hint = if example.is_empty() {
        format!("add `{field} = ...`; docs/spec.md describes every key")
    } else {
        format!("add `{example}`; docs/spec.md describes every key")
    };
    SpecError { message: format!("missing key `{field}`"), ..located }
        .expected(format!("a key `{field}` in this table"))
        .hint(hint)
}

/// Better suggestions than spelling distance where users write a known other name.
const ALIASES: [(&str, &str); 11] = [
    ("xtrabackup", "mariabackup"),
    ("mariadb", "mariadb-galera"),
    ("mysql", "mariadb-galera"),
    ("galera", "mariadb-galera"),
    ("mariadb", "db"),
    ("mysql", "db"),
    ("haproxy", "lb"),
    ("loadbalancer", "lb"),
    ("nginx", "web"),
    ("letsencrypt", "acme"),
    ("otel", "otelcol"),
];

/// "x`, expected one of `a`, `b`" → expected list and a did-you-mean hint.
fn unknown_word(located: SpecError, rest: &str, what: &str) -> SpecError {
    let (word, candidates) = word_and_candidates(rest);
    let located = SpecError { message: format!("unknown {what} `{word}`"), ..located };
    let expected = if candidates.is_empty() {
        format!("no {what}s here")
    } else if candidates.len() == 1 {
        format!("`{}`", candidates[0])
    } else {
        format!("one of {}", candidates.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", "))
    };
    let located = located.expected(expected);
    match suggestion(word, &candidates) {
        Some(suggestion) => located.hint(format!("did you mean `{suggestion}`?")),
        None if candidates.len() == 1 => located.hint(format!("`{}` is the only supported {what} here", candidates[0])),
        None => located.hint("check the spelling against docs/spec.md"),
    }
}

/// "x`, expected one of `a`, `b`" → ("x", ["a", "b"]).
fn word_and_candidates(rest: &str) -> (&str, Vec<&str>) {
    let (word, tail) = rest.split_once('`').unwrap_or((rest, ""));
    (word, tail.split('`').skip(1).step_by(2).collect())
}

/// The candidate an unknown word most likely stands for: a known other name, else the
/// nearest spelling.
fn suggestion<'c>(word: &str, candidates: &[&'c str]) -> Option<&'c str> {
    let alias = ALIASES
        .iter()
        .find(|(alias, target)| word.eq_ignore_ascii_case(alias) && candidates.contains(target))
        .and_then(|(_, target)| candidates.iter().copied().find(|c| c == target));
    alias.or_else(|| nearest(word, candidates.iter().copied()))
}
