//! The Nix checks on sample modules and hosts (`tests/nix/`): correct Nix passes, and each
//! kind of mistake is caught with its location, the NixOS type expected and a hint.

use std::path::Path;

use nixstack::nixcheck::{
    check_files, nix_instantiate_parse, parse_nix, NixProblem, OptionDb, ProblemKind, Report, KNOWN_UNCOVERED,
};

/// A sample file as (path relative to `tests/nix`, text).
fn sample(path: &str) -> (String, String) {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/nix").join(path);
    let text = std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("reading {}: {e}", full.display()));
    (path.to_string(), text)
}

fn modules() -> Vec<(String, String)> {
    vec![sample("modules/default.nix"), sample("modules/lb.nix")]
}

fn option_db() -> OptionDb {
    let mut db = OptionDb::nixos();
    db.with_modules(&modules()).unwrap_or_else(|problems| panic!("{problems:#?}"));
    db
}

/// The single problem of one bad sample file.
fn problem_in(path: &str) -> NixProblem {
    let report = check_files(&option_db(), &[sample(path)]);
    assert_eq!(report.problems.len(), 1, "{path}: {:#?}", report.problems);
    report.problems.into_iter().next().unwrap()
}

#[test]
fn correct_modules_and_hosts_pass() {
    let mut files = modules();
    files.push(sample("hosts/lb1/default.nix"));
    files.push(sample("hosts/lb1/local.nix"));
    let report: Report = check_files(&option_db(), &files);
    assert!(report.problems.is_empty(), "{:#?}", report.problems);
    assert_eq!(report.uncovered.iter().collect::<Vec<_>>(), ["assertions", "nixpkgs.hostPlatform"]);
    assert!(report.is_clean(KNOWN_UNCOVERED));
    nix_instantiate_parse(&files).expect("nix-instantiate accepts the samples");
}

#[test]
fn a_misspelt_option_is_caught_with_the_nearest_name() {
    let problem = problem_in("bad/misspelt_option.nix");
    assert_eq!(problem.kind, ProblemKind::UnknownOption);
    assert_eq!((problem.file.as_str(), problem.line, problem.column), ("bad/misspelt_option.nix", 3, 20));
    assert_eq!(problem.path.as_deref(), Some("services.haproxy.enabel"));
    assert_eq!(problem.hint.as_deref(), Some("did you mean `services.haproxy.enable`?"));
    assert_eq!(
        problem.to_string(),
        "bad/misspelt_option.nix:3:20: `services.haproxy.enabel`: no such NixOS option; \
         expected one of the options in `services.haproxy`: config, enable, group, package, user; \
         hint: did you mean `services.haproxy.enable`?"
    );
}

#[test]
fn values_of_the_wrong_nixos_type_are_caught() {
    let cases = [
        ("bad/bool_as_string.nix", "services.haproxy.enable", (3, 29), "boolean"),
        (
            "bad/router_id_out_of_range.nix",
            "services.keepalived.vrrpInstances.v.virtualRouterId",
            (3, 57),
            "integer between 1 and 255 (both inclusive)",
        ),
        (
            "bad/unknown_sst_method.nix",
            "services.mysql.galeraCluster.sstMethod",
            (3, 44),
            r#"one of "rsync", "mariabackup""#,
        ),
        (
            "bad/port_out_of_range.nix",
            "networking.firewall.allowedTCPPorts[1]",
            (5, 5),
            "16 bit unsigned integer; between 0 and 65535 (both inclusive)",
        ),
    ];
    for (file, path, (line, column), expected) in cases {
        let problem = problem_in(file);
        assert_eq!(problem.kind, ProblemKind::TypeMismatch, "{problem}");
        assert_eq!(problem.path.as_deref(), Some(path), "{problem}");
        assert_eq!((problem.line, problem.column), (line, column), "{problem}");
        assert_eq!(problem.expected.as_deref(), Some(expected), "{problem}");
        assert!(problem.hint.is_some(), "{problem}");
    }
}

#[test]
fn an_undeclared_nixstack_option_is_caught() {
    let problem = problem_in("bad/undeclared_nixstack_option.nix");
    assert_eq!(problem.kind, ProblemKind::UnknownOption);
    assert_eq!(problem.path.as_deref(), Some("nixstack.lb.vipp"));
    assert_eq!(problem.hint.as_deref(), Some("did you mean `nixstack.lb.vip`?"));
    assert!(problem.message.contains("declared by our modules"), "{problem}");
}

#[test]
fn values_of_the_wrong_type_for_our_own_options_are_caught() {
    let report = check_files(&option_db(), &[sample("bad/nixstack_wrong_type.nix")]);
    let found: Vec<(Option<&str>, Option<&str>)> =
        report.problems.iter().map(|p| (p.path.as_deref(), p.expected.as_deref())).collect();
    assert_eq!(
        found,
        [
            (Some("nixstack.lb.virtualRouterId"), Some("integer between 1 and 255 (both inclusive)")),
            (Some("nixstack.lb.state"), Some(r#"one of "MASTER", "BACKUP""#)),
            (
                Some("nixstack.lb.backends.web1.port"),
                Some("16 bit unsigned integer; between 0 and 65535 (both inclusive)")
            ),
        ],
        "{:#?}",
        report.problems
    );
    assert!(report.problems.iter().all(|p| p.kind == ProblemKind::TypeMismatch));
}

#[test]
fn syntax_errors_are_rejected_by_rnix_and_by_nix_with_their_location() {
    let broken =
        ("hosts/broken/default.nix".to_string(), "{ lib, ... }:\n{\n  networking.hostName = ;\n}\n".to_string());
    let problem = parse_nix(&broken.0, &broken.1).unwrap_err();
    assert_eq!(problem.kind, ProblemKind::Syntax);
    assert_eq!((problem.line, problem.column), (3, 25), "{problem}");
    assert!(problem.to_string().starts_with("hosts/broken/default.nix:3:25: "), "{problem}");

    let report = check_files(&option_db(), std::slice::from_ref(&broken));
    assert_eq!(report.problems, [problem]);

    let error = nix_instantiate_parse(&[sample("hosts/lb1/default.nix"), broken]).unwrap_err().to_string();
    assert!(error.contains("hosts/broken/default.nix:3:25"), "{error}");
    assert!(error.contains("syntax error"), "{error}");
}
