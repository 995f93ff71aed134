//! The file readers behind `load(path)`: a file's bytes to a [`Data`] value of the declared type.
//!
//! This module owns what all formats share: choosing the format from the file name, gzip
//! decompression and ZIP archives of one file (`archive`), and fitting the numbers a file holds
//! to the declared type (shapes, whole numbers for counts, 0 and 1 for booleans, finite reals).
//! Each format's file only turns bytes into `Numbers`; JSON alone also reads records, field by
//! field.
//!
//! It must not know the checker or the program beyond the one declared type, and must not
//! panic or allocate on a file's say-so: every problem with a file is a [`LoadError`], and
//! sizes a header claims are checked against the bytes actually present.

mod archive;
mod csv;
mod idx;
mod json;
mod npy;

use std::fmt;
use std::io::Read;
use std::path::Path;

use crate::data::Data;
use crate::types::{Dim, Type};

/// Reads `path` as a value of the declared type `expected`.
///
/// The format comes from the file name: `.csv`, `.tsv`, `.txt` (text tables), `.json`, `.npy`,
/// and IDX (`.idx`, or names like `t10k-images-idx3-ubyte`), each optionally gzip-compressed
/// with a trailing `.gz`. A trailing `.zip` is a ZIP archive of one file, whose format comes
/// from the name without `.zip` (`data.json.zip`) or, when that names none, from the file's name
/// in the archive. Reals, vectors and matrices read as they are; `int` and `bool` read as
/// [`Data::Int`] and [`Data::Bool`]; arrays of them (`[int; n]`, `[[bool; n]; m]`) read as real
/// vectors and matrices holding whole numbers, or 0 and 1. Booleans in a file (JSON `true`,
/// NumPy `bool`) read as 1 and 0.
///
/// A matrix type also accepts a file with three or more dimensions, such as `n` images of
/// 28 × 28 pixels: each outermost entry becomes one row of the product of the other dimensions
/// (784 values), in the file's order.
pub fn read(path: &Path, expected: &Type) -> Result<Data, LoadError> {
    let target = Target::of(expected)?;
    let zipped = file_name(path).ends_with(".zip");
    // An archive's name may leave its format to the file inside, known only once it is read; any
    // other name must announce one before the file is read.
    let announced = if zipped { Format::of(&path.with_extension("")).ok() } else { Some(Format::of(path)?) };
    let raw =
        std::fs::read(path).map_err(|error| LoadError::new(format!("cannot read `{}`: {error}", path.display())))?;
    let (raw, (format, gzipped)) = match announced {
        Some(format) if !zipped => (raw, format),
        announced => {
            let entry = archive::only_file(&raw, path)?;
            let format = match announced {
                Some(format) => format,
                None => Format::of(Path::new(&entry.name))
                    .map_err(|error| error.with_note(format!("`{}` holds `{}`", path.display(), entry.name)))?,
            };
            (entry.bytes, format)
        }
    };
    let bytes = if gzipped { gunzip(&raw, path)? } else { raw };
    let read = match format {
        Format::Json => json::read(&bytes, &target),
        Format::Csv => csv::parse(&bytes).and_then(|numbers| fit(numbers, &target, "in CSV")),
        Format::Npy => npy::parse(&bytes).and_then(|numbers| fit(numbers, &target, "in the .npy file")),
        Format::Idx => idx::parse(&bytes).and_then(|numbers| fit(numbers, &target, "in IDX")),
    };
    // The hints name the file to rename: inside an archive, that is not `path`.
    read.map_err(|error| match error.note {
        None if !zipped && !gzipped && bytes.starts_with(&GZIP_MAGIC) => {
            error.with_note(format!("the file looks gzip-compressed: name it `{}.gz`", path.display()))
        }
        None if !zipped && !gzipped && bytes.starts_with(&archive::ZIP_MAGIC) => {
            error.with_note(format!("the file looks like a ZIP archive: name it `{}.zip`", path.display()))
        }
        _ => error,
    })
}

/// A path's file name, in lower case: extensions are matched without regard to case.
fn file_name(path: &Path) -> String {
    path.file_name().map(|name| name.to_string_lossy().to_ascii_lowercase()).unwrap_or_default()
}

/// Why a file could not be read as the declared type.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadError {
    /// One sentence naming what was expected and what was found, e.g.
    /// "expected a mat[1000, 24], found a 1000 × 25 table in CSV" or
    /// "line 3 has 4 values, line 2 has 5" or "expected a NumPy dtype of …, found '<c16'".
    pub message: String,
    /// Optional extra note (e.g. "the file is gzip-compressed but truncated"), shown as a note.
    pub note: Option<String>,
}

