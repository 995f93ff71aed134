//! IDX files (MNIST's format: `t10k-images-idx3-ubyte`, `labels.idx1`): the bytes 0, 0, a
//! type code and a number of dimensions, one big-endian u32 length per dimension, then the
//! values, big-endian. `n` images of 28 × 28 pixels are a three-dimensional array, which a
//! matrix type reads as `n` rows of 784 values (see [`super::read`]).
//!
//! This file owns the header. It must not trust the lengths it claims: `decode` compares them
//! with the bytes present before allocating.

use super::{decode, Dtype, LoadError, Numbers};

pub(super) fn parse(bytes: &[u8]) -> Result<Numbers, LoadError> {
    let [0, 0, type_code, dimensions, rest @ ..] = bytes else {
        let start: Vec<String> = bytes.iter().take(4).map(|byte| format!("{byte:02x}")).collect();
        return Err(LoadError::new(format!(
            "not an IDX file: it should start with 00 00, a type and a number of dimensions, found `{}`",
            start.join(" ")
        )));
    };
    let dtype = match type_code {
        0x08 => Dtype::U8,
        0x09 => Dtype::I8,
        0x0B => Dtype::I16,
        0x0C => Dtype::I32,
        0x0D => Dtype::F32,
        0x0E => Dtype::F64,
        _ => {
            return Err(LoadError::new(format!(
            "expected an IDX type of 08 (u8), 09 (i8), 0b (i16), 0c (i32), 0d (f32) or 0e (f64), found {type_code:02x}"
        )))
        }
    };
    let (lengths, data) = rest.split_at_checked(4 * usize::from(*dimensions)).ok_or_else(|| {
        LoadError::new(format!("the IDX file ends inside its header of {dimensions} dimension lengths"))
            .with_note("the file is truncated")
    })?;
    let shape: Vec<usize> = lengths
        .chunks_exact(4)
        .map(|length| {
            let mut bytes = [0; 4];
            bytes.copy_from_slice(length);
            usize::try_from(u32::from_be_bytes(bytes)).unwrap_or(usize::MAX)
        })
        .collect();
    let values = decode(data, &shape, dtype, true, "IDX")?;
    Ok(Numbers { shape, values, row_lines: None })
}

#[cfg(test)]
mod tests {
    use crate::data::Data;
    use crate::load::tests::{array, gzip, mat, message, read_bytes, shared_data, survives_corruption, vec};
    use crate::load::LoadError;
    use crate::types::{Dim, Type};

