//! The parts of an X.509 certificate (RFC 5280 §4.1) this crate reads itself, any version:
//! webpki reads only v3, and users have v1 certificates (OpenSSL's `x509 -req` without
//! `-extfile`). Strict DER through [`der`](crate::der); of the extensions only
//! subjectAltName is decoded (the CN fallback needs to know whether there is one, and
//! summaries list it); webpki remains the verifier of everything else.

use std::fmt;
use std::net::IpAddr;

use pkcs8::ObjectIdentifier;

use crate::der::{self, fail, tag, DerResult, Problem, Reader, Tlv};

/// id-ce-subjectAltName
const SUBJECT_ALT_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.17");
/// id-at-commonName
const COMMON_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");

/// Attribute types with the short names OpenSSL prints for them; others print dotted.
const ATTRIBUTE_NAMES: &[(ObjectIdentifier, &str)] = &[
    (COMMON_NAME, "CN"),
    (ObjectIdentifier::new_unwrap("2.5.4.4"), "SN"),
    (ObjectIdentifier::new_unwrap("2.5.4.5"), "serialNumber"),
    (ObjectIdentifier::new_unwrap("2.5.4.6"), "C"),
    (ObjectIdentifier::new_unwrap("2.5.4.7"), "L"),
    (ObjectIdentifier::new_unwrap("2.5.4.8"), "ST"),
    (ObjectIdentifier::new_unwrap("2.5.4.9"), "street"),
    (ObjectIdentifier::new_unwrap("2.5.4.10"), "O"),
    (ObjectIdentifier::new_unwrap("2.5.4.11"), "OU"),
    (ObjectIdentifier::new_unwrap("2.5.4.12"), "title"),
    (ObjectIdentifier::new_unwrap("2.5.4.17"), "postalCode"),
    (ObjectIdentifier::new_unwrap("2.5.4.42"), "GN"),
    (ObjectIdentifier::new_unwrap("2.5.4.46"), "dnQualifier"),
    (ObjectIdentifier::new_unwrap("2.5.4.65"), "pseudonym"),
    (
        ObjectIdentifier::new_unwrap("2.5.4.97"),
        "organizationIdentifier",
    ),
    (
        ObjectIdentifier::new_unwrap("0.9.2342.19200300.100.1.1"),
        "UID",
    ),
    (
        ObjectIdentifier::new_unwrap("0.9.2342.19200300.100.1.25"),
        "DC",
    ),
    (
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.1"),
        "emailAddress",
    ),
];

/// A parsed certificate, borrowing from its DER.
#[derive(Debug)]
pub(crate) struct Certificate<'a> {
    /// The TBSCertificate element: the bytes the issuer signed.
    pub(crate) tbs: &'a [u8],
    /// 1, 2 or 3.
    pub(crate) version: u32,
    /// The content of `signatureAlgorithm` (what webpki's algorithm identifiers hold).
    pub(crate) signature_algorithm: &'a [u8],
    /// Who issued it.
    pub(crate) issuer: Name<'a>,
    /// Start of validity, seconds since the Unix epoch.
    pub(crate) not_before: i64,
    /// End of validity, seconds since the Unix epoch.
    pub(crate) not_after: i64,
    /// Who it is.
    pub(crate) subject: Name<'a>,
    /// The whole SubjectPublicKeyInfo element.
    pub(crate) public_key: &'a [u8],
    /// The subjectAltName entries; `None` without the extension (then the CN is the name).
    pub(crate) alt_names: Option<Vec<AltName>>,
    /// The signature bits.
    pub(crate) signature: &'a [u8],
}

