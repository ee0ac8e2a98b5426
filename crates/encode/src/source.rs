//! What the encoder reads a snapshot through: an owned [`Snapshot`] or a parsed
//! [`SnapshotView`], one encoder for both (monomorphised per source). An owned tag is
//! read in place (`&Tag`), not turned into a [`TagView`] first: building a view per
//! tag cost the owned path about 10% more instructions.
//!
//! [`TagRead::write_value`] is the writer's one dispatch per tag: an unscaled value
//! (nearly every tag) is matched once on its own type and written; only scaled values
//! go through [`classify`](crate::classify)'s general rules. Both impls are inlined
//! into the writer's loops: as a call, the prologue, epilogue and the `Result`
//! returned in registers cost about 25 instructions a tag (big1000 in Neuron's style
//! went from 209 to 196 a tag under callgrind when inlined).

use tagwire_model::{
    Members, Reading, ReadingView, Snapshot, SnapshotView, Tag, TagView, Value, ValueView,
};

use crate::escape::write_str_inline;
use crate::num::write_int;
use crate::{classify, real_out, Writer};

/// A snapshot the encoder can read: node, group, timestamp and each tag.
pub(crate) trait Source {
    /// How one tag is read.
    type Tag<'s>: TagRead
    where
        Self: 's;
    fn node(&self) -> &str;
    fn group(&self) -> &str;
    fn timestamp_ms(&self) -> u64;
    fn tag_count(&self) -> usize;
    /// The name of tag `i` alone (the layout cache compares only names).
    fn tag_name(&self, i: usize) -> &str;
    fn tag(&self, i: usize) -> Self::Tag<'_>;
}

/// What the writer needs of one tag.
pub(crate) trait TagRead {
    /// The tag's name.
    fn name(&self) -> &str;
    /// Writes the tag's value after the scaling and float rules in `w`'s style, or
    /// returns its error code (then nothing is written).
    fn write_value<const NEURON: bool>(
        &self,
        w: &Writer<NEURON>,
        out: &mut Vec<u8>,
    ) -> Result<(), i32>;
    fn has_metas(&self) -> bool;
    fn metas(&self) -> Members<'_>;
}

/// The unscaled case of [`TagRead::write_value`], one `match` on the value's own type
/// (`$V` is `Value` or `ValueView`, whose variants have the same names). FLOAT and
/// DOUBLE take the float rules of [`classify`]'s end ([`real_out`]); every other
/// kind is written as it is: the scalar kinds here, arrays and the rest through the
/// general (out-of-line) [`Writer::value`].
macro_rules! write_unscaled {
    ($V:ident, $value:expr, $w:expr, $out:expr, $precision:expr, $view:expr) => {
        match $value {
            $V::Int8(x) => write_int($out, *x),
            $V::Uint8(x) => write_int($out, *x),
            $V::Int16(x) => write_int($out, *x),
            $V::Uint16(x) => write_int($out, *x),
            $V::Int32(x) => write_int($out, *x),
            $V::Uint32(x) => write_int($out, *x),
            $V::Int64(x) => write_int($out, *x),
            $V::Uint64(x) => write_int($out, *x),
            $V::Float(f) => {
                return $w.classified($out, real_out(f64::from(*f), Some(*f), true, $precision))
            }
            $V::Double(d) => return $w.classified($out, real_out(*d, None, true, $precision)),
            $V::String(s) => write_str_inline($out, s, Writer::<NEURON>::HEX),
            $V::Bool(b) => write_bool($out, *b),
            $V::Bit(b) => $out.push(b'0' + u8::from(*b)),
            _ => $w.value($out, $view),
        }
    };
}

/// `true` or `false` as one fixed-size copy of five bytes, cut to length (a
/// variable-length copy would be a `memcpy` call).
#[inline(always)]
fn write_bool(out: &mut Vec<u8>, b: bool) {
    let end = out.len() + 5 - usize::from(b);
    out.extend_from_slice(if b { b"true " } else { b"false" });
    out.truncate(end);
}

impl TagRead for &Tag {
    #[inline]
    fn name(&self) -> &str {
        &self.name
    }
    #[inline(always)]
    fn write_value<const NEURON: bool>(
        &self,
        w: &Writer<NEURON>,
        out: &mut Vec<u8>,
    ) -> Result<(), i32> {
        let v = match &self.reading {
            Reading::Error(code) => return Err(*code),
            Reading::Value(v) => v,
        };
        if self.decimal != 0.0 || self.bias != 0.0 {
            return w.classified(
                out,
                classify(&v.view(), self.decimal, self.bias, self.precision),
            );
        }
        write_unscaled!(Value, v, w, out, self.precision, &v.view());
        Ok(())
    }
    #[inline]
    fn has_metas(&self) -> bool {
        !self.metas.is_empty()
    }
    fn metas(&self) -> Members<'_> {
        // Only for tags that have metas: the view is built for them alone.
        self.view().metas
    }
}

impl TagRead for &TagView<'_> {
    #[inline]
    fn name(&self) -> &str {
        self.name
    }
    #[inline(always)]
    fn write_value<const NEURON: bool>(
        &self,
        w: &Writer<NEURON>,
        out: &mut Vec<u8>,
    ) -> Result<(), i32> {
        let v = match &self.reading {
            ReadingView::Error(code) => return Err(*code),
            ReadingView::Value(v) => v,
        };
        if self.decimal != 0.0 || self.bias != 0.0 {
            return w.classified(out, classify(v, self.decimal, self.bias, self.precision));
        }
        write_unscaled!(ValueView, v, w, out, self.precision, v);
        Ok(())
    }
    #[inline]
    fn has_metas(&self) -> bool {
        !self.metas.is_empty()
    }
    fn metas(&self) -> Members<'_> {
        self.metas.clone()
    }
}

/// The two sources read alike (a `String` field derefs to `&str` as a `&str` one does):
/// one body for both, so the owned and the borrowed readers cannot drift apart.
macro_rules! source {
    ($(impl<$($l:lifetime),*>)? for $snapshot:ty, tag $tag:ty) => {
        impl$(<$($l),*>)? Source for $snapshot {
            type Tag<'s>
                = &'s $tag
            where
                Self: 's;
            #[inline]
            fn node(&self) -> &str {
                &self.node
            }
            #[inline]
            fn group(&self) -> &str {
                &self.group
            }
            #[inline]
            fn timestamp_ms(&self) -> u64 {
                self.timestamp_ms
            }
            #[inline]
            fn tag_count(&self) -> usize {
                self.tags.len()
            }
            #[inline]
            fn tag_name(&self, i: usize) -> &str {
                &self.tags[i].name
            }
            #[inline]
            fn tag(&self, i: usize) -> &$tag {
                &self.tags[i]
            }
        }
    };
}

source!(for Snapshot, tag Tag);
source!(impl<'a> for SnapshotView<'a>, tag TagView<'a>);
