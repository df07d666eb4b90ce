//! A `redis:7` container through testcontainers, used only when a Docker engine answers.
//!
//! The engine check is a single `GET /_ping` with short timeouts, so machines without
//! Docker (like CI here) fall through to the local `redis-server` at once instead of
//! waiting for testcontainers to give up.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use testcontainers::core::{IntoContainerPort, WaitFor};
use testcontainers::runners::SyncRunner;
use testcontainers::{Container, GenericImage, ImageExt};

use crate::error::HarnessError;

const DEFAULT_SOCKET: &str = "/var/run/docker.sock";
const CHECK_TIMEOUT: Duration = Duration::from_millis(500);
const STARTUP_TIMEOUT: Duration = Duration::from_secs(120);
const REDIS_PORT: u16 = 6379;

/// True when the engine at `DOCKER_HOST` (or the default socket) answers `/_ping`.
pub(crate) fn engine_answers() -> bool {
    let host = std::env::var("DOCKER_HOST").unwrap_or_default();
    if host.is_empty() {
        return unix_ping(DEFAULT_SOCKET);
    }
    if let Some(path) = host.strip_prefix("unix://") {
        unix_ping(path)
    } else if let Some(address) = host.strip_prefix("tcp://") {
        tcp_ping(address)
    } else {
        // ssh://, npipe:// and the like: let testcontainers decide rather than guess.
        true
    }
}

fn unix_ping(path: &str) -> bool {
    UnixStream::connect(path).is_ok_and(|mut stream| {
        stream.set_read_timeout(Some(CHECK_TIMEOUT)).is_ok()
            && stream.set_write_timeout(Some(CHECK_TIMEOUT)).is_ok()
            && http_ping(&mut stream)
    })
}

fn tcp_ping(address: &str) -> bool {
    let address = address.trim_end_matches('/');
    let Some(addr) = address.to_socket_addrs().ok().and_then(|mut a| a.next()) else {
        return false;
    };
    TcpStream::connect_timeout(&addr, CHECK_TIMEOUT).is_ok_and(|mut stream| {
        stream.set_read_timeout(Some(CHECK_TIMEOUT)).is_ok()
            && stream.set_write_timeout(Some(CHECK_TIMEOUT)).is_ok()
            && http_ping(&mut stream)
    })
}

/// The Docker API answers `GET /_ping` with a 200 and body `OK`.
fn http_ping(stream: &mut (impl Read + Write)) -> bool {
    if stream
        .write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut response = Vec::new();
    let mut chunk = [0u8; 512];
    while response.len() < 4096 {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => response.extend_from_slice(&chunk[..n]),
        }
    }
    response.starts_with(b"HTTP/1.") && response.windows(4).any(|w| w == b" 200")
}

/// Starts `redis:7` and returns the container (removed on drop) and its `redis://` URL.
pub(crate) fn start_redis_container() -> Result<(Container<GenericImage>, String), HarnessError> {
    let container = GenericImage::new("redis", "7")
        .with_exposed_port(REDIS_PORT.tcp())
        .with_wait_for(WaitFor::message_on_stdout("Ready to accept connections"))
        .with_cmd(["redis-server", "--save", "", "--appendonly", "no"])
        .with_startup_timeout(STARTUP_TIMEOUT)
        .start()
        .map_err(|e| HarnessError::Container(e.to_string()))?;
    let host = container
        .get_host()
        .map_err(|e| HarnessError::Container(e.to_string()))?;
    let port = container
        .get_host_port_ipv4(REDIS_PORT.tcp())
        .map_err(|e| HarnessError::Container(e.to_string()))?;
    Ok((container, format!("redis://{host}:{port}/0")))
}
