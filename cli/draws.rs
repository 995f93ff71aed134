//! The draws of a `sample` command as a person reads them: collected into one column per
//! address element (for `--out`'s CSV and picture), and shown as text — every trace of a few
//! draws, or the first traces and a table of each column's mean, spread and quantiles.
//!
//! It must not decide what is drawn or how; it only reads the traces the session emits.

use std::collections::HashMap;

use ppl::run::{significant, Output, Printed};

use crate::pictures::Column;

/// A `sample` of more draws than this shows its first traces and then a table.
pub const SHOWN_TRACES: u64 = 10;

/// The table lists at most this many columns (`--out` writes them all).
const TABLE_COLUMNS: usize = 30;

/// The draws of one `sample` command, one column per address element.
pub struct Draws {
    source: String,
    count: usize,
    columns: Vec<Column>,
    /// Where each address element's column is.
    index: HashMap<String, usize>,
    /// Keep every draw (for files), or only the first [`TABLE_DRAWS`] (for the table).
    keep_all: bool,
    /// Each column's running mean and sum of squared deviations over every draw (Welford).
    moments: Vec<(f64, f64, usize)>,
}

/// The table's quantiles come from the first this many draws: draws are independent, so these
/// are as good a sample as any, and memory stays bounded however many are drawn.
const TABLE_DRAWS: usize = 100_000;

impl Draws {
    /// Draws to be kept whole (`keep_all`, to write them) or only summarised.
    pub fn new(source: &str, keep_all: bool) -> Draws {
        Draws {
            source: source.to_string(),
            count: 0,
            columns: Vec::new(),
            index: HashMap::new(),
            keep_all,
            moments: Vec::new(),
        }
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// Adds one trace: each address element to its column (a new one, NaN for the earlier
    /// draws, when it first appears); an address this trace lacks is NaN.
    pub fn add(&mut self, trace: &Printed) {
        let mut elements = Vec::new();
        flatten(trace, String::new(), &mut elements);
        let kept = self.keep_all || self.count < TABLE_DRAWS;
        for (position, (name, value)) in elements.into_iter().enumerate() {
            // Traces of one family mostly list the same elements in the same order.
            let column = match self.columns.get(position) {
                Some(column) if column.name == name => position,
                _ => match self.index.get(&name) {
                    Some(column) => *column,
                    None => {
                        let filled = if kept { self.count } else { self.columns.first().map_or(0, |c| c.values.len()) };
                        self.index.insert(name.clone(), self.columns.len());
                        self.columns.push(Column { name, values: vec![f64::NAN; filled] });
                        self.moments.push((0.0, 0.0, 0));
                        self.columns.len() - 1
                    }
                },
            };
            if kept {
                self.columns[column].values.push(value);
            }
            let (mean, squares, n) = &mut self.moments[column];
            if !value.is_nan() {
                *n += 1;
                let delta = value - *mean;
                *mean += delta / *n as f64;
                *squares += delta * (value - *mean);
            }
        }
        self.count += 1;
        if kept {
            for column in &mut self.columns {
                column.values.resize(self.count, f64::NAN);
            }
        }
    }

    /// Each column's mean and standard deviation over every draw, and its 5%, 50% and 95%
    /// quantiles (of the first [`TABLE_DRAWS`] draws), as a table.
    pub fn table(&self) -> String {
        let width =
            self.columns.iter().take(TABLE_COLUMNS).map(|column| column.name.chars().count()).max().unwrap_or(0);
        let mut lines =
            vec![format!("    {:width$}  {:>10} {:>10} {:>10} {:>10} {:>10}", "", "mean", "sd", "5%", "50%", "95%")];
        for (column, (mean, squares, n)) in self.columns.iter().zip(&self.moments).take(TABLE_COLUMNS) {
            let mut values: Vec<f64> = column.values.iter().copied().filter(|x| !x.is_nan()).collect();
            values.sort_by(f64::total_cmp);
            let sd = (squares / (*n as f64 - 1.0)).sqrt();
            let last = values.len().saturating_sub(1) as f64;
            let quantile = |q: f64| values.get((last * q).round() as usize).copied().unwrap_or(f64::NAN);
            let mean = if *n == 0 { f64::NAN } else { *mean };
            let cells: Vec<String> = [mean, sd, quantile(0.05), quantile(0.5), quantile(0.95)]
                .iter()
                .map(|x| format!("{:>10}", significant(*x, 4)))
                .collect();
            lines.push(format!("    {:width$}  {}", column.name, cells.join(" ")));
        }
        if self.columns.len() > TABLE_COLUMNS {
            lines.push(format!("    … and {} more columns", self.columns.len() - TABLE_COLUMNS));
        }
        lines.join("\n")
    }
}

/// The numbers of a trace with their names: `x`, `theta[3]`, `w[1, 2]`, `sub.z`, `p.0`.
fn flatten(value: &Printed, name: String, out: &mut Vec<(String, f64)>) {
    let number = match value {
        Printed::Real(x) => Some(*x),
        Printed::Int(n) => Some(*n as f64),
        Printed::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    };
    if let Some(number) = number {
        out.push((name, number));
        return;
    }
    let join = |field: &str| if name.is_empty() { field.to_string() } else { format!("{name}.{field}") };
    match value {
        Printed::Record(fields) => fields.iter().for_each(|(field, value)| flatten(value, join(field), out)),
        Printed::Tuple(items) => {
            items.iter().enumerate().for_each(|(i, item)| flatten(item, join(&i.to_string()), out))
        }
        Printed::List(rows) if !rows.is_empty() && rows.iter().all(|row| matches!(row, Printed::List(_))) => {
            for (i, row) in rows.iter().enumerate() {
                let Printed::List(items) = row else { continue };
                for (j, item) in items.iter().enumerate() {
                    flatten(item, format!("{name}[{i}, {j}]"), out);
                }
            }
        }
        Printed::List(items) => {
            items.iter().enumerate().for_each(|(i, item)| flatten(item, format!("{name}[{i}]"), out))
        }
        _ => {}
    }
}

/// Results as text for a person (the CLI without `--json`, the REPL): large values and long
/// samples summarised unless `full`.
pub struct Text {
    full: bool,
    /// How to see or keep every draw, where the table is shown (`--full`, `--out DIR`).
    hint: &'static str,
    /// The sample command being shown, with its number of draws, while it has more than
    /// [`SHOWN_TRACES`].
    sample: Option<(Draws, u64)>,
}

impl Text {
    pub fn new(full: bool, hint: &'static str) -> Text {
        Text { full, hint, sample: None }
    }

