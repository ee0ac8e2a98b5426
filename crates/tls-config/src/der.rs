//! A strict DER reader: tag-length-value elements, checked against the input, and the two
//! X.509 time types. Only what [`cert`](crate::cert) needs; every malformed input is an
//! error naming the field being read, never a panic (no indexing past a checked length,
//! no `unsafe`, no recursion).
//!
//! DER, not BER: indefinite lengths, lengths in more bytes than needed and multi-byte tags
//! are refused, as webpki refuses them.

use std::fmt;

/// Universal tags read by this crate.
pub(crate) mod tag {
    /// BOOLEAN
    pub(crate) const BOOLEAN: u8 = 0x01;
    /// INTEGER
    pub(crate) const INTEGER: u8 = 0x02;
    /// BIT STRING
    pub(crate) const BIT_STRING: u8 = 0x03;
    /// OCTET STRING
    pub(crate) const OCTET_STRING: u8 = 0x04;
    /// OBJECT IDENTIFIER
    pub(crate) const OID: u8 = 0x06;
    /// UTF8String
    pub(crate) const UTF8_STRING: u8 = 0x0c;
    /// NumericString
    pub(crate) const NUMERIC_STRING: u8 = 0x12;
    /// PrintableString
    pub(crate) const PRINTABLE_STRING: u8 = 0x13;
    /// TeletexString (T61String)
    pub(crate) const T61_STRING: u8 = 0x14;
    /// IA5String
    pub(crate) const IA5_STRING: u8 = 0x16;
    /// UTCTime
    pub(crate) const UTC_TIME: u8 = 0x17;
    /// GeneralizedTime
    pub(crate) const GENERALIZED_TIME: u8 = 0x18;
    /// VisibleString
    pub(crate) const VISIBLE_STRING: u8 = 0x1a;
    /// UniversalString (UCS-4)
    pub(crate) const UNIVERSAL_STRING: u8 = 0x1c;
    /// BMPString (UCS-2)
    pub(crate) const BMP_STRING: u8 = 0x1e;
    /// SEQUENCE (constructed)
    pub(crate) const SEQUENCE: u8 = 0x30;
    /// SET (constructed)
    pub(crate) const SET: u8 = 0x31;

    /// `[n]` context-specific, constructed (EXPLICIT tagging).
    pub(crate) const fn explicit(n: u8) -> u8 {
        0xa0 | n
    }

    /// `[n]` context-specific, primitive (IMPLICIT tagging of a primitive type).
    pub(crate) const fn implicit(n: u8) -> u8 {
        0x80 | n
    }
}

/// Why DER input was refused: the field being read and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DerError {
    /// The ASN.1 field, as RFC 5280 names it (`tbsCertificate.validity.notAfter`).
    pub(crate) field: &'static str,
    /// What is wrong.
    pub(crate) problem: Problem,
}

/// The kinds of malformed DER.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Problem {
    /// The input ends before the element (or its length) does.
    Truncated,
    /// The field is missing: the enclosing element ends first.
    Missing,
    /// A BER indefinite length (`0x80`), which DER does not allow.
    IndefiniteLength,
    /// A length in more bytes than needed, or a reserved length byte.
    NonMinimalLength,
    /// A length that does not fit in 4 bytes.
    LengthTooLong,
    /// A multi-byte (high-number) tag, which no certificate field uses.
    HighTagNumber,
    /// A different element than the one this field must be.
    UnexpectedTag {
        /// The tag the field must have.
        expected: u8,
        /// The tag found.
        found: u8,
    },
    /// Bytes after the element that must end its enclosing one.
    TrailingData,
    /// The element is well formed but its value is not valid for the field.
    BadValue(&'static str),
}

impl fmt::Display for DerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let field = self.field;
        match &self.problem {
            Problem::Truncated => write!(f, "{field}: the data ends inside it (truncated)"),
            Problem::Missing => write!(f, "{field}: missing"),
            Problem::IndefiniteLength => {
                write!(
                    f,
                    "{field}: indefinite length (BER), which DER does not allow"
                )
            }
            Problem::NonMinimalLength => {
                write!(f, "{field}: its length is not in DER's shortest form")
            }
            Problem::LengthTooLong => write!(f, "{field}: length larger than 4 GiB"),
            Problem::HighTagNumber => write!(f, "{field}: multi-byte tag"),
            Problem::UnexpectedTag { expected, found } => write!(
                f,
                "{field}: expected tag 0x{expected:02x}, found 0x{found:02x}"
            ),
            Problem::TrailingData => write!(f, "{field}: unexpected data after it"),
            Problem::BadValue(why) => write!(f, "{field}: {why}"),
        }
    }
}

