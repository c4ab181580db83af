//! The bad-spec corpus: every `tests/specs/bad/*.toml` must fail to parse or resolve with
//! an error a user can act on, located at the offending text. The full message of each is
//! snapshot-tested.
//!
//! Each fixture starts with `# expect: <what it tests>` and `# at: <text>`: the first
//! error's snippet line must contain `<text>`. When `expect` says "suggests `x`", the hint
//! must be "did you mean `x`?".

use std::path::Path;

use nixstack::cli::compile;
use nixstack::spec::SpecSource;

/// The value of a `# key: value` header comment of a fixture.
fn header<'t>(text: &'t str, key: &str) -> &'t str {
    text.lines()
        .take_while(|line| line.starts_with('#'))
        .find_map(|line| line.strip_prefix(key))
        .unwrap_or_else(|| panic!("fixture lacks a `{key}` header line"))
        .trim()
}

fn fixture_name(path: &Path) -> String {
    format!("tests/specs/bad/{}", path.file_name().unwrap().to_string_lossy())
}

#[test]
fn every_bad_spec_fails_with_a_located_helpful_error() {
    insta::glob!("specs/bad/*.toml", |path| {
        let text = std::fs::read_to_string(path).unwrap();
        let name = fixture_name(path);
        let expect = header(&text, "# expect:").to_string();
        let at = header(&text, "# at:").to_string();
        let source = SpecSource { name: name.clone(), text: text.clone() };

        let errors = match compile(&source) {
            Ok(_) => panic!("{name} compiled, but it should fail: {expect}"),
            Err(errors) => errors,
        };
        assert!(!errors.0.is_empty(), "{name}: an Err without errors");
        let lines: Vec<&str> = text.lines().collect();
        for error in &errors.0 {
            assert_eq!(error.file, name);
            assert!(
                error.line >= 1 && error.line <= lines.len().max(1),
                "{name}: line {} outside the file",
                error.line
            );
            assert!(error.column >= 1, "{name}: column 0");
            assert_eq!(
                error.snippet,
                lines[error.line - 1].trim_end_matches('\r'),
                "{name}: snippet is not line {}",
                error.line
            );
            assert!(
                error.expected.as_deref().is_some_and(|e| !e.is_empty()),
                "{name}: `{}` has no `expected`",
                error.message
            );
            assert!(error.hint.as_deref().is_some_and(|h| !h.is_empty()), "{name}: `{}` has no hint", error.message);
        }
        let first = &errors.0[0];
        assert!(
            first.snippet.contains(&at),
            "{name}: the first error points at line {} `{}`, not at the line with `{at}`",
            first.line,
            first.snippet
        );

        let rendered = errors.to_string();
        assert!(rendered.contains(&format!("--> {name}:{}:{}", first.line, first.column)), "{rendered}");
        assert!(rendered.contains("= expected: "), "{rendered}");
        assert!(rendered.contains("= hint: "), "{rendered}");
        if let Some(suggestion) = expect.split("suggests `").nth(1).and_then(|s| s.split('`').next()) {
            assert!(
                rendered.contains(&format!("did you mean `{suggestion}`?")),
                "{name}: expected a did-you-mean hint for `{suggestion}`:\n{rendered}"
            );
        }

        insta::with_settings!({ description => expect.as_str(), omit_expression => true }, {
            insta::assert_snapshot!(rendered);
        });
    });
}

#[test]
fn the_corpus_is_large_and_every_fixture_is_one_mistake_away_from_an_example() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/specs/bad");
    let fixtures: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "toml"))
        .collect();
    assert!(fixtures.len() >= 35, "only {} bad specs in {}", fixtures.len(), dir.display());
    for path in fixtures {
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# expect: "), "{}: first line must be `# expect: ...`", path.display());
        header(&text, "# at:");
    }
}

#[test]
fn the_examples_compile() {
    for example in ["examples/default.toml", "examples/whiteboard.toml", "examples/groups-300.toml"] {
        let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(example)).unwrap();
        let source = SpecSource { name: example.into(), text };
        if let Err(errors) = compile(&source) {
            panic!("{example} should compile:\n{errors}");
        }
    }
}

/// Every error of `fixture`, as (line, column, message, expected).
fn located_errors(fixture: &str) -> Vec<(usize, usize, String, String)> {
    let name = format!("tests/specs/bad/{fixture}");
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(&name)).unwrap();
    let errors = compile(&SpecSource { name: name.clone(), text }).expect_err("a bad spec compiles");
    errors.0.into_iter().map(|e| (e.line, e.column, e.message, e.expected.unwrap_or_default())).collect()
}

#[test]
fn five_mistakes_of_five_kinds_are_all_reported_in_file_order() {
    let errors = located_errors("five-mistakes.toml");
    let owned = |(line, column, message, expected): (usize, usize, &str, &str)| {
        (line, column, message.to_string(), expected.to_string())
    };
    let expected = [
        // Wrong type.
        (24, 12, "expected true or false, found string \"yes\"", "true or false"),
        // Unknown key.
        (
            49,
            1,
            "unknown key `adress`",
            "one of `address`, `public_address`, `public_address6`, `roles`, `ssh`, `disk`, `mac`, `public_mac`, `channel`, `system`, `host_key`",
        ),
        // Bad cross-reference, found by the resolver on what was well-formed.
        (85, 11, "lb.primary names `lb3`, which is not a host with role `lb`", "one of the lb hosts: `lb1`, `lb2`"),
        // Out-of-range value.
        (86, 21, "integer 300 is out of range", "an integer from 0 to 255"),
        // Missing key, in an inline table of a list.
        (115, 10, "missing key `database`", "a key `database` in this table"),
    ]
    .map(owned);
    assert_eq!(errors.len(), 5, "{errors:#?}");
    assert_eq!(errors, expected);
}

#[test]
fn a_dropped_host_is_reported_once_not_again_by_the_checks_that_count_its_tier() {
    // db3's roles are a string: the host cannot be built, so the Galera cluster looks like
    // two nodes; that is the consequence, not a second mistake.
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/default.toml")).unwrap().replace(
            "[hosts.db3]\naddress = \"10.10.0.43\"\nroles = [\"db\"]",
            "[hosts.db3]\naddress = \"10.10.0.43\"\nroles = \"db\"",
        );
    assert!(text.contains("roles = \"db\""));
    let errors = compile(&SpecSource { name: "stack.toml".into(), text }).expect_err("roles must be a list");
    let messages: Vec<&str> = errors.0.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(messages, ["expected a list, e.g. [\"web\", \"app\"], found string \"db\""]);
}

#[test]
fn an_unknown_key_standing_for_a_required_one_is_not_also_reported_missing() {
    let errors = located_errors("unknown-key-db-user.toml");
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].2, "unknown key `databse`");
}
