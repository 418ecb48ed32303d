//! Where a measurement was made: the machine and growlm's version, written beside every
//! measured table (docs/design.md §Evaluation protocol).

/// CPU model, cores and OS.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|p| p.1.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{cpu}, {cores} cores, {}, {}", simd_level(), std::env::consts::OS)
}

/// The widest SIMD level the CPU kernels (growlm's and `gemm`'s) choose here: runs agree bit
/// for bit only between machines of the same level (docs/training.md).
pub fn simd_level() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return "AVX-512";
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            return "AVX2+FMA";
        }
    }
    std::env::consts::ARCH
}

/// growlm's version with the git revision of the working directory, when there is one.
pub fn version() -> String {
    let rev = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    format!(
        "growlm {}{}",
        env!("CARGO_PKG_VERSION"),
        rev.map_or(String::new(), |r| format!(" (git {r})"))
    )
}

#[cfg(test)]
mod simd_tests {
    use super::*;

    /// The level named is the one /proc/cpuinfo's flags give, and the machine line names it.
    #[test]
    fn the_simd_level_is_the_cpus_and_the_machine_line_names_it() {
        let level = simd_level();
        assert!(machine().contains(level));
        let Ok(info) = std::fs::read_to_string("/proc/cpuinfo") else {
            return;
        };
        let flags: Vec<&str> = info
            .lines()
            .find(|l| l.starts_with("flags"))
            .map_or(vec![], |l| l.split_whitespace().collect());
        let has = |f: &str| flags.contains(&f);
        if cfg!(target_arch = "x86_64") && !flags.is_empty() {
            let expected = if has("avx512f") {
                "AVX-512"
            } else if has("avx2") && has("fma") {
                "AVX2+FMA"
            } else {
                "x86_64"
            };
            assert_eq!(level, expected);
        }
    }
}
