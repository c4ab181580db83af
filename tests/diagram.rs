//! `nixstack diagram`: the SVG says what the Topology and the audit say (every drawn flow
//! marked plaintext or encrypted as its Topology flow is, every host with its firewall and
//! its findings), renders to PNG with a real SVG renderer (rsvg-convert), and is the same
//! bytes for the same spec.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use nixstack::audit::{self, Severity};
use nixstack::render::diagram;
use nixstack::topology::{Endpoint, Flow, Topology};

#[path = "common/examples.rs"]
mod examples;

const BIN: &str = env!("CARGO_BIN_EXE_nixstack");
const EXAMPLES: [&str; 2] = ["default", "whiteboard"];

/// One `<g ...>` of the SVG: its attributes (unescaped) and what it holds up to its `</g>`.
#[derive(Debug)]
struct Group {
    attributes: BTreeMap<String, String>,
    body: String,
}

impl Group {
    fn get(&self, name: &str) -> &str {
        self.attributes.get(name).map(String::as_str).unwrap_or("")
    }

    fn words(&self, name: &str) -> Vec<&str> {
        self.get(name).split_whitespace().collect()
    }
}

/// Every `<g>` with a `class`: the picture's hosts, flows and arrows (they do not nest).
fn groups(svg: &str) -> Vec<Group> {
    let mut found = Vec::new();
    let mut rest = svg;
    while let Some(start) = rest.find("<g ") {
        let tag_end = start + rest[start..].find('>').expect("tag closes");
        let tag = &rest[start + 3..tag_end];
        let body_end = tag_end + rest[tag_end..].find("</g>").unwrap_or(rest.len() - tag_end);
        let mut attributes = BTreeMap::new();
        let mut attrs = tag;
        while let Some(eq) = attrs.find("=\"") {
            let name = attrs[..eq].trim().to_string();
            let value_end = eq + 2 + attrs[eq + 2..].find('"').expect("attribute closes");
            attributes.insert(name, unescape(&attrs[eq + 2..value_end]));
            attrs = &attrs[value_end + 1..];
        }
        if attributes.contains_key("class") {
            found.push(Group { attributes, body: rest[tag_end..body_end].to_string() });
        }
        rest = &rest[tag_end..];
    }
    found
}

fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"").replace("&lt;", "<").replace("&gt;", ">").replace("&apos;", "'").replace("&amp;", "&")
}

/// The flows a whiteboard shows, stated here apart from the renderer: everything that
/// reaches a host of the stack, except SSH from the admin networks.
fn shown(flow: &Flow) -> bool {
    matches!(flow.to, Endpoint::Host(_)) && flow.from != Endpoint::Admin
}

fn line_of(flow: &Flow) -> String {
    if flow.port == 0 {
        format!("{} {}", flow.purpose, flow.proto.as_str())
    } else {
        format!("{} {}/{}", flow.purpose, flow.proto.as_str(), flow.port)
    }
}

/// The hosts (or `internet`) a flow comes from, a tier without the destination.
fn sources(topology: &Topology, flow: &Flow) -> Vec<String> {
    match &flow.from {
        Endpoint::Internet => vec!["internet".to_string()],
        Endpoint::Host(name) => vec![name.clone()],
        Endpoint::Tier(role) => {
            topology.tier_hosts(*role).iter().filter(|h| Endpoint::Host(h.to_string()) != flow.to).cloned().collect()
        }
        other => panic!("not a shown flow source: {other:?}"),
    }
}

fn render(name: &str) -> (Topology, String) {
    let topology = examples::spec(name);
    let findings = audit::audit(&topology);
    let svg = diagram::render(&topology, &findings);
    (topology, svg)
}

