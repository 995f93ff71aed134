//! Tables and pictures of draws from a variational family (what `sample(Q, N)` produced), for
//! `ppl run --out DIR` and the REPL's `:set out DIR`.
//!
//! - [`draws_csv`]: the draws as CSV, one column per address element, one row per draw;
//! - [`draws_svg`]: a corner plot of the draws as SVG: each column's marginal as a histogram on
//!   the diagonal, each pair as a scatter plot below it.
//!
//! This module owns only the turning of named columns of numbers into text. It knows nothing of
//! the language, of addresses beyond their printed names, or of files: it must not read or write
//! anything (the caller writes the strings, as `results.rs` does), nor print, nor fail on odd data
//! (NaN, infinities, constant columns, no draws, columns of unequal length) with anything but a
//! picture that says what was left out or an `Err` from the drawing library.

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// At most this many columns are drawn in the corner plot: the first ones.
pub const MAX_PLOTTED: usize = 8;

/// Scatter plots show at most this many draws, the first ones, so the file stays small.
const MAX_SCATTER: usize = 2_000;

/// The side of one panel of the grid, in pixels.
const PANEL: u32 = 220;
/// Room left of the grid for the tick labels and the names of the rows.
const LEFT: u32 = 78;
/// Room below the grid for the tick labels and the names of the columns.
const BOTTOM: u32 = 56;
/// Room right of the grid and below the bottom labels.
const RIGHT: u32 = 14;
/// Space between a panel's edge and its plotting area.
const GAP: u32 = 8;
/// The longest name drawn in full on an axis; longer ones are cut and end in `…`.
const MAX_LABEL: usize = 30;

const BLUE: RGBColor = RGBColor(31, 119, 180);

/// One column of draws: the address element's name (`x`, `theta[3]`, `sub.z`, `w[1, 2]`) and its
/// N values (booleans as 0/1, integers as f64).
pub struct Column {
    pub name: String,
    pub values: Vec<f64>,
}

