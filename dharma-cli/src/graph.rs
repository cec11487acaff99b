//! `dharma graph`: domains in their hierarchy, endpoints, and who reaches them through
//! which mechanism, as Mermaid or Graphviz DOT.

use std::fmt::Write;

use crate::{
    explain::methods,
    policy::Policy,
    reach::{Caller, Route, callers, route},
};

/// The output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A Mermaid flowchart.
    Mermaid,
    /// Graphviz DOT.
    Dot,
}

/// An identifier made of letters, digits and `_`.
fn id(prefix: &str, name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("{prefix}_{clean}")
}

fn caller_id(caller: &Caller) -> String {
    match caller {
        Caller::Outside => "outside".into(),
        Caller::Services(d) => id("svc", d),
    }
}

fn quote(text: &str, format: Format) -> String {
    match format {
        Format::Mermaid => text.replace('"', "#quot;"),
        Format::Dot => text.replace('\\', "\\\\").replace('"', "\\\""),
    }
}

/// One node: an ellipse for callers, a box for endpoints.
fn node(out: &mut String, format: Format, indent: &str, id: &str, label: &str, round: bool) {
    let label = quote(label, format);
    let _ = match (format, round) {
        (Format::Mermaid, true) => writeln!(out, "{indent}{id}([\"{label}\"])"),
        (Format::Mermaid, false) => writeln!(out, "{indent}{id}[\"{label}\"]"),
        (Format::Dot, true) => writeln!(out, "{indent}{id} [label=\"{label}\", shape=ellipse];"),
        (Format::Dot, false) => writeln!(out, "{indent}{id} [label=\"{label}\"];"),
    };
}

/// A domain as a box holding its services, its endpoints and its child domains.
fn domain(policy: &Policy, format: Format, out: &mut String, name: &str, depth: usize) {
    let indent = "  ".repeat(depth + 1);
    let Some(d) = policy.topology.domain(name) else {
        return;
    };
    let mut title = format!("domain {name}");
    if let Some(t) = d.trust() {
        let _ = write!(title, " · trust {}", t.as_str());
    }
    if let Some(a) = d.access() {
        let _ = write!(title, " · access {}", a.as_str());
    }
    let title = quote(&title, format);
    let _ = match format {
        Format::Mermaid => writeln!(out, "{indent}subgraph {}[\"{title}\"]", id("d", name)),
        Format::Dot => writeln!(
            out,
            "{indent}subgraph {} {{\n{indent}  label=\"{title}\";\n{indent}  style=rounded;",
            id("cluster", name)
        ),
    };
    let inner = format!("{indent}  ");
    node(
        out,
        format,
        &inner,
        &id("svc", name),
        &format!("{name} services"),
        true,
    );
    for (i, e) in policy.topology.endpoints().iter().enumerate() {
        if e.domain().as_str() == name {
            let label = format!(
                "{} {}\n{}",
                methods(e),
                e.path().as_str(),
                e.exposure().as_str()
            );
            let label = match format {
                Format::Mermaid => label.replace('\n', "<br/>"),
                Format::Dot => label,
            };
            node(out, format, &inner, &format!("e{i}"), &label, false);
        }
    }
    for child in policy.topology.domains() {
        if child.parent().map(|p| p.as_str()) == Some(name) {
            domain(policy, format, out, child.name().as_str(), depth + 1);
        }
    }
    let _ = match format {
        Format::Mermaid => writeln!(out, "{indent}end"),
        Format::Dot => writeln!(out, "{indent}}}"),
    };
}

/// Draws the policy: the outside client, the domains nested in their parents, and an edge
/// from each caller to each endpoint it reaches, labelled with the mechanism.
pub fn graph(policy: &Policy, format: Format) -> String {
    let mut out = String::new();
    let topology = &policy.topology;
    let (open, close) = match format {
        Format::Mermaid => ("flowchart LR\n", ""),
        Format::Dot => (
            "digraph dharma {\n  rankdir=LR;\n  node [shape=box, fontname=\"Helvetica\"];\n  edge [fontname=\"Helvetica\", fontsize=10];\n",
            "}\n",
        ),
    };
    out.push_str(open);
    node(&mut out, format, "  ", "outside", "outside client", true);
    for root in topology.domains().iter().filter(|d| d.parent().is_none()) {
        domain(policy, format, &mut out, root.name().as_str(), 0);
    }
    for (i, e) in topology.endpoints().iter().enumerate() {
        for caller in callers(policy) {
            let Some(r) = route(policy, e, &caller) else {
                continue;
            };
            // Public endpoints: one edge, from outside.
            if r == Route::Public && caller != Caller::Outside {
                continue;
            }
            let label = match &r {
                Route::Public => "public".to_owned(),
                Route::Interior(m) | Route::Boundary(m) => m.clone(),
            };
            let from = caller_id(&caller);
            let _ = match format {
                Format::Mermaid => {
                    writeln!(out, "  {from} -- \"{}\" --> e{i}", quote(&label, format))
                }
                Format::Dot => writeln!(
                    out,
                    "  {from} -> e{i} [label=\"{}\"];",
                    quote(&label, format)
                ),
            };
        }
    }
    out.push_str(close);
    out
}