impl std::error::Error for DerError {}

/// A result of reading DER.
pub(crate) type DerResult<T> = Result<T, DerError>;

/// `Err` for `field` with `problem`.
pub(crate) fn fail<T>(field: &'static str, problem: Problem) -> DerResult<T> {
    Err(DerError { field, problem })
}

/// One element: its tag, its content and its whole encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tlv<'a> {
    /// The identifier octet.
    pub(crate) tag: u8,
    /// The content octets.
    pub(crate) value: &'a [u8],
    /// Tag, length and content: what signatures cover and names are compared by.
    pub(crate) raw: &'a [u8],
}

impl<'a> Tlv<'a> {
    /// A reader over the content, for a constructed element.
    pub(crate) fn reader(&self) -> Reader<'a> {
        Reader::new(self.value)
    }
}

/// Reads elements one after another from a byte slice.
#[derive(Clone, Debug)]
pub(crate) struct Reader<'a> {
    input: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `input`.
    pub(crate) fn new(input: &'a [u8]) -> Reader<'a> {
        Reader { input }
    }

    /// True when everything was read.
    pub(crate) fn is_empty(&self) -> bool {
        self.input.is_empty()
    }

    /// The tag of the next element, without reading it.
    pub(crate) fn peek_tag(&self) -> Option<u8> {
        self.input.first().copied()
    }

    /// The next element, whatever its tag.
    pub(crate) fn read_any(&mut self, field: &'static str) -> DerResult<Tlv<'a>> {
        let input = self.input;
        let Some((&tag, rest)) = input.split_first() else {
            return fail(field, Problem::Missing);
        };
        if tag & 0x1f == 0x1f {
            return fail(field, Problem::HighTagNumber);
        }
        let Some((&first, rest)) = rest.split_first() else {
            return fail(field, Problem::Truncated);
        };
        let (len, rest) = match first {
            0..=0x7f => (usize::from(first), rest),
            0x80 => return fail(field, Problem::IndefiniteLength),
            0xff => return fail(field, Problem::NonMinimalLength),
            _ => {
                let n = usize::from(first & 0x7f);
                if n > 4 {
                    return fail(field, Problem::LengthTooLong);
                }
                let Some((bytes, rest)) = rest.split_at_checked(n) else {
                    return fail(field, Problem::Truncated);
                };
                // Shortest form: no leading zero byte, and the long form only from 128 on.
                if bytes[0] == 0 {
                    return fail(field, Problem::NonMinimalLength);
                }
                let len = bytes
                    .iter()
                    .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
                if len < 0x80 {
                    return fail(field, Problem::NonMinimalLength);
                }
                (len, rest)
            }
        };
        let Some((value, rest)) = rest.split_at_checked(len) else {
            return fail(field, Problem::Truncated);
        };
        let raw = &input[..input.len() - rest.len()];
        self.input = rest;
        Ok(Tlv { tag, value, raw })
    }

    /// The next element, which must have tag `expected`.
    pub(crate) fn read(&mut self, expected: u8, field: &'static str) -> DerResult<Tlv<'a>> {
        match self.peek_tag() {
            Some(found) if found != expected => {
                fail(field, Problem::UnexpectedTag { expected, found })
            }
            _ => self.read_any(field),
        }
    }

    /// The next element when it has tag `tag`; `None` (nothing read) otherwise.
    pub(crate) fn read_optional(
        &mut self,
        tag: u8,
        field: &'static str,
    ) -> DerResult<Option<Tlv<'a>>> {
        if self.peek_tag() == Some(tag) {
            self.read_any(field).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Succeeds when nothing is left: `field` is the element that must end here.
    pub(crate) fn finish(&self, field: &'static str) -> DerResult<()> {
        if self.is_empty() {
            Ok(())
        } else {
            fail(field, Problem::TrailingData)
        }
    }
}

/// Reads exactly one element with tag `expected` from `input`, nothing after it.
pub(crate) fn read_single<'a>(
    input: &'a [u8],
    expected: u8,
    field: &'static str,
) -> DerResult<Tlv<'a>> {
    let mut reader = Reader::new(input);
    let tlv = reader.read(expected, field)?;
    reader.finish(field)?;
    Ok(tlv)
}

/// The content of each element of a DER `SEQUENCE { a, b, … }`, in order; `None` when
/// `input` is not exactly one well-formed SEQUENCE (for sniffing file formats).
pub(crate) fn sequence_elements(input: &[u8]) -> Option<Vec<&[u8]>> {
    let mut elements = read_single(input, tag::SEQUENCE, "SEQUENCE").ok()?.reader();
    let mut out = Vec::new();
    while !elements.is_empty() {
        out.push(elements.read_any("SEQUENCE element").ok()?.value);
    }
    Some(out)
}

/// A DER BOOLEAN's value (only `0x00` and `0xff` are DER).
pub(crate) fn boolean(tlv: &Tlv<'_>, field: &'static str) -> DerResult<bool> {
    match tlv.value {
        [0x00] => Ok(false),
        [0xff] => Ok(true),
        _ => fail(
            field,
            Problem::BadValue("a BOOLEAN must be one byte, 00 or FF"),
        ),
    }
}

/// A small non-negative DER INTEGER (a version number).
pub(crate) fn small_unsigned(tlv: &Tlv<'_>, field: &'static str) -> DerResult<u32> {
    match tlv.value {
        [n] if *n < 0x80 => Ok(u32::from(*n)),
        _ => fail(
            field,
            Problem::BadValue("expected a small non-negative INTEGER"),
        ),
    }
}

/// The bytes of a BIT STRING whose length is a whole number of bytes (keys, signatures and
/// key usages in certificates are).
pub(crate) fn octet_aligned_bits<'a>(tlv: &Tlv<'a>, field: &'static str) -> DerResult<&'a [u8]> {
    match tlv.value.split_first() {
        Some((0, bits)) => Ok(bits),
        Some(_) => fail(
            field,
            Problem::BadValue("a BIT STRING that is not a whole number of bytes"),
        ),
        None => fail(field, Problem::BadValue("a BIT STRING with no content")),
    }
}

/// A UTCTime or GeneralizedTime (RFC 5280 §4.1.2.5: `YYMMDDHHMMSSZ`, years 1950–2049, or
/// `YYYYMMDDHHMMSSZ`) as seconds since the Unix epoch.
pub(crate) fn time(tlv: &Tlv<'_>, field: &'static str) -> DerResult<i64> {
    let bad = |why| fail(field, Problem::BadValue(why));
    let (year, rest) = match (tlv.tag, tlv.value.len()) {
        (tag::UTC_TIME, 13) => match digits(&tlv.value[..2]) {
            Some(yy) => {
                let yy = i64::from(yy);
                (if yy < 50 { 2000 + yy } else { 1900 + yy }, &tlv.value[2..])
            }
            None => return bad("a UTCTime that is not YYMMDDHHMMSSZ"),
        },
        (tag::GENERALIZED_TIME, 15) => match digits(&tlv.value[..4]) {
            Some(yyyy) => (i64::from(yyyy), &tlv.value[4..]),
            None => return bad("a GeneralizedTime that is not YYYYMMDDHHMMSSZ"),
        },
        (tag::UTC_TIME, _) => return bad("a UTCTime that is not YYMMDDHHMMSSZ"),
        (tag::GENERALIZED_TIME, _) => return bad("a GeneralizedTime that is not YYYYMMDDHHMMSSZ"),
        _ => return bad("expected a UTCTime or GeneralizedTime"),
    };
    // rest: MMDDHHMMSSZ
    let (Some(month), Some(day), Some(hour), Some(minute), Some(second), Some(b'Z')) = (
        digits(&rest[0..2]),
        digits(&rest[2..4]),
        digits(&rest[4..6]),
        digits(&rest[6..8]),
        digits(&rest[8..10]),
        rest.get(10).copied(),
    ) else {
        return bad("a time that is not digits followed by Z (UTC)");
    };
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return bad("a date or time of day that does not exist");
    }
    let days = days_from_civil(year, month, day);
    Ok(days * 86_400 + i64::from(hour * 3600 + minute * 60 + second))
}

