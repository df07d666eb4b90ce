//! A minimal RESP PING over a plain TCP stream: enough to tell whether a server answers,
//! without pulling a Redis client into every test binary.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// `PING` as a RESP array of one bulk string.
const PING: &[u8] = b"*1\r\n$4\r\nPING\r\n";

/// True when a Redis at `addr` replies `+PONG` within `timeout` (per connect/read/write).
pub(crate) fn answers_ping(addr: SocketAddr, timeout: Duration) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, timeout) else {
        return false;
    };
    if stream.set_read_timeout(Some(timeout)).is_err()
        || stream.set_write_timeout(Some(timeout)).is_err()
        || stream.write_all(PING).is_err()
    {
        return false;
    }
    // "+PONG\r\n" is 7 bytes; a server still loading answers "-LOADING ..." instead.
    let mut reply = [0u8; 7];
    let mut filled = 0;
    while filled < reply.len() {
        match stream.read(&mut reply[filled..]) {
            Ok(0) | Err(_) => return false,
            Ok(n) => filled += n,
        }
    }
    &reply == b"+PONG\r\n"
}
