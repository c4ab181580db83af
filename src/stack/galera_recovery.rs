//! Which Galera node may start the cluster again after every node stopped: one pure decision,
//! shared by `nixstack db recover` (NixOS hosts over SSH) and `nixstack lab up`.
//!
//! The rule is Galera's own ("Restarting the Cluster",
//! <https://galeracluster.com/library/documentation/restarting-cluster.html>): identify the node
//! with the most advanced state ID, start it as the first node of a new primary component, then
//! start the others as usual; they receive what they miss by IST or SST from it. The state ID is
//! `uuid:seqno` (the history and the last committed write set of it): `grastate.dat` holds it
//! after a clean shutdown; after a crash it holds `seqno: -1` and `mysqld --wsrep-recover` reads
//! the committed position from InnoDB and logs `WSREP: Recovered position: uuid:seqno`.
//! `safe_to_bootstrap` (Galera 3.19+, same page) marks the node that left the last primary
//! component last; Galera refuses `--wsrep-new-cluster` on a node without it, so the executor
//! writes `safe_to_bootstrap: 1` on the chosen node, and only there.
//!
//! `pc.recovery` (default on, <https://galeracluster.com/library/documentation/pc-recovery.html>,
//! MariaDB: <https://mariadb.com/docs/reference/mdb/wsrep_provider_options/pc.recovery/>) saves the
//! primary component in `gvwstate.dat` while a node runs (removed on a clean shutdown) and
//! restores it by itself once *every* member of that saved component is back in contact: that
//! is how nodes recover when one of them cannot be read now.
//!
//! The data rule: no acknowledged write is lost, and recovery never guesses. Whatever cannot be
//! decided from what was read is a [`Decision::Refuse`] that says what to do instead.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use thiserror::Error;

/// The all-zero uuid: a node that never joined a history (fresh datadir, or an SST that
/// cleared its state).
pub const NO_HISTORY: &str = "00000000-0000-0000-0000-000000000000";

/// A Galera state ID: the history (`uuid`) and how far along it the node committed (`seqno`,
/// `-1` when unknown).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Position {
    pub uuid: String,
    pub seqno: i64,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.uuid, self.seqno)
    }
}

/// `grastate.dat` as Galera writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GraState {
    pub uuid: String,
    /// `-1`: the node did not shut down cleanly (or is running); ask `--wsrep-recover`.
    pub seqno: i64,
    /// Absent in files older than Galera 3.19: read as `false`.
    pub safe_to_bootstrap: bool,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("grastate.dat has no `{0}:` line")]
    MissingField(&'static str),
    #[error("grastate.dat: `{field}: {value}` is not {expected}")]
    BadField { field: &'static str, value: String, expected: &'static str },
    #[error("`{0}` is not a Galera position (uuid:seqno)")]
    BadPosition(String),
    #[error("the state report has no `{0}` line (not the output of the gather script?)")]
    MissingReportLine(&'static str),
    #[error("the state report line `{0}` is not understood")]
    BadReportLine(String),
}

/// Parses `grastate.dat` (`# GALERA saved state`, `version:`, `uuid:`, `seqno:`,
/// `safe_to_bootstrap:`, maybe `cert_index:`).
pub fn parse_grastate(text: &str) -> Result<GraState, ParseError> {
    let field = |name: &'static str| {
        text.lines()
            .find_map(|line| line.trim().strip_prefix(name).and_then(|rest| rest.strip_prefix(':')).map(str::trim))
    };
    let uuid = field("uuid").ok_or(ParseError::MissingField("uuid"))?;
    if !is_uuid(uuid) {
        return Err(ParseError::BadField { field: "uuid", value: uuid.into(), expected: "a uuid" });
    }
    let seqno_text = field("seqno").ok_or(ParseError::MissingField("seqno"))?;
    let seqno = seqno_text.parse::<i64>().ok().filter(|s| *s >= -1).ok_or_else(|| ParseError::BadField {
        field: "seqno",
        value: seqno_text.into(),
        expected: "an integer ≥ -1",
    })?;
    let safe_to_bootstrap = match field("safe_to_bootstrap") {
        None | Some("0") => false,
        Some("1") => true,
        Some(other) => {
            return Err(ParseError::BadField { field: "safe_to_bootstrap", value: other.into(), expected: "0 or 1" })
        }
    };
    Ok(GraState { uuid: uuid.to_string(), seqno, safe_to_bootstrap })
}

/// The position `mysqld --wsrep-recover` logged, e.g.
/// `2026-12-03  5:37:29 0 [Note] WSREP: Recovered position: a0130a89-eedb-11f1-88b7-ea8a99582dce:5`
/// (MariaDB 10.11; a GTID may follow after a comma, which is not Galera's state ID and is
/// ignored). `Ok(None)`: no such line (`WSREP: disabled, skipping position recovery`, or the
/// server failed).
pub fn parse_recovered_position(log: &str) -> Result<Option<Position>, ParseError> {
    let Some(rest) =
        log.lines().rev().find_map(|line| line.split_once("WSREP: Recovered position:").map(|(_, rest)| rest.trim()))
    else {
        return Ok(None);
    };
    parse_position(rest).map(Some)
}

/// `uuid:seqno` (anything after a comma or whitespace ignored).
pub fn parse_position(text: &str) -> Result<Position, ParseError> {
    let head = text.split([',', ' ']).next().unwrap_or_default();
    let (uuid, seqno) = head.rsplit_once(':').ok_or_else(|| ParseError::BadPosition(text.into()))?;
    let seqno = seqno.parse::<i64>().ok().filter(|s| *s >= -1).ok_or_else(|| ParseError::BadPosition(text.into()))?;
    if !is_uuid(uuid) {
        return Err(ParseError::BadPosition(text.into()));
    }
    Ok(Position { uuid: uuid.to_string(), seqno })
}

fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups.iter().zip([8, 4, 4, 4, 12]).all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// What a running node's `SHOW GLOBAL STATUS` says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunningStatus {
    /// `wsrep_cluster_status`: `Primary`, `non-Primary` or `Disconnected`.
    pub cluster_status: String,
    pub cluster_size: u32,
    /// `wsrep_local_state_comment`: `Synced`, `Donor/Desynced`, `Joining`, …
    pub local_state: String,
    /// `wsrep_cluster_state_uuid` and `wsrep_last_committed`.
    pub position: Option<Position>,
}

