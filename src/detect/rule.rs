//! The rule file model (YAML, `deny_unknown_fields`), loading of the built-in rules
//! and of a `--rules DIR`, and per-rule linting.
//!
//! A file holds `rules:`, a list of rules. A rule either matches text (`pattern`,
//! with a capture for the value) or is derived from other findings (`derive`, for
//! misconfiguration rules such as PHI in a GET query string).

use super::Error;
use super::validate::Validator;
use crate::finding::{Category, Severity};
use serde::Deserialize;
use std::path::Path;

/// The built-in rule files, embedded at build time: (file name, YAML text).
pub const BUILTIN: &[(&str, &str)] = &[
    ("rules/ssn.yaml", include_str!("../../rules/ssn.yaml")),
    (
        "rules/identifiers.yaml",
        include_str!("../../rules/identifiers.yaml"),
    ),
    (
        "rules/contact.yaml",
        include_str!("../../rules/contact.yaml"),
    ),
    (
        "rules/clinical.yaml",
        include_str!("../../rules/clinical.yaml"),
    ),
    (
        "rules/financial.yaml",
        include_str!("../../rules/financial.yaml"),
    ),
    (
        "rules/demographics.yaml",
        include_str!("../../rules/demographics.yaml"),
    ),
    (
        "rules/credentials.yaml",
        include_str!("../../rules/credentials.yaml"),
    ),
    (
        "rules/misconfiguration.yaml",
        include_str!("../../rules/misconfiguration.yaml"),
    ),
];

/// Every kind a rule may report (CONTRACT.md vocabulary plus the misconfiguration kinds).
pub const KINDS: &[&str] = &[
    "us_ssn",
    "us_mbi",
    "us_npi",
    "us_dea",
    "mrn",
    "dob",
    "email",
    "phone",
    "credit_card",
    "icd10",
    "ndc",
    "patient_ref",
    "person_name",
    "street_address",
    "hl7_pid",
    "jwt",
    "bearer_token",
    "api_key",
    "basic_auth",
    "aws_access_key",
    "private_key",
    "password",
    "phi_in_query",
    "credential_in_url",
];

/// One rule file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    /// The rules in the file.
    pub rules: Vec<RuleSpec>,
}

/// Category as spelled in YAML.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum CategorySpec {
    Phi,
    Credential,
    Anomaly,
    Misconfiguration,
}

impl From<CategorySpec> for Category {
    fn from(c: CategorySpec) -> Category {
        match c {
            CategorySpec::Phi => Category::Phi,
            CategorySpec::Credential => Category::Credential,
            CategorySpec::Anomaly => Category::Anomaly,
            CategorySpec::Misconfiguration => Category::Misconfiguration,
        }
    }
}

/// Severity as spelled in YAML.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum SeveritySpec {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl From<SeveritySpec> for Severity {
    fn from(s: SeveritySpec) -> Severity {
        match s {
            SeveritySpec::Info => Severity::Info,
            SeveritySpec::Low => Severity::Low,
            SeveritySpec::Medium => Severity::Medium,
            SeveritySpec::High => Severity::High,
            SeveritySpec::Critical => Severity::Critical,
        }
    }
}

/// Words near a match (or the field / parameter name holding it) that raise, or
/// are required for, confidence.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContextSpec {
    /// Lower-case words; matched as whole tokens in the field name and in the
    /// `window` bytes before the match.
    pub words: Vec<String>,
    /// Without a context word the match is dropped.
    #[serde(default)]
    pub required: bool,
    /// Added to the rule's confidence when a context word is present.
    #[serde(default = "default_boost")]
    pub boost: f32,
    /// How many bytes before the match to look at.
    #[serde(default = "default_window")]
    pub window: usize,
}

fn default_boost() -> f32 {
    0.1
}

fn default_window() -> usize {
    40
}

/// A rule built from other findings of the same event.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeriveSpec {
    /// Categories of the findings this rule is built from (`phi`, `credential`).
    pub categories: Vec<CategorySpec>,
    /// Locations those findings must be at (same syntax as a rule's `locations`).
    pub locations: Vec<String>,
    /// HTTP methods the event must have; empty for any.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Kinds of findings that do not count.
    #[serde(default)]
    pub exclude_kinds: Vec<String>,
}

