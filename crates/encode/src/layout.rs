//! The per-group layout cache: each group's *plan*, built once per group layout and
//! reused for every message while the tag names stay the same.
//!
//! The plan holds, per tag, one [`Step`]: where its raw name is (to check that the
//! snapshot's tag still has that name) and where its constant prefix is. The prefix is
//! everything written before the value, separator included: `, "name": ` in
//! values-format, `, {"name": "<name>", "value": ` in tags-format (compact forms
//! without the spaces). The writer's loop then copies one prefix and dispatches once
//! on the value per tag. Prefixes are stored back to back with [`PAD`] spare bytes at
//! the end, so a short prefix is copied as one fixed-size block (no `memcpy` call) and
//! the output truncated to its length.
//!
//! The names are checked by the writer as it goes (a length compare and an inlined
//! comparison of the bytes, [`Layout::name_is`]); on the first difference it reports
//! the layout stale, the output is rolled back and the plan rebuilt from that tag on
//! ([`LayoutCache::resync`]), so a renamed tag is never sent under its old name.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

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

/// Prefixes up to this long are copied as one fixed-size block; the prefix buffer
/// ends with this many spare bytes so that the block never reads past it.
const PAD: usize = 32;

/// One tag of a group's plan: where its raw name and its prefix are.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Step {
    name: usize,
    name_len: usize,
    prefix: usize,
    prefix_len: usize,
}

/// The cached texts of one node/group.
#[derive(Debug, Default)]
pub(crate) struct Layout {
    node: String,
    group: String,
    /// `{"node": "…", "group": "…", "timestamp": ` (or the compact form).
    header: Vec<u8>,
    /// The raw tag names the plan was built from, back to back.
    names: Vec<u8>,
    /// Each tag's prefix (see the module's account), back to back, then [`PAD`] zeros.
    prefixes: Vec<u8>,
    /// One step per tag, in tag order.
    steps: Vec<Step>,
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

impl Shape {
    /// `", "` (neuron) or `","`: what every prefix starts with.
    fn comma(self) -> &'static [u8] {
        if self.neuron {
            b", "
        } else {
            b","
        }
    }

    fn colon(self) -> &'static [u8] {
        if self.neuron {
            b": "
        } else {
            b":"
        }
    }
}

impl Layout {
    /// The message header up to and including the `"timestamp"` key.
    pub(crate) fn header(&self) -> &[u8] {
        &self.header
    }

    /// Whether this is the layout of `node`/`group` (compared inline: group and node
    /// names are short, and a `memcmp` call each cost more than the comparison).
    #[inline]
    fn is(&self, node: &str, group: &str) -> bool {
        same_bytes(self.node.as_bytes(), node.as_bytes())
            && same_bytes(self.group.as_bytes(), group.as_bytes())
    }

    /// The plan: one step per tag.
    #[inline]
    pub(crate) fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Whether `name` is the name `step` was built for.
    #[inline(always)]
    pub(crate) fn name_is(&self, step: &Step, name: &str) -> bool {
        step.name_len == name.len()
            && same_bytes(
                &self.names[step.name..step.name + step.name_len],
                name.as_bytes(),
            )
    }

    /// Appends `step`'s prefix without its first `skip` bytes (the separator, for the
    /// first element of a list).
    #[inline(always)]
    pub(crate) fn write_prefix(&self, out: &mut Vec<u8>, step: &Step, skip: usize) {
        let start = step.prefix + skip;
        let len = step.prefix_len - skip;
        if len <= PAD {
            // A constant-length copy is a few vector moves; the bytes after the prefix
            // (the next prefixes, or the padding) are cut off again.
            let at = out.len();
            let block: &[u8; PAD] = self.prefixes[start..start + PAD]
                .try_into()
                .expect("PAD bytes");
            out.extend_from_slice(block);
            out.truncate(at + len);
        } else {
            out.extend_from_slice(&self.prefixes[start..start + len]);
        }
    }

    /// `step`'s prefix without the separator: `"<name>": ` in values-format (what the
    /// `errors` and `metas` objects start an entry with).
    #[inline]
    pub(crate) fn key(&self, step: &Step, comma: usize) -> &[u8] {
        &self.prefixes[step.prefix + comma..step.prefix + step.prefix_len]
    }

