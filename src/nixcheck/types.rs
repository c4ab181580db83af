//! NixOS option types: read from the type descriptions printed in the NixOS option data
//! (`"16 bit unsigned integer; between 0 and 65535 (both inclusive)"`) and from `lib.types`
//! expressions in our own modules, and printed back the way the NixOS manual prints them.

use std::fmt;

/// One NixOS option type, as far as a literal value can be judged against it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum NixType {
    /// `types.bool`: "boolean".
    Bool,
    /// Every integer type; bounds are inclusive.
    Int { min: Option<i64>, max: Option<i64> },
    /// `types.float` / `types.number`: integers are accepted too.
    Float,
    /// Every string type (`str`, `lines`, `singleLineStr`, `strMatching`, ...).
    Str(StrType),
    /// `types.path`: a path literal or a string starting with `/`.
    Path,
    /// `types.package`: a derivation (never a literal other than a store path).
    Package,
    /// The `null` value only.
    Null,
    /// `types.enum`: one of the listed literals.
    Enum(Vec<EnumMember>),
    /// `types.listOf`.
    ListOf { elem: Box<NixType>, non_empty: bool },
    /// `types.attrsOf` / `lazyAttrsOf`.
    AttrsOf(Box<NixType>),
    /// `types.attrs`: any attribute set.
    Attrs,
    /// `types.submodule`: an attribute set whose keys are the sub-options.
    Submodule,
    /// An open (freeform) submodule: declared sub-options; any other key holds this type.
    Freeform(Box<NixType>),
    /// `types.nullOr X`, `types.either`, `types.oneOf`, `coercedTo`: any alternative.
    Either(Vec<NixType>),
    /// `types.functionTo X`.
    Function,
    /// Types whose values cannot be judged here (`anything`, YAML/JSON/INI values,
    /// `unspecified`, systemd unit options, and every type description we do not know).
    Anything,
}

/// The checks a string type adds on top of "is a string".
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct StrType {
    /// `lines`/`commas`/`separatedString`: definitions are concatenated with this separator.
    pub(crate) concatenated_with: Option<String>,
    /// `singleLineStr`: no newline except one at the end.
    pub(crate) single_line: bool,
    /// "not containing newlines or colons" (user names, passwd fields).
    pub(crate) no_newlines_or_colons: bool,
    /// `nonEmptyStr` and "(with check: non-empty)".
    pub(crate) non_empty: bool,
    /// `strMatching`: the pattern is shown but not checked (no regex engine here).
    pub(crate) pattern: Option<String>,
}

/// A member of an enum type.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum EnumMember {
    Str(String),
    Int(i64),
}

impl NixType {
    /// The 16 bit port type, as `types.port` is printed.
    pub(crate) fn port() -> NixType {
        NixType::Int { min: Some(0), max: Some(65535) }
    }

    pub(crate) fn string() -> NixType {
        NixType::Str(StrType::default())
    }

    pub(crate) fn null_or(inner: NixType) -> NixType {
        NixType::Either(vec![NixType::Null, inner])
    }

    /// Parses a type description as printed in the NixOS option data. Descriptions we do
    /// not recognise become [`NixType::Anything`], so an unknown type never causes a
    /// false error.
    pub(crate) fn from_description(description: &str) -> NixType {
        let text = description.trim();
        if let Some(inner) = strip_outer_parens(text) {
            return NixType::from_description(inner);
        }
        if let Some(base) = text.strip_suffix(" convertible to it") {
            // coercedTo: "FROM or TO convertible to it"; both are accepted.
            let alternatives = split_top_level_or(base);
            if alternatives.len() > 1 {
                return NixType::Either(alternatives.iter().map(|a| NixType::from_description(a)).collect());
            }
        }
        let alternatives = split_top_level_or(text);
        if alternatives.len() > 1 {
            return NixType::Either(alternatives.iter().map(|a| NixType::from_description(a)).collect());
        }
        single_type_from_description(text)
    }
}

