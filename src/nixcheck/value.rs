//! Lowers a parsed Nix expression into the small value tree the option checker reads:
//! literals are kept, `a.b.c = v` becomes nested sets, the module-system wrappers
//! (`mkIf`, `mkMerge`, `mkDefault`, `mkForce`, ...) are looked through, and everything
//! else that only evaluation could judge becomes a reference, a call or an opaque value.

use rnix::ast::AstNode;
use rnix::ast::{self, AstToken, HasEntry, InterpolPart};
use rnix::SyntaxNode;

/// A lowered Nix value with the byte offset where it starts.
#[derive(Debug, Clone)]
pub(crate) struct Val {
    pub(crate) kind: ValKind,
    pub(crate) offset: usize,
}

#[derive(Debug, Clone)]
pub(crate) enum ValKind {
    /// `{ ... }`, `rec { ... }`; one binding per written path (not merged).
    Attrs(Vec<Binding>),
    List(Vec<Val>),
    /// A string; `literal` is `None` when it interpolates.
    Str {
        literal: Option<String>,
    },
    Int(i64),
    Float,
    Bool(bool),
    Null,
    /// A path literal (`./x`, `/etc/x`); its text as written.
    Path(String),
    /// A function; its lowered body.
    Lambda(Box<Val>),
    /// Values that each land on the same option: `mkMerge [ .. ]`, both branches of
    /// `if`, both sides of `//` and `++`.
    Each(Vec<Val>),
    /// An identifier or `a.b.c` selection (`config.x`, `pkgs.hello`, `lib.types.str`).
    Ref(String),
    /// A function call that is not a module-system wrapper; callee as written.
    Call {
        callee: String,
        args: Vec<Val>,
    },
    /// Any other expression (arithmetic, `builtins.*` results, ...): not judged.
    Opaque,
}

#[derive(Debug, Clone)]
pub(crate) struct Binding {
    pub(crate) key: Key,
    /// Byte offset of this key.
    pub(crate) offset: usize,
    pub(crate) value: Val,
}

/// An attribute name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Key {
    Name(String),
    /// `${expr}` or an interpolated string: unknown until evaluation.
    Dynamic,
}

/// Writes one path component the way NixOS option titles do: bare when it is an
/// identifier, quoted otherwise (`boot.kernel.sysctl."net.core.rmem_max"`).
pub(crate) fn quote_component(name: &str) -> String {
    let is_ident = !name.is_empty()
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '<' || c == '*')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '\'' | '<' | '>' | '*'));
    if is_ident {
        name.to_string()
    } else {
        format!("{name:?}")
    }
}

/// Joins path components into an option name.
/// List elements (`[0]`) attach to the list's name without a dot.
pub(crate) fn join_path(path: &[String]) -> String {
    let mut joined = String::new();
    for component in path {
        if component.starts_with('[') && component.ends_with(']') {
            joined.push_str(component);
            continue;
        }
        if !joined.is_empty() {
            joined.push('.');
        }
        joined.push_str(&quote_component(component));
    }
    joined
}

/// Module-system functions whose value is their last argument.
const PASS_THROUGH: &[&str] = &[
    "mkDefault",
    "mkForce",
    "mkOverride",
    "mkBefore",
    "mkAfter",
    "mkOrder",
    "mkOptionDefault",
    "mkVMOverride",
    "mkImageMediaOverride",
    "mkFixStrictness",
];

/// The syntax node of a typed node. (`rowan`'s `AstNode` trait, which defines `syntax()`,
/// is reachable only through `rnix::ast::AstNode`'s bound, not by name.)
pub(crate) fn syntax_of<N: AstNode>(node: &N) -> &SyntaxNode {
    node.syntax()
}

/// A typed node for an untyped one, if the kinds match.
pub(crate) fn cast<N: AstNode>(node: SyntaxNode) -> Option<N> {
    N::cast(node)
}

pub(crate) fn offset_of<N: AstNode>(node: &N) -> usize {
    usize::from(syntax_of(node).text_range().start())
}

