//! Reading loss curves: a run directory's `metrics.jsonl` or a CSV with a
//! `step,val_loss` header.

use std::path::Path;

use crate::{Curve, SolverError};

/// A validation curve read from disk, with the FLOPs per step when the source records
/// them (run directories do, CSV files do not).
#[derive(Debug, Clone)]
pub struct LoadedCurve {
    /// The curve.
    pub curve: Curve,
    /// Training FLOPs per step (cumulative FLOPs at the last row ÷ steps).
    pub flops_per_step: Option<f64>,
}

fn bad(path: &Path, reason: impl std::fmt::Display) -> SolverError {
    SolverError::InvalidInput(format!("{}: {reason}", path.display()))
}

/// Reads the validation curve at `path`: a run directory (the rows of `metrics.jsonl`
/// with a `val_loss`) or a CSV file whose header names `step` and `val_loss`.
pub fn read_curve(path: &Path) -> Result<LoadedCurve, SolverError> {
    let (mut steps, mut losses, mut flops_per_step) = (Vec::new(), Vec::new(), None);
    if path.is_dir() {
        let file = path.join("metrics.jsonl");
        let text = std::fs::read_to_string(&file).map_err(|e| bad(&file, format!("{e}; is this a run directory?")))?;
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let v: serde_json::Value =
                serde_json::from_str(line).map_err(|e| bad(&file, format!("line {}: {e}", i + 1)))?;
            if let (Some(s), Some(l)) = (v["step"].as_f64(), v["val_loss"].as_f64()) {
                steps.push(s);
                losses.push(l);
            }
            if let (Some(s), Some(f)) = (v["step"].as_f64(), v["flops"].as_f64()) {
                flops_per_step = (s > 0.0).then_some(f / s);
            }
        }
    } else {
        let text = std::fs::read_to_string(path).map_err(|e| bad(path, e))?;
        let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
        let header: Vec<&str> = lines
            .next()
            .map_or(vec![], |(_, h)| h.split(',').map(str::trim).collect());
        let (si, li) = match (
            header.iter().position(|c| *c == "step"),
            header.iter().position(|c| *c == "val_loss"),
        ) {
            (Some(s), Some(l)) => (s, l),
            _ => {
                return Err(bad(
                    path,
                    format!("the CSV header must name the columns `step` and `val_loss`, found {header:?}"),
                ))
            }
        };
        for (i, line) in lines {
            let f: Vec<&str> = line.split(',').map(str::trim).collect();
            let num = |j: usize| {
                f.get(j)
                    .and_then(|v| v.parse::<f64>().ok())
                    .ok_or_else(|| bad(path, format!("line {}: not a number in `{line}`", i + 1)))
            };
            steps.push(num(si)?);
            losses.push(num(li)?);
        }
    }
    let curve = Curve::new(steps, losses).map_err(|e| bad(path, e))?;
    Ok(LoadedCurve { curve, flops_per_step })
}
