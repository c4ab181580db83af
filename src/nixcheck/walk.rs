//! Walks the config a module sets and judges every option path and literal value
//! against the option database.

use std::collections::BTreeSet;

use super::options::{Node, OptionDb, EMPTY_NODE};
use super::types::{EnumMember, NixType, StrType};
use super::value::{describe, join_path, Binding, Key, Val, ValKind};
use super::{NixProblem, ProblemKind};

/// Top-level attributes of a module that are not config.
const MODULE_STRUCTURE: &[&str] = &["imports", "meta", "disabledModules", "_file", "key", "_class"];

pub(crate) struct Checker<'a> {
    pub(crate) db: &'a OptionDb,
    pub(crate) file: &'a str,
    pub(crate) text: &'a str,
    pub(crate) problems: Vec<NixProblem>,
    pub(crate) uncovered: BTreeSet<String>,
}

impl<'a> Checker<'a> {
    fn problem(
        &mut self,
        kind: ProblemKind,
        offset: usize,
        path: &[String],
        message: String,
        expected: Option<String>,
        hint: Option<String>,
    ) {
        let mut problem = NixProblem::at(kind, self.file, self.text, offset, message);
        problem.path = (!path.is_empty()).then(|| join_path(path));
        problem.expected = expected;
        problem.hint = hint;
        self.problems.push(problem);
    }

    /// `val`, set at `path`, is not a value of the type printed as `expected`.
    fn type_mismatch(&mut self, expected: &str, path: &[String], val: &Val, hint: Option<String>) {
        self.problem(
            ProblemKind::TypeMismatch,
            val.offset,
            path,
            format!("`{}` is set to {}, which is not a value of its type", join_path(path), describe(val)),
            Some(expected.to_string()),
            hint,
        );
    }

    /// Checks the config set by a module body (the module's arguments and `let` already
    /// peeled off).
    pub(crate) fn module(&mut self, body: &Val) {
        let ValKind::Attrs(bindings) = &body.kind else {
            self.problem(
                ProblemKind::NotAModule,
                body.offset,
                &[],
                "not a NixOS module: expected an attribute set, optionally behind `{ config, lib, ... }:`".to_string(),
                None,
                None,
            );
            return;
        };
        let is_name = |b: &Binding, name: &str| b.key == Key::Name(name.to_string());
        let structured = bindings.iter().any(|b| is_name(b, "config") || is_name(b, "options"));
        let root = self.db.root();
        for binding in bindings {
            let Key::Name(name) = &binding.key else {
                continue;
            };
            if MODULE_STRUCTURE.contains(&name.as_str()) {
                continue;
            }
            if !structured {
                self.binding(root, &mut Vec::new(), binding);
            } else if name == "config" {
                self.walk(root, &mut Vec::new(), &binding.value);
            } else if name != "options" {
                self.problem(
                    ProblemKind::NotAModule,
                    binding.offset,
                    std::slice::from_ref(name),
                    format!("`{name}` is set beside `config`/`options`; NixOS rejects such a module"),
                    None,
                    Some(format!("move it under `config`: `config.{name} = ...;`")),
                );
            }
        }
    }

    /// A value at `path` where no option is declared at `path` itself.
    fn walk(&mut self, node: &'a Node, path: &mut Vec<String>, val: &Val) {
        if let Some(index) = node.option {
            let option = self.db.option(index);
            self.value(&option.ty, &option.type_description, node, path, val);
            return;
        }
        match &val.kind {
            ValKind::Each(items) => items.iter().for_each(|item| self.walk(node, path, item)),
            ValKind::Attrs(bindings) => bindings.iter().for_each(|b| self.binding(node, path, b)),
            ValKind::Ref(_) | ValKind::Call { .. } | ValKind::Opaque => {}
            _ if path.is_empty() => {}
            _ => {
                let children: Vec<&str> = node.named_children().take(6).collect();
                self.problem(
                    ProblemKind::TypeMismatch,
                    val.offset,
                    path,
                    format!(
                        "`{}` is a group of options, not an option; it is set to {}",
                        join_path(path),
                        describe(val)
                    ),
                    Some("an attribute set of options".to_string()),
                    (!children.is_empty()).then(|| format!("options here: {}", children.join(", "))),
                );
            }
        }
    }