/// The value of an expression; module-system wrappers are looked through.
pub(crate) fn lower(expr: &ast::Expr) -> Val {
    let offset = offset_of(expr);
    let kind = match expr {
        ast::Expr::Paren(paren) => return paren.expr().map_or(opaque(offset), |e| lower(&e)),
        ast::Expr::AttrSet(set) => ValKind::Attrs(lower_entries(set)),
        ast::Expr::List(list) => ValKind::List(list.items().map(|item| lower(&item)).collect()),
        ast::Expr::Str(string) => ValKind::Str { literal: literal_string(string) },
        ast::Expr::Literal(literal) => match literal.kind() {
            ast::LiteralKind::Integer(int) => int.value().map_or(ValKind::Opaque, ValKind::Int),
            ast::LiteralKind::Float(_) => ValKind::Float,
            ast::LiteralKind::Uri(uri) => ValKind::Str { literal: Some(uri.syntax().text().to_string()) },
        },
        ast::Expr::Ident(ident) => match ident_text(ident).as_str() {
            "true" => ValKind::Bool(true),
            "false" => ValKind::Bool(false),
            "null" => ValKind::Null,
            name => ValKind::Ref(name.to_string()),
        },
        ast::Expr::Select(select) => match dotted_name(expr) {
            Some(name) if select.default_expr().is_none() => ValKind::Ref(name),
            _ => ValKind::Opaque,
        },
        ast::Expr::PathAbs(_) | ast::Expr::PathRel(_) | ast::Expr::PathHome(_) => {
            ValKind::Path(syntax_of(expr).text().to_string())
        }
        ast::Expr::PathSearch(_) => ValKind::Opaque,
        ast::Expr::Lambda(lambda) => {
            ValKind::Lambda(Box::new(lambda.body().map_or(opaque(offset), |body| lower(&body))))
        }
        ast::Expr::LetIn(let_in) => return let_in.body().map_or(opaque(offset), |b| lower(&b)),
        ast::Expr::With(with) => return with.body().map_or(opaque(offset), |b| lower(&b)),
        ast::Expr::Assert(assert) => return assert.body().map_or(opaque(offset), |b| lower(&b)),
        ast::Expr::IfElse(if_else) => {
            ValKind::Each([if_else.body(), if_else.else_body()].iter().flatten().map(lower).collect())
        }
        ast::Expr::BinOp(op) => match op.operator() {
            Some(ast::BinOpKind::Update | ast::BinOpKind::Concat) => {
                ValKind::Each([op.lhs(), op.rhs()].iter().flatten().map(lower).collect())
            }
            Some(ast::BinOpKind::Add) => {
                // `"a" + x` and `./dir + "/file"` keep the kind of their left side.
                match op.lhs().map(|lhs| lower(&lhs).kind) {
                    Some(ValKind::Str { .. }) => ValKind::Str { literal: None },
                    _ => ValKind::Opaque,
                }
            }
            _ => ValKind::Opaque,
        },
        ast::Expr::UnaryOp(op) => match (op.operator(), op.expr().map(|e| lower(&e).kind)) {
            (Some(ast::UnaryOpKind::Negate), Some(ValKind::Int(n))) => ValKind::Int(-n),
            _ => ValKind::Opaque,
        },
        ast::Expr::Apply(_) => return lower_call(expr),
        _ => ValKind::Opaque,
    };
    Val { kind, offset }
}

fn opaque(offset: usize) -> Val {
    Val { kind: ValKind::Opaque, offset }
}