#[test]
fn whiteboard_marks_its_plaintext_hop() {
    let (topology, svg) = render("whiteboard");
    // From the Topology: the whiteboard terminates TLS at the LB, so the hop to the web tier
    // is a plaintext flow.
    let hops: Vec<&Flow> = topology.flows.iter().filter(|f| f.purpose == "lb → web").collect();
    assert!(!hops.is_empty() && hops.iter().all(|f| !f.encrypted), "the whiteboard's lb → web is plaintext: {hops:?}");
    let groups = groups(&svg);
    let boxes: Vec<&Group> = groups
        .iter()
        .filter(|g| g.words("class").contains(&"flow") && g.get("data-purposes").contains("lb → web"))
        .collect();
    assert!(!boxes.is_empty(), "a flow in the SVG carries lb → web");
    for group in boxes {
        assert!(group.words("class").contains(&"plaintext"), "lb → web drawn as {:?}", group.attributes);
        if group.body.contains("<path") {
            assert!(group.body.contains("stroke-dasharray"), "a plaintext arrow is dashed: {}", group.body);
        } else {
            assert!(group.body.contains("PLAINTEXT"), "the flow box says PLAINTEXT: {}", group.body);
        }
    }
}

#[test]
fn every_shown_flow_is_drawn_with_its_encryption() {
    for name in EXAMPLES {
        let (topology, svg) = render(name);
        let groups = groups(&svg);
        let boxes: Vec<&Group> =
            groups.iter().filter(|g| g.words("class").contains(&"flow") && !g.body.contains("<path")).collect();
        let mut n_shown = 0;
        for flow in topology.flows.iter().filter(|f| shown(f)) {
            n_shown += 1;
            let Endpoint::Host(to) = &flow.to else { unreachable!() };
            let line = line_of(flow);
            let lock = if flow.encrypted { "encrypted" } else { "plaintext" };
            let found = boxes.iter().find(|g| {
                g.get("data-purposes").split("; ").any(|l| l == line)
                    && g.words("data-to").contains(&to.as_str())
                    && sources(&topology, flow).iter().all(|s| g.words("data-from").contains(&s.as_str()))
            });
            let found = found.unwrap_or_else(|| panic!("{name}: no flow box for {flow:?}"));
            assert!(found.words("class").contains(&lock), "{name}: {flow:?} drawn as {:?}", found.attributes);
            // Its arrows carry the same flow id and the same marking.
            let arrows: Vec<&Group> = groups
                .iter()
                .filter(|g| g.get("data-flow") == found.get("data-flow") && g.body.contains("<path"))
                .collect();
            assert!(!arrows.is_empty(), "{name}: {flow:?} has arrows");
            for arrow in arrows {
                assert!(arrow.words("class").contains(&lock));
                assert_eq!(
                    arrow.body.contains("stroke-dasharray"),
                    !flow.encrypted,
                    "{name}: {flow:?}: {}",
                    arrow.body
                );
            }
        }
        assert!(n_shown > 0, "{name} has flows to draw");
        // Nothing is drawn that the Topology does not have: every box's lines are shown flows.
        let lines: Vec<String> = topology.flows.iter().filter(|f| shown(f)).map(line_of).collect();
        for group in &boxes {
            for line in group.get("data-purposes").split("; ") {
                assert!(lines.iter().any(|l| l == line), "{name}: {line} is no flow of the Topology");
            }
        }
    }
}

#[test]
fn every_host_is_drawn_with_its_firewall_and_findings() {
    for name in EXAMPLES {
        let (topology, svg) = render(name);
        let findings = audit::audit(&topology);
        let groups = groups(&svg);
        let hosts: BTreeMap<&str, &Group> =
            groups.iter().filter(|g| g.get("class") == "host").map(|g| (g.get("data-host"), g)).collect();
        assert_eq!(hosts.len(), topology.hosts.len(), "{name}: one box per host");
        for host in &topology.hosts {
            let group = hosts.get(host.name.as_str()).unwrap_or_else(|| panic!("{name}: {} drawn", host.name));
            assert_eq!(group.get("data-firewall"), host.firewall.to_string(), "{name}: {}", host.name);
            let label = if host.firewall { "firewall: default drop" } else { "NO FIREWALL" };
            assert!(group.body.contains(label), "{name}: {} says {label}", host.name);
            let mine: Vec<_> =
                findings.iter().filter(|f| f.severity != Severity::Info && f.hosts.contains(&host.name)).collect();
            for finding in &mine {
                assert!(
                    group.words("data-findings").contains(&finding.code),
                    "{name}: {} has {}",
                    host.name,
                    finding.code
                );
                assert!(
                    group.body.contains(&format!("! {}", finding.code)),
                    "{name}: {} shows {}",
                    host.name,
                    finding.code
                );
            }
            let worst = mine.iter().map(|f| f.severity).min().map_or("none", Severity::as_str);
            assert_eq!(group.get("data-finding"), worst, "{name}: {}", host.name);
        }
        if let Some(lb) = &topology.lb {
            let vip = groups.iter().find(|g| g.get("class") == "vip").expect("the VIP is drawn");
            assert_eq!(vip.get("data-vip"), lb.vip.to_string());
            let mut holders: Vec<&str> =
                groups.iter().filter(|g| g.get("class") == "vip-holder").map(|g| g.get("data-host")).collect();
            holders.sort();
            assert_eq!(
                holders,
                lb.hosts.iter().map(String::as_str).collect::<Vec<_>>(),
                "{name}: the VIP points at every LB"
            );
        }
    }
}

