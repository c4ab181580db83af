//! Parses Nix text in-process with `rnix`, as strictly as `nix-instantiate --parse`:
//! syntax errors and attributes defined twice (which Nix rejects at parse time) are
//! reported with line and column.

use std::collections::BTreeMap;

use rnix::ast::{self, HasEntry};
use rnix::{ParseError, SyntaxKind};

use super::value::{attr_key, cast, offset_of, syntax_of, Key};
use super::{NixProblem, ProblemKind};

/// Parses one Nix file; the first syntax error or duplicate attribute is the error.
// The problem is returned by value like every other `NixProblem`; one per file is cheap.
#[allow(clippy::result_large_err)]
pub fn parse_nix(path: &str, text: &str) -> Result<rnix::Root, NixProblem> {
    let parse = rnix::Root::parse(text);
    if let Some(error) = parse.errors().first() {
        let (offset, message) = describe_parse_error(error, text.len());
        return Err(NixProblem::at(ProblemKind::Syntax, path, text, offset, message));
    }
    let root = parse.tree();
    for node in syntax_of(&root).descendants() {
        let entries = if let Some(set) = cast::<ast::AttrSet>(node.clone()) {
            definitions(&set)
        } else if let Some(let_in) = cast::<ast::LetIn>(node) {
            definitions(&let_in)
        } else {
            continue;
        };
        let mut duplicates = Vec::new();
        check_unique(entries, &[], &mut duplicates);
        // The first in the file, as Nix reports it.
        if let Some(duplicate) = duplicates.into_iter().min_by_key(|d| d.offset) {
            let first = super::Location::from_offset(text, duplicate.first_offset);
            let message =
                format!("attribute `{}` is already defined at {}:{}", duplicate.name, first.line, first.column);
            return Err(NixProblem::at(ProblemKind::Syntax, path, text, duplicate.offset, message));
        }
    }
    Ok(root)
}

/// The byte offset and a readable message for an rnix parse error.
fn describe_parse_error(error: &ParseError, len: usize) -> (usize, String) {
    match error {
        ParseError::Unexpected(range) => (usize::from(range.start()), "syntax error".to_string()),
        ParseError::UnexpectedExtra(range) => {
            (usize::from(range.start()), "unexpected text after the end of the expression".to_string())
        }
        ParseError::UnexpectedWanted(got, range, wanted) => (
            usize::from(range.start()),
            format!("syntax error, unexpected {}, expected {}", token_name(*got), token_list(wanted)),
        ),
        ParseError::UnexpectedDoubleBind(range) => {
            (usize::from(range.start()), "a pattern is bound twice (`@`)".to_string())
        }
        ParseError::UnexpectedEOF => (len, "unexpected end of file".to_string()),
        ParseError::UnexpectedEOFWanted(wanted) => {
            (len, format!("unexpected end of file, expected {}", token_list(wanted)))
        }
        ParseError::DuplicatedArgs(range, name) => {
            (usize::from(range.start()), format!("function argument `{name}` is duplicated"))
        }
        ParseError::RecursionLimitExceeded => (0, "expression nested too deeply".to_string()),
        other => (0, other.to_string()),
    }
}

fn token_list(kinds: &[SyntaxKind]) -> String {
    let names: Vec<String> = kinds.iter().map(|k| token_name(*k)).collect();
    names.join(" or ")
}

/// `TOKEN_SEMICOLON` → `` `;` ``.
fn token_name(kind: SyntaxKind) -> String {
    let symbol = match kind {
        SyntaxKind::TOKEN_SEMICOLON => ";",
        SyntaxKind::TOKEN_ASSIGN => "=",
        SyntaxKind::TOKEN_COLON => ":",
        SyntaxKind::TOKEN_COMMA => ",",
        SyntaxKind::TOKEN_DOT => ".",
        SyntaxKind::TOKEN_L_BRACE => "{",
        SyntaxKind::TOKEN_R_BRACE => "}",
        SyntaxKind::TOKEN_L_BRACK => "[",
        SyntaxKind::TOKEN_R_BRACK => "]",
        SyntaxKind::TOKEN_L_PAREN => "(",
        SyntaxKind::TOKEN_R_PAREN => ")",
        SyntaxKind::TOKEN_IN => "in",
        SyntaxKind::TOKEN_THEN => "then",
        SyntaxKind::TOKEN_ELSE => "else",
        SyntaxKind::TOKEN_INTERPOL_END => "}",
        SyntaxKind::TOKEN_STRING_END => "end of string",
        _ => {
            let name = format!("{kind:?}");
            let name = name.trim_start_matches("TOKEN_").trim_start_matches("NODE_");
            return name.to_lowercase().replace('_', " ");
        }
    };
    format!("`{symbol}`")
}