/// `f a b` → callee `f` with arguments, looking through module-system wrappers.
fn lower_call(expr: &ast::Expr) -> Val {
    let offset = offset_of(expr);
    let mut args = Vec::new();
    let mut head = expr.clone();
    while let ast::Expr::Apply(apply) = &head {
        let (Some(lambda), Some(argument)) = (apply.lambda(), apply.argument()) else {
            return opaque(offset);
        };
        args.push(argument);
        head = lambda;
    }
    args.reverse();
    let callee = dotted_name(&head).unwrap_or_default();
    let function = callee.rsplit('.').next().unwrap_or_default();
    let from_lib = callee == function || callee.starts_with("lib.");
    if from_lib && PASS_THROUGH.contains(&function) {
        let wanted = if function == "mkOverride" || function == "mkOrder" { 2 } else { 1 };
        if args.len() == wanted {
            return lower(args.last().expect("one argument"));
        }
    }
    if from_lib && function == "mkIf" && args.len() == 2 {
        return lower(&args[1]);
    }
    if from_lib && function == "mkMerge" && args.len() == 1 {
        if let ast::Expr::List(list) = strip_parens(&args[0]) {
            return Val { kind: ValKind::Each(list.items().map(|i| lower(&i)).collect()), offset };
        }
        return opaque(offset);
    }
    if callee.is_empty() {
        return opaque(offset);
    }
    Val { kind: ValKind::Call { callee, args: args.iter().map(lower).collect() }, offset }
}

fn strip_parens(expr: &ast::Expr) -> ast::Expr {
    match expr {
        ast::Expr::Paren(paren) => paren.expr().map_or(expr.clone(), |e| strip_parens(&e)),
        _ => expr.clone(),
    }
}

/// `a.b.c` as written, if the expression is an identifier or a plain selection.
fn dotted_name(expr: &ast::Expr) -> Option<String> {
    match expr {
        ast::Expr::Ident(ident) => Some(ident_text(ident)),
        ast::Expr::Paren(paren) => dotted_name(&paren.expr()?),
        ast::Expr::Select(select) => {
            let mut name = dotted_name(&select.expr()?)?;
            for attr in select.attrpath()?.attrs() {
                let Key::Name(component) = attr_key(&attr) else {
                    return None;
                };
                name.push('.');
                name.push_str(&component);
            }
            Some(name)
        }
        _ => None,
    }
}

fn ident_text(ident: &ast::Ident) -> String {
    syntax_of(ident).text().to_string()
}

/// The text of a string without interpolation.
fn literal_string(string: &ast::Str) -> Option<String> {
    let mut text = String::new();
    for part in string.normalized_parts() {
        match part {
            InterpolPart::Literal(literal) => text.push_str(&literal),
            InterpolPart::Interpolation(_) => return None,
        }
    }
    Some(text)
}

pub(crate) fn attr_key(attr: &ast::Attr) -> Key {
    match attr {
        ast::Attr::Ident(ident) => Key::Name(ident_text(ident)),
        ast::Attr::Str(string) => literal_string(string).map_or(Key::Dynamic, Key::Name),
        ast::Attr::Dynamic(dynamic) => match dynamic.expr() {
            Some(ast::Expr::Str(string)) => literal_string(&string).map_or(Key::Dynamic, Key::Name),
            _ => Key::Dynamic,
        },
    }
}

/// The bindings of a set: `a.b = v` becomes `a = { b = v; }`; `inherit x;` binds `x` to
/// a reference.
fn lower_entries(set: &impl HasEntry) -> Vec<Binding> {
    let mut bindings = Vec::new();
    for entry in set.entries() {
        match entry {
            ast::Entry::AttrpathValue(path_value) => {
                let Some(attrpath) = path_value.attrpath() else {
                    continue;
                };
                let attrs: Vec<ast::Attr> = attrpath.attrs().collect();
                let Some(value) = path_value.value() else {
                    continue;
                };
                let mut val = lower(&value);
                for attr in attrs.iter().skip(1).rev() {
                    let offset = offset_of(attr);
                    val =
                        Val { kind: ValKind::Attrs(vec![Binding { key: attr_key(attr), offset, value: val }]), offset };
                }
                if let Some(first) = attrs.first() {
                    bindings.push(Binding { key: attr_key(first), offset: offset_of(first), value: val });
                }
            }
            ast::Entry::Inherit(inherit) => {
                let from = inherit.from().and_then(|from| from.expr()).and_then(|e| dotted_name(&e));
                for attr in inherit.attrs() {
                    let key = attr_key(&attr);
                    let name = match (&from, &key) {
                        (Some(from), Key::Name(name)) => format!("{from}.{name}"),
                        (None, Key::Name(name)) => name.clone(),
                        _ => String::new(),
                    };
                    let offset = offset_of(&attr);
                    bindings.push(Binding { key, offset, value: Val { kind: ValKind::Ref(name), offset } });
                }
            }
        }
    }
    bindings
}