impl RunningStatus {
    pub fn in_primary_component(&self) -> bool {
        self.cluster_status == "Primary"
    }
}

/// What was read from a stopped node's datadir.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoppedState {
    /// `None`: no grastate.dat (a datadir that never ran Galera, or none at all).
    pub grastate: Option<GraState>,
    /// What `--wsrep-recover` logged; `None` when it was not run or logged no position.
    pub recovered: Option<Position>,
    /// Why `--wsrep-recover` gave no position, when it was run and failed.
    pub recover_error: Option<String>,
    /// `gvwstate.dat` exists: the node saved a primary component for `pc.recovery`.
    pub gvwstate: bool,
}

/// One node, as read just now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum NodeState {
    /// mariadbd answers on its socket.
    Running(RunningStatus),
    Stopped(StoppedState),
    /// Nothing could be read (host down, SSH failed): it may hold the most advanced state.
    Unreachable {
        reason: String,
    },
}

/// The state of one node of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeReport {
    pub node: String,
    #[serde(flatten)]
    pub state: NodeState,
}

/// What is known about the cluster beyond its nodes' states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterFacts {
    /// The spec's bootstrap node: used only when no node holds any data (a first start).
    pub configured_bootstrap: String,
    /// `pc.recovery` is on (Galera's default; nixstack never turns it off).
    pub pc_recovery: bool,
    /// Nodes the operator declared lost for good (`nixstack db recover --without NODE`):
    /// decided without them.
    pub lost: Vec<String>,
}

/// Why a node was chosen to bootstrap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BootstrapReason {
    /// No node holds any data: the very first start, from the spec's bootstrap node.
    FirstStart,
    /// It holds the highest committed seqno of the cluster's history.
    MostAdvanced,
    /// Several nodes hold the same highest `uuid:seqno`, i.e. the same committed state: every
    /// node applies the write sets of one history in the same total order, so equal state IDs
    /// mean equal data and any of them is safe. Picked: the one Galera marked
    /// `safe_to_bootstrap`, else the spec's bootstrap node, else the first by name.
    TieOfEqualStates { tied: Vec<String> },
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// Start `node` with `--wsrep-new-cluster` (after marking it `safe_to_bootstrap: 1`), then
    /// the `others` normally.
    Bootstrap { node: String, position: Option<Position>, reason: BootstrapReason, others: Vec<String> },
    /// A primary component runs (`primary`): start the `stopped` nodes normally; they join it.
    Rejoin { primary: Vec<String>, stopped: Vec<String> },
    /// Nodes are missing, and every node that holds data saved its primary component:
    /// start the readable nodes normally and bring the `missing` back; `pc.recovery` restores
    /// the primary component by itself once all of its members are in contact again.
    WaitForPcRecovery { missing: Vec<String>, start: Vec<String> },
    /// Nothing is started.
    Refuse(Refusal),
}

/// Why recovery will not start anything, and what the operator can do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    pub reason: RefusalReason,
    /// Exact steps, one per line.
    pub instructions: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RefusalReason {
    /// Nodes could not be read: one of them may hold the most advanced state.
    Missing { nodes: Vec<String> },
    /// Nodes run without a primary component: their positions cannot be compared safely
    /// while they run, and bootstrapping another node would split the cluster.
    RunningWithoutPrimary { nodes: Vec<String> },
    /// A node's position is unknown: crashed (`seqno: -1`) and `--wsrep-recover` gave none.
    UnknownPosition { node: String, detail: String },
    /// `grastate.dat` and `--wsrep-recover` disagree on one node.
    Inconsistent { node: String, grastate: Position, recovered: Position },
    /// Nodes hold different histories (uuids): no seqno order exists between them.
    DivergentHistories { histories: BTreeMap<String, Vec<String>> },
    /// Every node is declared lost.
    NothingLeft,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reason = match &self.reason {
            RefusalReason::Missing { nodes } => {
                format!("cannot read {}: a missing node may hold writes no other node has", nodes.join(", "))
            }
            RefusalReason::RunningWithoutPrimary { nodes } => {
                format!("{} run without a primary component", nodes.join(", "))
            }
            RefusalReason::UnknownPosition { node, detail } => {
                format!("{node}'s committed position is unknown: {detail}")
            }
            RefusalReason::Inconsistent { node, grastate, recovered } => {
                format!("{node}: grastate.dat says {grastate}, --wsrep-recover says {recovered}")
            }
            RefusalReason::DivergentHistories { histories } => {
                let list: Vec<String> =
                    histories.iter().map(|(uuid, nodes)| format!("{uuid} on {}", nodes.join(", "))).collect();
                format!("the nodes hold different histories ({}): none of them contains the others", list.join("; "))
            }
            RefusalReason::NothingLeft => "every node is declared lost".into(),
        };
        write!(f, "recovery refused: {reason}\n{}", self.instructions)
    }
}

