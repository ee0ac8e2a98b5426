//! A small ELF reader: what a binary needs from the system it runs on, read from the
//! binary itself (the interpreter, the shared libraries, and the newest `GLIBC_x.y`
//! symbol version in its version-needs section), so the glibc floor is measured, not
//! assumed. Little-endian ELF32 and ELF64 (every target we ship).

use std::path::Path;

use anyhow::{bail, ensure, Context, Result};

/// What a binary needs to run.
#[derive(Debug, Default)]
pub struct Needs {
    /// It names a program interpreter (a dynamic loader such as ld-linux).
    pub interpreter: bool,
    /// The shared libraries of its `DT_NEEDED` entries.
    pub libraries: Vec<String>,
    /// The newest `GLIBC_x.y` version among its symbol version needs.
    pub glibc: Option<(u32, u32)>,
}

impl Needs {
    /// Fully static: no interpreter and no shared library.
    pub fn is_static(&self) -> bool {
        !self.interpreter && self.libraries.is_empty()
    }
}

const PT_INTERP: u32 = 3;
const SHT_DYNAMIC: u32 = 6;
const SHT_GNU_VERNEED: u32 = 0x6fff_fffe;
const DT_NEEDED: u64 = 1;

/// Reads the needs of the ELF file at `path`.
pub fn read_needs(path: &Path) -> Result<Needs> {
    let data = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse(&data).with_context(|| format!("{}: not a readable ELF file", path.display()))
}

/// Little-endian field access with bounds checks (a truncated file is an error, never a
/// panic).
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u16(&self, at: usize) -> Result<u16> {
        let b = self.0.get(at..at + 2).context("truncated")?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&self, at: usize) -> Result<u32> {
        let b = self.0.get(at..at + 4).context("truncated")?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&self, at: usize) -> Result<u64> {
        let b = self.0.get(at..at + 8).context("truncated")?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }
    /// A word: 4 bytes in ELF32, 8 in ELF64.
    fn word(&self, wide: bool, at: usize) -> Result<u64> {
        if wide {
            self.u64(at)
        } else {
            self.u32(at).map(u64::from)
        }
    }
    fn cstr(&self, at: usize) -> Result<String> {
        let rest = self.0.get(at..).context("string offset out of range")?;
        let end = rest
            .iter()
            .position(|&b| b == 0)
            .context("unterminated string")?;
        Ok(String::from_utf8_lossy(&rest[..end]).into_owned())
    }
}

struct Section {
    kind: u32,
    offset: usize,
    size: usize,
    link: usize,
    info: usize,
}

fn parse(data: &[u8]) -> Result<Needs> {
    let b = Bytes(data);
    ensure!(data.get(..4) == Some(b"\x7fELF"), "no ELF magic");
    let wide = match data.get(4) {
        Some(1) => false,
        Some(2) => true,
        other => bail!("unknown ELF class {other:?}"),
    };
    ensure!(data.get(5) == Some(&1), "not little-endian");
    let (phoff, shoff, ph) = if wide {
        (b.u64(0x20)?, b.u64(0x28)?, 0x36)
    } else {
        (u64::from(b.u32(0x1c)?), u64::from(b.u32(0x20)?), 0x2a)
    };
    let (phentsize, phnum) = (b.u16(ph)? as usize, b.u16(ph + 2)? as usize);
    let (shentsize, shnum) = (b.u16(ph + 4)? as usize, b.u16(ph + 6)? as usize);

    let mut needs = Needs::default();
    for i in 0..phnum {
        if b.u32(phoff as usize + i * phentsize)? == PT_INTERP {
            needs.interpreter = true;
        }
    }

    let sections: Vec<Section> = (0..shnum)
        .map(|i| {
            let at = shoff as usize + i * shentsize;
            let w = if wide { 8 } else { 4 };
            // sh_name, sh_type (4 each), then sh_flags, sh_addr, sh_offset, sh_size (words),
            // then sh_link, sh_info (4 each).
            let offset = b.word(wide, at + 8 + 2 * w)? as usize;
            let size = b.word(wide, at + 8 + 3 * w)? as usize;
            Ok(Section {
                kind: b.u32(at + 4)?,
                offset,
                size,
                link: b.u32(at + 8 + 4 * w)? as usize,
                info: b.u32(at + 12 + 4 * w)? as usize,
            })
        })
        .collect::<Result<_>>()?;
    let strtab =
        |s: &Section| -> Result<usize> { Ok(sections.get(s.link).context("bad sh_link")?.offset) };

    for s in &sections {
        match s.kind {
            SHT_DYNAMIC => {
                let strings = strtab(s)?;
                let entry = if wide { 16 } else { 8 };
                for at in (s.offset..s.offset + s.size).step_by(entry) {
                    if b.word(wide, at)? == DT_NEEDED {
                        let name = b.word(wide, at + entry / 2)? as usize;
                        needs.libraries.push(b.cstr(strings + name)?);
                    }
                }
            }
            SHT_GNU_VERNEED => {
                let strings = strtab(s)?;
                // Verneed entries (sh_info of them), each with a chain of Vernaux names.
                let mut need = s.offset;
                for _ in 0..s.info {
                    let count = b.u16(need + 2)?;
                    let mut aux = need + b.u32(need + 8)? as usize;
                    for _ in 0..count {
                        let name = b.cstr(strings + b.u32(aux + 8)? as usize)?;
                        if let Some(v) = glibc_version(&name) {
                            needs.glibc = needs.glibc.max(Some(v));
                        }
                        aux += b.u32(aux + 12)? as usize;
                    }
                    let next = b.u32(need + 12)? as usize;
                    if next == 0 {
                        break;
                    }
                    need += next;
                }
            }
            _ => {}
        }
    }
    Ok(needs)
}

/// `GLIBC_2.17` -> (2, 17); other version names (`GLIBC_PRIVATE`, `GCC_3.0`) -> None.
fn glibc_version(name: &str) -> Option<(u32, u32)> {
    let v = name.strip_prefix("GLIBC_")?;
    let mut parts = v.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_names() {
        assert_eq!(glibc_version("GLIBC_2.17"), Some((2, 17)));
        assert_eq!(glibc_version("GLIBC_2.3.4"), Some((2, 3)));
        assert_eq!(glibc_version("GLIBC_PRIVATE"), None);
        assert_eq!(glibc_version("GCC_3.0"), None);
    }

    /// This test binary is linked against the host's glibc: it has an interpreter, needs
    /// libc, and a glibc version at least 2.2.5 (the oldest x86_64 version).
    #[test]
    fn reads_a_dynamic_glibc_binary() {
        let needs = read_needs(&std::env::current_exe().unwrap()).unwrap();
        assert!(needs.interpreter);
        assert!(
            needs.libraries.iter().any(|l| l.starts_with("libc.so")),
            "{needs:?}"
        );
        assert!(needs.glibc.is_some_and(|v| v >= (2, 2)), "{needs:?}");
        assert!(!needs.is_static());
    }

    #[test]
    fn rejects_what_is_not_elf() {
        assert!(parse(b"#!/bin/sh\n").is_err());
        // a valid header pointing past the end of the file
        let mut short = b"\x7fELF\x02\x01\x01".to_vec();
        short.resize(0x40, 0);
        short[0x20] = 0xff;
        short[0x38] = 1;
        assert!(parse(&short).is_err());
    }
}
