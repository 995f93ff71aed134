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

// Each test binary compiles this module and uses some of what follows.

/// Runs the `ppl` binary from the repository's root, without `NO_COLOR` or standard input.
#[allow(dead_code)]
pub fn ppl(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_ppl"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("NO_COLOR")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("the ppl binary runs")
}

#[allow(dead_code)]
pub fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[allow(dead_code)]
pub fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The conjugate Gaussian model, its guide and a training command with `options`.
#[allow(dead_code)]
pub fn conjugate(options: &str) -> String {
    format!(
        "gen model() {{ x ~ normal(0.0, 1.0); y ~ normal(x, 1.0); }}\n\
         gen guide(m: real, log_s: real) {{ x ~ normal(m, exp(log_s)); }}\n\
         param m: real = 0.0;\nparam log_s: real = 0.0;\ndata obs = {{ y: 1.5 }};\n\
         maximize elbo(model(), guide(m, log_s), obs) with {{ {options} }};\n"
    )
}
