//! NumPy arrays (`.npy`, format versions 1.0, 2.0 and 3.0): a header that is a small Python
//! dict literal (`{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }`), then the raw
//! values. Booleans, integers of 1 to 8 bytes and 4- or 8-byte floats, either byte order, C or
//! Fortran order; shape `()` is one value, `(n,)` a list, `(m, n)` a table.
//!
//! This file owns the header and the memory order. It must not evaluate the header as Python
//! (it reads only strings, booleans and tuples of integers), nor trust the shape it claims:
//! `decode` compares it with the bytes present before allocating.

use super::{abbreviated, decode, Dtype, LoadError, Numbers};

const MAGIC: &[u8] = b"\x93NUMPY";

pub(super) fn parse(bytes: &[u8]) -> Result<Numbers, LoadError> {
    let rest = bytes
        .strip_prefix(MAGIC)
        .ok_or_else(|| LoadError::new("not a NumPy .npy file: it does not start with \\x93NUMPY"))?;
    let truncated = || LoadError::new("the .npy file ends inside its header").with_note("the file is truncated");
    let (major, minor, rest) = match rest {
        [major, minor, rest @ ..] => (*major, *minor, rest),
        _ => return Err(truncated()),
    };
    let (header_length, rest) = match (major, rest) {
        (1, [a, b, rest @ ..]) => (usize::from(u16::from_le_bytes([*a, *b])), rest),
        (2 | 3, [a, b, c, d, rest @ ..]) => {
            (usize::try_from(u32::from_le_bytes([*a, *b, *c, *d])).unwrap_or(usize::MAX), rest)
        }
        (1..=3, _) => return Err(truncated()),
        _ => {
            return Err(LoadError::new(format!("expected .npy format version 1.0, 2.0 or 3.0, found {major}.{minor}")))
        }
    };
    let (header, data) = rest.split_at_checked(header_length).ok_or_else(truncated)?;
    // Versions 1 and 2 write the header in Latin-1, version 3 in UTF-8.
    let header = match major {
        3 => String::from_utf8_lossy(header).into_owned(),
        _ => header.iter().map(|&byte| char::from(byte)).collect(),
    };
    let Header { dtype, big_endian, fortran_order, shape } = read_header(header.trim())?;
    let values = decode(data, &shape, dtype, big_endian, ".npy")?;
    let values = if fortran_order { fortran_to_row_major(&values, &shape) } else { values };
    Ok(Numbers { shape, values, row_lines: None })
}

struct Header {
    dtype: Dtype,
    big_endian: bool,
    fortran_order: bool,
    shape: Vec<usize>,
}

fn read_header(text: &str) -> Result<Header, LoadError> {
    let unreadable = || LoadError::new(format!("cannot read the .npy header `{}`", abbreviated(text, 200)));
    let entries = dict(text).ok_or_else(unreadable)?;
    let entry = |key: &str| entries.iter().find(|(name, _)| name == key).map(|(_, literal)| literal);
    let (Some(Literal::Text(descr)), Some(Literal::Bool(fortran_order)), Some(Literal::Shape(shape))) =
        (entry("descr"), entry("fortran_order"), entry("shape"))
    else {
        return Err(
            unreadable().with_note("it should give a 'descr' string, a 'fortran_order' boolean and a 'shape' tuple")
        );
    };
    let (dtype, big_endian) = dtype(descr)?;
    Ok(Header { dtype, big_endian, fortran_order: *fortran_order, shape: shape.clone() })
}

/// The dtype and byte order a `descr` such as `<f8` names.
fn dtype(descr: &str) -> Result<(Dtype, bool), LoadError> {
    let code = descr.strip_prefix(['<', '>', '|', '=']).unwrap_or(descr);
    let dtype = match code {
        "b1" => Dtype::Bool,
        "u1" => Dtype::U8,
        "i1" => Dtype::I8,
        "u2" => Dtype::U16,
        "i2" => Dtype::I16,
        "u4" => Dtype::U32,
        "i4" => Dtype::I32,
        "u8" => Dtype::U64,
        "i8" => Dtype::I64,
        "f4" => Dtype::F32,
        "f8" => Dtype::F64,
        _ => {
            return Err(LoadError::new(format!(
                "expected a NumPy dtype of bool, int8 to int64, uint8 to uint64, float32 or float64, found '{descr}'"
            )))
        }
    };
    // `=` and no mark mean the writer's native order, taken to be this machine's.
    let big_endian = descr.starts_with('>') || (!descr.starts_with('<') && cfg!(target_endian = "big"));
    Ok((dtype, big_endian))
}

