//! ZIP archives of one file, as posteriordb ships its data (`data.json.zip`).
//!
//! This module owns finding the one file an archive holds and inflating it; the caller chooses
//! the format, from the archive's name or from that file's. It must not trust the archive's
//! headers for sizes: the content grows as it inflates and is read no further than the size the
//! headers claim, so a header can neither make it allocate nor make it read without end.

use std::io::{Cursor, Read};
use std::path::Path;

use ::zip::result::ZipError;
use ::zip::{CompressionMethod, ZipArchive};

use super::LoadError;

/// A ZIP archive of files starts with the first one's local header.
pub(super) const ZIP_MAGIC: [u8; 4] = *b"PK\x03\x04";

/// The file an archive holds: its name in the archive and its inflated bytes.
pub(super) struct Entry {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// The one file of the archive `raw`, read from `path` (named in messages).
pub(super) fn only_file(raw: &[u8], path: &Path) -> Result<Entry, LoadError> {
    let archive_error = |error: ZipError| {
        let failure = LoadError::new(format!("cannot unzip `{}`: {error}", path.display()));
        if raw.starts_with(&ZIP_MAGIC) {
            failure
        } else {
            failure.with_note("the name ends in `.zip`, but the file is not a ZIP archive")
        }
    };
    let mut archive = ZipArchive::new(Cursor::new(raw)).map_err(archive_error)?;
    let mut files = Vec::new();
    for index in 0..archive.len() {
        // Raw: the headers only, so that an entry compressed in a way this build cannot inflate
        // is still counted and named.
        let entry = archive.by_index_raw(index).map_err(archive_error)?;
        if !entry.is_dir() && !is_finder_metadata(entry.name()) {
            files.push((index, entry.name().to_string(), entry.compression(), entry.encrypted()));
        }
    }
    let (index, name, compression, encrypted) = match files.as_slice() {
        [file] => file.clone(),
        _ => {
            let names: Vec<String> = files.iter().take(3).map(|(_, name, ..)| format!("`{name}`")).collect();
            let held = match files.len() {
                0 => "no file".to_string(),
                count if count > names.len() => format!("{count} files ({}, …)", names.join(", ")),
                count => format!("{count} files ({})", names.join(", ")),
            };
            return Err(LoadError::new(format!(
                "`{}` holds {held}, but `load` reads a ZIP archive of exactly one file",
                path.display()
            )));
        }
    };
    let in_archive = format!("`{name}` in `{}`", path.display());
    if encrypted {
        return Err(LoadError::new(format!("{in_archive} is encrypted, and `load` reads only unencrypted files")));
    }
    if !matches!(compression, CompressionMethod::Stored | CompressionMethod::Deflated) {
        return Err(LoadError::new(format!(
            "{in_archive} is compressed with {}, and `load` inflates only stored and deflated files",
            method_name(compression)
        ))
        .with_note("`zip` and most tools deflate by default"));
    }
    let corrupt = |error: std::io::Error| LoadError::new(format!("cannot unzip {in_archive}: {error}"));
    let mut entry = archive.by_index(index).map_err(|error| corrupt(error.into()))?;
    let claimed = entry.size();
    let mut bytes = Vec::new();
    // No capacity from the header: the vector grows with what actually inflates. One byte past
    // the claim shows content longer than its header says, and a read of the whole claim goes on
    // to the end of the stream, where the zip crate checks the CRC.
    entry.by_ref().take(claimed.saturating_add(1)).read_to_end(&mut bytes).map_err(corrupt)?;
    if bytes.len() as u64 != claimed {
        let found = if bytes.len() as u64 > claimed { "more".to_string() } else { bytes.len().to_string() };
        return Err(LoadError::new(format!(
            "cannot unzip {in_archive}: its header says {claimed} bytes, but {found} bytes inflate"
        ))
        .with_note("the archive is corrupt"));
    }
    Ok(Entry { name, bytes })
}

/// A compression method as archivers name it: the zip crate names only those it was built to
/// inflate, and numbers the others.
fn method_name(method: CompressionMethod) -> String {
    let named = [
        (CompressionMethod::DEFLATE64, "Deflate64"),
        (CompressionMethod::BZIP2, "bzip2"),
        (CompressionMethod::LZMA, "LZMA"),
        (CompressionMethod::ZSTD, "Zstandard"),
        (CompressionMethod::XZ, "XZ"),
        (CompressionMethod::PPMD, "PPMd"),
    ];
    match named.iter().find(|(known, _)| *known == method) {
        Some((_, name)) => name.to_string(),
        // The variant is deprecated for matching, but it is the only way to the number.
        #[allow(deprecated)]
        None => match method {
            CompressionMethod::Unsupported(number) => format!("compression method {number}"),
            other => format!("{other:?}"),
        },
    }
}

/// The Finder's "Compress" adds `__MACOSX/._data.json` beside `data.json` (resource forks):
/// not the data, so an archive holding both still holds one file.
fn is_finder_metadata(name: &str) -> bool {
    name.starts_with("__MACOSX/")
}

#[cfg(test)]
mod tests {
    use std::io::{Seek, Write};