impl<'a> Certificate<'a> {
    /// Parses a DER certificate; the error names the field that is wrong.
    pub(crate) fn parse(input: &'a [u8]) -> DerResult<Certificate<'a>> {
        let outer = der::read_single(input, tag::SEQUENCE, "certificate")?;
        let mut parts = outer.reader();
        let tbs = parts.read(tag::SEQUENCE, "tbsCertificate")?;
        let signature_algorithm = algorithm(&mut parts, "signatureAlgorithm")?;
        let signature = parts.read(tag::BIT_STRING, "signatureValue")?;
        let signature = der::octet_aligned_bits(&signature, "signatureValue")?;
        parts.finish("certificate")?;

        let mut fields = tbs.reader();
        let version = match fields.read_optional(tag::explicit(0), "tbsCertificate.version")? {
            // DER omits the default v1, but an explicit `[0] 0` is harmless: accept it.
            Some(explicit) => {
                let n = der::read_single(explicit.value, tag::INTEGER, "tbsCertificate.version")?;
                match der::small_unsigned(&n, "tbsCertificate.version")? {
                    n @ 0..=2 => n + 1,
                    _ => {
                        return fail(
                            "tbsCertificate.version",
                            Problem::BadValue("not v1, v2 or v3"),
                        )
                    }
                }
            }
            None => 1,
        };
        // Only its presence is checked: CAs write negative and over-long serials, webpki
        // reads them leniently, and nothing here uses the number.
        let serial = fields.read(tag::INTEGER, "tbsCertificate.serialNumber")?;
        if serial.value.is_empty() {
            return fail(
                "tbsCertificate.serialNumber",
                Problem::BadValue("an INTEGER with no content"),
            );
        }
        let inner_algorithm = algorithm(&mut fields, "tbsCertificate.signature")?;
        if inner_algorithm != signature_algorithm {
            return fail(
                "signatureAlgorithm",
                Problem::BadValue("differs from tbsCertificate.signature"),
            );
        }
        let issuer = Name::parse(&mut fields, "tbsCertificate.issuer")?;
        let validity = fields.read(tag::SEQUENCE, "tbsCertificate.validity")?;
        let mut dates = validity.reader();
        let not_before = dates.read_any("tbsCertificate.validity.notBefore")?;
        let not_before = der::time(&not_before, "tbsCertificate.validity.notBefore")?;
        let not_after = dates.read_any("tbsCertificate.validity.notAfter")?;
        let not_after = der::time(&not_after, "tbsCertificate.validity.notAfter")?;
        dates.finish("tbsCertificate.validity")?;
        let subject = Name::parse(&mut fields, "tbsCertificate.subject")?;
        let public_key = public_key_info(&mut fields)?;
        // Unique identifiers (v2 and v3) are read past: nothing uses them.
        fields.read_optional(tag::implicit(1), "tbsCertificate.issuerUniqueID")?;
        fields.read_optional(tag::implicit(2), "tbsCertificate.subjectUniqueID")?;
        let extensions = fields.read_optional(tag::explicit(3), "tbsCertificate.extensions")?;
        fields.finish("tbsCertificate")?;
        let alt_names = match extensions {
            Some(_) if version != 3 => {
                return fail(
                    "tbsCertificate.extensions",
                    Problem::BadValue("extensions in a certificate that is not v3"),
                )
            }
            Some(extensions) => subject_alt_names(&extensions)?,
            None => None,
        };

        Ok(Certificate {
            tbs: tbs.raw,
            version,
            signature_algorithm,
            issuer,
            not_before,
            not_after,
            subject,
            public_key,
            alt_names,
            signature,
        })
    }
}

/// An AlgorithmIdentifier: SEQUENCE { OID, parameters OPTIONAL }; its content.
fn algorithm<'a>(reader: &mut Reader<'a>, field: &'static str) -> DerResult<&'a [u8]> {
    let seq = reader.read(tag::SEQUENCE, field)?;
    let mut parts = seq.reader();
    let oid = parts.read(tag::OID, field)?;
    object_identifier(&oid, field)?;
    if !parts.is_empty() {
        parts.read_any(field)?;
    }
    parts.finish(field)?;
    Ok(seq.value)
}

/// SubjectPublicKeyInfo: SEQUENCE { AlgorithmIdentifier, BIT STRING }; the whole element.
fn public_key_info<'a>(reader: &mut Reader<'a>) -> DerResult<&'a [u8]> {
    const FIELD: &str = "tbsCertificate.subjectPublicKeyInfo";
    let spki = reader.read(tag::SEQUENCE, FIELD)?;
    let mut parts = spki.reader();
    algorithm(&mut parts, FIELD)?;
    parts.read(tag::BIT_STRING, FIELD)?;
    parts.finish(FIELD)?;
    Ok(spki.raw)
}

fn object_identifier(tlv: &Tlv<'_>, field: &'static str) -> DerResult<ObjectIdentifier> {
    ObjectIdentifier::from_bytes(tlv.value).or_else(|_| {
        fail(
            field,
            Problem::BadValue("an OBJECT IDENTIFIER that does not decode"),
        )
    })
}