/// The draws as CSV: a header of column names, then one row per draw, numbers printed with Rust's
/// shortest round-trip formatting (`{}` of f64: `NaN`, `inf`, `-inf` for the non-finite ones).
/// Names containing a comma, a quote or a line break are quoted per RFC 4180. Lines end in `\n`.
/// Should the columns differ in length, there is a row for each draw of the longest one, and the
/// cells of the shorter ones past their end are empty.
pub fn draws_csv(columns: &[Column]) -> String {
    let mut csv = columns.iter().map(|column| csv_field(&column.name)).collect::<Vec<_>>().join(",");
    csv.push('\n');
    let rows = columns.iter().map(|column| column.values.len()).max().unwrap_or(0);
    for row in 0..rows {
        for (index, column) in columns.iter().enumerate() {
            if index > 0 {
                csv.push(',');
            }
            if let Some(value) = column.values.get(row) {
                csv.push_str(&value.to_string());
            }
        }
        csv.push('\n');
    }
    csv
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// A corner plot of the draws as SVG, titled `title`: a histogram of each column's marginal on the
/// diagonal, a scatter plot of each pair below it, the column names along the left and bottom
/// edges. At most [`MAX_PLOTTED`] columns are drawn, the first ones, and the title then says
/// `(first 8 of K columns)`. Non-finite values are left out of the pictures, and the title says
/// how many values of the drawn columns were (`(3 non-finite draws left out)`). A column whose
/// finite values are all equal is drawn on a small range around the value. Scatter plots show the
/// first 2,000 draws only (and the title says so); histograms use every draw. No draws at all give
/// a small SVG that says "no draws".
pub fn draws_svg(title: &str, columns: &[Column]) -> Result<String, String> {
    let shown = &columns[..columns.len().min(MAX_PLOTTED)];
    let draws = shown.iter().map(|column| column.values.len()).max().unwrap_or(0);
    if draws == 0 {
        return no_draws(title);
    }
    let mut notes = Vec::new();
    if columns.len() > MAX_PLOTTED {
        notes.push(format!("(first {MAX_PLOTTED} of {} columns)", columns.len()));
    }
    if shown.len() > 1 && draws > MAX_SCATTER {
        notes.push(format!("(scatter plots show the first {} of {} draws)", thousands(MAX_SCATTER), thousands(draws)));
    }
    let non_finite = shown.iter().flat_map(|column| &column.values).filter(|value| !value.is_finite()).count();
    if non_finite > 0 {
        let plural = if non_finite == 1 { "" } else { "s" };
        notes.push(format!("({} non-finite draw{plural} left out)", thousands(non_finite)));
    }

    let count = shown.len() as u32;
    let top = 38 + 18 * notes.len() as u32;
    let width = (LEFT + count * PANEL + RIGHT).max(380);
    let height = top + count * PANEL + BOTTOM + RIGHT;
    let ranges: Vec<(f64, f64)> = shown.iter().map(|column| axis_range(&column.values)).collect();
    let names: Vec<String> = shown.iter().map(|column| shorten(&column.name, MAX_LABEL)).collect();
    let opacity = 0.4 + 0.45 * (200.0 / draws.min(MAX_SCATTER) as f64).min(1.0);

    let mut svg = String::new();
    // The scatter plots' dots, each panel's as one SVG path, added once plotters is done (below).
    let mut dots: Vec<String> = Vec::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|error| error.to_string())?;
        let title_chars = (width as usize).saturating_sub(24) / 10;
        root.draw(&Text::new(
            shorten(title, title_chars),
            (width as i32 / 2, 10),
            ("sans-serif", 20).into_font().color(&BLACK).pos(Pos::new(HPos::Center, VPos::Top)),
        ))
        .map_err(|error| error.to_string())?;
        for (index, note) in notes.iter().enumerate() {
            root.draw(&Text::new(
                note.as_str(),
                (width as i32 / 2, 36 + 18 * index as i32),
                ("sans-serif", 16).into_font().color(&BLACK.mix(0.7)).pos(Pos::new(HPos::Center, VPos::Top)),
            ))
            .map_err(|error| error.to_string())?;
        }

        for row in 0..shown.len() {
            for col in 0..=row {
                let (mut x0, y0, mut w, mut h) = (LEFT + col as u32 * PANEL, top + row as u32 * PANEL, PANEL, PANEL);
                let left = if col == 0 { LEFT } else { 0 };
                x0 -= left;
                w += left;
                let bottom = if row + 1 == shown.len() { BOTTOM } else { 0 };
                h += bottom;
                let area = root.clone().shrink((x0, y0), (w, h));
                let (x_low, x_high) = ranges[col];
                let bins = if row == col { histogram(&shown[col].values, ranges[col]) } else { Vec::new() };
                let (y_low, y_high) = if row == col {
                    (0.0, bins.iter().map(|bin| bin.2).max().unwrap_or(0).max(1) as f64 * 1.08)
                } else {
                    ranges[row]
                };
                let mut chart = ChartBuilder::on(&area)
                    .margin(GAP)
                    .x_label_area_size(bottom)
                    .y_label_area_size(left)
                    .build_cartesian_2d(x_low..x_high, y_low..y_high)
                    .map_err(|error| error.to_string())?;
                let x_span = x_high - x_low;
                let y_span = y_high - y_low;
                let x_ticks = move |value: &f64| tick(*value, x_span, x_low.abs().max(x_high.abs()));
                let y_ticks = move |value: &f64| tick(*value, y_span, y_low.abs().max(y_high.abs()));
                let mut mesh = chart.configure_mesh();
                mesh.x_labels(4)
                    .y_labels(4)
                    .max_light_lines(0)
                    .bold_line_style(BLACK.mix(0.08))
                    .axis_style(BLACK.mix(0.5))
                    .label_style(("sans-serif", 14))
                    .axis_desc_style(("sans-serif", 17))
                    .x_label_formatter(&x_ticks)
                    .y_label_formatter(&y_ticks);
                if bottom > 0 {
                    mesh.x_desc(names[col].as_str());
                }
                if row == col {
                    // A histogram's height is a count, not the row's value: no labels, no lines.
                    mesh.disable_y_mesh().disable_y_axis();
                } else if left > 0 {
                    mesh.y_desc(names[row].as_str());
                }
                mesh.draw().map_err(|error| error.to_string())?;
                let frame = Rectangle::new([(x_low, y_low), (x_high, y_high)], BLACK.mix(0.35).stroke_width(1));
                chart.plotting_area().draw(&frame).map_err(|error| error.to_string())?;
                if row == col {
                    chart
                        .draw_series(bins.iter().filter(|bin| bin.2 > 0).map(|&(low, high, count)| {
                            Rectangle::new([(low, 0.0), (high, count as f64)], BLUE.mix(0.55).filled())
                        }))
                        .map_err(|error| error.to_string())?;
                    chart
                        .draw_series(bins.iter().filter(|bin| bin.2 > 0).map(|&(low, high, count)| {
                            Rectangle::new([(low, 0.0), (high, count as f64)], BLUE.stroke_width(1))
                        }))
                        .map_err(|error| error.to_string())?;
                } else {
                    dots.push(scatter_path(
                        chart.plotting_area(),
                        (&shown[col].values, &shown[row].values),
                        (ranges[col], ranges[row]),
                        opacity,
                    ));
                }
            }
        }
        root.present().map_err(|error| error.to_string())?;
    }
    // Plotters writes one element of about 100 bytes per dot; 28 panels of 2,000 dots would make
    // a file of megabytes. Each panel's dots go instead into one path of zero-length segments with
    // round caps (about 10 bytes a dot), placed last so they lie over the grid lines.
    let end = svg.rfind("</svg>").ok_or("the SVG that plotters wrote has no closing tag")?;
    svg.insert_str(end, &dots.concat());
    Ok(svg)
}

