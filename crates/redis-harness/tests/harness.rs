//! The harness against real `redis-server` processes: start, PING, kill, restart, data
//! not persisted, servers dying with their process, unique namespaces and the "no Redis"
//! message.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use redis_harness::{HarnessError, OwnedRedis, TestRedis, unique_namespace};

/// Set in the environment of this test binary when it is re-run as a helper process.
const HELPER_ENV: &str = "REDIS_HARNESS_TEST_HELPER";

/// `host:port` out of a `redis://host:port/db` URL.
fn address(url: &str) -> String {
    let rest = url
        .strip_prefix("redis://")
        .expect("harness URLs are redis://");
    rest.split('/').next().unwrap_or(rest).to_string()
}

/// Sends one command as a RESP array and returns the raw reply, or the I/O error.
fn command(url: &str, args: &[&str]) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(address(url))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut request = format!("*{}\r\n", args.len());
    for arg in args {
        request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    stream.write_all(request.as_bytes())?;
    let mut reply = [0u8; 256];
    let n = stream.read(&mut reply)?;
    Ok(String::from_utf8_lossy(&reply[..n]).into_owned())
}

fn pong(url: &str) -> bool {
    command(url, &["PING"]).is_ok_and(|reply| reply == "+PONG\r\n")
}

/// Waits until `url` stops accepting connections, for servers killed asynchronously.
fn gone_within(url: &str, limit: Duration) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if TcpStream::connect(address(url)).is_err() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn owned_redis_answers_ping_on_a_fresh_port() {
    let redis = OwnedRedis::start().expect("start redis-server");
    assert!(
        redis.url().starts_with("redis://127.0.0.1:"),
        "{}",
        redis.url()
    );
    assert_ne!(redis.port(), 6379, "must never use the shared default port");
    assert!(pong(redis.url()));
}

#[test]
fn kill_stops_the_server_and_restart_brings_it_back_empty() {
    let mut redis = OwnedRedis::start().expect("start redis-server");
    let url = redis.url().to_string();
    assert_eq!(command(&url, &["SET", "k", "v"]).expect("SET"), "+OK\r\n");

    redis.kill().expect("kill");
    assert!(
        TcpStream::connect(address(&url)).is_err(),
        "server still listening"
    );
    redis.kill().expect("killing twice is harmless");

    redis.restart().expect("restart");
    assert_eq!(redis.url(), url, "restart keeps the port");
    assert!(pong(&url));
    assert_eq!(
        command(&url, &["GET", "k"]).expect("GET"),
        "$-1\r\n",
        "data persisted"
    );
}

#[test]
fn restart_of_a_running_server_replaces_it() {
    let mut redis = OwnedRedis::start().expect("start redis-server");
    assert_eq!(
        command(redis.url(), &["SET", "k", "v"]).expect("SET"),
        "+OK\r\n"
    );
    redis.restart().expect("restart");
    assert_eq!(command(redis.url(), &["GET", "k"]).expect("GET"), "$-1\r\n");
}

#[test]
fn dropping_owned_redis_stops_the_server() {
    let redis = OwnedRedis::start().expect("start redis-server");
    let url = redis.url().to_string();
    drop(redis);
    assert!(gone_within(&url, Duration::from_secs(5)));
}

#[test]
fn two_owned_servers_get_different_ports() {
    let a = OwnedRedis::start().expect("start a");
    let b = OwnedRedis::start().expect("start b");
    assert_ne!(a.port(), b.port());
    assert!(pong(a.url()) && pong(b.url()));
}

#[test]
fn shared_redis_is_one_instance_and_outlives_the_thread_that_started_it() {
    // The first call happens on a thread that ends right away: a server tied to that
    // thread instead of the process would die with it.
    let first = std::thread::spawn(|| TestRedis::shared().map(|r| r.url().to_string()))
        .join()
        .expect("thread")
        .expect("shared redis");
    std::thread::sleep(Duration::from_millis(200));
    let again = TestRedis::shared().expect("shared redis");
    assert_eq!(again.url(), first);
    assert!(pong(again.url()));
}