    /// One `key = value` below `path`.
    fn binding(&mut self, node: &'a Node, path: &mut Vec<String>, binding: &Binding) {
        let name = match &binding.key {
            Key::Name(name) => name.clone(),
            Key::Dynamic => "<name>".to_string(),
        };
        if let Some(child) = node.child(&binding.key) {
            path.push(name);
            self.walk(child, path, &binding.value);
            path.pop();
            return;
        }
        if binding.key == Key::Dynamic {
            // A computed name where only fixed names exist: only evaluation can tell.
            return;
        }
        let mut full = path.clone();
        full.push(name.clone());
        let suggestion = nearest(node.named_children(), &name).map(|best| {
            let mut suggested = path.clone();
            suggested.push(best.to_string());
            join_path(&suggested)
        });
        if self.db.covers(&full) || suggestion.is_some() {
            let what = if full[0] == super::NIXSTACK_NAMESPACE {
                "no such option declared by our modules"
            } else if self.db.covers(&full) {
                "no such NixOS option"
            } else {
                "not in the NixOS option data, and a known option has a similar name"
            };
            let expected = if path.is_empty() {
                None
            } else {
                let children: Vec<&str> = node.named_children().take(12).collect();
                Some(format!("one of the options in `{}`: {}", join_path(path), children.join(", ")))
            };
            self.problem(
                ProblemKind::UnknownOption,
                binding.offset,
                &full,
                format!("`{}`: {what}", join_path(&full)),
                expected,
                suggestion.map(|s| format!("did you mean `{s}`?")),
            );
        } else {
            leaves(&mut full, &binding.value, &mut self.uncovered);
        }
    }

    /// A value set on an option of type `ty`; `node` is the option's node (for
    /// sub-options of submodules); `expected` is how the type is printed.
    fn value(&mut self, ty: &NixType, expected: &str, node: &'a Node, path: &mut Vec<String>, val: &Val) {
        match &val.kind {
            ValKind::Each(items) => {
                items.iter().for_each(|item| self.value(ty, expected, node, path, item));
                return;
            }
            // Only evaluation can tell what these are.
            ValKind::Ref(_) | ValKind::Call { .. } | ValKind::Opaque => return,
            _ => {}
        }
        let mismatch = |checker: &mut Self, hint: Option<String>| checker.type_mismatch(expected, path, val, hint);
        match ty {
            NixType::Anything => {}
            NixType::Either(alternatives) => self.either(alternatives, expected, node, path, val),
            NixType::ListOf { elem, non_empty } => match &val.kind {
                ValKind::List(items) => {
                    if *non_empty && items.is_empty() {
                        mismatch(self, Some("the list must not be empty".to_string()));
                    }
                    let elem_expected = elem.to_string();
                    for (i, item) in items.iter().enumerate() {
                        path.push(format!("[{i}]"));
                        self.value(elem, &elem_expected, node.element(), path, item);
                        path.pop();
                    }
                }
                _ => mismatch(self, None),
            },
            NixType::AttrsOf(elem) => match &val.kind {
                ValKind::Attrs(bindings) => {
                    let elem_expected = elem.to_string();
                    self.attrs_of(elem, &elem_expected, node, path, bindings);
                }
                _ => mismatch(self, None),
            },
            NixType::Submodule => match &val.kind {
                // Without known sub-options (the data lists none), the keys cannot be judged.
                ValKind::Attrs(_) if node.children.is_empty() => {}
                ValKind::Attrs(bindings) => bindings.iter().for_each(|b| self.binding(node, path, b)),
                _ => mismatch(self, None),
            },
            NixType::Freeform(elem) => match &val.kind {
                ValKind::Attrs(bindings) => {
                    let elem_expected = elem.to_string();
                    for binding in bindings {
                        match binding.key {
                            Key::Name(ref name) if node.children.contains_key(name) => {
                                self.binding(node, path, binding)
                            }
                            _ => self.attrs_of(elem, &elem_expected, &EMPTY_NODE, path, std::slice::from_ref(binding)),
                        }
                    }
                }
                _ => mismatch(self, None),
            },
            scalar => {
                if let Err(hint) = scalar_fits(scalar, val) {
                    mismatch(self, hint);
                }
            }
        }
    }

