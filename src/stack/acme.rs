//! ACME on every load balancer: the lego command lines NixOS's `security.acme` runs for the
//! public certificate, and where the unit leaves the result, with a [`Layout`]'s paths.
//!
//! Every LB orders (and renews) its own certificate for the domain; Let's Encrypt validates
//! each order with HTTP-01 through the VIP, whichever LB holds it, and that LB's HAProxy passes
//! a challenge it cannot answer to its peers' lego (render::haproxy's `acme` backend). So every
//! LB ends up serving a valid certificate whichever holds the VIP, and a renewal succeeds from
//! whichever LB is up: neither depends on the other being up or on holding the VIP.
//!
//! The command lines are nixpkgs' (nixos/modules/security/acme/default.nix, `commonOpts`,
//! `runOpts`, `renewOpts`; data/nixpkgs-units.toml `[acme]` names the commit).

use std::path::PathBuf;

use super::Layout;
use crate::topology::{ports, Host, Topology};

/// Let's Encrypt's production directory: `security.acme.defaults.server`'s default.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// lego's `--key-type`: `security.acme.defaults.keyType`'s default.
pub const KEY_TYPE: &str = "ec256";

/// What the unit asks lego to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// `lego … run`: the first order (no certificate yet).
    Run,
    /// `lego … renew --no-random-sleep --days N`: renew when the certificate expires within N days.
    Renew { days: u32 },
}

/// lego's argv on `host` (an LB) for the stack's domain, against `server`. `state_dir` is
/// lego's `--path`: NixOS runs it in `/tmp` (BindPaths of /var/lib/acme/.lego/<cert>), as `.`;
/// the lab, which cannot bind per process, gives the directory itself.
pub fn lego_argv(topology: &Topology, host: &Host, layout: &Layout, server: &str, order: Order) -> Vec<String> {
    let domain = &topology.stack.domain;
    let email = topology.lb.as_ref().and_then(|lb| lb.acme_email.clone()).unwrap_or_default();
    let path = if layout.is_lab() { lego_dir(layout, domain).display().to_string() } else { ".".into() };
    let mut argv: Vec<String> = ["lego", "--accept-tos", "--path", &path, "--email", &email].map(String::from).into();
    argv.extend(["--http".into(), "--http.port".into(), listen_http(host)]);
    argv.extend(["--server".into(), server.into(), "--key-type".into(), KEY_TYPE.into(), "-d".into(), domain.clone()]);
    match order {
        Order::Run => argv.push("run".into()),
        Order::Renew { days } => {
            argv.extend(["renew".into(), "--no-random-sleep".into(), "--days".into(), days.to_string()])
        }
    }
    argv
}

/// `security.acme.certs.<domain>.listenHTTP`: lego's challenge server where every LB's
/// HAProxy can reach it.
pub fn listen_http(host: &Host) -> String {
    let (address, port) = challenge_address(host);
    format!("{address}:{port}")
}

/// Where `host`'s lego listens for HTTP-01 challenges while it orders: the address its peers
/// reach it at, the public one as for VRRP (topology::flows), else the private one. Only the
/// peer LBs may connect (the firewall's "acme challenge → peer lego" flow).
pub fn challenge_address(host: &Host) -> (std::net::Ipv4Addr, u16) {
    (host.public_address.unwrap_or(host.address), ports::ACME_HTTP01)
}

/// lego's working directory (NixOS: /var/lib/acme/.lego/<cert>, bound to /tmp).
pub fn lego_dir(layout: &Layout, domain: &str) -> PathBuf {
    layout.translate(&format!("/var/lib/acme/.lego/{domain}"))
}

/// Where lego writes the certificate (chain included) and key of an order.
pub fn lego_outputs(layout: &Layout, domain: &str) -> (PathBuf, PathBuf) {
    let certificates = lego_dir(layout, domain).join("certificates");
    (certificates.join(format!("{domain}.crt")), certificates.join(format!("{domain}.key")))
}

/// The unit's output directory (`/var/lib/acme/<cert>`: cert.pem, key.pem, fullchain.pem,
/// full.pem = key + fullchain, which HAProxy serves).
pub fn cert_dir(layout: &Layout, domain: &str) -> PathBuf {
    layout.translate(&format!("/var/lib/acme/{domain}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::SpecSource;
    use crate::topology::compile;

    #[test]
    fn lego_runs_as_nixpkgs_writes_it_with_the_challenge_on_the_private_address() {
        let topology = compile(&SpecSource::embedded_default()).unwrap();
        let lb2 = topology.host("lb2").unwrap();
        let argv = lego_argv(&topology, lb2, &Layout::nixos(), LETS_ENCRYPT, Order::Run);
        // nixpkgs: commonOpts = --accept-tos --path . --email … --http --http.port <listenHTTP>
        // --server … --key-type ec256 -d <domain>, then `run`.
        let expected = format!(
            "lego --accept-tos --path . --email ops@shop.example.com --http --http.port {}:8402 --server {LETS_ENCRYPT} --key-type ec256 -d shop.example.com run",
            lb2.public_address.unwrap()
        );
        assert_eq!(argv.join(" "), expected);
        let renew = lego_argv(&topology, lb2, &Layout::lab("lb2"), "https://pebble/dir", Order::Renew { days: 30 });
        assert!(renew.join(" ").ends_with("renew --no-random-sleep --days 30"), "{renew:?}");
        assert_eq!(renew[3], "/var/lib/nixstack-lab/lb2/state/acme/.lego/shop.example.com");
        assert_eq!(cert_dir(&Layout::nixos(), "shop.example.com"), PathBuf::from("/var/lib/acme/shop.example.com"));
    }
}
