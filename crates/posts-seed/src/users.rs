//! The user-pool simulation of `--users N`: every simulated user reads one platform,
//! gets a share of that platform's items in proportion to their activity, and reads it
//! in sessions with synthetic timestamps in chronological order ending near now. Each
//! sample item is shown exactly once.

use std::collections::BTreeMap;

use posts_model::{ContentItem, Platform, Timestamp};
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::SeedError;
use crate::identity::UserIdentity;

/// One class of users: how active they are relative to the base session rate, and what
/// share of the pool they make up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ActivityClass {
    /// Multiplier of `sessions_per_day` (e.g. `0.2` for occasional users).
    pub multiplier: f64,
    /// Relative share of users in this class (e.g. a percentage).
    pub share: f64,
}

/// How to simulate the user pool.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct UserPoolOptions {
    /// Number of simulated users.
    pub users: u32,
    /// Sessions per day of a user with activity multiplier 1.
    pub sessions_per_day: f64,
    /// Items shown per session.
    pub items_per_session: u32,
    /// Activity classes (`--activity-distribution`).
    pub activity: Vec<ActivityClass>,
    /// Relative weight of each platform among users; `None`: proportional to the items
    /// available per platform.
    pub platforms: Option<Vec<(Platform, f64)>>,
    /// Seed of the random choices.
    pub seed: u64,
}

/// The default `--activity-distribution`: 20% occasional (0.2×), 65% regular (1×),
/// 15% heavy (5×) users.
pub const DEFAULT_ACTIVITY: &str = "0.2:20,1:65,5:15";

impl UserPoolOptions {
    /// `users` users with the defaults: 2 sessions a day, 20 items per session,
    /// [`DEFAULT_ACTIVITY`], platforms in proportion to items, seed 42.
    pub fn new(users: u32) -> Self {
        UserPoolOptions {
            users,
            sessions_per_day: 2.0,
            items_per_session: 20,
            activity: vec![
                ActivityClass {
                    multiplier: 0.2,
                    share: 20.0,
                },
                ActivityClass {
                    multiplier: 1.0,
                    share: 65.0,
                },
                ActivityClass {
                    multiplier: 5.0,
                    share: 15.0,
                },
            ],
            platforms: None,
            seed: 42,
        }
    }

    /// Checks the options, naming the offending one.
    pub fn validate(&self) -> Result<(), SeedError> {
        let invalid = |name, reason: &str| {
            Err(SeedError::InvalidOption {
                name,
                reason: reason.to_owned(),
            })
        };
        if self.users == 0 {
            return invalid("--users", "must be at least 1");
        }
        if !(self.sessions_per_day.is_finite() && self.sessions_per_day > 0.0) {
            return invalid("--sessions-per-day", "must be a positive number");
        }
        if self.items_per_session == 0 {
            return invalid("--items-per-session", "must be at least 1");
        }
        let bad_class = self.activity.iter().any(|c| {
            !(c.multiplier.is_finite()
                && c.multiplier > 0.0
                && c.share.is_finite()
                && c.share >= 0.0)
        });
        if self.activity.is_empty() || bad_class || self.activity.iter().all(|c| c.share == 0.0) {
            return invalid(
                "--activity-distribution",
                "needs multiplier:share pairs with positive multipliers and a positive total share",
            );
        }
        if let Some(platforms) = &self.platforms {
            let bad = platforms.iter().any(|(_, w)| !(w.is_finite() && *w >= 0.0));
            if platforms.is_empty() || bad || platforms.iter().all(|(_, w)| *w == 0.0) {
                return invalid(
                    "--platform-distribution",
                    "needs platform:weight pairs with non-negative weights and a positive total",
                );
            }
        }
        Ok(())
    }
}

