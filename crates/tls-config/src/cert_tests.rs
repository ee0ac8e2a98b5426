//! [`Certificate::parse`] against certificates made by the `openssl` command line, field
//! by field against what `openssl x509 -text` says about them, and against hostile input.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use rustls_pki_types::alg_id;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, UnixTime};
use tagwire_test_pki::{p, Openssl};

use super::*;
use crate::der::Problem;
use crate::explain::format_utc;

/// What `openssl x509 -text` (names with `-nameopt utf8,sep_comma_plus_space`, the form
/// [`Name`]'s `Display` writes) and `-dates -dateopt iso_8601` say about a certificate.
struct OpensslView {
    version: u32,
    subject: String,
    issuer: String,
    not_before: String,
    not_after: String,
    alt_names: Option<Vec<String>>,
    /// `openssl asn1parse` output, to check which string and time types were written.
    asn1: String,
}

fn openssl_view(run: &Openssl, cert: &Path) -> OpensslView {
    let text = run.openssl(&[
        "x509",
        "-in",
        p(cert),
        "-noout",
        "-text",
        "-nameopt",
        "utf8,sep_comma_plus_space",
    ]);
    let line_after = |label: &str| {
        text.lines()
            .find_map(|line| line.trim().strip_prefix(label).map(str::trim))
            .unwrap_or_else(|| panic!("no {label} in\n{text}"))
            .to_owned()
    };
    let version = line_after("Version:")
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // The SAN entries are on the line after the extension's title.
    let alt_names = text
        .lines()
        .skip_while(|line| !line.contains("X509v3 Subject Alternative Name"))
        .nth(1)
        .map(|line| {
            line.trim()
                .split(", ")
                .map(|entry| match entry.split_once(':') {
                    Some(("DNS", name)) => format!("DNS:{name}"),
                    // OpenSSL writes IPv6 uncompressed (`0:0:…:1`); Rust parses that form.
                    Some(("IP Address", ip)) => format!("IP:{}", ip.parse::<IpAddr>().unwrap()),
                    Some(("email", _)) => "[1]".to_owned(),
                    other => panic!("unexpected SAN entry {other:?}"),
                })
                .collect()
        });
    let dates = run.openssl(&[
        "x509",
        "-in",
        p(cert),
        "-noout",
        "-dates",
        "-dateopt",
        "iso_8601",
    ]);
    let date = |key: &str| {
        let value = dates
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in {dates}"));
        // `2026-11-30 00:38:57Z` -> our `2026-11-30 00:38:57 UTC`
        format!("{} UTC", value.trim_end_matches('Z'))
    };
    OpensslView {
        version,
        subject: line_after("Subject:"),
        issuer: line_after("Issuer:"),
        not_before: date("notBefore="),
        not_after: date("notAfter="),
        alt_names,
        asn1: run.openssl(&["asn1parse", "-in", p(cert)]),
    }
}

fn der_of(cert: &Path) -> Vec<u8> {
    CertificateDer::from_pem_file(cert).unwrap().to_vec()
}

fn utc(secs: i64) -> String {
    let secs = u64::try_from(secs).unwrap();
    format_utc(UnixTime::since_unix_epoch(Duration::from_secs(secs)))
}