fn single_type_from_description(text: &str) -> NixType {
    let text = text.trim();
    if let Some(inner) = strip_outer_parens(text) {
        return NixType::from_description(inner);
    }
    if text == "boolean" {
        return NixType::Bool;
    }
    if text == "null" {
        return NixType::Null;
    }
    if text == "package" {
        return NixType::Package;
    }
    if text == "submodule" {
        return NixType::Submodule;
    }
    if text == "attribute set" {
        return NixType::Attrs;
    }
    if let Some(rest) = text.strip_prefix("non-empty (list of ").and_then(|r| r.strip_suffix(')')) {
        return NixType::ListOf { elem: Box::new(NixType::from_description(rest)), non_empty: true };
    }
    if let Some(rest) = text.strip_prefix("list of ") {
        return NixType::ListOf { elem: Box::new(NixType::from_description(rest)), non_empty: false };
    }
    for prefix in ["attribute set of ", "lazy attribute set of "] {
        if let Some(rest) = text.strip_prefix(prefix) {
            return NixType::AttrsOf(Box::new(NixType::from_description(rest)));
        }
    }
    if let Some(rest) = text.strip_prefix("open submodule of ") {
        // The freeform type is an attribute set; each undeclared key holds its element.
        return match NixType::from_description(rest) {
            NixType::AttrsOf(elem) => NixType::Freeform(elem),
            _ => NixType::Freeform(Box::new(NixType::Anything)),
        };
    }
    if let Some(rest) = text.strip_prefix("one of ") {
        return NixType::Enum(parse_enum_members(rest));
    }
    if let Some(rest) = text.strip_prefix("value ").and_then(|r| r.strip_suffix(" (singular enum)")) {
        return NixType::Enum(parse_enum_members(rest));
    }
    if text.starts_with("function that evaluates to") {
        return NixType::Function;
    }
    if text.contains("integer") {
        return int_from_description(text);
    }
    if text == "floating point number" || text == "float" || text.starts_with("number") {
        return NixType::Float;
    }
    if let Some(rest) = text.strip_prefix("strings concatenated with ") {
        return NixType::Str(StrType {
            concatenated_with: Some(unquote(rest).unwrap_or_else(|| rest.to_string())),
            ..StrType::default()
        });
    }
    if text.starts_with("absolute path") || text == "path" || text.starts_with("path in the Nix store") {
        return NixType::Path;
    }
    let is_string =
        text.starts_with("string") || text.starts_with("non-empty string") || text.contains("single-line string");
    if is_string {
        return NixType::Str(StrType {
            concatenated_with: None,
            single_line: text.contains("single-line"),
            no_newlines_or_colons: text.contains("not containing newlines or colons"),
            non_empty: text.contains("non-empty"),
            pattern: text.split_once("matching the pattern ").map(|(_, pattern)| pattern.to_string()),
        });
    }
    // YAML/JSON/TOML/INI values, "anything", "unspecified value", "systemd option",
    // "sysctl option value", "module", and anything new: not judged.
    NixType::Anything
}

fn int_from_description(text: &str) -> NixType {
    if let Some((_, bounds)) = text.split_once("between ") {
        let mut words = bounds.split_whitespace();
        let min = words.next().and_then(|w| w.parse::<i64>().ok());
        let and = words.next();
        let max = words.next().and_then(|w| w.parse::<i64>().ok());
        if let (Some(min), Some("and"), Some(max)) = (min, and, max) {
            return NixType::Int { min: Some(min), max: Some(max) };
        }
    }
    if text.starts_with("positive integer") {
        return NixType::Int { min: Some(1), max: None };
    }
    if text.starts_with("unsigned integer") {
        return NixType::Int { min: Some(0), max: None };
    }
    NixType::Int { min: None, max: None }
}

/// `"a", "b", 3` → members.
fn parse_enum_members(text: &str) -> Vec<EnumMember> {
    let mut members = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        if rest.starts_with('"') {
            // Find the closing quote, honouring backslash escapes.
            let bytes = rest.as_bytes();
            let mut end = 1;
            while end < bytes.len() && bytes[end] != b'"' {
                end += if bytes[end] == b'\\' { 2 } else { 1 };
            }
            let end = end.min(bytes.len().saturating_sub(1));
            let member = unquote(&rest[..=end]).unwrap_or_default();
            members.push(EnumMember::Str(member));
            rest = rest[end + 1..].trim_start();
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            let word = rest[..end].trim();
            match word.parse::<i64>() {
                Ok(n) => members.push(EnumMember::Int(n)),
                Err(_) => members.push(EnumMember::Str(word.to_string())),
            }
            rest = &rest[end..];
        }
        rest = rest.trim_start().strip_prefix(',').unwrap_or(rest).trim_start();
    }
    members
}