    /// The bindings of an `attrsOf` value: every key holds an `elem`.
    fn attrs_of(
        &mut self,
        elem: &NixType,
        expected: &str,
        node: &'a Node,
        path: &mut Vec<String>,
        bindings: &[Binding],
    ) {
        for binding in bindings {
            let child = node.child(&binding.key).unwrap_or(&EMPTY_NODE);
            path.push(match &binding.key {
                Key::Name(name) => name.clone(),
                Key::Dynamic => "<name>".to_string(),
            });
            self.value(elem, expected, child, path, &binding.value);
            path.pop();
        }
    }

    /// A value of a union type fits if any alternative takes it. When none does and the
    /// value is a set that one alternative reads as sub-options, that alternative's
    /// problems are the useful ones (an unknown key is clearer than "not a union").
    fn either(&mut self, alternatives: &[NixType], expected: &str, node: &'a Node, path: &mut Vec<String>, val: &Val) {
        let saved = std::mem::take(&mut self.problems);
        let mut attempts = Vec::new();
        for alternative in alternatives {
            self.value(alternative, expected, node, path, val);
            let problems = std::mem::take(&mut self.problems);
            if problems.is_empty() {
                self.problems = saved;
                return;
            }
            attempts.push((alternative, problems));
        }
        self.problems = saved;
        let structured = matches!(val.kind, ValKind::Attrs(_) | ValKind::List(_));
        let specific = attempts.iter().find(|(alternative, _)| {
            structured
                && matches!(
                    (alternative, &val.kind),
                    (NixType::Submodule | NixType::Freeform(_) | NixType::AttrsOf(_), ValKind::Attrs(_))
                        | (NixType::ListOf { .. }, ValKind::List(_))
                )
        });
        match specific {
            Some((_, problems)) => self.problems.extend(problems.iter().cloned()),
            None => {
                let hint = alternatives.iter().find_map(|a| scalar_fits(a, val).err().flatten());
                self.type_mismatch(expected, path, val, hint);
            }
        }
    }
}

