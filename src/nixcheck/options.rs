//! The option database: the real NixOS options from `data/nixos-options.json` plus the
//! `nixstack.*` options our modules declare, indexed as a tree of path components where
//! `<name>` stands for any attribute name and `*` for any list element.

use std::collections::BTreeMap;

use anyhow::Context as _;

use super::types::{EnumMember, NixType, StrType};
use super::value::{join_path, module_body, Key, Val, ValKind};
use super::{parse_nix, NixProblem, ProblemKind};

/// The NixOS option data, embedded at compile time.
const NIXOS_OPTIONS_JSON: &str = include_str!("../../data/nixos-options.json");

/// Every option path nixstack may set, with its type.
#[derive(Debug, Clone)]
pub struct OptionDb {
    options: Vec<OptionDecl>,
    root: Node,
    /// Option families the data covers completely; a path outside them cannot be judged.
    covered: Vec<Vec<String>>,
}

/// One declared option.
#[derive(Debug, Clone)]
pub(crate) struct OptionDecl {
    /// Path components; `<name>` for attribute names, `*` for list elements.
    pub(crate) loc: Vec<String>,
    pub(crate) ty: NixType,
    /// The type as NixOS prints it.
    pub(crate) type_description: String,
    /// The module file that declares it; `None` for NixOS options.
    pub(crate) declared_in: Option<String>,
}

/// A node of the option tree.
#[derive(Debug, Clone, Default)]
pub(crate) struct Node {
    pub(crate) children: BTreeMap<String, Node>,
    /// Index into `OptionDb::options` when an option is declared at this path.
    pub(crate) option: Option<usize>,
}

/// The wildcard for attribute names in `loc` (`<name>`, `<config-name>`, ...).
pub(crate) const ANY_NAME: &str = "<name>";
/// The wildcard for list elements in `loc`.
pub(crate) const ANY_ELEMENT: &str = "*";
/// Our own option namespace: always covered, declared by `modules/*.nix`.
pub const NIXSTACK_NAMESPACE: &str = "nixstack";

pub(crate) static EMPTY_NODE: Node = Node { children: BTreeMap::new(), option: None };

impl Node {
    /// The child for an attribute name: an exact match first, then `<name>`.
    pub(crate) fn child(&self, key: &Key) -> Option<&Node> {
        match key {
            Key::Name(name) => self.children.get(name).or_else(|| self.children.get(ANY_NAME)),
            Key::Dynamic => self.children.get(ANY_NAME),
        }
    }

    pub(crate) fn element(&self) -> &Node {
        self.children.get(ANY_ELEMENT).unwrap_or(&EMPTY_NODE)
    }

    /// Named children, for hints (wildcards left out).
    pub(crate) fn named_children(&self) -> impl Iterator<Item = &str> {
        self.children.keys().map(String::as_str).filter(|k| *k != ANY_NAME && *k != ANY_ELEMENT)
    }
}

impl OptionDb {
    /// The NixOS options from `data/nixos-options.json` (embedded at compile time).
    pub fn nixos() -> OptionDb {
        OptionDb::from_json(NIXOS_OPTIONS_JSON).expect("data/nixos-options.json is valid option data")
    }

    /// Reads option data in the format of `data/nixos-options.json`:
    /// `{"prefixes": [...], "options": [{"loc": [...], "type": "...", ...}]}`.
    pub fn from_json(json: &str) -> anyhow::Result<OptionDb> {
        let data: serde_json::Value = serde_json::from_str(json).context("option data is not JSON")?;
        let mut db = OptionDb { options: Vec::new(), root: Node::default(), covered: Vec::new() };
        for prefix in data["prefixes"].as_array().context("option data has no `prefixes` list")? {
            let prefix = prefix.as_str().context("a prefix is not a string")?;
            db.covered.push(prefix.trim_end_matches('.').split('.').map(str::to_string).collect());
        }
        db.covered.push(vec![NIXSTACK_NAMESPACE.to_string()]);
        for option in data["options"].as_array().context("option data has no `options` list")? {
            let loc: Vec<String> = option["loc"]
                .as_array()
                .context("an option has no `loc`")?
                .iter()
                .map(|c| c.as_str().map(str::to_string).context("a `loc` component is not a string"))
                .collect::<anyhow::Result<_>>()?;
            let type_description = option["type"].as_str().unwrap_or("unspecified value").to_string();
            let ty = NixType::from_description(&type_description);
            db.insert(OptionDecl { loc, ty, type_description, declared_in: None })
                .map_err(|existing| anyhow::anyhow!("option {} is listed twice", join_path(&existing.loc)))?;
        }
        db.add_missing_settings_options();
        Ok(db)
    }

