//! Property tests of the spec front end: whatever text it is given — random bytes, random
//! TOML, spec-shaped documents with random values, or the default spec with random
//! edits — `parse` + `resolve` never panics and either succeeds or returns errors that
//! point inside the file.

use nixstack::cli::compile;
use nixstack::spec::{SpecSource, DEFAULT_SPEC};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// Compiles `text` and checks the located-error contract.
fn check_contract(text: &str) -> Result<(), TestCaseError> {
    let source = SpecSource { name: "stack.toml".into(), text: text.to_string() };
    let Err(errors) = compile(&source) else { return Ok(()) };
    prop_assert!(!errors.0.is_empty(), "Err without any error");
    // A file of n newlines has n + 1 lines (the last may be empty).
    let lines: Vec<&str> = text.split('\n').collect();
    for error in &errors.0 {
        prop_assert!(error.line >= 1, "line 0: {error}");
        prop_assert!(error.column >= 1, "column 0: {error}");
        prop_assert!(
            error.line <= lines.len(),
            "line {} beyond the {} lines of the file: {error}",
            error.line,
            lines.len()
        );
        let line = lines[error.line - 1].trim_end_matches('\r');
        prop_assert_eq!(&error.snippet, line, "snippet is not line {}", error.line);
        prop_assert!(error.column <= line.chars().count() + 1, "column {} beyond the line: {error}", error.column);
        prop_assert!(!error.message.is_empty());
        // Rendering must not panic either (it slices the snippet by column).
        let _ = error.to_string();
    }
    Ok(())
}

// --- arbitrary TOML documents -------------------------------------------------------

/// Keys of the real spec, so random documents reach past deny_unknown_fields.
const KEYS: &[&str] = &[
    "stack",
    "networks",
    "tls",
    "hosts",
    "groups",
    "count",
    "network",
    "lb",
    "web",
    "app",
    "db",
    "firewall",
    "monitoring",
    "deploy",
    "tools",
    "name",
    "domain",
    "channel",
    "system",
    "state_version",
    "image",
    "deploy_user",
    "ssh_keys",
    "private",
    "public",
    "admin",
    "gateway",
    "private_gateway",
    "dns",
    "internal",
    "address",
    "public_address",
    "roles",
    "ssh",
    "disk",
    "mac",
    "public_mac",
    "vip",
    "algorithm",
    "health_path",
    "primary",
    "virtual_router_id",
    "mode",
    "acme_email",
    "certificate",
    "root",
    "proxy_app",
    "port",
    "status_port",
    "package",
    "command",
    "env",
    "engine",
    "cluster_name",
    "sst_method",
    "write_mode",
    "bootstrap",
    "allow_unsafe_size",
    "suspect_timeout_ms",
    "databases",
    "users",
    "database",
    "allow",
    "from",
    "to",
    "proto",
    "reason",
    "egress",
    "service",
    "endpoint_secret",
    "agent",
    "endpoint_cidr",
    "web1",
    "db1",
    "lb1",
];

/// Values a spec might hold, valid and not.
const WORDS: &[&str] = &[
    "",
    "shop",
    "shop.example.com",
    "nixos-25.11",
    "x86_64-linux",
    "25.11",
    "raw-efi",
    "lb",
    "web",
    "app",
    "db",
    "10.10.0.0/24",
    "203.0.113.0/24",
    "0.0.0.0/0",
    "10.10.0.11",
    "203.0.113.10",
    "10.10.0.255",
    "10.10.0.0/33",
    "1.2.3.4.5",
    "roundrobin",
    "acme",
    "provided",
    "mariadb-galera",
    "rsync",
    "multi-primary",
    "single-primary",
    "colmena",
    "deploy-rs",
    "meta",
    "@web",
    "@nope",
    "tcp",
    "vrrp",
    "restricted",
    "open",
    "sumologic",
    "otelcol",
    "/health",
    "lb1",
    "web1",
    "db1",
    "ssh-ed25519 AAAA x",
    "/dev/sda",
    "ü\u{0}\t\"\\",
    "🦀",
];