/// A small SVG saying there is nothing to draw.
fn no_draws(title: &str) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (480, 140)).into_drawing_area();
        root.fill(&WHITE).map_err(|error| error.to_string())?;
        let centred = |size| ("sans-serif", size).into_font().color(&BLACK).pos(Pos::new(HPos::Center, VPos::Top));
        root.draw(&Text::new(shorten(title, 44), (240, 24), centred(20))).map_err(|error| error.to_string())?;
        root.draw(&Text::new("no draws", (240, 80), centred(16))).map_err(|error| error.to_string())?;
        root.present().map_err(|error| error.to_string())?;
    }
    Ok(svg)
}

/// The axis range for a column: its finite values' range widened by 5% on each side, or, when
/// they are all equal (to within rounding), ±6% of the value (±0.6 around zero: not a round
/// number, so that no tick label sits on the panel's edge). No finite value at all gives 0..1.
fn axis_range(values: &[f64]) -> (f64, f64) {
    let (low, high) = finite_range(values);
    if low > high {
        return (0.0, 1.0);
    }
    // Values near ±f64::MAX would give a range wider than f64 can hold, and plotters divides by
    // it: the axis stops short of them, and their dots are drawn on its end (see `scatter_path`).
    let limit = f64::MAX / 8.0;
    let (low, high) = (low.max(-limit).min(limit), high.max(-limit).min(limit));
    let scale = low.abs().max(high.abs());
    let span = high - low;
    let pad = if span > scale * 1e-9 {
        span * 0.05
    } else if scale > 1e-300 {
        scale * 0.06
    } else {
        0.6
    };
    (low - pad, high + pad)
}

/// The least and greatest finite values; (inf, -inf) when there is none.
fn finite_range(values: &[f64]) -> (f64, f64) {
    values
        .iter()
        .filter(|value| value.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(low, high), &value| (low.min(value), high.max(value)))
}