/// Parses `--activity-distribution`, e.g. `0.2:20,1:65,5:15` (multiplier:share).
pub fn parse_activity_distribution(text: &str) -> Result<Vec<ActivityClass>, SeedError> {
    pairs(text, "--activity-distribution", |key| {
        key.parse::<f64>()
            .ok()
            .filter(|m| m.is_finite() && *m > 0.0)
            .ok_or_else(|| format!("{key:?} is not a positive activity multiplier"))
    })
    .map(|pairs| {
        pairs
            .into_iter()
            .map(|(multiplier, share)| ActivityClass { multiplier, share })
            .collect()
    })
}

/// Parses `--platform-distribution`, e.g. `facebook:11,reddit:7.4,twitter:1.25`.
pub fn parse_platform_distribution(text: &str) -> Result<Vec<(Platform, f64)>, SeedError> {
    pairs(text, "--platform-distribution", |key| {
        key.parse::<Platform>()
            .map_err(|_| format!("{key:?} is not a platform (facebook, reddit or twitter)"))
    })
}

fn pairs<K>(
    text: &str,
    name: &'static str,
    key: impl Fn(&str) -> Result<K, String>,
) -> Result<Vec<(K, f64)>, SeedError> {
    let invalid = |reason: String| SeedError::InvalidOption { name, reason };
    text.split(',')
        .map(|pair| {
            let (k, w) = pair
                .split_once(':')
                .ok_or_else(|| invalid(format!("{pair:?} is not of the form key:weight")))?;
            let weight = w
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|w| w.is_finite() && *w >= 0.0)
                .ok_or_else(|| invalid(format!("{w:?} is not a non-negative weight")))?;
            Ok((key(k.trim()).map_err(invalid)?, weight))
        })
        .collect()
}

/// Splits `total` into whole parts proportional to `weights` (largest remainder, ties
/// to the earlier weight), so the parts always add up to `total`.
pub(crate) fn apportion(total: u64, weights: &[f64]) -> Vec<u64> {
    let sum: f64 = weights.iter().sum();
    if sum <= 0.0 || weights.is_empty() {
        return vec![0; weights.len()];
    }
    let exact: Vec<f64> = weights.iter().map(|w| total as f64 * w / sum).collect();
    let mut parts: Vec<u64> = exact.iter().map(|e| e.floor() as u64).collect();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|&a, &b| {
        let (ra, rb) = (exact[a] - exact[a].floor(), exact[b] - exact[b].floor());
        rb.total_cmp(&ra).then(a.cmp(&b))
    });
    let assigned: u64 = parts.iter().sum();
    for &i in order
        .iter()
        .cycle()
        .take(total.saturating_sub(assigned) as usize)
    {
        parts[i] += 1;
    }
    parts
}

/// Where one item goes: which user saw it in which session.
pub(crate) struct Placement {
    pub platform: Platform,
    /// Index into that platform's items.
    pub index: usize,
    pub user_id: String,
    pub session_time: Timestamp,
}

/// The simulated pool's rows, in user and session order.
pub(crate) struct Plan {
    pub rows: Vec<Placement>,
    pub users: u64,
    pub sessions: u64,
    /// Items of platforms that got no user.
    pub unused: BTreeMap<Platform, u64>,
}

