//! What the nixpkgs NixOS modules' systemd units do, as read in the nixpkgs source and
//! recorded in `data/nixpkgs-units.toml` (each entry names the file and commit it was read
//! from). The lab launches every daemon a nixpkgs module starts from this record, and tests
//! compare the lab's processes with it.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;

use super::Service;

/// The recorded units, embedded so the binary carries them.
pub const RECORD: &str = include_str!("../../data/nixpkgs-units.toml");

/// One unit as its nixpkgs module defines it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitRecord {
    pub unit: String,
    pub repo: String,
    pub path: String,
    pub commit: String,
    pub read_on: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// `""`: root (the unit sets no `User=`).
    pub user: String,
    pub group: String,
    pub dynamic_user: bool,
    pub supplementary_groups: Vec<String>,
    pub exec_start_pre_source: Vec<String>,
    pub exec_start_source: String,
    pub exec_reload_source: Vec<String>,
    /// ExecStartPre= as argv lists, symbolic parts as tokens (see [`Token`]).
    pub exec_start_pre: Vec<Vec<String>>,
    pub exec_start: Vec<String>,
    pub exec_reload: Vec<Vec<String>>,
    pub runtime_directory: Vec<String>,
    pub runtime_directory_mode: String,
    pub state_directory: Vec<String>,
    pub state_directory_mode: String,
    pub logs_directory: Vec<String>,
    pub logs_directory_mode: String,
    pub umask: String,
    pub environment: BTreeMap<String, String>,
    pub ambient_capabilities: Vec<String>,
    pub config_files: Vec<String>,
    pub build_checks: Vec<String>,
    pub notes: String,
}

impl UnitRecord {
    /// systemd's `UMask=` as a number (its default, 0022, when the unit sets none).
    pub fn umask(&self) -> u32 {
        parse_mode(&self.umask).unwrap_or(0o022)
    }
    pub fn runtime_directory_mode(&self) -> u32 {
        parse_mode(&self.runtime_directory_mode).unwrap_or(0o755)
    }
    pub fn state_directory_mode(&self) -> u32 {
        parse_mode(&self.state_directory_mode).unwrap_or(0o755)
    }
    pub fn logs_directory_mode(&self) -> u32 {
        parse_mode(&self.logs_directory_mode).unwrap_or(0o755)
    }
    /// The user the daemon runs as (`None`: root).
    pub fn user(&self) -> Option<&str> {
        (!self.user.is_empty()).then_some(self.user.as_str())
    }
}

fn parse_mode(text: &str) -> Option<u32> {
    (!text.is_empty()).then(|| u32::from_str_radix(text.trim_start_matches("0o"), 8).ok()).flatten()
}

/// All records, by table name.
pub fn all() -> &'static BTreeMap<String, UnitRecord> {
    static RECORDS: OnceLock<BTreeMap<String, UnitRecord>> = OnceLock::new();
    RECORDS.get_or_init(|| toml::from_str(RECORD).expect("data/nixpkgs-units.toml parses (a unit test holds it)"))
}

/// The record of the nixpkgs unit that runs `service` on NixOS; `None` for what nixstack's
/// own modules run (the app) or what is no process (nothing today).
pub fn record(service: Service) -> Option<&'static UnitRecord> {
    all().get(service.nixpkgs_module()?)
}

/// A symbolic part of a recorded command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token<'a> {
    /// `{exe}`: the service package's main program.
    Exe,
    /// `{pkgs.NAME}/rest`: another package's file.
    Package { name: &'a str, rest: &'a str },
    /// `{store:NAME}`: a file the module writes to the store.
    Store(&'a str),
    /// `{script:NAME}`: a shell script the module generates (preStart, ...).
    Script(&'a str),
    /// Anything else: a literal argument (systemd's `$VAR` expansions included).
    Literal(&'a str),
}

impl<'a> Token<'a> {
    pub fn parse(word: &'a str) -> Token<'a> {
        if word == "{exe}" {
            return Token::Exe;
        }
        if let Some(rest) = word.strip_prefix("{pkgs.") {
            if let Some((name, rest)) = rest.split_once('}') {
                return Token::Package { name, rest };
            }
        }
        if let Some(name) = word.strip_prefix("{store:").and_then(|r| r.strip_suffix('}')) {
            return Token::Store(name);
        }
        if let Some(name) = word.strip_prefix("{script:").and_then(|r| r.strip_suffix('}')) {
            return Token::Script(name);
        }
        Token::Literal(word)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_record_parses_and_names_the_commit_it_was_read_from() {
        let records = all();
        assert!(!records.is_empty());
        for (name, record) in records {
            assert!(record.repo.ends_with("/nixpkgs"), "{name}: {} is not a nixpkgs repository", record.repo);
            assert_eq!(record.commit.len(), 40, "{name}: a full commit hash");
            assert!(record.commit.chars().all(|c| c.is_ascii_hexdigit()), "{name}");
            assert!(
                record.path.starts_with("nixos/modules/") && record.path.ends_with(".nix"),
                "{name}: {}",
                record.path
            );
            assert!(record.unit.ends_with(".service"), "{name}");
        }
    }

    #[test]
    fn every_service_a_nixpkgs_module_starts_has_a_record() {
        for service in Service::ALL {
            if let Some(module) = service.nixpkgs_module() {
                assert!(all().contains_key(module), "no record for {module} in data/nixpkgs-units.toml");
            }
        }
    }

    #[test]
    fn tokens() {
        assert_eq!(Token::parse("{exe}"), Token::Exe);
        assert_eq!(Token::parse("{pkgs.coreutils}/bin/ln"), Token::Package { name: "coreutils", rest: "/bin/ln" });
        assert_eq!(Token::parse("{store:haproxyCfg}"), Token::Store("haproxyCfg"));
        assert_eq!(Token::parse("-Ws"), Token::Literal("-Ws"));
    }
}
