//! What we build for and how: the dist targets (libc, glibc floor, size limit, Debian
//! architecture) and the architectures `test-arm` runs under qemu-user.

/// How a dist binary links its C library.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Libc {
    /// musl, fully static: no interpreter, no shared libraries.
    Static,
    /// glibc, with the newest symbol version the binary may need (`(major, minor)`).
    Glibc(u32, u32),
}

/// One `cargo xtask dist` target.
#[derive(Debug)]
pub struct DistTarget {
    /// The Rust target triple.
    pub triple: &'static str,
    /// Static, or glibc with its floor.
    pub libc: Libc,
    /// The `.deb` architecture when we ship a package for it.
    pub deb_arch: Option<&'static str>,
    /// qemu-user's program and the sysroot for its `-L` (None: the host runs it).
    pub qemu: Option<(&'static str, Option<&'static str>)>,
    /// The largest binary we ship for it (bytes), so that no build grows past it
    /// silently.
    pub size_limit: u64,
}

/// The size limit of the gateways' binaries (every ARM and RISC-V target): 6 MB, the
/// limit we set for the static aarch64 binary.
pub const GATEWAY_SIZE_LIMIT: u64 = 6_000_000;

/// The size limit of the x86_64 binary: ring carries several x86 assembly variants
/// (SSE, AVX, AVX2) that the ARM builds do not, and x86_64 hosts are not short of flash.
pub const X86_64_SIZE_LIMIT: u64 = 7_000_000;

/// Every dist target. One `.deb` per Debian architecture: the static binaries serve amd64
/// and arm64 (they run on any glibc or none), the glibc 2.17 one serves armhf.
pub const DIST_TARGETS: &[DistTarget] = &[
    DistTarget {
        triple: "aarch64-unknown-linux-musl",
        libc: Libc::Static,
        deb_arch: Some("arm64"),
        qemu: Some(("qemu-aarch64", None)),
        size_limit: GATEWAY_SIZE_LIMIT,
    },
    DistTarget {
        triple: "x86_64-unknown-linux-musl",
        libc: Libc::Static,
        deb_arch: Some("amd64"),
        qemu: None,
        size_limit: X86_64_SIZE_LIMIT,
    },
    DistTarget {
        triple: "aarch64-unknown-linux-gnu",
        libc: Libc::Glibc(2, 17),
        deb_arch: None,
        qemu: Some(("qemu-aarch64", Some("/usr/aarch64-linux-gnu"))),
        size_limit: GATEWAY_SIZE_LIMIT,
    },
    DistTarget {
        triple: "armv7-unknown-linux-gnueabihf",
        libc: Libc::Glibc(2, 17),
        deb_arch: Some("armhf"),
        qemu: Some(("qemu-arm", Some("/usr/arm-linux-gnueabihf"))),
        size_limit: GATEWAY_SIZE_LIMIT,
    },
    // glibc gained riscv64 in 2.27: the lowest this target allows.
    DistTarget {
        triple: "riscv64gc-unknown-linux-gnu",
        libc: Libc::Glibc(2, 27),
        deb_arch: None,
        qemu: Some(("qemu-riscv64", Some("/usr/riscv64-linux-gnu"))),
        size_limit: GATEWAY_SIZE_LIMIT,
    },
];

/// The dist target named `triple`, or an error naming every supported one.
pub fn dist_target(triple: &str) -> anyhow::Result<&'static DistTarget> {
    DIST_TARGETS
        .iter()
        .find(|t| t.triple == triple)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "--target {triple:?} is not a supported dist target; supported: {} (or --all)",
                dist_triples().join(", ")
            )
        })
}

/// The triples of every dist target.
pub fn dist_triples() -> Vec<&'static str> {
    DIST_TARGETS.iter().map(|t| t.triple).collect()
}

/// One architecture `cargo xtask test-arm` covers.
#[derive(Debug)]
pub struct ArmArch {
    /// The name given to `test-arm --target`.
    pub name: &'static str,
    /// The glibc triple the crates' test suites are built for (Debian's cross gcc links
    /// them; Debian's cross libc is the `-L` sysroot qemu runs them with).
    pub test_triple: &'static str,
    /// Debian's cross C compiler (ring's C and assembly, and the linker).
    pub gcc: &'static str,
    /// qemu-user's program for this architecture.
    pub qemu: &'static str,
    /// The cross sysroot for qemu's `-L`.
    pub sysroot: &'static str,
}

/// The architectures `test-arm` runs.
pub const ARM_ARCHES: &[ArmArch] = &[
    ArmArch {
        name: "aarch64",
        test_triple: "aarch64-unknown-linux-gnu",
        gcc: "aarch64-linux-gnu-gcc",
        qemu: "qemu-aarch64",
        sysroot: "/usr/aarch64-linux-gnu",
    },
    ArmArch {
        name: "armv7",
        test_triple: "armv7-unknown-linux-gnueabihf",
        gcc: "arm-linux-gnueabihf-gcc",
        qemu: "qemu-arm",
        sysroot: "/usr/arm-linux-gnueabihf",
    },
    ArmArch {
        name: "riscv64",
        test_triple: "riscv64gc-unknown-linux-gnu",
        gcc: "riscv64-linux-gnu-gcc",
        qemu: "qemu-riscv64",
        sysroot: "/usr/riscv64-linux-gnu",
    },
];

/// The `test-arm` architecture named `name` (its name or its test triple), or an error
/// naming every supported one.
pub fn arm_arch(name: &str) -> anyhow::Result<&'static ArmArch> {
    ARM_ARCHES
        .iter()
        .find(|a| a.name == name || a.test_triple == name)
        .ok_or_else(|| {
            let names: Vec<&str> = ARM_ARCHES.iter().map(|a| a.name).collect();
            anyhow::anyhow!(
                "--target {name:?} is not a test-arm architecture; supported: {} (default: all)",
                names.join(", ")
            )
        })
}

impl ArmArch {
    /// The dist targets whose packaged binaries run on this architecture.
    pub fn dist_targets(&self) -> impl Iterator<Item = &'static DistTarget> + '_ {
        DIST_TARGETS
            .iter()
            .filter(move |t| t.qemu.is_some_and(|(q, _)| q == self.qemu))
    }
}