/// Spreads `items` over the simulated users.
pub(crate) fn plan(
    items: &BTreeMap<Platform, Vec<ContentItem>>,
    options: &UserPoolOptions,
    salt: &str,
    now: Timestamp,
) -> Result<Plan, SeedError> {
    options.validate()?;
    let available = |p: &Platform| items.get(p).map_or(0, Vec::len);
    let weights: Vec<(Platform, f64)> = match &options.platforms {
        Some(given) => given.clone(),
        None => Platform::ALL
            .iter()
            .map(|p| (*p, available(p) as f64))
            .collect(),
    };
    let user_counts = apportion(
        u64::from(options.users),
        &weights.iter().map(|(_, w)| *w).collect::<Vec<_>>(),
    );
    let shares: Vec<f64> = options.activity.iter().map(|c| c.share).collect();
    let mut rng = SmallRng::seed_from_u64(options.seed);
    let mut plan = Plan {
        rows: Vec::new(),
        users: 0,
        sessions: 0,
        unused: BTreeMap::new(),
    };
    let mut user_number = 0u64;
    let per_session = options.items_per_session as usize;
    for ((platform, _), users) in weights.iter().zip(user_counts) {
        let pool = items.get(platform).map(Vec::as_slice).unwrap_or_default();
        if users == 0 {
            if !pool.is_empty() {
                *plan.unused.entry(*platform).or_default() += pool.len() as u64;
            }
            continue;
        }
        let mut multipliers: Vec<f64> = apportion(users, &shares)
            .into_iter()
            .zip(&options.activity)
            .flat_map(|(n, class)| std::iter::repeat_n(class.multiplier, n as usize))
            .collect();
        multipliers.shuffle(&mut rng);
        let item_counts = apportion(pool.len() as u64, &multipliers);
        let mut order: Vec<usize> = (0..pool.len()).collect();
        order.shuffle(&mut rng);
        let mut taken = 0usize;
        for (multiplier, count) in multipliers.iter().zip(item_counts) {
            user_number += 1;
            plan.users += 1;
            let user = UserIdentity::derive(&format!("sim_user_{user_number:05}"), salt);
            let mut feed = order[taken..taken + count as usize].to_vec();
            taken += count as usize;
            feed.sort_by(|&a, &b| {
                (pool[a].created_at, &pool[a].id).cmp(&(pool[b].created_at, &pool[b].id))
            });
            let sessions = feed.len().div_ceil(per_session);
            plan.sessions += sessions as u64;
            let interval = 86_400.0 / (options.sessions_per_day * multiplier);
            let end = rng.random_range(0.0..interval / 4.0);
            for (j, chunk) in feed.chunks(per_session).enumerate() {
                let back = (sessions - 1 - j) as f64 * interval;
                // Jitter under half an interval keeps sessions in chronological order.
                let jitter = if j + 1 == sessions {
                    0.0
                } else {
                    rng.random_range(-0.2..0.2) * interval
                };
                let offset = (end + back - jitter).round() as i64;
                let session_time = now.plus_seconds(-offset).ok_or(SeedError::InvalidOption {
                    name: "--sessions-per-day",
                    reason: "sessions would reach before the representable time range".to_owned(),
                })?;
                plan.rows.extend(chunk.iter().map(|&index| Placement {
                    platform: *platform,
                    index,
                    user_id: user.user_id.clone(),
                    session_time,
                }));
            }
        }
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apportion_adds_up_and_follows_weights() {
        assert_eq!(apportion(10, &[1.0, 1.0, 1.0]), vec![4, 3, 3]);
        assert_eq!(apportion(100, &[20.0, 65.0, 15.0]), vec![20, 65, 15]);
        assert_eq!(apportion(7, &[0.0, 2.0]), vec![0, 7]);
        assert_eq!(apportion(5, &[0.0, 0.0]), vec![0, 0]);
        assert_eq!(
            apportion(3, &[0.5, 0.25, 0.25, 1e-9]).iter().sum::<u64>(),
            3
        );
    }

    #[test]
    fn distributions_parse_and_reject_nonsense() {
        let activity = parse_activity_distribution("0.2:20, 1:65,5:15");
        assert_eq!(activity.map(|a| a.len()).ok(), Some(3));
        let platforms = parse_platform_distribution("facebook:11,reddit:7.4,twitter:1.25");
        assert_eq!(
            platforms.ok(),
            Some(vec![
                (Platform::Facebook, 11.0),
                (Platform::Reddit, 7.4),
                (Platform::Twitter, 1.25)
            ])
        );
        assert!(parse_platform_distribution("myspace:1").is_err());
        assert!(parse_activity_distribution("0:10").is_err());
        assert!(parse_activity_distribution("1-10").is_err());
        assert!(parse_activity_distribution("1:-3").is_err());
    }
}
