//! The `nixstack` binary as a user runs it: default spec selection, exit codes, the
//! example specs' reports (snapshots), every bad spec rejected with nothing written,
//! `init`, and the committed JSON Schema's freshness.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use nixstack::cli::compile;
use nixstack::spec::SpecSource;

const BIN: &str = env!("CARGO_BIN_EXE_nixstack");

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs the binary in `cwd`.
fn nixstack(cwd: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"))
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("stdout is UTF-8")
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("stderr is UTF-8")
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("exited normally, not by a signal")
}

/// Every file under `dir` with its contents, to prove a command wrote nothing.
fn snapshot_dir(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files.insert(path.clone(), Vec::new());
                stack.push(path);
            } else {
                files.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("nixstack-cli-test-").tempdir().unwrap()
}

#[test]
fn check_without_a_spec_uses_the_embedded_default_with_no_warning_but_monoculture() {
    let empty = temp_dir();
    let output = nixstack(empty.path(), &["check"]);
    let (out, err) = (stdout(&output), stderr(&output));
    assert_eq!(code(&output), 0, "{out}{err}");
    assert!(err.contains("using spec <embedded default>"), "stderr must say which spec was used: {err}");
    assert!(out.contains("hosts (11):"), "{out}");
    for host in ["lb1", "lb2", "web1", "web2", "web3", "app1", "app2", "app3", "db1", "db2", "db3"] {
        assert!(out.lines().any(|l| l.trim_start().starts_with(&format!("{host} "))), "host {host} missing:\n{out}");
    }
    // One channel and one system for every host: the four tiers are monocultures, the only
    // warnings of the default.
    assert!(out.contains("0 error(s), 4 warning(s)"), "{out}");
    let warnings: Vec<&str> = out.lines().filter(|l| l.trim_start().starts_with("warning ")).collect();
    assert!(warnings.len() == 4 && warnings.iter().all(|l| l.contains("[monoculture]")), "{out}");
    assert!(!out.contains("error "), "{out}");
    assert!(snapshot_dir(empty.path()).is_empty(), "check wrote into the working directory");
}

#[test]
fn a_stack_toml_in_the_working_directory_wins_over_the_default() {
    let dir = temp_dir();
    std::fs::copy(repo().join("examples/whiteboard.toml"), dir.path().join("stack.toml")).unwrap();
    let output = nixstack(dir.path(), &["check"]);
    assert!(stderr(&output).contains("using spec stack.toml"), "{}", stderr(&output));
    assert!(stdout(&output).contains("hosts (4):"), "{}", stdout(&output));
    assert_eq!(code(&output), 1);
}

#[test]
fn whiteboard_check_exits_1_and_audit_names_the_whiteboard_issues() {
    let check = nixstack(repo(), &["check", "examples/whiteboard.toml"]);
    assert_eq!(code(&check), 1, "{}{}", stdout(&check), stderr(&check));

    let audit = nixstack(repo(), &["audit", "examples/whiteboard.toml"]);
    assert_eq!(code(&audit), 1);
    let text = stdout(&audit);
    for needle in [
        // 1. SSL terminated at the load balancer: the hop to the web servers is plaintext.
        "[plaintext-hop] TLS terminates at the load balancer and the hop to the web servers is plaintext",
        "flow: lb → server1 tcp/80",
        // 2. One MySQL server accepting writes.
        "[spof-db-writer] one database server accepts writes (server1)",
        // 3. Identical components on every server.
        "[co-located-roles] identical components on every server",
        // And the true one the whiteboard does not list: a single load balancer.
        "[spof-lb]",
    ] {
        assert!(text.contains(needle), "audit does not report `{needle}`:\n{text}");
    }
}

