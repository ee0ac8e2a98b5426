//! Where each uplink's disk cache lives: a filesystem-safe directory name per uplink,
//! and the check that no two uplinks' caches are the same or nested directories (two
//! disk logs on one directory would deliver each other's messages).

use std::path::{Component, Path, PathBuf};

/// The directory name of an uplink's cache: its name with every byte outside
/// `[A-Za-z0-9_-]` written as `%XX` (hex). Injective, so distinct uplinks get distinct
/// directories, and never `.`, `..`, empty or containing a separator. An empty name
/// (refused elsewhere) still maps to a name that is not the parent directory.
pub(super) fn dir_name(uplink: &str) -> String {
    let mut out = String::with_capacity(uplink.len());
    for b in uplink.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.is_empty() {
        out.push('%');
    }
    out
}

/// The cache directory of `uplink` below `dir`. Releases before the escaping kept
/// dots as they were: when only that older directory exists it is used, so that
/// messages cached by an older release are still delivered after an upgrade.
pub(super) fn cache_dir(dir: &Path, uplink: &str) -> PathBuf {
    let safe = dir.join(dir_name(uplink));
    let legacy_name: String = uplink
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    // `.` and `..` were the unsafe names: never reuse them.
    if legacy_name.chars().any(|c| c != '.') {
        let legacy = dir.join(&legacy_name);
        if legacy != safe && legacy.is_dir() && !safe.exists() {
            return legacy;
        }
    }
    safe
}

/// `path` made absolute (against the working directory), component by component:
/// symbolic links resolved while the path exists, `.` dropped, `..` taking the real
/// parent. Two spellings of one directory resolve to the same path.
pub(super) fn resolve(path: &Path) -> PathBuf {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    let mut out = PathBuf::new();
    for c in absolute.components() {
        match c {
            Component::CurDir => {}
            // `out` holds no symbolic link, so its parent is the real one.
            Component::ParentDir => {
                out.pop();
            }
            other => {
                out.push(other);
                if let Ok(real) = out.canonicalize() {
                    out = real;
                }
            }
        }
    }
    out
}

/// Whether two resolved directories are the same or one contains the other.
pub(super) fn overlap(a: &Path, b: &Path) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_so_that_none_leaves_its_directory() {
        assert_eq!(dir_name("cloud-1_a"), "cloud-1_a");
        assert_eq!(dir_name(".."), "%2E%2E");
        assert_eq!(dir_name("."), "%2E");
        assert_eq!(dir_name("a/b"), "a%2Fb");
        assert_eq!(dir_name("a%2Fb"), "a%252Fb");
        assert_eq!(dir_name("é"), "%C3%A9");
        assert_eq!(dir_name(""), "%");
        let base = Path::new("/var/cache/tagwire");
        for name in ["..", ".", "../x", "a/../../b", "/etc"] {
            let d = resolve(&base.join(dir_name(name)));
            assert_eq!(d.parent(), Some(base), "{name}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn different_spellings_of_one_directory_resolve_alike() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let want = resolve(&real.join("new/a"));
        assert_eq!(resolve(&link.join("new/a")), want);
        assert_eq!(resolve(&tmp.path().join("real/./x/../new/a")), want);
        assert!(overlap(&resolve(&real), &want));
        assert!(!overlap(
            &resolve(&real.join("a")),
            &resolve(&real.join("ab"))
        ));
    }
}
