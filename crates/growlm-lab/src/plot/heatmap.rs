//! A heat map of ×frontier over (budget, growth point): the regime study's figure (issue
//! "where growth pays"). Each cell is coloured by the mean on a log scale around 1 (blue:
//! growth saved compute against the best size from scratch; red: it cost more) and
//! labelled with the mean and its 95% interval.

use std::path::Path;

use plotters::prelude::*;

use super::{svg, Drawn};
use crate::stats::Interval;
use crate::LabError;

/// One cell of the map: a budget (column), a growth fraction (row) and its ×frontier.
#[derive(Debug, Clone, Copy)]
pub struct HeatCell {
    /// The budget in steps.
    pub budget: u64,
    /// The growth point as a fraction of the budget.
    pub grow_frac: f64,
    /// ×frontier over the seeds.
    pub value: Interval,
}

/// The colour of `v` (a ratio): white at 1, saturating blue at ×2 and red at ×½.
pub fn ratio_colour(v: f64) -> RGBColor {
    let t = (v.max(1e-9).log2()).clamp(-1.0, 1.0);
    let fade = |c: u8, t: f64| (255.0 - (255.0 - c as f64) * t.abs()).round() as u8;
    if t >= 0.0 {
        RGBColor(fade(33, t), fade(102, t), fade(172, t))
    } else {
        RGBColor(fade(178, t), fade(24, t), fade(43, t))
    }
}

/// Writes the heat map of `cells` to `path`, titled `title`; `budget_label` names each
/// budget's column (e.g. with its tokens per parameter).
pub fn heatmap_svg(
    path: &Path,
    title: &str,
    cells: &[HeatCell],
    budget_label: &dyn Fn(u64) -> String,
) -> Result<(), LabError> {
    svg(path, || draw(path, title, cells, budget_label))
}

fn draw(path: &Path, title: &str, cells: &[HeatCell], budget_label: &dyn Fn(u64) -> String) -> Drawn {
    let mut budgets: Vec<u64> = cells.iter().map(|c| c.budget).collect();
    budgets.sort_unstable();
    budgets.dedup();
    let mut fracs: Vec<f64> = cells.iter().map(|c| c.grow_frac).collect();
    fracs.sort_by(f64::total_cmp);
    fracs.dedup();
    let (nx, ny) = (budgets.len().max(1), fracs.len().max(1));
    let root = SVGBackend::new(path, (240 + 150 * nx as u32, 160 + 70 * ny as u32)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut c = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(90)
        .build_cartesian_2d(0.0..nx as f64, 0.0..ny as f64)?;
    // Labels only at cell centres (the axis ticks at every half cell).
    let cell = |v: f64| ((v - v.floor() - 0.5).abs() < 1e-6).then_some(v.floor() as usize);
    c.configure_mesh()
        .disable_mesh()
        .x_labels(nx * 2 + 1)
        .y_labels(ny * 2 + 1)
        .x_label_formatter(&|x| {
            cell(*x)
                .and_then(|i| budgets.get(i))
                .map_or(String::new(), |b| budget_label(*b))
        })
        .y_label_formatter(&|y| {
            cell(*y)
                .and_then(|i| fracs.get(i))
                .map_or(String::new(), |f| format!("grow at {:.0}%", f * 100.0))
        })
        .x_desc("budget (steps; the target's tokens per parameter)")
        .y_desc("growth point")
        .draw()?;
    for cell in cells {
        let (Some(i), Some(j)) = (
            budgets.iter().position(|b| *b == cell.budget),
            fracs.iter().position(|f| *f == cell.grow_frac),
        ) else {
            continue;
        };
        let (x, y) = (i as f64, j as f64);
        c.draw_series(std::iter::once(Rectangle::new(
            [(x, y), (x + 1.0, y + 1.0)],
            ratio_colour(cell.value.mean).filled(),
        )))?;
        let v = cell.value;
        let lines = [
            format!("×{:.2}", v.mean),
            v.ci.map_or(format!("({} seed)", v.n), |[lo, hi]| format!("[{lo:.2}, {hi:.2}]")),
        ];
        for (k, text) in lines.iter().enumerate() {
            c.draw_series(std::iter::once(Text::new(
                text.clone(),
                (x + 0.5, y + 0.62 - 0.28 * k as f64),
                ("sans-serif", 15)
                    .into_font()
                    .color(&BLACK)
                    .pos(plotters::style::text_anchor::Pos::new(
                        plotters::style::text_anchor::HPos::Center,
                        plotters::style::text_anchor::VPos::Center,
                    )),
            )))?;
        }
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_are_white_at_one_and_saturate_at_two_and_a_half() {
        assert_eq!(ratio_colour(1.0), RGBColor(255, 255, 255));
        assert_eq!(ratio_colour(2.0), RGBColor(33, 102, 172));
        assert_eq!(ratio_colour(4.0), RGBColor(33, 102, 172));
        assert_eq!(ratio_colour(0.5), RGBColor(178, 24, 43));
        // Halfway (×√2) is halfway to blue.
        assert_eq!(ratio_colour(2f64.sqrt()), RGBColor(144, 179, 214));
    }

    #[test]
    fn a_map_is_drawn_with_every_cell_labelled() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("map.svg");
        let cells: Vec<HeatCell> = [(300, 0.25, 0.8), (300, 0.5, 1.1), (600, 0.25, 0.95)]
            .into_iter()
            .map(|(budget, grow_frac, m)| HeatCell {
                budget,
                grow_frac,
                value: Interval::of(&[m - 0.01, m + 0.01]),
            })
            .collect();
        heatmap_svg(&path, "x", &cells, &|b| format!("{b}")).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        for label in ["×0.80", "×1.10", "×0.95", "grow at 25%", "grow at 50%", "300", "600"] {
            assert!(text.contains(label), "{label} missing");
        }
    }
}