    /// The bytes this layout keeps allocated (capacities, not lengths, since that is
    /// what the allocator holds), plus its map entry.
    fn heap_bytes(&self) -> usize {
        std::mem::size_of::<(u64, Layout)>()
            + self.node.capacity()
            + self.group.capacity()
            + self.header.capacity()
            + self.names.capacity()
            + self.prefixes.capacity()
            + self.steps.capacity() * std::mem::size_of::<Step>()
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

    /// Appends the step of a tag named `name` (the padding is off while building).
    fn push_step(&mut self, name: &str, shape: Shape) {
        let (colon, comma) = (shape.colon(), shape.comma());
        let prefix = self.prefixes.len();
        self.prefixes.extend_from_slice(comma);
        if shape.tags_format {
            self.prefixes.extend_from_slice(b"{\"name\"");
            self.prefixes.extend_from_slice(colon);
            write_str(&mut self.prefixes, name, shape.hex);
            self.prefixes.extend_from_slice(comma);
            self.prefixes.extend_from_slice(b"\"value\"");
            self.prefixes.extend_from_slice(colon);
        } else {
            write_str(&mut self.prefixes, name, shape.hex);
            self.prefixes.extend_from_slice(colon);
        }
        let at = self.names.len();
        self.names.extend_from_slice(name.as_bytes());
        self.steps.push(Step {
            name: at,
            name_len: name.len(),
            prefix,
            prefix_len: self.prefixes.len() - prefix,
        });
    }

    /// Forgets every tag of the plan.
    fn clear_steps(&mut self) {
        self.names.clear();
        self.prefixes.clear();
        self.steps.clear();
    }

    /// Makes the plan match `snapshot`'s tags, rebuilding from the first difference.
    /// Returns whether anything changed.
    fn sync_names(&mut self, snapshot: &impl Source, shape: Shape) -> bool {
        let count = snapshot.tag_count();
        let same = self
            .steps
            .iter()
            .take(count)
            .enumerate()
            .take_while(|(i, step)| self.name_is(step, snapshot.tag_name(*i)))
            .count();
        if same == count && same == self.steps.len() && !self.prefixes.is_empty() {
            return false;
        }
        let (names_end, prefixes_end) = match same.checked_sub(1).map(|i| self.steps[i]) {
            Some(last) => (last.name + last.name_len, last.prefix + last.prefix_len),
            None => (0, 0),
        };
        self.steps.truncate(same);
        self.names.truncate(names_end);
        self.prefixes.truncate(prefixes_end);
        for i in same..count {
            self.push_step(snapshot.tag_name(i), shape);
        }
        self.prefixes.resize(self.prefixes.len() + PAD, 0);
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

/// The map's hasher: its keys are already SipHash values of (node, group) under a
/// random key, so hashing them again (what the default hasher does) only costs time.
#[derive(Debug, Default)]
struct KeyIsHash(u64);

impl Hasher for KeyIsHash {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys are hashed (`write_u64`); fold anything else in anyway.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// Layouts by node/group, bounded by count ([`MAX_LAYOUTS`]) and by bytes (the
/// budget); the least recently used layouts go first.
#[derive(Debug)]
pub(crate) struct LayoutCache {
    hasher: RandomState,
    /// Keyed by the hash of (node, group); the entry's own node/group are compared on
    /// every hit, so a hash collision only costs a rebuild, never a wrong message.
    map: HashMap<u64, Layout, BuildHasherDefault<KeyIsHash>>,
    /// The key of the layout used last: a group encoded again right away (one group
    /// per connection, or a burst of one group) skips hashing its node and group,
    /// which cost a 10-tag message about a fifth of its instructions.
    last: Option<u64>,
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
            map: HashMap::default(),
            last: None,
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
        self.last = None;
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
        // The common case: the group encoded last, its plan complete and as long as
        // the snapshot (the names are checked by the writer as it goes).
        if let Some(k) = self.last {
            let current = self.map.get(&k).is_some_and(|l| {
                l.is(node, group) && l.steps.len() == snapshot.tag_count() && !l.prefixes.is_empty()
            });
            if current {
                self.clock += 1;
                let layout = self.map.get_mut(&k).expect("just found");
                layout.last_used = self.clock;
                return layout;
            }
        }
        let key = match self.last.and_then(|k| Some((k, self.map.get(&k)?))) {
            Some((k, l)) if l.is(node, group) => k,
            _ => self.hasher.hash_one((node, group)),
        };
        self.last = Some(key);
        if !self.map.contains_key(&key) && self.map.len() >= MAX_LAYOUTS {
            self.evict_one(key);
        }
        let shape = self.shape;
        self.clock += 1;
        let layout = self.map.entry(key).or_default();
        layout.last_used = self.clock;
        let mut changed = false;
        if layout.header.is_empty() || !layout.is(node, group) {
            layout.node.clear();
            layout.node.push_str(node);
            layout.group.clear();
            layout.group.push_str(group);
            layout.build_header(shape);
            layout.clear_steps();
            changed = true;
        }
        // The names are checked by the writer as it goes; a plan of another length
        // (or a new one) is brought up to date here.
        if layout.steps.len() != snapshot.tag_count() || layout.prefixes.is_empty() {
            changed |= layout.sync_names(snapshot, shape);
        }
        if changed {
            self.recount(key);
        }
        &self.map[&key]
    }

    /// Rebuilds the plan of `snapshot`'s group (which [`get`](Self::get) returned)
    /// from its first tag whose name differs: the writer found one.
    pub(crate) fn resync(&mut self, snapshot: &impl Source) {
        // `get` just looked this group up and noted its key.
        let Some(key) = self.last else {
            return;
        };
        let shape = self.shape;
        if let Some(layout) = self.map.get_mut(&key) {
            if layout.sync_names(snapshot, shape) {
                self.recount(key);
            }
        }
    }

    /// Re-counts the bytes of layout `key` (after it changed: counting walks every
    /// buffer) and drops least recently used layouts over the budget.
    fn recount(&mut self, key: u64) {
        let Some(layout) = self.map.get_mut(&key) else {
            return;
        };
        let before = layout.bytes;
        layout.bytes = layout.heap_bytes();
        self.bytes = self.bytes - before + layout.bytes;
        while self.bytes > self.budget && self.evict_one(key) {}
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