/// `"\n"` → newline; `None` if `text` is not one quoted string.
fn unquote(text: &str) -> Option<String> {
    let inner = text.trim().strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// `(X)` → `X` when the opening parenthesis closes at the very end.
fn strip_outer_parens(text: &str) -> Option<&str> {
    if !text.starts_with('(') || !text.ends_with(')') {
        return None;
    }
    let mut depth = 0usize;
    let mut in_quote = false;
    for (i, c) in text.char_indices() {
        match c {
            '"' => in_quote = !in_quote,
            '(' if !in_quote => depth += 1,
            ')' if !in_quote => {
                depth -= 1;
                if depth == 0 {
                    return (i == text.len() - 1).then(|| &text[1..i]);
                }
            }
            _ => {}
        }
    }
    None
}

/// Splits `A or B or (C or D)` at the top-level ` or `s. The phrase "newlines or colons"
/// and everything after "matching the pattern" are never split.
fn split_top_level_or(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut in_quote = false;
    let mut start = 0;
    let mut i = 0;
    let bytes = text.as_bytes();
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'"' {
            in_quote = !in_quote;
        } else if !in_quote && c == b'(' {
            depth += 1;
        } else if !in_quote && c == b')' {
            depth = depth.saturating_sub(1);
        } else if !in_quote && depth == 0 {
            let rest = &text[i..];
            if rest.starts_with("matching the pattern ") {
                break;
            }
            if rest.starts_with(" or ") && !text[..i].ends_with("newlines") {
                parts.push(&text[start..i]);
                i += 4;
                start = i;
                continue;
            }
        }
        i += 1;
    }
    parts.push(&text[start..]);
    parts
}

impl fmt::Display for EnumMember {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnumMember::Str(s) => write!(f, "{s:?}"),
            EnumMember::Int(n) => write!(f, "{n}"),
        }
    }
}

