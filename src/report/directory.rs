//! The patient directory: a CSV mapping patients to their state of residence.
//!
//! The header names `patient_id` and `state` (any order, case-insensitive; other
//! columns are ignored). An optional `identifier` column maps an MRN or other
//! identifier of the same patient, so identifier searches and HL7 messages are
//! placed too. Ids are hashed with the same key as the exposure rows; the raw ids
//! are dropped as soon as they are read and never appear in errors.

use super::Error;
use crate::exposure::{identifier_hash, patient_hash};
use crate::redact::Key;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Patient hash -> state code, and residents per state.
#[derive(Debug, Default)]
pub struct Directory {
    state_of: HashMap<u64, usize>,
    states: Vec<String>,
    residents: Vec<u64>,
}

impl Directory {
    /// Read and hash a directory CSV.
    pub fn load(path: &Path, key: &Key) -> Result<Directory, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Directory::parse(&text, key).map_err(|(line, message)| Error::Directory {
            path: path.to_path_buf(),
            line,
            message,
        })
    }

    /// Parse directory CSV text; errors carry a line number and a message without content.
    pub fn parse(text: &str, key: &Key) -> Result<Directory, (usize, String)> {
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        let (_, header) = lines
            .next()
            .ok_or((1, String::from("empty file: expected a header")))?;
        let header = split_csv(header.trim_start_matches('\u{feff}'));
        let find = |name: &str| {
            header
                .iter()
                .position(|h| h.trim().eq_ignore_ascii_case(name))
        };
        let id_col =
            find("patient_id").ok_or((1, String::from("header has no patient_id column")))?;
        let state_col = find("state").ok_or((1, String::from("header has no state column")))?;
        let ident_col = find("identifier");
        let mut dir = Directory::default();
        let mut index: HashMap<String, usize> = HashMap::new();
        for (n, line) in lines {
            let fields = split_csv(line);
            let get = |c: usize| fields.get(c).map(|s| s.trim()).unwrap_or("");
            let (id, state) = (get(id_col), get(state_col).to_ascii_uppercase());
            if id.is_empty() || state.is_empty() {
                return Err((n + 1, String::from("missing patient_id or state")));
            }
            let si = *index.entry(state.clone()).or_insert_with(|| {
                dir.states.push(state);
                dir.residents.push(0);
                dir.states.len() - 1
            });
            let mut hashes = vec![patient_hash(key, id)];
            if let Some(c) = ident_col
                && !get(c).is_empty()
            {
                hashes.push(identifier_hash(key, get(c)));
            }
            if dir.state_of.insert(hashes[0], si).is_none() {
                dir.residents[si] += 1;
            }
            for h in &hashes[1..] {
                dir.state_of.insert(*h, si);
            }
        }
        Ok(dir)
    }

    /// State of a patient hash.
    pub fn state_of(&self, hash: u64) -> Option<&str> {
        self.state_of.get(&hash).map(|i| self.states[*i].as_str())
    }

    /// Residents listed per state.
    pub fn residents(&self) -> BTreeMap<&str, u64> {
        self.states
            .iter()
            .map(String::as_str)
            .zip(self.residents.iter().copied())
            .collect()
    }
}

/// Split one CSV line (RFC 4180 quoting, no embedded newlines).
fn split_csv(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_quoted_fields_and_any_column_order() {
        let key = Key::from_bytes(b"0123456789abcdef");
        let csv = "name,State,patient_id\n\"Doe, J\",ca,p1\n\"x\"\"y\",NY,p2\n,CA,p3\n";
        let d = Directory::parse(csv, &key).expect("parse");
        assert_eq!(d.state_of(patient_hash(&key, "p1")), Some("CA"));
        assert_eq!(d.state_of(patient_hash(&key, "p2")), Some("NY"));
        assert_eq!(d.residents().get("CA"), Some(&2));
    }

    #[test]
    fn errors_name_lines_not_values() {
        let key = Key::from_bytes(b"0123456789abcdef");
        let err = Directory::parse("patient_id,state\nsecret-id,\n", &key).expect_err("bad");
        assert_eq!(err.0, 2);
        assert!(!err.1.contains("secret"));
        assert!(Directory::parse("id,state\n", &key).is_err());
    }
}