fn toml_value() -> impl Strategy<Value = toml::Value> {
    let leaf = prop_oneof![
        prop::sample::select(WORDS).prop_map(|w| toml::Value::String(w.to_string())),
        ".{0,12}".prop_map(toml::Value::String),
        any::<i64>().prop_map(toml::Value::Integer),
        (0i64..70000).prop_map(toml::Value::Integer),
        any::<bool>().prop_map(toml::Value::Boolean),
        any::<f64>().prop_map(toml::Value::Float),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(toml::Value::Array),
            prop::collection::btree_map(key(), inner, 0..6).prop_map(|m| toml::Value::Table(m.into_iter().collect())),
        ]
    })
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![4 => prop::sample::select(KEYS).prop_map(String::from), 1 => "[a-z_.\" -]{1,10}"]
}

fn toml_document() -> impl Strategy<Value = String> {
    prop::collection::btree_map(key(), toml_value(), 0..10).prop_filter_map("not serializable as TOML", |table| {
        toml::to_string(&toml::Value::Table(table.into_iter().collect())).ok()
    })
}

// --- spec-shaped documents ----------------------------------------------------------

fn pick(options: &'static [&'static str]) -> impl Strategy<Value = &'static str> {
    prop::sample::select(options)
}

/// A `key = value` line, sometimes left out; mostly the first (valid) value, so that
/// many documents get past the parser into the resolver.
fn line(key: &'static str, values: &'static [&'static str]) -> impl Strategy<Value = String> {
    let value = prop_oneof![3 => Just(values[0]), 1 => pick(values)];
    prop::option::weighted(0.8, value).prop_map(move |v| v.map(|v| format!("{key} = {v}\n")).unwrap_or_default())
}

/// A `key = value` line that is always there (required keys).
fn required(key: &'static str, values: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![3 => Just(values[0]), 1 => pick(values)].prop_map(move |v| format!("{key} = {v}\n"))
}

fn host_name() -> impl Strategy<Value = &'static str> {
    pick(&["lb1", "lb2", "web1", "web2", "app1", "db1", "db2", "db3", "db4", "server1", "Bad_Name", "\"a b\""])
}

fn host_body() -> impl Strategy<Value = String> {
    (
        line(
            "address",
            &[
                "\"10.10.0.11\"",
                "\"10.10.0.12\"",
                "\"10.10.0.0\"",
                "\"10.10.0.255\"",
                "\"10.11.0.1\"",
                "\"10.10.0.21\"",
                "\"x\"",
            ],
        ),
        line("public_address", &["\"203.0.113.11\"", "\"203.0.113.10\"", "\"10.10.0.5\""]),
        required(
            "roles",
            &[
                "[\"lb\"]",
                "[\"web\"]",
                "[\"app\"]",
                "[\"db\"]",
                "[\"web\", \"app\", \"db\"]",
                "[]",
                "[\"web\", \"web\"]",
                "\"web\"",
                "[\"datbase\"]",
            ],
        ),
        line("ssh", &["\"root@10.10.0.11\"", "\"a b\"", "\"\""]),
    )
        .prop_map(|(address, public, roles, ssh)| format!("{address}{public}{roles}{ssh}\n"))
}

