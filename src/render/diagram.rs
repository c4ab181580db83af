//! The whiteboard as a picture (`nixstack diagram`): Topology + audit findings → SVG.
//!
//! What is drawn, and from where:
//! - one box per host (name, addresses, roles, whether a firewall guards it, the codes of
//!   the findings that name it), filled by its first role and bordered by its worst finding;
//! - the internet, and the virtual IP pointing at the load balancers that can hold it;
//! - one box per group of flows that share their sources, their destinations and whether
//!   they are encrypted, with an arrow from every source and to every destination: red and
//!   dashed for plaintext, green for encrypted. A group whose sources are its destinations
//!   (Galera, VRRP, co-located tiers) is a mesh: two-headed arrows to its members.
//! - the findings (the hosts they name marked on their boxes) and a legend.
//!
//! Positions and curves come from layout-rs (a layered layout like Graphviz `dot`); this
//! module says what the nodes and edges are, and [`Canvas`] writes layout-rs's drawing calls
//! down as an SVG document with the svg crate. Pure and deterministic: every collection is
//! sorted, nodes and edges are added in a fixed order, and the svg crate sorts attributes.

use std::collections::{BTreeMap, BTreeSet};

use layout::core::base::Orientation;
use layout::core::color::Color;
use layout::core::format::{ClipHandle, RenderBackend};
use layout::core::geometry::Point;
use layout::core::style::{LineStyleKind, StyleAttr};
use layout::std_shapes::shapes::{Arrow, Element, LineEndKind, ShapeKind};
use layout::topo::layout::VisualGraph;
use svg::node::element::path::Data;
use svg::node::element::{Definitions, Ellipse, Group, Line, Marker, Path, Polygon, Rectangle, TSpan, Text, Title};
use svg::Document;

use crate::audit::{Finding, Severity};
use crate::spec::Role;
use crate::topology::{Endpoint, Flow, Topology};

/// Text size in pixels, and the font: DejaVu ships with Debian and most desktops.
const FONT_SIZE: f64 = 14.;
const FONT: &str = "DejaVu Sans, Verdana, sans-serif";
/// The average advance of a character in [`FONT`], in ems: what a box's width is measured by.
const CHAR_WIDTH: f64 = 0.62;
const LINE_HEIGHT: f64 = 1.3;
/// Inside a box, around its text; and around the whole picture.
const PADDING: f64 = 10.;
const MARGIN: f64 = 20.;
/// How much of a finding's message its line in the findings box shows.
const FINDING_MESSAGE_CHARS: usize = 60;

const RED: &str = "#dc2626";
const GREEN: &str = "#15803d";
const ORANGE: &str = "#ea580c";
const BLUE: &str = "#1d4ed8";
const GREY: &str = "#374151";

/// One end of a drawn flow.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum End {
    Internet,
    Host(String),
}

impl End {
    fn name(&self) -> &str {
        match self {
            End::Internet => "internet",
            End::Host(name) => name,
        }
    }
}

/// Flows that share their sources, destinations and encryption: one box on the picture.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct GroupKey {
    /// Plaintext groups sort first, so they get the lowest ids.
    encrypted: bool,
    sources: BTreeSet<End>,
    destinations: BTreeSet<End>,
}

/// Whether the whiteboard draws `flow`: traffic that reaches a host of the stack from the
/// internet or from another host. SSH from the admin networks reaches every host, and the
/// hosts' own egress (NTP, DNS, monitoring, ACME renewal) leaves the stack: drawing them
/// would add an arrow per host and say nothing about the tiers, so the legend names them.
pub fn draws(flow: &Flow) -> bool {
    matches!(flow.to, Endpoint::Host(_))
        && matches!(flow.from, Endpoint::Internet | Endpoint::Host(_) | Endpoint::Tier(_))
}

/// What one flow says on its group's box: `purpose proto/port`.
fn flow_line(flow: &Flow) -> String {
    if flow.port == 0 {
        format!("{} {}", flow.purpose, flow.proto.as_str())
    } else {
        format!("{} {}/{}", flow.purpose, flow.proto.as_str(), flow.port)
    }
}

