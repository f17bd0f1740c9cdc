//! Python with the packages a test needs (python-gitlab, …), installed by the tests
//! themselves into `CARGO_TARGET_TMPDIR/python` on first use, so a fresh clone needs only
//! `python3` with `pip`; and command-line tools (`unzip`), installed with apt-get when
//! missing.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Mutex;

/// Serialises installs within a test binary (cargo runs binaries one at a time).
static INSTALL: Mutex<()> = Mutex::new(());

fn site() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("python")
}

/// Makes `modules` importable (installing `packages` with pip when one is missing) and
/// returns the directory to put on `PYTHONPATH`.
pub fn with_packages(modules: &[&str], packages: &[&str]) -> PathBuf {
    let _guard = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    let site = site();
    let importable = |site: &PathBuf| {
        let check = format!("import {}", modules.join(", "));
        Command::new("python3")
            .args(["-c", &check])
            .env("PYTHONPATH", site)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if importable(&site) {
        return site;
    }
    let install = |extra: &[&str]| {
        Command::new("python3")
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(["--target"])
            .arg(&site)
            .args(extra)
            .args(packages)
            .output()
            .expect("python3 runs")
    };
    let mut out = install(&[]);
    if !out.status.success() {
        // A Debian python3 refuses pip outside a venv (PEP 668) unless told.
        out = install(&["--break-system-packages"]);
    }
    assert!(
        out.status.success() && importable(&site),
        "pip install {packages:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    site
}

/// Runs `script` with `args`; panics with its stderr unless it exits 0.
pub fn run(site: &std::path::Path, script: &str, args: &[&str]) -> Output {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .env("PYTHONPATH", site)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "python failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `name` on the PATH, installed with apt-get (as root, package `package`) when missing,
/// so that a fresh machine runs the tests that read archives with it.
pub fn tool(name: &str, package: &str) -> String {
    let _guard = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    let found = || {
        Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !found() {
        let install = format!(
            "export DEBIAN_FRONTEND=noninteractive; apt-get install -y -qq {package} \
             || (apt-get update -qq && apt-get install -y -qq {package})"
        );
        let out = Command::new("sh").args(["-c", &install]).output();
        assert!(
            found(),
            "{name} is missing and apt-get could not install {package}: {out:?}"
        );
    }
    name.to_owned()
}