fn spec_document() -> impl Strategy<Value = String> {
    let head = (
        required("name", &["\"shop\"", "\"Shop!\"", "\"\"", "1"]),
        required("domain", &["\"shop.example.com\"", "\"localhost\"", "\"https://x/\""]),
        line("state_version", &["\"25.11\"", "\"25.10\""]),
        required(
            "private",
            &["\"10.10.0.0/24\"", "\"10.10.0.0/30\"", "\"10.10.0.0/32\"", "\"0.0.0.0/0\"", "\"10.10.0.0\""],
        ),
        required("public", &["\"203.0.113.0/24\"", "\"10.10.0.0/16\"", "\"203.0.113.0/31\""]),
        line("admin", &["[\"198.51.100.0/24\"]", "[\"0.0.0.0/0\"]", "[]"]),
        line("internal", &["true", "false", "\"yes\""]),
    );
    let sections = (
        required("vip", &["\"203.0.113.10\"", "\"203.0.113.11\"", "\"10.10.0.10\""]),
        line("primary", &["\"lb1\"", "\"lb9\"", "\"db1\""]),
        line("mode", &["\"acme\"", "\"provided\""]),
        line("acme_email", &["\"ops@shop.example.com\""]),
        line("port", &["443", "8080", "22", "3306", "0", "\"80\""]),
        line("write_mode", &["\"single-primary\"", "\"multi-primary\""]),
        line("bootstrap", &["\"db1\"", "\"db4\"", "\"web1\""]),
        line("allow_unsafe_size", &["true", "false"]),
        line("hosts", &["[\"web1\", \"db1\"]", "[\"nobody\"]", "[]"]),
    );
    let which = prop::collection::vec(any::<bool>(), 8);
    let hosts = prop::collection::btree_map(host_name(), host_body(), 0..12);
    (head, sections, hosts, which).prop_map(|(h, s, hosts, which)| {
        let mut doc = format!("[stack]\n{}{}{}\n[networks]\n{}{}{}\n[tls]\n{}\n", h.0, h.1, h.2, h.3, h.4, h.5, h.6);
        for (name, body) in hosts {
            doc.push_str(&format!("[hosts.{name}]\n{body}"));
        }
        let optional = [
            ("[lb]\n", format!("{}{}", s.0, s.1)),
            ("[lb.tls]\n", format!("{}{}", s.2, s.3)),
            ("[web]\n", s.4.clone()),
            ("[app]\n", s.4.clone()),
            ("[db]\n", format!("{}{}{}{}", s.5, s.1.replace("lb", "db"), s.6, s.7)),
            ("[firewall]\n", s.8.clone()),
            ("[monitoring]\n", s.8.clone()),
            ("[[firewall.allow]]\nfrom = \"198.51.100.0/24\"\nto = \"@web\"\nport = 9100\n", String::new()),
        ];
        for (present, (header, body)) in which.iter().zip(optional) {
            if *present {
                doc.push_str(header);
                doc.push_str(&body);
                doc.push('\n');
            }
        }
        doc
    })
}

// --- mutations of the default spec --------------------------------------------------

#[derive(Debug, Clone)]
enum Mutation {
    DeleteLine(usize),
    DuplicateLine(usize),
    SwapLines(usize, usize),
    ReplaceValue(usize, String),
    Truncate(usize),
    InsertByte(usize, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let token = prop_oneof![
        prop::sample::select(WORDS).prop_map(|w| format!("{w:?}")),
        prop::sample::select(
            &["1", "-1", "65536", "true", "[]", "{}", "[\"lb\"]", "\"", "[", "1.5", "nan", "\"\"\"", "x"][..]
        )
        .prop_map(String::from),
        "[ -~]{0,8}",
    ];
    prop_oneof![
        1 => any::<usize>().prop_map(Mutation::DeleteLine),
        1 => any::<usize>().prop_map(Mutation::DuplicateLine),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        3 => (any::<usize>(), token).prop_map(|(i, t)| Mutation::ReplaceValue(i, t)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::InsertByte(i, b)),
    ]
}

fn mutate(text: &str, mutations: &[Mutation]) -> String {
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let mut bytes_tail: Option<(usize, u8)> = None;
    let mut truncate: Option<usize> = None;
    for m in mutations {
        let n = lines.len().max(1);
        match m {
            Mutation::DeleteLine(i) if !lines.is_empty() => {
                lines.remove(i % n);
            }
            Mutation::DuplicateLine(i) if !lines.is_empty() => {
                let copy = lines[i % n].clone();
                lines.insert(i % n, copy);
            }
            Mutation::SwapLines(a, b) if !lines.is_empty() => lines.swap(a % n, b % n),
            Mutation::ReplaceValue(i, token) if !lines.is_empty() => {
                // Pick the i-th `key = value` line and replace its value.
                let assignments: Vec<usize> = (0..lines.len()).filter(|&l| lines[l].contains(" = ")).collect();
                if !assignments.is_empty() {
                    let l = assignments[i % assignments.len()];
                    let key = lines[l].split(" = ").next().unwrap().to_string();
                    lines[l] = format!("{key} = {token}");
                }
            }
            Mutation::Truncate(at) => truncate = Some(*at),
            Mutation::InsertByte(at, byte) => bytes_tail = Some((*at, *byte)),
            _ => {}
        }
    }
    let mut text = lines.join("\n") + "\n";
    if let Some((at, byte)) = bytes_tail {
        let mut bytes = text.into_bytes();
        bytes.insert(at % (bytes.len() + 1), byte);
        text = String::from_utf8_lossy(&bytes).into_owned();
    }
    if let Some(at) = truncate {
        let mut at = at % (text.len() + 1);
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        text.truncate(at);
    }
    text
}

proptest! {
    // No regression files in the tree: failures found here become named tests below.
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        check_contract(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn arbitrary_printable_text_never_panics(text in "[ -~\n\t\r\"'\\[\\]=#.ü]{0,300}") {
        check_contract(&text)?;
    }

    #[test]
    fn arbitrary_toml_documents_never_panic(doc in toml_document()) {
        check_contract(&doc)?;
    }

    #[test]
    fn spec_shaped_documents_never_panic(doc in spec_document()) {
        check_contract(&doc)?;
    }

    #[test]
    fn mutated_default_specs_never_panic(mutations in prop::collection::vec(mutation(), 1..5)) {
        check_contract(&mutate(DEFAULT_SPEC, &mutations))?;
    }

    #[test]
    fn mutated_whiteboard_specs_never_panic(mutations in prop::collection::vec(mutation(), 1..5)) {
        let whiteboard = include_str!("../examples/whiteboard.toml");
        check_contract(&mutate(whiteboard, &mutations))?;
    }
}

/// The generators must reach the resolver, not only the TOML parser: a property that
/// only ever sees syntax errors would prove little.
#[test]
fn generators_reach_every_stage() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut ok, mut resolve_errors) = (0, 0);
    for _ in 0..300 {
        let doc = spec_document().new_tree(&mut runner).unwrap().current();
        let source = SpecSource { name: "stack.toml".into(), text: doc.clone() };
        match compile(&source) {
            Ok(_) => ok += 1,
            Err(_) if nixstack::spec::parse(&source).is_ok() => resolve_errors += 1,
            Err(_) => {}
        }
        let mutated =
            mutate(DEFAULT_SPEC, &prop::collection::vec(mutation(), 1..2).new_tree(&mut runner).unwrap().current());
        if compile(&SpecSource { name: "stack.toml".into(), text: mutated }).is_ok() {
            ok += 1;
        }
    }
    eprintln!("generated: {ok} compiled, {resolve_errors} resolver errors");
    assert!(ok > 0, "no generated spec ever compiled");
    assert!(resolve_errors > 50, "only {resolve_errors} generated specs reached the resolver");
}

