//! The TOML checker: takes a table apart key by key, reports every problem with its
//! key path, and every unknown key with the closest known one ("did you mean").

use std::collections::BTreeSet;
use std::time::Duration;

use tagwire_encode::Format;
use tagwire_pipeline::{Subscription, Subscriptions};
use toml::{Table, Value};

/// One table being taken apart: remembers which keys were used so that the rest can be
/// reported as unknown, and collects problems under the table's path.
pub(super) struct Section<'a, 'p> {
    path: String,
    table: &'a Table,
    used: BTreeSet<&'static str>,
    problems: &'p mut Vec<String>,
}

impl<'a, 'p> Section<'a, 'p> {
    pub(super) fn new(path: String, table: &'a Table, problems: &'p mut Vec<String>) -> Self {
        Self {
            path,
            table,
            used: BTreeSet::new(),
            problems,
        }
    }

    pub(super) fn key_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    pub(super) fn problem(&mut self, key: &str, what: &str) {
        let p = format!("{}: {what}", self.key_path(key));
        self.problems.push(p);
    }

    pub(super) fn get(&mut self, key: &'static str) -> Option<&'a Value> {
        self.used.insert(key);
        self.table.get(key)
    }

    pub(super) fn wrong_type(&mut self, key: &str, want: &str, got: &Value) {
        self.problem(key, &format!("expected {want}, found {}", got.type_str()));
    }

    pub(super) fn string(&mut self, key: &'static str) -> Option<String> {
        match self.get(key)? {
            Value::String(s) => Some(s.clone()),
            other => {
                self.wrong_type(key, "a string", other);
                None
            }
        }
    }

    pub(super) fn required_string(&mut self, key: &'static str) -> Option<String> {
        if self.table.contains_key(key) {
            let s = self.string(key)?;
            if s.is_empty() {
                self.problem(key, "must not be empty");
                return None;
            }
            Some(s)
        } else {
            self.used.insert(key);
            self.problem(key, "missing: this key is required");
            None
        }
    }

    pub(super) fn bool(&mut self, key: &'static str) -> Option<bool> {
        match self.get(key)? {
            Value::Boolean(b) => Some(*b),
            other => {
                self.wrong_type(key, "true or false", other);
                None
            }
        }
    }

    pub(super) fn u64_in(&mut self, key: &'static str, min: u64, max: u64) -> Option<u64> {
        match self.get(key)? {
            Value::Integer(i) if (min as i128..=max as i128).contains(&(*i as i128)) => {
                Some(*i as u64)
            }
            Value::Integer(i) => {
                self.problem(key, &format!("{i} is out of range: use {min} to {max}"));
                None
            }
            other => {
                self.wrong_type(key, "a whole number", other);
                None
            }
        }
    }

    pub(super) fn millis(&mut self, key: &'static str) -> Option<Duration> {
        self.u64_in(key, 1, 86_400_000).map(Duration::from_millis)
    }

    pub(super) fn parsed<T>(&mut self, key: &'static str, want: &str) -> Option<T>
    where
        T: std::str::FromStr,
    {
        let s = self.string(key)?;
        match s.parse::<T>() {
            Ok(v) => Some(v),
            Err(_) => {
                self.problem(key, &format!("{s:?} is not valid: use {want}"));
                None
            }
        }
    }

    /// `format`: "values" | "tags", or Neuron's codes 0 | 1.
    pub(super) fn format(&mut self, key: &'static str) -> Option<Format> {
        let text = match self.get(key)? {
            Value::String(s) => s.clone(),
            Value::Integer(i) => i.to_string(),
            other => {
                self.wrong_type(key, "\"values\" or \"tags\" (or 0 or 1)", other);
                return None;
            }
        };
        match text.parse::<Format>() {
            Ok(f) => Some(f),
            Err(_) => {
                self.problem(
                    key,
                    &format!(
                        "unknown format {text:?}: use \"values\" or \"tags\" (Neuron's 0 or 1)"
                    ),
                );
                None
            }
        }
    }

    pub(super) fn subscriptions(&mut self, key: &'static str) -> Option<Subscriptions> {
        let Value::Array(items) = self.get(key)? else {
            let got = self.table[key].clone();
            self.wrong_type(key, "an array of { node = \"...\", group = \"...\" }", &got);
            return None;
        };
        let mut subs = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let Value::Table(t) = item else {
                self.problem(
                    &format!("{key}[{i}]"),
                    "expected { node = \"...\", group = \"...\" }",
                );
                continue;
            };
            let path = self.key_path(&format!("{key}[{i}]"));
            let mut s = Section::new(path, t, self.problems);
            let node = s.string("node").unwrap_or_else(|| "*".into());
            let group = s.string("group").unwrap_or_else(|| "*".into());
            s.finish();
            subs.push(Subscription::new(node, group));
        }
        Some(Subscriptions(subs))
    }

    pub(super) fn table(&mut self, key: &'static str) -> Option<&'a Table> {
        match self.get(key)? {
            Value::Table(t) => Some(t),
            other => {
                self.wrong_type(key, "a table", other);
                None
            }
        }
    }

    pub(super) fn array_of_tables(&mut self, key: &'static str) -> Vec<&'a Table> {
        match self.get(key) {
            None => Vec::new(),
            Some(Value::Array(items)) => {
                let mut tables = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::Table(t) => tables.push(t),
                        other => self.problem(
                            &format!("{key}[{i}]"),
                            &format!("expected a table ([[{key}]]), found {}", other.type_str()),
                        ),
                    }
                }
                tables
            }
            Some(other) => {
                let other = other.clone();
                self.wrong_type(key, &format!("[[{key}]] tables"), &other);
                Vec::new()
            }
        }
    }

    /// Reports every key that nobody asked for.
    pub(super) fn finish(self) {
        for key in self.table.keys() {
            if !self.used.contains(key.as_str()) {
                let known: Vec<_> = self.used.iter().copied().collect();
                let hint = closest(key, &known)
                    .map(|k| format!(" (did you mean {k:?}?)"))
                    .unwrap_or_default();
                let p = format!(
                    "{}: unknown key{hint}; known keys here: {}",
                    if self.path.is_empty() {
                        key.clone()
                    } else {
                        format!("{}.{key}", self.path)
                    },
                    known.join(", ")
                );
                self.problems.push(p);
            }
        }
    }
}

/// The known key closest to a misspelt one, if any is close.
pub(super) fn closest<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (edit_distance(key, k), *k))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}