    use ::zip::write::SimpleFileOptions;
    use ::zip::ZipWriter;

    use crate::data::Data;
    use crate::load::tests::{gzip, mat, message, read_bytes, record, shared_data, survives_corruption, vec};
    use crate::types::Type;

    /// A ZIP archive of `files` (name, content), deflated unless `stored`, with a directory
    /// entry first as archivers write them.
    fn zip(files: &[(&str, &[u8])], stored: bool) -> Vec<u8> {
        let method = if stored { ::zip::CompressionMethod::Stored } else { ::zip::CompressionMethod::Deflated };
        let options = SimpleFileOptions::default().compression_method(method);
        let mut writer = ZipWriter::new(std::io::Cursor::new(Vec::new()));
        writer.add_directory("folder/", options).expect("written in memory");
        for (name, content) in files {
            writer.start_file(*name, options).expect("written in memory");
            writer.write_all(content).expect("written in memory");
        }
        let mut cursor = writer.finish().expect("written in memory");
        cursor.rewind().expect("in memory");
        cursor.into_inner()
    }

    /// `archive` with the little-endian `value` written at `offset` after every header whose
    /// signature is `signature` (a field of the local or the central header).
    fn patched(archive: &[u8], signature: &[u8; 4], offset: usize, value: &[u8]) -> Vec<u8> {
        let mut changed = archive.to_vec();
        let starts: Vec<usize> =
            archive.windows(4).enumerate().filter(|(_, window)| window == signature).map(|(start, _)| start).collect();
        assert!(!starts.is_empty(), "the archive has such a header");
        for start in starts {
            changed.splice(start + offset..start + offset + value.len(), value.iter().copied());
        }
        changed
    }

    const LOCAL: &[u8; 4] = b"PK\x03\x04";
    const CENTRAL: &[u8; 4] = b"PK\x01\x02";

    #[test]
    fn zipped_tables_and_records_read_as_unzipped() {
        let table = Data::Mat { rows: 2, cols: 2, data: vec![1.0, 2.0, 3.0, 4.0] };
        for stored in [false, true] {
            let archive = zip(&[("folder/m.csv", b"1, 2\n3, 4\n")], stored);
            assert_eq!(read_bytes("m.csv.zip", &archive, &mat(2, 2)), Ok(table.clone()));
        }
        let json = br#"{"N": 3, "y": [0.5, 1.5, 2.5], "unused": "text"}"#;
        let ty = record(&[("N", Type::Int), ("y", vec(3))]);
        let expected = Data::Record(vec![("N".into(), Data::Int(3)), ("y".into(), Data::Vec(vec![0.5, 1.5, 2.5]))]);
        // The format from the archive's name, whatever the file inside is called…
        assert_eq!(read_bytes("data.json.ZIP", &zip(&[("diamonds", json)], false), &ty), Ok(expected.clone()));
        // …or from the one file's name when the archive's does not say.
        assert_eq!(read_bytes("data.zip", &zip(&[("data.json", json)], false), &ty), Ok(expected.clone()));
        assert_eq!(read_bytes("data.zip", &zip(&[("data.json.gz", &gzip(json))], false), &ty), Ok(expected));
        let with_finder_metadata = zip(&[("m.csv", b"1, 2\n3, 4\n"), ("__MACOSX/._m.csv", b"\0\x05\x16\x07")], false);
        assert_eq!(read_bytes("m.zip", &with_finder_metadata, &mat(2, 2)), Ok(table));
    }

