//! Output: atomic files, tables, JSON/CSV and SVG plots.

use plotters::prelude::*;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// What a plot's drawing calls fail with (plotters' SVG backend).
pub type DrawError = plotters::drawing::DrawingAreaErrorKind<std::io::Error>;

/// An error of the bench binary: a library error kept typed, or what failed in the bench's
/// own work (command line, files, plots, external programs), each saying what and where.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A revode library call failed.
    #[error(transparent)]
    Revode(#[from] revode_core::Error),
    /// A command-line value lies outside its range.
    #[error("{flag} must {rule}, not {value}")]
    OutOfRange {
        /// The option (or options) at fault, as typed: "--rho".
        flag: &'static str,
        /// What the value must satisfy, after "must": "lie in (−1, 1)".
        rule: &'static str,
        /// The value given.
        value: String,
    },
    /// The pendulum's learning-rate schedule and clipping do not fit together.
    #[error("need --lr > 0, --lr-final in (0, 1] and --clip ≥ 0 (got {lr}, {lr_final}, {clip})")]
    Schedule {
        /// `--lr`.
        lr: f64,
        /// `--lr-final`.
        lr_final: f64,
        /// `--clip`.
        clip: f64,
    },
    /// A name that is none of the known ones (a problem, a method, an order).
    #[error("unknown {what} '{name}' (known: {})", .known.join(", "))]
    UnknownName {
        /// What kind of name: "frontier problem".
        what: &'static str,
        /// The name given.
        name: String,
        /// The names that exist.
        known: Vec<&'static str>,
    },
    /// `--out` names a file.
    #[error("--out {} is a file, not a directory", .path.display())]
    OutIsFile {
        /// The `--out` path.
        path: PathBuf,
    },
    /// The output directory cannot be created.
    #[error("cannot create output directory {}: {source}", .path.display())]
    OutNotCreated {
        /// The `--out` path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The output directory exists but a probe file cannot be written and removed in it.
    #[error("output directory {} is not writable: {source}", .path.display())]
    OutNotWritable {
        /// The `--out` path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file or directory operation failed.
    #[error("cannot {action} {}: {source}", .path.display())]
    Io {
        /// What was being done: "read", "create directory".
        action: &'static str,
        /// On which path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A value could not be serialised as JSON.
    #[error("cannot serialise {what} as JSON: {source}")]
    Json {
        /// What was being serialised: the file it was meant for, or the output it is.
        what: String,
        /// Why.
        source: serde_json::Error,
    },
    /// Rows could not be serialised as CSV.
    #[error("cannot serialise {} as CSV: {source}", .path.display())]
    Csv {
        /// The file they were meant for.
        path: PathBuf,
        /// Why.
        source: csv::Error,
    },
    /// Drawing a plot failed.
    #[error("plot {}: {source}", .path.display())]
    Plot {
        /// The SVG file being drawn.
        path: PathBuf,
        /// Why.
        source: DrawError,
    },
    /// A plot has no point it could draw.
    #[error("plot {}: no {which} points", .path.display())]
    EmptyPlot {
        /// The SVG file.
        path: PathBuf,
        /// Which points would count: "positive finite" (log axes) or "finite".
        which: &'static str,
    },
    /// The one-thread pool of a timing run could not be built.
    #[error("cannot build the one-thread pool: {0}")]
    ThreadPool(#[from] rayon::ThreadPoolBuildError),
    /// An external program could not be started.
    #[error("{program}: {source} ({hint})")]
    Launch {
        /// The program.
        program: &'static str,
        /// What to do about it.
        hint: &'static str,
        /// Why it did not start.
        source: std::io::Error,
    },
    /// An external program ran and failed.
    #[error("{command} failed: {stderr}")]
    External {
        /// The command line.
        command: String,
        /// What it wrote to stderr.
        stderr: String,
    },
    /// An external program that must be built first is missing.
    #[error("{} not found: build it first with `{build}`", .path.display())]
    NotBuilt {
        /// Where it should be.
        path: PathBuf,
        /// The command that builds it.
        build: &'static str,
    },
    /// An external program's output file lacks what it should hold.
    #[error("{}: no {what} in '{line}'", .path.display())]
    BadOutput {
        /// The output file.
        path: PathBuf,
        /// What was looked for: "s/step".
        what: &'static str,
        /// The line it was looked for in.
        line: String,
    },
    /// A problem that needs a fixed step got adaptive step options.
    #[error("{problem}: the step options are adaptive; a fixed step is needed")]
    AdaptiveStep {
        /// The problem.
        problem: &'static str,
    },
    /// A checkpointed-reversible gradient drifted at the interval the automatic search chose.
    #[error(
        "{what}: reconstruction drift {} at the chosen checkpoint interval {interval} \
         (tolerance {tolerance:e})",
        .drift.map_or_else(|| "not measured".to_string(), |d| format!("{d:e}"))
    )]
    Drift {
        /// The measurement: problem, grid and steps.
        what: String,
        /// The checkpoint interval.
        interval: usize,
        /// The measured drift, if any.
        drift: Option<f64>,
        /// The tolerance it had to meet.
        tolerance: f64,
    },
    /// One of `all`'s planned command lines does not parse (a bug in `all::plan`).
    #[error("all: {folder}: {source}")]
    AllPlan {
        /// The experiment's folder.
        folder: String,
        /// clap's error.
        source: clap::Error,
    },
    /// An experiment was given no seeds.
    #[error("{experiment} needs at least one seed")]
    NoSeeds {
        /// The experiment.
        experiment: &'static str,
    },
}

/// The result of a bench step.
pub type BenchResult<T> = Result<T, BenchError>;

/// A `map_err` for the drawing calls of the plot written to `path`.
pub fn plot_error(path: &Path) -> impl Fn(DrawError) -> BenchError + Copy + '_ {
    move |source| BenchError::Plot {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `bytes` to `path` atomically and durably (revode-core's [`revode_core::files::write_atomic`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> BenchResult<()> {
    Ok(revode_core::files::write_atomic(path, bytes)?)
}

/// Serialises `value` as pretty JSON into `dir/name`.
pub fn write_json<T: Serialize>(dir: &Path, name: &str, value: &T) -> BenchResult<PathBuf> {
    let path = dir.join(name);
    let text = serde_json::to_string_pretty(value).map_err(|source| BenchError::Json {
        what: path.display().to_string(),
        source,
    })?;
    write_atomic(&path, text.as_bytes())?;
    Ok(path)
}

/// Writes rows as CSV into `dir/name`.
pub fn write_csv<T: Serialize>(dir: &Path, name: &str, rows: &[T]) -> BenchResult<PathBuf> {
    let path = dir.join(name);
    let mut w = csv::Writer::from_writer(Vec::new());
    let csv_error = |source| BenchError::Csv {
        path: path.clone(),
        source,
    };
    for r in rows {
        w.serialize(r).map_err(csv_error)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| csv_error(e.into_error().into()))?;
    write_atomic(&path, &bytes)?;
    Ok(path)
}

/// A plain-text table with right-aligned columns.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with the given column names.
    pub fn new(header: &[&str]) -> Self {
        Table {
            header: header.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        }
    }
    /// Appends a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }
    /// Renders as text (also valid Markdown).
    pub fn render(&self) -> String {
        let n = self.header.len();
        let mut w: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate().take(n) {
                w[i] = w[i].max(c.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let mut s = String::from("|");
            for (i, c) in cells.iter().enumerate().take(n) {
                s += &format!(" {:>width$} |", c, width = w[i]);
            }
            s
        };
        let mut out = line(&self.header);
        out.push('\n');
        out += &format!(
            "|{}",
            w.iter()
                .map(|&k| format!("{}:|", "-".repeat(k + 1)))
                .collect::<String>()
        );
        for r in &self.rows {
            out.push('\n');
            out += &line(r);
        }
        out
    }
}

/// One named series of (x, y) points.
pub struct Series {
    /// Legend label.
    pub label: String,
    /// Points; non-positive or non-finite values are skipped on log axes.
    pub points: Vec<(f64, f64)>,
}

/// A log–log line plot as SVG.
pub fn plot_loglog(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
) -> BenchResult<()> {
    let pts: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|s| s.points.iter().copied())
        .filter(|(x, y)| x.is_finite() && y.is_finite() && *x > 0.0 && *y > 0.0)
        .collect();
    if pts.is_empty() {
        return Err(BenchError::EmptyPlot {
            path: path.to_path_buf(),
            which: "positive finite",
        });
    }
    let (x0, x1) = pts
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (y0, y1) = pts
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    let failed = plot_error(path);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (800, 520)).into_drawing_area();
        root.fill(&WHITE).map_err(failed)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(70)
            .build_cartesian_2d(
                (x0 / 1.3..x1 * 1.3).log_scale(),
                (y0 / 2.0..y1 * 2.0).log_scale(),
            )
            .map_err(failed)?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .x_label_formatter(&|v| format!("{v:.0e}"))
            .y_label_formatter(&|v| format!("{v:.0e}"))
            .draw()
            .map_err(failed)?;
        draw_series(&mut chart, series, |x, y| *x > 0.0 && *y > 0.0).map_err(failed)?;
        root.present().map_err(failed)?;
    }
    write_atomic(path, svg.as_bytes())
}

