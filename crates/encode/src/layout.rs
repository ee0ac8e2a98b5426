//! The per-group layout cache: each tag's prefix (`"name": ` in values-format,
//! `{"name": "…", ` in tags-format) escaped and laid out once per group layout, not
//! once per message.
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
use crate::{Format, Style};

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
    /// Each tag's prefix, back to back: `"<name>": ` in values-format,
    /// `{"name": "<name>", ` in tags-format (compact forms without the spaces).
    chunks: Vec<u8>,
    /// End offset in `chunks` of each tag's prefix.
    ends: Vec<usize>,
}

/// What the cached texts look like for one encoder.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape {
    hex: Hex,
    neuron: bool,
    tags_format: bool,
}

impl Layout {
    /// The message header up to and including the `"timestamp"` key.
    pub(crate) fn header(&self) -> &[u8] {
        &self.header
    }

    /// The cached prefix of tag `i` (see [`Layout::chunks`]).
    #[inline]
    pub(crate) fn chunk(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.chunks[start..self.ends[i]]
    }

    fn build_header(&mut self, shape: Shape) {
        self.header.clear();
        let (open_node, group_key, ts_key): (&[u8], &[u8], &[u8]) = if shape.neuron {
            (b"{\"node\": ", b", \"group\": ", b", \"timestamp\": ")
        } else {
            (b"{\"node\":", b",\"group\":", b",\"timestamp\":")
        };
        self.header.extend_from_slice(open_node);
        write_str(&mut self.header, &self.node, shape.hex);
        self.header.extend_from_slice(group_key);
        write_str(&mut self.header, &self.group, shape.hex);
        self.header.extend_from_slice(ts_key);
    }

    fn push_chunk(&mut self, name: &str, shape: Shape) {
        let (colon, comma): (&[u8], &[u8]) = if shape.neuron {
            (b": ", b", ")
        } else {
            (b":", b",")
        };
        if shape.tags_format {
            self.chunks.extend_from_slice(b"{\"name\"");
            self.chunks.extend_from_slice(colon);
            write_str(&mut self.chunks, name, shape.hex);
            self.chunks.extend_from_slice(comma);
        } else {
            write_str(&mut self.chunks, name, shape.hex);
            self.chunks.extend_from_slice(colon);
        }
        self.ends.push(self.chunks.len());
    }

    /// Makes the cached names match `snapshot`'s tags, rebuilding from the first
    /// difference.
    fn sync_names(&mut self, snapshot: &Snapshot, shape: Shape) {
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
        self.chunks.truncate(self.ends.last().copied().unwrap_or(0));
        for tag in &tags[same..] {
            self.names.push(tag.name.clone());
            self.push_chunk(&tag.name, shape);
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
    shape: Shape,
}

impl LayoutCache {
    pub(crate) fn new(style: Style, format: Format) -> Self {
        let neuron = style == Style::Neuron;
        LayoutCache {
            hasher: RandomState::new(),
            map: HashMap::new(),
            shape: Shape {
                hex: if neuron { Hex::Upper } else { Hex::Lower },
                neuron,
                tags_format: format == Format::Tags,
            },
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
        let shape = self.shape;
        let layout = self.map.entry(key).or_default();
        if layout.header.is_empty()
            || layout.node != snapshot.node
            || layout.group != snapshot.group
        {
            layout.node.clone_from(&snapshot.node);
            layout.group.clone_from(&snapshot.group);
            layout.build_header(shape);
            layout.names.clear();
            layout.ends.clear();
            layout.chunks.clear();
        }
        layout.sync_names(snapshot, shape);
        layout
    }
}