    #[test]
    fn an_archive_must_hold_exactly_one_file() {
        let none = message(read_bytes("x.csv.zip", &zip(&[], false), &vec(3)));
        assert!(
            none.ends_with("x.csv.zip` holds no file, but `load` reads a ZIP archive of exactly one file"),
            "{none}"
        );
        let two = zip(&[("a.csv", b"1\n"), ("b.csv", b"2\n")], false);
        let error = message(read_bytes("x.zip", &two, &vec(1)));
        assert!(error
            .ends_with("x.zip` holds 2 files (`a.csv`, `b.csv`), but `load` reads a ZIP archive of exactly one file"));
        let four: Vec<(String, &[u8])> = (1..=4).map(|i| (format!("{i}.csv"), &b"1\n"[..])).collect();
        let four: Vec<(&str, &[u8])> = four.iter().map(|(name, content)| (name.as_str(), *content)).collect();
        let error = message(read_bytes("x.zip", &zip(&four, false), &vec(1)));
        assert!(error.contains("holds 4 files (`1.csv`, `2.csv`, `3.csv`, …), but"), "{error}");
    }

    #[test]
    fn the_format_comes_from_the_archive_or_its_file() {
        let error = read_bytes("x.zip", &zip(&[("weights.mat", b"1\n")], false), &vec(1)).expect_err("unknown");
        assert!(error.message.starts_with("`load` does not read `.mat` files"), "{error:?}");
        assert!(error.note.as_deref().is_some_and(|note| note.ends_with("x.zip` holds `weights.mat`")), "{error:?}");
    }

    #[test]
    fn a_zip_name_on_a_plain_file_says_so() {
        let error = read_bytes("x.csv.zip", b"1, 2, 3\n", &vec(3)).expect_err("not a zip");
        assert!(error.message.starts_with("cannot unzip `"), "{error:?}");
        assert_eq!(error.note.as_deref(), Some("the name ends in `.zip`, but the file is not a ZIP archive"));
    }

    #[test]
    fn a_zip_file_without_zip_name_gets_a_hint() {
        let error = read_bytes("x.csv", &zip(&[("x.csv", b"1\n")], false), &vec(1)).expect_err("zipped");
        assert!(
            error.note.as_deref().is_some_and(|note| note.starts_with("the file looks like a ZIP archive: name it `")),
            "{error:?}"
        );
    }

    #[test]
    fn truncated_and_corrupt_archives_are_errors() {
        let archive = zip(&[("x.csv", "1.5, 2.5, 3.5\n".repeat(200).as_bytes())], false);
        for length in [archive.len() / 2, archive.len() - 1, 30] {
            let truncated = archive.get(..length).expect("shorter");
            assert!(message(read_bytes("x.csv.zip", truncated, &mat(200, 3))).starts_with("cannot unzip `"));
        }
        // A changed byte of the deflated content, after the file's local header (the last one,
        // after the directory's), its name and its extra field: the inflated bytes or their CRC
        // differ.
        let header = archive.windows(4).rposition(|window| window == LOCAL).expect("a local header");
        let length_at = |offset: usize| usize::from(u16::from_le_bytes([archive[offset], archive[offset + 1]]));
        let data_start = header + 30 + length_at(header + 26) + length_at(header + 28);
        let mut changed = archive.clone();
        changed[data_start + 5] ^= 0x55;
        let error = message(read_bytes("x.csv.zip", &changed, &mat(200, 3)));
        assert!(error.starts_with("cannot unzip `x.csv` in `"), "{error}");
        let small = zip(&[("x.json", b"[1, 2]")], false);
        survives_corruption(&small, |bytes| {
            let _ = read_bytes("x.json.zip", bytes, &vec(2));
        });
    }