impl LoadError {
    fn new(message: impl Into<String>) -> LoadError {
        LoadError { message: message.into(), note: None }
    }

    fn with_note(self, note: impl Into<String>) -> LoadError {
        LoadError { note: Some(note.into()), ..self }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for LoadError {}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

fn gunzip(compressed: &[u8], path: &Path) -> Result<Vec<u8>, LoadError> {
    let mut bytes = Vec::new();
    // Multi-member: `cat a.gz b.gz` is a valid gzip file of both contents.
    match flate2::read::MultiGzDecoder::new(compressed).read_to_end(&mut bytes) {
        Ok(_) => Ok(bytes),
        Err(error) => {
            let failure = LoadError::new(format!("cannot decompress `{}`: {error}", path.display()));
            Err(if !compressed.starts_with(&GZIP_MAGIC) {
                failure.with_note("the name ends in `.gz`, but the file is not gzip-compressed")
            } else if error.kind() == std::io::ErrorKind::UnexpectedEof {
                failure.with_note("the file is gzip-compressed but truncated")
            } else {
                failure
            })
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Format {
    Csv,
    Json,
    Npy,
    Idx,
}

impl Format {
    /// The format a file name announces, and whether it is gzip-compressed.
    fn of(path: &Path) -> Result<(Format, bool), LoadError> {
        let name = file_name(path);
        let (stem, gzipped) = match name.strip_suffix(".gz") {
            Some(stem) => (stem, true),
            None => (name.as_str(), false),
        };
        let extension = stem.rsplit_once('.').map(|(_, extension)| extension);
        let format = match extension {
            Some("csv" | "tsv" | "txt") => Format::Csv,
            Some("json") => Format::Json,
            Some("npy") => Format::Npy,
            _ if is_idx_name(stem) => Format::Idx,
            _ => {
                let found = match extension {
                    Some(extension) => format!("`.{extension}` files"),
                    None => "files without an extension".into(),
                };
                return Err(LoadError::new(format!(
                    "`load` does not read {found}: it reads .csv, .tsv, .txt, .json, .npy and IDX files (`.idx`, \
                     `…-idx3-ubyte`), each also gzip-compressed (`.gz`) or in a ZIP archive (`.zip`)"
                )));
            }
        };
        Ok((format, gzipped))
    }
}

/// IDX files are named by convention, not extension: `train-images-idx3-ubyte`, `labels.idx1`.
fn is_idx_name(stem: &str) -> bool {
    stem.ends_with(".idx")
        || stem.ends_with("-ubyte")
        || stem
            .as_bytes()
            .windows(4)
            .any(|window| matches!(window, [b'i', b'd', b'x', digit] if digit.is_ascii_digit()))
}

/// The element kind of a declared type.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Real,
    Int,
    Bool,
}

/// The arrangement a declared type asks for.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Shape {
    Scalar,
    Vector(Dim),
    Matrix(Dim, Dim),
}

/// A declared type, checked to be one `load` can produce.
struct Target<'t> {
    declared: &'t Type,
    form: Form<'t>,
}

enum Form<'t> {
    Numeric(Shape, Kind),
    Record(Vec<FieldTarget<'t>>),
}

struct FieldTarget<'t> {
    name: &'t str,
    /// May be absent from the file.
    optional: bool,
    target: Target<'t>,
}

impl<'t> Target<'t> {
    fn of(declared: &'t Type) -> Result<Target<'t>, LoadError> {
        let kind = |ty: &Type| match ty {
            Type::Int => Some(Kind::Int),
            Type::Bool => Some(Kind::Bool),
            _ => None,
        };
        let numeric = match declared {
            Type::Real => Some((Shape::Scalar, Kind::Real)),
            Type::Int => Some((Shape::Scalar, Kind::Int)),
            Type::Bool => Some((Shape::Scalar, Kind::Bool)),
            Type::Vec(n) => Some((Shape::Vector(*n), Kind::Real)),
            Type::Mat(m, n) => Some((Shape::Matrix(*m, *n), Kind::Real)),
            Type::Array(element, m) => match &**element {
                Type::Array(element, n) => kind(element).map(|kind| (Shape::Matrix(*m, *n), kind)),
                element => kind(element).map(|kind| (Shape::Vector(*m), kind)),
            },
            Type::Record(fields) => {
                let fields = fields.iter().map(|field| {
                    let target = Target::of(&field.ty)
                        .map_err(|error| LoadError::new(format!("{} (field `{}`)", error.message, field.name)))?;
                    Ok(FieldTarget { name: &field.name, optional: field.optional, target })
                });
                let fields = fields.collect::<Result<Vec<_>, LoadError>>()?;
                return Ok(Target { declared, form: Form::Record(fields) });
            }
            _ => None,
        };
        match numeric {
            Some((shape, kind)) => Ok(Target { declared, form: Form::Numeric(shape, kind) }),
            None => Err(LoadError::new(format!("`load` cannot produce {}", described(declared)))),
        }
    }
}

/// A type for messages: `a vec[3]`, `an int`, `a record {y: real}`.
fn described(ty: &Type) -> String {
    match ty {
        Type::Record(_) => format!("a record {ty}"),
        Type::Unknown => "a value of unknown type".into(),
        Type::Int => "an int".into(),
        _ => format!("a {ty}"),
    }
}

/// Numbers as a file holds them, before they are fitted to the declared type.
struct Numbers {
    /// Dimensions, outermost first: none for a single value, one for a list, two for a table.
    shape: Vec<usize>,
    /// Row-major: the last dimension varies fastest.
    values: Vec<f64>,
    /// For text tables, the line of the file each row came from: messages name positions as an
    /// editor shows them.
    row_lines: Option<Vec<usize>>,
}

impl Numbers {
    /// Where the value at `index` of `values` is, counting from 1 as people do.
    fn position(&self, index: usize) -> String {
        let mut rest = index;
        let mut coordinates = vec![0; self.shape.len()];
        for (coordinate, &length) in coordinates.iter_mut().zip(&self.shape).rev() {
            if length > 0 {
                *coordinate = rest % length;
                rest /= length;
            }
        }
        match (coordinates.as_slice(), &self.row_lines) {
            ([row, column], Some(lines)) => match lines.get(*row) {
                Some(line) => format!("line {line}, column {}", column + 1),
                None => position(&coordinates, coordinates.len()),
            },
            _ => position(&coordinates, coordinates.len()),
        }
    }
}

/// Names the entry at `coordinates` (counted from 0) of an array with `depth` dimensions; an
/// entry above the last dimension is itself a list.
fn position(coordinates: &[usize], depth: usize) -> String {
    match (coordinates, depth) {
        ([], 0) => "the value".into(),
        ([], _) => "the list".into(),
        ([i], 1) => format!("value {}", i + 1),
        ([i], _) => format!("row {}", i + 1),
        ([i, j], 2) => format!("row {}, column {}", i + 1, j + 1),
        _ => {
            let counted: Vec<String> = coordinates.iter().map(|i| (i + 1).to_string()).collect();
            format!("element ({})", counted.join(", "))
        }
    }
}

/// How many values a shape holds, if that is a number this machine can count.
fn element_count(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |count, &length| count.checked_mul(length))
}

/// A shape for messages: `a 1000 × 25 table`.
fn describe_shape(shape: &[usize]) -> String {
    match shape {
        _ if shape.contains(&0) => "no values".into(),
        [] => "a single value".into(),
        [n] => format!("a list of {}", how_many_values(*n)),
        [m, n] => format!("a {m} × {n} table"),
        _ => {
            let lengths: Vec<String> = shape.iter().map(usize::to_string).collect();
            format!("a {} array", lengths.join(" × "))
        }
    }
}

/// `1 value`, `2 values`.
fn how_many_values(count: usize) -> String {
    match count {
        1 => "1 value".into(),
        _ => format!("{count} values"),
    }
}

/// Text from a file for messages, cut short after `shown` characters: a binary file read as
/// text can be one long line.
fn abbreviated(text: &str, shown: usize) -> String {
    match text.char_indices().nth(shown) {
        Some((end, _)) => format!("{}…", text.get(..end).unwrap_or(text)),
        None => text.to_string(),
    }
}

/// A value for messages: whole numbers without a fractional part, as the file most likely
/// wrote them.
fn number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else {
        format!("{x:?}")
    }
}

