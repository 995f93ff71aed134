//! Helpers shared by the end-to-end tests.

use std::path::PathBuf;

/// A scratch directory unique to one test (and process), removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("ppl-test-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a writable temp dir");
        Scratch(dir)
    }

    /// Writes a file into the directory and returns its path.
    pub fn file(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).expect("a writable temp file");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
