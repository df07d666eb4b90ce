//! `rediss://` URLs with the password in the URL, against a private `redis-server` that
//! requires a password and also listens with TLS, with a certificate from a throwaway CA.
//!
//! The CA is trusted the way an operator trusts a private CA: through `SSL_CERT_FILE`,
//! which the system trust store honours. The environment belongs to the whole process, so
//! the trusting side runs in a child process: this test binary re-executed with
//! [`CHILD_TLS_URL`] set, running the ignored `child_tls_round_trip` or `child_tls_ping`
//! entry point. Trusting some other CA, or the right CA for a certificate issued to another
//! host name, must be refused.

mod common;

use std::process::Command;
use std::time::Duration;

use jobq::{Broker, Client};
use redis_harness::OwnedRedis;

use common::{RunningWorker, fast_config, test_app};

const CHILD_TLS_URL: &str = "JOBQ_TEST_TLS_URL";
const PASSWORD: &str = "tls-test-secret";
/// Printed by the child once its round trip succeeded.
const ROUND_TRIP_DONE: &str = "tls round trip done";
/// Printed by the ping child before the error of a refused connection.
const PING_REFUSED: &str = "PING REFUSED: ";
const WAIT: Duration = Duration::from_secs(20);

fn secured_redis() -> OwnedRedis {
    OwnedRedis::start_secured(PASSWORD).expect("a redis-server with TLS and a password")
}

#[test]
#[ignore = "the child-process side of jobs_round_trip_over_tls_with_the_password_in_the_url"]
fn child_tls_round_trip() {
    let url = std::env::var(CHILD_TLS_URL).expect("started by the TLS round-trip test");
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(async {
        let broker = Broker::redis(&url, "tls").await.expect("connect");
        broker.ping().await.expect("ping over TLS");
        let worker = RunningWorker::start(test_app(), broker.clone(), fast_config());
        let sum: i64 = Client::new(broker)
            .delay("add", (2, 3))
            .await
            .expect("enqueue over TLS")
            .get(WAIT)
            .await
            .expect("the result over TLS");
        assert_eq!(sum, 5);
        worker.stop().await;
    });
    println!("{ROUND_TRIP_DONE}");
}

#[test]
#[ignore = "the child-process side of the refused-certificate tests"]
fn child_tls_ping() {
    let url = std::env::var(CHILD_TLS_URL).expect("started by a TLS test");
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(async {
        let broker = Broker::redis(&url, "tls").await.expect("connect");
        match tokio::time::timeout(WAIT, broker.ping()).await {
            Ok(Ok(())) => println!("PING OK"),
            Ok(Err(error)) => println!("{PING_REFUSED}{error}"),
            Err(_) => println!("PING HUNG"),
        }
    });
}

/// Runs `child` with `SSL_CERT_FILE` pointing at `ca_file` and returns its stdout.
fn run_child(child: &str, url: &str, ca_file: &std::path::Path) -> String {
    let output = Command::new(std::env::current_exe().expect("test binary path"))
        .args([
            "--ignored",
            "--exact",
            child,
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_TLS_URL, url)
        .env("SSL_CERT_FILE", ca_file)
        .env_remove("SSL_CERT_DIR")
        .output()
        .expect("run the child process");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "the child failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The error a refused ping printed, lowercased.
fn refusal(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.split_once(PING_REFUSED).map(|(_, e)| e.to_lowercase()))
        .unwrap_or_else(|| panic!("the connection was not refused:\n{stdout}"))
}

#[test]
fn trusting_a_different_ca_is_refused() {
    let redis = secured_redis();
    let other = secured_redis();
    let url = redis.tls_url().expect("a TLS URL");
    // The control: the server's own CA works, so the refusal below is about the CA.
    let trusted = run_child("child_tls_ping", url, redis.ca_file().expect("a CA file"));
    assert!(trusted.contains("PING OK"), "{trusted}");
    let stdout = run_child("child_tls_ping", url, other.ca_file().expect("a CA file"));
    let error = refusal(&stdout);
    assert!(
        error.contains("pinging redis") && error.contains("certificate"),
        "{error}"
    );
}

#[test]
fn a_certificate_for_another_host_name_is_refused() {
    let redis = OwnedRedis::start_secured_for(PASSWORD, &["redis.elsewhere.test"])
        .expect("a redis-server with TLS");
    let url = redis.tls_url().expect("a TLS URL");
    assert!(url.contains("@localhost:"), "{url}");
    let stdout = run_child("child_tls_ping", url, redis.ca_file().expect("a CA file"));
    let error = refusal(&stdout);
    assert!(
        error.contains("certificate") && (error.contains("name") || error.contains("localhost")),
        "{error}"
    );
}

#[test]
fn jobs_round_trip_over_tls_with_the_password_in_the_url() {
    let redis = secured_redis();
    let url = redis.tls_url().expect("a TLS URL");
    assert!(
        url.starts_with("rediss://:") && url.contains(PASSWORD),
        "{url}"
    );
    let output = Command::new(std::env::current_exe().expect("test binary path"))
        .args([
            "--ignored",
            "--exact",
            "child_tls_round_trip",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_TLS_URL, url)
        .env("SSL_CERT_FILE", redis.ca_file().expect("a CA file"))
        .env_remove("SSL_CERT_DIR")
        .output()
        .expect("run the child process");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains(ROUND_TRIP_DONE),
        "the round trip over TLS failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn a_server_certificate_nobody_trusts_is_refused() {
    let redis = secured_redis();
    // This process was not told to trust the throwaway CA.
    let broker = Broker::redis(redis.tls_url().expect("a TLS URL"), "tls")
        .await
        .expect("connecting is lazy");
    let error = tokio::time::timeout(WAIT, broker.ping())
        .await
        .expect("refused promptly, not hanging")
        .expect_err("an untrusted certificate must be refused");
    let message = error.to_string();
    assert!(
        message.contains("pinging redis") && message.to_lowercase().contains("certificate"),
        "{message}"
    );
}

#[tokio::test]
async fn a_wrong_password_is_a_clear_error() {
    let redis = secured_redis();
    let wrong = redis.url().replace(PASSWORD, "not-the-password");
    assert_ne!(wrong, redis.url());
    let broker = Broker::redis(&wrong, "tls")
        .await
        .expect("connecting is lazy");
    let message = broker
        .ping()
        .await
        .expect_err("a wrong password must be refused")
        .to_string();
    assert!(
        message.contains("pinging redis")
            && message.to_lowercase().contains("authentication failed"),
        "{message}"
    );
    let right = Broker::redis(redis.url(), "tls").await.expect("connect");
    right.ping().await.expect("the right password is accepted");
}
