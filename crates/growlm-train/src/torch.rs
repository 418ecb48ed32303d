//! The PyTorch side of a throughput comparison (docs/design.md §Backends; `bench
//! --against-torch`): runs `benches/torch_reference.py`, which builds the same stage in
//! PyTorch (GPT-Neo written out, Llama as transformers' `LlamaForCausalLM`) and times it
//! as [`crate::measure`] does in each of PyTorch's modes ([`TorchMode`]), and reads its
//! figures back.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

/// What went wrong running the PyTorch reference.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TorchError {
    /// The Python cannot import `torch`.
    #[error("{python} cannot import torch; install it in a virtual environment (python3 -m venv .venv && .venv/bin/pip install torch, about 1 GB for the CPU build) and use that Python")]
    NoTorch {
        /// The Python tried.
        python: String,
    },
    /// The script is not where the repository keeps it.
    #[error("{0} not found; it comes with the repository (benches/)")]
    NoScript(PathBuf),
    /// The script could not be started, failed, or wrote no figures.
    #[error("{script}: {reason}")]
    Failed {
        /// The script.
        script: PathBuf,
        /// What happened.
        reason: String,
    },
}

/// How PyTorch runs the model: every speed claim names the fastest of the three.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TorchMode {
    /// Attention written out (GPT-Neo) or transformers' `eager` attention (Llama).
    Eager,
    /// `scaled_dot_product_attention` (transformers' `sdpa`).
    Sdpa,
    /// sdpa with the model under `torch.compile`.
    Compile,
}

impl TorchMode {
    /// Every mode, in the order they are timed.
    pub const ALL: [TorchMode; 3] = [TorchMode::Eager, TorchMode::Sdpa, TorchMode::Compile];

    /// The script's `--mode` value.
    pub fn name(self) -> &'static str {
        match self {
            TorchMode::Eager => "eager",
            TorchMode::Sdpa => "sdpa",
            TorchMode::Compile => "compile",
        }
    }
}

/// PyTorch's figures for one stage, as `benches/torch_reference.py --json` writes them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TorchFigures {
    /// `torch <version> eager cpu`.
    pub device: String,
    /// `torch.set_num_threads`.
    pub threads: usize,
    /// Median milliseconds per step.
    pub ms_per_step: f64,
    /// Training tokens per second.
    pub tokens_per_s: f64,
    /// Its measured matmul peak.
    pub peak_flops_per_s: f64,
    /// Model FLOPs utilisation against that peak.
    pub mfu: f64,
}

/// One line: `PyTorch … (N threads): ms/step, tokens/s; matmul peak; MFU`.
impl std::fmt::Display for TorchFigures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({} threads): {:.1} ms/step, {:.0} tokens/s; matmul peak {:.3e} FLOP/s; MFU {:.1}%",
            self.device,
            self.threads,
            self.ms_per_step,
            self.tokens_per_s,
            self.peak_flops_per_s,
            100.0 * self.mfu
        )
    }
}

