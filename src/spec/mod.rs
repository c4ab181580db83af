//! The spec: parsing `stack.toml` into a [`RawSpec`], with every error located.

mod error;
mod located;
mod model;

pub use error::{nearest, SourceMap, SpecError, SpecErrors};
pub use located::Located;
pub use model::*;

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

/// Parses spec text. Never panics: any input gives a spec or located errors.
pub fn parse(source: &SpecSource) -> Result<RawSpec, SpecErrors> {
    let map = source.source_map();
    toml::from_str::<RawSpec>(&source.text).map_err(|error| SpecErrors(vec![from_toml(&map, &error)]))
}

/// Turns a TOML/serde error into a located error with an `expected` and a hint.
fn from_toml(map: &SourceMap<'_>, error: &toml::de::Error) -> SpecError {
    let span = error.span().unwrap_or(0..0);
    let message = error.message().trim().to_string();
    let located = map.error(span, first_line(&message));

    if let Some(rest) = message.strip_prefix("unknown field `") {
        return unknown_word(located, rest, "key");
    }
    if let Some(rest) = message.strip_prefix("unknown variant `") {
        return unknown_word(located, rest, "value");
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        let field = rest.split('`').next().unwrap_or_default();
        return located
            .expected(format!("a key `{field}` in this table"))
            .hint(format!("add `{field} = ...`; docs/spec.md describes every key"));
    }
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        let (found, expected) = rest.split_once(", expected ").unwrap_or((rest, "another type"));
        return located
            .expected(expected.to_string())
            .hint(format!("this is {found}; write {expected} instead"));
    }
    if message.contains("invalid IPv4 network") || message.contains("invalid IP address") {
        let hint = if message.contains("network") {
            "write an IPv4 network in CIDR notation, e.g. \"10.0.0.0/24\""
        } else {
            "write a dotted IPv4 address, e.g. \"10.0.0.5\""
        };
        return located.expected("an IPv4 address or network").hint(hint);
    }
    if message.contains("duplicate key") {
        return located
            .expected("each key once per table")
            .hint("remove one of the two definitions");
    }
    if message.starts_with("invalid value") {
        return located.expected(message.split("expected ").nth(1).unwrap_or("a valid value").to_string());
    }
    located.expected("valid TOML").hint("see https://toml.io for the syntax; docs/spec.md for the keys")
}

/// "x`, expected one of `a`, `b`" → expected list and a did-you-mean hint.
fn unknown_word(located: SpecError, rest: &str, what: &str) -> SpecError {
    let (word, tail) = rest.split_once('`').unwrap_or((rest, ""));
    let candidates: Vec<&str> = tail.split('`').skip(1).step_by(2).collect();
    let located = SpecError { message: format!("unknown {what} `{word}`"), ..located };
    let expected = if candidates.is_empty() {
        format!("no {what}s here")
    } else {
        format!("one of {}", candidates.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", "))
    };
    let located = located.expected(expected);
    match nearest(word, candidates.iter().copied()) {
        Some(suggestion) => located.hint(format!("did you mean `{suggestion}`?")),
        None => located.hint("check the spelling against docs/spec.md"),
    }
}

fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or(message).to_string()
}