/// The decision for `nodes` (every node of the cluster, as read just now).
pub fn decide(nodes: &[NodeReport], facts: &ClusterFacts) -> Decision {
    let considered: Vec<&NodeReport> = nodes.iter().filter(|n| !facts.lost.contains(&n.node)).collect();
    if considered.is_empty() {
        return refuse(
            RefusalReason::NothingLeft,
            "Restore the cluster from a backup (`nixstack db restore`), or name fewer nodes with --without.".into(),
        );
    }
    // 1. A primary component runs: it is the cluster; joining it is what Galera does anyway, and
    //    bootstrapping anything else would split the cluster in two.
    let primary: Vec<String> = considered
        .iter()
        .filter(|n| matches!(&n.state, NodeState::Running(s) if s.in_primary_component()))
        .map(|n| n.node.clone())
        .collect();
    if !primary.is_empty() {
        let stopped =
            considered.iter().filter(|n| !matches!(n.state, NodeState::Running(_))).map(|n| n.node.clone()).collect();
        return Decision::Rejoin { primary, stopped };
    }
    let without_primary: Vec<String> =
        considered.iter().filter(|n| matches!(n.state, NodeState::Running(_))).map(|n| n.node.clone()).collect();
    if !without_primary.is_empty() {
        let list = without_primary.join(" ");
        return refuse(
            RefusalReason::RunningWithoutPrimary { nodes: without_primary },
            format!(
                "If they wait for pc.recovery (every member of the last primary component must be back), bring the other nodes up and wait.\n\
                 Otherwise stop mariadb on {list} (NixOS: `systemctl stop mysql`; lab: kill that node's mariadbd) and run `nixstack db recover` again:\n\
                 a stopped node's committed position can be read exactly (--wsrep-recover), a running one's cannot."
            ),
        );
    }
    // 2. Every remaining node is stopped or unreachable.
    let missing: Vec<String> = considered
        .iter()
        .filter(|n| matches!(n.state, NodeState::Unreachable { .. }))
        .map(|n| n.node.clone())
        .collect();
    let stopped: Vec<(&str, &StoppedState)> = considered
        .iter()
        .filter_map(|n| match &n.state {
            NodeState::Stopped(s) => Some((n.node.as_str(), s)),
            _ => None,
        })
        .collect();
    if !missing.is_empty() {
        let holding: Vec<&(&str, &StoppedState)> =
            stopped.iter().filter(|(_, s)| s.grastate.as_ref().is_some_and(|g| g.uuid != NO_HISTORY)).collect();
        if facts.pc_recovery && !holding.is_empty() && holding.iter().all(|(_, s)| s.gvwstate) {
            return Decision::WaitForPcRecovery {
                missing,
                start: stopped.iter().map(|(n, _)| n.to_string()).collect(),
            };
        }
        let list = missing.join(",");
        return refuse(
            RefusalReason::Missing { nodes: missing },
            format!(
                "Bring {list} back (power, network, SSH) and run `nixstack db recover` again.\n\
                 Only if {list} is lost for good: `nixstack db recover --without {list}`: writes acknowledged while only {list} was left in the cluster are then lost."
            ),
        );
    }
    // 3. Every node is stopped: compare committed positions.
    let mut positions: Vec<(&str, Position, bool)> = Vec::new();
    for (node, state) in &stopped {
        match committed_position(node, state) {
            Ok(Some(position)) => {
                positions.push((node, position, state.grastate.as_ref().is_some_and(|g| g.safe_to_bootstrap)))
            }
            Ok(None) => {}
            Err(refusal) => return Decision::Refuse(refusal),
        }
    }
    let others = |chosen: &str| {
        let mut others: Vec<String> = stopped.iter().map(|(n, _)| n.to_string()).filter(|n| n != chosen).collect();
        others.sort();
        others
    };
    if positions.is_empty() {
        // No node holds any write: nothing can be lost, the spec's node starts the cluster.
        let node = if stopped.iter().any(|(n, _)| *n == facts.configured_bootstrap) {
            facts.configured_bootstrap.clone()
        } else {
            stopped[0].0.to_string()
        };
        let others = others(&node);
        return Decision::Bootstrap { node, position: None, reason: BootstrapReason::FirstStart, others };
    }
    let mut histories: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (node, position, _) in &positions {
        histories.entry(position.uuid.clone()).or_default().push(node.to_string());
    }
    if histories.len() > 1 {
        let text: Vec<String> = positions.iter().map(|(n, p, _)| format!("  {n}: {p}")).collect();
        return refuse(
            RefusalReason::DivergentHistories { histories },
            format!(
                "The positions read:\n{}\n\
                 Decide which history to keep (look at the data on each), take a backup of every node's datadir, then\n\
                 keep that history's most advanced node and run `nixstack db recover --without <the nodes of the other histories>`;\n\
                 their datadirs are replaced by state transfer when they join.",
                text.join("\n")
            ),
        );
    }
    let best = positions.iter().map(|(_, p, _)| p.seqno).max().expect("positions is not empty");
    let tied: Vec<&(&str, Position, bool)> = positions.iter().filter(|(_, p, _)| p.seqno == best).collect();
    let chosen = tied
        .iter()
        .find(|(_, _, safe)| *safe)
        .or_else(|| tied.iter().find(|(n, _, _)| *n == facts.configured_bootstrap))
        .or_else(|| tied.iter().min_by_key(|(n, _, _)| *n))
        .expect("tied is not empty");
    let reason = if tied.len() > 1 {
        let mut names: Vec<String> = tied.iter().map(|(n, _, _)| n.to_string()).collect();
        names.sort();
        BootstrapReason::TieOfEqualStates { tied: names }
    } else {
        BootstrapReason::MostAdvanced
    };
    Decision::Bootstrap {
        node: chosen.0.to_string(),
        position: Some(chosen.1.clone()),
        reason,
        others: others(chosen.0),
    }
}

/// A stopped node's committed position; `None` when it holds no history (it can never be more
/// advanced than anyone: it has nothing).
fn committed_position(node: &str, state: &StoppedState) -> Result<Option<Position>, Refusal> {
    let Some(grastate) = &state.grastate else { return Ok(None) };
    let from_grastate = (grastate.seqno >= 0).then(|| Position { uuid: grastate.uuid.clone(), seqno: grastate.seqno });
    let recovered = state.recovered.clone().filter(|p| p.uuid != NO_HISTORY || p.seqno >= 0);
    match (from_grastate, recovered) {
        (Some(g), Some(r)) if g != r => Err(Refusal {
            reason: RefusalReason::Inconsistent { node: node.into(), grastate: g, recovered: r },
            instructions: format!(
                "Look at {node}'s datadir before anything else (back it up). If InnoDB's recovered position is the truth, write it into {node}'s grastate.dat (uuid and seqno lines) and run `nixstack db recover` again;\n\
                 if {node} cannot be trusted, `nixstack db recover --without {node}` (it rejoins by state transfer)."
            ),
        }),
        (Some(g), _) => Ok(Some(g)),
        (None, Some(r)) if r.seqno >= 0 => Ok(Some(r)),
        (None, _) if grastate.uuid == NO_HISTORY => Ok(None),
        (None, recovered) => {
            let detail = match (&recovered, &state.recover_error) {
                (Some(p), _) => format!("grastate.dat has seqno -1 and --wsrep-recover recovered {p} (no committed position: an interrupted state transfer?)"),
                (None, Some(error)) => format!("grastate.dat has seqno -1 and --wsrep-recover failed: {error}"),
                (None, None) => "grastate.dat has seqno -1 and --wsrep-recover was not run".into(),
            };
            Err(Refusal {
                reason: RefusalReason::UnknownPosition { node: node.into(), detail },
                instructions: format!(
                    "On {node}, with mariadb stopped, run `mysqld --defaults-file=/etc/my.cnf --user=mysql --wsrep-recover --disable-log-error --skip-ssl` and read its `WSREP: Recovered position:` line; fix what keeps it from starting and run `nixstack db recover` again.\n\
                     If {node} took part in a state transfer when it stopped, its data is incomplete: `nixstack db recover --without {node}` (it rejoins by state transfer)."
                ),
            })
        }
    }
}

