//! Helpers shared by the end-to-end tests: locating (and if need be building) the real
//! `tousu` binary and running it ([`tousu_bin`], [`run_tousu`]), a real server on a free
//! port with typed gRPC clients ([`server`]), valid requests ([`requests`]), the steps of the
//! procedure ([`flows`]), assertions on refusals and their details ([`refusal`]), and what an
//! editor of a stopped server's disk can do to its log ([`tamper`]).

#![allow(clippy::print_stderr)]

pub mod flows;
pub mod refusal;
pub mod requests;
pub mod server;
pub mod tamper;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The `tousu` binary of this build: `$TOUSU_BIN` if set, else the one cargo builds next to
/// this test. Cargo is asked to bring it up to date once per test process (a no-op when it
/// is), because `cargo test -p tousu-e2e` does not build other packages' binaries and a stale
/// binary would test old code.
pub fn tousu_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(path) = std::env::var_os("TOUSU_BIN") {
            return PathBuf::from(path);
        }
        // The test executable lives in target/<profile>/deps/; the binary in target/<profile>/.
        let exe = std::env::current_exe().expect("test executable path");
        let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile> directory");
        let release = profile_dir.file_name().is_some_and(|name| name == "release");
        let mut build = Command::new(env!("CARGO"));
        build.args(["build", "--quiet", "-p", "tousu", "--bin", "tousu"]);
        if release {
            build.arg("--release");
        }
        let status = build.status().expect("cargo runs");
        assert!(status.success(), "building tousu failed");
        profile_dir.join("tousu")
    })
}

/// Runs `tousu` with the arguments and returns its output.
pub fn run_tousu(args: &[&str]) -> Output {
    Command::new(tousu_bin()).args(args).output().expect("tousu runs")
}

/// Standard output as text, trimmed.
pub fn stdout_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Standard error as text, trimmed.
pub fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).trim().to_owned()
}