/// Draws every series (points passing `keep`) with a legend.
fn draw_series<'a, 'b: 'a, X, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'b>, Cartesian2d<X, Y>>,
    series: &[Series],
    keep: impl Fn(&f64, &f64) -> bool,
) -> Result<(), DrawError>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    for (i, s) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let data: Vec<(f64, f64)> = s
            .points
            .iter()
            .copied()
            .filter(|(x, y)| x.is_finite() && y.is_finite() && keep(x, y))
            .collect();
        let drawn = chart.draw_series(LineSeries::new(data.clone(), color.stroke_width(2)))?;
        if !s.label.is_empty() {
            drawn.label(s.label.clone()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
        }
        if data.len() <= 64 {
            chart.draw_series(data.into_iter().map(|p| Circle::new(p, 3, color.filled())))?;
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    Ok(())
}

/// A line plot with linear axes as SVG (series with an empty label get no legend entry).
pub fn plot_lines(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
) -> BenchResult<()> {
    let pts: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|s| s.points.iter().copied())
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    if pts.is_empty() {
        return Err(BenchError::EmptyPlot {
            path: path.to_path_buf(),
            which: "finite",
        });
    }
    let (x0, x1) = pts
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (y0, y1) = pts
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    let pad = 0.05 * (y1 - y0).max(1e-12);
    let failed = plot_error(path);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (800, 520)).into_drawing_area();
        root.fill(&WHITE).map_err(failed)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(70)
            .build_cartesian_2d(x0..x1.max(x0 + 1e-12), y0 - pad..y1 + pad)
            .map_err(failed)?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .draw()
            .map_err(failed)?;
        draw_series(&mut chart, series, |_, _| true).map_err(failed)?;
        root.present().map_err(failed)?;
    }
    write_atomic(path, svg.as_bytes())
}