/// The histogram of a column's finite values as (low edge, high edge, count) bins.
///
/// The bin count is the square-root rule, ⌈√n⌉ kept within 5..=50. Freedman–Diaconis was
/// considered and set aside: its width is proportional to the interquartile range, which is
/// zero for the mostly-constant or two-valued columns that booleans, integers and collapsed
/// variational families give, and for smooth data at the sizes drawn here (hundreds to tens of
/// thousands of draws) it too ends at the cap of 50 bins that a 220-pixel panel can show.
/// A column whose values are all equal is one bar, centred on the value, as wide as a bin would be.
fn histogram(values: &[f64], axis: (f64, f64)) -> Vec<(f64, f64, usize)> {
    // A value past the axis (only one near ±f64::MAX can be) counts as on its end, as in the scatter plots.
    let finite: Vec<f64> =
        values.iter().filter(|value| value.is_finite()).map(|value| value.max(axis.0).min(axis.1)).collect();
    if finite.is_empty() {
        return Vec::new();
    }
    let bins = ((finite.len() as f64).sqrt().ceil() as usize).clamp(5, 50);
    let (low, high) = finite_range(&finite);
    if high - low <= (axis.1 - axis.0) * 1e-6 {
        let half = (axis.1 - axis.0) / bins as f64 / 2.0;
        let centre = low / 2.0 + high / 2.0;
        return vec![(centre - half, centre + half, finite.len())];
    }
    // Divided first, so that a range wider than f64 can hold still gives finite bins.
    let width = high / bins as f64 - low / bins as f64;
    let mut counts = vec![0; bins];
    for value in &finite {
        // `as usize` saturates (infinity to the last bin, NaN to 0); the top edge is in the last bin.
        let index = ((value / width - low / width) as usize).min(bins - 1);
        counts[index] += 1;
    }
    counts
        .into_iter()
        .enumerate()
        .map(|(index, count)| (low + width * index as f64, low + width * (index + 1) as f64, count))
        .collect()
}

/// The first [`MAX_SCATTER`] draws of the pair (xs, ys) with both values finite, as one SVG path
/// of round dots in the panel's pixel coordinates. A value past its axis (only a value near
/// ±f64::MAX can be) is drawn on the axis's end.
fn scatter_path(
    area: &DrawingArea<SVGBackend, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    (xs, ys): (&[f64], &[f64]),
    (x_range, y_range): ((f64, f64), (f64, f64)),
    opacity: f64,
) -> String {
    let mut data = String::new();
    for (x, y) in xs.iter().zip(ys).take(MAX_SCATTER) {
        if x.is_finite() && y.is_finite() {
            // `max` then `min`, not `clamp`, which would panic on a reversed range.
            let point = (x.max(x_range.0).min(x_range.1), y.max(y_range.0).min(y_range.1));
            let (px, py) = area.map_coordinate(&point);
            data.push_str(&format!("M{px} {py}h0"));
        }
    }
    if data.is_empty() {
        return String::new();
    }
    format!(
        "<path d=\"{data}\" fill=\"none\" stroke=\"#1F77B4\" stroke-opacity=\"{opacity:.2}\" \
         stroke-width=\"3\" stroke-linecap=\"round\"/>\n"
    )
}

/// A tick label with no more digits than its axis needs: enough to tell apart ticks a twentieth
/// of the axis apart, fixed-point for moderate numbers and `1.5e6`-style for very large or small.
fn tick(value: f64, span: f64, magnitude: f64) -> String {
    if !value.is_finite() {
        return value.to_string();
    }
    if value.abs() <= span * 1e-9 || value == 0.0 {
        return "0".to_string();
    }
    let resolution = if span > 0.0 && span.is_finite() { (span / 20.0).log10().floor() } else { 0.0 };
    if (1e-3..1e5).contains(&magnitude) {
        let decimals = (-resolution).clamp(0.0, 10.0) as usize;
        trim_zeros(&format!("{value:.decimals$}"))
    } else {
        let exponent = value.abs().log10().floor();
        let decimals = (exponent - resolution).clamp(0.0, 6.0) as usize;
        let text = format!("{value:.decimals$e}");
        match text.split_once('e') {
            Some((mantissa, exponent)) => format!("{}e{exponent}", trim_zeros(mantissa)),
            None => text,
        }
    }
}

