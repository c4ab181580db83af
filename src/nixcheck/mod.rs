//! Proves, without nixpkgs, that the Nix we emit is accepted by NixOS as far as that can be
//! judged: every file parses (in-process with `rnix`, and with the real
//! `nix-instantiate --parse`), every option path a module or host file sets exists in the
//! NixOS option data (`data/nixos-options.json`) or among the `nixstack.*` options our
//! modules declare, and every literal value fits the option's type.
//!
//! ```no_run
//! use nixstack::nixcheck::{check_files, OptionDb};
//! let modules = vec![("modules/lb.nix".to_string(), std::fs::read_to_string("modules/lb.nix")?)];
//! let mut db = OptionDb::nixos();
//! db.with_modules(&modules).map_err(|problems| anyhow::anyhow!("{problems:?}"))?;
//! let report = check_files(&db, &modules);
//! for problem in &report.problems {
//!     eprintln!("{problem}");
//! }
//! assert!(report.uncovered_outside(nixstack::nixcheck::KNOWN_UNCOVERED).is_empty());
//! # Ok::<(), anyhow::Error>(())
//! ```
//!
//! What is judged: option paths (with `<name>` attribute names and `*` list elements),
//! and literal booleans, integers and their ranges, strings (single-line, non-empty, no
//! colons), absolute paths, enums, `null`, lists and attribute sets element by element, and
//! sub-options of submodules. The module-system wrappers `mkIf`, `mkMerge`, `mkDefault`,
//! `mkForce`, `mkOverride`, `mkBefore`, `mkAfter` are looked through. What is not judged:
//! values only evaluation knows (references such as `config.x` or `cfg.port`, `pkgs.*`,
//! function calls, interpolated strings, arithmetic), `strMatching` patterns, keys below
//! free-form options (`serviceConfig`, `settings` of format types, YAML values), and paths
//! outside the option families the data covers, which are reported as *uncovered*.

mod instantiate;
mod options;
mod parse;
mod types;
mod value;
mod walk;

use std::collections::BTreeSet;
use std::fmt;

pub use instantiate::nix_instantiate_parse;
pub use options::{OptionDb, NIXSTACK_NAMESPACE};
pub use parse::parse_nix;

/// Option paths outside the data's option families that nixstack knowingly sets; they
/// exist in every NixOS release we target. Patterns as for [`Report::uncovered_outside`].
pub const KNOWN_UNCOVERED: &[&str] = &[
    "nixpkgs.hostPlatform",
    // Outside the option data's families; declared in nixos/modules/tasks/network-interfaces.nix.
    "networking.usePredictableInterfaceNames",
    "system.build.*",
    "assertions",
    "warnings",
];

/// What kind of problem a [`NixProblem`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProblemKind {
    /// The file does not parse (or defines an attribute twice).
    Syntax,
    /// The file is not shaped like a NixOS module.
    NotAModule,
    /// An option path that does not exist.
    UnknownOption,
    /// A literal value that does not fit the option's type.
    TypeMismatch,
    /// A bad option declaration in one of our modules.
    Declaration,
}

/// One problem in one Nix file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NixProblem {
    pub kind: ProblemKind,
    /// The file as given by the caller (a path relative to the flake root).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// The option path concerned, e.g. `services.haproxy.enable`.
    pub path: Option<String>,
    /// What is wrong.
    pub message: String,
    /// What was expected: the NixOS type of the option, or the options that exist there.
    pub expected: Option<String>,
    /// How to fix it, e.g. the nearest existing option name.
    pub hint: Option<String>,
}

impl NixProblem {
    pub(crate) fn at(kind: ProblemKind, file: &str, text: &str, offset: usize, message: String) -> NixProblem {
        let location = Location::from_offset(text, offset);
        NixProblem {
            kind,
            file: file.to_string(),
            line: location.line,
            column: location.column,
            path: None,
            message,
            expected: None,
            hint: None,
        }
    }
}

