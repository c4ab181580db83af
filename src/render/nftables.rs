//! nftables ruleset of a host: default drop in and forward, the Topology's allow-matrix
//! (one commented rule per allowed flow), SSH rate-limited per source, egress as the spec says.
//!
//! One table, `inet nixstack`. The ruleset first declares and deletes that table, then
//! recreates it, so `nft -f` replaces it atomically on every (re)load and leaves other
//! tables alone; NixOS installs the same text as `networking.nftables.ruleset`. A host the
//! spec leaves without a firewall gets only the declare-and-delete: loading it removes any
//! earlier nixstack rules and adds none.

use std::fmt::Write as _;
use std::net::Ipv6Addr;

use ipnet::Ipv4Net;

use crate::render::Layout;
use crate::spec::{EgressPolicy, Proto};
use crate::topology::{Allow, Host, HostFirewall, Topology};

/// The table every nixstack rule lives in.
pub const TABLE: &str = crate::stack::NFTABLES_TABLE;

/// IP protocol number of VRRP. Numeric, because protocol names resolve through
/// /etc/protocols, which the NixOS build-time check may not see.
const VRRP_PROTOCOL: u8 = 112;

/// Echo requests answered per second (with a burst), so a ping flood costs little.
const ECHO_PER_SECOND: u32 = 10;

/// nft refuses comments longer than this many bytes.
const COMMENT_MAX: usize = 128;

/// The nftables ruleset of `host`. The Layout does not matter to a ruleset (it names no
/// paths); it is taken so that every native config renders the same way.
pub fn render(topology: &Topology, host: &Host, _layout: &Layout) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# nftables ruleset of {}, rendered by nixstack from the stack spec; edit the spec, not this file.",
        host.name
    );
    out.push_str("# Declaring and then deleting the table makes every load replace it whole, atomically.\n");
    let _ = writeln!(out, "table inet {TABLE}");
    let _ = writeln!(out, "delete table inet {TABLE}");

    let firewall = match topology.firewall.get(&host.name) {
        Some(firewall) if firewall.enabled && host.firewall => firewall,
        _ => {
            out.push_str("\n# The spec leaves this host without a firewall (firewall.hosts does not list it):\n");
            out.push_str("# loading this file removes earlier nixstack rules and adds none.\n");
            return out;
        }
    };

    let _ = writeln!(out, "\ntable inet {TABLE} {{");
    for allow in firewall.inbound.iter().filter(|allow| allow.rate_limit.is_some()) {
        let _ = writeln!(
            out,
            "\t# Sources that opened {} connections lately, each with its own rate limit.",
            purpose(allow)
        );
        let _ = writeln!(out, "\tset {} {{", meter_name(allow));
        out.push_str("\t\ttype ipv4_addr\n");
        out.push_str("\t\tsize 65535\n");
        out.push_str("\t\tflags dynamic,timeout\n");
        out.push_str("\t\ttimeout 5m\n");
        out.push_str("\t}\n\n");
    }
    let vrrp6 = vrrp6_peers(topology, host);
    input_chain(&mut out, firewall, &vrrp6);
    out.push_str("\n\t# Hosts of the stack route nothing.\n");
    out.push_str("\tchain forward {\n");
    out.push_str("\t\ttype filter hook forward priority filter; policy drop;\n");
    out.push_str("\t}\n\n");
    output_chain(&mut out, firewall, &vrrp6);
    out.push_str("}\n");
    out
}

fn input_chain(out: &mut String, firewall: &HostFirewall, vrrp6: &[Ipv6Addr]) {
    out.push_str("\tchain input {\n");
    out.push_str("\t\ttype filter hook input priority filter; policy drop;\n");
    out.push_str("\t\tct state established,related accept\n");
    out.push_str("\t\tct state invalid drop\n");
    // By name, not index: NixOS checks the ruleset at build time in a sandbox kernel
    // (LKL) whose interfaces need not match the host's.
    out.push_str("\t\tiifname \"lo\" accept\n");
    out.push_str("\t\t# ICMP errors keep path MTU discovery and failures visible; echo is rate-limited.\n");
    out.push_str("\t\ticmp type { destination-unreachable, time-exceeded, parameter-problem } accept\n");
    let _ = writeln!(
        out,
        "\t\ticmp type echo-request limit rate {ECHO_PER_SECOND}/second burst {} packets accept",
        ECHO_PER_SECOND * 2
    );
    out.push_str(
        "\t\ticmpv6 type { destination-unreachable, packet-too-big, time-exceeded, parameter-problem } accept\n",
    );
    out.push_str("\t\t# Neighbour discovery only from the link itself (hop limit 255 cannot be forged from afar).\n");
    out.push_str(
        "\t\ticmpv6 type { nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } ip6 hoplimit 255 accept\n",
    );
    out.push_str("\t\ticmpv6 type { mld-listener-query, mld2-listener-report } ip6 saddr fe80::/10 accept\n");
    let _ = writeln!(
        out,
        "\t\ticmpv6 type echo-request limit rate {ECHO_PER_SECOND}/second burst {} packets accept",
        ECHO_PER_SECOND * 2
    );
    if !firewall.inbound.is_empty() {
        out.push_str("\t\t# The flows of the stack that end on this host.\n");
    }
    for allow in &firewall.inbound {
        let Some(matches) = rule_matches(allow, Direction::In) else {
            let _ = writeln!(out, "\t\t# {}: no peers, nothing allowed", purpose(allow));
            continue;
        };
        if let Some(per_minute) = allow.rate_limit {
            // New connections over the limit are dropped before the accept below sees them;
            // `update` keeps a busy source's entry (and its bucket) alive while it hammers.
            let _ = writeln!(
                out,
                "\t\t{matches} ct state new update @{} {{ ip saddr limit rate over {per_minute}/minute burst {per_minute} packets }} drop comment {}",
                meter_name(allow),
                comment(&format!("{}: over {per_minute} new connections a minute from one source", purpose(allow)))
            );
        }
        let _ = writeln!(out, "\t\t{matches} accept comment {}", comment(&purpose(allow)));
    }
    if let Some(peers) = address_set6(vrrp6) {
        let _ = writeln!(out, "\t\tip6 saddr {peers} meta l4proto {VRRP_PROTOCOL} accept comment \"vrrp (IPv6)\"");
    }
    out.push_str("\t}\n");
}

