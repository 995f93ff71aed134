//! Rendering diagnostics as text with ariadne, rustc style.

use ariadne::{Color, Config, IndexType, Label as AriadneLabel, Report, ReportKind};

use super::{Diagnostic, Severity, SourceMap};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ColorChoice {
    #[default]
    Never,
    Always,
}

/// Renders one diagnostic to a string (ariadne output plus a trailing newline).
pub fn render(diagnostic: &Diagnostic, sources: &SourceMap, color: ColorChoice) -> String {
    render_with(diagnostic, sources, &mut source_cache(sources), color)
}

/// Ariadne's view of the source files: built once per batch of diagnostics, since building it
/// indexes every line of every file.
fn source_cache(sources: &SourceMap) -> impl ariadne::Cache<String> + '_ {
    ariadne::sources(sources.files().map(|(_, file)| (file.name.clone(), file.text.as_str())))
}

fn render_with(
    diagnostic: &Diagnostic,
    sources: &SourceMap,
    cache: &mut impl ariadne::Cache<String>,
    color: ColorChoice,
) -> String {
    let colored = color == ColorChoice::Always;
    let kind = match diagnostic.severity {
        Severity::Error => ReportKind::Error,
        Severity::Warning => ReportKind::Warning,
    };
    let located = |span| -> Option<(String, std::ops::Range<usize>)> {
        sources.locate(span).map(|(file, range)| (file.name.clone(), range))
    };
    let Some(anchor) = diagnostic
        .span()
        .and_then(located)
        .or_else(|| sources.files().next().map(|(_, file)| (file.name.clone(), 0..0)))
    else {
        return format!("error[{}]: {}\n", diagnostic.code.as_str(), diagnostic.message);
    };

    let mut report = Report::build(kind, anchor)
        .with_config(Config::new().with_color(colored).with_index_type(IndexType::Byte))
        .with_code(diagnostic.code.as_str())
        .with_message(&diagnostic.message);
    if let Some(primary) = &diagnostic.primary {
        if let Some(span) = located(primary.span) {
            let color = if diagnostic.severity == Severity::Error { Color::Red } else { Color::Yellow };
            report = report
                .with_label(AriadneLabel::new(span).with_message(&primary.message).with_color(color).with_order(0));
        }
    }
    for (order, label) in diagnostic.secondary.iter().enumerate() {
        if let Some(span) = located(label.span) {
            report = report.with_label(
                AriadneLabel::new(span)
                    .with_message(&label.message)
                    .with_color(Color::Blue)
                    .with_order(order as i32 + 1),
            );
        }
    }
    for help in &diagnostic.help {
        report = report.with_help(help);
    }
    for note in &diagnostic.notes {
        report = report.with_note(note);
    }

    let mut out = Vec::new();
    if report.finish().write(&mut *cache, &mut out).is_err() {
        return format!("error[{}]: {}\n", diagnostic.code.as_str(), diagnostic.message);
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Renders every diagnostic, in order, followed by a summary line when there are errors.
pub fn render_all(diagnostics: &[Diagnostic], sources: &SourceMap, color: ColorChoice) -> String {
    let mut out = String::new();
    let mut cache = source_cache(sources);
    for diagnostic in diagnostics {
        out.push_str(&render_with(diagnostic, sources, &mut cache, color));
    }
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    match errors {
        0 => {}
        1 => out.push_str("error: could not compile: 1 error\n"),
        n => out.push_str(&format!("error: could not compile: {n} errors\n")),
    }
    out
}
