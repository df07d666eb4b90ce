//! Runs a per-post fold over a `created_at` range on every core: the range is split into
//! parts (see `posts_store::read::ReadPool::plan_scan`), each part is scanned on its own
//! pooled connection by a rayon worker into its own accumulator, and the accumulators are
//! merged. Memory stays bounded by the accumulators; rows are only ever borrowed.

use std::ops::ControlFlow;

use posts_store::read::{CreatedAtRange, PostRow, ReadPool};
use rayon::prelude::*;

use super::cancel::CancelToken;
use super::error::TasksError;

/// Parts per thread: more parts than threads evens out parts that turn out slower.
const PARTS_PER_THREAD: usize = 4;

/// How many rows pass between two looks at the cancel flag.
const CANCEL_CHECK_EVERY: u64 = 512;

/// What a parallel scan produced.
pub struct Folded<S> {
    /// The merged accumulator.
    pub state: S,
    /// Posts in the range.
    pub rows: u64,
}

/// Folds every post of `range` into accumulators made by `init` with `visit`, in parallel,
/// and merges them with `merge`.
pub fn fold_range<S, I, V, M>(
    pool: &ReadPool,
    cancel: &CancelToken,
    range: &CreatedAtRange,
    init: I,
    visit: V,
    merge: M,
) -> Result<Folded<S>, TasksError>
where
    S: Send,
    I: Fn() -> S + Sync,
    V: Fn(&mut S, PostRow<'_>) + Sync,
    M: Fn(S, S) -> S + Sync,
{
    let threads = rayon::current_num_threads();
    let plan = pool.plan_scan(range, threads * PARTS_PER_THREAD)?;
    tracing::debug!(
        strategy = ?plan.strategy(),
        parts = plan.parts().len(),
        "scanning posts in parallel"
    );
    let folded = plan
        .parts()
        .par_iter()
        .map(|part| {
            let conn = pool.get()?;
            let _watch = cancel.watch(&conn);
            let mut state = init();
            let mut rows = 0u64;
            let outcome = part.for_each(&conn, |row| {
                rows += 1;
                if rows.is_multiple_of(CANCEL_CHECK_EVERY) && cancel.is_cancelled() {
                    return ControlFlow::Break(());
                }
                visit(&mut state, row);
                ControlFlow::Continue(())
            })?;
            if outcome.stopped || cancel.is_cancelled() {
                return Err(TasksError::Cancelled);
            }
            Ok(Folded {
                state,
                rows: outcome.rows,
            })
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
