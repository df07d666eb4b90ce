//! The pinned Python Celery environment that the Celery tests and `cargo xtask bench
//! celery` drive: a virtual environment under `target/celery-venv`, built from the
//! requirements file and rebuilt whenever that file changes (or the python named by
//! `POSTS_WORKER_CELERY_PYTHON`, when set).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};

/// The pinned requirements (stock `celery[redis]` and what it pulls in).
pub(crate) const REQUIREMENTS: &str = "crates/posts-worker/tests/celery/requirements.txt";

/// The variable that hands the environment's python to the tests.
pub(crate) const PYTHON_ENV: &str = "POSTS_WORKER_CELERY_PYTHON";

/// The python of the Celery environment, created or updated first when the requirements
/// changed since it was built; `$POSTS_WORKER_CELERY_PYTHON` when the developer set it.
pub(crate) fn celery_python(root: &Path) -> anyhow::Result<PathBuf> {
    if let Some(python) = std::env::var_os(PYTHON_ENV).filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(python));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let venv = target.join("celery-venv");
    let python = venv.join("bin").join("python");
    let requirements = root.join(REQUIREMENTS);
    let wanted = std::fs::read(&requirements)
        .with_context(|| format!("reading {}", requirements.display()))?;
    let stamp = venv.join("requirements.installed");
    if python.exists() && std::fs::read(&stamp).is_ok_and(|installed| installed == wanted) {
        return Ok(python);
    }
    eprintln!(
        "xtask: building the Python Celery environment in {} (once; about 20 s)",
        venv.display()
    );
    if !run_quietly(Command::new("python3").arg("-m").arg("venv").arg(&venv))? {
        install_venv_module()?;
        if !run_quietly(Command::new("python3").arg("-m").arg("venv").arg(&venv))? {
            bail!(
                "`python3 -m venv {}` failed even after installing python3-venv",
                venv.display()
            );
        }
    }
    let pip_ok = run_quietly(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(&requirements),
    )?;
    if !pip_ok {
        bail!(
            "installing {} into {} failed; PyPI must be reachable (or set PIP_INDEX_URL to a mirror)",
            requirements.display(),
            venv.display()
        );
    }
    std::fs::write(&stamp, &wanted).with_context(|| format!("writing {}", stamp.display()))?;
    Ok(python)
}

/// Runs `command` with its output on stderr; `false` when it failed.
fn run_quietly(command: &mut Command) -> anyhow::Result<bool> {
    let shown = format!("{command:?}");
    let status = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .with_context(|| format!("cannot start {shown}; is python3 installed?"))?;
    Ok(status.success())
}

/// Debian's python3 needs the python3-venv package for `python3 -m venv`.
fn install_venv_module() -> anyhow::Result<()> {
    eprintln!("xtask: `python3 -m venv` is unavailable; installing python3-venv with apt-get");
    let installed = Command::new("sh")
        .args([
            "-c",
            "apt-get update -qq && apt-get install -y -qq python3-venv",
        ])
        .stdin(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !installed {
        bail!(
            "python3 cannot create virtual environments and python3-venv could not be installed; \
             install it (`apt-get install python3-venv`) or another python3 with the venv module"
        );
    }
    Ok(())
}