/// The largest magnitude up to which every whole number is an exact `f64`.
const MAX_EXACT_INT: f64 = 9_007_199_254_740_992.0;

/// Fits a file's numbers to the declared type; `source` says where they were found ("in CSV").
fn fit(numbers: Numbers, target: &Target<'_>, source: &str) -> Result<Data, LoadError> {
    let mismatch =
        |shape: &[usize]| format!("expected {}, found {} {source}", described(target.declared), describe_shape(shape));
    let (shape, kind) = match &target.form {
        Form::Numeric(shape, kind) => (*shape, *kind),
        Form::Record(_) => {
            return Err(LoadError::new(mismatch(&numbers.shape)).with_note("records are read from JSON objects"))
        }
    };
    let known = |length: usize| Dim::Known(length as u64);
    let table = match numbers.shape.as_slice() {
        [rows, rest @ ..] if !rest.is_empty() => element_count(rest).map(|columns| (*rows, columns)),
        _ => None,
    };
    let fits = match shape {
        Shape::Scalar => numbers.values.len() == 1,
        Shape::Vector(n) => {
            matches!(numbers.shape.as_slice(), [length] | [length, 1] | [1, length] if n.agrees(known(*length)))
        }
        Shape::Matrix(m, n) => table.is_some_and(|(rows, columns)| m.agrees(known(rows)) && n.agrees(known(columns))),
    };
    if !fits {
        return Err(LoadError::new(mismatch(&numbers.shape)));
    }
    let (offending, allowed) = match kind {
        Kind::Real => (first_outside(&numbers.values, f64::is_finite), "finite numbers"),
        Kind::Int => (
            first_outside(&numbers.values, |x| x.fract() == 0.0 && x.abs() <= MAX_EXACT_INT),
            "whole numbers within ±2^53",
        ),
        Kind::Bool => (first_outside(&numbers.values, |x| x == 0.0 || x == 1.0), "only 0 and 1"),
    };
    if let Some((index, value)) = offending {
        return Err(LoadError::new(format!(
            "{} is {}, but {} holds {allowed}",
            numbers.position(index),
            number(value),
            described(target.declared)
        )));
    }
    Ok(match shape {
        Shape::Scalar => {
            let x = numbers.values.first().copied().unwrap_or_default();
            match kind {
                Kind::Real => Data::Real(x),
                // Whole numbers within ±2^53 convert to i64 exactly.
                Kind::Int => Data::Int(x as i64),
                Kind::Bool => Data::Bool(x == 1.0),
            }
        }
        Shape::Vector(_) => Data::Vec(numbers.values),
        Shape::Matrix(..) => {
            let (rows, cols) = table.unwrap_or_default();
            Data::Mat { rows, cols, data: numbers.values }
        }
    })
}

