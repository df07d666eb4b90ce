//! Runs a caller's per-post fold over a `created_at` range on every core: the range is
//! planned into parts, rayon workers each borrow one pooled connection and pull parts
//! until none are left, folding into their own accumulator, and the accumulators are
//! merged. Memory stays bounded by the accumulators; rows are only ever borrowed.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;

use super::cancel::CancelToken;
use super::error::ReadError;
use super::pool::ReadPool;
use super::scan::{CreatedAtRange, ScanPart, ScannedPost};

/// Parts per thread: more parts than threads evens out parts that turn out slower.
const PARTS_PER_THREAD: usize = 4;

/// How many rows pass between two looks at the cancel flag. SQLite is interrupted as
/// well; the flag covers time spent in the caller's fold between steps.
const CANCEL_CHECK_EVERY: u64 = 512;

/// What a parallel fold produced.
#[derive(Debug)]
#[non_exhaustive]
pub struct Folded<S> {
    /// The merged accumulator.
    pub state: S,
    /// Posts in the range, all of them seen by the fold.
    pub rows: u64,
}

impl ReadPool {
    /// Folds every post with `range.from() <= created_at <= range.to()` into
    /// accumulators made by `init`, with `visit`, in parallel on rayon's global pool, and
    /// merges them with `merge` (in no particular order). An empty range gives `init()`.
    ///
    /// A fold borrows at most one connection per rayon thread (plus one, briefly, to plan),
    /// however many parts the range is cut into, so concurrent folds share the pool
    /// without starving each other. `cancel` stops the fold within a few hundred rows,
    /// including inside SQLite.
    ///
    /// # Errors
    /// [`ReadError::Cancelled`] when `cancel` fired; [`ReadError::Schema`] when `posts`
    /// lacks a column readers need; [`ReadError::NoConnection`], [`ReadError::Sqlite`] or
    /// [`ReadError::InvalidText`] otherwise.
    pub fn fold_range<S, I, V, M>(
        &self,
        range: &CreatedAtRange,
        cancel: &CancelToken,
        init: I,
        visit: V,
        merge: M,
    ) -> Result<Folded<S>, ReadError>
    where
        S: Send,
        I: Fn() -> S + Sync,
        V: Fn(&mut S, ScannedPost<'_>) + Sync,
        M: Fn(S, S) -> S + Sync,
    {
        if cancel.is_cancelled() {
            return Err(ReadError::Cancelled);
        }
        let threads = rayon::current_num_threads();
        let plan = self.plan_scan(range, threads * PARTS_PER_THREAD)?;
        let parts = plan.parts();
        tracing::debug!(
            strategy = ?plan.strategy(),
            parts = parts.len(),
            "scanning posts in parallel"
        );
        let next = AtomicUsize::new(0);
        let claim = || parts.get(next.fetch_add(1, Ordering::Relaxed));
        let folded = (0..threads.min(parts.len()))
            .into_par_iter()
            .map(|_| {
                let mut folded = Folded {
                    state: init(),
                    rows: 0,
                };
                // A worker that starts after every part is taken needs no connection.
                let Some(first) = claim() else {
                    return Ok(folded);
                };
                let conn = self.get()?;
                // Declared after `conn`, so dropped first: the connection leaves the token
                // before it goes back to the pool.
                let _watch = cancel.watch(&conn);
                let mut part = Some(first);
                while let Some(current) = part {
                    folded.rows += fold_part(current, &conn, cancel, &mut folded.state, &visit)?;
                    part = claim();
                }
                Ok(folded)
            })
            .try_reduce_with(|a, b| {
                Ok(Folded {
                    state: merge(a.state, b.state),
                    rows: a.rows + b.rows,
                })
            });
        match folded {
            Some(result) => result,
            None => Ok(Folded {
                state: init(),
                rows: 0,
            }),
        }
    }
}

/// Folds one part's rows into `state`; returns how many there were.
fn fold_part<S, V>(
    part: &ScanPart,
    conn: &rusqlite::Connection,
    cancel: &CancelToken,
    state: &mut S,
    visit: &V,
) -> Result<u64, ReadError>
where
    V: Fn(&mut S, ScannedPost<'_>),
{
    let mut rows = 0u64;
    let outcome = part.for_each(conn, |row| {
        rows += 1;
        if rows.is_multiple_of(CANCEL_CHECK_EVERY) && cancel.is_cancelled() {
            return ControlFlow::Break(());
        }
        visit(state, row);
        ControlFlow::Continue(())
    })?;
    if outcome.stopped || cancel.is_cancelled() {
        return Err(ReadError::Cancelled);
    }
    Ok(outcome.rows)
}
