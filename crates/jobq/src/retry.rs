//! Per-task retry policies: how many retries, exponential backoff with jitter, and which
//! failure kinds are worth retrying.

use std::time::Duration;

use rand::Rng;

use crate::task::TaskError;

/// When and how often a failed run is retried.
///
/// Failures that a retry cannot fix (`InvalidArguments`, `UnknownTask`, `ResultTooLarge`,
/// `MalformedMessage`) are never retried.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    max_retries: u32,
    base_delay: Duration,
    max_delay: Duration,
    jitter: bool,
    retry_on: Option<Vec<String>>,
}

impl RetryPolicy {
    /// No retries: the first failure is final.
    pub fn none() -> Self {
        Self {
            max_retries: 0,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(600),
            jitter: true,
            retry_on: None,
        }
    }

    /// Up to `max_retries` retries; retry `n` (0-based) waits `base_delay * 2^n`, capped at
    /// ten minutes, with full jitter (a random delay between half and all of it).
    pub fn exponential(max_retries: u32, base_delay: Duration) -> Self {
        Self {
            max_retries,
            base_delay,
            ..Self::none()
        }
    }

    /// Caps the backoff delay.
    pub fn max_delay(mut self, max_delay: Duration) -> Self {
        self.max_delay = max_delay;
        self
    }

    /// Turns jitter off (exact exponential delays).
    pub fn without_jitter(mut self) -> Self {
        self.jitter = false;
        self
    }

    /// Retries only failures of these kinds (default: every retryable kind).
    pub fn retry_on<I, S>(mut self, kinds: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.retry_on = Some(kinds.into_iter().map(Into::into).collect());
        self
    }

    /// The number of retries after the first run.
    pub fn max_retries(&self) -> u32 {
        self.max_retries
    }

    /// Whether a failure of `kind` on run `attempt` (0-based) is retried, given the job's
    /// retry budget `max_retries`.
    pub(crate) fn should_retry(&self, kind: &str, attempt: u32, max_retries: u32) -> bool {
        const NEVER: [&str; 4] = [
            TaskError::INVALID_ARGUMENTS,
            TaskError::UNKNOWN_TASK,
            TaskError::RESULT_TOO_LARGE,
            TaskError::MALFORMED_MESSAGE,
        ];
        if attempt >= max_retries || NEVER.contains(&kind) {
            return false;
        }
        match &self.retry_on {
            Some(kinds) => kinds.iter().any(|k| k == kind),
            None => true,
        }
    }

    /// The delay before retry number `attempt` (0-based).
    pub(crate) fn delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.min(31));
        let full = self
            .base_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay);
        if self.jitter && !full.is_zero() {
            let half = full / 2;
            let spread = (full - half).as_micros() as u64;
            half + Duration::from_micros(rand::rng().random_range(0..=spread))
        } else {
            full
        }
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_exponentially_and_are_capped() {
        let p = RetryPolicy::exponential(10, Duration::from_millis(100))
            .max_delay(Duration::from_secs(1))
            .without_jitter();
        assert_eq!(p.delay(0), Duration::from_millis(100));
        assert_eq!(p.delay(2), Duration::from_millis(400));
        assert_eq!(p.delay(9), Duration::from_secs(1));
        let j = RetryPolicy::exponential(10, Duration::from_millis(100));
        for _ in 0..50 {
            let d = j.delay(1);
            assert!(d >= Duration::from_millis(100) && d <= Duration::from_millis(200));
        }
    }

    #[test]
    fn only_retryable_kinds_within_budget_retry() {
        let p = RetryPolicy::exponential(2, Duration::from_millis(1)).retry_on(["Flaky"]);
        assert!(p.should_retry("Flaky", 0, 2));
        assert!(p.should_retry("Flaky", 1, 2));
        assert!(!p.should_retry("Flaky", 2, 2));
        assert!(!p.should_retry("Other", 0, 2));
        let any = RetryPolicy::exponential(2, Duration::from_millis(1));
        assert!(!any.should_retry(TaskError::INVALID_ARGUMENTS, 0, 2));
    }
}
