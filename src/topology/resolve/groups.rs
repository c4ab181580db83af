//! `[groups.<name>]`: each group expanded into its hosts, before they join the explicit
//! hosts; every mistake in a group is reported once, at the group's table, not once per host.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::ops::Range;

use ipnet::Ipv4Net;

use super::{default_route, is_dns_label, Pool, Resolver};
use crate::spec::{GroupSpec, Located, RawSpec, Role, StackSection, GROUP_NUMBER};
use crate::topology::{Host, Networks};

/// A group's hosts, named, as the resolver allocates and builds them.
pub(super) struct ExpandedGroup<'s> {
    pub name: &'s Located<String>,
    pub spec: &'s GroupSpec,
    /// Where the group's private addresses come from: its `network`, else `networks.private`.
    pub network: Ipv4Net,
    /// Whether `network` is the group's own (allocated before the explicit hosts, so that
    /// they do not take its addresses).
    pub own_network: bool,
    /// Where errors about the group's hosts point: its name pattern, else its table's key.
    pub span: Range<usize>,
    /// The hosts' names, in number order.
    pub members: Vec<String>,
}

/// How many addresses [`Resolver::allocate`] can hand out in `network`.
fn allocatable(network: Ipv4Net) -> u64 {
    let size = 1u64 << (32 - u32::from(network.prefix_len()));
    let hosts = if network.prefix_len() >= 31 { size } else { size - 2 };
    hosts.saturating_sub(u64::from(super::reserved_for_routers(network)))
}