/// The first value `allowed` rejects, and its index; generic so that the test inlines into a
/// tight loop over millions of pixels.
fn first_outside(values: &[f64], allowed: impl Fn(f64) -> bool) -> Option<(usize, f64)> {
    values.iter().copied().enumerate().find(|&(_, x)| !allowed(x))
}

/// How values are stored in a binary file (NumPy, IDX).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Dtype {
    Bool,
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    U64,
    I64,
    F32,
    F64,
}

impl Dtype {
    fn size(self) -> usize {
        match self {
            Dtype::Bool | Dtype::U8 | Dtype::I8 => 1,
            Dtype::U16 | Dtype::I16 => 2,
            Dtype::U32 | Dtype::I32 | Dtype::F32 => 4,
            Dtype::U64 | Dtype::I64 | Dtype::F64 => 8,
        }
    }
}

/// Decodes a binary file's values after its header, checking first that there are exactly
/// as many bytes as the header's `shape` promises (before allocating for them).
fn decode(data: &[u8], shape: &[usize], dtype: Dtype, big_endian: bool, format: &str) -> Result<Vec<f64>, LoadError> {
    let lengths: Vec<String> = shape.iter().map(usize::to_string).collect();
    let promised = element_count(shape).and_then(|count| count.checked_mul(dtype.size())).ok_or_else(|| {
        LoadError::new(format!("the {format} header claims an impossibly large shape ({})", lengths.join(" × ")))
    })?;
    if data.len() != promised {
        let message = format!(
            "the {format} header promises {} values of {} byte{} ({promised} bytes), but {} bytes follow it",
            lengths.join(" × "),
            dtype.size(),
            if dtype.size() == 1 { "" } else { "s" },
            data.len()
        );
        let error = LoadError::new(message);
        return Err(if data.len() < promised { error.with_note("the file is truncated") } else { error });
    }
    Ok(decode_values(data, dtype, big_endian))
}

