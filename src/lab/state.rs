//! The lab's state file: every namespace, directory and process `lab up` created, recorded
//! before it is created, so that `lab down` removes exactly those, also after a crash.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::render::LAB_ROOT;

/// Where the state file lives.
pub fn state_path() -> PathBuf {
    Path::new(LAB_ROOT).join("state.json")
}

/// One thing `up` created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Resource {
    /// A directory `up` created (removed recursively by `down`).
    Dir { path: PathBuf },
    /// A network namespace (`/run/netns/<name>`).
    Netns { name: String },
    /// A system user or group the NixOS units run as that this machine lacked (`nginx`,
    /// `collectd`, the app's stand-in for its dynamic user, the secrets group).
    Account { account: AccountKind, name: String },
    /// A daemon. `pid` and `start_time` are filled right after the spawn; an entry without
    /// them means `up` stopped between recording and spawning (down then finds the process,
    /// if any, by its namespace).
    Process {
        host: String,
        daemon: String,
        netns: String,
        pid: Option<u32>,
        /// Start time in clock ticks since boot (`/proc/<pid>/stat` field 22): with the pid
        /// it identifies the process, so a recycled pid is never killed.
        start_time: Option<u64>,
    },
}

/// A user or a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    User,
    Group,
    /// `user:group`: the user made a member of the group (NixOS `extraGroups`).
    Membership,
}

/// The whole state file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    /// Where the spec came from (for messages).
    pub spec_name: String,
    /// The spec text the lab runs, so that `test`, `status` and `down` need no spec.
    pub spec_text: String,
    /// In creation order; `down` removes in reverse.
    pub created: Vec<Resource>,
}

impl State {
    /// Reads the state file; `None` when there is no lab.
    pub fn load() -> Result<Option<State>> {
        let path = state_path();
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let state = serde_json::from_str(&text)
                    .with_context(|| format!("corrupt lab state file {}", path.display()))?;
                Ok(Some(state))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Writes the state file atomically (temporary file, then rename), so a crash never
    /// leaves a half-written record.
    pub fn save(&self) -> Result<()> {
        let path = state_path();
        let temporary = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(self).expect("state serializes");
        std::fs::write(&temporary, text + "\n").with_context(|| format!("cannot write {}", temporary.display()))?;
        std::fs::rename(&temporary, &path).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(())
    }

    /// Records `resource` (unless already recorded) and saves, before it is created.
    pub fn record(&mut self, resource: Resource) -> Result<()> {
        if !self.created.contains(&resource) {
            self.created.push(resource);
            self.save()?;
        }
        Ok(())
    }

    /// Records that `daemon` of `host` is about to be (re)started: replaces a previous
    /// entry of the same daemon, so re-running `up` never duplicates entries.
    pub fn record_process_intent(&mut self, host: &str, daemon: &str, netns: &str) -> Result<()> {
        let entry = Resource::Process {
            host: host.into(),
            daemon: daemon.into(),
            netns: netns.into(),
            pid: None,
            start_time: None,
        };
        match self.process_index(host, daemon) {
            Some(index) => self.created[index] = entry,
            None => self.created.push(entry),
        }
        self.save()
    }

    /// Fills in the pid of a process recorded by [`State::record_process_intent`].
    pub fn record_process_started(&mut self, host: &str, daemon: &str, pid: u32, start_time: u64) -> Result<()> {
        if let Some(index) = self.process_index(host, daemon) {
            if let Resource::Process { pid: p, start_time: s, .. } = &mut self.created[index] {
                *p = Some(pid);
                *s = Some(start_time);
            }
        }
        self.save()
    }

    /// The recorded process of `daemon` on `host`.
    pub fn process(&self, host: &str, daemon: &str) -> Option<(u32, u64)> {
        self.process_index(host, daemon).and_then(|index| match &self.created[index] {
            Resource::Process { pid: Some(pid), start_time: Some(start), .. } => Some((*pid, *start)),
            _ => None,
        })
    }

    fn process_index(&self, host: &str, daemon: &str) -> Option<usize> {
        self.created
            .iter()
            .position(|r| matches!(r, Resource::Process { host: h, daemon: d, .. } if h == host && d == daemon))
    }

    /// Every recorded namespace.
    pub fn namespaces(&self) -> Vec<String> {
        self.created
            .iter()
            .filter_map(|r| match r {
                Resource::Netns { name } => Some(name.clone()),
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_intent_replaces_the_previous_entry_instead_of_duplicating() {
        let mut state = State::default();
        state.created.push(Resource::Process {
            host: "web1".into(),
            daemon: "nginx".into(),
            netns: "nxs-web1".into(),
            pid: Some(7),
            start_time: Some(9),
        });
        let index = state.process_index("web1", "nginx").unwrap();
        state.created[index] = Resource::Process {
            host: "web1".into(),
            daemon: "nginx".into(),
            netns: "nxs-web1".into(),
            pid: None,
            start_time: None,
        };
        assert_eq!(state.created.len(), 1);
        assert_eq!(state.process("web1", "nginx"), None);
    }

    #[test]
    fn resources_round_trip_through_json() {
        let state = State {
            spec_name: "x".into(),
            spec_text: "y".into(),
            created: vec![
                Resource::Dir { path: "/var/lib/nixstack-lab".into() },
                Resource::Netns { name: "nxs-sw".into() },
                Resource::Process {
                    host: "db1".into(),
                    daemon: "mariadbd".into(),
                    netns: "nxs-db1".into(),
                    pid: Some(1),
                    start_time: Some(2),
                },
            ],
        };
        let text = serde_json::to_string(&state).unwrap();
        let back: State = serde_json::from_str(&text).unwrap();
        assert_eq!(back.created, state.created);
        assert_eq!(back.namespaces(), vec!["nxs-sw".to_string()]);
    }
}