/// Whether a literal fits a scalar type; `Err` carries an optional hint.
fn scalar_fits(ty: &NixType, val: &Val) -> Result<(), Option<String>> {
    let quoted_hint = |text: &str| -> Option<String> {
        match text {
            "true" | "false" => Some(format!("write `{text}` without quotes")),
            "yes" | "on" | "1" => Some("write `true` (a boolean, without quotes)".to_string()),
            "no" | "off" | "0" => Some("write `false` (a boolean, without quotes)".to_string()),
            _ => None,
        }
    };
    match (ty, &val.kind) {
        (NixType::Anything, _) => Ok(()),
        (_, ValKind::Ref(_) | ValKind::Call { .. } | ValKind::Opaque | ValKind::Each(_)) => Ok(()),
        (NixType::Bool, ValKind::Bool(_)) => Ok(()),
        (NixType::Bool, ValKind::Str { literal: Some(text) }) => Err(quoted_hint(text)),
        (NixType::Int { min, max }, ValKind::Int(n)) => {
            let low = min.is_some_and(|min| *n < min);
            let high = max.is_some_and(|max| *n > max);
            if low || high {
                let range = match (min, max) {
                    (Some(min), Some(max)) => format!("between {min} and {max}"),
                    (Some(min), None) => format!("at least {min}"),
                    (None, Some(max)) => format!("at most {max}"),
                    (None, None) => unreachable!(),
                };
                Err(Some(format!("{n} is out of range; the value must be {range}")))
            } else {
                Ok(())
            }
        }
        (NixType::Int { .. } | NixType::Float, ValKind::Str { literal: Some(text) })
            if text.trim().parse::<f64>().is_ok() =>
        {
            Err(Some(format!("write the number {} without quotes", text.trim())))
        }
        (NixType::Float, ValKind::Int(_) | ValKind::Float) => Ok(()),
        (NixType::Str(string), ValKind::Str { literal }) => match literal {
            Some(text) => string_fits(string, text),
            None => Ok(()),
        },
        (NixType::Str(_), ValKind::Path(path)) => Err(Some(format!(
            "a path is not a string; write \"{path}\" as a string, or `builtins.readFile {path}` for its contents"
        ))),
        (NixType::Str(_), ValKind::Int(n)) => Err(Some(format!("write \"{n}\" (a string) or `toString {n}`"))),
        (NixType::Path, ValKind::Path(_)) => Ok(()),
        (NixType::Path, ValKind::Str { literal: None }) => Ok(()),
        (NixType::Path, ValKind::Str { literal: Some(text) }) => {
            if text.starts_with('/') {
                Ok(())
            } else {
                Err(Some("an absolute path starts with `/`".to_string()))
            }
        }
        (NixType::Package, ValKind::Str { literal: None }) => Ok(()),
        (NixType::Package, ValKind::Str { literal: Some(text) }) if text.starts_with("/nix/store/") => Ok(()),
        (NixType::Package, _) => Err(Some("use a package such as `pkgs.haproxy`".to_string())),
        (NixType::Null, ValKind::Null) => Ok(()),
        (NixType::Attrs, ValKind::Attrs(_)) => Ok(()),
        (NixType::Function, ValKind::Lambda(_)) => Ok(()),
        (NixType::Enum(members), kind) => {
            let fits = match kind {
                ValKind::Str { literal: None } => true,
                ValKind::Str { literal: Some(text) } => members.contains(&EnumMember::Str(text.clone())),
                ValKind::Int(n) => members.contains(&EnumMember::Int(*n)),
                _ => false,
            };
            if fits {
                return Ok(());
            }
            let names: Vec<String> = members.iter().map(ToString::to_string).collect();
            let nearest_member = match kind {
                ValKind::Str { literal: Some(text) } => {
                    let strings = members.iter().filter_map(|m| match m {
                        EnumMember::Str(s) => Some(s.as_str()),
                        EnumMember::Int(_) => None,
                    });
                    nearest(strings, text)
                }
                _ => None,
            };
            Err(Some(match nearest_member {
                Some(best) => format!("did you mean {best:?}? valid values: {}", names.join(", ")),
                None => format!("valid values: {}", names.join(", ")),
            }))
        }
        _ => Err(None),
    }
}

fn string_fits(string: &StrType, text: &str) -> Result<(), Option<String>> {
    if string.non_empty && text.trim().is_empty() {
        return Err(Some("the string must not be empty".to_string()));
    }
    if string.single_line && text.trim_end_matches('\n').contains('\n') {
        return Err(Some("the string must be a single line".to_string()));
    }
    if string.no_newlines_or_colons && (text.contains('\n') || text.contains(':')) {
        return Err(Some("the string must not contain newlines or colons".to_string()));
    }
    Ok(())
}

/// The most similar name, if one is close enough to be a likely misspelling.
pub(crate) fn nearest<'n>(candidates: impl Iterator<Item = &'n str>, name: &str) -> Option<&'n str> {
    let lower = name.to_lowercase();
    // Case is compared loosely: `hostname` for `hostName` is the likeliest slip of all.
    let threshold = (name.chars().count() / 3).max(2);
    candidates
        .map(|candidate| (strsim::damerau_levenshtein(&lower, &candidate.to_lowercase()), candidate))
        .filter(|(distance, _)| *distance <= threshold)
        .min()
        .map(|(_, candidate)| candidate)
}

/// Records the option paths set below `path` (for paths the data does not cover).
fn leaves(path: &mut Vec<String>, val: &Val, out: &mut BTreeSet<String>) {
    match &val.kind {
        ValKind::Attrs(bindings) if !bindings.is_empty() => {
            for binding in bindings {
                path.push(match &binding.key {
                    Key::Name(name) => name.clone(),
                    Key::Dynamic => "<name>".to_string(),
                });
                leaves(path, &binding.value, out);
                path.pop();
            }
        }
        ValKind::Each(items) if !items.is_empty() => items.iter().for_each(|item| leaves(path, item, out)),
        _ => {
            out.insert(join_path(path));
        }
    }
}