impl fmt::Display for NixType {
    /// Prints the type the way the NixOS manual does.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Composite element types are parenthesised, as in "list of (submodule)".
        fn nested(ty: &NixType) -> String {
            match ty {
                NixType::Bool | NixType::Package | NixType::Path | NixType::Null => ty.to_string(),
                NixType::Str(s) if *s == StrType::default() => ty.to_string(),
                NixType::Int { min: None, max: None } => ty.to_string(),
                _ => format!("({ty})"),
            }
        }
        match self {
            NixType::Bool => f.write_str("boolean"),
            NixType::Int { min, max } => match (min, max) {
                (None, None) => f.write_str("signed integer"),
                (Some(0), Some(65535)) => f.write_str("16 bit unsigned integer; between 0 and 65535 (both inclusive)"),
                (Some(1), None) => f.write_str("positive integer, meaning >0"),
                (Some(0), None) => f.write_str("unsigned integer, meaning >=0"),
                (Some(a), Some(b)) => write!(f, "integer between {a} and {b} (both inclusive)"),
                (None, Some(b)) => write!(f, "integer at most {b}"),
                (Some(a), None) => write!(f, "integer at least {a}"),
            },
            NixType::Float => f.write_str("floating point number"),
            NixType::Str(s) => {
                if let Some(sep) = &s.concatenated_with {
                    write!(f, "strings concatenated with {sep:?}")
                } else if let Some(pattern) = &s.pattern {
                    write!(f, "string matching the pattern {pattern}")
                } else if s.single_line {
                    f.write_str("(optionally newline-terminated) single-line string")
                } else if s.no_newlines_or_colons {
                    f.write_str("string, not containing newlines or colons")
                } else if s.non_empty {
                    f.write_str("non-empty string")
                } else {
                    f.write_str("string")
                }
            }
            NixType::Path => f.write_str("absolute path"),
            NixType::Package => f.write_str("package"),
            NixType::Null => f.write_str("null"),
            NixType::Enum(members) => {
                let members: Vec<String> = members.iter().map(ToString::to_string).collect();
                write!(f, "one of {}", members.join(", "))
            }
            NixType::ListOf { elem, non_empty } => {
                if *non_empty {
                    write!(f, "non-empty (list of {})", nested(elem))
                } else {
                    write!(f, "list of {}", nested(elem))
                }
            }
            NixType::AttrsOf(elem) => write!(f, "attribute set of {}", nested(elem)),
            NixType::Attrs => f.write_str("attribute set"),
            NixType::Submodule => f.write_str("submodule"),
            NixType::Freeform(elem) => {
                write!(f, "open submodule of attribute set of {}", nested(elem))
            }
            NixType::Either(alternatives) => {
                let parts: Vec<String> = alternatives
                    .iter()
                    .map(|a| match a {
                        NixType::Either(_) => format!("({a})"),
                        _ => a.to_string(),
                    })
                    .collect();
                f.write_str(&parts.join(" or "))
            }
            NixType::Function => f.write_str("function"),
            NixType::Anything => f.write_str("anything"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> NixType {
        NixType::from_description(text)
    }

    #[test]
    fn ranged_integers_keep_their_bounds() {
        assert_eq!(parse("16 bit unsigned integer; between 0 and 65535 (both inclusive)"), NixType::port());
        assert_eq!(parse("integer between 1 and 255 (both inclusive)"), NixType::Int { min: Some(1), max: Some(255) });
        assert_eq!(parse("positive integer, meaning >0"), NixType::Int { min: Some(1), max: None });
        assert_eq!(parse("signed integer"), NixType::Int { min: None, max: None });
    }

    #[test]
    fn enums_list_their_members() {
        assert_eq!(
            parse(r#"one of "MASTER", "BACKUP""#),
            NixType::Enum(vec![EnumMember::Str("MASTER".into()), EnumMember::Str("BACKUP".into())])
        );
        assert_eq!(
            parse(r#"signed integer or value "auto" (singular enum)"#),
            NixType::Either(vec![
                NixType::Int { min: None, max: None },
                NixType::Enum(vec![EnumMember::Str("auto".into())])
            ])
        );
    }

    #[test]
    fn or_inside_a_phrase_or_parentheses_is_not_a_union() {
        assert!(matches!(
            parse("string, not containing newlines or colons"),
            NixType::Str(StrType { no_newlines_or_colons: true, .. })
        ));
        assert_eq!(
            parse("list of (string or package)"),
            NixType::ListOf {
                elem: Box::new(NixType::Either(vec![NixType::string(), NixType::Package])),
                non_empty: false
            }
        );
        assert!(matches!(
            parse("list of string matching the pattern [a-z]+[.](service|socket)"),
            NixType::ListOf { .. }
        ));
        assert_eq!(
            parse("(attribute set of boolean) or (list of string) convertible to it"),
            NixType::Either(vec![
                NixType::AttrsOf(Box::new(NixType::Bool)),
                NixType::ListOf { elem: Box::new(NixType::string()), non_empty: false }
            ])
        );
    }

    #[test]
    fn free_form_values_are_not_judged() {
        assert_eq!(parse("YAML 1.1 value"), NixType::Anything);
        assert_eq!(parse("attribute set of (systemd option)"), NixType::AttrsOf(Box::new(NixType::Anything)));
    }

    #[test]
    fn strings_concatenated_keep_the_separator() {
        let NixType::Str(s) = parse(r#"strings concatenated with "\n""#) else { panic!() };
        assert_eq!(s.concatenated_with.as_deref(), Some("\n"));
        assert_eq!(NixType::Str(s).to_string(), r#"strings concatenated with "\n""#);
    }

    #[test]
    fn every_type_in_the_option_data_is_read() {
        // Guards against new descriptions silently becoming `Anything` where they should
        // be checked: the only descriptions read as `Anything` are the free-form ones.
        let data: serde_json::Value = serde_json::from_str(include_str!("../../data/nixos-options.json")).unwrap();
        for option in data["options"].as_array().unwrap() {
            let description = option["type"].as_str().unwrap();
            let ty = parse(description);
            if ty == NixType::Anything {
                let free_form = ["YAML", "unspecified", "systemd option", "module"];
                assert!(free_form.iter().any(|word| description.contains(word)), "{description:?} was not understood");
            }
        }
    }
}
