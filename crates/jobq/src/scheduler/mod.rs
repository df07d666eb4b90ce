//! Interval and cron schedules persisted in Redis (written by the infra helper; this file only
//! lets the crate build until theirs lands).