    /// The text of `output`, if it shows any (a long sample's later traces show only in its
    /// table, after the last one).
    pub fn show(&mut self, output: &Output) -> Option<String> {
        match output {
            Output::Sample { source, count } if !self.full && *count > SHOWN_TRACES => {
                self.sample = Some((Draws::new(source, false), *count));
            }
            Output::Trace { trace, index, .. } => {
                if let Some((draws, count)) = &mut self.sample {
                    draws.add(trace);
                    if *index + 1 == *count {
                        let table = format!(
                            "    … {} more draws; each address over all {count} draws ({}):\n{}",
                            *count - SHOWN_TRACES,
                            self.hint,
                            draws.table()
                        );
                        self.sample = None;
                        return Some(table);
                    }
                    if *index >= SHOWN_TRACES {
                        return None;
                    }
                }
            }
            _ => {}
        }
        Some(output.shown(self.full).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::{Draws, TABLE_DRAWS};
    use ppl::run::Printed;

    fn trace(a: f64, b: Option<bool>) -> Printed {
        let mut fields = vec![("a".to_string(), Printed::Real(a))];
        if let Some(b) = b {
            fields.push(("b".to_string(), Printed::List(vec![Printed::Bool(b), Printed::Int(3)])));
        }
        Printed::Record(fields)
    }

    #[test]
    fn columns_follow_addresses_as_they_appear() {
        let mut draws = Draws::new("q()", true);
        draws.add(&trace(1.0, None));
        draws.add(&trace(2.0, Some(true)));
        draws.add(&trace(3.0, None));
        let columns: Vec<(&str, Vec<String>)> = draws
            .columns()
            .iter()
            .map(|column| (column.name.as_str(), column.values.iter().map(|x| x.to_string()).collect()))
            .collect();
        assert_eq!(
            columns,
            [
                ("a", vec!["1".to_string(), "2".into(), "3".into()]),
                ("b[0]", vec!["NaN".to_string(), "1".into(), "NaN".into()]),
                ("b[1]", vec!["NaN".to_string(), "3".into(), "NaN".into()]),
            ]
        );
    }

    #[test]
    fn the_table_summarises_every_draw_but_keeps_a_bounded_sample() {
        let mut draws = Draws::new("q()", false);
        let n = TABLE_DRAWS + 50_000;
        for i in 0..n {
            draws.add(&trace(i as f64, None));
        }
        assert_eq!(draws.columns()[0].values.len(), TABLE_DRAWS);
        let table = draws.table();
        let row: Vec<&str> = table.lines().nth(1).expect("a row").split_whitespace().collect();
        // The mean of 0..n over every draw; the median of the first TABLE_DRAWS.
        assert_eq!(row[0], "a");
        assert_eq!(row[1], "75000", "{table}");
        assert_eq!(row[4], "50000", "{table}");
    }
}