    fn idx(type_code: u8, shape: &[u32], data: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0, 0, type_code, u8::try_from(shape.len()).expect("a few dimensions")];
        bytes.extend(shape.iter().flat_map(|length| length.to_be_bytes()));
        bytes.extend(data);
        bytes
    }

    fn load(bytes: &[u8], ty: &Type) -> Result<Data, LoadError> {
        read_bytes("test-idx3-ubyte", bytes, ty)
    }

    #[test]
    fn each_type_code() {
        let labels = array(Type::Int, Dim::Unknown);
        assert_eq!(load(&idx(0x08, &[3], &[7, 2, 255]), &labels), Ok(Data::Vec(vec![7.0, 2.0, 255.0])));
        assert_eq!(load(&idx(0x09, &[2], &[0xff, 3]), &labels), Ok(Data::Vec(vec![-1.0, 3.0])));
        assert_eq!(load(&idx(0x0B, &[1], &(-300i16).to_be_bytes()), &labels), Ok(Data::Vec(vec![-300.0])));
        assert_eq!(load(&idx(0x0C, &[1], &(-70_000i32).to_be_bytes()), &labels), Ok(Data::Vec(vec![-70_000.0])));
        assert_eq!(load(&idx(0x0D, &[1], &0.25f32.to_be_bytes()), &vec(1)), Ok(Data::Vec(vec![0.25])));
        assert_eq!(load(&idx(0x0E, &[1, 1], &(-1.5f64).to_be_bytes()), &Type::Real), Ok(Data::Real(-1.5)));
        assert_eq!(load(&idx(0x08, &[1], &[1]), &Type::Bool), Ok(Data::Bool(true)));
        assert_eq!(
            read_bytes("labels.idx1.gz", &gzip(&idx(0x08, &[2], &[4, 5])), &vec(2)),
            Ok(Data::Vec(vec![4.0, 5.0]))
        );
        assert_eq!(
            message(load(&idx(0x0D, &[1], &2.5f32.to_be_bytes()), &labels)),
            "value 1 is 2.5, but a [int; _] holds whole numbers within ±2^53"
        );
    }

    #[test]
    fn images_flatten_into_matrix_rows() {
        let pixels: Vec<u8> = (0..12).collect();
        let file = idx(0x08, &[3, 2, 2], &pixels);
        let expected = Data::Mat { rows: 3, cols: 4, data: (0..12).map(f64::from).collect() };
        assert_eq!(load(&file, &mat(3, 4)), Ok(expected.clone()));
        assert_eq!(load(&file, &array(array(Type::Int, Dim::Known(4)), Dim::Unknown)), Ok(expected));
        assert_eq!(message(load(&file, &mat(3, 2))), "expected a mat[3, 2], found a 3 × 2 × 2 array in IDX");
        assert_eq!(message(load(&file, &vec(12))), "expected a vec[12], found a 3 × 2 × 2 array in IDX");
    }

    #[test]
    fn bad_headers_and_truncation() {
        assert_eq!(
            message(load(b"\x1f\x8b\x08\x00", &vec(1))),
            "not an IDX file: it should start with 00 00, a type and a number of dimensions, found `1f 8b 08 00`"
        );
        assert_eq!(message(load(b"", &vec(1))).rsplit_once(", found").map(|(_, found)| found), Some(" ``"));
        assert_eq!(
            message(load(&idx(0x0A, &[1], &[0]), &vec(1))),
            "expected an IDX type of 08 (u8), 09 (i8), 0b (i16), 0c (i32), 0d (f32) or 0e (f64), found 0a"
        );
        let header_cut = idx(0x08, &[10, 28, 28], &[]);
        let error = load(header_cut.get(..10).expect("shorter"), &mat(10, 784)).expect_err("truncated");
        assert_eq!(error.message, "the IDX file ends inside its header of 3 dimension lengths");
        assert_eq!(error.note.as_deref(), Some("the file is truncated"));
        let error = load(&idx(0x08, &[10, 28, 28], &[0; 100]), &mat(10, 784)).expect_err("truncated");
        assert_eq!(
            error.message,
            "the IDX header promises 10 × 28 × 28 values of 1 byte (7840 bytes), but 100 bytes follow it"
        );
        let huge = idx(0x0E, &[u32::MAX, u32::MAX, u32::MAX], &[0; 8]);
        assert!(message(load(&huge, &Type::Mat(Dim::Unknown, Dim::Unknown))).contains("impossibly large shape"));
        let large = idx(0x0E, &[1_000_000, 1_000_000], &[0; 8]);
        assert!(message(load(&large, &Type::Mat(Dim::Unknown, Dim::Unknown)))
            .contains("(8000000000000 bytes), but 8 bytes"));
    }

    #[test]
    fn corrupted_files_are_errors() {
        let target = crate::load::Target::of(&Type::Mat(Dim::Unknown, Dim::Unknown)).expect("loadable");
        survives_corruption(&idx(0x0B, &[2, 1, 2], &[0, 1, 0, 2, 0, 3, 0, 4]), |bytes| {
            let _ = super::parse(bytes).and_then(|numbers| crate::load::fit(numbers, &target, "in IDX"));
        });
    }

    /// The MNIST test split: 10,000 images of 28 × 28 pixels and their labels.
    #[test]
    fn mnist_test_split() {
        let Some(folder) = shared_data("mnist") else { return };
        let pixels = array(array(Type::Int, Dim::Known(784)), Dim::Known(10_000));
        for name in ["t10k-images-idx3-ubyte", "t10k-images-idx3-ubyte.gz"] {
            let Ok(Data::Mat { rows: 10_000, cols: 784, data }) = crate::load::read(&folder.join(name), &pixels) else {
                panic!("{name}: a 10,000 × 784 matrix")
            };
            let mean = data.iter().sum::<f64>() / data.len() as f64;
            assert!((mean - 33.79).abs() < 0.01, "{mean}");
        }
        let labels =
            crate::load::read(&folder.join("t10k-labels-idx1-ubyte.gz"), &array(Type::Int, Dim::Known(10_000)));
        let Ok(Data::Vec(labels)) = labels else { panic!("10,000 labels") };
        assert_eq!(labels.get(..10), Some([7.0, 2.0, 1.0, 0.0, 4.0, 1.0, 4.0, 9.0, 5.0, 9.0].as_slice()));
    }
}
