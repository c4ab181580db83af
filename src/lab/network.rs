//! The lab network: the address plan ([`crate::stack::address_plan`], pure), applied with `ip`.

use anyhow::{bail, Result};

use super::cmd::Cmd;
use super::event::Reporter;
use super::netns;
use super::state::{Resource, State};
use crate::stack::address_plan::{Bridge, NetworkPlan, PRIVATE_IF, SWITCH};

/// Creates what is missing of `plan`; records each namespace in `state` before creating it.
pub fn apply(plan: &NetworkPlan, state: &mut State, reporter: &Reporter) -> Result<()> {
    ensure_netns(SWITCH, state, reporter)?;
    ip(SWITCH, &["link", "set", "lo", "up"])?;
    for bridge in [Bridge::Private, Bridge::Public] {
        if !link_exists(SWITCH, bridge.name()) {
            ip(SWITCH, &["link", "add", bridge.name(), "type", "bridge", "forward_delay", "0", "stp_state", "0"])?;
            reporter.created("bridge", format!("{SWITCH}/{}", bridge.name()));
        }
        ip(SWITCH, &["link", "set", bridge.name(), "up"])?;
    }
    for namespace in &plan.namespaces {
        ensure_netns(&namespace.name, state, reporter)?;
        ip(&namespace.name, &["link", "set", "lo", "up"])?;
        for link in &namespace.links {
            let inside = link_exists(&namespace.name, &link.ifname);
            let outside = link_exists(SWITCH, &link.switch_port);
            if !(inside && outside) {
                // Half a veth pair is left only by an interrupted run: replace it.
                if inside {
                    ip(&namespace.name, &["link", "delete", &link.ifname])?;
                }
                if outside {
                    ip(SWITCH, &["link", "delete", &link.switch_port])?;
                }
                ip(
                    SWITCH,
                    &[
                        "link",
                        "add",
                        &link.switch_port,
                        "type",
                        "veth",
                        "peer",
                        "name",
                        &link.ifname,
                        "netns",
                        &namespace.name,
                    ],
                )?;
                reporter.created("link", format!("{}/{} ↔ {SWITCH}/{}", namespace.name, link.ifname, link.switch_port));
            }
            ip(SWITCH, &["link", "set", &link.switch_port, "master", link.bridge.name(), "up"])?;
            ip(&namespace.name, &["addr", "replace", &link.address.to_string(), "dev", &link.ifname])?;
            if let Some(address6) = &link.address6 {
                // No duplicate address detection: the lab's addresses are planned, and a
                // tentative address cannot be bound for its first second.
                ip(&namespace.name, &["-6", "addr", "replace", &address6.to_string(), "dev", &link.ifname, "nodad"])?;
            }
            ip(&namespace.name, &["link", "set", &link.ifname, "up"])?;
        }
        for route in &namespace.onlink_routes {
            ip(&namespace.name, &["route", "replace", &route.to_string(), "dev", PRIVATE_IF, "scope", "link"])?;
        }
        if namespace.nonlocal_bind {
            Cmd::new("sysctl").args(["-q", "-w", "net.ipv4.ip_nonlocal_bind=1"]).netns(&namespace.name).run()?;
            if namespace.links.iter().any(|l| l.address6.is_some()) {
                Cmd::new("sysctl").args(["-q", "-w", "net.ipv6.ip_nonlocal_bind=1"]).netns(&namespace.name).run()?;
            }
        }
    }
    Ok(())
}

fn ensure_netns(name: &str, state: &mut State, reporter: &Reporter) -> Result<()> {
    if netns::exists(name) {
        if !state.created.contains(&Resource::Netns { name: name.into() }) {
            bail!("network namespace {name} exists but this lab did not create it; remove it (ip netns delete {name}) or run `nixstack lab down` from the lab that made it");
        }
        reporter.present("netns", name);
        return Ok(());
    }
    state.record(Resource::Netns { name: name.into() })?;
    netns::add(name)?;
    reporter.created("netns", name);
    Ok(())
}

fn link_exists(netns: &str, ifname: &str) -> bool {
    Cmd::new("ip").args(["-n", netns, "link", "show", "dev", ifname]).run().is_ok()
}

fn ip(netns: &str, args: &[&str]) -> Result<()> {
    Cmd::new("ip").args(["-n", netns]).args(args.iter().copied()).run()?;
    Ok(())
}
