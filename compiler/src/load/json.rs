//! JSON (`.json`): numbers and booleans, lists (nested for matrices), and objects for records.
//! A record reads the object's fields by name; fields it does not declare are ignored, since
//! data files (posteriordb's) carry more than one model uses.
//!
//! This file owns walking a JSON value along the declared type and turning nested lists into
//! rectangular [`Numbers`]. It must not decide whether numbers fit a type: `fit` does.

use serde_json::Value;

use super::{described, element_count, fit, how_many_values, position, Form, LoadError, Numbers, Target};
use crate::data::Data;

pub(super) fn read(bytes: &[u8], target: &Target<'_>) -> Result<Data, LoadError> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|error| LoadError::new(format!("the file is not valid JSON: {error}")))?;
    read_value(&value, target, "")
}

/// Reads `value` as `target`; `field` is the dotted name of the field it is, empty at the top.
fn read_value(value: &Value, target: &Target<'_>, field: &str) -> Result<Data, LoadError> {
    let in_field = |error: LoadError| match field {
        "" => error,
        _ => LoadError { message: format!("field `{field}`: {}", error.message), ..error },
    };
    match (&target.form, value) {
        (Form::Record(fields), Value::Object(object)) => {
            let mut read = Vec::with_capacity(fields.len());
            for declared in fields {
                let name = declared.name;
                let path = if field.is_empty() { name.to_string() } else { format!("{field}.{name}") };
                match object.get(name) {
                    Some(value) => read.push((name.to_string(), read_value(value, &declared.target, &path)?)),
                    None if declared.optional => {}
                    None => {
                        let message = format!(
                            "expected a field `{path}` holding {}, but the JSON object has none",
                            described(declared.target.declared)
                        );
                        return Err(LoadError::new(message).with_note(field_names(object)));
                    }
                }
            }
            Ok(Data::Record(read))
        }
        (Form::Record(_), _) | (Form::Numeric(..), Value::Object(_)) => Err(in_field(LoadError::new(format!(
            "expected {}, found {} in JSON",
            described(target.declared),
            kind_of(value)
        )))),
        (Form::Numeric(..), _) => numbers(value).and_then(|numbers| fit(numbers, target, "in JSON")).map_err(in_field),
    }
}

/// The fields an object does have, for a note when one is missing.
fn field_names(object: &serde_json::Map<String, Value>) -> String {
    const SHOWN: usize = 12;
    let mut names: Vec<String> = object.keys().take(SHOWN).map(|name| format!("`{name}`")).collect();
    if object.len() > SHOWN {
        names.push(format!("and {} more", object.len() - SHOWN));
    }
    match names.is_empty() {
        true => "the object has no fields".into(),
        false => format!("the object has {}", names.join(", ")),
    }
}

/// A JSON value for messages.
fn kind_of(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(_) => "a boolean".into(),
        Value::Number(_) => "a number".into(),
        Value::String(_) => "a string".into(),
        Value::Array(items) => format!("a list of {}", how_many_values(items.len())),
        Value::Object(_) => "an object".into(),
    }
}

/// Nested lists as a rectangular array: the first element at each depth sets the shape, and
/// every other list must agree with it.
fn numbers(value: &Value) -> Result<Numbers, LoadError> {
    let mut shape = Vec::new();
    let mut first = value;
    while let Value::Array(items) = first {
        shape.push(items.len());
        match items.first() {
            Some(item) => first = item,
            None => break,
        }
    }
    let mut values = Vec::with_capacity(element_count(&shape).unwrap_or(0));
    collect(value, &shape, &mut Vec::with_capacity(shape.len()), &mut values)?;
    Ok(Numbers { shape, values, row_lines: None })
}

