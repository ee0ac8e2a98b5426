//! Splitting PEM text into blocks.
//!
//! Decoding of the blocks rustls understands (certificates, plain keys) is left to
//! `rustls-pki-types`' `PemObject`. This scanner only finds block boundaries, labels and
//! RFC 1421 headers, because `PemObject` skips labels it does not know
//! (`ENCRYPTED PRIVATE KEY`) and cannot read the `Proc-Type`/`DEK-Info` headers of
//! OpenSSL's legacy encrypted keys: those blocks are decoded here.

/// One `-----BEGIN X-----` … `-----END X-----` block.
pub(crate) struct Block<'a> {
    /// `X`, e.g. `CERTIFICATE`, `RSA PRIVATE KEY`.
    pub(crate) label: &'a str,
    /// `Name: value` header lines (only legacy encrypted keys have them).
    pub(crate) headers: Vec<(&'a str, &'a str)>,
    /// The block text from its BEGIN line to its END line, both included.
    pub(crate) raw: &'a str,
    /// The base64 body lines (read by the decryption, the `encrypted-keys` feature).
    #[cfg_attr(not(feature = "encrypted-keys"), allow(dead_code))]
    body: Vec<&'a str>,
}

#[cfg(feature = "encrypted-keys")]
use pkcs8::der::zeroize::Zeroizing;

impl Block<'_> {
    /// The value of a header, by case-insensitive name.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }

    /// The decoded body. Used for blocks `PemObject` does not decode; zeroized on drop
    /// because it is key material.
    #[cfg(feature = "encrypted-keys")]
    pub(crate) fn decode_body(&self) -> Result<Zeroizing<Vec<u8>>, String> {
        use base64ct::{Base64, Encoding as _};
        let compact: Zeroizing<String> = Zeroizing::new(
            self.body
                .iter()
                .flat_map(|line| line.chars())
                .filter(|c| !c.is_ascii_whitespace())
                .collect(),
        );
        Base64::decode_vec(&compact)
            .map(Zeroizing::new)
            .map_err(|err| format!("the {} block is not valid base64 ({err})", self.label))
    }
}

/// Finds every PEM block in `text`. Text outside blocks (OpenSSL's `Bag Attributes`,
/// `subject=` lines, comments) is ignored, as OpenSSL does.
pub(crate) fn blocks(text: &str) -> Result<Vec<Block<'_>>, String> {
    let mut found = Vec::new();
    let mut lines = LineIter { text, pos: 0 };
    while let Some((start, line)) = lines.next() {
        let Some(label) = begin_label(line) else {
            continue;
        };
        let mut headers = Vec::new();
        let mut body = Vec::new();
        let mut in_headers = true;
        let end = loop {
            let Some((line_start, line)) = lines.next() else {
                return Err(format!(
                    "the {label} block has no -----END {label}----- line (is the text cut \
                     short?)"
                ));
            };
            let trimmed = line.trim();
            if let Some(rest) = trimmed.strip_prefix("-----END ") {
                let end_label = rest.trim_end_matches('-').trim();
                if end_label != label {
                    return Err(format!(
                        "the {label} block ends with -----END {end_label}-----"
                    ));
                }
                break line_start + line.len();
            }
            if begin_label(line).is_some() {
                return Err(format!(
                    "the {label} block has no -----END {label}----- line before the next \
                     -----BEGIN line"
                ));
            }
            if in_headers {
                if let Some((name, value)) = trimmed.split_once(':') {
                    headers.push((name.trim(), value.trim()));
                    continue;
                }
                in_headers = false;
            }
            if !trimmed.is_empty() {
                body.push(trimmed);
            }
        };
        found.push(Block {
            label,
            headers,
            raw: &text[start..end],
            body,
        });
    }
    Ok(found)
}

/// `Some(label)` when `line` is a `-----BEGIN label-----` line.
fn begin_label(line: &str) -> Option<&str> {
    let rest = line.trim().strip_prefix("-----BEGIN ")?;
    let label = rest.strip_suffix("-----")?;
    Some(label.trim())
}

/// Lines with their byte offsets, accepting `\n`, `\r\n` and lone `\r` line ends.
struct LineIter<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Iterator for LineIter<'a> {
    type Item = (usize, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.text.len() {
            return None;
        }
        let start = self.pos;
        let rest = &self.text[start..];
        let (len, skip) = match rest.find(['\n', '\r']) {
            Some(i) if rest[i..].starts_with("\r\n") => (i, 2),
            Some(i) => (i, 1),
            None => (rest.len(), 0),
        };
        self.pos = start + len + skip;
        Some((start, &rest[..len]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_blocks_headers_and_raw_text() {
        let text = "Bag Attributes\r\n    friendlyName: x\r\n-----BEGIN RSA PRIVATE KEY-----\r\n\
                    Proc-Type: 4,ENCRYPTED\r\nDEK-Info: AES-128-CBC,00\r\n\r\nQUJD\r\nREVG\r\n\
                    -----END RSA PRIVATE KEY-----\r\n-----BEGIN CERTIFICATE-----\nAAAA\n\
                    -----END CERTIFICATE-----";
        let found = blocks(text).unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].label, "RSA PRIVATE KEY");
        assert_eq!(found[0].header("proc-type"), Some("4,ENCRYPTED"));
        assert_eq!(found[0].header("DEK-Info"), Some("AES-128-CBC,00"));
        #[cfg(feature = "encrypted-keys")]
        assert_eq!(&found[0].decode_body().unwrap()[..], b"ABCDEF");
        assert!(found[0].raw.starts_with("-----BEGIN RSA"));
        assert!(found[0].raw.ends_with("-----END RSA PRIVATE KEY-----"));
        assert_eq!(found[1].label, "CERTIFICATE");
        assert!(found[1].headers.is_empty());
    }

    #[test]
    fn reports_missing_and_mismatched_end_lines() {
        let err = blocks("-----BEGIN CERTIFICATE-----\nAAAA\n").err().unwrap();
        assert!(err.contains("no -----END CERTIFICATE----- line"), "{err}");
        let err = blocks("-----BEGIN CERTIFICATE-----\nAAAA\n-----END PRIVATE KEY-----\n")
            .err()
            .unwrap();
        assert!(err.contains("ends with -----END PRIVATE KEY-----"), "{err}");
    }
}