/// One rule as written in YAML.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Unique id: lower-case letters, digits, `_` and `.`, starting with a letter.
    pub id: String,
    /// Short human name.
    pub name: String,
    /// What it finds and why it matters.
    pub description: String,
    /// Finding category.
    pub category: CategorySpec,
    /// Finding kind (see [`KINDS`]).
    pub kind: String,
    /// Finding severity.
    pub severity: SeveritySpec,
    /// Base confidence, 0..1.
    pub confidence: f32,
    /// Prefilter keywords (ASCII, case-insensitive). A rule without keywords runs
    /// wherever the text holds a digit.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Regex; the capture named `value`, else group 1, else the whole match, is the value.
    #[serde(default)]
    pub pattern: Option<String>,
    /// Named validator run on the value.
    #[serde(default)]
    pub validator: Option<Validator>,
    /// Context words.
    #[serde(default)]
    pub context: Option<ContextSpec>,
    /// Where the rule applies (`url.path`, `url.query`, `header:*`, `header:authorization`,
    /// `body`, `text`, `extra:*` ...); empty for everywhere.
    #[serde(default)]
    pub locations: Vec<String>,
    /// Run only where the text holds a cluster of at least this many digits (digits
    /// joined by spaces, `-`, `.`, `(`, `)` or `+`): a cheap gate for rules without keywords.
    #[serde(default)]
    pub min_digit_cluster: Option<usize>,
    /// Run only where such a cluster holds at least this many groups of digits
    /// split by separators (3 for `AAA-GG-SSSS` or `(415) 555-2671`): keeps
    /// rules for written-out numbers off the digit runs of hex ids.
    #[serde(default)]
    pub min_digit_groups: Option<usize>,
    /// Run only where the text holds a run of at least this many characters of
    /// `[A-Z0-9-]`, three of them letters (for upper-case identifiers such as the MBI).
    #[serde(default)]
    pub min_upper_token: Option<usize>,
    /// Reject a value touching a letter or digit (or `-`/`.` plus a digit) on either side.
    #[serde(default = "default_true")]
    pub boundary: bool,
    /// Derivation from other findings instead of a pattern.
    #[serde(default)]
    pub derive: Option<DeriveSpec>,
    /// The 45 CFR 164.514(b)(2)(i) identifier letter, e.g. `G` for SSNs.
    #[serde(default)]
    pub safe_harbor: Option<String>,
    /// Where the format or the risk is documented.
    #[serde(default)]
    pub references: Vec<String>,
    /// Free tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Lines that must yield a finding of this rule's kind.
    #[serde(default)]
    pub examples: Vec<String>,
    /// Lines that must yield no finding of this rule's kind.
    #[serde(default)]
    pub negative_examples: Vec<String>,
}

fn default_true() -> bool {
    true
}

/// A rule with the file it came from.
#[derive(Debug, Clone)]
pub struct LoadedRule {
    /// The file (as given, or `rules/NAME.yaml` for built-ins).
    pub file: String,
    /// The rule.
    pub spec: RuleSpec,
}

fn invalid(file: &str, id: &str, message: impl Into<String>) -> Error {
    Error::Invalid {
        file: file.to_string(),
        id: id.to_string(),
        message: message.into(),
    }
}