/// Appends the numbers of `value`, found at `coordinates`, which must have the `shape` left.
fn collect(
    value: &Value,
    shape: &[usize],
    coordinates: &mut Vec<usize>,
    values: &mut Vec<f64>,
) -> Result<(), LoadError> {
    let depth = coordinates.len() + shape.len();
    let here = |coordinates: &[usize]| position(coordinates, depth);
    match (value, shape) {
        // Without serde_json's arbitrary precision every number is an f64; NaN would be
        // reported as a value that fits no type.
        (Value::Number(number), []) => values.push(number.as_f64().unwrap_or(f64::NAN)),
        (Value::Bool(truth), []) => values.push(if *truth { 1.0 } else { 0.0 }),
        (Value::Array(items), [length, rest @ ..]) if items.len() == *length => {
            for (index, item) in items.iter().enumerate() {
                coordinates.push(index);
                collect(item, rest, coordinates, values)?;
                coordinates.pop();
            }
        }
        (Value::Array(items), [length, ..]) => {
            let first = vec![0; coordinates.len()];
            return Err(LoadError::new(format!(
                "{} has {}, {} has {length}",
                here(coordinates),
                how_many_values(items.len()),
                here(&first)
            )));
        }
        (_, []) => return Err(LoadError::new(format!("{} is {}, not a number", here(coordinates), kind_of(value)))),
        (_, _) => return Err(LoadError::new(format!("{} is {}, not a list", here(coordinates), kind_of(value)))),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::data::Data;
    use crate::load::tests::{array, gzip, mat, message, read_bytes, record, shared_data, survives_corruption, vec};
    use crate::load::LoadError;
    use crate::types::{Dim, Type};

    fn json(text: &str, ty: &Type) -> Result<Data, LoadError> {
        read_bytes("data.json", text.as_bytes(), ty)
    }

    #[test]
    fn each_type() {
        assert_eq!(json("2.5", &Type::Real), Ok(Data::Real(2.5)));
        assert_eq!(json("3", &Type::Real), Ok(Data::Real(3.0)));
        assert_eq!(json("3.0", &Type::Int), Ok(Data::Int(3)));
        assert_eq!(json("-12", &Type::Int), Ok(Data::Int(-12)));
        assert_eq!(json("true", &Type::Bool), Ok(Data::Bool(true)));
        assert_eq!(json("0", &Type::Bool), Ok(Data::Bool(false)));
        assert_eq!(json("[1, 2.5]", &vec(2)), Ok(Data::Vec(vec![1.0, 2.5])));
        assert_eq!(json("[true, false]", &array(Type::Bool, Dim::Unknown)), Ok(Data::Vec(vec![1.0, 0.0])));
        assert_eq!(json("[4, 5.0]", &array(Type::Int, Dim::Known(2))), Ok(Data::Vec(vec![4.0, 5.0])));
        let expected = Ok(Data::Mat { rows: 2, cols: 3, data: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0] });
        assert_eq!(json("[[1, 2, 3], [4, 5, 6]]", &mat(2, 3)), expected);
        assert_eq!(
            json("[[1, 2], [3, 4], [5, 6]]", &mat(2, 3)).map_err(|e| e.message),
            Err("expected a mat[2, 3], found a 3 × 2 table in JSON".into())
        );
        let counts = array(array(Type::Int, Dim::Known(3)), Dim::Known(2));
        assert_eq!(json("[[1, 2, 3], [4, 5, 6]]", &counts), expected);
        assert_eq!(read_bytes("data.json.gz", &gzip(b"[[1, 2, 3], [4, 5, 6]]"), &mat(2, 3)), expected);
    }

    #[test]
    fn records_read_declared_fields_by_name() {
        let ty = record(&[("y", vec(2)), ("n", Type::Int), ("inner", record(&[("flag", Type::Bool)]))]);
        let text = r#"{"n": 2, "extra": "ignored", "inner": {"flag": true, "more": null}, "y": [0.5, 1.5]}"#;
        let expected = Data::Record(vec![
            ("y".into(), Data::Vec(vec![0.5, 1.5])),
            ("n".into(), Data::Int(2)),
            ("inner".into(), Data::Record(vec![("flag".into(), Data::Bool(true))])),
        ]);
        assert_eq!(json(text, &ty), Ok(expected));
    }

    #[test]
    fn missing_fields_are_named_with_the_fields_present() {
        let ty = record(&[("N", Type::Int), ("X", mat(2, 2))]);
        let error = json(r#"{"N": 2, "x": [[1, 2], [3, 4]]}"#, &ty).expect_err("no X");
        assert_eq!(error.message, "expected a field `X` holding a mat[2, 2], but the JSON object has none");
        assert_eq!(error.note.as_deref(), Some("the object has `N`, `x`"));
        let nested = record(&[("a", record(&[("b", Type::Real)]))]);
        let error = json(r#"{"a": {}}"#, &nested).expect_err("no a.b");
        assert_eq!(error.message, "expected a field `a.b` holding a real, but the JSON object has none");
        assert_eq!(error.note.as_deref(), Some("the object has no fields"));
        let many: Vec<String> = (0..20).map(|i| format!(r#""f{i}": 0"#)).collect();
        let error = json(&format!("{{{}}}", many.join(", ")), &ty).expect_err("no N");
        assert!(error.note.as_deref().is_some_and(|note| note.ends_with("`f11`, and 8 more")), "{error:?}");
    }

    #[test]
    fn errors_inside_fields_name_the_field() {
        let ty = record(&[("k", array(Type::Int, Dim::Known(3))), ("r", record(&[("x", Type::Real)]))]);
        assert_eq!(
            message(json(r#"{"k": [1, 2.5, 3], "r": {"x": 1}}"#, &ty)),
            "field `k`: value 2 is 2.5, but a [int; 3] holds whole numbers within ±2^53"
        );
        assert_eq!(
            message(json(r#"{"k": [1, 2], "r": {"x": 1}}"#, &ty)),
            "field `k`: expected a [int; 3], found a list of 2 values in JSON"
        );
        assert_eq!(
            message(json(r#"{"k": [1, 2, 3], "r": {"x": "one"}}"#, &ty)),
            "field `r.x`: the value is a string, not a number"
        );
        assert_eq!(
            message(json(r#"{"k": [1, 2, 3], "r": [1]}"#, &ty)),
            "field `r`: expected a record {x: real}, found a list of 1 value in JSON"
        );
        assert_eq!(
            message(json(r#"{"k": {"a": 1}, "r": {"x": 1}}"#, &ty)),
            "field `k`: expected a [int; 3], found an object in JSON"
        );
        assert_eq!(
            message(json("[1, 2]", &ty)),
            "expected a record {k: [int; 3], r: {x: real}}, found a list of 2 values in JSON"
        );
    }

    #[test]
    fn lists_must_be_rectangular_numbers() {
        assert_eq!(message(json("[[1, 2], [3]]", &mat(2, 2))), "row 2 has 1 value, row 1 has 2");
        assert_eq!(message(json("[[1, 2], 3]", &mat(2, 2))), "row 2 is a number, not a list");
        assert_eq!(
            message(json("[[1, 2], [3, [4]]]", &mat(2, 2))),
            "row 2, column 2 is a list of 1 value, not a number"
        );
        assert_eq!(message(json("[1, null]", &vec(2))), "value 2 is null, not a number");
        assert_eq!(message(json(r#""text""#, &Type::Real)), "the value is a string, not a number");
        assert_eq!(message(json("[]", &vec(2))), "expected a vec[2], found no values in JSON");
        assert_eq!(
            message(json("[[[1], [2]], [[3], [4, 5]]]", &mat(2, 2))),
            "element (2, 2) has 2 values, element (1, 1) has 1"
        );
    }

    #[test]
    fn invalid_json_is_reported_with_its_position() {
        assert_eq!(
            message(json("[1, 2", &vec(2))),
            "the file is not valid JSON: EOF while parsing a list at line 1 column 5"
        );
        assert_eq!(
            message(json("[1, 2e999]", &vec(2))),
            "the file is not valid JSON: number out of range at line 1 column 9"
        );
    }

    #[test]
    fn corrupted_json_is_an_error() {
        let ty = record(&[("x", mat(2, 2)), ("k", array(Type::Int, Dim::Unknown)), ("b", Type::Bool)]);
        let target = crate::load::Target::of(&ty).expect("loadable");
        survives_corruption(br#"{"x": [[1, 2.5], [3, 4]], "k": [1, 2], "b": true}"#, |bytes| {
            let _ = super::read(bytes, &target);
        });
    }

    /// German credit: 1000 rows of 24 standardised features and a column of ones, 1000 labels.
    #[test]
    fn german_credit_data() {
        let Some(folder) = shared_data("german_credit") else { return };
        let ty = record(&[
            ("N", Type::Int),
            ("D", Type::Int),
            ("X", mat(1000, 25)),
            ("y", array(Type::Int, Dim::Known(1000))),
        ]);
        let loaded = crate::load::read(&folder.join("data.json"), &ty).expect("the data loads");
        let Data::Record(fields) = loaded else { panic!("a record") };
        let [(_, Data::Int(1000)), (_, Data::Int(25)), (_, Data::Mat { data: x, .. }), (_, Data::Vec(y))] =
            fields.as_slice()
        else {
            panic!("N, D, X, y in order: {fields:?}")
        };
        assert!(x.iter().skip(24).step_by(25).all(|&one| one == 1.0), "the last column is the intercept's");
        assert_eq!(y.iter().filter(|&&bad| bad == 1.0).count(), 300);
        let error =
            crate::load::read(&folder.join("data.json"), &record(&[("X", mat(1000, 24))])).expect_err("25 columns");
        assert_eq!(error.message, "field `X`: expected a mat[1000, 24], found a 1000 × 25 table in JSON");
    }

    /// posteriordb data files, read as records of the fields their Stan programs use.
    #[test]
    fn posteriordb_data() {
        let Some(folder) = shared_data("posteriordb") else { return };
        let counts = |n| array(Type::Int, Dim::Known(n));
        let cases = [
            ("eight_schools-eight_schools_noncentered", record(&[("J", Type::Int), ("y", vec(8)), ("sigma", vec(8))])),
            ("gp_pois_regr-gp_regr", record(&[("N", Type::Int), ("x", vec(11)), ("y", vec(11)), ("k", counts(11))])),
            (
                "radon_mn-radon_pooled",
                record(&[
                    ("floor_measure", array(Type::Bool, Dim::Known(919))),
                    ("log_radon", vec(919)),
                    ("county_idx", counts(919)),
                ]),
            ),
            (
                "wells_data-wells_dist100ars_model",
                record(&[("N", Type::Int), ("switched", counts(3020)), ("dist", vec(3020))]),
            ),
        ];
        for (posterior, ty) in cases {
            let loaded = crate::load::read(&folder.join(posterior).join("data.json"), &ty);
            assert!(matches!(loaded, Ok(Data::Record(_))), "{posterior}: {loaded:?}");
        }
        let schools = crate::load::read(
            &folder.join("eight_schools-eight_schools_noncentered/data.json"),
            &record(&[("y", vec(8))]),
        );
        assert_eq!(
            schools,
            Ok(Data::Record(vec![("y".into(), Data::Vec(vec![28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0]))]))
        );
        let not_counts =
            crate::load::read(&folder.join("gp_pois_regr-gp_regr/data.json"), &record(&[("y", counts(11))]));
        assert_eq!(
            not_counts.map_err(|error| error.message),
            Err("field `y`: value 1 is 4.75906, but a [int; 11] holds whole numbers within ±2^53".into())
        );
    }
}