impl fmt::Display for NixProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file, self.line, self.column, self.message)?;
        if let Some(expected) = &self.expected {
            write!(f, "; expected {expected}")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "; hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for NixProblem {}

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Location {
    pub(crate) line: usize,
    pub(crate) column: usize,
}

impl Location {
    pub(crate) fn from_offset(text: &str, offset: usize) -> Location {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Location { line, column: before[line_start..].chars().count() + 1 }
    }
}

/// The result of [`check_files`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Every problem found, in file order.
    pub problems: Vec<NixProblem>,
    /// Option paths set outside the option families the data covers: they cannot be
    /// judged here, so callers list them or compare them with an allowlist.
    pub uncovered: BTreeSet<String>,
}

impl Report {
    /// Whether there is no problem and every uncovered path is allowed.
    pub fn is_clean(&self, allowed: &[&str]) -> bool {
        self.problems.is_empty() && self.uncovered_outside(allowed).is_empty()
    }

    /// The uncovered paths no pattern allows. A pattern is an option path (`assertions`),
    /// which also allows everything below it, or ends in `.*` (`system.build.*`); a `*`
    /// or `<name>` component matches any one component.
    pub fn uncovered_outside(&self, allowed: &[&str]) -> Vec<&str> {
        self.uncovered
            .iter()
            .map(String::as_str)
            .filter(|path| !allowed.iter().any(|pattern| pattern_allows(pattern, path)))
            .collect()
    }
}

fn pattern_allows(pattern: &str, path: &str) -> bool {
    let pattern: Vec<&str> = pattern.trim_end_matches(".*").split('.').collect();
    let path: Vec<&str> = path.split('.').collect();
    path.len() >= pattern.len()
        && pattern.iter().zip(&path).all(|(want, have)| want == have || *want == "*" || *want == "<name>")
}