/// The drawn flows grouped by (purpose, port, protocol, encryption), as `nixstack check`
/// lists them, then merged by their ends: group → its lines.
fn flow_groups(topology: &Topology) -> BTreeMap<GroupKey, BTreeSet<String>> {
    // A flow from a tier comes from the tier's hosts except its destination (loopback).
    type Kind = (String, bool);
    let mut by_kind: BTreeMap<Kind, (BTreeSet<End>, BTreeSet<End>)> = BTreeMap::new();
    for flow in topology.flows.iter().filter(|flow| draws(flow)) {
        let Endpoint::Host(to) = &flow.to else { continue };
        let entry = by_kind.entry((flow_line(flow), flow.encrypted)).or_default();
        match &flow.from {
            Endpoint::Internet => {
                entry.0.insert(End::Internet);
            }
            Endpoint::Host(from) => {
                entry.0.insert(End::Host(from.clone()));
            }
            Endpoint::Tier(role) => {
                entry.0.extend(topology.tier_hosts(*role).iter().filter(|h| *h != to).map(|h| End::Host(h.clone())))
            }
            Endpoint::Admin | Endpoint::Monitoring => continue,
        }
        entry.1.insert(End::Host(to.clone()));
    }
    let mut groups: BTreeMap<GroupKey, BTreeSet<String>> = BTreeMap::new();
    for ((line, encrypted), (sources, destinations)) in by_kind {
        groups.entry(GroupKey { encrypted, sources, destinations }).or_default().insert(line);
    }
    groups
}

fn color(web: &str) -> Color {
    Color::from_name(web).expect("the palette holds valid web colors")
}

/// The size of a box for `label` in [`FONT`]: its longest line and its line count, plus
/// padding. layout-rs's own measure (`get_size_for_str`) gives every character a full em,
/// which makes boxes almost twice as wide as their text.
fn box_size(label: &str) -> Point {
    let columns = label.lines().map(|line| line.chars().count()).max().unwrap_or(1) as f64;
    let rows = label.lines().count().max(1) as f64;
    Point::new(columns * FONT_SIZE * CHAR_WIDTH + 2. * PADDING, rows * FONT_SIZE * LINE_HEIGHT + 2. * PADDING)
}

/// A box with `label`, drawn with the attributes `attributes` on its `<g>`.
fn node(canvas: &mut Canvas, label: &str, line: &str, width: usize, fill: &str, attributes: Attributes) -> Element {
    let look = StyleAttr::new(color(line), width, Some(color(fill)), 4, FONT_SIZE as usize);
    let key = canvas.keep(attributes);
    Element::create_with_properties(ShapeKind::new_box(label), look, Orientation::TopToBottom, box_size(label), key)
}

/// A flow arrow in its group's style.
fn flow_arrow(encrypted: bool, both_ways: bool, key: &str) -> Arrow {
    let (line, style) = if encrypted { (GREEN, LineStyleKind::Normal) } else { (RED, LineStyleKind::Dashed) };
    let start = if both_ways { LineEndKind::Arrow } else { LineEndKind::None };
    let look = StyleAttr::new(color(line), 2, None, 0, FONT_SIZE as usize);
    Arrow::with_properties(start, LineEndKind::Arrow, style, "", &look, key, &None, &None)
}

/// The fill of a host: its first role's colour, so each tier reads as one colour.
fn role_fill(roles: &[Role]) -> &'static str {
    match roles.first() {
        Some(Role::Lb) => "#dbeafe",
        Some(Role::Web) => "#dcfce7",
        Some(Role::App) => "#fef9c3",
        Some(Role::Db) => "#fce7f3",
        None => "#f3f4f6",
    }
}