/// Width and height of a PNG, from its IHDR chunk.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
    assert_eq!(&png[12..16], b"IHDR");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&png[16..20]), be(&png[20..24]))
}

fn svg_size(svg: &str) -> (f64, f64) {
    let attribute = |name: &str| -> f64 {
        let start = svg.find(&format!(" {name}=\"")).expect("svg has a size") + name.len() + 3;
        svg[start..start + svg[start..].find('"').unwrap()].parse().unwrap()
    };
    (attribute("width"), attribute("height"))
}

#[test]
fn examples_render_to_png_with_rsvg() {
    let dir = tempfile::tempdir().unwrap();
    for name in EXAMPLES {
        let (_, svg) = render(name);
        let svg_path = dir.path().join(format!("{name}.svg"));
        let png_path = dir.path().join(format!("{name}.png"));
        std::fs::write(&svg_path, &svg).unwrap();
        let output = Command::new("rsvg-convert")
            .arg(&svg_path)
            .arg("-o")
            .arg(&png_path)
            .output()
            .unwrap_or_else(|e| panic!("rsvg-convert (librsvg2-bin, installed by scripts/setup): {e}"));
        assert!(output.status.success(), "{name}: rsvg-convert: {}", String::from_utf8_lossy(&output.stderr));
        let png = std::fs::read(&png_path).unwrap();
        let (width, height) = svg_size(&svg);
        assert_eq!(png_size(&png), (width.ceil() as u32, height.ceil() as u32), "{name}: the whole page is rendered");
        // A page of boxes, text and curves compresses to tens of kilobytes; an empty page to
        // a few hundred bytes.
        assert!(png.len() > 20_000, "{name}: the PNG has content ({} bytes)", png.len());
        // Keep the pictures for a look (CARGO_TARGET_TMPDIR is the crate's, not the system's).
        let keep = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("diagram-{name}.png"));
        std::fs::write(keep, &png).unwrap();
    }
}

#[test]
fn the_command_writes_the_same_bytes_each_run() {
    let dir = tempfile::tempdir().unwrap();
    let whiteboard = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/whiteboard.toml");
    let run = |args: &[&str]| {
        let output = Command::new(BIN).args(args).current_dir(dir.path()).output().unwrap();
        assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
        output.stdout
    };
    let spec = whiteboard.to_str().unwrap();
    run(&["diagram", spec, "-o", "first.svg"]);
    run(&["diagram", spec, "-o", "second.svg"]);
    let first = std::fs::read(dir.path().join("first.svg")).unwrap();
    assert_eq!(first, std::fs::read(dir.path().join("second.svg")).unwrap(), "two runs, two processes, one picture");
    assert_eq!(run(&["diagram", spec, "-o", "-"]), first, "-o - prints what -o writes");
    // No spec and no ./stack.toml: the embedded default, to the default path.
    run(&["diagram"]);
    let default = std::fs::read_to_string(dir.path().join("stack.svg")).unwrap();
    assert!(default.starts_with("<svg") && default.contains("class=\"host\""), "the default spec renders");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(".nixstack-"))
        .collect();
    assert!(leftovers.is_empty(), "no temporary file left behind: {leftovers:?}");
}