impl Resolver<'_> {
    /// Validates every group and names its hosts. A group with a mistake that leaves its
    /// hosts unknown (count 0, no roles, a bad pattern or network) is reported and left out;
    /// the checks that count tiers are then skipped, as for a dropped host.
    pub(super) fn expand_groups<'s>(&mut self, spec: &'s RawSpec, private: Ipv4Net) -> Vec<ExpandedGroup<'s>> {
        // Host names, each with where it was declared, for the collision errors.
        let mut taken: std::collections::BTreeMap<String, String> =
            spec.hosts.keys().map(|name| (name.value.clone(), format!("[hosts.{}]", name.value))).collect();
        let mut expanded = Vec::new();
        for (name, group) in &spec.groups {
            let span = group.name.as_ref().map_or_else(|| name.span.clone(), |pattern| pattern.span.clone());
            let Some(network) = self.check_group(name, group, private, &span) else {
                self.groups_incomplete = true;
                continue;
            };
            let mut members = Vec::new();
            let mut collision: Option<(String, String)> = None;
            for n in 1..=group.count.value {
                let host = group.host_name(name, n);
                match taken.get(&host) {
                    Some(other) => {
                        collision.get_or_insert_with(|| (host.clone(), other.clone()));
                    }
                    None => {
                        taken.insert(host.clone(), format!("group `{}`", name.value));
                        members.push(host);
                    }
                }
            }
            if let Some((host, other)) = collision {
                self.groups_incomplete = true;
                self.error(span.clone(), format!("group `{}` names a host `{host}`, as {other} does", name.value))
                    .expected("host names unique across [hosts] and every group")
                    .hint(format!(
                        "give the group another pattern, e.g. name = \"{}-{GROUP_NUMBER}\", or rename the other host",
                        name.value
                    ));
            }
            let own_network = group.network.is_some();
            expanded.push(ExpandedGroup { name, spec: group, network, own_network, span, members });
        }
        expanded
    }

    /// The network a group's addresses come from, or `None` (reported) when the group's
    /// hosts cannot be known.
    fn check_group(
        &mut self,
        name: &Located<String>,
        group: &GroupSpec,
        private: Ipv4Net,
        span: &Range<usize>,
    ) -> Option<Ipv4Net> {
        let mut valid = true;
        if group.count.value == 0 {
            self.error(group.count.span.clone(), format!("group `{}` has count 0", name.value))
                .expected("a count of at least 1")
                .hint("remove the group, or give it hosts, e.g. count = 3");
            valid = false;
        }
        // A list emptied by dropping its unknown roles was not written empty.
        if group.roles.value.is_empty() && self.kept(&[&format!("groups.{}.roles", name.value)]) {
            self.error(group.roles.span.clone(), format!("group `{}` has no roles", name.value))
                .expected("at least one of \"lb\", \"web\", \"app\", \"db\"")
                .hint("remove the group or give it a role");
            valid = false;
        } else if group.roles.value.is_empty() {
            valid = false;
        }
        let mut seen = BTreeSet::new();
        for role in &group.roles.value {
            if !seen.insert(role.value) {
                self.error(role.span.clone(), format!("role `{}` listed twice in group `{}`", role.value, name.value))
                    .expected("each role once")
                    .hint("remove the repeated role");
            }
        }
        let pattern = group.pattern(name);
        if !pattern.contains(GROUP_NUMBER) {
            self.error(
                span.clone(),
                format!("name pattern `{pattern}` of group `{}` has no `{GROUP_NUMBER}`", name.value),
            )
            .expected(format!("a pattern with `{GROUP_NUMBER}`, e.g. \"{}{GROUP_NUMBER}\"", name.value))
            .hint(format!("`{GROUP_NUMBER}` becomes 1, 2, … count: every host of a group needs its own name"));
            valid = false;
        } else if group.count.value > 0 {
            // The longest name is the last one; a pattern that makes one name bad makes them all bad.
            let last = group.host_name(name, group.count.value);
            if !is_dns_label(&group.host_name(name, 1)) || !is_dns_label(&last) {
                self.error(
                    span.clone(),
                    format!("group `{}` names its hosts like `{last}`, which is not a valid hostname", name.value),
                )
                .expected("a pattern that gives DNS labels: lowercase letters, digits and `-`, starting with a letter, at most 63 characters")
                .hint(format!("e.g. name = \"web{GROUP_NUMBER}\"; NixOS networking.hostName must be a DNS label"));
                valid = false;
            }
        }
        if let Some(disk) = &group.disk {
            if !disk.starts_with("/dev/") {
                self.error(disk.span.clone(), format!("disk `{}` is not a device path", disk.value))
                    .expected("a whole-disk device such as \"/dev/sda\" or \"/dev/disk/by-id/...\"")
                    .hint("disko partitions and formats this device on `nixstack install`");
            }
        }
        if let Some(channel) = &group.channel {
            self.check_channel(channel);
        }
        if let Some(system) = &group.system {
            self.check_system(system);
        }
        let network = match &group.network {
            None => private,
            Some(network) => {
                let inside = private.contains(&network.value.network()) && private.contains(&network.value.broadcast());
                if !inside {
                    self.error(
                        network.span.clone(),
                        format!(
                            "network {} of group `{}` is not inside networks.private {private}",
                            network.value, name.value
                        ),
                    )
                    .expected(format!("a network inside {private}"))
                    .hint("a group's network is the part of networks.private its addresses come from");
                    return None;
                }
                network.value.trunc()
            }
        };
        let room = allocatable(network);
        if valid && u64::from(group.count.value) > room {
            let (span, key) = match &group.network {
                Some(n) => (n.span.clone(), format!("groups.{}.network", name.value)),
                None => (group.count.span.clone(), "networks.private".to_string()),
            };
            self.error(
                span,
                format!("group `{}` has {} hosts, but {network} has room for {room}", name.value, group.count.value),
            )
            .expected(format!("at most {room} hosts in {network}, or a larger network"))
            .hint(format!("widen {key} or lower the count; addresses are allocated from the 10th host address on in a /26 or larger"));
            valid = false;
        }
        valid.then_some(network)
    }

    /// Allocates the addresses of a group's hosts and builds them; a group the networks have
    /// no room left for is one error, not one per host.
    pub(super) fn group_hosts(
        &mut self,
        group: &ExpandedGroup<'_>,
        stack: &StackSection,
        networks: &Networks,
        private_pool: &mut Pool,
        public_pool: &mut Pool,
        hosts: &mut Vec<Host>,
    ) {
        let roles: Vec<Role> =
            group.spec.roles.value.iter().map(|r| r.value).collect::<BTreeSet<_>>().into_iter().collect();
        let mut short = Vec::new();
        for name in &group.members {
            let address = private_pool.next_free(group.network).unwrap_or_else(|| {
                short.push(("private", group.network));
                Ipv4Addr::UNSPECIFIED
            });
            let public_address = roles.contains(&Role::Lb).then(|| {
                public_pool.next_free(networks.public).unwrap_or_else(|| {
                    short.push(("public", networks.public));
                    Ipv4Addr::UNSPECIFIED
                })
            });
            hosts.push(Host {
                name: name.clone(),
                address,
                public_address,
                public_address6: None,
                roles: roles.clone(),
                ssh_target: format!("root@{address}"),
                disk: group.spec.disk.as_ref().map(|d| d.value.clone()),
                mac: None,
                public_mac: None,
                default_route: default_route(networks, public_address.is_some()),
                firewall: true,
                monitored: false,
                services: Vec::new(),
                group: Some(group.name.value.clone()),
                channel: group.spec.channel.as_ref().unwrap_or(&stack.channel).value.clone(),
                system: group.spec.system.as_ref().unwrap_or(&stack.system).value.clone(),
                host_key: None,
            });
        }
        for side in ["private", "public"] {
            let missing: Vec<Ipv4Net> = short.iter().filter(|(s, _)| *s == side).map(|(_, n)| *n).collect();
            let Some(network) = missing.first() else { continue };
            let key = if side == "public" {
                "networks.public".to_string()
            } else if group.own_network {
                format!("groups.{}.network", group.name.value)
            } else {
                "networks.private".to_string()
            };
            self.error(
                group.span.clone(),
                format!(
                    "no free {side} address left in {network} for {} of the {} hosts of group `{}`",
                    missing.len(),
                    group.members.len(),
                    group.name.value
                ),
            )
            .expected(format!("room in {key}: other hosts, the VIP and the gateways take addresses there too"))
            .hint(format!("widen {key} or lower the count"));
        }
    }
}