/// The body of a module file: its function arguments, `let` and `with` are peeled off.
pub(crate) fn module_body(expr: &ast::Expr) -> Val {
    match expr {
        ast::Expr::Lambda(lambda) => lambda.body().map_or(opaque(offset_of(expr)), |b| module_body(&b)),
        ast::Expr::LetIn(let_in) => let_in.body().map_or(opaque(offset_of(expr)), |b| module_body(&b)),
        ast::Expr::With(with) => with.body().map_or(opaque(offset_of(expr)), |b| module_body(&b)),
        ast::Expr::Paren(paren) => paren.expr().map_or(opaque(offset_of(expr)), |b| module_body(&b)),
        _ => lower(expr),
    }
}

/// A short description of a value for messages: `"yes"`, `300`, `a list`.
pub(crate) fn describe(val: &Val) -> String {
    match &val.kind {
        ValKind::Attrs(_) => "an attribute set".to_string(),
        ValKind::List(_) => "a list".to_string(),
        ValKind::Str { literal: Some(s) } if s.len() <= 40 && !s.contains('\n') => {
            format!("the string {s:?}")
        }
        ValKind::Str { .. } => "a string".to_string(),
        ValKind::Int(n) => format!("the integer {n}"),
        ValKind::Float => "a float".to_string(),
        ValKind::Bool(b) => format!("the boolean {b}"),
        ValKind::Null => "null".to_string(),
        ValKind::Path(p) => format!("the path {p}"),
        ValKind::Lambda(_) => "a function".to_string(),
        ValKind::Each(_) | ValKind::Ref(_) | ValKind::Call { .. } | ValKind::Opaque => "a value".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lower_text(text: &str) -> Val {
        let root = rnix::Root::parse(text).ok().expect("parses");
        lower(&root.expr().expect("an expression"))
    }

    #[test]
    fn dotted_paths_become_nested_sets() {
        let val = lower_text(r#"{ a.b."c.d" = 1; }"#);
        let ValKind::Attrs(outer) = val.kind else { panic!() };
        assert_eq!(outer[0].key, Key::Name("a".into()));
        let ValKind::Attrs(inner) = &outer[0].value.kind else { panic!() };
        assert_eq!(inner[0].key, Key::Name("b".into()));
        let ValKind::Attrs(innermost) = &inner[0].value.kind else { panic!() };
        assert_eq!(innermost[0].key, Key::Name("c.d".into()));
        assert!(matches!(innermost[0].value.kind, ValKind::Int(1)));
    }

    #[test]
    fn module_system_wrappers_are_looked_through() {
        assert!(matches!(lower_text("lib.mkDefault 3").kind, ValKind::Int(3)));
        assert!(matches!(lower_text("lib.mkOverride 50 true").kind, ValKind::Bool(true)));
        assert!(matches!(lower_text("mkIf cfg.enable { }").kind, ValKind::Attrs(_)));
        let ValKind::Each(items) = lower_text("lib.mkMerge [ { } (lib.mkForce \"x\") ]").kind else { panic!() };
        assert!(matches!(items[1].kind, ValKind::Str { literal: Some(ref s) } if s == "x"));
        assert!(matches!(lower_text("-5").kind, ValKind::Int(-5)));
    }

    #[test]
    fn non_literals_are_references_or_calls() {
        assert!(
            matches!(lower_text("config.networking.hostName").kind, ValKind::Ref(ref r) if r == "config.networking.hostName")
        );
        assert!(
            matches!(lower_text("builtins.readFile ./x").kind, ValKind::Call { ref callee, .. } if callee == "builtins.readFile")
        );
        assert!(matches!(lower_text("\"a${b}\"").kind, ValKind::Str { literal: None }));
    }
}
