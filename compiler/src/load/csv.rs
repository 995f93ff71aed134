//! Text tables (`.csv`, `.tsv`, `.txt`): rows of numbers separated by commas, or else by
//! whitespace, with an optional header row; blank lines and lines starting with `#` are skipped.
//!
//! This file owns splitting text into a rectangular table of numbers and naming lines in its
//! errors. It must not interpret the table: fitting it to the declared type is `fit`'s work.

use super::{abbreviated, how_many_values, LoadError, Numbers};

/// Reads a table; each row remembers its line so that later messages can name it.
pub(super) fn parse(bytes: &[u8]) -> Result<Numbers, LoadError> {
    let text = std::str::from_utf8(bytes).map_err(|error| {
        LoadError::new(format!("the file is not UTF-8 text: byte {} is not valid UTF-8", error.valid_up_to() + 1))
    })?;
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .map(|(index, line)| (index + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
        .collect();
    let commas = lines.iter().any(|(_, line)| line.contains(','));
    let mut rows = lines.iter().map(|(line, text)| (*line, cells(text, commas))).peekable();
    // A header names the columns: some cell of it is not a number.
    let header = rows.next_if(|(_, cells)| cells.iter().any(|cell| cell.parse::<f64>().is_err()));
    // The line and length of the first row, which every other row must match.
    let mut width = header.map(|(line, names)| (line, names.len()));
    let mut values = Vec::new();
    let mut row_lines = Vec::new();
    for (line, cells) in rows {
        match width {
            Some((first_line, first_width)) if cells.len() != first_width => {
                return Err(LoadError::new(format!(
                    "line {line} has {}, line {first_line} has {first_width}",
                    how_many_values(cells.len())
                )));
            }
            Some(_) => {}
            None => width = Some((line, cells.len())),
        }
        for (column, cell) in cells.iter().enumerate() {
            let value = cell.parse::<f64>().map_err(|_| {
                let found = if cell.is_empty() { "empty".to_string() } else { format!("`{}`", abbreviated(cell, 24)) };
                LoadError::new(format!("line {line}, column {} is {found}, not a number", column + 1))
            })?;
            values.push(value);
        }
        row_lines.push(line);
    }
    let columns = width.map_or(0, |(_, width)| width);
    Ok(Numbers { shape: vec![row_lines.len(), columns], values, row_lines: Some(row_lines) })
}

fn cells(line: &str, commas: bool) -> Vec<&str> {
    if commas {
        line.split(',').map(str::trim).collect()
    } else {
        line.split_whitespace().collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::data::Data;
    use crate::load::tests::{array, gzip, mat, message, read_bytes, record, shared_data, survives_corruption, vec};
    use crate::types::{Dim, Type};

    fn csv(text: &str, ty: &Type) -> Result<Data, super::LoadError> {
        read_bytes("data.csv", text.as_bytes(), ty)
    }

    #[test]
    fn commas_whitespace_headers_and_comments() {
        let expected = Ok(Data::Mat { rows: 2, cols: 3, data: vec![1.0, 2.0, 3.0, 4.0, 5.5, -6e-1] });
        assert_eq!(csv("1,2,3\n4,5.5,-6e-1\n", &mat(2, 3)), expected);
        assert_eq!(csv("a, b, c\r\n 1 , 2, 3\r\n\r\n4, 5.5, -6e-1", &mat(2, 3)), expected);
        assert_eq!(csv("# made by hand\n1 2\t3\n\n  4 5.5   -6e-1  \n# end\n", &mat(2, 3)), expected);
        assert_eq!(read_bytes("data.tsv", b"x\ty\tz\n1\t2\t3\n4\t5.5\t-6e-1\n", &mat(2, 3)), expected);
        assert_eq!(read_bytes("data.txt", "\u{FEFF}1 2 3\n4 5.5 -6e-1\n".as_bytes(), &mat(2, 3)), expected);
        assert_eq!(read_bytes("data.csv.gz", &gzip(b"1,2,3\n4,5.5,-6e-1\n"), &mat(2, 3)), expected);
    }

    #[test]
    fn each_type() {
        assert_eq!(csv("y\n2.5\n", &Type::Real), Ok(Data::Real(2.5)));
        assert_eq!(csv("7\n", &Type::Int), Ok(Data::Int(7)));
        assert_eq!(csv("1\n", &Type::Bool), Ok(Data::Bool(true)));
        assert_eq!(csv("1\n2\n3\n", &vec(3)), Ok(Data::Vec(vec![1.0, 2.0, 3.0])));
        assert_eq!(csv("1, 2, 3\n", &Type::Vec(Dim::Unknown)), Ok(Data::Vec(vec![1.0, 2.0, 3.0])));
        assert_eq!(csv("k\n4\n0\n", &array(Type::Int, Dim::Known(2))), Ok(Data::Vec(vec![4.0, 0.0])));
        assert_eq!(csv("0 1 1\n", &array(Type::Bool, Dim::Unknown)), Ok(Data::Vec(vec![0.0, 1.0, 1.0])));
        let counts = array(array(Type::Int, Dim::Unknown), Dim::Unknown);
        assert_eq!(csv("1 2\n3 4\n", &counts), Ok(Data::Mat { rows: 2, cols: 2, data: vec![1.0, 2.0, 3.0, 4.0] }));
    }

    #[test]
    fn ragged_rows_name_their_lines() {
        assert_eq!(message(csv("1,2,3\n# note\n4,5\n", &mat(2, 3))), "line 3 has 2 values, line 1 has 3");
        assert_eq!(message(csv("a b\n1 2 3\n", &mat(1, 3))), "line 2 has 3 values, line 1 has 2");
        assert_eq!(message(csv("1 2\n\n3\n", &mat(2, 2))), "line 3 has 1 value, line 1 has 2");
    }

    #[test]
    fn cells_that_are_not_numbers() {
        assert_eq!(message(csv("x,y\n1,2\n3,\n", &mat(2, 2))), "line 3, column 2 is empty, not a number");
        assert_eq!(message(csv("1 2\n3 four\n", &mat(2, 2))), "line 2, column 2 is `four`, not a number");
        let long = format!("1 2\n3 {}\n", "x".repeat(100));
        assert_eq!(message(csv(&long, &mat(2, 2))), format!("line 2, column 2 is `{}…`, not a number", "x".repeat(24)));
        assert_eq!(
            message(read_bytes("x.csv", &[0x31, 0xff, 0x0a], &vec(1))),
            "the file is not UTF-8 text: byte 2 is not valid UTF-8"
        );
    }

    #[test]
    fn shapes_and_values_are_checked_with_line_numbers() {
        assert_eq!(message(csv("1,2\n3,4\n", &mat(2, 3))), "expected a mat[2, 3], found a 2 × 2 table in CSV");
        assert_eq!(message(csv("1,2\n3,4\n", &vec(4))), "expected a vec[4], found a 2 × 2 table in CSV");
        assert_eq!(message(csv("1 2\n", &Type::Real)), "expected a real, found a 1 × 2 table in CSV");
        assert_eq!(message(csv("# nothing\n", &vec(1))), "expected a vec[1], found no values in CSV");
        assert_eq!(message(csv("a,b\n", &vec(2))), "expected a vec[2], found no values in CSV");
        let counts = array(Type::Int, Dim::Unknown);
        assert_eq!(
            message(csv("k\n1\n\n2.5\n", &counts)),
            "line 4, column 1 is 2.5, but a [int; _] holds whole numbers within ±2^53"
        );
        assert_eq!(
            message(csv("1 2\n3 nan\n", &mat(2, 2))),
            "line 2, column 2 is NaN, but a mat[2, 2] holds finite numbers"
        );
        assert_eq!(message(csv("x,y\n1,inf\n", &vec(2))), "line 2, column 2 is inf, but a vec[2] holds finite numbers");
        assert_eq!(message(csv("2\n", &Type::Bool)), "line 1, column 1 is 2, but a bool holds only 0 and 1");
        assert_eq!(
            message(csv("1\n", &record(&[("x", Type::Real)]))),
            "expected a record {x: real}, found a 1 × 1 table in CSV"
        );
    }

    #[test]
    fn corrupted_tables_are_errors() {
        let target = crate::load::Target::of(&Type::Mat(Dim::Unknown, Dim::Unknown)).expect("loadable");
        survives_corruption(b"a, b\n# c\n1, 2.5\n\n3e2, -4\n", |bytes| {
            let _ = super::parse(bytes).and_then(|numbers| crate::load::fit(numbers, &target, "in CSV"));
        });
    }

    /// The UCI German credit file: 1000 lines of 25 right-aligned integers.
    #[test]
    fn german_credit_numeric() {
        let Some(folder) = shared_data("german_credit") else { return };
        let counts = array(array(Type::Int, Dim::Known(25)), Dim::Known(1000));
        // The file has no extension, which `load` needs: it is read through a named copy.
        let bytes = std::fs::read(folder.join("german.data-numeric")).expect("readable");
        let Ok(Data::Mat { rows: 1000, cols: 25, data }) = read_bytes("german.txt", &bytes, &counts) else {
            panic!("a 1000 × 25 table of counts")
        };
        assert_eq!(data.get(..3), Some([1.0, 6.0, 4.0].as_slice()));
        assert_eq!(data.iter().skip(24).step_by(25).filter(|&&label| label == 2.0).count(), 300);
    }
}
