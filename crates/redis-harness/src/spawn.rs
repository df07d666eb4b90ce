//! Starting child processes that die with the test process.
//!
//! `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits, not the
//! process. Test harnesses run each test on its own short-lived thread, so a server that a
//! test thread spawned directly would be killed as soon as that test returned, even though
//! `TestRedis::shared()` hands it to every later test. All spawns therefore go through one
//! thread that lives as long as the process.

use std::io;
use std::process::{Child, Command};
use std::sync::OnceLock;
use std::sync::mpsc;

type Request = (Command, mpsc::Sender<io::Result<Child>>);

static SPAWNER: OnceLock<io::Result<mpsc::Sender<Request>>> = OnceLock::new();

/// Spawns `command` so that it receives SIGKILL when this process ends (on Linux).
pub(crate) fn spawn_tied_to_process(mut command: Command) -> io::Result<Child> {
    tie_to_parent(&mut command);
    let spawner = SPAWNER
        .get_or_init(start_spawner_thread)
        .as_ref()
        .map_err(|e| io::Error::new(e.kind(), e.to_string()))?;
    let (reply_to, reply) = mpsc::channel();
    spawner
        .send((command, reply_to))
        .map_err(|_| io::Error::other("the process-spawning thread has stopped"))?;
    reply
        .recv()
        .map_err(|_| io::Error::other("the process-spawning thread has stopped"))?
}

fn start_spawner_thread() -> io::Result<mpsc::Sender<Request>> {
    let (requests, incoming) = mpsc::channel::<Request>();
    std::thread::Builder::new()
        .name("redis-harness-spawner".into())
        .spawn(move || {
            // The sender lives in a static, so this loop only ends with the process.
            for (mut command, reply_to) in incoming {
                let _ = reply_to.send(command.spawn());
            }
        })?;
    Ok(requests)
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)] // `pre_exec` is the only way to set a parent-death signal on a child.
fn tie_to_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id();
    // SAFETY: the closure runs between fork and exec and only calls async-signal-safe
    // functions (prctl, getppid) without allocating.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died before prctl took effect; then nobody would kill us.
            if libc::getppid() as u32 != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn tie_to_parent(_command: &mut Command) {
    // No parent-death signal outside Linux: servers are stopped on drop and at exit only.
}