#[test]
fn audit_json_is_a_json_array_of_findings() {
    let output = nixstack(repo(), &["audit", "examples/whiteboard.toml", "--json"]);
    assert_eq!(code(&output), 1);
    let findings: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("audit --json prints valid JSON");
    let findings = findings.as_array().expect("a JSON array");
    let codes: Vec<&str> = findings.iter().map(|f| f["code"].as_str().expect("every finding has a code")).collect();
    for code in ["plaintext-hop", "spof-db-writer", "co-located-roles", "spof-lb", "monoculture"] {
        assert!(codes.contains(&code), "no `{code}` in {codes:?}");
    }
    for finding in findings {
        assert!(["error", "warning", "info"].contains(&finding["severity"].as_str().unwrap()), "{finding}");
        assert!(finding["fix"].as_str().is_some_and(|f| !f.is_empty()), "{finding}");
    }

    let clean = nixstack(repo(), &["audit", "examples/default.toml", "--json"]);
    assert_eq!(code(&clean), 0);
    let clean: serde_json::Value = serde_json::from_str(&stdout(&clean)).unwrap();
    // The default runs every host on the stack's one channel and system: each of its four tiers
    // is a monoculture, and nothing else is a warning.
    let above_info: Vec<_> = clean.as_array().unwrap().iter().filter(|f| f["severity"] != "info").collect();
    let codes: Vec<&str> = above_info.iter().map(|f| f["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["monoculture"; 4], "the default spec has other warnings: {above_info:?}");
}

#[test]
fn example_reports_match_their_snapshots() {
    for example in ["default", "whiteboard"] {
        let spec = format!("examples/{example}.toml");
        let check = nixstack(repo(), &["check", &spec]);
        insta::assert_snapshot!(format!("check_{example}"), stdout(&check));

        let audit = nixstack(repo(), &["audit", &spec, "--json"]);
        insta::assert_snapshot!(format!("audit_json_{example}"), stdout(&audit));

        let topology = nixstack(repo(), &["topology", &spec, "--json"]);
        assert_eq!(code(&topology), 0, "{}", stderr(&topology));
        serde_json::from_str::<serde_json::Value>(&stdout(&topology)).expect("topology --json prints valid JSON");
        insta::assert_snapshot!(format!("topology_json_{example}"), stdout(&topology));
    }
}

#[test]
fn every_bad_spec_exits_2_with_the_located_error_and_writes_nothing() {
    let corpus = repo().join("tests/specs/bad");
    let mut fixtures: Vec<PathBuf> = std::fs::read_dir(&corpus).unwrap().map(|e| e.unwrap().path()).collect();
    fixtures.retain(|p| p.extension().is_some_and(|e| e == "toml"));
    fixtures.sort();
    assert!(fixtures.len() >= 35, "corpus too small: {}", fixtures.len());

    for fixture in fixtures {
        let dir = temp_dir();
        let text = std::fs::read_to_string(&fixture).unwrap();
        std::fs::write(dir.path().join("stack.toml"), &text).unwrap();
        let before = snapshot_dir(dir.path());
        let expected =
            compile(&SpecSource { name: "stack.toml".into(), text }).expect_err("a bad spec compiles").to_string();

        // Explicit path, the implicit ./stack.toml, and the commands that write files.
        let runs: [&[&str]; 5] = [
            &["check", "stack.toml"],
            &["check"],
            &["audit", "--json"],
            &["topology", "--json"],
            &["build", "--out", "flake"],
        ];
        for args in runs {
            let output = nixstack(dir.path(), args);
            let err = stderr(&output);
            assert_eq!(code(&output), 2, "{} {args:?} exit status:\n{err}", fixture.display());
            assert!(
                err.contains(&expected),
                "{} {args:?}: stderr lacks the located error\n{expected}\ngot:\n{err}",
                fixture.display()
            );
            assert!(err.contains("nothing was written"), "{err}");
            assert!(
                stdout(&output).is_empty(),
                "{} {args:?} printed to stdout: {}",
                fixture.display(),
                stdout(&output)
            );
            assert_eq!(snapshot_dir(dir.path()), before, "{} {args:?} changed the directory", fixture.display());
        }
    }
}

#[test]
fn init_writes_a_spec_that_check_accepts_and_never_overwrites() {
    let dir = temp_dir();
    let output = nixstack(dir.path(), &["init"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let written = std::fs::read_to_string(dir.path().join("stack.toml")).expect("init writes ./stack.toml");
    assert_eq!(written, nixstack::spec::DEFAULT_SPEC);
    assert!(written.lines().filter(|l| l.trim_start().starts_with('#')).count() >= 3, "the spec should be commented");

    let check = nixstack(dir.path(), &["check"]);
    assert_eq!(code(&check), 0, "{}", stderr(&check));
    assert!(stderr(&check).contains("using spec stack.toml"));
    assert!(stdout(&check).contains("hosts (11):"));

    // An existing spec stays as it is.
    let mine = "# my own stack\n";
    std::fs::write(dir.path().join("stack.toml"), mine).unwrap();
    let again = nixstack(dir.path(), &["init"]);
    assert_eq!(code(&again), 2);
    assert!(stderr(&again).contains("already exists"), "{}", stderr(&again));
    assert_eq!(std::fs::read_to_string(dir.path().join("stack.toml")).unwrap(), mine);

    // An explicit path works too, and is just as protected.
    let other = nixstack(dir.path(), &["init", "other.toml"]);
    assert_eq!(code(&other), 0);
    let before = std::fs::read(dir.path().join("other.toml")).unwrap();
    assert_eq!(code(&nixstack(dir.path(), &["init", "other.toml"])), 2);
    assert_eq!(std::fs::read(dir.path().join("other.toml")).unwrap(), before);
}

#[test]
fn committed_schema_is_fresh() {
    let output = nixstack(repo(), &["schema"]);
    assert_eq!(code(&output), 0);
    let printed = stdout(&output);
    assert_eq!(printed, nixstack::cli::schema());
    let committed = std::fs::read_to_string(repo().join("schema/stack.schema.json")).unwrap_or_default();
    assert!(
        committed == printed,
        "schema/stack.schema.json is stale: run `cargo run -- schema > schema/stack.schema.json`"
    );
}

#[test]
fn schema_describes_every_key_of_the_examples() {
    let schema: serde_json::Value = serde_json::from_str(&nixstack::cli::schema()).unwrap();
    // Located<T> is transparent: no wrapper type leaks into the schema.
    let definitions = schema["definitions"].as_object().expect("definitions");
    assert!(definitions.keys().all(|k| !k.contains("Located")), "{:?}", definitions.keys());
    assert!(schema["properties"]["stack"]["description"].as_str().is_some_and(|d| d.contains("NixOS")));
    assert_eq!(definitions["HostSpec"]["additionalProperties"], false);
    assert!(
        definitions["HostSpec"]["properties"]["address"]["description"].is_string(),
        "doc comments become descriptions"
    );

    for example in ["examples/default.toml", "examples/whiteboard.toml", "examples/groups-300.toml"] {
        let value: toml::Value = toml::from_str(&std::fs::read_to_string(repo().join(example)).unwrap()).unwrap();
        let json = serde_json::to_value(value).unwrap();
        let mut problems = Vec::new();
        validate(&schema, &schema, &json, "", &mut problems);
        assert!(problems.is_empty(), "{example} does not match the schema: {problems:?}");
    }
    // And the schema catches what an editor should flag.
    let typo: serde_json::Value = serde_json::json!({ "stack": { "name": "x", "domian": "x.example.com" } });
    let mut problems = Vec::new();
    validate(&schema, &schema, &typo, "", &mut problems);
    assert!(problems.iter().any(|p| p.contains("domian")), "{problems:?}");
    assert!(problems.iter().any(|p| p.contains("networks")), "a missing required table is flagged: {problems:?}");
}

/// A small JSON Schema check (the subset schemars emits): `$ref`, `anyOf`/`allOf`,
/// `properties`/`required`/`additionalProperties`, `items`, `type`, `enum`.
fn validate(
    root: &serde_json::Value,
    schema: &serde_json::Value,
    value: &serde_json::Value,
    at: &str,
    problems: &mut Vec<String>,
) {
    use serde_json::Value;
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.trim_start_matches("#/definitions/");
        return validate(root, &root["definitions"][name], value, at, problems);
    }
    if let Some(all) = schema["allOf"].as_array() {
        for s in all {
            validate(root, s, value, at, problems);
        }
    }
    if let Some(any) = schema["anyOf"].as_array().or(schema["oneOf"].as_array()) {
        let fits = any.iter().any(|s| {
            let mut inner = Vec::new();
            validate(root, s, value, at, &mut inner);
            inner.is_empty()
        });
        if !fits {
            problems.push(format!("{at}: matches none of the alternatives"));
        }
    }
    if let Some(options) = schema["enum"].as_array() {
        if !options.contains(value) {
            problems.push(format!("{at}: {value} is not one of {options:?}"));
        }
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !types.is_empty() {
        let actual = match value {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        };
        if !types.iter().any(|t| *t == actual || (*t == "number" && actual == "integer")) {
            problems.push(format!("{at}: a {actual}, expected {types:?}"));
            return;
        }
    }
    if let Value::Object(map) = value {
        for required in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            if !map.contains_key(required) {
                problems.push(format!("{at}: missing `{required}`"));
            }
        }
        for (key, item) in map {
            let path = format!("{at}.{key}");
            match (schema["properties"].get(key), &schema["additionalProperties"]) {
                (Some(property), _) => validate(root, property, item, &path, problems),
                (None, Value::Bool(false)) => problems.push(format!("{path}: unknown key `{key}`")),
                (None, Value::Object(_)) => validate(root, &schema["additionalProperties"], item, &path, problems),
                (None, _) => {}
            }
        }
    }
    if let (Value::Array(items), Some(item_schema)) = (value, schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            validate(root, item_schema, item, &format!("{at}[{i}]"), problems);
        }
    }
}