/// The other load balancers' public IPv6 addresses, the VRRPv3 peers of the VIP6 (the
/// flows are IPv4; the public side's IPv6 is this one instance and the client ports, whose
/// rules match both families already).
fn vrrp6_peers(topology: &Topology, host: &Host) -> Vec<Ipv6Addr> {
    let Some(lb) = topology.lb.as_ref().filter(|lb| lb.vip6.is_some() && lb.hosts.contains(&host.name)) else {
        return Vec::new();
    };
    let mut peers: Vec<Ipv6Addr> = lb
        .hosts
        .iter()
        .filter(|name| **name != host.name)
        .filter_map(|name| topology.host(name).and_then(|h| h.public_address6))
        .collect();
    peers.sort();
    peers
}

/// `{ a, b }` of IPv6 addresses, `None` when there are none.
fn address_set6(addresses: &[Ipv6Addr]) -> Option<String> {
    (!addresses.is_empty())
        .then(|| format!("{{ {} }}", addresses.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")))
}

fn output_chain(out: &mut String, firewall: &HostFirewall, vrrp6: &[Ipv6Addr]) {
    out.push_str("\tchain output {\n");
    match firewall.egress {
        EgressPolicy::Open => {
            out.push_str("\t\t# Egress is open in the spec (firewall.egress = \"open\").\n");
            out.push_str("\t\ttype filter hook output priority filter; policy accept;\n");
        }
        EgressPolicy::Restricted => {
            out.push_str("\t\t# Egress is restricted: only the flows that start on this host leave it.\n");
            out.push_str("\t\ttype filter hook output priority filter; policy drop;\n");
            out.push_str("\t\tct state established,related accept\n");
            out.push_str("\t\toifname \"lo\" accept\n");
            out.push_str("\t\ticmp type { destination-unreachable, time-exceeded, parameter-problem } accept\n");
            out.push_str("\t\ticmpv6 type { destination-unreachable, packet-too-big, time-exceeded, parameter-problem } accept\n");
            out.push_str("\t\ticmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert, mld2-listener-report } accept\n");
            for allow in &firewall.outbound {
                match rule_matches(allow, Direction::Out) {
                    Some(matches) => {
                        let _ = writeln!(out, "\t\t{matches} accept comment {}", comment(&purpose(allow)));
                    }
                    None => {
                        let _ = writeln!(out, "\t\t# {}: no peers, nothing allowed", purpose(allow));
                    }
                }
            }
            if let Some(peers) = address_set6(vrrp6) {
                let _ =
                    writeln!(out, "\t\tip6 daddr {peers} meta l4proto {VRRP_PROTOCOL} accept comment \"vrrp (IPv6)\"");
            }
        }
    }
    out.push_str("\t}\n");
}

#[derive(Clone, Copy)]
enum Direction {
    In,
    Out,
}

/// The match part of the rule for `allow` (addresses, protocol, port), or `None` when
/// it names no peer at all.
fn rule_matches(allow: &Allow, direction: Direction) -> Option<String> {
    let peers = minimal_peers(&allow.peers);
    if peers.is_empty() {
        return None;
    }
    let mut parts = Vec::new();
    if !peers.iter().any(|net| net.prefix_len() == 0) {
        let field = match direction {
            Direction::In => "saddr",
            Direction::Out => "daddr",
        };
        let list: Vec<String> = peers.iter().map(|net| net_text(*net)).collect();
        parts.push(format!("ip {field} {{ {} }}", list.join(", ")));
    }
    match allow.proto {
        Proto::Tcp => parts.push(format!("tcp dport {}", allow.port)),
        Proto::Udp => parts.push(format!("udp dport {}", allow.port)),
        Proto::Vrrp => parts.push(format!("ip protocol {VRRP_PROTOCOL}")),
    }
    Some(parts.join(" "))
}

/// The fewest networks covering exactly the peers, sorted: nft rejects an anonymous set
/// whose intervals overlap. `aggregate` sorts and merges in O(P log P).
fn minimal_peers(peers: &[Ipv4Net]) -> Vec<Ipv4Net> {
    let mut networks = Ipv4Net::aggregate(&peers.to_vec());
    networks.sort();
    networks
}

fn net_text(net: Ipv4Net) -> String {
    if net.prefix_len() == 32 {
        net.addr().to_string()
    } else {
        net.to_string()
    }
}

/// Name of the dynamic set that meters one rate-limited flow.
fn meter_name(allow: &Allow) -> String {
    format!("meter_{}_{}", allow.proto.as_str(), allow.port)
}

/// A quoted nft comment: no double quotes inside, at most [`COMMENT_MAX`] bytes.
fn comment(text: &str) -> String {
    let mut clean: String = text.chars().map(|c| if c == '"' || c.is_control() { '\'' } else { c }).collect();
    if clean.len() > COMMENT_MAX {
        let mut end = COMMENT_MAX;
        while !clean.is_char_boundary(end) {
            end -= 1;
        }
        clean.truncate(end);
    }
    format!("\"{clean}\"")
}

/// The flow's purpose, marked when no flow of the stack needs the rule.
fn purpose(allow: &Allow) -> String {
    if allow.needed {
        allow.purpose.clone()
    } else {
        format!("{} (extra rule, no flow from there needs it)", allow.purpose)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::SpecSource;
    use crate::topology::compile;

    fn topology(path: &str) -> Topology {
        let text = std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        compile(&SpecSource { name: path.into(), text }).unwrap()
    }

    fn ruleset(topology: &Topology, name: &str) -> String {
        render(topology, topology.host(name).unwrap(), &Layout::nixos())
    }

    #[test]
    fn web_host_allows_lbs_and_rate_limited_ssh_from_admin() {
        let topology = topology("examples/default.toml");
        let rules = ruleset(&topology, "web1");
        assert!(rules.contains("type filter hook input priority filter; policy drop;"), "{rules}");
        assert!(
            rules.contains("ip saddr { 10.10.0.11, 10.10.0.12 } tcp dport 443 accept comment \"lb → web\""),
            "{rules}"
        );
        assert!(rules.contains(
            "ip saddr { 198.51.100.0/24 } tcp dport 22 ct state new update @meter_tcp_22 { ip saddr limit rate over 10/minute burst 10 packets } drop"
        ));
        assert!(rules.contains("ip saddr { 198.51.100.0/24 } tcp dport 22 accept comment \"ssh\""));
        // The app tier's .31-.33 as the fewest networks: .31 and .32/31.
        assert!(
            rules.contains("ip daddr { 10.10.0.31, 10.10.0.32/31 } tcp dport 8080 accept comment \"web → app\""),
            "{rules}"
        );
        assert!(rules.contains("type filter hook output priority filter; policy drop;"));
    }

    #[test]
    fn lb_gets_vrrp_from_its_peer_and_the_internet_on_443() {
        let topology = topology("examples/default.toml");
        let rules = ruleset(&topology, "lb1");
        assert!(rules.contains("ip saddr { 203.0.113.12 } ip protocol 112 accept comment \"vrrp\""), "{rules}");
        assert!(rules.contains("ip daddr { 203.0.113.12 } ip protocol 112 accept comment \"vrrp\""), "{rules}");
        assert!(rules.contains("\t\ttcp dport 443 accept comment \"client https\""), "{rules}");
    }

    #[test]
    fn host_without_firewall_only_removes_the_table() {
        let topology = topology("examples/whiteboard.toml");
        let rules = ruleset(&topology, "lb");
        assert!(rules.contains("delete table inet nixstack"));
        assert!(!rules.contains("chain"), "{rules}");
    }

    #[test]
    fn overlapping_peers_collapse() {
        let peers: Vec<Ipv4Net> =
            ["10.0.0.0/8", "10.1.2.3/32", "192.168.0.1/32", "10.0.0.0/8"].iter().map(|s| s.parse().unwrap()).collect();
        assert_eq!(
            minimal_peers(&peers),
            vec!["10.0.0.0/8".parse::<Ipv4Net>().unwrap(), "192.168.0.1/32".parse().unwrap()]
        );
    }

    #[test]
    fn comments_are_quoted_safely_and_bounded() {
        assert_eq!(comment("a \"b\""), "\"a 'b'\"");
        let long = "→".repeat(100);
        assert!(comment(&long).len() <= COMMENT_MAX + 2);
    }
}
