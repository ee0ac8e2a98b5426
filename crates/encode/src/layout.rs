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

use crate::source::Source;

use crate::escape::{write_str, Hex};
use crate::{Format, Style};

/// How many group layouts one encoder keeps. A gateway has tens to hundreds of groups;
/// above this the least recently used layout is dropped, so the map stays bounded even
/// when node or group names are unbounded (for example, taken from ingest bodies).
pub(crate) const MAX_LAYOUTS: usize = 512;

/// The default byte budget of one encoder's layouts. A count alone does not bound
/// memory: one group of 100k tags holds megabytes of names, and 20 such groups kept
/// 400 MB alive with the queue empty. 8 MiB holds hundreds of ordinary groups (a
/// 100-tag group takes about 5 KiB) or one huge one.
pub(crate) const DEFAULT_BUDGET: usize = 8 << 20;

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
    /// The cache's clock when this layout was last used (for least-recently-used
    /// eviction).
    last_used: u64,
    /// The heap bytes this layout holds, as last counted by [`Layout::heap_bytes`].
    bytes: usize,
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

    /// The bytes this layout keeps allocated (capacities, not lengths, since that is
    /// what the allocator holds), plus its map entry.
    fn heap_bytes(&self) -> usize {
        std::mem::size_of::<(u64, Layout)>()
            + self.node.capacity()
            + self.group.capacity()
            + self.header.capacity()
            + self.names.capacity() * std::mem::size_of::<String>()
            + self.names.iter().map(String::capacity).sum::<usize>()
            + self.chunks.capacity()
            + self.ends.capacity() * std::mem::size_of::<usize>()
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
    /// difference. Returns whether anything changed.
    fn sync_names(&mut self, snapshot: &impl Source, shape: Shape) -> bool {
        let count = snapshot.tag_count();
        let same = self
            .names
            .iter()
            .enumerate()
            .take(count)
            .take_while(|(i, cached)| {
                same_bytes(cached.as_bytes(), snapshot.tag_name(*i).as_bytes())
            })
            .count();
        if same == count && same == self.names.len() {
            return false;
        }
        self.names.truncate(same);
        self.ends.truncate(same);
        self.chunks.truncate(self.ends.last().copied().unwrap_or(0));
        for i in same..count {
            let name = snapshot.tag_name(i);
            self.names.push(name.to_owned());
            self.push_chunk(name, shape);
        }
        true
    }
}

/// `a == b`, inlined for the short strings tag names usually are: this runs for every
/// tag of every message, and a call to `memcmp` for a dozen bytes costs more than the
/// comparison itself.
#[inline(always)]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    // Two overlapping words cover any length from one word to two.
    fn word<const W: usize>(s: &[u8], at: usize) -> [u8; W] {
        let mut w = [0; W];
        w.copy_from_slice(&s[at..at + W]);
        w
    }
    match n {
        17..=32 => {
            word::<16>(a, 0) == word::<16>(b, 0) && word::<16>(a, n - 16) == word::<16>(b, n - 16)
        }
        8..=16 => word::<8>(a, 0) == word::<8>(b, 0) && word::<8>(a, n - 8) == word::<8>(b, n - 8),
        4..=7 => word::<4>(a, 0) == word::<4>(b, 0) && word::<4>(a, n - 4) == word::<4>(b, n - 4),
        _ => a == b,
    }
}

/// Layouts by node/group, bounded by count ([`MAX_LAYOUTS`]) and by bytes (the
/// budget); the least recently used layouts go first.
#[derive(Debug)]
pub(crate) struct LayoutCache {
    hasher: RandomState,
    /// Keyed by the hash of (node, group); the entry's own node/group are compared on
    /// every hit, so a hash collision only costs a rebuild, never a wrong message.
    map: HashMap<u64, Layout>,
    shape: Shape,
    /// Advances on every lookup; stamps [`Layout::last_used`].
    clock: u64,
    /// Sum of the layouts' [`Layout::bytes`].
    bytes: usize,
    /// Above this many bytes, least recently used layouts are dropped. The layout in
    /// use is never dropped, so one group larger than the budget stays cached alone.
    budget: usize,
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
            clock: 0,
            bytes: 0,
            budget: DEFAULT_BUDGET,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// The heap bytes the cached layouts hold.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn budget(&self) -> usize {
        self.budget
    }

    /// Sets the byte budget; layouts over it are dropped at the next lookup.
    pub(crate) fn set_budget(&mut self, bytes: usize) {
        self.budget = bytes;
    }

    pub(crate) fn clear(&mut self) {
        self.map.clear();
        self.bytes = 0;
    }

    /// Drops the least recently used layout other than `keep`; false when there is
    /// none.
    fn evict_one(&mut self, keep: u64) -> bool {
        let victim = self
            .map
            .iter()
            .filter(|(k, _)| **k != keep)
            .min_by_key(|(_, l)| l.last_used)
            .map(|(k, _)| *k);
        match victim.and_then(|k| self.map.remove(&k)) {
            Some(l) => {
                self.bytes -= l.bytes;
                true
            }
            None => false,
        }
    }

    /// The layout for `snapshot`, created or updated as needed.
    pub(crate) fn get(&mut self, snapshot: &impl Source) -> &Layout {
        let (node, group) = (snapshot.node(), snapshot.group());
        let key = self.hasher.hash_one((node, group));
        if !self.map.contains_key(&key) && self.map.len() >= MAX_LAYOUTS {
            self.evict_one(key);
        }
        let shape = self.shape;
        self.clock += 1;
        let layout = self.map.entry(key).or_default();
        layout.last_used = self.clock;
        let mut changed = false;
        if layout.header.is_empty() || layout.node != node || layout.group != group {
            layout.node.clear();
            layout.node.push_str(node);
            layout.group.clear();
            layout.group.push_str(group);
            layout.build_header(shape);
            layout.names.clear();
            layout.ends.clear();
            layout.chunks.clear();
            changed = true;
        }
        changed |= layout.sync_names(snapshot, shape);
        if changed {
            // Counted only when the layout changed: counting walks every name.
            let before = layout.bytes;
            layout.bytes = layout.heap_bytes();
            self.bytes = self.bytes - before + layout.bytes;
            while self.bytes > self.budget && self.evict_one(key) {}
        }
        &self.map[&key]
    }
}

#[cfg(test)]
mod tests {
    use super::same_bytes;

    #[test]
    fn same_bytes_is_slice_equality() {
        // Every length around the word sizes, with one byte changed at every position
        // (the overlapping-word comparison must see each of them).
        for len in 0..40usize {
            let a: Vec<u8> = (0..len as u8).map(|b| b.wrapping_mul(37)).collect();
            assert!(same_bytes(&a, &a.clone()), "len {len}");
            for pos in 0..len {
                let mut b = a.clone();
                b[pos] ^= 0x20;
                assert!(!same_bytes(&a, &b), "len {len}, byte {pos}");
            }
            let mut longer = a.clone();
            longer.push(0);
            assert!(!same_bytes(&a, &longer), "len {len} vs {}", len + 1);
        }
    }
}
