//! The per-group layout cache: each tag name escaped and quoted once per group layout,
//! not once per message.
//!
//! A group's tag list rarely changes, so the escaped `"name"` texts are kept and reused
//! while the snapshot's names still equal the cached ones. The check is a plain string
//! comparison (a `memcmp`), which costs less than scanning the names for bytes that
//! need escaping. When a name differs, the layout is rebuilt from that tag on, so a
//! changed group is always written correctly.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;

use tagwire_model::Snapshot;

use crate::escape::{write_str, Hex};

/// How many group layouts one encoder keeps. A gateway has tens to hundreds of groups;
/// above this an arbitrary layout is dropped, so memory stays bounded even when node or
/// group names are unbounded (for example, taken from ingest bodies).
pub(crate) const MAX_LAYOUTS: usize = 512;

/// The cached texts of one node/group.
#[derive(Debug, Default)]
pub(crate) struct Layout {
    node: String,
    group: String,
    /// `{"node": "…", "group": "…", "timestamp": ` (or the compact form).
    header: Vec<u8>,
    /// The raw tag names the cached texts were built from.
    names: Vec<String>,
    /// All quoted, escaped names, back to back.
    escaped: Vec<u8>,
    /// End offset in `escaped` of each name.
    ends: Vec<usize>,
}

impl Layout {
    /// The message header up to and including the `"timestamp"` key.
    pub(crate) fn header(&self) -> &[u8] {
        &self.header
    }

    /// The quoted, escaped name of tag `i`.
    #[inline]
    pub(crate) fn name(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.escaped[start..self.ends[i]]
    }

    fn build_header(&mut self, hex: Hex) {
        self.header.clear();
        let (open_node, group_key, ts_key): (&[u8], &[u8], &[u8]) = match hex {
            Hex::Upper => (b"{\"node\": ", b", \"group\": ", b", \"timestamp\": "),
            Hex::Lower => (b"{\"node\":", b",\"group\":", b",\"timestamp\":"),
        };
        self.header.extend_from_slice(open_node);
        write_str(&mut self.header, &self.node, hex);
        self.header.extend_from_slice(group_key);
        write_str(&mut self.header, &self.group, hex);
        self.header.extend_from_slice(ts_key);
    }

    /// Makes the cached names match `snapshot`'s tags, rebuilding from the first
    /// difference.
    fn sync_names(&mut self, snapshot: &Snapshot, hex: Hex) {
        let tags = &snapshot.tags;
        let same = self
            .names
            .iter()
            .zip(tags)
            .take_while(|(cached, tag)| **cached == tag.name)
            .count();
        if same == tags.len() && same == self.names.len() {
            return;
        }
        self.names.truncate(same);
        self.ends.truncate(same);
        self.escaped
            .truncate(self.ends.last().copied().unwrap_or(0));
        for tag in &tags[same..] {
            self.names.push(tag.name.clone());
            write_str(&mut self.escaped, &tag.name, hex);
            self.ends.push(self.escaped.len());
        }
    }
}

/// Layouts by node/group.
#[derive(Debug)]
pub(crate) struct LayoutCache {
    hasher: RandomState,
    /// Keyed by the hash of (node, group); the entry's own node/group are compared on
    /// every hit, so a hash collision only costs a rebuild, never a wrong message.
    map: HashMap<u64, Layout>,
    hex: Hex,
}

impl LayoutCache {
    pub(crate) fn new(hex: Hex) -> Self {
        LayoutCache {
            hasher: RandomState::new(),
            map: HashMap::new(),
            hex,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn clear(&mut self) {
        self.map.clear();
    }

    /// The layout for `snapshot`, created or updated as needed.
    pub(crate) fn get(&mut self, snapshot: &Snapshot) -> &Layout {
        let key = self
            .hasher
            .hash_one((snapshot.node.as_str(), snapshot.group.as_str()));
        if !self.map.contains_key(&key) && self.map.len() >= MAX_LAYOUTS {
            if let Some(&victim) = self.map.keys().next() {
                self.map.remove(&victim);
            }
        }
        let hex = self.hex;
        let layout = self.map.entry(key).or_default();
        if layout.header.is_empty()
            || layout.node != snapshot.node
            || layout.group != snapshot.group
        {
            layout.node.clone_from(&snapshot.node);
            layout.group.clone_from(&snapshot.group);
            layout.build_header(hex);
            layout.names.clear();
            layout.ends.clear();
            layout.escaped.clear();
        }
        layout.sync_names(snapshot, hex);
        layout
    }
}
