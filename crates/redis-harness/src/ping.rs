//! A minimal RESP PING over a plain TCP stream: enough to tell whether a server answers,
//! without pulling a Redis client into every test binary.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// `PING` as a RESP array of one bulk string.
const PING: &[u8] = b"*1\r\n$4\r\nPING\r\n";

/// True when a Redis at `addr` replies `+PONG` within `timeout` (per connect/read/write),
/// after authenticating with `password` when one is given.
pub(crate) fn answers_ping(addr: SocketAddr, timeout: Duration, password: Option<&str>) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, timeout) else {
        return false;
    };
    if stream.set_read_timeout(Some(timeout)).is_err()
        || stream.set_write_timeout(Some(timeout)).is_err()
    {
        return false;
    }
    let mut request = Vec::new();
    let mut expected = Vec::new();
    if let Some(password) = password {
        request.extend_from_slice(
            format!("*2\r\n$4\r\nAUTH\r\n${}\r\n{password}\r\n", password.len()).as_bytes(),
        );
        expected.extend_from_slice(b"+OK\r\n");
    }
    request.extend_from_slice(PING);
    // A server still loading answers "-LOADING ..." instead.
    expected.extend_from_slice(b"+PONG\r\n");
    if stream.write_all(&request).is_err() {
        return false;
    }
    let mut reply = vec![0u8; expected.len()];
    let mut filled = 0;
    while filled < reply.len() {
        match stream.read(&mut reply[filled..]) {
            Ok(0) | Err(_) => return false,
            Ok(n) => filled += n,
        }
    }
    reply == expected
}