/// `openssl req` with the string-mask configuration `cnf` and a new P-256 key unless
/// `args` name another (`-newkey rsa:2048`); `args` end with what to write.
fn req(run: &Openssl, cnf: &str, args: &[&str]) {
    let mut all = vec!["req", "-config", cnf];
    if !args.contains(&"-newkey") {
        all.extend_from_slice(&["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
    }
    all.push("-nodes");
    all.extend_from_slice(args);
    run.openssl(&all);
}

/// Parses `cert` and compares every field with OpenSSL's account of it.
fn assert_same_as_openssl(run: &Openssl, cert: &Path) -> Vec<u8> {
    let der = der_of(cert);
    let parsed = Certificate::parse(&der).unwrap_or_else(|e| panic!("{}: {e}", p(cert)));
    let view = openssl_view(run, cert);
    assert_eq!(parsed.version, view.version, "{}", p(cert));
    assert_eq!(parsed.subject.to_string(), view.subject, "{}", p(cert));
    assert_eq!(parsed.issuer.to_string(), view.issuer, "{}", p(cert));
    assert_eq!(utc(parsed.not_before), view.not_before, "{}", p(cert));
    assert_eq!(utc(parsed.not_after), view.not_after, "{}", p(cert));
    let ours = parsed
        .alt_names
        .as_ref()
        .map(|names| names.iter().map(ToString::to_string).collect::<Vec<_>>());
    assert_eq!(ours, view.alt_names, "{}", p(cert));
    // The signed part is the first element inside the outer SEQUENCE.
    let outer = Reader::new(&der).read_any("certificate").unwrap();
    assert!(outer.value.starts_with(parsed.tbs));
    der
}

/// A directory with an `openssl` runner (the system configuration, as a user has it) and
/// string-mask configurations for `req`.
fn workshop() -> (tempfile::TempDir, Openssl) {
    let dir = tempfile::tempdir().unwrap();
    for (name, mask) in [
        ("printable.cnf", "default"),
        ("bmp.cnf", "MASK:0x800"),
        ("utf8.cnf", "utf8only"),
    ] {
        std::fs::write(
            dir.path().join(name),
            format!("[req]\ndistinguished_name = dn\nstring_mask = {mask}\nutf8 = yes\n[dn]\n"),
        )
        .unwrap();
    }
    std::fs::write(
        dir.path().join("ext.cnf"),
        "[no_san]\nbasicConstraints = CA:FALSE\n\
         [san]\nsubjectAltName = DNS:gw.example, IP:10.0.0.5, IP:::1, email:ops@gw.example\n",
    )
    .unwrap();
    let run = Openssl::plain(dir.path());
    (dir, run)
}

#[test]
fn self_signed_cas_in_each_string_type_read_as_openssl_reads_them() {
    let (dir, run) = workshop();
    let cases: [(&str, &str, &[&str], &str); 3] = [
        // PrintableString (and a multi-valued RDN), RSA, UTCTime.
        (
            "printable",
            "/C=DE/O=Plant+OU=Line 1/CN=ca.example",
            &["-newkey", "rsa:2048", "-days", "30", "-multivalue-rdn"],
            "PRINTABLESTRING   :Plant",
        ),
        // UTF8String with non-ASCII text; notAfter after 2049: GeneralizedTime.
        (
            "utf8",
            "/C=DE/O=Wärme GmbH/CN=gw-ü",
            &["-days", "10000"],
            "UTF8STRING        :W",
        ),
        // BMPString (UCS-2) for every attribute but C (PrintableString by definition).
        (
            "bmp",
            "/C=DE/O=Wärme GmbH/L=Zürich/CN=ca-ß",
            &["-days", "30"],
            "BMPSTRING",
        ),
    ];
    for (mask, subject, args, expected_type) in cases {
        let cert = dir.path().join(format!("{mask}.pem"));
        let key = dir.path().join(format!("{mask}.key"));
        let mut rest = vec![
            "-x509",
            "-subj",
            subject,
            "-keyout",
            p(&key),
            "-out",
            p(&cert),
        ];
        rest.extend_from_slice(args);
        req(&run, &format!("{mask}.cnf"), &rest);
        let view = openssl_view(&run, &cert);
        assert!(view.asn1.contains(expected_type), "{mask}: {}", view.asn1);
        if mask == "utf8" {
            assert!(view.asn1.contains("GENERALIZEDTIME"), "{}", view.asn1);
        }
        let der = assert_same_as_openssl(&run, &cert);
        let parsed = Certificate::parse(&der).unwrap();
        assert_eq!(parsed.subject.raw, parsed.issuer.raw);
        // The key openssl wrote is the one in the certificate.
        let public = dir.path().join(format!("{mask}.pub.der"));
        run.openssl(&[
            "pkey",
            "-in",
            p(&key),
            "-pubout",
            "-outform",
            "DER",
            "-out",
            p(&public),
        ]);
        assert_eq!(parsed.public_key, std::fs::read(&public).unwrap());
        let expected_alg = if mask == "printable" {
            alg_id::RSA_PKCS1_SHA256
        } else {
            alg_id::ECDSA_SHA256
        };
        assert_eq!(parsed.signature_algorithm, expected_alg.as_ref());
    }
    let parsed_names = |mask: &str| {
        let der = der_of(&dir.path().join(format!("{mask}.pem")));
        let cert = Certificate::parse(&der).unwrap();
        cert.subject
            .common_names()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(parsed_names("utf8"), ["gw-ü"]);
    assert_eq!(parsed_names("bmp"), ["ca-ß"]);
}

#[test]
fn v1_and_v3_leaves_with_and_without_subject_alt_names() {
    let (dir, run) = workshop();
    let path = |name: &str| dir.path().join(name);
    req(
        &run,
        "utf8.cnf",
        &[
            "-x509",
            "-days",
            "30",
            "-subj",
            "/CN=tagwire test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
    );
    req(
        &run,
        "utf8.cnf",
        &[
            "-new",
            "-subj",
            "/O=Plant/CN=localhost",
            "-keyout",
            "leaf.key",
            "-out",
            "leaf.csr",
        ],
    );
    let issue = |out: &str, extra: &[&str]| {
        let mut args = vec![
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-days",
            "30",
            "-set_serial",
            "0x00ff01",
            "-out",
            out,
        ];
        args.extend_from_slice(extra);
        run.openssl(&args);
        let der = assert_same_as_openssl(&run, &path(out));
        let ca = der_of(&path("ca.pem"));
        let ca = Certificate::parse(&ca).unwrap();
        let leaf = Certificate::parse(&der).unwrap();
        assert_eq!(leaf.issuer.raw, ca.subject.raw, "{out}");
        assert_eq!(
            leaf.subject.common_names().collect::<Vec<_>>(),
            ["localhost"]
        );
        (leaf.version, leaf.alt_names.clone())
    };
    // OpenSSL 3.0's `x509 -req` without -extfile writes a v1 certificate.
    assert_eq!(issue("v1.pem", &[]), (1, None));
    assert_eq!(
        issue(
            "no-san.pem",
            &["-extfile", "ext.cnf", "-extensions", "no_san"]
        ),
        (3, None)
    );
    let (version, names) = issue("san.pem", &["-extfile", "ext.cnf", "-extensions", "san"]);
    assert_eq!(version, 3);
    assert_eq!(
        names.unwrap(),
        [
            AltName::Dns("gw.example".into()),
            AltName::Ip("10.0.0.5".parse().unwrap()),
            AltName::Ip("::1".parse().unwrap()),
            AltName::Other(1),
        ]
    );
}

/// A certificate made once for the hostile-input tests.
fn sample() -> Vec<u8> {
    let (dir, run) = workshop();
    let cert = dir.path().join("c.pem");
    let key = dir.path().join("c.key");
    req(
        &run,
        "utf8.cnf",
        &[
            "-x509",
            "-days",
            "30",
            "-subj",
            "/O=Plant/CN=gw-17",
            "-addext",
            "subjectAltName=DNS:gw-17,IP:10.0.0.5",
            "-keyout",
            p(&key),
            "-out",
            p(&cert),
        ],
    );
    der_of(&cert)
}

#[test]
fn every_truncation_is_an_error() {
    let der = sample();
    assert!(Certificate::parse(&der).is_ok());
    for len in 0..der.len() {
        let err = Certificate::parse(&der[..len]).unwrap_err();
        assert!(
            matches!(err.problem, Problem::Truncated | Problem::Missing),
            "{len}: {err}"
        );
    }
    let mut longer = der.clone();
    longer.push(0);
    assert_eq!(
        Certificate::parse(&longer).unwrap_err().problem,
        Problem::TrailingData
    );
}

#[test]
fn wrong_and_indefinite_lengths_are_errors() {
    let der = sample();
    // The outer length, one more and one less.
    let (len_at, len) = (2, usize::from(u16::from_be_bytes([der[2], der[3]])));
    assert_eq!(der[1], 0x82, "a certificate of 256 bytes to 64 KiB");
    assert_eq!(len + 4, der.len());
    for wrong in [len + 1, len - 1] {
        let mut bad = der.clone();
        bad[len_at..len_at + 2].copy_from_slice(&u16::try_from(wrong).unwrap().to_be_bytes());
        assert!(Certificate::parse(&bad).is_err(), "length {wrong}");
    }
    // BER's indefinite length, with its end-of-contents octets.
    let mut indefinite = vec![0x30, 0x80];
    indefinite.extend_from_slice(&der[4..]);
    indefinite.extend_from_slice(&[0, 0]);
    assert_eq!(
        Certificate::parse(&indefinite).unwrap_err().problem,
        Problem::IndefiniteLength
    );
    // The same length in three bytes instead of two.
    let mut long_form = vec![0x30, 0x83, 0x00];
    long_form.extend_from_slice(&der[2..]);
    assert_eq!(
        Certificate::parse(&long_form).unwrap_err().problem,
        Problem::NonMinimalLength
    );
    // A length of 4 GiB - 1 in a short input.
    let huge = [0x30, 0x84, 0xff, 0xff, 0xff, 0xff, 0x30, 0x00];
    assert_eq!(
        Certificate::parse(&huge).unwrap_err().problem,
        Problem::Truncated
    );
}

/// A DER tag and length header for `len` bytes of content.
fn header(tag: u8, len: usize) -> Vec<u8> {
    if len < 0x80 {
        return vec![tag, len as u8];
    }
    let bytes = len.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    let mut out = vec![tag, 0x80 | (bytes.len() - skip) as u8];
    out.extend_from_slice(&bytes[skip..]);
    out
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    // 100,000 SEQUENCEs in each other: the headers, innermost first, then reversed.
    let mut headers = Vec::new();
    let mut inner_len = 0usize;
    for _ in 0..100_000 {
        let header = header(tag::SEQUENCE, inner_len);
        inner_len += header.len();
        headers.push(header);
    }
    let nested: Vec<u8> = headers.into_iter().rev().flatten().collect();
    assert_eq!(nested.len(), inner_len);
    assert!(Certificate::parse(&nested).is_err());
}

#[test]
fn mutated_certificates_never_panic() {
    let der = sample();
    // xorshift64*: reproducible without a dependency; the seed is in every message.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let mut accepted = 0;
    for round in 0..20_000 {
        let mut bad = der.clone();
        let edits = 1 + next() % 4;
        for _ in 0..edits {
            let at = (next() % bad.len() as u64) as usize;
            match next() % 4 {
                0 => bad[at] = next() as u8,
                1 => bad[at] ^= 1 << (next() % 8),
                2 => bad.truncate(at.max(1)),
                _ => bad.insert(at, next() as u8),
            }
        }
        // Whatever it says, it says it without panicking, and what it accepts prints.
        match Certificate::parse(&bad) {
            Ok(cert) => {
                accepted += 1;
                let _ = (cert.subject.to_string(), cert.issuer.to_string());
                let _ = cert
                    .alt_names
                    .iter()
                    .flatten()
                    .map(ToString::to_string)
                    .count();
            }
            Err(err) => assert!(!err.to_string().is_empty(), "round {round}"),
        }
    }
    // Flipping bits inside names, keys and signatures leaves well-formed certificates:
    // some must parse, or the loop would test only the first few bytes.
    assert!(accepted > 0);
}

#[test]
fn control_characters_in_names_are_escaped() {
    let (dir, run) = workshop();
    let cert = dir.path().join("c.pem");
    let key = dir.path().join("c.key");
    req(
        &run,
        "utf8.cnf",
        &[
            "-x509",
            "-days",
            "1",
            "-subj",
            "/CN=evil\nWARN forged",
            "-keyout",
            p(&key),
            "-out",
            p(&cert),
        ],
    );
    let der = der_of(&cert);
    let parsed = Certificate::parse(&der).unwrap();
    assert_eq!(parsed.subject.to_string(), "CN=evil\\nWARN forged");
}

#[test]
fn errors_name_the_field() {
    let der = sample();
    // Replace notAfter's tag (UTCTime, 0x17) by OCTET STRING: find the second UTCTime.
    let at = der
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w == &[0x17, 0x0d])
        .nth(1)
        .unwrap()
        .0;
    let mut bad = der.clone();
    bad[at] = 0x04;
    let err = Certificate::parse(&bad).unwrap_err();
    assert_eq!(
        err.to_string(),
        "tbsCertificate.validity.notAfter: expected a UTCTime or GeneralizedTime"
    );
}