/// The values of a header dict.
#[derive(Debug, PartialEq)]
enum Literal {
    Text(String),
    Bool(bool),
    Shape(Vec<usize>),
}

/// Reads `{'key': literal, …}`; `None` if the text is anything else.
fn dict(text: &str) -> Option<Vec<(String, Literal)>> {
    let mut cursor = Cursor(text);
    cursor.eat("{").then_some(())?;
    let mut entries = Vec::new();
    while !cursor.eat("}") {
        let key = cursor.string()?;
        cursor.eat(":").then_some(())?;
        entries.push((key, cursor.literal()?));
        if !cursor.eat(",") {
            cursor.eat("}").then_some(())?;
            break;
        }
    }
    cursor.0.trim().is_empty().then_some(entries)
}

/// The unread rest of a header.
struct Cursor<'h>(&'h str);

impl Cursor<'_> {
    /// Skips whitespace and `token`, if it comes next.
    fn eat(&mut self, token: &str) -> bool {
        match self.0.trim_start().strip_prefix(token) {
            Some(rest) => {
                self.0 = rest;
                true
            }
            None => false,
        }
    }

    fn string(&mut self) -> Option<String> {
        let text = self.0.trim_start();
        let quote = text.chars().next().filter(|c| matches!(c, '\'' | '"'))?;
        let (string, rest) = text.strip_prefix(quote)?.split_once(quote)?;
        self.0 = rest;
        Some(string.to_string())
    }

    fn literal(&mut self) -> Option<Literal> {
        if self.eat("True") {
            Some(Literal::Bool(true))
        } else if self.eat("False") {
            Some(Literal::Bool(false))
        } else if self.eat("(") {
            let mut lengths = Vec::new();
            while !self.eat(")") {
                lengths.push(self.length()?);
                if !self.eat(",") {
                    self.eat(")").then_some(())?;
                    break;
                }
            }
            Some(Literal::Shape(lengths))
        } else {
            self.string().map(Literal::Text)
        }
    }

    /// A length in a shape; Python 2 wrote long integers with an `L`.
    fn length(&mut self) -> Option<usize> {
        let text = self.0.trim_start();
        let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
        let (number, rest) = text.split_at_checked(digits)?;
        self.0 = rest.strip_prefix('L').unwrap_or(rest);
        number.parse().ok()
    }
}

