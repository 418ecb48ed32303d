//! An experiment's figures, drawn from its measured results
//! (docs/design.md §Evaluation protocol): validation loss against FLOPs for the first
//! seed's runs, the frontier over them, and a heat map of ×frontier per grid arm.

use std::path::Path;

use growlm_train::{RunCurve, RunDir};

use super::{Job, Results};
use crate::plot::Plotted;
use crate::LabError;

/// Draws the figures of `results` into `out`, reading the first seed's curves from the
/// run directories in `dir`: `loss-flops.svg`, `frontier.svg` and `regime-ARM.svg`.
pub(super) fn draw(out: &Path, dir: &Path, jobs: &[Job], results: &Results, log_x: bool) -> Result<(), LabError> {
    let Some(seed0) = jobs.first().map(|j| j.id.seed) else {
        return Ok(());
    };
    let done = |j: &&Job| RunDir::new(dir.join(&j.name)).file(RunDir::SUMMARY).is_file();
    let read = |j: &Job| RunDir::new(dir.join(&j.name)).curve();
    // The first seed's references that trained straight (a size's shorter budgets branch
    // from its longest, whose curve they share), smallest first, named by shape and
    // parameters; then every done arm of that seed, named by its run.
    let mut refs: Vec<&Job> = (jobs.iter())
        .filter(|j| j.is_reference() && j.id.seed == seed0 && j.branch.is_none())
        .filter(done)
        .collect();
    refs.sort_by_key(|j| j.cfg.stages[0].model.num_params());
    let mut shown: Vec<(String, bool, RunCurve)> = Vec::new();
    for j in refs {
        shown.push((crate::plot::size_label(&j.cfg.stages[0].model), false, read(j)?));
    }
    for j in jobs
        .iter()
        .filter(|j| !j.is_reference() && j.id.seed == seed0)
        .filter(done)
    {
        shown.push((j.name.clone(), true, read(j)?));
    }
    let named: Vec<Plotted<'_>> = crate::plot::plotted(&shown);
    if !named.is_empty() {
        let title = "validation loss against training FLOPs";
        crate::plot::loss_flops_svg(&out.join("loss-flops.svg"), title, &named, log_x)?;
    }
    let Some(f) = &results.frontier else {
        return Ok(());
    };
    // The heat maps are over every seed; they are drawn whatever the first seed has done.
    if let Some(e) = f
        .envelopes
        .iter()
        .find(|e| e.seed == seed0)
        .filter(|_| !named.is_empty())
    {
        crate::plot::frontier_svg(&out.join("frontier.svg"), &e.envelope, &named)?;
    }
    for name in f.grid_arms() {
        let cells = f.heat_cells(name);
        if cells.is_empty() {
            continue;
        }
        let label = |b: u64| match f.tokens_per_param_at(b) {
            Some(t) => format!("{b} ({t:.0} tok/param)"),
            None => b.to_string(),
        };
        crate::plot::heatmap_svg(
            &out.join(format!("regime-{name}.svg")),
            &format!("×frontier of `{name}` over budget and growth point"),
            &cells,
            &label,
        )?;
    }
    Ok(())
}