/// One panel of a region plot: label, real axis, imaginary axis, values (rows by imaginary part).
pub type Panel = (String, Vec<f64>, Vec<f64>, Vec<Vec<f64>>);

/// A heat map of values on a grid (e.g. a stability region's spectral radius), as SVG:
/// cells with value < 1 are coloured, the rest grey.
pub fn plot_region(path: &Path, title: &str, regions: &[Panel]) -> BenchResult<()> {
    let failed = plot_error(path);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (420 * regions.len() as u32, 460))
            .into_drawing_area();
        root.fill(&WHITE).map_err(failed)?;
        let panels = root.split_evenly((1, regions.len()));
        for (panel, (label, re, im, radius)) in panels.iter().zip(regions) {
            let (xr, yr) = ((re[0], re[re.len() - 1]), (im[0], im[im.len() - 1]));
            let mut chart = ChartBuilder::on(panel)
                .caption(format!("{title}: {label}"), ("sans-serif", 16))
                .margin(10)
                .x_label_area_size(36)
                .y_label_area_size(44)
                .build_cartesian_2d(xr.0..xr.1, yr.0..yr.1)
                .map_err(failed)?;
            chart
                .configure_mesh()
                .x_desc("Re(hα)")
                .y_desc("Im(hα)")
                .disable_mesh()
                .draw()
                .map_err(failed)?;
            let (dx, dy) = ((re[1] - re[0]) / 2.0, (im[1] - im[0]) / 2.0);
            let cells = im.iter().enumerate().flat_map(|(i, &y)| {
                re.iter().enumerate().map(move |(j, &x)| {
                    let r = radius[i][j];
                    let color = if r < 1.0 {
                        let t = (1.0 - r).clamp(0.0, 1.0);
                        RGBColor(
                            (40.0 + 60.0 * (1.0 - t)) as u8,
                            (90.0 + 120.0 * t) as u8,
                            200,
                        )
                    } else {
                        RGBColor(235, 235, 235)
                    };
                    Rectangle::new([(x - dx, y - dy), (x + dx, y + dy)], color.filled())
                })
            });
            chart.draw_series(cells).map_err(failed)?;
        }
        root.present().map_err(failed)?;
    }
    write_atomic(path, svg.as_bytes())
}

/// Formats seconds with a sensible unit.
pub fn fmt_time(s: f64) -> String {
    if !s.is_finite() {
        "—".into()
    } else if s < 1e-3 {
        format!("{:.1} µs", s * 1e6)
    } else if s < 1.0 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}

/// Formats a byte count.
pub fn fmt_bytes(b: usize) -> String {
    let b = b as f64;
    if b < 1024.0 {
        format!("{b:.0} B")
    } else if b < 1024.0 * 1024.0 {
        format!("{:.1} KiB", b / 1024.0)
    } else if b < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.1} MiB", b / 1024.0 / 1024.0)
    } else {
        format!("{:.2} GiB", b / 1024.0 / 1024.0 / 1024.0)
    }
}