fn refuse(reason: RefusalReason, instructions: String) -> Decision {
    Decision::Refuse(Refusal { reason, instructions })
}

// ---------------------------------------------------------------------------------------------
// Gathering a node's state: one shell script, run in a lab namespace or on a NixOS host.

/// Where a node's MariaDB lives and how its unit starts mysqld.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePaths {
    pub socket: String,
    pub datadir: String,
    /// The unit's mysqld command line (its program, `--defaults-file`, `--user`, `--datadir`,
    /// `--basedir`), each word a shell word: a literal (quoted here) or, on NixOS, `"$mysqld"`
    /// and `"$basedir"` that [`gather_script`] sets from the installed package.
    pub mysqld: Vec<ShellWord>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShellWord {
    Literal(String),
    /// Shell text that uses a variable the script's preamble sets (`"$mysqld"`,
    /// `--basedir="$basedir"`); built by [`node_paths`], never from input.
    Expanded(String),
}

impl ShellWord {
    fn render(&self) -> String {
        match self {
            ShellWord::Literal(text) => shell_quote(text),
            ShellWord::Expanded(text) => text.clone(),
        }
    }
}

/// The paths and mysqld command line of `host`'s MariaDB under `layout`: the unit's own
/// ExecStart words ([`super::launch`]), without `$_WSREP_NEW_CLUSTER`/`$_WSREP_START_POSITION`.
/// On NixOS the store paths are not known before the host is built: `{exe}` becomes the
/// `mysqld` the mysql module puts on the system PATH (`environment.systemPackages`), and
/// `{store:package}` its package, which is what the unit passes as `--basedir`.
pub fn node_paths(
    topology: &crate::topology::Topology,
    host: &crate::topology::Host,
    layout: &super::Layout,
) -> NodePaths {
    let launch =
        super::launch::launch(topology, host, layout, super::Service::Mariadb, false).expect("mariadbd is a daemon");
    let mysqld = launch
        .argv
        .iter()
        .map(|word| {
            if word == "{exe}" {
                ShellWord::Expanded("\"$mysqld\"".into())
            } else if word.contains("{store:package}") {
                ShellWord::Expanded(format!("{}\"$basedir\"", shell_quote(&word.replace("{store:package}", ""))))
            } else {
                ShellWord::Literal(word.clone())
            }
        })
        .collect();
    NodePaths {
        socket: layout.mysql_socket().display().to_string(),
        datadir: layout.mysql_datadir().display().to_string(),
        mysqld,
    }
}

