//! A throwaway local `redis-server` on a free loopback port: its own temporary directory,
//! no persistence unless asked to be durable, killed on drop and when the test process ends.
//! The nodes of the cluster and Sentinel set-ups, sentinels included, are such servers
//! started from a config file in their directory.

use std::fs;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::error::HarnessError;
use crate::ping::answers_ping;
use crate::ports::{PortChoice, free_port};
use crate::spawn::spawn_tied_to_process;
use crate::tls::{TlsFiles, write_throwaway_certificates};

/// The binary to run; `REDIS_SERVER` overrides it for machines where it is not on PATH.
const BINARY_ENV: &str = "REDIS_SERVER";
const DEFAULT_BINARY: &str = "redis-server";
/// Generous because CI machines are slow under load; a healthy server answers in ~10 ms.
const READY_TIMEOUT: Duration = Duration::from_secs(15);
const POLL_INTERVAL: Duration = Duration::from_millis(10);
const PING_TIMEOUT: Duration = Duration::from_millis(250);
/// Another process may take the probed port before redis binds it.
const PORT_ATTEMPTS: usize = 5;

/// Config lines for servers that replicate: a full sync starts at once instead of waiting
/// 5 s for more replicas to join it, and a replica deletes the RDB it received once loaded,
/// so a restarted node never comes back with the data of an earlier sync.
pub(crate) const REPLICATION_CONFIG: [&str; 2] =
    ["repl-diskless-sync-delay 0", "rdb-del-sync-files yes"];

/// How a server differs from the defaults (no password, plain TCP only, nothing kept).
#[derive(Debug, Clone, Default)]
pub(crate) struct ServerOptions {
    /// `requirepass`.
    pub(crate) password: Option<String>,
    /// Also listen with TLS, on a second port, under a throwaway CA, with a server
    /// certificate for these names.
    pub(crate) tls_names: Option<Vec<String>>,
    /// Append every write to an AOF file, fsynced before the reply, so a SIGKILL loses
    /// nothing acknowledged and a restart brings the data back.
    pub(crate) durable: bool,
    /// How the client port is chosen (cluster nodes need their bus port free too).
    pub(crate) ports: PortChoice,
    /// When not empty, the lines of a config file written into the server's directory
    /// before its first start and passed to every start, so that the server (or Sentinel)
    /// can `CONFIG REWRITE` it and comes back from a restart with the role it last had.
    pub(crate) config: Vec<String>,
    /// Run as Redis Sentinel (`redis-server <config> --sentinel`); needs a `config`.
    pub(crate) sentinel: bool,
}

/// A TLS listener: its port and the files it was configured with.
#[derive(Debug, Clone)]
pub(crate) struct TlsListener {
    pub(crate) port: u16,
    pub(crate) files: TlsFiles,
}

/// A running (or killed) `redis-server` this process owns.
#[derive(Debug)]
pub(crate) struct LocalServer {
    port: u16,
    password: Option<String>,
    tls: Option<TlsListener>,
    durable: bool,
    config_file: Option<PathBuf>,
    sentinel: bool,
    dir: TempDir,
    child: Option<Child>,
}

impl LocalServer {
    /// Starts a server on a free port and waits until it answers PING.
    pub(crate) fn start() -> Result<LocalServer, HarnessError> {
        LocalServer::start_with(ServerOptions::default())
    }

