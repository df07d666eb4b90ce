//! Admin commands to the nodes of the harness's cluster and Sentinel set-ups, and the
//! polling loop that waits for them to converge.
//!
//! Every command opens a fresh short-lived connection through the synchronous `redis`
//! client: nodes are killed and restarted under the tests' feet, and a connection that
//! outlived its node would only turn into confusing errors later.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use redis::{ConnectionInfo, FromRedisValue, IntoConnectionInfo, RedisConnectionInfo};

use crate::error::HarnessError;

/// For connecting, each read and each write; a healthy local node answers in a few ms.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// Between two looks at a converging set-up.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Sends `args` to the node on `127.0.0.1:port` and converts the reply to `T`.
pub(crate) fn query<T: FromRedisValue>(port: u16, args: &[&str]) -> Result<T, HarnessError> {
    let failed = |source| HarnessError::NodeCommand {
        port,
        command: args.join(" "),
        source,
    };
    let (name, rest) = args
        .split_first()
        .ok_or_else(|| HarnessError::UnexpectedReply {
            port,
            command: String::new(),
            reply: "(no command was given)".into(),
        })?;
    let mut command = redis::cmd(name);
    for arg in rest {
        command.arg(*arg);
    }
    let client = redis::Client::open(connection_info(port).map_err(failed)?).map_err(failed)?;
    let mut connection = client
        .get_connection_with_timeout(COMMAND_TIMEOUT)
        .map_err(failed)?;
    connection
        .set_read_timeout(Some(COMMAND_TIMEOUT))
        .map_err(failed)?;
    connection
        .set_write_timeout(Some(COMMAND_TIMEOUT))
        .map_err(failed)?;
    command.query(&mut connection).map_err(failed)
}

/// Plain RESP2 to a loopback port, without `CLIENT SETINFO` (which Sentinel and Redis
/// before 7.2 do not know).
fn connection_info(port: u16) -> redis::RedisResult<ConnectionInfo> {
    Ok(("127.0.0.1", port)
        .into_connection_info()?
        .set_redis_settings(RedisConnectionInfo::default().set_skip_set_lib_name()))
}

/// The `field:value` lines of an `INFO` or `CLUSTER INFO` reply.
pub(crate) fn info_fields(text: &str) -> HashMap<&str, &str> {
    text.lines()
        .filter_map(|line| line.trim_end().split_once(':'))
        .collect()
}

/// Calls `look` until it returns `Ok` or `within` has passed; then returns the time
/// waited and the last state `look` described.
pub(crate) fn poll_until<T>(
    within: Duration,
    mut look: impl FnMut() -> Result<T, String>,
) -> Result<T, (Duration, String)> {
    let started = Instant::now();
    loop {
        match look() {
            Ok(value) => return Ok(value),
            Err(state) if started.elapsed() >= within => return Err((started.elapsed(), state)),
            Err(_) => std::thread::sleep(POLL_INTERVAL),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_fields_splits_at_the_first_colon_and_skips_headers() {
        let fields = info_fields("# Replication\r\nrole:slave\r\nslave0:ip=127.0.0.1,port=7\r\n");
        assert_eq!(fields.get("role"), Some(&"slave"));
        assert_eq!(fields.get("slave0"), Some(&"ip=127.0.0.1,port=7"));
        assert_eq!(fields.len(), 2);
    }

    #[test]
    fn poll_until_returns_the_first_success_or_the_last_state() {
        let mut calls = 0;
        let found = poll_until(Duration::from_secs(5), || {
            calls += 1;
            if calls == 3 {
                Ok(calls)
            } else {
                Err(format!("call {calls}"))
            }
        });
        assert_eq!(found, Ok(3));
        let (waited, state) =
            poll_until::<()>(Duration::ZERO, || Err("never".into())).expect_err("cannot succeed");
        assert_eq!(state, "never");
        assert!(waited < Duration::from_secs(5));
    }

    #[test]
    fn a_refused_connection_is_a_node_command_error_naming_port_and_command() {
        let port = crate::ports::free_port().expect("a free port");
        let error = query::<String>(port, &["CLUSTER", "INFO"]).expect_err("nothing listens");
        assert!(
            matches!(&error, HarnessError::NodeCommand { port: p, command, .. }
                if *p == port && command == "CLUSTER INFO"),
            "{error}"
        );
    }
}
