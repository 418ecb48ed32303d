//! `cargo xtask trend DIR:ARM…`: ×frontier of one arm of each kept frontier experiment
//! against the grown model's parameters, per corpus (`growlm::lab::trend`).

use anyhow::{Context, Result};

/// Arguments of `cargo xtask trend`.
#[derive(clap::Args)]
pub struct TrendArgs {
    /// `DIR:ARM`: a frontier experiment's directory (e.g. kept under results/) and the arm.
    #[arg(required = true, value_name = "DIR:ARM")]
    points: Vec<String>,
    /// The figure (SVG).
    #[arg(long, default_value = "trend.svg")]
    out: std::path::PathBuf,
}

/// Runs the command: the figure, and the points as a markdown table on stdout.
pub fn run(a: TrendArgs) -> Result<()> {
    let mut points = Vec::new();
    for p in &a.points {
        let (dir, arm) = p.rsplit_once(':').with_context(|| format!("`{p}`: give DIR:ARM"))?;
        points.push(growlm::lab::trend::point(dir.as_ref(), arm)?);
    }
    growlm::lab::trend::trend_svg(&a.out, "Growth against its frontier, across scale", &points)?;
    print!("{}", growlm::lab::trend::markdown(&points));
    Ok(())
}