/// Whether an id is well formed: `[a-z][a-z0-9_]*` segments joined by `.`.
pub fn id_is_well_formed(id: &str) -> bool {
    !id.is_empty()
        && id.split('.').all(|seg| {
            let mut chars = seg.chars();
            chars.next().is_some_and(|c| c.is_ascii_lowercase())
                && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
}

/// Static checks of one rule (everything but running its examples).
pub fn lint(file: &str, r: &RuleSpec) -> Result<(), Error> {
    lint_spec(file, r)?;
    if let (Some(p), None) = (&r.pattern, &r.derive) {
        regex::Regex::new(p).map_err(|e| invalid(file, r.id.as_str(), format!("pattern: {e}")))?;
    }
    Ok(())
}

/// [`lint`] without compiling the pattern (for callers that compile it next and
/// report a bad one the same way).
fn lint_spec(file: &str, r: &RuleSpec) -> Result<(), Error> {
    let id = r.id.as_str();
    if !id_is_well_formed(id) {
        return Err(invalid(
            file,
            id,
            "id must be lower-case letters, digits, '_' and '.'",
        ));
    }
    if !KINDS.contains(&r.kind.as_str()) {
        return Err(invalid(file, id, format!("unknown kind {:?}", r.kind)));
    }
    if !(0.0..=1.0).contains(&r.confidence) {
        return Err(invalid(file, id, "confidence must be within 0..1"));
    }
    match (&r.pattern, &r.derive) {
        (Some(_), Some(_)) => return Err(invalid(file, id, "pattern and derive are exclusive")),
        (None, None) => return Err(invalid(file, id, "a rule needs a pattern or derive")),
        (Some(_), None) | (None, Some(_)) => {}
    }
    if r.keywords.iter().any(|k| k.is_empty() || !k.is_ascii()) {
        return Err(invalid(file, id, "keywords must be non-empty ASCII"));
    }
    if r.context
        .as_ref()
        .is_some_and(|c| c.words.iter().any(|w| w.trim().is_empty()))
    {
        return Err(invalid(file, id, "context words must be non-empty"));
    }
    if r.examples.is_empty() || r.negative_examples.is_empty() {
        return Err(invalid(
            file,
            id,
            "a rule needs examples and negative_examples",
        ));
    }
    if !r.keywords.is_empty() && r.derive.is_none() {
        for (i, ex) in r.examples.iter().enumerate() {
            // The prefilter runs on decoded text, so the check does too.
            let raw = ex.to_ascii_lowercase();
            let decoded = super::normalize::decode(ex, true).0.to_ascii_lowercase();
            let has = |k: &String| {
                let k = k.to_ascii_lowercase();
                raw.contains(&k) || decoded.contains(&k)
            };
            if !r.keywords.iter().any(has) {
                return Err(invalid(
                    file,
                    id,
                    format!("example {} contains no keyword", i + 1),
                ));
            }
        }
    }
    Ok(())
}

/// Parse one rule file's text.
pub fn parse(file: &str, text: &str) -> Result<Vec<LoadedRule>, Error> {
    let parsed: RuleFile = serde_yaml_ng::from_str(text).map_err(|e| Error::Rule {
        file: file.to_string(),
        message: e.to_string(),
    })?;
    Ok(parsed
        .rules
        .into_iter()
        .map(|spec| LoadedRule {
            file: file.to_string(),
            spec,
        })
        .collect())
}

/// Add `more` to `rules`; an id already present is an error when `replace` is false,
/// and replaces the earlier rule when it is true.
fn merge(rules: &mut Vec<LoadedRule>, more: Vec<LoadedRule>, replace: bool) -> Result<(), Error> {
    for r in more {
        if let Some(pos) = rules.iter().position(|x| x.spec.id == r.spec.id) {
            if !replace {
                return Err(invalid(
                    &r.file,
                    &r.spec.id,
                    format!("duplicate id (also in {})", rules[pos].file),
                ));
            }
            rules[pos] = r;
        } else {
            rules.push(r);
        }
    }
    Ok(())
}

/// The built-in rules.
pub fn builtin() -> Result<Vec<LoadedRule>, Error> {
    let mut rules = Vec::new();
    for (file, text) in BUILTIN {
        merge(&mut rules, parse(file, text)?, false)?;
    }
    Ok(rules)
}

/// The rules of every `*.yaml` / `*.yml` file in a directory, in file-name order.
pub fn from_dir(dir: &Path) -> Result<Vec<LoadedRule>, Error> {
    let io = |e: std::io::Error| Error::Rule {
        file: dir.display().to_string(),
        message: e.to_string(),
    };
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    let mut rules = Vec::new();
    for path in files {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(&path).map_err(|e| Error::Rule {
            file: file.clone(),
            message: e.to_string(),
        })?;
        merge(&mut rules, parse(&file, &text)?, false)?;
    }
    Ok(rules)
}

/// Built-in rules, then those of `extra` (adding, or replacing by id); all linted
/// except for compiling patterns, which the detector does next (a bad pattern
/// is the same error, naming file and id, from there).
pub fn load_all(extra: Option<&Path>) -> Result<Vec<LoadedRule>, Error> {
    let mut rules = builtin()?;
    if let Some(dir) = extra {
        merge(&mut rules, from_dir(dir)?, true)?;
    }
    for r in &rules {
        lint_spec(&r.file, &r.spec)?;
    }
    Ok(rules)
}