/// Two or four ASCII digits as a number; `None` for anything else.
fn digits(bytes: &[u8]) -> Option<u32> {
    bytes.iter().try_fold(0u32, |acc, b| {
        b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
    })
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &[u8]) -> DerResult<Tlv<'_>> {
        Reader::new(bytes).read_any("x")
    }

    #[test]
    fn lengths_are_checked_and_must_be_der() {
        let ok = read(&[0x04, 0x02, b'a', b'b', 0xee]).unwrap();
        assert_eq!((ok.tag, ok.value, ok.raw.len()), (0x04, &b"ab"[..], 4));
        let long: Vec<u8> = [0x04, 0x81, 0x80].into_iter().chain([7; 128]).collect();
        assert_eq!(read(&long).unwrap().value.len(), 128);

        let problem = |bytes: &[u8]| read(bytes).unwrap_err().problem;
        assert_eq!(problem(&[]), Problem::Missing);
        assert_eq!(problem(&[0x04]), Problem::Truncated);
        assert_eq!(problem(&[0x04, 0x03, 1, 2]), Problem::Truncated);
        assert_eq!(problem(&[0x04, 0x82, 0x01]), Problem::Truncated);
        assert_eq!(problem(&[0x30, 0x80, 0, 0]), Problem::IndefiniteLength);
        assert_eq!(
            problem(&[0x04, 0x81, 0x05, 1, 2, 3, 4, 5]),
            Problem::NonMinimalLength
        );
        assert_eq!(
            problem(&[0x04, 0x82, 0x00, 0x80]),
            Problem::NonMinimalLength
        );
        assert_eq!(problem(&[0x04, 0xff]), Problem::NonMinimalLength);
        assert_eq!(
            problem(&[0x04, 0x85, 1, 0, 0, 0, 0]),
            Problem::LengthTooLong
        );
        assert_eq!(problem(&[0x1f, 0x81, 0x01, 0x00]), Problem::HighTagNumber);
        // A length near usize::MAX cannot wrap around the bounds check.
        assert_eq!(
            problem(&[0x04, 0x84, 0xff, 0xff, 0xff, 0xff, 0]),
            Problem::Truncated
        );
    }

    #[test]
    fn tags_and_trailing_data_are_checked() {
        let err = read_single(&[0x02, 0x01, 0x05], tag::SEQUENCE, "tbsCertificate").unwrap_err();
        assert_eq!(
            err.to_string(),
            "tbsCertificate: expected tag 0x30, found 0x02"
        );
        let err = read_single(&[0x02, 0x01, 0x05, 0x00], tag::INTEGER, "serial").unwrap_err();
        assert_eq!(err.problem, Problem::TrailingData);
    }

    #[test]
    fn sequence_elements_splits_a_sequence() {
        // SEQUENCE { INTEGER 5, OCTET STRING "ab" }
        let der = [0x30, 0x07, 0x02, 0x01, 0x05, 0x04, 0x02, b'a', b'b'];
        assert_eq!(
            sequence_elements(&der).unwrap(),
            vec![&[5u8][..], &b"ab"[..]]
        );
        assert!(sequence_elements(&der[..8]).is_none());
        assert!(sequence_elements(&[0x30, 0x00, 0x00]).is_none());
    }

    #[test]
    fn versions_and_booleans_are_der() {
        let tlv = |value: &'static [u8]| Tlv {
            tag: tag::INTEGER,
            value,
            raw: value,
        };
        assert_eq!(small_unsigned(&tlv(&[2]), "v"), Ok(2));
        assert!(small_unsigned(&tlv(&[0x80]), "v").is_err());
        assert_eq!(boolean(&tlv(&[0xff]), "b"), Ok(true));
        assert!(boolean(&tlv(&[0x01]), "b").is_err());
    }

    fn at(tag: u8, text: &'static str) -> DerResult<i64> {
        time(
            &Tlv {
                tag,
                value: text.as_bytes(),
                raw: text.as_bytes(),
            },
            "notAfter",
        )
    }

    #[test]
    fn times_convert_to_unix_seconds() {
        // Reference values from `date -u -d … +%s`.
        assert_eq!(at(tag::UTC_TIME, "700101000000Z"), Ok(0));
        assert_eq!(at(tag::UTC_TIME, "491231235959Z"), Ok(2_524_607_999));
        assert_eq!(at(tag::UTC_TIME, "500101000000Z"), Ok(-631_152_000));
        assert_eq!(
            at(tag::GENERALIZED_TIME, "20500101000000Z"),
            Ok(2_524_608_000)
        );
        assert_eq!(
            at(tag::GENERALIZED_TIME, "20240229120000Z"),
            Ok(1_709_208_000)
        );
        assert_eq!(
            at(tag::GENERALIZED_TIME, "99991231235959Z"),
            Ok(253_402_300_799)
        );
        for bad in [
            "700101000000",
            "7001010000000",
            "700132000000Z",
            "700229000000Z",
            "701301000000Z",
            "700101240000Z",
            "7001010000+0Z",
            "700101000000+",
        ] {
            assert!(at(tag::UTC_TIME, bad).is_err(), "{bad}");
        }
        assert!(at(tag::GENERALIZED_TIME, "20500101000000.5Z").is_err());
        assert!(at(tag::GENERALIZED_TIME, "21000229000000Z").is_err());
        assert!(at(tag::OCTET_STRING, "700101000000Z").is_err());
    }
}