    /// Starts a server configured as `options` says, on free ports, and waits until it
    /// answers PING.
    pub(crate) fn start_with(options: ServerOptions) -> Result<LocalServer, HarnessError> {
        let dir = tempfile::Builder::new()
            .prefix("redis-harness-")
            .tempdir()
            .map_err(|e| HarnessError::io("creating a temporary directory for redis-server", e))?;
        let files = match &options.tls_names {
            Some(names) => Some(write_throwaway_certificates(dir.path(), names)?),
            None => None,
        };
        let config_file = if options.config.is_empty() {
            None
        } else {
            let path = dir.path().join(if options.sentinel {
                "sentinel.conf"
            } else {
                "redis.conf"
            });
            fs::write(&path, options.config.join("\n") + "\n")
                .map_err(|e| HarnessError::io("writing the config file of redis-server", e))?;
            Some(path)
        };
        let mut server = LocalServer {
            port: 0,
            password: options.password,
            tls: None,
            durable: options.durable,
            config_file,
            sentinel: options.sentinel,
            dir,
            child: None,
        };
        let mut last_error = None;
        for _ in 0..PORT_ATTEMPTS {
            server.port = options.ports.pick()?;
            if let Some(files) = &files {
                server.tls = Some(TlsListener {
                    port: free_port()?,
                    files: files.clone(),
                });
            }
            match server.launch() {
                Ok(child) => {
                    server.child = Some(child);
                    return Ok(server);
                }
                Err(LaunchError::ExitedEarly(error)) => last_error = Some(error),
                Err(LaunchError::Fatal(error)) => return Err(error),
            }
        }
        Err(last_error.unwrap_or_else(|| HarnessError::NoRedis {
            reason: "redis-server never started".into(),
        }))
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// The `redis://` URL, with the password if the server requires one.
    pub(crate) fn url(&self) -> String {
        format!("redis://{}127.0.0.1:{}/0", self.auth(), self.port)
    }

    /// The `rediss://` URL of the TLS listener, if there is one (host `localhost`, the
    /// name its certificate is for).
    pub(crate) fn tls_url(&self) -> Option<String> {
        let tls = self.tls.as_ref()?;
        Some(format!("rediss://{}localhost:{}/0", self.auth(), tls.port))
    }

    fn auth(&self) -> String {
        self.password
            .as_deref()
            .map(|password| format!(":{password}@"))
            .unwrap_or_default()
    }

    pub(crate) fn tls(&self) -> Option<&TlsListener> {
        self.tls.as_ref()
    }

    /// True from a (re)start until [`kill`](Self::kill); a server that crashed on its own
    /// still counts as running until then.
    pub(crate) fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The last lines of the server's log, for error messages.
    pub(crate) fn log_tail(&self) -> String {
        log_tail(&log_path(self.dir.path(), self.port))
    }

    /// SIGKILLs the server and reaps it; a no-op when it is not running.
    pub(crate) fn kill(&mut self) -> Result<(), HarnessError> {
        if let Some(mut child) = self.child.take() {
            match child.kill() {
                Ok(()) => {}
                // Already exited on its own: reaping below is all that is left to do.
                Err(e) if e.kind() == ErrorKind::InvalidInput => {}
                Err(e) => {
                    self.child = Some(child);
                    return Err(HarnessError::io("killing redis-server", e));
                }
            }
            child
                .wait()
                .map_err(|e| HarnessError::io("waiting for the killed redis-server", e))?;
        }
        Ok(())
    }

    /// Kills the server if it runs, then starts it again on the same port: empty, or with
    /// everything it acknowledged when it is durable.
    pub(crate) fn restart(&mut self) -> Result<(), HarnessError> {
        self.kill()?;
        let child = self.launch().map_err(LaunchError::into_error)?;
        self.child = Some(child);
        Ok(())
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

enum LaunchError {
    /// The server exited before answering, usually because the port was taken.
    ExitedEarly(HarnessError),
    Fatal(HarnessError),
}

impl LaunchError {
    fn into_error(self) -> HarnessError {
        match self {
            LaunchError::ExitedEarly(e) | LaunchError::Fatal(e) => e,
        }
    }
}

fn binary() -> String {
    std::env::var(BINARY_ENV).unwrap_or_else(|_| DEFAULT_BINARY.to_string())
}

impl LocalServer {
    /// Starts redis-server on this server's ports and waits until it answers PING.
    fn launch(&self) -> Result<Child, LaunchError> {
        let (port, dir) = (self.port, self.dir.path());
        let binary = binary();
        let log_file = log_path(dir, port);
        let mut command = Command::new(&binary);
        // The config file comes first: redis-server only takes it as the first argument,
        // and the options after it override what it says.
        if let Some(config_file) = &self.config_file {
            command.arg(config_file);
        }
        if self.sentinel {
            command.arg("--sentinel");
        }
        command
            .arg("--port")
            .arg(port.to_string())
            .args(["--bind", "127.0.0.1", "--save", ""])
            .args(if self.durable {
                ["--appendonly", "yes", "--appendfsync", "always"].as_slice()
            } else {
                ["--appendonly", "no"].as_slice()
            })
            .arg("--dir")
            .arg(dir)
            .arg("--logfile")
            .arg(&log_file);
        if let Some(password) = &self.password {
            command.arg("--requirepass").arg(password);
        }
        if let Some(tls) = &self.tls {
            command
                .arg("--tls-port")
                .arg(tls.port.to_string())
                .arg("--tls-cert-file")
                .arg(&tls.files.certificate)
                .arg("--tls-key-file")
                .arg(&tls.files.key)
                .arg("--tls-ca-cert-file")
                .arg(&tls.files.ca)
                // Clients prove nothing with certificates; the password authenticates them.
                .args(["--tls-auth-clients", "no"]);
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = spawn_tied_to_process(command).map_err(|source| {
            LaunchError::Fatal(if source.kind() == ErrorKind::NotFound {
                HarnessError::NoRedis {
                    reason: format!("`{binary}` was not found on PATH"),
                }
            } else {
                HarnessError::Spawn { binary, source }
            })
        })?;

        let started = Instant::now();
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    return Err(LaunchError::ExitedEarly(HarnessError::NotReady {
                        port,
                        waited: started.elapsed(),
                        detail: format!("it exited with {status}; log: {}", log_tail(&log_file)),
                    }));
                }
                Ok(None) => {}
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(LaunchError::Fatal(HarnessError::io(
                        "checking whether redis-server is still running",
                        e,
                    )));
                }
            }
            if answers_ping(addr, PING_TIMEOUT, self.password.as_deref()) {
                return Ok(child);
            }
            if started.elapsed() > READY_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                return Err(LaunchError::Fatal(HarnessError::NotReady {
                    port,
                    waited: started.elapsed(),
                    detail: format!("no PONG; log: {}", log_tail(&log_file)),
                }));
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }
}

fn log_path(dir: &Path, port: u16) -> PathBuf {
    dir.join(format!("redis-{port}.log"))
}

/// The last lines of the server log, for error messages.
fn log_tail(path: &Path) -> String {
    const MAX: usize = 800;
    match fs::read_to_string(path) {
        Ok(text) => {
            let text = text.trim_end();
            let start = text
                .char_indices()
                .map(|(i, _)| i)
                .find(|&i| text.len() - i <= MAX)
                .unwrap_or(text.len());
            text[start..].to_string()
        }
        Err(e) => format!("(no log at {}: {e})", path.display()),
    }
}