    #[test]
    fn sizes_in_headers_are_checked_not_trusted() {
        let content = b"1, 2\n3, 4\n";
        let archive = zip(&[("m.csv", content)], false);
        // The uncompressed size, at offset 22 of a local header and 24 of a central one.
        let huge = u32::MAX - 1;
        let claims_more = patched(&patched(&archive, LOCAL, 22, &huge.to_le_bytes()), CENTRAL, 24, &huge.to_le_bytes());
        let error = read_bytes("m.csv.zip", &claims_more, &mat(2, 2)).expect_err("shorter than claimed");
        assert!(error.message.ends_with(&format!("its header says {huge} bytes, but 10 bytes inflate")), "{error:?}");
        assert_eq!(error.note.as_deref(), Some("the archive is corrupt"));
        let claims_less = patched(&patched(&archive, LOCAL, 22, &4u32.to_le_bytes()), CENTRAL, 24, &4u32.to_le_bytes());
        let error = message(read_bytes("m.csv.zip", &claims_less, &mat(2, 2)));
        assert!(error.ends_with("its header says 4 bytes, but more bytes inflate"), "{error}");
    }

    #[test]
    fn unsupported_compression_and_encryption_are_named() {
        let archive = zip(&[("m.csv", b"1\n")], false);
        // The method, at offset 8 of a local header and 10 of a central one; 12 is bzip2.
        let bzip2 = patched(&patched(&archive, LOCAL, 8, &12u16.to_le_bytes()), CENTRAL, 10, &12u16.to_le_bytes());
        let error = read_bytes("m.zip", &bzip2, &vec(1)).expect_err("bzip2");
        assert!(
            error.message.starts_with("`m.csv` in `")
                && error
                    .message
                    .ends_with("is compressed with bzip2, and `load` inflates only stored and deflated files"),
            "{error:?}"
        );
        // Bit 0 of the flags, at offset 6 of a local header and 8 of a central one.
        let encrypted = patched(&patched(&archive, LOCAL, 6, &[1]), CENTRAL, 8, &[1]);
        let error = message(read_bytes("m.zip", &encrypted, &vec(1)));
        assert!(error.ends_with("is encrypted, and `load` reads only unencrypted files"), "{error}");
    }

    /// posteriordb's diamonds: 5000 rows of an intercept column and 24 predictors, zipped.
    #[test]
    fn diamonds_data() {
        let Some(folder) = shared_data("posteriordb") else { return };
        let path = folder.join("diamonds-diamonds/data.json.zip");
        let ty = record(&[("N", Type::Int), ("K", Type::Int), ("X", mat(5000, 25)), ("Y", vec(5000))]);
        let loaded = crate::load::read(&path, &ty).expect("the data load");
        let Data::Record(fields) = loaded else { panic!("a record") };
        let [(_, Data::Int(5000)), (_, Data::Int(25)), (_, Data::Mat { data: x, .. }), (_, Data::Vec(y))] =
            fields.as_slice()
        else {
            panic!("N, K, X, Y in order: {fields:?}")
        };
        assert!(x.iter().step_by(25).all(|&one| one == 1.0), "the first column is the intercept's");
        let mean = y.iter().sum::<f64>() / 5000.0;
        assert!((mean - 7.788).abs() < 1e-3, "the mean log price is {mean}");
        let wrong = crate::load::read(&path, &record(&[("X", mat(5000, 24))])).expect_err("25 columns");
        assert_eq!(wrong.message, "field `X`: expected a mat[5000, 24], found a 5000 × 25 table in JSON");
    }
}