/// The SVG of the whiteboard: hosts, the VIP, the flows between them marked plaintext or
/// encrypted, the firewalls, and `findings` highlighted on the hosts they name.
pub fn render(topology: &Topology, findings: &[Finding]) -> String {
    let mut graph = VisualGraph::new(Orientation::TopToBottom);
    let mut canvas = Canvas::default();

    // Worst finding and its codes, per host; an info finding is a fact, not a weakness.
    let mut worst: BTreeMap<&str, Severity> = BTreeMap::new();
    let mut codes: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for finding in findings.iter().filter(|f| f.severity != Severity::Info) {
        for host in &finding.hosts {
            let severity = worst.entry(host.as_str()).or_insert(finding.severity);
            *severity = (*severity).min(finding.severity);
            codes.entry(host.as_str()).or_default().insert(finding.code);
        }
    }

    let label = format!("internet\nclients of {}", topology.stack.domain);
    let internet = graph.add_node(node(&mut canvas, &label, GREY, 1, "#f3f4f6", vec![("class", "internet".into())]));

    let mut hosts = BTreeMap::new();
    for host in &topology.hosts {
        let roles: Vec<&str> = host.roles.iter().map(|r| r.as_str()).collect();
        let mut label = format!("{}\n{}", host.name, host.address);
        if let Some(public) = host.public_address {
            label.push_str(&format!(" · {public}"));
        }
        label.push_str(&format!("\n{}", roles.join(" + ")));
        label.push_str(if host.firewall { "\nfirewall: default drop" } else { "\nNO FIREWALL" });
        let host_codes: Vec<&str> = codes.get(host.name.as_str()).into_iter().flatten().copied().collect();
        for code in &host_codes {
            label.push_str(&format!("\n! {code}"));
        }
        let (line, width, severity) = match worst.get(host.name.as_str()) {
            Some(Severity::Error) => (RED, 4, "error"),
            Some(Severity::Warning) => (ORANGE, 3, "warning"),
            _ => (GREY, 1, "none"),
        };
        let attributes = vec![
            ("class", "host".to_string()),
            ("data-host", host.name.clone()),
            ("data-roles", roles.join(" ")),
            ("data-firewall", host.firewall.to_string()),
            ("data-finding", severity.to_string()),
            ("data-findings", host_codes.join(" ")),
        ];
        let element = node(&mut canvas, &label, line, width, role_fill(&host.roles), attributes);
        hosts.insert(host.name.clone(), graph.add_node(element));
    }

    // Clients reach the load balancers at the virtual IP, which keepalived moves among them:
    // the internet's flows end at the VIP, and the VIP points at every LB that may hold it.
    let vip = topology.lb.as_ref().map(|lb| {
        let label = format!("virtual IP {}\nprimary {} · VRRP id {}", lb.vip, lb.primary, lb.virtual_router_id);
        let attributes = vec![("class", "vip".to_string()), ("data-vip", lb.vip.to_string())];
        let handle = graph.add_node(node(&mut canvas, &label, BLUE, 2, "#eff6ff", attributes));
        let look = StyleAttr::new(color(BLUE), 2, None, 0, FONT_SIZE as usize);
        for host in &lb.hosts {
            let key = canvas.keep(vec![("class", "vip-holder".to_string()), ("data-host", host.clone())]);
            let arrow = Arrow::with_properties(
                LineEndKind::None,
                LineEndKind::Arrow,
                LineStyleKind::Dotted,
                "",
                &look,
                key,
                &None,
                &None,
            );
            graph.add_edge(arrow, handle, hosts[host]);
        }
        (handle, lb.hosts.iter().cloned().map(End::Host).collect::<BTreeSet<_>>())
    });

    for (id, (key, lines)) in flow_groups(topology).into_iter().enumerate() {
        let names = |ends: &BTreeSet<End>| ends.iter().map(End::name).collect::<Vec<_>>().join(" ");
        let lines: Vec<String> = lines.into_iter().collect();
        let attributes = vec![
            ("class", format!("flow {}", if key.encrypted { "encrypted" } else { "plaintext" })),
            ("data-flow", format!("f{id}")),
            ("data-from", names(&key.sources)),
            ("data-to", names(&key.destinations)),
            ("data-purposes", lines.join("; ")),
        ];
        let header = if key.encrypted { "ENCRYPTED (TLS)" } else { "PLAINTEXT" };
        let label = format!("{header}\n{}", lines.join("\n"));
        let (line, fill) = if key.encrypted { (GREEN, "#f0fdf4") } else { (RED, "#fef2f2") };
        let group = graph.add_node(node(&mut canvas, &label, line, 2, fill, attributes.clone()));
        // The arrows carry their box's attributes, so a reader of the SVG can tell every
        // arrow's flow and its encryption without the picture.
        let arrow = canvas.keep(attributes);
        let handle_of = |end: &End| match end {
            End::Internet => internet,
            End::Host(name) => hosts[name],
        };
        if key.sources == key.destinations {
            for end in &key.sources {
                graph.add_edge(flow_arrow(key.encrypted, true, &arrow), handle_of(end), group);
            }
            continue;
        }
        for end in &key.sources {
            graph.add_edge(flow_arrow(key.encrypted, false, &arrow), handle_of(end), group);
        }
        match &vip {
            Some((vip, holders)) if key.sources.contains(&End::Internet) && key.destinations == *holders => {
                graph.add_edge(flow_arrow(key.encrypted, false, &arrow), group, *vip);
            }
            _ => {
                for end in &key.destinations {
                    graph.add_edge(flow_arrow(key.encrypted, false, &arrow), group, handle_of(end));
                }
            }
        }
    }

    let label = findings_label(findings);
    graph.add_node(node(&mut canvas, &label, GREY, 1, "#ffffff", vec![("class", "findings".into())]));
    graph.add_node(node(&mut canvas, LEGEND, GREY, 1, "#ffffff", vec![("class", "legend".into())]));

    graph.do_it(false, false, false, &mut canvas);
    canvas.finish(&format!("nixstack diagram: stack {}", topology.stack.name))
}