/// One definition in a set or `let`: the remaining attribute path and its value.
struct Definition {
    path: Vec<Key>,
    /// Byte offset of the first remaining path component.
    offset: usize,
    /// The value when it is a literal set (its definitions merge with others), else `None`.
    set: Option<Vec<Definition>>,
}

struct Duplicate {
    name: String,
    offset: usize,
    first_offset: usize,
}

fn definitions(set: &impl HasEntry) -> Vec<Definition> {
    let mut found = Vec::new();
    for entry in set.entries() {
        match entry {
            ast::Entry::AttrpathValue(path_value) => {
                let Some(attrpath) = path_value.attrpath() else {
                    continue;
                };
                let attrs: Vec<ast::Attr> = attrpath.attrs().collect();
                let Some(first) = attrs.first() else { continue };
                let set = match path_value.value() {
                    Some(ast::Expr::AttrSet(inner)) => Some(definitions(&inner)),
                    _ => None,
                };
                found.push(Definition { path: attrs.iter().map(attr_key).collect(), offset: offset_of(first), set });
            }
            ast::Entry::Inherit(inherit) => {
                for attr in inherit.attrs() {
                    found.push(Definition { path: vec![attr_key(&attr)], offset: offset_of(&attr), set: None });
                }
            }
        }
    }
    found
}

/// Nix merges the definitions of one name only when every one is a set (written literally
/// or implied by a dotted path); any other value defined twice is a parse error.
fn check_unique(definitions: Vec<Definition>, prefix: &[String], duplicates: &mut Vec<Duplicate>) {
    let mut groups: BTreeMap<String, Vec<Definition>> = BTreeMap::new();
    for definition in definitions {
        // Dynamic names are only known at evaluation time.
        if let Some(Key::Name(name)) = definition.path.first() {
            groups.entry(name.clone()).or_default().push(definition);
        }
    }
    for (name, mut group) in groups {
        let mut path = prefix.to_vec();
        path.push(name);
        group.sort_by_key(|d| d.offset);
        let is_leaf = |d: &Definition| d.path.len() == 1 && d.set.is_none();
        if group.len() > 1 && group.iter().any(is_leaf) {
            duplicates.push(Duplicate { name: path.join("."), offset: group[1].offset, first_offset: group[0].offset });
            continue;
        }
        let mut inner = Vec::new();
        for mut definition in group {
            if definition.path.len() > 1 {
                definition.path.remove(0);
                inner.push(definition);
            } else if let Some(set) = definition.set {
                inner.extend(set);
            }
        }
        check_unique(inner, &path, duplicates);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_errors_name_line_and_column() {
        let error = parse_nix("x.nix", "{\n  a = 1;\n  b = ;\n}\n").unwrap_err();
        assert_eq!((error.line, error.column), (3, 7), "{error}");
        assert_eq!(error.kind, ProblemKind::Syntax);
        assert!(error.to_string().starts_with("x.nix:3:7: "), "{error}");
    }

    #[test]
    fn unexpected_end_of_file_points_at_the_end() {
        let error = parse_nix("x.nix", "{ a = 1;\n").unwrap_err();
        assert_eq!(error.line, 2, "{error}");
    }

    #[test]
    fn duplicate_attributes_are_rejected_like_nix_does() {
        for text in ["{ a = 1; a = 2; }", "{ a.b = 1; a.b = 2; }", "{ inherit x; x.y = 1; }", "let a = 1; a = 2; in a"]
        {
            assert!(parse_nix("x.nix", text).is_err(), "{text} should be rejected");
        }
        let error = parse_nix("x.nix", "{\n  a.b = 1;\n  a.b.c = 2;\n}").unwrap_err();
        assert_eq!((error.line, error.column), (3, 3), "{error}");
        assert!(error.message.contains("`a.b`") && error.message.contains("2:3"), "{error}");
    }

    #[test]
    fn merged_sets_are_accepted_like_nix_does() {
        for text in [
            "{ a = { b = 1; }; a.c = 2; }",
            "{ a = { b = 1; }; a = { c = 1; }; }",
            "{ a = { b.c = 1; }; a.b.d = 2; }",
            "{ ${\"a\"} = 1; b = 2; }",
        ] {
            assert!(parse_nix("x.nix", text).is_ok(), "{text} should be accepted");
        }
    }
}
