//! Data as the host sees it: the values a `data` item can hold (reals, counts, booleans, real
//! vectors and matrices, records of them), from the embedding API or a loaded file.
//!
//! This module must not know where a value came from or how it is lowered.

use crate::syntax::token::{lex, Token};

/// A value the host program gives a `data` item.
#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    Real(f64),
    Int(i64),
    Bool(bool),
    Vec(Vec<f64>),
    /// A matrix, row-major.
    Mat {
        rows: usize,
        cols: usize,
        data: Vec<f64>,
    },
    Record(Vec<(String, Data)>),
}

impl Data {
    /// The value as `.ppl` source (reals in their shortest exact form), or why it has none.
    pub(crate) fn literal(&self) -> Result<String, String> {
        let real =
            |x: f64| if x.is_finite() { Ok(format!("{x:?}")) } else { Err(format!("{x} is not a finite number")) };
        let reals = |data: &[f64]| data.iter().map(|x| real(*x)).collect::<Result<Vec<_>, _>>().map(|xs| xs.join(", "));
        match self {
            Data::Real(x) => real(*x),
            // The literal 9223372036854775808 does not exist: −2⁶³ is written as a difference.
            Data::Int(i64::MIN) => Ok(format!("({} - 1)", i64::MIN + 1)),
            Data::Int(n) => Ok(n.to_string()),
            Data::Bool(b) => Ok(b.to_string()),
            Data::Vec(data) if data.is_empty() => Err("an empty vector".into()),
            Data::Vec(data) => Ok(format!("[{}]", reals(data)?)),
            Data::Mat { rows, cols, data } => {
                if *rows == 0 || *cols == 0 || rows.checked_mul(*cols) != Some(data.len()) {
                    return Err(format!("a {rows} × {cols} matrix, but {} values", data.len()));
                }
                let rows = data.chunks(*cols).map(|row| reals(row).map(|row| format!("[{row}]")));
                Ok(format!("[{}]", rows.collect::<Result<Vec<_>, _>>()?.join(", ")))
            }
            Data::Record(fields) => {
                let fields = fields.iter().map(|(name, value)| {
                    if !is_identifier(name) {
                        return Err(format!("`{name}` is not a field name"));
                    }
                    value.literal().map(|value| format!("{name}: {value}"))
                });
                Ok(format!("{{ {} }}", fields.collect::<Result<Vec<_>, _>>()?.join(", ")))
            }
        }
    }

    /// What the value is, for messages: `a real`, `a vec[7]`, `a record {y: real}`.
    pub(crate) fn kind(&self) -> String {
        match self {
            Data::Real(_) => "a real".into(),
            Data::Int(_) => "an int".into(),
            Data::Bool(_) => "a bool".into(),
            Data::Vec(data) => format!("a vec[{}]", data.len()),
            Data::Mat { rows, cols, .. } => format!("a mat[{rows}, {cols}]"),
            Data::Record(fields) => {
                let fields: Vec<String> = fields
                    .iter()
                    .map(|(name, value)| {
                        format!("{name}: {}", value.kind().trim_start_matches("an ").trim_start_matches("a "))
                    })
                    .collect();
                format!("a record {{{}}}", fields.join(", "))
            }
        }
    }
}

/// Whether `name` is a field name: one identifier token, as the lexer reads it.
fn is_identifier(name: &str) -> bool {
    let lexed = lex(name);
    lexed.diagnostics.is_empty() && matches!(lexed.tokens.as_slice(), [(Token::Ident(ident), _)] if *ident == name)
}