const LEGEND: &str = "legend\n\
red dashed: plaintext flow\n\
green: encrypted flow\n\
two heads: among the members\n\
blue: the VIP, to each LB that may hold it\n\
red border: error finding\n\
orange border: warning\n\
not drawn: ssh from admin,\n\
ntp, dns, monitoring, acme\n\
(nixstack check lists them)";

/// The findings box: one line per finding, most severe first (the audit's order), its
/// message cut short; the hosts it names are marked on their boxes, and `nixstack audit`
/// has the whole text and the fix.
fn findings_label(findings: &[Finding]) -> String {
    let count = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
    let mut label = format!(
        "findings: {} error(s), {} warning(s), {} info",
        count(Severity::Error),
        count(Severity::Warning),
        count(Severity::Info)
    );
    for finding in findings {
        let mut message: String = finding.message.chars().take(FINDING_MESSAGE_CHARS).collect();
        if finding.message.chars().count() > FINDING_MESSAGE_CHARS {
            message.push('…');
        }
        label.push_str(&format!("\n{} {}: {message}", finding.severity.as_str(), finding.code));
    }
    label
}

/// The attributes of one drawn `<g>`, as (name, value).
type Attributes = Vec<(&'static str, String)>;

/// layout-rs's drawing calls, written down as an SVG document. layout-rs decides every
/// position and every curve; the canvas only records them. layout-rs's own `SVGWriter` is
/// not used: it grows the page by ten pixels per character of every label (a page 8000 px
/// tall for the findings box), and orders its font classes by a `HashMap`.
#[derive(Default)]
struct Canvas {
    /// What each element's `properties` key stands for (its index here).
    attributes: Vec<Attributes>,
    /// Every shape with its text, in drawing order.
    groups: Vec<Group>,
    /// The bottom-right corner of everything drawn, (x, y).
    extent: (f64, f64),
    /// The colours that need arrowhead markers.
    markers: BTreeSet<String>,
}

impl Canvas {
    /// Keeps `attributes` and returns the key to hand layout-rs as `properties`.
    fn keep(&mut self, attributes: Attributes) -> String {
        self.attributes.push(attributes);
        (self.attributes.len() - 1).to_string()
    }

    /// A `<g>` with the attributes `properties` stands for.
    fn group(&self, properties: Option<String>) -> Group {
        let kept = properties.and_then(|key| key.parse::<usize>().ok()).and_then(|i| self.attributes.get(i));
        kept.into_iter().flatten().fold(Group::new(), |group, (name, value)| group.set(*name, value.as_str()))
    }

    fn grow(&mut self, point: Point) {
        self.extent = (self.extent.0.max(point.x), self.extent.1.max(point.y));
    }

    /// Appends `node` to the last group (the shape a text belongs to), or to a new one.
    fn append(&mut self, node: impl Into<Box<dyn svg::Node>>) {
        match self.groups.last_mut() {
            Some(group) => svg::Node::append(group, node),
            None => self.groups.push(Group::new().add(node)),
        }
    }

    fn finish(self, title: &str) -> String {
        let width = px(self.extent.0 + 2. * MARGIN);
        let height = px(self.extent.1 + 2. * MARGIN);
        let mut definitions = Definitions::new();
        for color in &self.markers {
            for (end, points, reference) in [("end", "0 0, 10 3.5, 0 7", 10), ("start", "10 0, 10 7, 0 3.5", 0)] {
                let head = Polygon::new().set("points", points).set("fill", color.as_str());
                definitions = definitions.add(
                    Marker::new()
                        .set("id", marker_id(end, color))
                        .set("markerWidth", 10)
                        .set("markerHeight", 7)
                        .set("refX", reference)
                        .set("refY", 3.5)
                        .set("orient", "auto")
                        .add(head),
                );
            }
        }
        let background = Rectangle::new().set("width", "100%").set("height", "100%").set("fill", "#ffffff");
        let picture = self
            .groups
            .into_iter()
            .fold(Group::new().set("transform", format!("translate({MARGIN} {MARGIN})")), Group::add);
        let document = Document::new()
            .set("width", width)
            .set("height", height)
            .set("viewBox", (0, 0, width, height))
            .set("font-family", FONT)
            .set("font-size", FONT_SIZE)
            .add(Title::new(title))
            .add(definitions)
            .add(background)
            .add(picture);
        format!("{document}\n")
    }
}

/// A coordinate rounded to a hundredth of a pixel: enough for any screen, and short.
fn px(value: f64) -> f64 {
    (value * 100.).round() / 100.
}

/// `#rrggbb` of a colour (layout-rs writes `#rrggbbaa`; the palette is opaque).
fn web_color(color: Color) -> String {
    color.to_web_color().chars().take(7).collect()
}

fn marker_id(end: &str, color: &str) -> String {
    format!("{end}-{}", color.trim_start_matches('#'))
}

impl RenderBackend for Canvas {
    fn draw_rect(
        &mut self,
        xy: Point,
        size: Point,
        look: &StyleAttr,
        properties: Option<String>,
        _: Option<ClipHandle>,
    ) {
        self.grow(Point::new(xy.x + size.x, xy.y + size.y));
        let fill = look.fill_color.map_or("none".to_string(), web_color);
        let rectangle = Rectangle::new()
            .set("x", px(xy.x))
            .set("y", px(xy.y))
            .set("width", px(size.x))
            .set("height", px(size.y))
            .set("rx", look.rounded)
            .set("fill", fill)
            .set("stroke", web_color(look.line_color))
            .set("stroke-width", look.line_width);
        let group = self.group(properties).add(rectangle);
        self.groups.push(group);
    }

    fn draw_line(&mut self, start: Point, stop: Point, look: &StyleAttr, properties: Option<String>) {
        self.grow(start);
        self.grow(stop);
        let line = Line::new()
            .set("x1", px(start.x))
            .set("y1", px(start.y))
            .set("x2", px(stop.x))
            .set("y2", px(stop.y))
            .set("stroke", web_color(look.line_color))
            .set("stroke-width", look.line_width);
        let group = self.group(properties).add(line);
        self.groups.push(group);
    }

    fn draw_circle(&mut self, xy: Point, size: Point, look: &StyleAttr, properties: Option<String>) {
        self.grow(Point::new(xy.x + size.x / 2., xy.y + size.y / 2.));
        let fill = look.fill_color.map_or("none".to_string(), web_color);
        let ellipse = Ellipse::new()
            .set("cx", px(xy.x))
            .set("cy", px(xy.y))
            .set("rx", px(size.x / 2.))
            .set("ry", px(size.y / 2.))
            .set("fill", fill)
            .set("stroke", web_color(look.line_color))
            .set("stroke-width", look.line_width);
        let group = self.group(properties).add(ellipse);
        self.groups.push(group);
    }

    /// A label centred on `xy`, one `tspan` per line, the first in bold (a host's name, a
    /// flow box's encryption, a box's title).
    fn draw_text(&mut self, xy: Point, text: &str, _: &StyleAttr) {
        let lines: Vec<&str> = text.lines().collect();
        let step = FONT_SIZE * LINE_HEIGHT;
        let top = xy.y - step * (lines.len().saturating_sub(1) as f64) / 2.;
        let mut label = Text::new("").set("text-anchor", "middle").set("dominant-baseline", "central");
        for (i, line) in lines.iter().enumerate() {
            let mut span = TSpan::new(*line).set("x", px(xy.x)).set("y", px(top + step * i as f64));
            if i == 0 {
                span = span.set("font-weight", "bold");
            }
            label = label.add(span);
        }
        self.append(label);
    }

    /// An edge: layout-rs's path is the exit vector of the first point, then the entry
    /// vector of every following one, i.e. one cubic Bézier and then smooth continuations.
    /// The picture gives its arrows no text (the flow boxes carry it).
    fn draw_arrow(
        &mut self,
        path: &[(Point, Point)],
        dashed: bool,
        head: (bool, bool),
        look: &StyleAttr,
        properties: Option<String>,
        _: &str,
    ) {
        let [first, second, rest @ ..] = path else { return };
        for (a, b) in path {
            self.grow(*a);
            self.grow(*b);
        }
        let point = |p: Point| (px(p.x) as f32, px(p.y) as f32);
        let (c1, c2, to) = (point(first.1), point(second.0), point(second.1));
        let mut data = Data::new().move_to(point(first.0)).cubic_curve_to((c1.0, c1.1, c2.0, c2.1, to.0, to.1));
        for (control, to) in rest {
            let (c, t) = (point(*control), point(*to));
            data = data.smooth_cubic_curve_to((c.0, c.1, t.0, t.1));
        }
        let color = web_color(look.line_color);
        let mut curve = Path::new()
            .set("d", data)
            .set("fill", "none")
            .set("stroke", color.as_str())
            .set("stroke-width", look.line_width);
        if dashed {
            curve = curve.set("stroke-dasharray", "6 4");
        }
        if head.0 {
            curve = curve.set("marker-start", format!("url(#{})", marker_id("start", &color)));
        }
        if head.1 {
            curve = curve.set("marker-end", format!("url(#{})", marker_id("end", &color)));
        }
        self.markers.insert(color);
        let group = self.group(properties).add(curve);
        self.groups.push(group);
    }

    /// Clip regions shape records, which the picture does not use: no clipping.
    fn create_clip(&mut self, _: Point, _: Point, _: usize) -> ClipHandle {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::example;

    #[test]
    fn same_topology_same_bytes() {
        let topology = example("whiteboard.toml");
        let findings = crate::audit::audit(&topology);
        // Each render hashes with fresh random keys inside layout-rs: equal bytes mean
        // no hash order leaks into the picture.
        let first = render(&topology, &findings);
        for _ in 0..3 {
            assert_eq!(render(&topology, &findings), first);
        }
    }
}
