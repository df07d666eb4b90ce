//! Cancellation of a read operation: a flag the scan loops poll, plus SQLite interrupts for
//! the connections the operation is using, so a cancel stops work inside SQLite too.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{Connection, InterruptHandle};

/// Cancels one or more read operations ([`ReadPool::fold_range`](super::ReadPool::fold_range),
/// [`ReadPool::query_json`](super::ReadPool::query_json)). Cloning shares it: a task
/// runner typically calls [`CancelToken::cancel`] from another thread when a time limit
/// fires. Operations given a cancelled token stop with [`ReadError::Cancelled`](super::ReadError::Cancelled).
#[derive(Clone, Default)]
pub struct CancelToken {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    cancelled: AtomicBool,
    next_id: AtomicU64,
    running: Mutex<Vec<(u64, InterruptHandle)>>,
}

impl std::fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelToken")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels: sets the flag and interrupts every SQLite statement running under this token.
    pub fn cancel(&self) {
        self.inner.cancelled.store(true, Ordering::Release);
        for (_, handle) in self.running().iter() {
            handle.interrupt();
        }
    }

    /// Whether [`CancelToken::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::Acquire)
    }

    /// Makes `cancel` interrupt `conn` until the returned guard drops. Drop the guard before
    /// the connection goes back to its pool, or a late cancel could hit another run's query.
    pub(crate) fn watch(&self, conn: &Connection) -> InterruptGuard {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let handle = conn.get_interrupt_handle();
        self.running().push((id, handle));
        // A cancel that ran before the push did not see this connection.
        if self.is_cancelled() {
            conn.get_interrupt_handle().interrupt();
        }
        InterruptGuard {
            token: self.clone(),
            id,
        }
    }

    fn running(&self) -> MutexGuard<'_, Vec<(u64, InterruptHandle)>> {
        self.inner
            .running
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Keeps a connection registered with a [`CancelToken`]; see [`CancelToken::watch`].
pub(crate) struct InterruptGuard {
    token: CancelToken,
    id: u64,
}

impl Drop for InterruptGuard {
    fn drop(&mut self) {
        self.token.running().retain(|(id, _)| *id != self.id);
    }
}
