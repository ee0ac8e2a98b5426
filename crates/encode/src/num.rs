//! Number formatting: C `printf("%.15g")` and `printf("%.{p}f")` with jansson's
//! clean-up, Neuron's rounding heuristic, and shortest round-trip output.
//!
//! Everything here writes into the caller's buffer and allocates nothing: digits are
//! produced on the stack.
//!
//! Exactness argument for `%.15g`: when the shortest round-trip decimal of a normal
//! `f64` has at most 15 significant digits, it *is* the value correctly rounded to 15
//! digits (half an ulp is below half a unit of the 15th digit, so no 15-digit decimal
//! other than the shortest one can be nearest, and no tie is possible). Otherwise, and
//! for subnormals, the digits come from Rust's exact `{:.14e}` formatting, which rounds
//! the exact binary value half-to-even like glibc's printf (checked against `snprintf`
//! in this crate's tests).

use std::fmt::Write as _;
use std::io::Write as _;

/// Significant digits of `%.15g`.
const G_PRECISION: i32 = 15;

/// A decimal `0.d1 d2 … dn × 10^(exp + 1)`, that is `d1.d2…dn × 10^exp`, with no
/// leading or trailing zero digits (except for the value zero, which is not stored).
struct Digits {
    buf: [u8; 24],
    len: usize,
    exp: i32,
}