#[test]
fn unique_namespaces_do_not_repeat_and_are_key_safe() {
    let names: Vec<String> = (0..1000)
        .map(|_| unique_namespace("jobq tests{}"))
        .collect();
    let distinct: HashSet<&String> = names.iter().collect();
    assert_eq!(distinct.len(), names.len());
    let first = &names[0];
    assert!(first.starts_with("test-jobq-tests---"), "{first}");
    assert!(
        first.contains(&format!("-{}-", std::process::id())),
        "{first}"
    );
    assert!(
        names.iter().all(|n| n
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')),
        "a namespace contains characters unsafe in a hash tag"
    );
}

/// Re-runs this test binary as a helper process running `test_name`.
fn helper(test_name: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("test binary path"));
    command
        .args([
            test_name,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HELPER_ENV, "1");
    command
}

#[test]
fn servers_die_with_the_process_that_started_them() {
    // The killed helper cannot remove its servers' directories; keep them in one we remove.
    let scratch = tempfile::tempdir().expect("scratch directory");
    let mut child = helper("helper_start_servers_and_wait")
        .env_remove("REDIS_URL")
        .env("TMPDIR", scratch.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn helper");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut urls = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("helper output");
        // The test harness may print "test name ... " on the same line first.
        if let Some((_, url)) = line.split_once("URL ") {
            urls.push(url.trim().to_string());
        }
        if urls.len() == 2 {
            break;
        }
    }
    assert_eq!(urls.len(), 2, "helper did not report its servers");
    assert!(urls.iter().all(|u| pong(u)));

    // SIGKILL: no destructor, no exit hook; only the parent-death signal can stop them.
    child.kill().expect("kill helper");
    child.wait().expect("reap helper");
    for url in &urls {
        assert!(
            gone_within(url, Duration::from_secs(5)),
            "{url} outlived its parent"
        );
    }
}

#[test]
#[ignore = "helper process for servers_die_with_the_process_that_started_them"]
fn helper_start_servers_and_wait() {
    if std::env::var_os(HELPER_ENV).is_none() {
        return;
    }
    let shared = TestRedis::shared().expect("shared redis");
    let owned = OwnedRedis::start().expect("owned redis");
    println!("URL {}", shared.url());
    println!("URL {}", owned.url());
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn without_any_redis_the_error_says_how_to_get_one() {
    let output = helper("helper_obtain_without_redis")
        .env_remove("REDIS_URL")
        .env("DOCKER_HOST", "tcp://127.0.0.1:1")
        .env("REDIS_SERVER", "/nonexistent/redis-server")
        .output()
        .expect("run helper");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let message = stdout
        .lines()
        .find_map(|l| l.split_once("ERROR ").map(|(_, message)| message))
        .unwrap_or_else(|| panic!("helper printed no error: {stdout}"));
    for hint in [
        "apt-get install redis-server",
        "REDIS_URL",
        "Docker",
        "/nonexistent/redis-server",
    ] {
        assert!(message.contains(hint), "missing {hint:?} in: {message}");
    }
}

#[test]
#[ignore = "helper process for without_any_redis_the_error_says_how_to_get_one"]
fn helper_obtain_without_redis() {
    if std::env::var_os(HELPER_ENV).is_none() {
        return;
    }
    match TestRedis::obtain() {
        Err(error @ HarnessError::NoRedis { .. }) => println!("ERROR {error}"),
        other => println!("UNEXPECTED {other:?}"),
    }
}

#[test]
fn redis_url_is_used_as_given_without_starting_anything() {
    let output = helper("helper_obtain_with_url")
        .env("REDIS_URL", "redis://example.invalid:1234/3")
        .env("REDIS_SERVER", "/nonexistent/redis-server")
        .output()
        .expect("run helper");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("GOT redis://example.invalid:1234/3 from REDIS_URL"),
        "{stdout}"
    );
}

#[test]
#[ignore = "helper process for redis_url_is_used_as_given_without_starting_anything"]
fn helper_obtain_with_url() {
    if std::env::var_os(HELPER_ENV).is_none() {
        return;
    }
    match TestRedis::obtain() {
        Ok(redis) => println!("GOT {} from {}", redis.url(), redis.source()),
        Err(error) => println!("ERROR {error}"),
    }
}

#[test]
fn a_durable_server_keeps_acknowledged_writes_across_a_sigkill() {
    let mut redis = OwnedRedis::start_durable().expect("start a durable redis-server");
    let url = redis.url().to_string();
    assert_eq!(command(&url, &["SET", "k", "v"]).expect("SET"), "+OK\r\n");
    assert_eq!(
        command(&url, &["RPUSH", "l", "a", "b"]).expect("RPUSH"),
        ":2\r\n"
    );
    redis.kill().expect("kill");
    assert!(
        TcpStream::connect(address(&url)).is_err(),
        "still listening"
    );
    redis.restart().expect("restart");
    assert_eq!(redis.url(), url, "restart keeps the port");
    assert_eq!(command(&url, &["GET", "k"]).expect("GET"), "$1\r\nv\r\n");
    assert_eq!(command(&url, &["LLEN", "l"]).expect("LLEN"), ":2\r\n");
}