fn shell_quote(text: &str) -> String {
    if !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c)) {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// The status variables the report carries for a running node.
const STATUS_VARIABLES: [&str; 5] = [
    "wsrep_cluster_status",
    "wsrep_cluster_size",
    "wsrep_local_state_comment",
    "wsrep_cluster_state_uuid",
    "wsrep_last_committed",
];

/// The script that reports one node's state on stdout (`running`/`stopped`, the status
/// variables, grastate.dat, gvwstate.dat's presence and `--wsrep-recover`'s position), read
/// back by [`parse_report`]. It runs `--wsrep-recover` only when mariadbd does not answer on its
/// socket and a grastate.dat exists: InnoDB's own lock makes it fail, not interfere, if a
/// mariadbd is in fact starting. Runs as root (mysqld drops to the unit's `--user`).
pub fn gather_script(paths: &NodePaths) -> String {
    let status_sql = format!(
        "SHOW GLOBAL STATUS WHERE Variable_name IN ({})",
        STATUS_VARIABLES.iter().map(|v| format!("'{v}'")).collect::<Vec<_>>().join(",")
    );
    let mysqld: Vec<String> = paths.mysqld.iter().map(ShellWord::render).collect();
    let needs_package = paths.mysqld.iter().any(|w| matches!(w, ShellWord::Expanded(_)));
    let preamble = if needs_package {
        // NixOS: the mysql module puts its package on the system PATH; the unit passes that
        // package as --basedir.
        "mysqld=$(readlink -f \"$(command -v mysqld)\") || { echo 'error=mysqld is not on PATH'; exit 0; }\nbasedir=${mysqld%/bin/*}\n"
    } else {
        ""
    };
    format!(
        r#"set -u
datadir={datadir}
{preamble}echo 'nixstack-galera-report=1'
if status=$(mariadb --no-defaults --user=root --batch --skip-column-names --connect-timeout=2 --socket={socket} -e {status_sql} 2>/dev/null); then
  echo 'mariadbd=running'
  printf '%s\n' "$status" | sed 's/\t/=/; s/^/status./'
  exit 0
fi
echo 'mariadbd=stopped'
if test -e "$datadir/gvwstate.dat"; then echo 'gvwstate=present'; else echo 'gvwstate=absent'; fi
test -e "$datadir/grastate.dat" || {{ echo 'grastate=absent'; exit 0; }}
sed 's/^/grastate: /' "$datadir/grastate.dat"
# --skip-ssl: recovery reads InnoDB only. Run from a root shell, `--user=mysql` takes the
# user's groups from /etc/group, not the unit's SupplementaryGroups: where the key is not
# readable that way mysqld aborts ("Failed to setup SSL"), as `lab chaos` found in the lab.
log=$({mysqld} --wsrep-recover --disable-log-error --skip-ssl 2>&1)
echo "recover_exit=$?"
printf '%s\n' "$log" | grep -a -e 'WSREP: Recovered position' -e 'skipping position recovery' -e '\[ERROR\]' | tail -n 5 | sed 's/^/recover: /'
"#,
        datadir = shell_quote(&paths.datadir),
        socket = shell_quote(&paths.socket),
        status_sql = shell_quote(&status_sql),
        mysqld = mysqld.join(" "),
    )
}

/// Reads the output of [`gather_script`].
pub fn parse_report(text: &str) -> Result<NodeState, ParseError> {
    if !text.lines().any(|l| l == "nixstack-galera-report=1") {
        return Err(ParseError::MissingReportLine("nixstack-galera-report=1"));
    }
    if let Some(error) = text.lines().find_map(|l| l.strip_prefix("error=")) {
        return Ok(NodeState::Unreachable { reason: error.to_string() });
    }
    let value = |key: &str| text.lines().find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')));
    match value("mariadbd") {
        Some("running") => {
            let status = |name: &str| value(&format!("status.{name}")).unwrap_or_default().to_string();
            let position = match (value("status.wsrep_cluster_state_uuid"), value("status.wsrep_last_committed")) {
                (Some(uuid), Some(seqno)) => parse_position(&format!("{uuid}:{seqno}")).ok(),
                _ => None,
            };
            Ok(NodeState::Running(RunningStatus {
                cluster_status: status("wsrep_cluster_status"),
                cluster_size: status("wsrep_cluster_size").parse().unwrap_or(0),
                local_state: status("wsrep_local_state_comment"),
                position,
            }))
        }
        Some("stopped") => {
            let gvwstate = value("gvwstate") == Some("present");
            if value("grastate") == Some("absent") {
                return Ok(NodeState::Stopped(StoppedState {
                    grastate: None,
                    recovered: None,
                    recover_error: None,
                    gvwstate,
                }));
            }
            let grastate_text: String =
                text.lines().filter_map(|l| l.strip_prefix("grastate: ")).map(|l| format!("{l}\n")).collect();
            let grastate = parse_grastate(&grastate_text)?;
            let recover_log: String =
                text.lines().filter_map(|l| l.strip_prefix("recover: ")).map(|l| format!("{l}\n")).collect();
            let recovered = parse_recovered_position(&recover_log)?;
            let recover_error = match (value("recover_exit"), &recovered) {
                (_, Some(_)) => None,
                (Some("0"), None) => {
                    Some(recover_log.lines().last().unwrap_or("mysqld logged no recovered position").to_string())
                }
                (Some(code), None) => Some(format!(
                    "mysqld --wsrep-recover exited with {code}: {}",
                    recover_log.lines().last().unwrap_or("no error logged")
                )),
                (None, None) => Some("--wsrep-recover did not run".into()),
            };
            Ok(NodeState::Stopped(StoppedState { grastate: Some(grastate), recovered, recover_error, gvwstate }))
        }
        Some(other) => Err(ParseError::BadReportLine(format!("mariadbd={other}"))),
        None => Err(ParseError::MissingReportLine("mariadbd=")),
    }
}

/// grastate.dat of the chosen node, ready for `--wsrep-new-cluster`:
/// - `safe_to_bootstrap: 1`: Galera refuses to bootstrap a node whose grastate.dat says 0 (it
///   cannot know it left last; the decision has established that this node may).
/// - after a crash (`seqno: -1`), the committed position `--wsrep-recover` read, as Galera's
///   "Restarting the Cluster" says to enter it. Measured here (MariaDB 10.11.19, galera-4 26.4,
///   tests/galera_recovery.rs): `--wsrep-new-cluster` on a `seqno: -1` grastate.dat without it
///   starts a *new* history (a new uuid) at seqno 1, so the other nodes could no longer join by
///   IST and the next recovery would see two histories.
///
/// `position` must be of the file's history; `None` (a first start) changes only the flag.
pub fn prepare_bootstrap_grastate(grastate: &str, position: Option<&Position>) -> String {
    let crashed = parse_grastate(grastate).is_ok_and(|g| g.seqno == -1 && position.is_some_and(|p| p.uuid == g.uuid));
    grastate
        .lines()
        .map(|line| {
            if line.trim() == "safe_to_bootstrap: 0" {
                "safe_to_bootstrap: 1".to_string()
            } else if crashed && line.trim_start().starts_with("seqno:") {
                format!("seqno:   {}", position.expect("crashed implies a position").seqno)
            } else {
                line.to_string()
            }
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The script that does [`prepare_bootstrap_grastate`] on the chosen node (NixOS, over SSH):
/// run there only.
pub fn prepare_bootstrap_script(datadir: &str, position: Option<&Position>) -> String {
    let file = shell_quote(&format!("{datadir}/grastate.dat"));
    let mut script =
        format!("set -eu\ntest -e {file} || exit 0\nsed -i 's/^safe_to_bootstrap: 0$/safe_to_bootstrap: 1/' {file}\n");
    if let Some(position) = position {
        // Only a crashed file of the same history gets the recovered seqno (uuid and seqno are
        // validated by the parser: hex, dashes and digits).
        script.push_str(&format!(
            "if grep -q '^uuid: *{uuid}$' {file} && grep -q '^seqno: *-1$' {file}; then sed -i 's/^seqno: *-1$/seqno:   {seqno}/' {file}; fi\n",
            uuid = position.uuid,
            seqno = position.seqno
        ));
    }
    script
}

/// On NixOS: start `mysql.service` as a new cluster. nixpkgs' unit execs
/// `mysqld … $_WSREP_NEW_CLUSTER $_WSREP_START_POSITION` and never sets either variable
/// (nixos/modules/services/databases/mysql.nix, data/nixpkgs-units.toml [mysql]); systemd's
/// manager environment provides it for this one start, as MariaDB's `galera_new_cluster` does.
pub const NIXOS_BOOTSTRAP_SCRIPT: &str = "set -u\nsystemctl set-environment _WSREP_NEW_CLUSTER=--wsrep-new-cluster\nsystemctl start mysql.service\nrc=$?\nsystemctl unset-environment _WSREP_NEW_CLUSTER\nexit $rc\n";

/// On NixOS: start `mysql.service` normally (it joins the primary component).
pub const NIXOS_START_SCRIPT: &str = "systemctl start mysql.service\n";

#[cfg(test)]
mod tests {
    use super::*;

    /// grastate.dat after a crash, from mariadbd 10.11.19 with galera-4 26.4 on this machine.
    const CRASHED_GRASTATE: &str = "# GALERA saved state\nversion: 2.1\nuuid:    a0130a89-eedb-11f1-88b7-ea8a99582dce\nseqno:   -1\nsafe_to_bootstrap: 1\n";
    /// The same node after a clean shutdown.
    const CLEAN_GRASTATE: &str = "# GALERA saved state\nversion: 2.1\nuuid:    a0130a89-eedb-11f1-88b7-ea8a99582dce\nseqno:   7\nsafe_to_bootstrap: 1\n";
    /// Galera's documentation example (restarting-cluster): no safe_to_bootstrap, a cert_index line.
    const OLD_GRASTATE: &str = "# GALERA saved state\nversion: 2.1\nuuid:    5ee99582-bb8d-11e2-b8e3-23de375c1d30\nseqno:   8204503945773\ncert_index:\n";
    /// `mariadbd --wsrep-recover --disable-log-error` after a SIGKILL, on this machine.
    const RECOVER_LOG: &str = "2026-12-03  5:37:29 0 [Note] Starting MariaDB 10.11.19-MariaDB-0+deb12u1 source revision 5843d8475120241667a7ce0f8a1abb6c9b43a273 server_uid unknown as process 25229\n\
2026-12-03  5:37:29 0 [Note] InnoDB: log sequence number 44404; transaction id 14\n\
2026-12-03  5:37:29 0 [Note] Server socket created on IP: '127.0.0.1', port: '33061'.\n\
2026-12-03  5:37:29 0 [Note] WSREP: Recovered position: a0130a89-eedb-11f1-88b7-ea8a99582dce:5\n";
    const UUID: &str = "a0130a89-eedb-11f1-88b7-ea8a99582dce";
    const OTHER_UUID: &str = "5ee99582-bb8d-11e2-b8e3-23de375c1d30";

    #[test]
    fn real_grastate_files_parse() {
        assert_eq!(
            parse_grastate(CRASHED_GRASTATE).unwrap(),
            GraState { uuid: UUID.into(), seqno: -1, safe_to_bootstrap: true }
        );
        assert_eq!(parse_grastate(CLEAN_GRASTATE).unwrap().seqno, 7);
        let old = parse_grastate(OLD_GRASTATE).unwrap();
        assert_eq!((old.seqno, old.safe_to_bootstrap), (8204503945773, false));
    }

    #[test]
    fn broken_grastate_files_are_errors_not_guesses() {
        assert_eq!(parse_grastate("version: 2.1\nseqno: 3\n"), Err(ParseError::MissingField("uuid")));
        assert!(matches!(
            parse_grastate(&CLEAN_GRASTATE.replace("seqno:   7", "seqno:   x")),
            Err(ParseError::BadField { field: "seqno", .. })
        ));
        assert!(matches!(
            parse_grastate(&CLEAN_GRASTATE.replace("seqno:   7", "seqno:   -2")),
            Err(ParseError::BadField { field: "seqno", .. })
        ));
        assert!(matches!(
            parse_grastate(&CLEAN_GRASTATE.replace("safe_to_bootstrap: 1", "safe_to_bootstrap: yes")),
            Err(ParseError::BadField { .. })
        ));
        assert!(matches!(
            parse_grastate(&CLEAN_GRASTATE.replace(UUID, "not-a-uuid")),
            Err(ParseError::BadField { field: "uuid", .. })
        ));
    }

    #[test]
    fn the_real_recovered_position_line_parses() {
        assert_eq!(parse_recovered_position(RECOVER_LOG).unwrap(), Some(Position { uuid: UUID.into(), seqno: 5 }));
        // Galera's documentation example, and a GTID suffix.
        assert_eq!(
            parse_recovered_position(
                "130514 18:39:13 [Note] WSREP: Recovered position: 5ee99582-bb8d-11e2-b8e3-23de375c1d30:8204503945771"
            )
            .unwrap()
            .unwrap()
            .seqno,
            8204503945771
        );
        assert_eq!(
            parse_recovered_position(&format!("[Note] WSREP: Recovered position: {UUID}:12,0-1-12"))
                .unwrap()
                .unwrap()
                .seqno,
            12
        );
        assert_eq!(
            parse_recovered_position("2026-12-03  5:37:43 0 [Note] WSREP: disabled, skipping position recovery")
                .unwrap(),
            None
        );
        assert!(parse_recovered_position("WSREP: Recovered position: garbage").is_err());
    }

    fn stopped(node: &str, uuid: &str, grastate_seqno: i64, recovered: Option<i64>, safe: bool) -> NodeReport {
        NodeReport {
            node: node.into(),
            state: NodeState::Stopped(StoppedState {
                grastate: Some(GraState { uuid: uuid.into(), seqno: grastate_seqno, safe_to_bootstrap: safe }),
                recovered: recovered.map(|seqno| Position { uuid: uuid.into(), seqno }),
                recover_error: None,
                gvwstate: grastate_seqno == -1,
            }),
        }
    }

    fn empty(node: &str) -> NodeReport {
        NodeReport {
            node: node.into(),
            state: NodeState::Stopped(StoppedState {
                grastate: None,
                recovered: None,
                recover_error: None,
                gvwstate: false,
            }),
        }
    }

    fn running(node: &str, status: &str) -> NodeReport {
        NodeReport {
            node: node.into(),
            state: NodeState::Running(RunningStatus {
                cluster_status: status.into(),
                cluster_size: 2,
                local_state: "Synced".into(),
                position: None,
            }),
        }
    }

    fn unreachable(node: &str) -> NodeReport {
        NodeReport { node: node.into(), state: NodeState::Unreachable { reason: "ssh: connection refused".into() } }
    }

    fn facts() -> ClusterFacts {
        ClusterFacts { configured_bootstrap: "db1".into(), pc_recovery: true, lost: Vec::new() }
    }

    fn bootstrapped(decision: &Decision) -> (&str, &BootstrapReason) {
        match decision {
            Decision::Bootstrap { node, reason, .. } => (node, reason),
            other => panic!("expected a bootstrap, got {other:?}"),
        }
    }

    #[test]
    fn the_configured_node_that_died_first_is_not_chosen() {
        // The issue's case: db1 (the spec's bootstrap node) was killed first at seqno 40; db2
        // and db3 acknowledged writes up to 57 before they were killed.
        let nodes = [
            stopped("db1", UUID, -1, Some(40), true),
            stopped("db2", UUID, -1, Some(57), false),
            stopped("db3", UUID, -1, Some(55), false),
        ];
        let decision = decide(&nodes, &facts());
        assert_eq!(bootstrapped(&decision), ("db2", &BootstrapReason::MostAdvanced));
        let Decision::Bootstrap { position, others, .. } = &decision else { unreachable!() };
        assert_eq!(position.as_ref().unwrap().seqno, 57);
        assert_eq!(others, &["db1", "db3"]);
    }

    #[test]
    fn a_clean_shutdown_uses_grastate_seqnos() {
        let nodes = [
            stopped("db1", UUID, 10, None, false),
            stopped("db2", UUID, 12, None, true),
            stopped("db3", UUID, 11, None, false),
        ];
        assert_eq!(bootstrapped(&decide(&nodes, &facts())).0, "db2");
    }

    #[test]
    fn ties_of_equal_states_pick_deterministically() {
        // Safe to bootstrap first, whatever the order of the reports.
        let nodes = [
            stopped("db3", UUID, -1, Some(9), false),
            stopped("db2", UUID, -1, Some(9), true),
            stopped("db1", UUID, -1, Some(8), false),
        ];
        let decision = decide(&nodes, &facts());
        assert_eq!(
            bootstrapped(&decision),
            ("db2", &BootstrapReason::TieOfEqualStates { tied: vec!["db2".into(), "db3".into()] })
        );
        // Then the spec's bootstrap node, then the first name.
        let nodes = [
            stopped("db3", UUID, -1, Some(9), false),
            stopped("db1", UUID, -1, Some(9), false),
            stopped("db2", UUID, -1, Some(9), false),
        ];
        assert_eq!(bootstrapped(&decide(&nodes, &facts())).0, "db1");
        let nodes = [
            stopped("db3", UUID, -1, Some(9), false),
            stopped("db2", UUID, -1, Some(9), false),
            stopped("db1", UUID, -1, Some(3), false),
        ];
        assert_eq!(bootstrapped(&decide(&nodes, &facts())).0, "db2");
        let mut reversed = nodes.clone();
        reversed.reverse();
        assert_eq!(decide(&nodes, &facts()), decide(&reversed, &facts()));
    }

    #[test]
    fn a_missing_node_refuses_unless_declared_lost() {
        let nodes = [stopped("db1", UUID, 10, None, false), stopped("db2", UUID, 12, None, true), unreachable("db3")];
        let Decision::Refuse(refusal) = decide(&nodes, &facts()) else { panic!("must refuse") };
        assert_eq!(refusal.reason, RefusalReason::Missing { nodes: vec!["db3".into()] });
        assert!(refusal.to_string().contains("nixstack db recover --without db3"), "{refusal}");
        let lost = ClusterFacts { lost: vec!["db3".into()], ..facts() };
        let decision = decide(&nodes, &lost);
        assert_eq!(bootstrapped(&decision).0, "db2");
        let Decision::Bootstrap { others, .. } = decision else { unreachable!() };
        assert_eq!(others, ["db1"], "a lost node is not started");
    }

    #[test]
    fn a_missing_node_with_saved_primary_components_waits_for_pc_recovery() {
        let nodes =
            [stopped("db1", UUID, -1, Some(5), false), stopped("db2", UUID, -1, Some(7), false), unreachable("db3")];
        assert_eq!(
            decide(&nodes, &facts()),
            Decision::WaitForPcRecovery { missing: vec!["db3".into()], start: vec!["db1".into(), "db2".into()] }
        );
        // Not when pc.recovery is off.
        let off = ClusterFacts { pc_recovery: false, ..facts() };
        assert!(matches!(decide(&nodes, &off), Decision::Refuse(_)));
    }

    #[test]
    fn different_histories_refuse() {
        let nodes = [
            stopped("db1", UUID, 10, None, false),
            stopped("db2", OTHER_UUID, 99, None, true),
            stopped("db3", UUID, 11, None, false),
        ];
        let Decision::Refuse(refusal) = decide(&nodes, &facts()) else { panic!("must refuse") };
        let RefusalReason::DivergentHistories { histories } = &refusal.reason else { panic!("{refusal:?}") };
        assert_eq!(histories[UUID], ["db1", "db3"]);
        assert!(refusal.instructions.contains("db2:"), "{}", refusal.instructions);
    }

    #[test]
    fn a_running_primary_component_is_joined_never_bootstrapped() {
        let nodes = [running("db2", "Primary"), stopped("db1", UUID, -1, Some(99), true), running("db3", "Primary")];
        assert_eq!(
            decide(&nodes, &facts()),
            Decision::Rejoin { primary: vec!["db2".into(), "db3".into()], stopped: vec!["db1".into()] }
        );
        let nodes = [
            running("db2", "non-Primary"),
            stopped("db1", UUID, -1, Some(99), true),
            stopped("db3", UUID, 4, None, false),
        ];
        assert!(matches!(
            decide(&nodes, &facts()),
            Decision::Refuse(Refusal { reason: RefusalReason::RunningWithoutPrimary { .. }, .. })
        ));
    }

    #[test]
    fn a_crashed_node_without_a_recovered_position_refuses() {
        let mut nodes = vec![stopped("db1", UUID, 10, None, false), stopped("db2", UUID, -1, None, false)];
        let Decision::Refuse(refusal) = decide(&nodes, &facts()) else { panic!("must refuse") };
        assert!(matches!(refusal.reason, RefusalReason::UnknownPosition { ref node, .. } if node == "db2"));
        // Recovered -1 on a real history: an interrupted state transfer, not "nothing".
        nodes[1] = stopped("db2", UUID, -1, Some(-1), false);
        assert!(matches!(
            decide(&nodes, &facts()),
            Decision::Refuse(Refusal { reason: RefusalReason::UnknownPosition { .. }, .. })
        ));
    }

    #[test]
    fn grastate_and_innodb_disagreeing_refuses() {
        let nodes = [stopped("db1", UUID, 10, Some(12), false), stopped("db2", UUID, 9, None, false)];
        assert!(matches!(
            decide(&nodes, &facts()),
            Decision::Refuse(Refusal { reason: RefusalReason::Inconsistent { .. }, .. })
        ));
    }

    #[test]
    fn nodes_without_data_never_win_and_a_first_start_uses_the_spec() {
        let nodes = [empty("db1"), stopped("db2", UUID, -1, Some(3), false), empty("db3")];
        assert_eq!(bootstrapped(&decide(&nodes, &facts())), ("db2", &BootstrapReason::MostAdvanced));
        let fresh = NodeReport {
            node: "db3".into(),
            state: NodeState::Stopped(StoppedState {
                grastate: Some(GraState { uuid: NO_HISTORY.into(), seqno: -1, safe_to_bootstrap: false }),
                recovered: Some(Position { uuid: NO_HISTORY.into(), seqno: -1 }),
                recover_error: None,
                gvwstate: false,
            }),
        };
        let nodes = [empty("db2"), empty("db1"), fresh];
        assert_eq!(bootstrapped(&decide(&nodes, &facts())), ("db1", &BootstrapReason::FirstStart));
    }

    #[test]
    fn declaring_every_node_lost_refuses() {
        let nodes = [unreachable("db1")];
        let all = ClusterFacts { lost: vec!["db1".into()], ..facts() };
        assert!(matches!(decide(&nodes, &all), Decision::Refuse(Refusal { reason: RefusalReason::NothingLeft, .. })));
    }

    #[test]
    fn reports_parse_for_every_state() {
        let running = "nixstack-galera-report=1\nmariadbd=running\nstatus.wsrep_cluster_size=3\nstatus.wsrep_cluster_state_uuid=a0130a89-eedb-11f1-88b7-ea8a99582dce\nstatus.wsrep_cluster_status=Primary\nstatus.wsrep_last_committed=42\nstatus.wsrep_local_state_comment=Synced\n";
        let NodeState::Running(status) = parse_report(running).unwrap() else { panic!() };
        assert_eq!(
            (status.cluster_size, status.position.as_ref().unwrap().seqno, status.in_primary_component()),
            (3, 42, true)
        );
        let crashed = format!(
            "nixstack-galera-report=1\nmariadbd=stopped\ngvwstate=present\n{}recover_exit=0\nrecover: 2026-12-03  5:37:29 0 [Note] WSREP: Recovered position: {UUID}:5\n",
            CRASHED_GRASTATE.lines().map(|l| format!("grastate: {l}\n")).collect::<String>()
        );
        let NodeState::Stopped(state) = parse_report(&crashed).unwrap() else { panic!() };
        assert_eq!((state.grastate.unwrap().seqno, state.recovered.unwrap().seqno, state.gvwstate), (-1, 5, true));
        let failed = format!("nixstack-galera-report=1\nmariadbd=stopped\ngvwstate=absent\n{}recover_exit=1\nrecover: [ERROR] InnoDB: Unable to lock ./ibdata1 error: 11\n", CRASHED_GRASTATE.lines().map(|l| format!("grastate: {l}\n")).collect::<String>());
        let NodeState::Stopped(state) = parse_report(&failed).unwrap() else { panic!() };
        assert!(state.recover_error.unwrap().contains("Unable to lock"));
        assert!(matches!(
            parse_report("nixstack-galera-report=1\nmariadbd=stopped\ngvwstate=absent\ngrastate=absent\n").unwrap(),
            NodeState::Stopped(StoppedState { grastate: None, .. })
        ));
        assert!(parse_report("bash: mariadb: not found").is_err());
    }

    #[test]
    fn the_bootstrap_node_gets_the_flag_and_its_recovered_seqno() {
        let text = CRASHED_GRASTATE.replace("safe_to_bootstrap: 1", "safe_to_bootstrap: 0");
        let recovered = Position { uuid: UUID.into(), seqno: 5 };
        let prepared = parse_grastate(&prepare_bootstrap_grastate(&text, Some(&recovered))).unwrap();
        assert_eq!(prepared, GraState { uuid: UUID.into(), seqno: 5, safe_to_bootstrap: true });
        // A first start, a clean file, or another history's position: only the flag.
        assert_eq!(parse_grastate(&prepare_bootstrap_grastate(&text, None)).unwrap().seqno, -1);
        assert_eq!(parse_grastate(&prepare_bootstrap_grastate(CLEAN_GRASTATE, Some(&recovered))).unwrap().seqno, 7);
        let other = Position { uuid: OTHER_UUID.into(), seqno: 9 };
        assert_eq!(parse_grastate(&prepare_bootstrap_grastate(&text, Some(&other))).unwrap().seqno, -1);
        let script = prepare_bootstrap_script("/var/lib/mysql", Some(&recovered));
        assert!(
            script.contains("'s/^safe_to_bootstrap: 0$/safe_to_bootstrap: 1/' /var/lib/mysql/grastate.dat"),
            "{script}"
        );
        assert!(
            script.contains(&format!("grep -q '^uuid: *{UUID}$'")) && script.contains("'s/^seqno: *-1$/seqno:   5/'"),
            "{script}"
        );
    }

    #[test]
    fn the_bootstrap_script_does_what_the_text_function_does() {
        let dir = tempfile::tempdir().unwrap();
        let text = CRASHED_GRASTATE.replace("safe_to_bootstrap: 1", "safe_to_bootstrap: 0");
        std::fs::write(dir.path().join("grastate.dat"), &text).unwrap();
        let recovered = Position { uuid: UUID.into(), seqno: 5 };
        let status = std::process::Command::new("sh")
            .args(["-c", &prepare_bootstrap_script(&dir.path().display().to_string(), Some(&recovered))])
            .status()
            .unwrap();
        assert!(status.success());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("grastate.dat")).unwrap(),
            prepare_bootstrap_grastate(&text, Some(&recovered))
        );
    }

    #[test]
    fn the_gather_script_runs_the_units_mysqld_command_line() {
        use crate::spec::SpecSource;
        let topology = crate::topology::compile(&SpecSource::embedded_default()).unwrap();
        let db = topology.db.as_ref().unwrap();
        let host = topology.host(&db.hosts[0]).unwrap();
        let nixos = node_paths(&topology, host, &crate::stack::Layout::nixos());
        assert_eq!((nixos.socket.as_str(), nixos.datadir.as_str()), ("/run/mysqld/mysqld.sock", "/var/lib/mysql"));
        let script = gather_script(&nixos);
        assert!(
            script.contains("\"$mysqld\" --defaults-file=/etc/my.cnf --user=mysql --datadir=/var/lib/mysql --basedir=\"$basedir\" --wsrep-recover --disable-log-error --skip-ssl"),
            "{script}"
        );
        assert!(script.contains("command -v mysqld"));
        let lab = node_paths(&topology, host, &crate::stack::Layout::lab(&host.name));
        let script = gather_script(&lab);
        assert!(!script.contains("command -v mysqld"));
        assert!(script.contains("/usr/sbin/mariadbd --defaults-file="), "{script}");
        assert!(!script.contains("WSREP_NEW_CLUSTER"));
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        for script in [
            gather_script(&nixos),
            gather_script(&lab),
            NIXOS_BOOTSTRAP_SCRIPT.to_string(),
            prepare_bootstrap_script("/var/lib/mysql", None),
        ] {
            let status = std::process::Command::new("sh").args(["-n", "-c", &script]).status().unwrap();
            assert!(status.success(), "sh -n: {script}");
        }
    }
}
