//! Locking shared state that every update leaves consistent.

use std::sync::{Mutex, MutexGuard};

/// Locks `mutex`, taking it over even if a panicking holder poisoned it: every lock in
/// this crate guards state that each update leaves consistent, so the data stays usable.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
