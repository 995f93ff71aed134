//! Writing files so that neither a crash nor a hostile folder can corrupt or redirect them.

use std::path::Path;

/// Replaces `path` with `contents` through a temporary file of an unpredictable name, created
/// exclusively beside it, flushed to disk and renamed over `path` (a symlink at `path` is
/// replaced, never followed); then flushes the folder, so the rename itself survives a crash.
pub fn write_atomically(path: &Path, contents: impl AsRef<[u8]>) -> Result<(), String> {
    use std::io::Write;
    let failed = |error: std::io::Error| format!("cannot write `{}`: {error}", path.display());
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut file = tempfile::Builder::new().prefix(".ppl-").suffix(".tmp").tempfile_in(folder).map_err(failed)?;
    if let Ok(metadata) = std::fs::metadata(path) {
        // Keep the permissions of the file being replaced (`fmt --write` of a program).
        let _ = file.as_file().set_permissions(metadata.permissions());
    }
    file.write_all(contents.as_ref()).and_then(|()| file.as_file().sync_all()).map_err(failed)?;
    file.persist(path).map_err(|error| failed(error.error))?;
    if let Ok(folder) = std::fs::File::open(folder) {
        let _ = folder.sync_all();
    }
    Ok(())
}
