//! The Chromium that the dashboard's browser tests drive headless: the one named by
//! `POSTS_WORKER_CHROMIUM`, else the first of the usual names on `PATH`, else Debian's
//! `chromium` package, installed with apt-get when it is missing.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::bail;

/// The variable that hands the browser to the tests (they read the same one).
pub(crate) const CHROMIUM_ENV: &str = "POSTS_WORKER_CHROMIUM";

/// The names Chromium and Chrome go by on Linux distributions, in order of preference.
const NAMES: &[&str] = &["chromium", "chromium-browser", "google-chrome"];

/// Where Debian's package puts it, for a `PATH` that lacks `/usr/bin`.
const DEBIAN_PATH: &str = "/usr/bin/chromium";

/// The Debian package that provides [`DEBIAN_PATH`].
const DEBIAN_PACKAGE: &str = "chromium";

/// The browser for the tests: `$POSTS_WORKER_CHROMIUM` when set, else one found on this
/// machine, else the one apt-get installs; fails saying how to get one.
pub(crate) fn chromium() -> anyhow::Result<PathBuf> {
    if let Some(chosen) = std::env::var_os(CHROMIUM_ENV).filter(|p| !p.is_empty()) {
        let chosen = PathBuf::from(chosen);
        if !runs(&chosen) {
            bail!(
                "{CHROMIUM_ENV}={} does not run (`{} --version` failed); point it at a \
                 Chromium or Chrome binary, or unset it to let xtask find or install one",
                chosen.display(),
                chosen.display()
            );
        }
        return Ok(chosen);
    }
    if let Some(found) = find() {
        return Ok(found);
    }
    eprintln!("xtask: no Chromium found; installing Debian's `{DEBIAN_PACKAGE}` with apt-get");
    if !apt_get_install() {
        eprintln!("xtask: `apt-get install` failed; updating the package lists and retrying");
        if apt_get(&["update", "-qq"]) {
            apt_get_install();
        }
    }
    match find() {
        Some(found) => Ok(found),
        None => bail!(
            "no Chromium to run the dashboard's browser tests: none of {NAMES:?} is on PATH \
             or at {DEBIAN_PATH}, and `apt-get install -y {DEBIAN_PACKAGE}` did not provide \
             one. Install Chromium or Chrome (`apt-get install chromium` on Debian, \
             `apt-get install chromium-browser` on Ubuntu, `brew install --cask chromium` on \
             macOS) or set {CHROMIUM_ENV} to its path."
        ),
    }
}

/// The first of [`NAMES`] on `PATH` (or [`DEBIAN_PATH`]) that starts.
fn find() -> Option<PathBuf> {
    NAMES
        .iter()
        .filter_map(|name| which::which(name).ok())
        .chain(std::iter::once(PathBuf::from(DEBIAN_PATH)))
        .find(|candidate| candidate.is_file() && runs(candidate))
}

/// Whether `binary --version` exits 0.
fn runs(binary: &Path) -> bool {
    Command::new(binary)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// `apt-get install -y chromium`; `false` when it failed or apt-get is missing.
fn apt_get_install() -> bool {
    apt_get(&["install", "-y", "-qq", DEBIAN_PACKAGE])
}

/// Runs apt-get non-interactively with its output on stderr; `false` when it failed.
fn apt_get(args: &[&str]) -> bool {
    Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}