/// The subjectAltName entries, from the `[3]` extensions element; `None` without one.
/// Other extensions are checked for shape only (webpki judges them for v3 chains).
fn subject_alt_names(extensions: &Tlv<'_>) -> DerResult<Option<Vec<AltName>>> {
    const FIELD: &str = "tbsCertificate.extensions";
    let list = der::read_single(extensions.value, tag::SEQUENCE, FIELD)?;
    let mut items = list.reader();
    if items.is_empty() {
        return fail(FIELD, Problem::BadValue("an empty list of extensions"));
    }
    let mut seen = Vec::new();
    let mut alt_names = None;
    while !items.is_empty() {
        let extension = items.read(tag::SEQUENCE, "extension")?;
        let mut parts = extension.reader();
        let id = object_identifier(
            &parts.read(tag::OID, "extension.extnID")?,
            "extension.extnID",
        )?;
        if let Some(critical) = parts.read_optional(tag::BOOLEAN, "extension.critical")? {
            der::boolean(&critical, "extension.critical")?;
        }
        let value = parts.read(tag::OCTET_STRING, "extension.extnValue")?;
        parts.finish("extension")?;
        if seen.contains(&id) {
            return fail(FIELD, Problem::BadValue("the same extension twice"));
        }
        seen.push(id);
        if id == SUBJECT_ALT_NAME {
            alt_names = Some(general_names(value.value)?);
        }
    }
    Ok(alt_names)
}

/// A subjectAltName entry this crate reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum AltName {
    /// dNSName
    Dns(String),
    /// iPAddress
    Ip(IpAddr),
    /// Another kind (email, URI, directory name, …), by its context tag number.
    Other(u8),
}

impl fmt::Display for AltName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AltName::Dns(name) => write!(f, "DNS:{}", Printable(name)),
            AltName::Ip(ip) => write!(f, "IP:{ip}"),
            AltName::Other(n) => write!(f, "[{n}]"),
        }
    }
}

/// GeneralNames: SEQUENCE SIZE (1..MAX) OF GeneralName (RFC 5280 §4.2.1.6).
fn general_names(input: &[u8]) -> DerResult<Vec<AltName>> {
    const FIELD: &str = "subjectAltName";
    let list = der::read_single(input, tag::SEQUENCE, FIELD)?;
    let mut entries = list.reader();
    let mut names = Vec::new();
    while !entries.is_empty() {
        let entry = entries.read_any(FIELD)?;
        let name = match entry.tag {
            t if t == tag::implicit(2) => match std::str::from_utf8(entry.value) {
                Ok(text) if text.is_ascii() => AltName::Dns(text.to_owned()),
                _ => return fail(FIELD, Problem::BadValue("a dNSName that is not ASCII")),
            },
            t if t == tag::implicit(7) => {
                let ip = match *entry.value {
                    [a, b, c, d] => IpAddr::from([a, b, c, d]),
                    _ => match <[u8; 16]>::try_from(entry.value) {
                        Ok(bytes) => IpAddr::from(bytes),
                        Err(_) => {
                            return fail(
                                FIELD,
                                Problem::BadValue("an iPAddress that is not 4 or 16 bytes"),
                            )
                        }
                    },
                };
                AltName::Ip(ip)
            }
            // Context-specific, primitive or constructed: the other GeneralName kinds.
            t if t & 0xc0 == 0x80 => AltName::Other(t & 0x1f),
            _ => {
                return fail(
                    FIELD,
                    Problem::BadValue("an entry that is not a GeneralName"),
                )
            }
        };
        names.push(name);
    }
    if names.is_empty() {
        return fail(FIELD, Problem::BadValue("no names"));
    }
    Ok(names)
}

/// A distinguished name: its encoding (names are compared by it) and its attributes.
#[derive(Debug)]
pub(crate) struct Name<'a> {
    /// The whole Name element.
    pub(crate) raw: &'a [u8],
    /// Relative distinguished names, in order, each one or more attributes.
    rdns: Vec<Vec<Attribute>>,
}

#[derive(Debug)]
struct Attribute {
    kind: ObjectIdentifier,
    value: AttributeValue,
}

#[derive(Debug)]
enum AttributeValue {
    /// A string type, decoded.
    Text(String),
    /// Anything else, as `#` and the hex of its encoding (RFC 4514).
    Other(String),
}