/// Fortran order stores the first index fastest; the rest of the crate wants the last fastest.
/// Entry `i` of the outermost dimension is every `first`-th value from `i` on, itself an
/// array in Fortran order.
fn fortran_to_row_major(values: &[f64], shape: &[usize]) -> Vec<f64> {
    match shape {
        [first, rest @ ..] if !rest.is_empty() && *first > 0 => {
            let mut reordered = Vec::with_capacity(values.len());
            for start in 0..*first {
                let entry: Vec<f64> = values.iter().skip(start).step_by(*first).copied().collect();
                reordered.extend(fortran_to_row_major(&entry, rest));
            }
            reordered
        }
        _ => values.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Data;
    use crate::load::tests::{array, gzip, mat, message, read_bytes, shared_data, survives_corruption, vec};
    use crate::types::{Dim, Type};

    /// A .npy file as NumPy writes it: the header padded with spaces to a multiple of 64.
    fn npy(version: u8, descr: &str, fortran_order: bool, shape: &str, data: &[u8]) -> Vec<u8> {
        let order = if fortran_order { "True" } else { "False" };
        let mut header = format!("{{'descr': '{descr}', 'fortran_order': {order}, 'shape': {shape}, }}");
        let prefix = if version == 1 { 10 } else { 12 };
        while (prefix + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        raw_npy(version, &header, data)
    }

    /// A .npy file with exactly this header text.
    fn raw_npy(version: u8, header: &str, data: &[u8]) -> Vec<u8> {
        let mut bytes = MAGIC.to_vec();
        bytes.extend([version, 0]);
        match version {
            1 => bytes.extend(u16::try_from(header.len()).expect("a short header").to_le_bytes()),
            _ => bytes.extend(u32::try_from(header.len()).expect("a short header").to_le_bytes()),
        }
        bytes.extend(header.as_bytes());
        bytes.extend(data);
        bytes
    }

    fn f64s(values: &[f64], big_endian: bool) -> Vec<u8> {
        values.iter().flat_map(|x| if big_endian { x.to_be_bytes() } else { x.to_le_bytes() }).collect()
    }

    fn load(bytes: &[u8], ty: &Type) -> Result<Data, crate::load::LoadError> {
        read_bytes("array.npy", bytes, ty)
    }

    #[test]
    fn each_type_and_version() {
        for version in [1, 2, 3] {
            let file = npy(version, "<f8", false, "(2, 3)", &f64s(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.5], false));
            assert_eq!(
                load(&file, &mat(2, 3)),
                Ok(Data::Mat { rows: 2, cols: 3, data: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.5] })
            );
        }
        assert_eq!(load(&npy(1, "<f8", false, "()", &f64s(&[2.5], false)), &Type::Real), Ok(Data::Real(2.5)));
        assert_eq!(load(&npy(1, "<i8", false, "()", &(-4i64).to_le_bytes()), &Type::Int), Ok(Data::Int(-4)));
        assert_eq!(load(&npy(1, "|b1", false, "()", &[1]), &Type::Bool), Ok(Data::Bool(true)));
        assert_eq!(
            load(&npy(1, "<f4", false, "(2,)", &[0.5f32.to_le_bytes(), 2f32.to_le_bytes()].concat()), &vec(2)),
            Ok(Data::Vec(vec![0.5, 2.0]))
        );
        let counts: Vec<u8> = [3i32, -1].iter().flat_map(|n| n.to_le_bytes()).collect();
        assert_eq!(
            load(&npy(1, "<i4", false, "(2,)", &counts), &array(Type::Int, Dim::Known(2))),
            Ok(Data::Vec(vec![3.0, -1.0]))
        );
        let flags = array(array(Type::Bool, Dim::Known(2)), Dim::Known(2));
        assert_eq!(
            load(&npy(1, "|u1", false, "(2, 2)", &[1, 0, 0, 1]), &flags),
            Ok(Data::Mat { rows: 2, cols: 2, data: vec![1.0, 0.0, 0.0, 1.0] })
        );
        assert_eq!(
            load(&npy(1, "|b1", false, "(3,)", &[1, 0, 1]), &array(Type::Bool, Dim::Unknown)),
            Ok(Data::Vec(vec![1.0, 0.0, 1.0]))
        );
        let gzipped = gzip(&npy(1, "|u1", false, "(2, 2)", &[1, 2, 3, 4]));
        assert_eq!(
            read_bytes("array.npy.gz", &gzipped, &mat(2, 2)),
            Ok(Data::Mat { rows: 2, cols: 2, data: vec![1.0, 2.0, 3.0, 4.0] })
        );
    }

    #[test]
    fn big_endian_and_python2_headers() {
        let file = npy(1, ">f8", false, "(2L,)", &f64s(&[1.5, -2.0], true));
        assert_eq!(load(&file, &vec(2)), Ok(Data::Vec(vec![1.5, -2.0])));
        let counts: Vec<u8> = [70_000i32, -3].iter().flat_map(|n| n.to_be_bytes()).collect();
        assert_eq!(load(&npy(1, ">i4", false, "(2,)", &counts), &vec(2)), Ok(Data::Vec(vec![70_000.0, -3.0])));
        let reordered = raw_npy(1, "{\"shape\": (1,), \"fortran_order\": False, \"descr\": \"<u2\"}\n", &[7, 1]);
        assert_eq!(load(&reordered, &vec(1)), Ok(Data::Vec(vec![263.0])));
    }

    #[test]
    fn fortran_order_is_transposed_to_row_major() {
        // [[1, 2, 3], [4, 5, 6]] stored column by column.
        let file = npy(1, "<f8", true, "(2, 3)", &f64s(&[1.0, 4.0, 2.0, 5.0, 3.0, 6.0], false));
        assert_eq!(
            load(&file, &mat(2, 3)),
            Ok(Data::Mat { rows: 2, cols: 3, data: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0] })
        );
        // A 2 × 2 × 2 array whose value at (i, j, k) is 100i + 10j + k.
        let file = npy(1, "|u1", true, "(2, 2, 2)", &[0, 100, 10, 110, 1, 101, 11, 111]);
        assert_eq!(
            load(&file, &mat(2, 4)),
            Ok(Data::Mat { rows: 2, cols: 4, data: vec![0.0, 1.0, 10.0, 11.0, 100.0, 101.0, 110.0, 111.0] })
        );
        assert_eq!(
            load(&npy(1, "<f8", true, "(2,)", &f64s(&[1.0, 2.0], false)), &vec(2)),
            Ok(Data::Vec(vec![1.0, 2.0]))
        );
    }

    #[test]
    fn unsupported_dtypes_and_headers() {
        assert_eq!(
            message(load(&npy(1, "<c16", false, "(1,)", &[0; 16]), &vec(1))),
            "expected a NumPy dtype of bool, int8 to int64, uint8 to uint64, float32 or float64, found '<c16'"
        );
        let mut structured = npy(1, "<f8", false, "(1,)", &[0; 8]);
        let descr = structured.windows(5).position(|w| w == b"'<f8'").expect("the descr");
        structured.splice(descr..descr + 5, *b"[1,2]");
        let error = load(&structured, &vec(1)).expect_err("a structured dtype");
        assert!(error.message.starts_with("cannot read the .npy header `{'descr': [1,2], "), "{error:?}");
        let no_shape = raw_npy(3, "{'descr': '<f8', 'fortran': True}", &[0; 8]);
        let error = load(&no_shape, &vec(1)).expect_err("no shape");
        assert_eq!(error.message, "cannot read the .npy header `{'descr': '<f8', 'fortran': True}`");
        assert_eq!(
            error.note.as_deref(),
            Some("it should give a 'descr' string, a 'fortran_order' boolean and a 'shape' tuple")
        );
        assert_eq!(
            message(load(b"\x93NUMPY\x04\x00", &vec(1))),
            "expected .npy format version 1.0, 2.0 or 3.0, found 4.0"
        );
    }

    #[test]
    fn truncated_files_and_bad_magic() {
        assert_eq!(
            message(load(b"PK\x03\x04 a zip file", &vec(1))),
            "not a NumPy .npy file: it does not start with \\x93NUMPY"
        );
        for cut in [6, 7, 9, 20] {
            let file = npy(1, "<f8", false, "(2,)", &[0; 16]);
            let error = load(file.get(..cut).expect("shorter"), &vec(2)).expect_err("truncated");
            assert_eq!(
                (error.message.as_str(), error.note.as_deref()),
                ("the .npy file ends inside its header", Some("the file is truncated"))
            );
        }
        let file = npy(2, "<f8", false, "(2,)", &[0; 16]);
        assert_eq!(message(load(file.get(..10).expect("shorter"), &vec(2))), "the .npy file ends inside its header");
        let error = load(&npy(1, "<f8", false, "(2, 3)", &[0; 40]), &mat(2, 3)).expect_err("short data");
        assert_eq!(
            error.message,
            "the .npy header promises 2 × 3 values of 8 bytes (48 bytes), but 40 bytes follow it"
        );
        let huge = npy(1, "<f8", false, "(1000000, 1000000)", &[0; 8]);
        assert_eq!(
            message(load(&huge, &Type::Mat(Dim::Unknown, Dim::Unknown))),
            "the .npy header promises 1000000 × 1000000 values of 8 bytes (8000000000000 bytes), but 8 bytes follow it"
        );
        let overflowing = npy(1, "<f8", false, "(18446744073709551615, 2)", &[]);
        assert!(message(load(&overflowing, &mat(1, 1))).contains("impossibly large shape"));
    }

    #[test]
    fn corrupted_files_are_errors() {
        let target = crate::load::Target::of(&Type::Mat(Dim::Unknown, Dim::Unknown)).expect("loadable");
        for file in [
            npy(1, "<f8", true, "(2, 2)", &f64s(&[1.0, 2.0, 3.0, 4.0], false)),
            npy(3, ">i2", false, "(2,)", &[0, 1, 0, 2]),
        ] {
            survives_corruption(&file, |bytes| {
                let _ = parse(bytes).and_then(|numbers| crate::load::fit(numbers, &target, "in the .npy file"));
            });
        }
    }

    #[test]
    fn header_dict_literals() {
        assert_eq!(dict("{}"), Some(vec![]));
        assert_eq!(
            dict("{'a': (), 'b': (3,), 'c': (1, 2)}"),
            Some(vec![
                ("a".into(), Literal::Shape(vec![])),
                ("b".into(), Literal::Shape(vec![3])),
                ("c".into(), Literal::Shape(vec![1, 2])),
            ])
        );
        assert_eq!(dict("{'a': 'x'} trailing"), None);
        assert_eq!(dict("{'a': (-1,)}"), None);
        assert_eq!(dict("{'a': (99999999999999999999999,)}"), None);
        assert_eq!(dict("{'a' 'x'}"), None);
        assert_eq!(dict("{'a': 'x"), None);
    }

    /// The binarized MNIST test split: 10,000 images of 784 pixels, 0 or 1.
    #[test]
    fn binarized_mnist_test_split() {
        let Some(folder) = shared_data("binarized_mnist") else { return };
        let pixels = array(array(Type::Bool, Dim::Known(784)), Dim::Known(10_000));
        let loaded = crate::load::read(&folder.join("binarized_mnist_test.npy.gz"), &pixels);
        let Ok(Data::Mat { rows: 10_000, cols: 784, data }) = loaded else { panic!("a 10,000 × 784 matrix") };
        let mean = data.iter().sum::<f64>() / data.len() as f64;
        assert!((mean - 0.13251).abs() < 1e-5, "{mean}");
    }
}
