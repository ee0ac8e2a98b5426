//! OpenSSL's legacy encrypted PEM keys: a `RSA PRIVATE KEY` / `EC PRIVATE KEY` block with
//! `Proc-Type: 4,ENCRYPTED` and `DEK-Info: CIPHER,IV-IN-HEX` headers, as written by
//! `openssl rsa -traditional -aes256` or `openssl ec -aes256`.
//!
//! The scheme: key = EVP_BytesToKey(MD5, password, salt = first 8 bytes of the IV,
//! one iteration), then CBC decryption with PKCS#7 padding. No maintained crate decrypts
//! it, so it is built from RustCrypto pieces here.

use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut, KeyIvInit};
use md5::{Digest as _, Md5};
use pkcs8::der::zeroize::Zeroizing;

/// A `DEK-Info` cipher this module decrypts (all in CBC mode).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CbcCipher {
    Aes128,
    Aes192,
    Aes256,
    DesEde3,
    Des,
}

impl CbcCipher {
    fn from_name(name: &str) -> Option<CbcCipher> {
        match name.to_ascii_uppercase().as_str() {
            "AES-128-CBC" => Some(CbcCipher::Aes128),
            "AES-192-CBC" => Some(CbcCipher::Aes192),
            "AES-256-CBC" => Some(CbcCipher::Aes256),
            "DES-EDE3-CBC" => Some(CbcCipher::DesEde3),
            "DES-CBC" => Some(CbcCipher::Des),
            _ => None,
        }
    }

    /// The name as OpenSSL writes it in `DEK-Info`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            CbcCipher::Aes128 => "AES-128-CBC",
            CbcCipher::Aes192 => "AES-192-CBC",
            CbcCipher::Aes256 => "AES-256-CBC",
            CbcCipher::DesEde3 => "DES-EDE3-CBC",
            CbcCipher::Des => "DES-CBC",
        }
    }

    fn key_len(self) -> usize {
        match self {
            CbcCipher::Aes128 => 16,
            CbcCipher::Aes192 | CbcCipher::DesEde3 => 24,
            CbcCipher::Aes256 => 32,
            CbcCipher::Des => 8,
        }
    }

    fn block_len(self) -> usize {
        match self {
            CbcCipher::Aes128 | CbcCipher::Aes192 | CbcCipher::Aes256 => 16,
            CbcCipher::DesEde3 | CbcCipher::Des => 8,
        }
    }
}

/// Why a `DEK-Info` header cannot be used.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum DekInfoError {
    /// A cipher name we do not decrypt (the name as written).
    UnsupportedCipher(String),
    /// Not `CIPHER,HEX` or an IV of the wrong length.
    Malformed(String),
}

/// The parsed `DEK-Info` header.
#[derive(Debug)]
pub(crate) struct DekInfo {
    pub(crate) cipher: CbcCipher,
    iv: Vec<u8>,
}

impl DekInfo {
    pub(crate) fn parse(value: &str) -> Result<DekInfo, DekInfoError> {
        let Some((name, iv_hex)) = value.split_once(',') else {
            return Err(DekInfoError::Malformed(format!(
                "DEK-Info \"{value}\" is not CIPHER,IV"
            )));
        };
        let name = name.trim();
        let cipher = CbcCipher::from_name(name)
            .ok_or_else(|| DekInfoError::UnsupportedCipher(name.to_owned()))?;
        let iv = decode_hex(iv_hex.trim())
            .ok_or_else(|| DekInfoError::Malformed("the DEK-Info IV is not hex".to_owned()))?;
        if iv.len() != cipher.block_len() {
            return Err(DekInfoError::Malformed(format!(
                "the DEK-Info IV has {} bytes, {} needs {}",
                iv.len(),
                cipher.name(),
                cipher.block_len()
            )));
        }
        Ok(DekInfo { cipher, iv })
    }