/// Regression: keepalived priorities were computed as `100 - 10 * i` in a u8, which
/// overflowed (a panic in debug builds) from the 27th load balancer on.
#[test]
fn many_load_balancers_do_not_overflow_priorities() {
    let mut doc = String::from(
        "[stack]\nname = \"big\"\ndomain = \"big.example.com\"\n[networks]\nprivate = \"10.10.0.0/16\"\npublic = \"203.0.113.0/24\"\n[lb]\nvip = \"203.0.113.5\"\n[lb.tls]\nacme_email = \"ops@big.example.com\"\n[web]\n[hosts.web1]\nroles = [\"web\"]\n",
    );
    for i in 0..40 {
        doc.push_str(&format!("[hosts.lb{i:02}]\nroles = [\"lb\"]\n"));
    }
    let topology = compile(&SpecSource { name: "big.toml".into(), text: doc }).unwrap_or_else(|e| panic!("{e}"));
    let lb = topology.lb.expect("lb tier");
    assert_eq!(lb.priorities.len(), 40);
    assert!(lb.priorities.values().all(|p| (1..=254).contains(p)), "{:?}", lb.priorities);
}

/// Regression: toml reports some errors with an empty message (a lone carriage return,
/// the end of the file right after `=`); the user still gets a message and a hint.
#[test]
fn toml_errors_without_a_message_get_one() {
    for (text, message) in [
        ("\r", "a carriage return without a newline"),
        ("[stack]\nname =", "a key without a value"),
        ("[stack]\nname = ", "a key without a value"),
        ("[stack]\r\nname =\r\n", "a key without a value"),
    ] {
        let errors = compile(&SpecSource { name: "stack.toml".into(), text: text.into() }).expect_err(text);
        let error = &errors.0[0];
        assert_eq!(error.message, message, "{text:?}");
        assert!(error.expected.is_some() && error.hint.is_some(), "{error}");
    }
}

/// Regression: an error at the `\r` of a CRLF line ending got a column past the snippet.
#[test]
fn errors_at_a_crlf_ending_stay_on_the_line() {
    let errors = compile(&SpecSource { name: "stack.toml".into(), text: "\"\\\r\n".into() }).unwrap_err();
    let error = &errors.0[0];
    assert_eq!((error.line, error.snippet.as_str()), (1, "\"\\"));
    assert!(error.column <= 3, "{error}");
}
