//! A small typed Nix value and its printer, RFC 166 style: 2-space indentation, attribute
//! sets and multi-element lists one item per line, strings and paths escaped so that no value
//! from a spec can change the meaning of the generated file.

use std::fmt::Write as _;

/// A Nix value as generated files need it: data, plus a few references (`pkgs.x`, `lib.y`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Nix {
    Null,
    Bool(bool),
    Int(i64),
    /// A string, printed as `"..."` when it is one line, else as a `''...''` string.
    Str(String),
    /// A path literal relative to the file (`./haproxy.cfg`, `../../modules`) or absolute.
    Path(String),
    List(Vec<Nix>),
    /// Bindings in the order given; a key with dots in its path is a nested attribute path
    /// (`["networking", "hostName"]` prints `networking.hostName`).
    Attrs(Vec<(Vec<String>, Nix)>),
    /// A reference or call written verbatim, e.g. `pkgs.mariadb`. Only built by this crate
    /// from fixed text and checked names, never from spec strings.
    Raw(String),
}

impl Nix {
    pub fn str(value: impl Into<String>) -> Nix {
        Nix::Str(value.into())
    }

    /// A list of strings.
    pub fn strs<I, S>(values: I) -> Nix
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Nix::List(values.into_iter().map(|value| Nix::Str(value.into())).collect())
    }

    /// A path literal relative to the generated file. Names that a path literal cannot hold
    /// are written as `./. + "/name"`, which means the same path.
    pub fn relative_path(relative: &str) -> Nix {
        Nix::Path(relative.to_string())
    }

    /// A reference such as `pkgs.nixstack-demo-app`: `base` plus attribute names, each
    /// quoted when it is not a plain identifier.
    pub fn select(base: &str, names: &[&str]) -> Nix {
        let mut text = base.to_string();
        for name in names {
            text.push('.');
            text.push_str(&attr_name(name));
        }
        Nix::Raw(text)
    }

    /// Prints the value at indentation level 0 (the caller adds no trailing newline).
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, 0);
        out
    }

    fn is_multiline(&self) -> bool {
        match self {
            Nix::Attrs(bindings) => !bindings.is_empty(),
            Nix::List(items) => items.len() > 1 || items.iter().any(Nix::is_multiline),
            Nix::Str(text) => text.contains('\n'),
            _ => false,
        }
    }

    fn write(&self, out: &mut String, level: usize) {
        match self {
            Nix::Null => out.push_str("null"),
            Nix::Bool(value) => out.push_str(if *value { "true" } else { "false" }),
            Nix::Int(value) => {
                // A negative literal would parse as a unary minus applied in a list, where it
                // splits into two elements; parenthesise it.
                if *value < 0 {
                    let _ = write!(out, "({value})");
                } else {
                    let _ = write!(out, "{value}");
                }
            }
            Nix::Str(text) if text.contains('\n') => write_indented_string(out, text, level),
            Nix::Str(text) => out.push_str(&quote(text)),
            Nix::Path(path) => out.push_str(&path_literal(path)),
            Nix::Raw(text) => out.push_str(text),
            Nix::List(items) if items.is_empty() => out.push_str("[ ]"),
            Nix::List(items) if !self.is_multiline() => {
                out.push_str("[ ");
                items[0].write(out, level);
                out.push_str(" ]");
            }
            Nix::List(items) => {
                out.push_str("[\n");
                for item in items {
                    indent(out, level + 1);
                    // Calls and selections are one expression in a list only in parentheses.
                    let parenthesise = matches!(item, Nix::Raw(text) if text.contains(' '));
                    if parenthesise {
                        out.push('(');
                    }
                    item.write(out, level + 1);
                    if parenthesise {
                        out.push(')');
                    }
                    out.push('\n');
                }
                indent(out, level);
                out.push(']');
            }
            Nix::Attrs(bindings) if bindings.is_empty() => out.push_str("{ }"),
            Nix::Attrs(bindings) => {
                out.push_str("{\n");
                for (path, value) in bindings {
                    indent(out, level + 1);
                    out.push_str(&attr_path(path));
                    out.push_str(" = ");
                    value.write(out, level + 1);
                    out.push_str(";\n");
                }
                indent(out, level);
                out.push('}');
            }
        }
    }
}