/// Checks that `python` can import `torch` and that `script` exists.
pub fn check_torch(python: &Path, script: &Path) -> Result<(), TorchError> {
    let found = Command::new(python)
        .args(["-c", "import torch"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        return Err(TorchError::NoTorch {
            python: python.display().to_string(),
        });
    }
    if !script.is_file() {
        return Err(TorchError::NoScript(script.to_path_buf()));
    }
    Ok(())
}

/// Runs `script` with `python` on stage `stage` of `config` for `steps` timed steps on
/// `threads` threads in `mode`, and reads its figures back.
pub fn torch_figures(
    python: &Path,
    script: &Path,
    config: &Path,
    stage: usize,
    steps: usize,
    threads: usize,
    mode: TorchMode,
) -> Result<TorchFigures, TorchError> {
    let fail = |reason: String| TorchError::Failed {
        script: script.to_path_buf(),
        reason,
    };
    let dir = tempfile::tempdir().map_err(|e| fail(format!("no temporary directory: {e}")))?;
    let json = dir.path().join("torch.json");
    let status = Command::new(python)
        .arg(script)
        .arg("--config")
        .arg(config)
        .args(["--stage", &stage.to_string(), "--steps", &steps.to_string()])
        .args(["--threads", &threads.to_string(), "--mode", mode.name()])
        .arg("--json")
        .arg(&json)
        .stdout(Stdio::null())
        .status()
        .map_err(|e| fail(format!("cannot run {}: {e}", python.display())))?;
    if !status.success() {
        return Err(fail(format!("failed ({status})")));
    }
    let text = std::fs::read(&json).map_err(|_| fail("wrote no figures".into()))?;
    serde_json::from_slice(&text).map_err(|e| fail(format!("unreadable figures: {e}")))
}

/// `figures` in every mode, in [`TorchMode::ALL`]'s order; the first failure stops it,
/// naming the mode.
pub fn every_mode(
    figures: impl Fn(TorchMode) -> Result<TorchFigures, TorchError>,
) -> Result<Vec<TorchFigures>, TorchError> {
    TorchMode::ALL
        .iter()
        .map(|&m| {
            figures(m).map_err(|e| match e {
                TorchError::Failed { script, reason } => TorchError::Failed {
                    script,
                    reason: format!("{} mode: {reason}", m.name()),
                },
                e => e,
            })
        })
        .collect()
}

/// The mode with the most tokens per second: the one every speed claim is held against.
pub fn fastest(all: &[TorchFigures]) -> Option<&TorchFigures> {
    all.iter().max_by(|a, b| a.tokens_per_s.total_cmp(&b.tokens_per_s))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn fake_python(dir: &Path, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join("python");
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    #[test]
    fn says_how_to_get_torch_and_reads_the_reference_figures() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("torch_reference.py");
        std::fs::write(&script, "").unwrap();
        let cfg = dir.path().join("c.toml");
        // No torch: the error says how to get it.
        let e = check_torch(&fake_python(dir.path(), "exit 1"), &script)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("cannot import torch") && e.contains("pip install torch"),
            "{e}"
        );
        let ok = fake_python(dir.path(), "exit 0");
        let e = check_torch(&ok, &dir.path().join("nope.py")).unwrap_err().to_string();
        assert!(e.contains("nope.py not found"), "{e}");
        // A stand-in for the script: records its arguments, writes figures where --json says.
        let log = dir.path().join("args");
        let body = format!(
            "echo \"$@\" > {}\nwhile [ $# -gt 0 ]; do [ \"$1\" = --json ] && out=$2; shift; done\n\
             echo '{{\"device\": \"torch stand-in\", \"threads\": 2, \"ms_per_step\": 5.0, \"tokens_per_s\": 12800.0, \"peak_flops_per_s\": 1e11, \"mfu\": 0.5}}' > \"$out\"",
            log.display()
        );
        let f = torch_figures(&fake_python(dir.path(), &body), &script, &cfg, 1, 2, 2, TorchMode::Sdpa).unwrap();
        assert_eq!(f.tokens_per_s, 12800.0);
        assert_eq!(f.threads, 2);
        let called = std::fs::read_to_string(&log).unwrap();
        assert!(
            called.contains("torch_reference.py --config")
                && called.contains("--stage 1 --steps 2 --threads 2 --mode sdpa"),
            "{called}"
        );
        // Every mode in order; the fastest is the one with the most tokens per second.
        let figs = |tps: f64| TorchFigures {
            tokens_per_s: tps,
            ..f.clone()
        };
        let all = every_mode(|m| Ok(figs([1.0, 3.0, 2.0][m as usize]))).unwrap();
        assert_eq!(fastest(&all).map(|t| t.tokens_per_s), Some(3.0));
        let e = every_mode(|m| match m {
            TorchMode::Compile => Err(TorchError::Failed {
                script: script.clone(),
                reason: "no compiler".into(),
            }),
            _ => Ok(figs(1.0)),
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("compile mode: no compiler"), "{e}");
        // A script that writes nothing, or fails, is an error that names it.
        for (body, says) in [("exit 0", "wrote no figures"), ("exit 3", "failed")] {
            let python = fake_python(dir.path(), body);
            let e = torch_figures(&python, &script, &cfg, 1, 2, 2, TorchMode::Eager)
                .unwrap_err()
                .to_string();
            assert!(e.contains("torch_reference.py") && e.contains(says), "{body}: {e}");
        }
    }
}