/// Bulk conversion, one pass per dtype: no per-value branching on the byte order or type.
fn decode_values(data: &[u8], dtype: Dtype, big_endian: bool) -> Vec<f64> {
    fn each<const N: usize>(data: &[u8], convert: impl Fn([u8; N]) -> f64) -> Vec<f64> {
        data.chunks_exact(N)
            .map(|chunk| {
                let mut bytes = [0; N];
                bytes.copy_from_slice(chunk);
                convert(bytes)
            })
            .collect()
    }
    macro_rules! numbers {
        ($integer:ty) => {
            if big_endian {
                each(data, |bytes| <$integer>::from_be_bytes(bytes) as f64)
            } else {
                each(data, |bytes| <$integer>::from_le_bytes(bytes) as f64)
            }
        };
    }
    match dtype {
        // NumPy reads any non-zero byte as true.
        Dtype::Bool => data.iter().map(|&byte| f64::from(u8::from(byte != 0))).collect(),
        Dtype::U8 => data.iter().map(|&byte| f64::from(byte)).collect(),
        Dtype::I8 => data.iter().map(|&byte| f64::from(i8::from_ne_bytes([byte]))).collect(),
        Dtype::U16 => numbers!(u16),
        Dtype::I16 => numbers!(i16),
        Dtype::U32 => numbers!(u32),
        Dtype::I32 => numbers!(i32),
        Dtype::U64 => numbers!(u64),
        Dtype::I64 => numbers!(i64),
        Dtype::F32 => numbers!(f32),
        Dtype::F64 => numbers!(f64),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::io::Write;
    use std::path::PathBuf;

    use super::*;
    use crate::types::Field;

    /// Writes `bytes` as `name` in a fresh directory and reads it as `ty`.
    pub(in crate::load) fn read_bytes(name: &str, bytes: &[u8], ty: &Type) -> Result<Data, LoadError> {
        let directory = tempfile::tempdir().expect("a temporary directory");
        let path = directory.path().join(name);
        std::fs::write(&path, bytes).expect("the file is written");
        read(&path, ty)
    }

    pub(in crate::load) fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).expect("compressed in memory");
        encoder.finish().expect("compressed in memory")
    }

    pub(in crate::load) fn message(result: Result<Data, LoadError>) -> String {
        result.expect_err("the file is rejected").message
    }

    pub(in crate::load) fn vec(n: u64) -> Type {
        Type::Vec(Dim::Known(n))
    }

    pub(in crate::load) fn mat(m: u64, n: u64) -> Type {
        Type::Mat(Dim::Known(m), Dim::Known(n))
    }

    pub(in crate::load) fn array(element: Type, n: Dim) -> Type {
        Type::Array(Box::new(element), n)
    }

    pub(in crate::load) fn record(fields: &[(&str, Type)]) -> Type {
        Type::record(fields.iter().map(|(name, ty)| (name.to_string(), ty.clone())))
    }

    /// Reads every prefix of `file` and every variant with one byte changed: each must give a
    /// value or an error, never a panic.
    pub(in crate::load) fn survives_corruption(file: &[u8], read: impl Fn(&[u8])) {
        for length in 0..file.len() {
            read(file.get(..length).unwrap_or_default());
        }
        for index in 0..file.len() {
            for replacement in [0x00, 0xff, b'9', b',', b'[', b'('] {
                let mut changed = file.to_vec();
                changed.splice(index..=index, [replacement]);
                read(&changed);
            }
        }
    }

    /// The shared data sets beside the repository, if this machine has them.
    pub(in crate::load) fn shared_data(folder: &str) -> Option<PathBuf> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data").join(folder);
        if path.is_dir() {
            Some(path)
        } else {
            eprintln!("skipped: {} is absent", path.display());
            None
        }
    }

    #[test]
    fn formats_come_from_names() {
        let format = |name: &str| Format::of(Path::new(name)).map_err(|error| error.message);
        assert_eq!(format("data/x.CSV"), Ok((Format::Csv, false)));
        assert_eq!(format("x.tsv.gz"), Ok((Format::Csv, true)));
        assert_eq!(format("x.txt"), Ok((Format::Csv, false)));
        assert_eq!(format("posterior.json"), Ok((Format::Json, false)));
        assert_eq!(format("train.npy.gz"), Ok((Format::Npy, true)));
        assert_eq!(format("t10k-images-idx3-ubyte"), Ok((Format::Idx, false)));
        assert_eq!(format("t10k-labels-idx1-ubyte.gz"), Ok((Format::Idx, true)));
        assert_eq!(format("labels.idx1"), Ok((Format::Idx, false)));
        assert_eq!(format("images.idx"), Ok((Format::Idx, false)));
        assert_eq!(format("raw-ubyte"), Ok((Format::Idx, false)));
        let unknown = format("weights.mat").expect_err("not a format `load` reads");
        assert!(unknown.contains("does not read `.mat` files: it reads .csv, .tsv, .txt, .json, .npy"), "{unknown}");
        let bare = format("README").expect_err("no extension");
        assert!(bare.contains("does not read files without an extension"), "{bare}");
        assert!(format("idx.gz").is_err(), "`idx` without a digit is no IDX name");
    }

    #[test]
    fn unknown_extension_is_an_error_before_reading() {
        let error = read(Path::new("no/such/weights.mat"), &Type::Real).expect_err("unknown format");
        assert!(error.message.starts_with("`load` does not read `.mat` files"), "{}", error.message);
    }

    #[test]
    fn missing_file_names_the_path_and_the_io_error() {
        let error = read(Path::new("no/such/file.csv"), &Type::Real).expect_err("missing");
        assert!(error.message.starts_with("cannot read `no/such/file.csv`: No such file or directory"), "{error:?}");
    }

    #[test]
    fn types_load_cannot_produce_are_rejected() {
        let cannot = |ty: &Type| read(Path::new("x.csv"), ty).expect_err("not loadable").message;
        assert_eq!(cannot(&Type::Str), "`load` cannot produce a string");
        assert_eq!(cannot(&Type::Unknown), "`load` cannot produce a value of unknown type");
        assert_eq!(cannot(&array(Type::Real, Dim::Known(3))), "`load` cannot produce a [real; 3]");
        assert_eq!(cannot(&array(vec(2), Dim::Known(3))), "`load` cannot produce a [vec[2]; 3]");
        let with_string = record(&[("x", Type::Real), ("name", Type::Str)]);
        assert_eq!(cannot(&with_string), "`load` cannot produce a string (field `name`)");
    }

    #[test]
    fn gzip_is_decompressed_by_name() {
        let text = b"1, 2\n3, 4\n";
        let expected = Data::Mat { rows: 2, cols: 2, data: vec![1.0, 2.0, 3.0, 4.0] };
        assert_eq!(read_bytes("m.csv.gz", &gzip(text), &mat(2, 2)), Ok(expected.clone()));
        let mut twice = gzip(b"1, 2\n");
        twice.extend(gzip(b"3, 4\n"));
        assert_eq!(read_bytes("m.csv.gz", &twice, &mat(2, 2)), Ok(expected));
    }

    #[test]
    fn truncated_gzip_says_so() {
        let compressed = gzip(&[7u8; 10_000]);
        let truncated = compressed.get(..compressed.len() / 2).expect("shorter");
        let error = read_bytes("x.csv.gz", truncated, &vec(3)).expect_err("truncated");
        assert!(error.message.starts_with("cannot decompress `"), "{error:?}");
        assert_eq!(error.note.as_deref(), Some("the file is gzip-compressed but truncated"));
    }

    #[test]
    fn a_gz_name_on_a_plain_file_says_so() {
        let error = read_bytes("x.csv.gz", b"1, 2, 3\n", &vec(3)).expect_err("not gzip");
        assert!(error.message.starts_with("cannot decompress `"), "{error:?}");
        assert_eq!(error.note.as_deref(), Some("the name ends in `.gz`, but the file is not gzip-compressed"));
    }

    #[test]
    fn a_gzip_file_without_gz_name_gets_a_hint() {
        let error = read_bytes("x.npy", &gzip(b"not numpy"), &vec(3)).expect_err("compressed");
        assert!(
            error.note.as_deref().is_some_and(|note| note.starts_with("the file looks gzip-compressed")),
            "{error:?}"
        );
    }

    fn numbers(shape: &[usize], values: &[f64]) -> Numbers {
        Numbers { shape: shape.to_vec(), values: values.to_vec(), row_lines: None }
    }

    fn fitted(shape: &[usize], values: &[f64], ty: &Type) -> Result<Data, String> {
        let target = Target::of(ty).map_err(|error| error.message)?;
        fit(numbers(shape, values), &target, "in the test").map_err(|error| error.message)
    }

    #[test]
    fn scalars_fit_any_single_value() {
        assert_eq!(fitted(&[], &[2.5], &Type::Real), Ok(Data::Real(2.5)));
        assert_eq!(fitted(&[1, 1], &[3.0], &Type::Int), Ok(Data::Int(3)));
        assert_eq!(fitted(&[1], &[1.0], &Type::Bool), Ok(Data::Bool(true)));
        assert_eq!(fitted(&[], &[0.0], &Type::Bool), Ok(Data::Bool(false)));
        assert_eq!(
            fitted(&[2], &[1.0, 2.0], &Type::Real),
            Err("expected a real, found a list of 2 values in the test".into())
        );
    }

    #[test]
    fn vectors_fit_lists_rows_and_columns() {
        let expected = Ok(Data::Vec(vec![1.0, 2.0, 3.0]));
        assert_eq!(fitted(&[3], &[1.0, 2.0, 3.0], &vec(3)), expected);
        assert_eq!(fitted(&[3, 1], &[1.0, 2.0, 3.0], &vec(3)), expected);
        assert_eq!(fitted(&[1, 3], &[1.0, 2.0, 3.0], &Type::Vec(Dim::Unknown)), expected);
        assert_eq!(fitted(&[3], &[1.0, 2.0, 3.0], &array(Type::Int, Dim::Known(3))), expected);
        assert_eq!(fitted(&[2], &[1.0, 0.0], &array(Type::Bool, Dim::Unknown)), Ok(Data::Vec(vec![1.0, 0.0])));
        assert_eq!(
            fitted(&[3], &[1.0, 2.0, 3.0], &vec(4)),
            Err("expected a vec[4], found a list of 3 values in the test".into())
        );
        assert_eq!(
            fitted(&[2, 2], &[1.0; 4], &vec(4)),
            Err("expected a vec[4], found a 2 × 2 table in the test".into())
        );
        assert_eq!(fitted(&[0], &[], &vec(4)), Err("expected a vec[4], found no values in the test".into()));
    }

    #[test]
    fn matrices_fit_tables_and_flatten_trailing_dimensions() {
        let values: Vec<f64> = (0..12).map(f64::from).collect();
        let matrix = |rows, cols| Ok(Data::Mat { rows, cols, data: values.clone() });
        assert_eq!(fitted(&[3, 4], &values, &mat(3, 4)), matrix(3, 4));
        assert_eq!(fitted(&[3, 2, 2], &values, &mat(3, 4)), matrix(3, 4));
        assert_eq!(fitted(&[3, 2, 2], &values, &Type::Mat(Dim::Unknown, Dim::Unknown)), matrix(3, 4));
        let ints = array(array(Type::Int, Dim::Known(4)), Dim::Known(3));
        assert_eq!(fitted(&[3, 4], &values, &ints), matrix(3, 4));
        assert_eq!(
            fitted(&[3, 4], &values, &mat(4, 3)),
            Err("expected a mat[4, 3], found a 3 × 4 table in the test".into())
        );
        assert_eq!(
            fitted(&[12], &values, &mat(3, 4)),
            Err("expected a mat[3, 4], found a list of 12 values in the test".into())
        );
        assert_eq!(
            fitted(&[3, 2, 2], &values, &mat(3, 2)),
            Err("expected a mat[3, 2], found a 3 × 2 × 2 array in the test".into())
        );
    }

    #[test]
    fn values_are_checked_against_the_element_kind() {
        let ints = array(Type::Int, Dim::Known(3));
        assert_eq!(
            fitted(&[3], &[1.0, 2.5, 3.0], &ints),
            Err("value 2 is 2.5, but a [int; 3] holds whole numbers within ±2^53".into())
        );
        assert_eq!(
            fitted(&[], &[1e300], &Type::Int),
            Err("the value is 1e300, but an int holds whole numbers within ±2^53".into())
        );
        assert_eq!(fitted(&[], &[MAX_EXACT_INT], &Type::Int), Ok(Data::Int(1 << 53)));
        assert_eq!(fitted(&[], &[-MAX_EXACT_INT], &Type::Int), Ok(Data::Int(-(1 << 53))));
        let bools = array(array(Type::Bool, Dim::Known(2)), Dim::Known(2));
        assert_eq!(
            fitted(&[2, 2], &[1.0, 0.0, 2.0, 1.0], &bools),
            Err("row 2, column 1 is 2, but a [[bool; 2]; 2] holds only 0 and 1".into())
        );
        assert_eq!(
            fitted(&[2, 2], &[1.0, 0.0, f64::NAN, 1.0], &mat(2, 2)),
            Err("row 2, column 1 is NaN, but a mat[2, 2] holds finite numbers".into())
        );
        assert_eq!(
            fitted(&[2, 1, 2], &[1.0, 0.0, 1.0, f64::INFINITY], &mat(2, 2)),
            Err("element (2, 1, 2) is inf, but a mat[2, 2] holds finite numbers".into())
        );
    }

    #[test]
    fn records_come_only_from_json() {
        let error = read_bytes("r.csv", b"1\n", &record(&[("x", Type::Real)])).expect_err("not JSON");
        assert_eq!(error.message, "expected a record {x: real}, found a 1 × 1 table in CSV");
        assert_eq!(error.note.as_deref(), Some("records are read from JSON objects"));
    }

    #[test]
    fn optional_fields_are_declared_as_such() {
        let ty = Type::Record(vec![Field { optional: true, ..Field::new("x", Type::Real) }]);
        assert_eq!(read_bytes("r.json", b"{}", &ty), Ok(Data::Record(vec![])));
    }

    #[test]
    fn binary_decoding_converts_every_dtype() {
        let le = |dtype, bytes: &[u8]| decode_values(bytes, dtype, false);
        let be = |dtype, bytes: &[u8]| decode_values(bytes, dtype, true);
        assert_eq!(le(Dtype::Bool, &[0, 1, 7]), [0.0, 1.0, 1.0]);
        assert_eq!(le(Dtype::U8, &[0, 255]), [0.0, 255.0]);
        assert_eq!(le(Dtype::I8, &[0xff, 0x7f]), [-1.0, 127.0]);
        assert_eq!(le(Dtype::U16, &[1, 2]), [513.0]);
        assert_eq!(be(Dtype::U16, &[1, 2]), [258.0]);
        assert_eq!(be(Dtype::I16, &(-300i16).to_be_bytes()), [-300.0]);
        assert_eq!(le(Dtype::U32, &4_000_000_000u32.to_le_bytes()), [4e9]);
        assert_eq!(be(Dtype::I32, &(-70_000i32).to_be_bytes()), [-70_000.0]);
        assert_eq!(le(Dtype::U64, &(1u64 << 40).to_le_bytes()), [2f64.powi(40)]);
        assert_eq!(be(Dtype::I64, &(-5i64).to_be_bytes()), [-5.0]);
        assert_eq!(le(Dtype::F32, &0.5f32.to_le_bytes()), [0.5]);
        assert_eq!(be(Dtype::F64, &(-0.25f64).to_be_bytes()), [-0.25]);
    }

    #[test]
    fn payload_sizes_are_checked_before_allocating() {
        let error = decode(&[0; 10], &[1_000_000, 1_000_000], Dtype::F64, false, "test").expect_err("too short");
        assert_eq!(
            error.message,
            "the test header promises 1000000 × 1000000 values of 8 bytes (8000000000000 bytes), but 10 bytes follow it"
        );
        assert_eq!(error.note.as_deref(), Some("the file is truncated"));
        let overflow = decode(&[], &[usize::MAX, 2], Dtype::U8, false, "test").expect_err("overflows");
        assert_eq!(overflow.message, format!("the test header claims an impossibly large shape ({} × 2)", usize::MAX));
        let long = decode(&[0; 3], &[2], Dtype::U8, false, "test").expect_err("extra bytes");
        assert_eq!(
            (long.message.as_str(), long.note),
            ("the test header promises 2 values of 1 byte (2 bytes), but 3 bytes follow it", None)
        );
    }

    /// Loading the 50,000 × 784 binarized MNIST training images (`cargo test -p ppl --release
    /// load::tests::binarized_mnist_train_timing -- --ignored --nocapture`).
    #[test]
    #[ignore = "a timing measurement, not a check"]
    fn binarized_mnist_train_timing() {
        let Some(folder) = shared_data("binarized_mnist") else { return };
        let path = folder.join("binarized_mnist_train.npy.gz");
        for _ in 0..3 {
            let start = std::time::Instant::now();
            let data = read(&path, &mat(50_000, 784)).expect("the training images load");
            let elapsed = start.elapsed();
            assert!(matches!(data, Data::Mat { rows: 50_000, cols: 784, .. }));
            eprintln!("binarized MNIST train: {elapsed:?}");
        }
    }
}
