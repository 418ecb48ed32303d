//! A PNG next to each SVG figure (docs/experiments.md, "Figures"): the SVG rendered by
//! resvg at a given scale on white, its text in the system's fonts (sans-serif: DejaVu Sans,
//! Liberation Sans or Noto Sans, the first installed; with no font installed the text is left out and the rest drawn).

use std::path::{Path, PathBuf};

use resvg::{tiny_skia, usvg};

use crate::error::write_atomic;
use crate::LabError;

/// Largest side of a PNG in pixels, whatever the scale asks.
pub const MAX_PNG_SIDE: u32 = 8192;

/// Renders `svg` to `svg` with a `.png` extension, `scale` pixels per SVG unit, and returns
/// its path.
pub fn png(svg: &Path, scale: f32) -> Result<PathBuf, LabError> {
    let bad = |reason: String| LabError::Plot {
        path: svg.to_path_buf(),
        reason,
    };
    if !(scale > 0.0 && scale.is_finite()) {
        return Err(bad(format!("scale {scale} must be a positive number")));
    }
    let data = std::fs::read(svg).map_err(LabError::io(svg))?;
    let mut opt = usvg::Options::default();
    let fonts = opt.fontdb_mut();
    fonts.load_system_fonts();
    // fontdb's generic sans-serif is Arial; take the first installed of the usual free ones.
    let families: Vec<String> = fonts
        .faces()
        .flat_map(|f| f.families.iter().map(|(n, _)| n.clone()))
        .collect();
    if let Some(sans) = ["DejaVu Sans", "Liberation Sans", "Noto Sans", "Arial", "Helvetica"]
        .into_iter()
        .find(|want| families.iter().any(|f| f == want))
    {
        fonts.set_sans_serif_family(sans);
    }
    let tree = usvg::Tree::from_data(&data, &opt).map_err(|e| bad(format!("not an SVG figure: {e}")))?;
    let size = tree
        .size()
        .to_int_size()
        .scale_by(scale)
        .filter(|s| s.width() <= MAX_PNG_SIDE && s.height() <= MAX_PNG_SIDE)
        .ok_or_else(|| {
            bad(format!(
                "at scale {scale} it would be larger than {MAX_PNG_SIDE} pixels a side"
            ))
        })?;
    let mut pixmap =
        tiny_skia::Pixmap::new(size.width(), size.height()).ok_or_else(|| bad("an empty figure".into()))?;
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(
        &tree,
        tiny_skia::Transform::from_scale(scale, scale),
        &mut pixmap.as_mut(),
    );
    let bytes = pixmap
        .encode_png()
        .map_err(|e| bad(format!("cannot encode the PNG: {e}")))?;
    let out = svg.with_extension("png");
    write_atomic(&out, &bytes)?;
    Ok(out)
}

/// Renders every `.svg` in `dir` (not below it) to a PNG beside it; returns the PNGs
/// written, in name order.
pub fn png_dir(dir: &Path, scale: f32) -> Result<Vec<PathBuf>, LabError> {
    let mut svgs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(LabError::io(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "svg"))
        .collect();
    svgs.sort();
    svgs.iter().map(|s| png(s, scale)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_svg_becomes_a_png_of_its_size_times_the_scale() {
        let dir = tempfile::tempdir().unwrap();
        let svg = dir.path().join("f.svg");
        std::fs::write(
            &svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="40" height="30"><rect x="0" y="0" width="20" height="30" fill="rgb(255,0,0)"/></svg>"#,
        )
        .unwrap();
        let out = png(&svg, 2.0).unwrap();
        let img = tiny_skia::Pixmap::load_png(&out).unwrap();
        assert_eq!((img.width(), img.height()), (80, 60));
        // The left half red, the right half the white background.
        let at = |x: u32, y: u32| img.pixel(x, y).unwrap();
        assert_eq!((at(10, 10).red(), at(10, 10).green()), (255, 0));
        assert_eq!(
            (at(70, 10).red(), at(70, 10).green(), at(70, 10).blue()),
            (255, 255, 255)
        );
        let e = png(&svg, 1000.0).unwrap_err().to_string();
        assert!(e.contains("larger than 8192"), "{e}");
        std::fs::write(&svg, "not svg").unwrap();
        assert!(png(&svg, 1.0).unwrap_err().to_string().contains("not an SVG"));
        assert!(png_dir(dir.path(), 1.0).unwrap_err().to_string().contains("not an SVG"));
    }
}
