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
    format!("{cpu}, {cores} cores, {}", std::env::consts::OS)
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
