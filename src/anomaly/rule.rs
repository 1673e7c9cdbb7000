//! The anomaly rule file model: the same family as the pattern rules (`id`, `name`,
//! `description`, `category: anomaly`, `kind`, `severity`, `confidence`,
//! `examples`, `negative_examples`), with a `params:` block for thresholds and
//! windows instead of a pattern. Examples name sequence files (JSON lines or any
//! log format phiwatch decodes): an example must make the rule fire exactly once,
//! a negative example never.

use super::Error;
use super::params::Params;
use crate::finding::Severity;
use serde::Deserialize;
use std::path::Path;

/// The built-in anomaly rule files, embedded at build time: (file name, YAML text).
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "rules/anomaly/enumeration.yaml",
        include_str!("../../rules/anomaly/enumeration.yaml"),
    ),
    (
        "rules/anomaly/distinct_patients.yaml",
        include_str!("../../rules/anomaly/distinct_patients.yaml"),
    ),
    (
        "rules/anomaly/auth_failure_burst.yaml",
        include_str!("../../rules/anomaly/auth_failure_burst.yaml"),
    ),
    (
        "rules/anomaly/exfiltration.yaml",
        include_str!("../../rules/anomaly/exfiltration.yaml"),
    ),
    (
        "rules/anomaly/first_seen.yaml",
        include_str!("../../rules/anomaly/first_seen.yaml"),
    ),
    (
        "rules/anomaly/volume_spike.yaml",
        include_str!("../../rules/anomaly/volume_spike.yaml"),
    ),
    (
        "rules/anomaly/credential_live.yaml",
        include_str!("../../rules/anomaly/credential_live.yaml"),
    ),
];

/// Anomaly kinds (CONTRACT.md vocabulary).
pub const KINDS: &[&str] = &[
    "enumeration",
    "auth_failure_burst",
    "volume_spike",
    "distinct_patients",
    "first_seen",
    "exfiltration",
    "credential_live",
];

/// One anomaly rule file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnomalyRuleFile {
    /// The rules in the file.
    pub rules: Vec<AnomalyRule>,
}

/// One anomaly rule as written in YAML.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnomalyRule {
    /// Unique id: lower-case letters, digits, `_` and `.`, starting with a letter.
    pub id: String,
    /// Short human name.
    pub name: String,
    /// What it finds and why it matters.
    pub description: String,
    /// Always `anomaly`.
    pub category: String,
    /// Finding kind (see [`KINDS`]).
    pub kind: String,
    /// Finding severity (`info` .. `critical`).
    pub severity: String,
    /// Confidence, 0..1.
    pub confidence: f32,
    /// Thresholds and windows; which keys are allowed depends on the kind.
    #[serde(default)]
    pub params: serde_yaml_ng::Value,
    /// Where the technique or the risk is documented.
    #[serde(default)]
    pub references: Vec<String>,
    /// Free tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Sequence files on which the rule must fire exactly once.
    #[serde(default)]
    pub examples: Vec<String>,
    /// Sequence files on which the rule must not fire.
    #[serde(default)]
    pub negative_examples: Vec<String>,
    /// The file the rule came from (set by the loader).
    #[serde(skip)]
    pub file: String,
}

fn invalid(r: &AnomalyRule, message: impl Into<String>) -> Error {
    Error::Invalid {
        file: r.file.clone(),
        id: r.id.clone(),
        message: message.into(),
    }
}

/// Whether an id is well formed: `[a-z][a-z0-9_]*` segments joined by `.`.
fn id_is_well_formed(id: &str) -> bool {
    !id.is_empty()
        && id.split('.').all(|seg| {
            let mut chars = seg.chars();
            chars.next().is_some_and(|c| c.is_ascii_lowercase())
                && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
}

impl AnomalyRule {
    /// Static checks; returns the parsed severity and params.
    pub(crate) fn compile(&self) -> Result<(Severity, Params), Error> {
        if !id_is_well_formed(&self.id) {
            return Err(invalid(
                self,
                "id must be lower-case letters, digits, '_' and '.'",
            ));
        }
        if self.category != "anomaly" {
            return Err(invalid(self, "category must be anomaly"));
        }
        if !KINDS.contains(&self.kind.as_str()) {
            return Err(invalid(self, format!("unknown kind {:?}", self.kind)));
        }
        let severity = Severity::parse(&self.severity)
            .ok_or_else(|| invalid(self, format!("unknown severity {:?}", self.severity)))?;
        if !(0.0..=1.0).contains(&self.confidence) {
            return Err(invalid(self, "confidence must be within 0..1"));
        }
        if self.examples.is_empty() || self.negative_examples.is_empty() {
            return Err(invalid(self, "a rule needs examples and negative_examples"));
        }
        let params = Params::parse(&self.kind, &self.params).map_err(|m| invalid(self, m))?;
        Ok((severity, params))
    }
}

/// Parse one rule file's text.
pub fn parse(file: &str, text: &str) -> Result<Vec<AnomalyRule>, Error> {
    let parsed: AnomalyRuleFile = serde_yaml_ng::from_str(text).map_err(|e| Error::Rule {
        file: file.to_string(),
        message: e.to_string(),
    })?;
    Ok(parsed
        .rules
        .into_iter()
        .map(|mut r| {
            r.file = file.to_string();
            r
        })
        .collect())
}

fn merge(rules: &mut Vec<AnomalyRule>, more: Vec<AnomalyRule>, replace: bool) -> Result<(), Error> {
    for r in more {
        match rules.iter().position(|x| x.id == r.id) {
            Some(p) if replace => rules[p] = r,
            Some(p) => {
                return Err(Error::Invalid {
                    file: r.file.clone(),
                    id: r.id.clone(),
                    message: format!("duplicate id (also in {})", rules[p].file),
                });
            }
            None => rules.push(r),
        }
    }
    Ok(())
}

/// The built-in anomaly rules.
pub fn builtin() -> Result<Vec<AnomalyRule>, Error> {
    let mut rules = Vec::new();
    for (file, text) in BUILTIN {
        merge(&mut rules, parse(file, text)?, false)?;
    }
    Ok(rules)
}

/// Built-in rules, then the rules of every `*.yaml` / `*.yml` file in `dir`
/// (adding, or replacing by id). When `dir` has an `anomaly` subfolder (a
/// `--rules DIR` laid out like `rules/`), that subfolder is read instead.
pub fn load_all(dir: Option<&Path>) -> Result<Vec<AnomalyRule>, Error> {
    let mut rules = builtin()?;
    let Some(dir) = dir else { return Ok(rules) };
    let sub = dir.join("anomaly");
    let dir = if sub.is_dir() { sub.as_path() } else { dir };
    let io = |file: String, e: std::io::Error| Error::Rule {
        file,
        message: e.to_string(),
    };
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| io(dir.display().to_string(), e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    let mut extra = Vec::new();
    for path in files {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(&path).map_err(|e| io(file.clone(), e))?;
        merge(&mut extra, parse(&file, &text)?, false)?;
    }
    merge(&mut rules, extra, true)?;
    Ok(rules)
}