impl Digits {
    fn digits(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Parses the text of a positive finite number as written by ryu or zmij (`123.45`,
    /// `1e20`, `1e+20`, `1.5e-7`) or by `{:e}` (`1.23e4`). Returns `None` for anything else.
    fn parse(text: &[u8]) -> Option<Digits> {
        let mut d = Digits {
            buf: [0; 24],
            len: 0,
            exp: 0,
        };
        let mut point: Option<i32> = None;
        let mut count = 0i32; // digits seen, including leading zeros
        let mut leading_zeros = 0i32;
        let mut i = 0;
        while i < text.len() {
            let c = text[i];
            match c {
                b'0'..=b'9' => {
                    if d.len == 0 && c == b'0' {
                        leading_zeros += 1;
                    } else {
                        *d.buf.get_mut(d.len)? = c;
                        d.len += 1;
                    }
                    count += 1;
                }
                b'.' => point = Some(count),
                b'e' | b'E' => break,
                _ => return None,
            }
            i += 1;
        }
        let mut e10 = 0i32;
        if i < text.len() {
            let s = std::str::from_utf8(&text[i + 1..]).ok()?;
            e10 = s.parse().ok()?;
        }
        if d.len == 0 {
            return None; // zero is handled by the callers
        }
        // Position of the decimal point counted from the first significant digit.
        let point = point.unwrap_or(count);
        d.exp = point - leading_zeros - 1 + e10;
        while d.len > 1 && d.buf[d.len - 1] == b'0' {
            d.len -= 1;
        }
        Some(d)
    }
}

/// A small stack buffer that `write!` can target.
struct StackBuf {
    buf: [u8; 40],
    len: usize,
}

impl std::fmt::Write for StackBuf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        self.buf
            .get_mut(self.len..end)
            .ok_or(std::fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Powers of ten up to 10^22 as 128-bit integers (for [`digits15_exact`]).
const POW10_U128: [u128; 23] = {
    let mut p = [1u128; 23];
    let mut i = 1;
    while i < p.len() {
        p[i] = p[i - 1] * 10;
        i += 1;
    }
    p
};

/// 10^14 and 10^15: the bounds of a 15-digit integer.
const E14: u64 = 100_000_000_000_000;
const E15: u64 = 1_000_000_000_000_000;

/// [`digits15`] in integers, for `v` in [1e-8, 1e15) (nearly every sensor value): no
/// text is formatted and parsed back. `v` is exactly `m · 2^-k`; with `q = 14 -
/// floor(log10 v)` in 0..=22, `m · 10^q` (below 2^53 · 10^22 < 2^127) fits a `u128`,
/// so `v · 10^q` rounded half-to-even to a 15-digit integer is computed exactly, as
/// printf rounds the exact binary value. Returns `None` outside that range.
fn digits15_exact(v: f64) -> Option<Digits> {
    let bits = v.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    let k = 1075 - biased;
    if biased == 0 || !(1..=127).contains(&k) {
        return None;
    }
    let m = u128::from((bits & ((1 << 52) - 1)) | (1 << 52));
    // floor(log10 v) is floor((biased - 1023) · log10 2) or one more; the loop below
    // corrects an estimate that is off by one either way.
    let mut e10 = ((biased - 1023) * 78_913) >> 18;
    for _ in 0..3 {
        let q = usize::try_from(14 - e10)
            .ok()
            .filter(|&q| q < POW10_U128.len())?;
        let scaled = m * POW10_U128[q];
        let t = scaled >> k;
        if t >= u128::from(E15) {
            e10 += 1;
            continue;
        }
        if t < u128::from(E14) {
            e10 -= 1;
            continue;
        }
        // `t` is below 10^15, so it fits.
        let mut n = t as u64;
        let rest = scaled & ((1u128 << k) - 1);
        let half = 1u128 << (k - 1);
        if rest > half || (rest == half && n & 1 == 1) {
            n += 1;
        }
        if n == E15 {
            // 9.99…95 rounded up to 10.0…0: one digit fewer, one magnitude more.
            n = E14;
            e10 += 1;
        }
        let mut d = Digits {
            buf: [b'0'; 24],
            len: 15,
            exp: e10,
        };
        write_digits_before(&mut d.buf, 15, n);
        while d.len > 1 && d.buf[d.len - 1] == b'0' {
            d.len -= 1;
        }
        return Some(d);
    }
    None
}

/// The digits of positive finite `v` rounded to 15 significant digits, exactly as C's
/// printf rounds them.
fn digits15(v: f64) -> Digits {
    if let Some(d) = digits15_exact(v) {
        return d;
    }
    if v >= f64::MIN_POSITIVE {
        // zmij's shortest digits (its `e+16` exponents parse as well).
        let mut shortest = zmij::Buffer::new();
        if let Some(d) = Digits::parse(shortest.format_finite(v).as_bytes()) {
            if d.len <= G_PRECISION as usize {
                return d;
            }
        }
    }
    let mut s = StackBuf {
        buf: [0; 40],
        len: 0,
    };
    // `{:.14e}` of a finite f64 is at most 22 bytes ("1.23456789012345e-308").
    let _ = write!(s, "{:.14e}", v);
    Digits::parse(&s.buf[..s.len]).unwrap_or(Digits {
        buf: [b'0'; 24],
        len: 1,
        exp: 0,
    })
}

/// Appends `printf("%.15g", v)` with jansson's clean-up: `.0` appended when the text
/// has neither `.` nor `e`, and the exponent without `+` or leading zeros. `v` must be
/// finite.
pub(crate) fn write_g15(out: &mut Vec<u8>, v: f64) {
    debug_assert!(v.is_finite());
    if v == 0.0 {
        out.extend_from_slice(if v.is_sign_negative() {
            b"-0.0"
        } else {
            b"0.0"
        });
        return;
    }
    if v < 0.0 {
        out.push(b'-');
    }
    let d = digits15(v.abs());
    let digits = d.digits();
    let x = d.exp;
    // C's %g: fixed notation when -4 <= X < P, else exponential; trailing zeros
    // removed (they already are, in `Digits`).
    if (-4..G_PRECISION).contains(&x) {
        if x >= 0 {
            let int_len = x as usize + 1;
            if digits.len() <= int_len {
                out.extend_from_slice(digits);
                out.resize(out.len() + (int_len - digits.len()), b'0');
                out.extend_from_slice(b".0");
            } else {
                out.extend_from_slice(&digits[..int_len]);
                out.push(b'.');
                out.extend_from_slice(&digits[int_len..]);
            }
        } else {
            out.extend_from_slice(b"0.");
            out.resize(out.len() + (-x - 1) as usize, b'0');
            out.extend_from_slice(digits);
        }
    } else {
        out.push(digits[0]);
        if digits.len() > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        out.push(b'e');
        if x < 0 {
            out.push(b'-');
        }
        write_int(out, x.unsigned_abs());
    }
}

/// Powers of ten up to 10^17 (the largest precision) as integers.
const POW10_FIXED: [u64; 18] = {
    let mut p = [1u64; 18];
    let mut i = 1;
    while i < p.len() {
        p[i] = p[i - 1] * 10;
        i += 1;
    }
    p
};

/// Appends `printf("%.{precision}f", v)`. `v` must be finite.
pub(crate) fn write_fixed(out: &mut Vec<u8>, v: f64, precision: u8) {
    debug_assert!(v.is_finite());
    if write_fixed_exact(out, v, precision) {
        return;
    }
    // Rust's exact formatting rounds the exact binary value half-to-even and keeps the
    // sign of negative zero, like glibc (see the snprintf comparison tests). Writing
    // into a Vec cannot fail.
    let _ = write!(out, "{:.*}", usize::from(precision), v);
}

/// `write_fixed` for the usual sensor values, in integers instead of `core::fmt` (which
/// costs several times more). Returns false, having written nothing, when `v` is
/// outside the range this handles.
///
/// A normal `v` is exactly `m · 2^-k`. With `k` in 0..=127 and a precision of at most
/// 17, `m · 10^p` (below 2^53 · 10^17 < 2^110) fits a `u128`, so `v · 10^p` rounded
/// half-to-even to an integer `n` is computed exactly, as glibc rounds the exact
/// binary value. `n` below 2^64 is then printed with `p` decimals.
fn write_fixed_exact(out: &mut Vec<u8>, v: f64, precision: u8) -> bool {
    let p = usize::from(precision);
    let bits = v.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    // Subnormals (and zero) and integers of 2^53 and up go the general way.
    if biased == 0 || p >= POW10_FIXED.len() {
        return false;
    }
    let k = 1075 - biased;
    if !(0..=127).contains(&k) {
        return false;
    }
    let mantissa = (bits & ((1 << 52) - 1)) | (1 << 52);
    let n = if p <= 3 && k < 64 {
        // The usual case (a precision of 1 to 3, |v| above 2^-11): m · 10^p is below
        // 2^53 · 2^10, so the same rounding runs in 64-bit words.
        let scaled = mantissa * POW10_FIXED[p];
        let mut n = scaled >> k;
        if k > 0 {
            let rest = scaled & ((1u64 << k) - 1);
            let half = 1u64 << (k - 1);
            if rest > half || (rest == half && n & 1 == 1) {
                n += 1;
            }
        }
        n
    } else {
        let scaled = u128::from(mantissa) * u128::from(POW10_FIXED[p]);
        let mut n = scaled >> k;
        if k > 0 {
            let rest = scaled & ((1u128 << k) - 1);
            let half = 1u128 << (k - 1);
            if rest > half || (rest == half && n & 1 == 1) {
                n += 1;
            }
        }
        let Ok(n) = u64::try_from(n) else {
            return false;
        };
        n
    };
    let unit = POW10_FIXED[p];
    let (int, frac) = (n / unit, n % unit);
    // Built on the stack, prefilled with zeros so that the decimals are zero-padded,
    // and appended whole then cut to length (see `write_int`): "-" + at most 20
    // integer digits + "." + at most 17 decimals.
    let mut buf = [b'0'; 40];
    // Also for values that round to zero: printf writes "-0.00".
    let negative = v.is_sign_negative();
    buf[0] = b'-';
    let end = usize::from(negative) + decimal_len(int);
    write_digits_before(&mut buf, end, int);
    let mut len = end;
    if p > 0 {
        buf[end] = b'.';
        len += 1 + p;
        write_digits_before(&mut buf, len, frac);
    }
    let len = out.len() + len;
    out.extend_from_slice(&buf);
    out.truncate(len);
    true
}

/// Appends the shortest text that reads back as `v` (`f64`), ryu style, with `.0` on
/// integral values. `v` must be finite.
///
/// Formatted by `zmij` (about half of ryu's instructions), whose text is ryu's but for
/// a `+` in positive exponents (`1e+16` for ryu's `1e16`), taken out here; the
/// proptests below compare the result with ryu on random bit patterns.
pub(crate) fn write_shortest_f64(out: &mut Vec<u8>, v: f64) {
    push_without_plus(out, zmij::Buffer::new().format_finite(v).as_bytes());
}

/// Appends the shortest text that reads back as `v` (`f32`). `v` must be finite.
pub(crate) fn write_shortest_f32(out: &mut Vec<u8>, v: f32) {
    push_without_plus(out, zmij::Buffer::new().format_finite(v).as_bytes());
}

/// Appends zmij's `text` without the `+` of a positive exponent. The exponent has one
/// to three digits, so the `+` can only be 2 to 4 bytes from the end; the three bytes
/// are looked at directly (a search loop here cost more than the formatting's tail).
#[inline(always)]
fn push_without_plus(out: &mut Vec<u8>, text: &[u8]) {
    let n = text.len();
    let plus_at = |k: usize| n > k && text[n - k] == b'+';
    let k = if plus_at(2) {
        2
    } else if plus_at(3) {
        3
    } else if plus_at(4) {
        4
    } else {
        out.extend_from_slice(text);
        return;
    };
    out.extend_from_slice(&text[..n - k]);
    out.extend_from_slice(&text[n - k + 1..]);
}

/// Powers of ten used by the heuristic; C's `pow(10, n)` is exact for these.
const POW10: [f64; 6] = [1.0, 10.0, 100.0, 1000.0, 10000.0, 100000.0];

/// C's `round` (half away from zero) for `0 <= x < 2^53`, without a libm call:
/// subtracting the truncated integer part is exact in that range.
#[inline]
fn round_nonneg(x: f64) -> f64 {
    debug_assert!((0.0..9_007_199_254_740_992.0).contains(&x));
    // Through i64, not u64: x86-64 converts signed integers in one instruction.
    let t = x as i64 as f64;
    if x - t >= 0.5 {
        t + 1.0
    } else {
        t
    }
}

/// Neuron's rounding heuristic `h(v)` (spec §4) as the `double` Neuron computes: at
/// most five decimals, cut where float noise (`00` or `99`) begins. Mirrors Neuron's C
/// arithmetic step by step, including C's `round` (half away from zero) and its sign
/// handling (`-0.0` is not below zero, so it comes back as `+0.0`). The caller ensures
/// `|v| < 2^63`.
///
/// [`write_heuristic`] prints the same number from integers ([`Cut`]); this float
/// mirror is what it falls back on for large values, and what the tests hold it to.
fn heuristic_value(v: f64) -> f64 {
    let negative = v < 0.0;
    let value = if negative { -v } else { v };
    let integer_part = value as i64;
    let mut decimal_part = value - integer_part as f64;
    decimal_part *= POW10[5];
    // In [0, 100000]: the fraction is in [0, 1).
    decimal_part = round_nonneg(decimal_part);
    // "%05" PRId64 into a 6-byte buffer: at least five digits, cut to five. The
    // fraction is below one, so `d` is at most 100000, whose first five are "10000".
    let d = decimal_part as u64;
    let s: [u8; 5] = if d >= 100_000 {
        *b"10000"
    } else {
        let digit = |p: u64| b'0' + (d / p % 10) as u8;
        [digit(10_000), digit(1000), digit(100), digit(10), digit(1)]
    };
    let k =
        (0..4).find(|&i| (s[i] == b'0' && s[i + 1] == b'0') || (s[i] == b'9' && s[i + 1] == b'9'));
    let value = match k {
        Some(k) if k != 0 => {
            let cut = round_nonneg(decimal_part / POW10[5 - k]);
            integer_part as f64 + cut / POW10[k]
        }
        _ => integer_part as f64 + decimal_part / POW10[5],
    };
    if negative {
        -value
    } else {
        value
    }
}

/// `h(v)` as the `double` Neuron computes.
#[cfg(test)]
pub(crate) fn heuristic(v: f64) -> f64 {
    heuristic_value(v)
}

/// The decimal that Neuron's heuristic stands for: `±(int + 0.d1d2d3d4d5)`.
struct Cut {
    negative: bool,
    int: u64,
    /// The five decimals as ASCII digits in bytes 0..5 ([`five_digits`]).
    five: [u8; 8],
}

/// `'0'` in every byte: subtracted from [`five_digits`]' word, it leaves the digit
/// values (0..=9) in bytes 0..5 and zero above.
const ASCII_ZEROS: u64 = 0x3030_3030_3030_3030;
const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// [`heuristic_value`]'s steps in integers, to get its decimal without formatting a
/// float (this runs for most FLOAT/DOUBLE values in the neuron style). The caller
/// ensures `|v| < 2^63`.
#[inline]
fn cut(v: f64) -> Cut {
    let negative = v < 0.0;
    let value = if negative { -v } else { v };
    // C's `(int64_t)value` (the value is below 2^63, so it is not negative). Signed
    // conversions, which x86-64 does in one instruction, for the same reason.
    let int = value as i64;
    // The same float steps as Neuron: the fraction times 10^5, rounded; at most 10^5.
    let d = round_nonneg((value - int as f64) * POW10[5]) as i64 as u32;
    let int = int as u64;
    if d >= 100_000 {
        // Neuron's "%05d" cut to "10000": the pair "00" at 1 rounds to 10/10, one
        // whole unit.
        return Cut {
            negative,
            int: int + 1,
            five: five_digits(0),
        };
    }
    let five = five_digits(d);
    // Neuron cuts at the first pair of its five digits that reads "00" or "99": found
    // in one word. Digits are at most 9, so adding 0x7f never carries between bytes
    // and sets a byte's high bit exactly when it is not zero.
    let values = u64::from_le_bytes(five) - ASCII_ZEROS;
    let zero = !(values + LOW7) & HIGH;
    let nine = !((values ^ 0x0909_0909_0909_0909) + LOW7) & HIGH;
    // Pair i is digits i and i + 1; pairs 0..4 are Neuron's.
    let pairs = ((zero & (zero >> 8)) | (nine & (nine >> 8))) & 0x8080_8080;
    // C's `round(d / 10^(5-k))`: the float quotient is either exact (a tie, x.5, is
    // representable) or at least 10^-4 away from a tie, so rounding half up in
    // integers gives the same. Kept scaled to five digits (the text trims the zeros).
    let rounded = match pairs.trailing_zeros() / 8 {
        1 => (d + 5_000) / 10_000 * 10_000,
        2 => (d + 500) / 1000 * 1000,
        3 => (d + 50) / 100 * 100,
        // k = 0 or no pair: all five decimals.
        _ => {
            return Cut {
                negative,
                int,
                five,
            }
        }
    };
    if rounded >= 100_000 {
        // The fraction rounded up to a whole unit (…99999 -> next integer).
        return Cut {
            negative,
            int: int + 1,
            five: five_digits(0),
        };
    }
    Cut {
        negative,
        int,
        five: five_digits(rounded),
    }
}

/// Appends `printf("%.15g", h(v))` with jansson's clean-up, for `|v| < 2^63`.
///
/// `h(v)` is `int + frac / 10^ndec` computed in doubles, which lands within one ulp of
/// that decimal. When the decimal has at most 15 significant digits, `%.15g` of the
/// double therefore prints exactly the decimal (one ulp is below half a unit of the
/// 15th digit), so it is written straight from the integers: no float formatting at
/// all. Larger integer parts take the general `%.15g` path.
pub(crate) fn write_heuristic(out: &mut Vec<u8>, v: f64) {
    let c = cut(v);
    // int below 10^10: at most 10 + 5 significant digits.
    if c.int >= 10_000_000_000 {
        write_g15(out, heuristic_value(v));
        return;
    }
    // Neuron's trailing zeros are the high zero digits of one word, trimmed without a
    // division per digit. Digit values (0..=9) in bytes 0..5, first digit lowest.
    let five = c.five;
    let values = u64::from_le_bytes(five) - ASCII_ZEROS;
    let ndec = 8 - (values.leading_zeros() / 8) as usize;
    if c.int == 0 && ndec == 5 && values & 0xffff_ffff == 0 {
        // Below 1e-4 %g switches to exponential notation: d e-5.
        let text = [b'-', five[4], b'e', b'-', b'5'];
        out.extend_from_slice(&text[usize::from(!c.negative)..]);
        return;
    }
    // The text is built on the stack, left-aligned, and the whole fixed-size buffer is
    // appended then cut to length: a fixed-size copy is a few moves where a
    // variable-length one is a `memcpy` call. At most "-" + 10 integer digits + "." +
    // the 8 bytes of `five`: 20.
    let mut buf = [0u8; 24];
    buf[0] = b'-';
    let end = usize::from(c.negative) + decimal_len(c.int);
    write_digits_before(&mut buf, end, c.int);
    buf[end] = b'.';
    // All five digits are copied; `ndec` (at least one, a `0` when there are none)
    // says how many count.
    buf[end + 1..end + 9].copy_from_slice(&five);
    let len = out.len() + end + 1 + ndec.max(1);
    out.extend_from_slice(&buf);
    out.truncate(len);
}

/// How many decimal digits `n` has (one for zero).
#[inline(always)]
fn decimal_len(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |l| l as usize + 1)
}

/// Appends `v` in decimal.
///
/// Integers of up to 32 bits (most tag values) take [`write_small_int`]: the digits
/// are laid out left-aligned in a 16-byte stack buffer that is appended whole and
/// cut to length, so there is no `memcpy` call. 64-bit integers go through `itoa`
/// (its digit loop is tuned for them; a two-digit loop on `u64` with the fixed-size
/// copy measured 110 instructions an integer against itoa's 37 plus a `memcpy`).
#[inline(always)]
pub(crate) fn write_int<T: DecimalInt>(out: &mut Vec<u8>, v: T) {
    v.write_to(out);
}

/// An integer type [`write_int`] formats.
pub(crate) trait DecimalInt: Copy {
    /// Appends the decimal text of `self` to `out`.
    fn write_to(self, out: &mut Vec<u8>);
}

macro_rules! small_int {
    ($($t:ty),*) => {$(
        impl DecimalInt for $t {
            #[inline(always)]
            fn write_to(self, out: &mut Vec<u8>) {
                #[allow(unused_comparisons)] // unsigned types are never negative
                let negative = self < 0;
                write_small_int(out, negative, self.unsigned_abs().into());
            }
        }
    )*};
}

macro_rules! unsigned_small_int {
    ($($t:ty),*) => {$(
        impl DecimalInt for $t {
            #[inline(always)]
            fn write_to(self, out: &mut Vec<u8>) {
                write_small_int(out, false, self.into());
            }
        }
    )*};
}

macro_rules! big_int {
    ($($t:ty),*) => {$(
        impl DecimalInt for $t {
            #[inline]
            fn write_to(self, out: &mut Vec<u8>) {
                out.extend_from_slice(itoa::Buffer::new().format(self).as_bytes());
            }
        }
    )*};
}

small_int!(i8, i16, i32);
unsigned_small_int!(u8, u16, u32);
big_int!(i64, u64);

/// Appends `n` in decimal, after a `-` when `negative`.
///
/// The digits are written two at a time from the right, ending at byte 16 of a
/// 32-byte stack buffer; the 16 bytes starting at the number's first character are
/// then appended as one fixed-size block and the vector cut to the number's length
/// (a variable-length append is a `memcpy` call).
// Always inlined: out of line (the writer's per-tag dispatch grew past the inliner's
// budget once BOOL and BIT joined it) it cost int-heavy groups about 4% more.
#[inline(always)]
fn write_small_int(out: &mut Vec<u8>, negative: bool, n: u32) {
    let mut buf = [b'-'; 32];
    let mut at = 16;
    let mut rest = n;
    while rest >= 100 {
        let p = (rest % 100) as usize * 2;
        rest /= 100;
        at -= 2;
        buf[at..at + 2].copy_from_slice(&PAIRS[p..p + 2]);
    }
    if rest >= 10 {
        let p = rest as usize * 2;
        at -= 2;
        buf[at..at + 2].copy_from_slice(&PAIRS[p..p + 2]);
    } else {
        at -= 1;
        buf[at] = b'0' + rest as u8;
    }
    // The byte before the digits is still the `-` the buffer was filled with.
    let start = at - usize::from(negative);
    let end = out.len() + (16 - start);
    let block: &[u8; 16] = buf[start..start + 16].try_into().expect("16 bytes");
    out.extend_from_slice(block);
    out.truncate(end);
}

/// Writes the decimal digits of `n` so that they end just before `buf[end]`, two at a
/// time from [`PAIRS`]. The caller leaves room for them.
#[inline]
fn write_digits_before(buf: &mut [u8], end: usize, mut n: u64) {
    let mut at = end;
    while n >= 100 {
        let p = (n % 100) as usize * 2;
        n /= 100;
        at -= 2;
        buf[at..at + 2].copy_from_slice(&PAIRS[p..p + 2]);
    }
    if n >= 10 {
        let p = n as usize * 2;
        buf[at - 2..at].copy_from_slice(&PAIRS[p..p + 2]);
    } else {
        buf[at - 1] = b'0' + n as u8;
    }
}

/// The two-digit pairs `00` to `99`, for formatting without a division per digit.
const PAIRS: &[u8; 200] = b"\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// `n` (below 10^5) as five ASCII digits, zero-padded, in the first five bytes (the
/// other three are `0`s, so that the digit values of the word are zero there).
#[inline]
fn five_digits(n: u32) -> [u8; 8] {
    debug_assert!(n < 100_000);
    let (first, rest) = (n / 10_000, n % 10_000);
    let (hi, lo) = ((rest / 100) as usize * 2, (rest % 100) as usize * 2);
    [
        b'0' + first as u8,
        PAIRS[hi],
        PAIRS[hi + 1],
        PAIRS[lo],
        PAIRS[lo + 1],
        b'0',
        b'0',
        b'0',
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn g15(v: f64) -> String {
        let mut out = Vec::new();
        write_g15(&mut out, v);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn g15_layout_and_cleanup() {
        assert_eq!(g15(0.0), "0.0");
        assert_eq!(g15(-0.0), "-0.0");
        assert_eq!(g15(1.0), "1.0");
        assert_eq!(g15(100.0), "100.0");
        assert_eq!(g15(0.1), "0.1");
        assert_eq!(g15(1e15), "1e15");
        assert_eq!(g15(1e20), "1e20");
        assert_eq!(g15(1e-5), "1e-5");
        assert_eq!(g15(1e-4), "0.0001");
        assert_eq!(g15(1.2345e-5), "1.2345e-5");
        assert_eq!(g15(999999986991104.0), "999999986991104.0");
        assert_eq!(g15(f64::from(1.1f32)), "1.10000002384186");
        assert_eq!(g15(0.30000000000000004), "0.3");
        assert_eq!(g15(-273.15), "-273.15");
        assert_eq!(g15(f64::MAX), "1.79769313486232e308");
        assert_eq!(g15(5e-324), "4.94065645841247e-324");
        assert_eq!(g15(123456789012345678.0), "1.23456789012346e17");
    }

    #[test]
    fn heuristic_examples_from_the_spec() {
        assert_eq!(g15(heuristic(f64::from(12.345678f32))), "12.34568");
        assert_eq!(g15(heuristic(f64::from(1.1f32))), "1.1");
        assert_eq!(g15(heuristic(1.0 / 3.0)), "0.33333");
        assert_eq!(g15(heuristic(1e-7)), "0.0");
        assert_eq!(g15(heuristic(-1e-20)), "-0.0");
        assert_eq!(g15(heuristic(-0.0)), "0.0");
        assert_eq!(g15(heuristic(99.99999)), "99.99999");
        assert_eq!(g15(heuristic(1234567.125)), "1234567.125");
        // "99" at the last position: k = 3 rounds to three decimals.
        assert_eq!(g15(heuristic(0.12399)), "0.124");
        // The fraction rounds up to a whole unit.
        assert_eq!(g15(heuristic(2.999999)), "3.0");
        assert_eq!(g15(heuristic(-2.999999)), "-3.0");
    }

    fn direct(v: f64) -> String {
        let mut out = Vec::new();
        write_heuristic(&mut out, v);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn direct_heuristic_text_examples() {
        for (v, want) in [
            (0.0, "0.0"),
            (-0.0, "0.0"),
            (-1e-20, "-0.0"),
            (1.2345e-5, "1e-5"),
            (-9.4e-5, "-9e-5"),
            (0.0001, "0.0001"),
            (100.0, "100.0"),
            (2.999999, "3.0"),
            (9999999999.999999, "10000000000.0"),
            (1e15, "1e15"),
            (f64::from(12.345678f32), "12.34568"),
        ] {
            assert_eq!(direct(v), want, "{v:e}");
            assert_eq!(direct(v), g15(heuristic(v)), "{v:e}");
        }
    }

    fn ryu64(v: f64) -> String {
        ryu::Buffer::new().format_finite(v).to_owned()
    }

    fn ryu32(v: f32) -> String {
        ryu::Buffer::new().format_finite(v).to_owned()
    }

    fn shortest64(v: f64) -> String {
        let mut out = Vec::new();
        write_shortest_f64(&mut out, v);
        String::from_utf8(out).unwrap()
    }

    fn shortest32(v: f32) -> String {
        let mut out = Vec::new();
        write_shortest_f32(&mut out, v);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn shortest_is_ryus_text_at_the_edges() {
        for v in [
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.1,
            1e15,
            1e16,
            1e17,
            1e-5,
            1e-6,
            1e-7,
            123456789.0,
            1e21,
            1e22,
            1e300,
            f64::MAX,
            f64::MIN_POSITIVE,
            5e-324,
            12345.6789,
            0.3,
        ] {
            assert_eq!(shortest64(v), ryu64(v), "{v:e}");
            let f = v as f32;
            if f.is_finite() {
                assert_eq!(shortest32(f), ryu32(f), "{f:e}");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(50_000))]

        /// The compact style's floats are ryu's text, whatever the formatter.
        #[test]
        fn shortest_f64_is_ryus_text(bits in any::<u64>()) {
            let v = f64::from_bits(bits);
            prop_assume!(v.is_finite());
            prop_assert_eq!(shortest64(v), ryu64(v));
        }

        #[test]
        fn shortest_f32_is_ryus_text(bits in any::<u32>()) {
            let v = f32::from_bits(bits);
            prop_assume!(v.is_finite());
            prop_assert_eq!(shortest32(v), ryu32(v));
        }

        #[test]
        fn shortest_sensor_values_are_ryus_text(v in -1e7..1e7f64, s in 0i32..8) {
            let v = (v * 10f64.powi(s)).round() / 10f64.powi(s);
            prop_assert_eq!(shortest64(v), ryu64(v));
            prop_assert_eq!(shortest32(v as f32), ryu32(v as f32));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]

        /// The integer-only text equals %.15g of the double Neuron computes.
        #[test]
        fn direct_heuristic_equals_g15_of_h(v in prop_oneof![
            -1e12..1e12f64,
            -100.0..100.0f64,
            -1e-3..1e-3f64,
            any::<f32>().prop_map(f64::from),
            (any::<i64>(), 0i32..9).prop_map(|(n, s)| n as f64 / 10f64.powi(s)),
        ].prop_filter("below 2^63", |v| v.abs() < 9.2e18)) {
            prop_assert_eq!(direct(v), g15(heuristic(v)));
        }
    }

    #[test]
    fn round_nonneg_is_c_round() {
        for x in [
            0.0,
            0.49999999999999994,
            0.5,
            1.5,
            2.5,
            99999.5,
            99999.49999999999,
            4503599627370495.5,
            4503599627370497.0,
        ] {
            assert_eq!(round_nonneg(x), x.round(), "{x}");
        }
    }

    fn int_text<T: DecimalInt + ToString>(v: T) -> (String, String) {
        // Something in front, so that the fixed-size block lands mid-vector.
        let mut out = b"x".to_vec();
        write_int(&mut out, v);
        (
            String::from_utf8(out[1..].to_vec()).expect("ASCII"),
            v.to_string(),
        )
    }

    #[test]
    fn small_integers_at_every_width_edge() {
        for v in [
            0, 1, 9, 10, 99, 100, 999, 1000, 9999, 10_000, 99_999, 100_000,
        ] {
            for v in [v, -v] {
                let (got, want) = int_text(v);
                assert_eq!(got, want);
            }
        }
        for v in [i32::MIN, i32::MAX, i32::MIN + 1] {
            let (got, want) = int_text(v);
            assert_eq!(got, want);
        }
        for v in [i8::MIN, i8::MAX] {
            let (got, want) = int_text(v);
            assert_eq!(got, want);
        }
        for v in [i16::MIN, i16::MAX] {
            let (got, want) = int_text(v);
            assert_eq!(got, want);
        }
        for v in [u8::MAX, 0] {
            let (got, want) = int_text(v);
            assert_eq!(got, want);
        }
        for v in [u16::MAX, 0] {
            let (got, want) = int_text(v);
            assert_eq!(got, want);
        }
        for v in [u32::MAX, 1_000_000_000, 999_999_999] {
            let (got, want) = int_text(v);
            assert_eq!(got, want);
        }
    }

    proptest! {
        #[test]
        fn integers_are_their_decimal_text(a in any::<i32>(), b in any::<u32>(), c in any::<i16>(), d in any::<i64>()) {
            for (got, want) in [int_text(a), int_text(b), int_text(c), int_text(d)] {
                prop_assert_eq!(got, want);
            }
        }
    }

    proptest! {
        #[test]
        fn round_nonneg_matches_round(x in 0.0..9.0e15f64) {
            prop_assert_eq!(round_nonneg(x), x.round());
        }
    }

    #[test]
    fn fixed_rounds_ties_to_even_and_keeps_negative_zero() {
        let f = |v: f64, p: u8| {
            let mut out = Vec::new();
            write_fixed(&mut out, v, p);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(f(0.125, 2), "0.12");
        assert_eq!(f(0.375, 2), "0.38");
        assert_eq!(f(-0.0001, 2), "-0.00");
        assert_eq!(f(100.0, 3), "100.000");
        assert_eq!(f(0.1, 17), "0.10000000000000001");
    }

    /// C's own printf, to compare against.
    #[cfg(unix)]
    mod libc_printf {
        use std::ffi::{c_char, c_int, CStr};

        extern "C" {
            fn snprintf(buf: *mut c_char, n: usize, fmt: *const c_char, ...) -> c_int;
        }

        /// `snprintf(fmt, precision, v)`.
        pub fn format(fmt: &CStr, precision: c_int, v: f64) -> String {
            let mut buf = [0 as c_char; 400];
            // SAFETY: the buffer size is passed, the format takes exactly an int and a
            // double, and snprintf always NUL-terminates within the size.
            unsafe {
                snprintf(buf.as_mut_ptr(), buf.len(), fmt.as_ptr(), precision, v);
                CStr::from_ptr(buf.as_ptr()).to_str().unwrap().to_owned()
            }
        }

        /// `%.15g` with jansson's clean-up, from C's printf.
        pub fn g15(v: f64) -> String {
            let mut s = format(c"%.*g", 15, v);
            if let Some(e) = s.find('e') {
                let (mantissa, exp) = s.split_at(e);
                let exp: i32 = exp[1..].parse().unwrap();
                s = format!("{mantissa}e{exp}");
            } else if !s.contains('.') {
                s.push_str(".0");
            }
            s
        }
    }

    #[cfg(unix)]
    fn any_finite() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<u64>().prop_map(f64::from_bits),
            any::<u32>().prop_map(|b| f64::from(f32::from_bits(b))),
            // Exact binary fractions: ties for %.Nf.
            (any::<i32>(), 0u32..12).prop_map(|(n, s)| f64::from(n) / f64::from(1u32 << s)),
            // Decimal-looking values, as sensors produce.
            (any::<i64>(), 0i32..20).prop_map(|(n, s)| n as f64 / 10f64.powi(s)),
        ]
        .prop_filter("finite", |v| v.is_finite())
    }

    #[cfg(unix)]
    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(20_000))]

        #[test]
        fn g15_matches_c_printf(v in any_finite()) {
            proptest::prop_assert_eq!(g15(v), libc_printf::g15(v));
        }

        /// The integer path of `%.15g` ([`digits15_exact`]) over its whole range and
        /// its edges: every magnitude from 1e-9 to 1e16, a few ulps around each power
        /// of ten (where the magnitude estimate and the round-up to 10^15 matter), and
        /// `f32` values widened (all 15 digits needed).
        #[test]
        fn g15_integer_path_matches_c_printf(
            v in prop_oneof![
                (-9i32..17, 1.0..10.0f64).prop_map(|(e, x)| x * 10f64.powi(e)),
                (-9i32..17, -4i64..5).prop_map(|(e, d)| {
                    f64::from_bits((10f64.powi(e).to_bits() as i64 + d) as u64)
                }),
                (-9i32..17, 1u64..1000).prop_map(|(e, n)| 10f64.powi(e) * (1.0 - n as f64 * 1e-16)),
                any::<f32>().prop_map(f64::from).prop_filter("range", |v| v.abs() > 1e-9 && v.abs() < 1e16),
            ],
        ) {
            proptest::prop_assert_eq!(g15(v), libc_printf::g15(v));
            proptest::prop_assert_eq!(g15(-v), libc_printf::g15(-v));
        }

        #[test]
        fn fixed_matches_c_printf(v in any_finite(), p in 1u8..=17) {
            // Values above 1e200 make 200+ digit strings; the C buffer holds 400.
            proptest::prop_assume!(v.abs() < 1e200);
            let mut out = Vec::new();
            write_fixed(&mut out, v, p);
            proptest::prop_assert_eq!(
                String::from_utf8(out).unwrap(),
                libc_printf::format(c"%.*f", p.into(), v)
            );
        }

        /// The integer path on its own, over the values it is there for (sensor
        /// magnitudes, exact binary ties, negative values rounding to zero), so that
        /// the comparison above is not left to the general path.
        #[test]
        fn fixed_integer_path_matches_c_printf(
            v in prop_oneof![
                -1e6..1e6f64,
                -1e-3..1e-3f64,
                any::<f32>().prop_map(f64::from).prop_filter("sensor range", |v| v.abs() < 1e6),
                (-1_000_000i32..1_000_000, 0u32..20).prop_map(|(n, s)| f64::from(n) / f64::from(1u32 << s)),
                (any::<i32>(), 0i32..18).prop_map(|(n, s)| f64::from(n) / 10f64.powi(s)),
            ],
            p in 1u8..=17,
        ) {
            let mut out = Vec::new();
            // The integer path's range: from 2^-75 (k = 127) up, `n` below 2^64.
            let in_range = v.abs() >= 2f64.powi(-75) && v.abs() * 10f64.powi(p.into()) < 1.8e19;
            let taken = write_fixed_exact(&mut out, v, p);
            proptest::prop_assert!(taken || !in_range, "{v:e} with {p} decimals not taken");
            if taken {
                proptest::prop_assert_eq!(
                    String::from_utf8(out).unwrap(),
                    libc_printf::format(c"%.*f", p.into(), v)
                );
            }
        }

        /// The 64-bit words of precisions 1 to 3 (`k` below 64), over sensor values
        /// and around where that path ends (|v| near 2^-11, `k` = 63 and 64).
        #[test]
        fn fixed_short_precisions_match_c_printf(
            v in prop_oneof![
                -1e6..1e6f64,
                any::<f32>().prop_map(f64::from).prop_filter("sensor range", |v| v.abs() < 1e9),
                (-1_000_000i32..1_000_000, 0u32..4).prop_map(|(n, s)| f64::from(n) / 10f64.powi(s as i32)),
                (1u64..(1 << 53), -12i32..-9).prop_map(|(m, e)| m as f64 * 2f64.powi(e - 52)),
            ],
            p in 1u8..=3,
        ) {
            let mut out = Vec::new();
            write_fixed(&mut out, v, p);
            proptest::prop_assert_eq!(
                String::from_utf8(out).unwrap(),
                libc_printf::format(c"%.*f", p.into(), v)
            );
        }
    }
}