impl<'a> Name<'a> {
    /// Name ::= SEQUENCE OF SET SIZE (1..MAX) OF SEQUENCE { type OID, value ANY }.
    fn parse(reader: &mut Reader<'a>, field: &'static str) -> DerResult<Name<'a>> {
        let name = reader.read(tag::SEQUENCE, field)?;
        let mut sets = name.reader();
        let mut rdns = Vec::new();
        while !sets.is_empty() {
            let set = sets.read(tag::SET, field)?;
            let mut pairs = set.reader();
            let mut rdn = Vec::new();
            while !pairs.is_empty() {
                let pair = pairs.read(tag::SEQUENCE, field)?;
                let mut parts = pair.reader();
                let kind = object_identifier(&parts.read(tag::OID, field)?, field)?;
                let value = attribute_value(&parts.read_any(field)?, field)?;
                parts.finish(field)?;
                rdn.push(Attribute { kind, value });
            }
            if rdn.is_empty() {
                return fail(
                    field,
                    Problem::BadValue("an empty relative distinguished name"),
                );
            }
            rdns.push(rdn);
        }
        Ok(Name {
            raw: name.raw,
            rdns,
        })
    }

    /// The common names (CN) that are strings, in order.
    pub(crate) fn common_names(&self) -> impl Iterator<Item = &str> {
        self.rdns
            .iter()
            .flatten()
            .filter(|attr| attr.kind == COMMON_NAME)
            .filter_map(|attr| match &attr.value {
                AttributeValue::Text(text) => Some(text.as_str()),
                AttributeValue::Other(_) => None,
            })
    }
}

/// The one-line form `CN=gw-17, O=Plant` (`+` between the attributes of one RDN), with
/// control characters escaped so that a certificate cannot forge log lines.
impl fmt::Display for Name<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, rdn) in self.rdns.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            for (j, attr) in rdn.iter().enumerate() {
                if j > 0 {
                    f.write_str(" + ")?;
                }
                match ATTRIBUTE_NAMES.iter().find(|(oid, _)| *oid == attr.kind) {
                    Some((_, short)) => f.write_str(short)?,
                    None => write!(f, "{}", attr.kind)?,
                }
                match &attr.value {
                    AttributeValue::Text(text) => write!(f, "={}", Printable(text))?,
                    AttributeValue::Other(hex) => write!(f, "={hex}")?,
                }
            }
        }
        Ok(())
    }
}

/// Text with control characters escaped (`\n`, `\u{1b}`).
struct Printable<'a>(&'a str);

impl fmt::Display for Printable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                fmt::Write::write_char(f, c)?;
            }
        }
        Ok(())
    }
}

/// Decodes the string types names use; other types are kept as hex.
fn attribute_value(tlv: &Tlv<'_>, field: &'static str) -> DerResult<AttributeValue> {
    let bad = |why| fail(field, Problem::BadValue(why));
    let text = match tlv.tag {
        tag::UTF8_STRING => match std::str::from_utf8(tlv.value) {
            Ok(text) => text.to_owned(),
            Err(_) => return bad("a UTF8String that is not UTF-8"),
        },
        tag::PRINTABLE_STRING | tag::IA5_STRING | tag::VISIBLE_STRING | tag::NUMERIC_STRING => {
            if !tlv.value.is_ascii() {
                return bad("an ASCII string type with a byte above 127");
            }
            tlv.value.iter().map(|&b| char::from(b)).collect()
        }
        // T.61 is read as Latin-1, as OpenSSL prints it.
        tag::T61_STRING => tlv.value.iter().map(|&b| char::from(b)).collect(),
        tag::BMP_STRING => {
            if !tlv.value.len().is_multiple_of(2) {
                return bad("a BMPString of an odd number of bytes");
            }
            let units = tlv
                .value
                .chunks_exact(2)
                .map(|pair| u16::from_be_bytes([pair[0], pair[1]]));
            match char::decode_utf16(units).collect::<Result<String, _>>() {
                Ok(text) => text,
                Err(_) => return bad("a BMPString that is not UTF-16"),
            }
        }
        tag::UNIVERSAL_STRING => {
            if !tlv.value.len().is_multiple_of(4) {
                return bad("a UniversalString whose length is not a multiple of 4");
            }
            let chars = tlv.value.chunks_exact(4).map(|quad| {
                char::from_u32(u32::from_be_bytes([quad[0], quad[1], quad[2], quad[3]]))
            });
            match chars.collect::<Option<String>>() {
                Some(text) => text,
                None => return bad("a UniversalString that is not UCS-4"),
            }
        }
        _ => {
            let hex = tlv
                .raw
                .iter()
                .map(|b| format!("{b:02X}"))
                .collect::<String>();
            return Ok(AttributeValue::Other(format!("#{hex}")));
        }
    };
    Ok(AttributeValue::Text(text))
}

#[cfg(test)]
#[path = "cert_tests.rs"]
mod tests;
