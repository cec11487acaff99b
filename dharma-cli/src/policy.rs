//! Reading a policy file offline, and placing what is wrong with it on a line.

use std::{fmt, path::Path};

use dharma_core::{
    config::{Config, ConfigError},
    model::Topology,
};
use toml::de::{DeTable, DeValue};

/// A policy file, read and validated offline (no network, file or secret touched).
#[derive(Debug)]
pub struct Policy {
    /// The file as parsed.
    pub config: Config,
    /// Its domains and endpoints.
    pub topology: Topology,
}

/// Why a policy file is refused: the message, and where it is when that can be told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The key it concerns, e.g. `endpoints[2].rule` or `mechanisms.org-jwt.leeway_seconds`.
    pub key: Option<String>,
    /// The line (1-based).
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
    /// The file could not be read at all (not a policy problem).
    pub unreadable: bool,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl Policy {
    /// Reads and validates the file at `path`.
    pub fn read(path: &Path) -> Result<Self, Problem> {
        let text = std::fs::read_to_string(path).map_err(|e| Problem {
            key: None,
            line: None,
            message: format!("cannot read {}: {e}", path.display()),
            unreadable: true,
        })?;
        Self::parse(&text)
    }

    /// Validates policy text.
    pub fn parse(text: &str) -> Result<Self, Problem> {
        let config = Config::from_toml(text).map_err(|e| locate(text, &e))?;
        let topology = config.validate().map_err(|e| locate(text, &e))?;
        Ok(Self { config, topology })
    }

    /// The `kind` of a mechanism, as the file gives it.
    pub fn kind(&self, mechanism: &str) -> Option<&str> {
        self.table(mechanism)?.get("kind")?.as_str()
    }

    /// A mechanism's settings.
    pub fn table(&self, mechanism: &str) -> Option<&toml::Table> {
        self.config
            .mechanisms()
            .find(|(name, _)| *name == mechanism)
            .map(|(_, table)| table)
    }

    /// The mechanisms a combinator (`any_of`, `all_of`) names; none for other kinds.
    pub fn parts(&self, mechanism: &str) -> Vec<&str> {
        let Some(table) = self.table(mechanism) else {
            return Vec::new();
        };
        match table.get("mechanisms").and_then(toml::Value::as_array) {
            Some(names) => names.iter().filter_map(toml::Value::as_str).collect(),
            None => Vec::new(),
        }
    }
}

/// The key path and line of a configuration error.
fn locate(text: &str, error: &ConfigError) -> Problem {
    let (key, line) = match error {
        ConfigError::Syntax(e) => (None, e.span().map(|s| line_of(text, s.start))),
        _ => {
            // Parsed once, with spans: the file already passed as TOML.
            let root = DeTable::parse(text).ok();
            let root = root.as_ref().map(|r| r.get_ref());
            let key = key_of(root, error);
            let line = key
                .as_deref()
                .zip(root)
                .and_then(|(k, root)| find(root, k))
                .map(|at| line_of(text, at));
            (key, line)
        }
    };
    let message = match error {
        // toml's message without its snippet: the line is given apart.
        ConfigError::Syntax(e) => e.message().to_owned(),
        other => {
            let message = other.to_string();
            match key
                .as_deref()
                .and_then(|k| message.strip_prefix(&format!("{k}: ")))
            {
                Some(rest) => rest.to_owned(),
                None => message,
            }
        }
    };
    Problem {
        key,
        line,
        message,
        unreadable: false,
    }
}

/// The key an error names: written in it, or (for topology errors, which name items) the
/// item's place in the file.
fn key_of(root: Option<&DeTable<'_>>, error: &ConfigError) -> Option<String> {
    let key = match error {
        ConfigError::Field { key, .. } => key.clone(),
        ConfigError::Kind { key, .. }
        | ConfigError::Mechanism { key, .. }
        | ConfigError::Reference { key, .. }
        | ConfigError::Unavailable { key, .. } => format!("mechanisms.{key}"),
        ConfigError::MissingCustom(key) => format!("mechanisms.{key}"),
        ConfigError::ClaimRule { index, claim } => format!("endpoints[{index}].claims.{claim}"),
        ConfigError::Rule { index, .. } => format!("endpoints[{index}].rule"),
        ConfigError::Topology(e) => return item_key(root?, e.item()),
        _ => return None,
    };
    Some(key)
}