/// Checks every file as a NixOS module (a host file, one of our modules, a `local.nix`):
/// it must parse, each option path it sets must exist in `db`, and each literal value must
/// fit its option's type. Files that are not modules (`flake.nix`, tests) do not belong
/// here; give them to [`parse_nix`] and [`nix_instantiate_parse`] only.
pub fn check_files<P: AsRef<str>, T: AsRef<str>>(db: &OptionDb, files: &[(P, T)]) -> Report {
    let mut report = Report::default();
    for (path, text) in files {
        let (path, text) = (path.as_ref(), text.as_ref());
        let root = match parse_nix(path, text) {
            Ok(root) => root,
            Err(problem) => {
                report.problems.push(problem);
                continue;
            }
        };
        let Some(expr) = root.expr() else { continue };
        let mut checker = walk::Checker { db, file: path, text, problems: Vec::new(), uncovered: BTreeSet::new() };
        checker.module(&value::module_body(&expr));
        report.problems.extend(checker.problems);
        report.uncovered.extend(checker.uncovered);
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Report {
        check_files(&OptionDb::nixos(), &[("hosts/x/default.nix", text)])
    }

    fn only_problem(report: &Report) -> &NixProblem {
        assert_eq!(report.problems.len(), 1, "{:#?}", report.problems);
        &report.problems[0]
    }

    #[test]
    fn a_correct_host_passes() {
        let report = check(
            r#"{ lib, pkgs, ... }: {
              imports = [ ../../modules ];
              networking.hostName = "lb1";
              networking.firewall.allowedTCPPorts = [ 80 443 ];
              services.haproxy = {
                enable = true;
                config = builtins.readFile ./haproxy.cfg;
              };
              services.keepalived.vrrpInstances.vip = {
                state = "MASTER";
                virtualRouterId = 51;
                priority = lib.mkDefault 100;
                virtualIps = [ { addr = "10.0.0.10/24"; } ];
              };
              systemd.services.nixstack-app.serviceConfig.User = "app";
              systemd.services.nixstack-app.wantedBy = [ "multi-user.target" ];
              boot.kernel.sysctl."net.ipv4.ip_nonlocal_bind" = 1;
              services.nginx.virtualHosts."example.com".locations."/".proxyPass = "https://app";
              users.users.app = { isSystemUser = true; group = "app"; };
              nixpkgs.hostPlatform = "x86_64-linux";
              system.stateVersion = "24.11";
            }"#,
        );
        assert!(report.problems.is_empty(), "{:#?}", report.problems);
        assert_eq!(report.uncovered.iter().collect::<Vec<_>>(), ["nixpkgs.hostPlatform"]);
        assert!(report.is_clean(KNOWN_UNCOVERED));
    }

    #[test]
    fn a_misspelt_option_names_the_nearest_one() {
        let report = check("{\n  services.haproxy.enabel = true;\n}");
        let problem = only_problem(&report);
        assert_eq!(problem.kind, ProblemKind::UnknownOption);
        assert_eq!((problem.line, problem.column), (2, 20));
        assert_eq!(problem.path.as_deref(), Some("services.haproxy.enabel"));
        assert_eq!(problem.hint.as_deref(), Some("did you mean `services.haproxy.enable`?"));
    }

    #[test]
    fn literals_that_do_not_fit_are_caught() {
        let cases = [
            (r#"{ services.haproxy.enable = "yes"; }"#, "boolean"),
            (
                "{ services.keepalived.vrrpInstances.v.virtualRouterId = 300; }",
                "integer between 1 and 255 (both inclusive)",
            ),
            (r#"{ services.mysql.galeraCluster.sstMethod = "xtrabackup"; }"#, r#"one of "rsync", "mariabackup""#),
            (
                "{ networking.firewall.allowedTCPPorts = [ 443 70000 ]; }",
                "16 bit unsigned integer; between 0 and 65535 (both inclusive)",
            ),
            (
                "{ services.nginx.virtualHosts.x.listen = [ { addr = \"0.0.0.0\"; port = -1; } ]; }",
                "null or 16 bit unsigned integer; between 0 and 65535 (both inclusive)",
            ),
            (
                "{ networking.hostName = ./x; }",
                "string matching the pattern ^$|^[[:alnum:]]([[:alnum:]_-]{0,61}[[:alnum:]])?$",
            ),
        ];
        for (text, expected) in cases {
            let report = check(text);
            let problem = only_problem(&report);
            assert_eq!(problem.kind, ProblemKind::TypeMismatch, "{text}");
            assert_eq!(problem.expected.as_deref(), Some(expected), "{text}");
        }
    }

    #[test]
    fn wrappers_are_looked_through_and_non_literals_accepted() {
        let report = check(
            r#"{ config, lib, ... }: {
              config = lib.mkIf config.services.haproxy.enable (lib.mkMerge [
                { services.haproxy.user = lib.mkForce "haproxy"; }
                (lib.mkIf true { services.haproxy.enable = lib.mkDefault 1; })
                { services.haproxy.group = config.services.haproxy.user; }
              ]);
            }"#,
        );
        let problem = only_problem(&report);
        assert_eq!(problem.path.as_deref(), Some("services.haproxy.enable"));
    }

    #[test]
    fn unknown_keys_inside_submodules_are_caught() {
        let report = check("{ services.keepalived.vrrpInstances.v.virtualIps = [ { adr = \"10.0.0.1\"; } ]; }");
        let problem = only_problem(&report);
        assert_eq!(problem.kind, ProblemKind::UnknownOption);
        assert_eq!(problem.path.as_deref(), Some("services.keepalived.vrrpInstances.v.virtualIps[0].adr"));
        assert_eq!(
            problem.hint.as_deref(),
            Some("did you mean `services.keepalived.vrrpInstances.v.virtualIps[0].addr`?")
        );
    }

    #[test]
    fn uncovered_paths_are_listed_not_failed() {
        let report = check("{ system.build.foo = 1; services.redis.servers.x.enable = true; }");
        assert!(report.problems.is_empty(), "{:#?}", report.problems);
        assert_eq!(report.uncovered_outside(KNOWN_UNCOVERED), ["services.redis.servers.x.enable"]);
        assert_eq!(report.uncovered_outside(&["services.redis.*", "system.build"]), Vec::<&str>::new());
    }

    #[test]
    fn config_beside_other_top_level_attributes_is_rejected() {
        let report = check("{ config.networking.hostName = \"a\"; services.haproxy.enable = true; }");
        assert_eq!(only_problem(&report).kind, ProblemKind::NotAModule);
    }

    #[test]
    fn locations_count_lines_and_characters() {
        assert_eq!(Location::from_offset("ab\ncd", 4), Location { line: 2, column: 2 });
        assert_eq!(Location::from_offset("é\nx", 3), Location { line: 2, column: 1 });
    }
}