    /// The data lists the declared keys of some RFC 42 `settings` options without the
    /// option itself (`nix.settings.max-jobs` but no `nix.settings`). Such an option is a
    /// freeform submodule: the declared keys keep their types, any other key is accepted.
    fn add_missing_settings_options(&mut self) {
        fn find(node: &Node, path: &mut Vec<String>, found: &mut Vec<Vec<String>>) {
            if node.option.is_some() {
                return;
            }
            if path.last().map(String::as_str) == Some("settings") && !node.children.is_empty() {
                found.push(path.clone());
                return;
            }
            for (name, child) in &node.children {
                path.push(name.clone());
                find(child, path, found);
                path.pop();
            }
        }
        let mut found = Vec::new();
        find(&self.root, &mut Vec::new(), &mut found);
        for loc in found {
            let ty = NixType::Freeform(Box::new(NixType::Anything));
            let type_description = "open submodule of attribute set of (settings value)".to_string();
            // The path has no option yet (checked by `find`), so this cannot collide.
            let _ = self.insert(OptionDecl { loc, ty, type_description, declared_in: None });
        }
    }

    /// Adds the `nixstack.*` options declared by our modules (nixpkgs style:
    /// `options.nixstack.<role>.<name> = lib.mkOption { type = ...; }`, `mkEnableOption`,
    /// `mkPackageOption`, nested sets, and submodules). Problems are syntax errors,
    /// options declared twice, and declarations outside `nixstack.*`.
    pub fn with_modules<P: AsRef<str>, T: AsRef<str>>(&mut self, files: &[(P, T)]) -> Result<(), Vec<NixProblem>> {
        let mut problems = Vec::new();
        for (path, text) in files {
            let (path, text) = (path.as_ref(), text.as_ref());
            let root = match parse_nix(path, text) {
                Ok(root) => root,
                Err(problem) => {
                    problems.push(problem);
                    continue;
                }
            };
            let Some(expr) = root.expr() else { continue };
            let body = module_body(&expr);
            let ValKind::Attrs(bindings) = &body.kind else {
                continue;
            };
            let mut collector = Collector { db: self, file: path, text, problems: &mut problems };
            for binding in bindings {
                if binding.key == Key::Name("options".to_string()) {
                    collector.declarations(&binding.value, &mut Vec::new());
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// Adds one option; the existing declaration if the path is taken.
    fn insert(&mut self, decl: OptionDecl) -> Result<(), &OptionDecl> {
        let mut node = &mut self.root;
        for component in &decl.loc {
            let key = if component.starts_with('<') && component.ends_with('>') {
                ANY_NAME.to_string()
            } else {
                component.clone()
            };
            node = node.children.entry(key).or_default();
        }
        if let Some(existing) = node.option {
            return Err(&self.options[existing]);
        }
        node.option = Some(self.options.len());
        self.options.push(decl);
        Ok(())
    }

    pub(crate) fn root(&self) -> &Node {
        &self.root
    }

    pub(crate) fn option(&self, index: usize) -> &OptionDecl {
        &self.options[index]
    }

    /// Whether the data covers this path's option family, so a missing option is an error
    /// rather than unknown.
    pub(crate) fn covers(&self, path: &[String]) -> bool {
        self.covered.iter().any(|prefix| path.len() >= prefix.len() && path[..prefix.len()] == prefix[..])
    }

    /// The number of options known, NixOS and ours.
    pub fn len(&self) -> usize {
        self.options.len()
    }

    /// Whether no option is known.
    pub fn is_empty(&self) -> bool {
        self.options.is_empty()
    }

    /// The type of the option at `path` (dotted, `<name>`/`*` wildcards as in the data),
    /// as NixOS prints it; `None` if no option is declared there.
    pub fn type_of(&self, path: &str) -> Option<&str> {
        let mut node = &self.root;
        for component in path.split('.') {
            node = node.children.get(component)?;
        }
        node.option.map(|i| self.options[i].type_description.as_str())
    }
}

/// Walks the `options` of one module file.
struct Collector<'a> {
    db: &'a mut OptionDb,
    file: &'a str,
    text: &'a str,
    problems: &'a mut Vec<NixProblem>,
}

impl Collector<'_> {
    fn problem(&mut self, offset: usize, path: &[String], message: String) {
        let mut problem = NixProblem::at(ProblemKind::Declaration, self.file, self.text, offset, message);
        problem.path = Some(join_path(path));
        self.problems.push(problem);
    }

    /// Declarations below `path` in an `options` value.
    fn declarations(&mut self, val: &Val, path: &mut Vec<String>) {
        match &val.kind {
            ValKind::Attrs(bindings) => {
                for binding in bindings {
                    match &binding.key {
                        Key::Name(name) => {
                            path.push(name.clone());
                            self.declarations(&binding.value, path);
                            path.pop();
                        }
                        Key::Dynamic => self.problem(
                            binding.offset,
                            path,
                            "an option name must be written literally, not computed".to_string(),
                        ),
                    }
                }
            }
            ValKind::Each(items) => {
                for item in items {
                    self.declarations(item, path);
                }
            }
            ValKind::Call { callee, args } => {
                let function = callee.rsplit('.').next().unwrap_or_default();
                let ty = match function {
                    "mkOption" => match args.first().map(|a| &a.kind) {
                        Some(ValKind::Attrs(fields)) => fields
                            .iter()
                            .find(|f| f.key == Key::Name("type".to_string()))
                            .map_or(NixType::Anything, |f| self.type_of(&f.value, path)),
                        _ => NixType::Anything,
                    },
                    "mkEnableOption" => NixType::Bool,
                    "mkPackageOption" => NixType::Package,
                    _ => NixType::Anything,
                };
                self.declare(val.offset, path, ty);
            }
            // A declaration we cannot read (a let-bound option, a function result): the
            // path exists, its values are not judged.
            _ => self.declare(val.offset, path, NixType::Anything),
        }
    }

    fn declare(&mut self, offset: usize, path: &[String], ty: NixType) {
        if path.first().map(String::as_str) != Some(NIXSTACK_NAMESPACE) {
            let message = format!(
                "option declared outside the `{NIXSTACK_NAMESPACE}` namespace; our modules only declare `{NIXSTACK_NAMESPACE}.*` options"
            );
            self.problem(offset, path, message);
            return;
        }
        let decl = OptionDecl {
            loc: path.to_vec(),
            type_description: ty.to_string(),
            ty,
            declared_in: Some(self.file.to_string()),
        };
        if let Err(existing) = self.db.insert(decl) {
            let message = format!(
                "option is declared twice; it is already declared in {}",
                existing.declared_in.as_deref().unwrap_or("NixOS")
            );
            self.problem(offset, path, message);
        }
    }

    /// The type a `lib.types` expression denotes; submodule options found inside are
    /// declared below `path` (`<name>` for `attrsOf`, `*` for `listOf`).
    fn type_of(&mut self, val: &Val, path: &mut Vec<String>) -> NixType {
        match &val.kind {
            ValKind::Ref(name) => named_type(strip_types_prefix(name)),
            ValKind::Call { callee, args } => self.type_constructor(strip_types_prefix(callee), args, path),
            _ => NixType::Anything,
        }
    }

    fn type_constructor(&mut self, function: &str, args: &[Val], path: &mut Vec<String>) -> NixType {
        match (function, args) {
            ("listOf", [elem]) => {
                NixType::ListOf { elem: Box::new(self.type_below(ANY_ELEMENT, elem, path)), non_empty: false }
            }
            ("nonEmptyListOf", [elem]) => {
                NixType::ListOf { elem: Box::new(self.type_below(ANY_ELEMENT, elem, path)), non_empty: true }
            }
            ("attrsOf" | "lazyAttrsOf", [elem]) => NixType::AttrsOf(Box::new(self.type_below(ANY_NAME, elem, path))),
            ("nullOr", [inner]) => NixType::null_or(self.type_of(inner, path)),
            ("uniq" | "unique", [.., inner]) => self.type_of(inner, path),
            ("either", [a, b]) => NixType::Either(vec![self.type_of(a, path), self.type_of(b, path)]),
            ("oneOf", [list]) => match &list.kind {
                ValKind::List(items) => NixType::Either(items.iter().map(|i| self.type_of(i, path)).collect()),
                _ => NixType::Anything,
            },
            ("coercedTo", [from, _, to]) => NixType::Either(vec![self.type_of(from, path), self.type_of(to, path)]),
            ("enum", [list]) => match &list.kind {
                ValKind::List(items) => {
                    let members: Option<Vec<EnumMember>> = items
                        .iter()
                        .map(|item| match &item.kind {
                            ValKind::Str { literal: Some(s) } => Some(EnumMember::Str(s.clone())),
                            ValKind::Int(n) => Some(EnumMember::Int(*n)),
                            _ => None,
                        })
                        .collect();
                    members.map_or(NixType::Anything, NixType::Enum)
                }
                _ => NixType::Anything,
            },
            ("ints.between", [min, max]) => match (&min.kind, &max.kind) {
                (ValKind::Int(min), ValKind::Int(max)) => NixType::Int { min: Some(*min), max: Some(*max) },
                _ => NixType::Int { min: None, max: None },
            },
            ("strMatching", [pattern]) => NixType::Str(StrType {
                pattern: match &pattern.kind {
                    ValKind::Str { literal: Some(p) } => Some(format!("{p:?}")),
                    _ => Some("(computed)".to_string()),
                },
                ..StrType::default()
            }),
            ("separatedString", [separator]) => NixType::Str(StrType {
                concatenated_with: match &separator.kind {
                    ValKind::Str { literal: Some(s) } => Some(s.clone()),
                    _ => None,
                },
                ..StrType::default()
            }),
            ("submodule", [module]) => {
                self.submodule_options(module, path);
                NixType::Submodule
            }
            ("submoduleWith", [spec]) => {
                if let ValKind::Attrs(fields) = &spec.kind {
                    for field in fields {
                        if field.key == Key::Name("modules".to_string()) {
                            if let ValKind::List(modules) = &field.value.kind {
                                for module in modules {
                                    self.submodule_options(module, path);
                                }
                            }
                        }
                    }
                }
                NixType::Submodule
            }
            ("functionTo", _) => NixType::Function,
            _ => NixType::Anything,
        }
    }

    fn type_below(&mut self, component: &str, arg: &Val, path: &mut Vec<String>) -> NixType {
        path.push(component.to_string());
        let ty = self.type_of(arg, path);
        path.pop();
        ty
    }

    /// Declares the `options` of a submodule (a set or `{ name, ... }: { options = ...; }`).
    fn submodule_options(&mut self, module: &Val, path: &mut Vec<String>) {
        match &module.kind {
            ValKind::Lambda(body) => self.submodule_options(body, path),
            ValKind::Attrs(bindings) => {
                let options = bindings.iter().filter(|b| b.key == Key::Name("options".to_string()));
                for binding in options {
                    self.declarations(&binding.value, path);
                }
            }
            _ => {}
        }
    }
}

/// `lib.types.str`, `types.str`, `str` → `str`.
fn strip_types_prefix(name: &str) -> &str {
    name.strip_prefix("lib.types.")
        .or_else(|| name.strip_prefix("types."))
        .or_else(|| name.strip_prefix("lib."))
        .unwrap_or(name)
}

/// The types `lib.types` names without arguments.
fn named_type(name: &str) -> NixType {
    let string = |s: StrType| NixType::Str(s);
    let int = |min: i64, max: i64| NixType::Int { min: Some(min), max: Some(max) };
    match name {
        "bool" => NixType::Bool,
        "int" | "ints.signed" => NixType::Int { min: None, max: None },
        "ints.unsigned" => NixType::Int { min: Some(0), max: None },
        "ints.positive" => NixType::Int { min: Some(1), max: None },
        "port" | "ints.u16" => NixType::port(),
        "ints.u8" => int(0, 255),
        "ints.u32" => int(0, 4_294_967_295),
        "ints.s8" => int(-128, 127),
        "ints.s16" => int(-32768, 32767),
        "ints.s32" => int(-2_147_483_648, 2_147_483_647),
        "float" | "number" | "numbers.nonnegative" => NixType::Float,
        "str" | "string" => NixType::string(),
        "lines" => string(StrType { concatenated_with: Some("\n".into()), ..StrType::default() }),
        "commas" => string(StrType { concatenated_with: Some(",".into()), ..StrType::default() }),
        "envVar" => string(StrType { concatenated_with: Some(":".into()), ..StrType::default() }),
        "singleLineStr" => string(StrType { single_line: true, ..StrType::default() }),
        "nonEmptyStr" => string(StrType { non_empty: true, ..StrType::default() }),
        "path" | "pathInStore" | "externalPath" => NixType::Path,
        "package" => NixType::Package,
        "attrs" => NixType::Attrs,
        "submodule" => NixType::Submodule,
        _ => NixType::Anything,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nixos_data_loads_with_wildcards() {
        let db = OptionDb::nixos();
        assert!(db.len() > 700);
        assert_eq!(db.type_of("services.haproxy.enable"), Some("boolean"));
        assert_eq!(
            db.type_of("services.keepalived.vrrpInstances.<name>.virtualRouterId"),
            Some("integer between 1 and 255 (both inclusive)")
        );
        assert!(db.covers(&["services".into(), "haproxy".into(), "x".into()]));
        assert!(!db.covers(&["services".into(), "redis".into()]));
        assert!(db.covers(&["nixstack".into(), "anything".into()]));
        // Listed only by its declared keys in the data; an RFC 42 freeform option.
        assert_eq!(db.type_of("nix.settings"), Some("open submodule of attribute set of (settings value)"));
        assert_eq!(db.type_of("nix.settings.max-jobs"), Some("signed integer or value \"auto\" (singular enum)"));
    }

    #[test]
    fn module_declarations_are_collected_with_their_types() {
        let module = r#"
          { config, lib, pkgs, ... }:
          let
            cfg = config.nixstack.lb;
            inherit (lib) types;
          in
          {
            options.nixstack.lb = {
              enable = lib.mkEnableOption "the load balancer";
              vip = lib.mkOption { type = types.str; description = "VIP"; };
              port = lib.mkOption { type = lib.types.port; default = 443; };
              mode = lib.mkOption { type = types.enum [ "http" "tcp" ]; };
              weights = lib.mkOption { type = types.attrsOf (types.ints.between 1 256); };
              backends = lib.mkOption {
                type = types.listOf (types.submodule {
                  options.address = lib.mkOption { type = types.str; };
                  options.port = lib.mkOption { type = types.nullOr types.port; };
                });
              };
            };
            options.nixstack.web.package = lib.mkPackageOption pkgs "nginx" { };
            config = lib.mkIf cfg.enable { };
          }
        "#;
        let mut db = OptionDb::nixos();
        db.with_modules(&[("modules/lb.nix", module)]).unwrap();
        assert_eq!(db.type_of("nixstack.lb.enable"), Some("boolean"));
        assert_eq!(db.type_of("nixstack.lb.vip"), Some("string"));
        assert_eq!(
            db.type_of("nixstack.lb.port"),
            Some("16 bit unsigned integer; between 0 and 65535 (both inclusive)")
        );
        assert_eq!(db.type_of("nixstack.lb.mode"), Some(r#"one of "http", "tcp""#));
        assert_eq!(
            db.type_of("nixstack.lb.weights"),
            Some("attribute set of (integer between 1 and 256 (both inclusive))")
        );
        assert_eq!(db.type_of("nixstack.lb.backends"), Some("list of (submodule)"));
        assert_eq!(
            db.type_of("nixstack.lb.backends.*.port"),
            Some("null or 16 bit unsigned integer; between 0 and 65535 (both inclusive)")
        );
        assert_eq!(db.type_of("nixstack.web.package"), Some("package"));
    }

    #[test]
    fn declaring_an_option_twice_or_outside_our_namespace_is_a_problem() {
        let first = ("modules/a.nix", "{ lib, ... }: { options.nixstack.a.enable = lib.mkEnableOption \"a\"; }");
        let second = ("modules/b.nix", "{ lib, ... }: {\n  options.nixstack.a.enable = lib.mkEnableOption \"a\";\n  options.services.foo = lib.mkOption { };\n}");
        let mut db = OptionDb::nixos();
        let problems = db.with_modules(&[first, second]).unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].message.contains("declared twice") && problems[0].message.contains("modules/a.nix"));
        assert_eq!((problems[0].file.as_str(), problems[0].line), ("modules/b.nix", 2));
        assert!(problems[1].message.contains("outside"));
    }
}
