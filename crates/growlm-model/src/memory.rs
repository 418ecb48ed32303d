//! Will it fit? The memory a job will allocate, estimated from its configs before anything
//! is allocated (weights, gradients, AdamW state, activations, a growth's two models), and
//! the memory this machine has for it: the cgroup limit or `/proc/meminfo`'s
//! `MemAvailable` on Linux, whichever is lower.
//!
//! `GROWLM_MEMORY` overrides what is available: a size (`64GiB`, `512MiB`, bytes) to allow
//! a tight fit or to test, or `off` to skip the check.

use crate::ModelError;

/// The environment variable that overrides the memory available.
pub const ENV: &str = "GROWLM_MEMORY";

/// Memory available to this process, and where the figure comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct Available {
    /// Bytes.
    pub bytes: f64,
    /// Where it was read (`MemAvailable in /proc/meminfo`, `cgroup memory.max`, `GROWLM_MEMORY`).
    pub source: String,
}

/// Parses a size: bytes, or a number with `K`/`M`/`G`/`T` (`iB`, `B` optional; binary units).
pub fn parse_size(text: &str) -> Option<f64> {
    let t = text.trim();
    let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.trim().parse().ok().filter(|n: &f64| *n >= 0.0 && n.is_finite())?;
    let scale = match unit
        .trim()
        .to_ascii_lowercase()
        .trim_end_matches('b')
        .trim_end_matches('i')
    {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0f64.powi(2),
        "g" => 1024.0f64.powi(3),
        "t" => 1024.0f64.powi(4),
        _ => return None,
    };
    Some(n * scale)
}

/// `MemAvailable` from the text of `/proc/meminfo`, in bytes.
pub fn meminfo_available(meminfo: &str) -> Option<f64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024.0)
}

/// A cgroup limit from the text of `memory.max` (v2) or `memory.limit_in_bytes` (v1):
/// none for `max` or a figure too large to be a limit.
pub fn cgroup_limit(text: &str) -> Option<f64> {
    let v: f64 = text.trim().parse().ok()?;
    (v < 1e18).then_some(v)
}

/// The memory available to this process: `GROWLM_MEMORY` when set (none for `off`), else
/// [`host_available`].
pub fn available() -> Result<Option<Available>, ModelError> {
    available_or(host_available)
}

/// `GROWLM_MEMORY` when set (none for `off`), else what `probe` finds: the host's memory,
/// or a device's (`growlm-train` probes a CUDA device's free memory).
pub fn available_or(probe: impl FnOnce() -> Option<Available>) -> Result<Option<Available>, ModelError> {
    if let Ok(v) = std::env::var(ENV) {
        if v.trim().eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        let bytes = parse_size(&v).ok_or_else(|| ModelError::InvalidConfig {
            key: ENV.into(),
            reason: format!("`{v}` is not a size; give bytes or e.g. `64GiB`, or `off` to skip the memory check"),
        })?;
        return Ok(Some(Available {
            bytes,
            source: format!("{ENV}={v}"),
        }));
    }
    Ok(probe())
}

/// The host memory available to this process: the lowest of the cgroup limit (less what
/// the cgroup already uses) and `MemAvailable`; none where neither can be read.
pub fn host_available() -> Option<Available> {
    let read = |p: &str| std::fs::read_to_string(p).ok();
    let mut best: Option<Available> = None;
    let mut offer = |bytes: f64, source: &str| {
        if best.as_ref().is_none_or(|b| bytes < b.bytes) {
            best = Some(Available {
                bytes,
                source: source.into(),
            });
        }
    };
    if let Some(b) = read("/proc/meminfo").as_deref().and_then(meminfo_available) {
        offer(b, "MemAvailable in /proc/meminfo");
    }
    for (limit, usage, name) in [
        (
            "/sys/fs/cgroup/memory.max",
            "/sys/fs/cgroup/memory.current",
            "cgroup memory.max",
        ),
        (
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.usage_in_bytes",
            "cgroup memory.limit_in_bytes",
        ),
    ] {
        if let Some(l) = read(limit).as_deref().and_then(cgroup_limit) {
            let used = read(usage).and_then(|u| u.trim().parse::<f64>().ok()).unwrap_or(0.0);
            offer((l - used).max(0.0), name);
        }
    }
    best
}

/// Refuses a job of `need` bytes that does not fit in what is available. `what` names the
/// job (`stage \`target\``), `lower` says what to lower.
pub fn check_fits(what: &str, need: f64, lower: &str) -> Result<(), ModelError> {
    check_fits_in(available()?, what, need, lower)
}

/// As [`check_fits`], against `available` (none: nothing to check against).
pub fn check_fits_in(available: Option<Available>, what: &str, need: f64, lower: &str) -> Result<(), ModelError> {
    match available {
        Some(a) if need > a.bytes => Err(ModelError::OutOfMemory {
            what: what.into(),
            need_gib: need / 1024f64.powi(3),
            available_gib: a.bytes / 1024f64.powi(3),
            from: a.source,
            lower: lower.into(),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_meminfo_and_cgroup_files_parse() {
        assert_eq!(parse_size("1024"), Some(1024.0));
        assert_eq!(parse_size("2GiB"), Some(2.0 * 1024.0 * 1024.0 * 1024.0));
        assert_eq!(parse_size("1.5 g"), Some(1.5 * 1024.0 * 1024.0 * 1024.0));
        assert_eq!(parse_size("512MB"), Some(512.0 * 1024.0 * 1024.0));
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_size("-1G"), None);
        let meminfo = "MemTotal:       24000000 kB\nMemFree:  100 kB\nMemAvailable:   20000000 kB\n";
        assert_eq!(meminfo_available(meminfo), Some(20_000_000.0 * 1024.0));
        assert_eq!(meminfo_available("MemTotal: 1 kB\n"), None);
        assert_eq!(cgroup_limit("max\n"), None);
        assert_eq!(cgroup_limit("8589934592\n"), Some(8589934592.0));
        assert_eq!(cgroup_limit("9223372036854771712"), None);
    }

    /// A device's figure (as `growlm-train` probes a CUDA device) is what a job is checked
    /// against when no override is set, and the error names where it came from.
    #[test]
    fn a_probed_device_figure_is_checked_and_named() {
        if std::env::var(ENV).is_ok() {
            return; // the override wins, by design; nothing here to check
        }
        let gpu = || {
            Some(Available {
                bytes: 2.0 * 1024f64.powi(3),
                source: "free memory of CUDA device 0".into(),
            })
        };
        let got = available_or(gpu).unwrap().unwrap();
        assert_eq!(got.bytes, 2.0 * 1024f64.powi(3));
        let e = check_fits_in(Some(got.clone()), "stages.1", 3.0 * 1024f64.powi(3), "the batch").unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("stages.1 needs about 3.00 GiB")
                && text.contains("2.00 GiB is available (free memory of CUDA device 0)")
                && text.contains("lower the batch"),
            "{text}"
        );
        assert!(check_fits_in(Some(got), "stages.1", 1024f64.powi(3), "the batch").is_ok());
        assert!(check_fits_in(None, "stages.1", 1e30, "the batch").is_ok());
        assert_eq!(available_or(|| None).unwrap(), None);
    }
}