    /// Decrypts the block body. `None` means the padding is wrong after decryption, which
    /// (for a body of whole blocks) means the password is wrong.
    pub(crate) fn decrypt(
        &self,
        password: &[u8],
        ciphertext: &[u8],
    ) -> Result<Option<Zeroizing<Vec<u8>>>, String> {
        if ciphertext.is_empty() || !ciphertext.len().is_multiple_of(self.cipher.block_len()) {
            return Err(format!(
                "the encrypted key is {} bytes long, not a whole number of {}-byte {} blocks \
                 (is the file damaged?)",
                ciphertext.len(),
                self.cipher.block_len(),
                self.cipher.name()
            ));
        }
        // OpenSSL uses the first 8 bytes of the IV as the salt (PKCS5_SALT_LEN).
        let key = evp_bytes_to_key_md5(password, &self.iv[..8], self.cipher.key_len());
        let plain = match self.cipher {
            CbcCipher::Aes128 => cbc_decrypt::<aes::Aes128>(&key, &self.iv, ciphertext),
            CbcCipher::Aes192 => cbc_decrypt::<aes::Aes192>(&key, &self.iv, ciphertext),
            CbcCipher::Aes256 => cbc_decrypt::<aes::Aes256>(&key, &self.iv, ciphertext),
            CbcCipher::DesEde3 => cbc_decrypt::<des::TdesEde3>(&key, &self.iv, ciphertext),
            CbcCipher::Des => cbc_decrypt::<des::Des>(&key, &self.iv, ciphertext),
        };
        Ok(plain)
    }
}

fn cbc_decrypt<C>(key: &[u8], iv: &[u8], ciphertext: &[u8]) -> Option<Zeroizing<Vec<u8>>>
where
    cbc::Decryptor<C>: KeyIvInit + BlockDecryptMut,
    C: cbc::cipher::BlockDecryptMut + cbc::cipher::BlockCipher,
{
    // Key and IV lengths come from `CbcCipher`, so this cannot fail for the ciphers above.
    let decryptor = cbc::Decryptor::<C>::new_from_slices(key, iv).ok()?;
    decryptor
        .decrypt_padded_vec_mut::<Pkcs7>(ciphertext)
        .ok()
        .map(Zeroizing::new)
}

/// OpenSSL's `EVP_BytesToKey` with MD5 and one iteration:
/// D1 = MD5(password ‖ salt), Di = MD5(Di-1 ‖ password ‖ salt),
/// key = D1 ‖ D2 ‖ … cut to `len` bytes. (The IV is not derived: it is given in `DEK-Info`.)
fn evp_bytes_to_key_md5(password: &[u8], salt: &[u8], len: usize) -> Zeroizing<Vec<u8>> {
    let mut key = Zeroizing::new(Vec::with_capacity(len + 16));
    let mut previous: Option<Zeroizing<[u8; 16]>> = None;
    while key.len() < len {
        let mut md5 = Md5::new();
        if let Some(previous) = &previous {
            md5.update(&previous[..]);
        }
        md5.update(password);
        md5.update(salt);
        let digest = Zeroizing::new(<[u8; 16]>::from(md5.finalize()));
        key.extend_from_slice(&digest[..]);
        previous = Some(digest);
    }
    key.truncate(len);
    key
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evp_bytes_to_key_matches_openssl() {
        // `openssl enc -aes-256-cbc -md md5 -nosalt -P -pass pass:password` prints
        // key=5F4DCC3B5AA765D61D8327DEB882CF992B95990A9151374ABD8FF8C5A7A0FE08
        // (no salt: D1 = MD5("password"), D2 = MD5(D1 ‖ "password")).
        let key = evp_bytes_to_key_md5(b"password", b"", 32);
        assert_eq!(
            hex(&key),
            "5f4dcc3b5aa765d61d8327deb882cf992b95990a9151374abd8ff8c5a7a0fe08"
        );
        // With a salt: `openssl enc -aes-192-cbc -md md5 -S 0102030405060708 -P
        // -pass pass:tagwire`.
        let key = evp_bytes_to_key_md5(b"tagwire", &[1, 2, 3, 4, 5, 6, 7, 8], 24);
        assert_eq!(
            hex(&key),
            "8f75cb2a1a6f896904fc9535fd92ee57d858ff582ec3b126"
        );
    }

    #[test]
    fn parses_dek_info() {
        let info = DekInfo::parse("AES-256-CBC,000102030405060708090A0B0C0D0E0F").unwrap();
        assert_eq!(info.cipher, CbcCipher::Aes256);
        assert_eq!(info.iv.len(), 16);
        assert_eq!(
            DekInfo::parse("CAMELLIA-256-CBC,00").unwrap_err(),
            DekInfoError::UnsupportedCipher("CAMELLIA-256-CBC".into())
        );
        assert!(matches!(
            DekInfo::parse("DES-EDE3-CBC,0001020304050607AA"),
            Err(DekInfoError::Malformed(_))
        ));
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