fn indent(out: &mut String, level: usize) {
    for _ in 0..level {
        out.push_str("  ");
    }
}

/// `a.b."c.d"`.
pub fn attr_path(path: &[String]) -> String {
    path.iter().map(|name| attr_name(name)).collect::<Vec<_>>().join(".")
}

/// An attribute name, quoted unless it is a plain identifier that is not a keyword.
pub fn attr_name(name: &str) -> String {
    if is_identifier(name) {
        name.to_string()
    } else {
        quote(name)
    }
}

const KEYWORDS: &[&str] = &["assert", "else", "if", "in", "inherit", "let", "or", "rec", "then", "with"];

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    (first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '\'' | '-'))
        && !KEYWORDS.contains(&name)
}

/// A double-quoted Nix string: `\`, `"` and `${` escaped, control characters as escapes.
pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' if chars.peek() == Some(&'{') => out.push_str("\\$"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A `''...''` string for multi-line text: `''` and `${` escaped (`'''`, `''${`), every line
/// indented one level deeper than the binding, which Nix strips again. Text that Nix would
/// read back differently (tabs, carriage returns, a line of only spaces, no line without
/// indentation, a final `'`) is printed double-quoted instead.
fn write_indented_string(out: &mut String, text: &str, level: usize) {
    let (body, trailing_newline) = match text.strip_suffix('\n') {
        Some(body) => (body, true),
        None => (text, false),
    };
    let safe = !text.contains(['\t', '\r'])
        // Nix strips the indentation common to all lines: one line must start unindented.
        && body.split('\n').any(|line| !line.is_empty() && !line.starts_with(' '))
        && body.split('\n').all(|line| line.is_empty() || !line.trim().is_empty())
        // A final `'` would merge with the closing quotes.
        && (trailing_newline || !body.ends_with('\''));
    if !safe {
        out.push_str(&quote(text));
        return;
    }
    out.push_str("''\n");
    for (index, line) in body.split('\n').enumerate() {
        if index > 0 {
            out.push('\n');
        }
        if !line.is_empty() {
            indent(out, level + 1);
            out.push_str(&line.replace("''", "'''").replace("${", "''${"));
        }
    }
    if trailing_newline {
        out.push('\n');
        indent(out, level);
    }
    out.push_str("''");
}

/// A path literal when the path is one (`./x.cfg`, `../../modules`, `/etc/x`), else the
/// equivalent `./. + "/name"` expression.
fn path_literal(path: &str) -> String {
    let literal_chars = |s: &str| {
        !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+' | '/'))
    };
    let rooted = path.starts_with("./") || path.starts_with("../") || path.starts_with('/');
    let clean = !path.ends_with('/') && !path.contains("//");
    if rooted && clean && literal_chars(path) {
        path.to_string()
    } else {
        let relative = path.trim_start_matches("./");
        format!("(./. + {})", quote(&format!("/{relative}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(bindings: Vec<(&str, Nix)>) -> Nix {
        Nix::Attrs(bindings.into_iter().map(|(k, v)| (k.split('.').map(str::to_string).collect(), v)).collect())
    }

    #[test]
    fn strings_escape_quotes_backslashes_and_interpolation() {
        assert_eq!(quote(r#"a "b" \c ${d} $e"#), r#""a \"b\" \\c \${d} $e""#);
        assert_eq!(quote("tab\there"), r#""tab\there""#);
        assert_eq!(Nix::str("$${x}").render(), r#""$\${x}""#);
    }

    #[test]
    fn keys_that_are_not_identifiers_are_quoted() {
        assert_eq!(attr_name("hostName"), "hostName");
        assert_eq!(attr_name("raw-efi"), "raw-efi");
        assert_eq!(attr_name("net.ipv4.ip_nonlocal_bind"), "\"net.ipv4.ip_nonlocal_bind\"");
        assert_eq!(attr_name("/"), "\"/\"");
        assert_eq!(attr_name("in"), "\"in\"");
        assert_eq!(attr_name("1st"), "\"1st\"");
        assert_eq!(attr_name(""), "\"\"");
    }

    #[test]
    fn sets_and_lists_are_expanded_one_item_per_line() {
        let value = attrs(vec![
            ("networking.hostName", Nix::str("lb1")),
            ("list", Nix::strs(["a", "b"])),
            ("single", Nix::strs(["a"])),
            ("empty", Nix::List(vec![])),
            ("none", Nix::Attrs(vec![])),
            ("nested", attrs(vec![("port", Nix::Int(443)), ("on", Nix::Bool(true)), ("nothing", Nix::Null)])),
        ]);
        assert_eq!(
            value.render(),
            r#"{
  networking.hostName = "lb1";
  list = [
    "a"
    "b"
  ];
  single = [ "a" ];
  empty = [ ];
  none = { };
  nested = {
    port = 443;
    on = true;
    nothing = null;
  };
}"#
        );
    }

    #[test]
    fn a_list_holding_a_set_is_expanded() {
        let value = Nix::List(vec![attrs(vec![("address", Nix::str("10.0.0.1")), ("prefixLength", Nix::Int(24))])]);
        assert_eq!(value.render(), "[\n  {\n    address = \"10.0.0.1\";\n    prefixLength = 24;\n  }\n]");
    }

    #[test]
    fn negative_numbers_and_calls_keep_their_meaning_in_lists() {
        let value = Nix::List(vec![Nix::Int(-1), Nix::Int(2), Nix::Raw("lib.mkDefault 3".into())]);
        assert_eq!(value.render(), "[\n  (-1)\n  2\n  (lib.mkDefault 3)\n]");
    }

    #[test]
    fn paths_are_literals_when_they_can_be() {
        assert_eq!(Nix::relative_path("./haproxy.cfg").render(), "./haproxy.cfg");
        assert_eq!(Nix::relative_path("../../modules").render(), "../../modules");
        assert_eq!(Nix::relative_path("./my config").render(), r#"(./. + "/my config")"#);
        assert_eq!(Nix::relative_path("./${x}").render(), r#"(./. + "/\${x}")"#);
    }

    #[test]
    fn multi_line_strings_use_indented_strings_with_escapes() {
        let value = attrs(vec![("text", Nix::str("line ''one''\n  ${two}\n\nthree\n"))]);
        assert_eq!(value.render(), "{\n  text = ''\n    line '''one'''\n      ''${two}\n\n    three\n  '';\n}");
        let no_final_newline = attrs(vec![("text", Nix::str("a\nb"))]);
        assert_eq!(no_final_newline.render(), "{\n  text = ''\n    a\n    b'';\n}");
    }

    #[test]
    fn text_an_indented_string_would_change_is_double_quoted() {
        assert_eq!(Nix::str("\tx\ny").render(), r#""\tx\ny""#);
        assert_eq!(Nix::str("  x\n  y").render(), r#""  x\n  y""#);
        assert_eq!(Nix::str("x\ny'").render(), r#""x\ny'""#);
        assert_eq!(Nix::str("x\n   \ny").render(), r#""x\n   \ny""#);
    }

    #[test]
    fn selections_quote_names() {
        assert_eq!(Nix::select("pkgs", &["nixstack-demo-app"]).render(), "pkgs.nixstack-demo-app");
        assert_eq!(Nix::select("pkgs", &["my app"]).render(), r#"pkgs."my app""#);
    }

    /// Every printed value means the same to the real Nix parser: `nix-instantiate --eval`
    /// reads the text back to the value it was printed from.
    #[test]
    fn printed_strings_read_back_with_nix() {
        let samples = [
            "plain",
            "q\"uote",
            "back\\slash",
            "${interp}",
            "$${double}",
            "''quotes''",
            "multi\nline ${x} ''y''\n",
            "a\nb",
            "\ttab\nx",
            "  x\ny",
            "  x\n  y",
            "x\ny'",
            "x'\n",
            "$\n${a}\n''${b}\n",
            "x\n   \ny",
        ];
        let mut expr = String::from("[\n");
        for sample in samples {
            expr.push_str(&Nix::str(sample).render());
            expr.push('\n');
        }
        expr.push(']');
        let output = std::process::Command::new("nix-instantiate")
            .args(["--eval", "--strict", "--json", "-E", &expr])
            .env(
                "NIX_CONFIG",
                "experimental-features = nix-command\nsubstituters =\nbuild-users-group =\nsandbox = false",
            )
            .output()
            .expect("nix-instantiate is missing: run scripts/setup");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let read_back: Vec<String> = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(read_back, samples);
    }
}