/// `domain "inner"` → `domains[i]`; `endpoint "..."` → `endpoints[i]` (by name, else by
/// path); `mechanism "m"` → `mechanisms.m`, else the first domain naming it.
fn item_key(root: &DeTable<'_>, item: &str) -> Option<String> {
    let (what, name) = item.split_once(' ')?;
    let name = name.trim_matches('"');
    let entries = |section: &str| -> Vec<&DeTable<'_>> {
        match root.get(section).map(|v| v.get_ref()) {
            Some(DeValue::Array(items)) => items
                .iter()
                .filter_map(|v| match v.get_ref() {
                    DeValue::Table(t) => Some(t),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    };
    let str_of = |t: &DeTable<'_>, key: &str| match t.get(key).map(|v| v.get_ref()) {
        Some(DeValue::String(s)) => Some(s.to_string()),
        _ => None,
    };
    match what {
        "domain" => entries("domains")
            .iter()
            .position(|t| str_of(t, "name").as_deref() == Some(name))
            .map(|i| format!("domains[{i}]")),
        "endpoint" => {
            let endpoints = entries("endpoints");
            endpoints
                .iter()
                .position(|t| str_of(t, "name").as_deref() == Some(name))
                .or_else(|| {
                    endpoints.iter().position(|t| {
                        str_of(t, "path").is_some_and(|p| name.ends_with(&format!(" {p}")))
                    })
                })
                .map(|i| format!("endpoints[{i}]"))
        }
        "mechanism" => {
            if matches!(root.get("mechanisms").map(|v| v.get_ref()), Some(DeValue::Table(t)) if t.contains_key(name))
            {
                return Some(format!("mechanisms.{name}"));
            }
            entries("domains")
                .iter()
                .position(|t| {
                    str_of(t, "trust").as_deref() == Some(name)
                        || str_of(t, "access").as_deref() == Some(name)
                })
                .map(|i| format!("domains[{i}]"))
        }
        _ => None,
    }
}

/// Where the deepest part of `key` (`a.b[2].c`) found in the file starts (a byte offset).
fn find(root: &DeTable<'_>, key: &str) -> Option<usize> {
    let mut table = Some(root);
    let mut best = None;
    for part in key.split('.') {
        let (name, indices) = match part.split_once('[') {
            Some((name, rest)) => (name, Some(rest)),
            None => (part, None),
        };
        let Some(current) = table else { break };
        let Some((k, v)) = current.get_key_value(name) else {
            break;
        };
        best = Some(k.span().start);
        let mut value = Some(v);
        for index in indices.into_iter().flat_map(|r| r.split('[')) {
            let Some(i) = index.trim_end_matches(']').parse::<usize>().ok() else {
                break;
            };
            match value.map(|v| v.get_ref()) {
                Some(DeValue::Array(items)) => {
                    value = items.get(i);
                    if let Some(v) = value {
                        best = Some(v.span().start);
                    }
                }
                _ => break,
            }
        }
        table = match value.map(|v| v.get_ref()) {
            Some(DeValue::Table(t)) => Some(t),
            _ => None,
        };
    }
    best
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).map_or(0, |t| t.matches('\n').count()) + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_name_their_key_and_line() {
        let text = "[enforcer]\nrealm = \"x\"\n\n[[domains]]\nname = \"a\"\ntrust = \"nope\"\n";
        let problem = Policy::parse(text).unwrap_err();
        assert_eq!(problem.key.as_deref(), Some("domains[0]"));
        assert_eq!(problem.line, Some(4), "{problem}");
        assert!(problem.message.contains("nope"), "{problem}");

        let text = "[mechanisms.j]\nkind = \"jwt\"\nleeway_seconds = \"x\"\n";
        let problem = Policy::parse(text).unwrap_err();
        assert_eq!(
            problem.key.as_deref(),
            Some("mechanisms.j.leeway_seconds"),
            "{problem}"
        );
        assert_eq!(problem.line, Some(3));

        let problem = Policy::parse("[[domains]]\nname = \"a\"\n\nbogus = [\n").unwrap_err();
        assert_eq!(problem.key, None);
        assert_eq!(problem.line, Some(4), "{problem}");
    }
}