/// `1.50` → `1.5`, `2.00` → `2`; text without a decimal point is left alone.
fn trim_zeros(text: &str) -> String {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text.to_string()
    }
}

/// `text`, cut to at most `max` characters, ending in `…` when cut.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

/// `12345` → `12,345`.
fn thousands(number: usize) -> String {
    let digits = number.to_string();
    let mut text = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            text.push(',');
        }
        text.push(digit);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(name: &str, values: Vec<f64>) -> Column {
        Column { name: name.to_string(), values }
    }

    /// Normal-looking draws from a small deterministic generator (no randomness crate needed).
    fn normals(seed: u64, count: usize) -> Vec<f64> {
        let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let mut uniform = move || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        (0..count).map(|_| (-2.0 * uniform().ln()).sqrt() * (2.0 * std::f64::consts::PI * uniform()).cos()).collect()
    }

    fn well_formed(svg: &str) {
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(200)]);
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<svg").count(), 1);
    }

    #[test]
    fn csv_header_and_rows_are_exact() {
        let columns = [
            column("x", vec![1.0, -0.5, f64::NAN]),
            column("w[1, 2]", vec![0.1, 1e-7, f64::INFINITY]),
            column("say \"hi\"", vec![0.0, 1.0, f64::NEG_INFINITY]),
        ];
        assert_eq!(draws_csv(&columns), "x,\"w[1, 2]\",\"say \"\"hi\"\"\"\n1,0.1,0\n-0.5,0.0000001,1\nNaN,inf,-inf\n");
    }

    #[test]
    fn csv_of_unequal_and_no_columns() {
        assert_eq!(draws_csv(&[column("a", vec![1.0, 2.0]), column("b", vec![3.0])]), "a,b\n1,3\n2,\n");
        assert_eq!(draws_csv(&[column("a", vec![])]), "a\n");
        assert_eq!(draws_csv(&[]), "\n");
    }

    #[test]
    fn svg_names_every_plotted_column() {
        let x = normals(1, 500);
        let columns = [
            column("theta[3]", x.clone()),
            column("sub.z", x.iter().zip(normals(2, 500)).map(|(a, b)| 0.8 * a + 0.6 * b).collect()),
            column("w[1, 2]", normals(3, 500).iter().map(|v| v.exp()).collect()),
        ];
        let svg = draws_svg("Q", &columns).unwrap();
        well_formed(&svg);
        for name in ["theta[3]", "sub.z", "w[1, 2]"] {
            assert!(svg.contains(name), "{name} missing");
        }
        assert!(!svg.contains("first 8"));
        assert!(!svg.contains("non-finite"));
        assert!(!svg.contains("NaN"));
        // Three scatter panels below the diagonal.
        assert_eq!(svg.matches("stroke-linecap=\"round\"").count(), 3);
    }

    #[test]
    fn svg_draws_the_first_eight_of_ten_columns() {
        let columns: Vec<Column> = (0..10).map(|index| column(&format!("c{index}"), normals(index, 50))).collect();
        let svg = draws_svg("Q", &columns).unwrap();
        well_formed(&svg);
        assert!(svg.contains("(first 8 of 10 columns)"));
        for index in 0..8 {
            assert!(svg.contains(&format!("c{index}")));
        }
        assert!(!svg.contains("c8") && !svg.contains("c9"));
        assert_eq!(svg.matches("stroke-linecap=\"round\"").count(), 28);
    }

    #[test]
    fn svg_of_constant_columns() {
        let columns =
            [column("zero", vec![0.0; 40]), column("five", vec![5.0; 40]), column("flag", [1.0, 0.0].repeat(20))];
        let svg = draws_svg("constant", &columns).unwrap();
        well_formed(&svg);
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
        assert!(svg.contains("five") && svg.contains("zero") && svg.contains("flag"));
        let svg = draws_svg("one", &[column("only", vec![-3.25])]).unwrap();
        well_formed(&svg);
        assert!(svg.contains("only"));
    }

    #[test]
    fn svg_of_no_draws() {
        for columns in [vec![], vec![column("x", vec![]), column("y", vec![])]] {
            let svg = draws_svg("Q", &columns).unwrap();
            well_formed(&svg);
            assert!(svg.contains("no draws"));
        }
    }

    #[test]
    fn svg_leaves_out_non_finite_values() {
        let mut x = normals(4, 100);
        x[3] = f64::NAN;
        x[10] = f64::INFINITY;
        let mut y = normals(5, 100);
        y[20] = f64::NEG_INFINITY;
        let svg = draws_svg("Q", &[column("x", x), column("y", y)]).unwrap();
        well_formed(&svg);
        assert!(svg.contains("(3 non-finite draws left out)"));
        assert!(!svg.contains("NaN"));
        // 97 finite pairs, one dot each.
        assert_eq!(svg.matches("h0").count(), 97);

        let svg =
            draws_svg("Q", &[column("all", vec![f64::NAN; 5]), column("ok", vec![1.0, 2.0, 3.0, 4.0, 5.0])]).unwrap();
        well_formed(&svg);
        assert!(svg.contains("(5 non-finite draws left out)"));
    }

    #[test]
    fn svg_survives_extreme_values() {
        let columns = [
            column("huge", vec![-1.7e308, 1.7e308, 0.0]),
            column("tiny", vec![1e-300, 2e-300, 3e-300]),
            column("offset", vec![1e10, 1e10 + 1e-5, 1e10 + 2e-5]),
            column("max", vec![f64::MAX; 3]),
            column("min", vec![f64::MIN, -1.0, f64::MIN_POSITIVE]),
        ];
        well_formed(&draws_svg("extreme", &columns).unwrap());
    }

    #[test]
    fn svg_of_many_draws_stays_small() {
        let columns: Vec<Column> = (0..8).map(|index| column(&format!("x{index}"), normals(index, 10_000))).collect();
        let svg = draws_svg("Q", &columns).unwrap();
        well_formed(&svg);
        assert!(svg.contains("(scatter plots show the first 2,000 of 10,000 draws)"));
        assert!(svg.len() < 1_500_000, "{} bytes", svg.len());
    }

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(tick(0.30000000000000004, 1.0, 1.0), "0.3");
        assert_eq!(tick(5.551115123125783e-17, 1.0, 1.0), "0");
        assert_eq!(tick(100.25, 0.5, 101.0), "100.25");
        assert_eq!(tick(250.0, 1000.0, 1000.0), "250");
        assert_eq!(tick(1_500_000.0, 2e6, 2e6), "1.5e6");
        assert_eq!(tick(0.00012, 0.0005, 0.0005), "1.2e-4");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(999), "999");
    }

    #[test]
    #[ignore = "writes /tmp/corner.svg to look at"]
    fn example_corner_plot() {
        let x = normals(11, 1_000);
        let y: Vec<f64> = x.iter().zip(normals(12, 1_000)).map(|(a, b)| 1.0 + 0.8 * a + 0.6 * b).collect();
        let skewed: Vec<f64> = normals(13, 1_000).iter().map(|v| (0.7 * v).exp()).collect();
        let svg =
            draws_svg("sample(Q, 1000)", &[column("mu", x), column("theta[1]", y), column("sigma", skewed)]).unwrap();
        std::fs::write("/tmp/corner.svg", svg).unwrap();
    }
}
