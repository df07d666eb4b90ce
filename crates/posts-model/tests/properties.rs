//! Property tests: no input makes decoding panic, and valid items survive a round trip.

use posts_model::{
    ContentItem, ContentType, Engagements, FacebookEngagements, OptionalField, RedditEngagements,
    Timestamp, TwitterEngagements,
};
use proptest::prelude::*;
use serde_json::Value;

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
        Just(Value::from("2017-05-31T15:59:28")),
        Just(Value::from("post")),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("id".to_string()),
                    Just("text".to_string()),
                    Just("type".to_string()),
                    Just("created_at".to_string()),
                    Just("engagements".to_string()),
                    Just("like".to_string()),
                    Just("score".to_string()),
                    Just("embedded_urls".to_string()),
                    "[a-z_]{1,8}",
                ],
                inner,
                0..8
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A datetime as the data writes it, and the UTC instant it means (worked out with chrono,
/// not with the parser under test).
#[derive(Debug, Clone)]
struct WrittenDatetime {
    text: String,
    utc: chrono::NaiveDateTime,
}

/// Valid datetimes in every accepted form: space or `T`, a fraction of 0 to 9 digits (cut
/// to microseconds), no offset, `Z`, or `±hh`, `±hhmm`, `±hh:mm`.
fn written_datetime() -> impl Strategy<Value = WrittenDatetime> {
    let offset = prop_oneof![
        Just((String::new(), 0i64)),
        Just(("Z".to_owned(), 0)),
        (any::<bool>(), 0u32..24, 0u32..60, 0usize..3).prop_map(|(east, h, m, style)| {
            let sign = if east { '+' } else { '-' };
            let text = match style {
                0 => format!("{sign}{h:02}"),
                1 => format!("{sign}{h:02}{m:02}"),
                _ => format!("{sign}{h:02}:{m:02}"),
            };
            let minutes = if style == 0 { 0 } else { m };
            let seconds = i64::from(h * 3600 + minutes * 60);
            (text, if east { seconds } else { -seconds })
        }),
    ];
    (
        (1000i32..9999, 1u32..=12, 1u32..=31),
        (0u32..24, 0u32..60, 0u32..60),
        prop_oneof![Just(' '), Just('T')],
        "[0-9]{0,9}",
        offset,
    )
        .prop_map(
            |(
                (year, month, day),
                (hour, minute, second),
                separator,
                fraction,
                (offset, offset_seconds),
            )| {
                // The last valid day of the month at or before `day`.
                let date = (1..=day)
                    .rev()
                    .find_map(|d| chrono::NaiveDate::from_ymd_opt(year, month, d))
                    .expect("day 1 exists in every month");
                let micros: u32 = format!("{fraction:0<6}")[..6].parse().expect("six digits");
                let local = date
                    .and_hms_micro_opt(hour, minute, second, micros)
                    .expect("a valid time of day");
                let dot = if fraction.is_empty() { "" } else { "." };
                WrittenDatetime {
                    text: format!(
                        "{}{separator}{:02}:{:02}:{:02}{dot}{fraction}{offset}",
                        date.format("%Y-%m-%d"),
                        hour,
                        minute,
                        second
                    ),
                    utc: local - chrono::TimeDelta::seconds(offset_seconds),
                }
            },
        )
}

fn optional_string() -> impl Strategy<Value = Option<String>> {
    prop::option::of("\\PC{0,20}")
}

fn engagements() -> impl Strategy<Value = Engagements> {
    prop_oneof![
        (any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(a, b, c, d)| {
            Engagements::Twitter(TwitterEngagements {
                retweet: a.into(),
                like: b.into(),
                comment: c.into(),
                share: d.into(),
            })
        }),
        (
            prop::option::of(any::<u32>()),
            prop::option::of(any::<u32>()),
            prop::option::of(any::<i32>()),
            any::<u16>(),
            any::<bool>()
        )
            .prop_map(|(up, down, score, comment, absent)| {
                let mut e = RedditEngagements {
                    upvote: up.map(u64::from),
                    downvote: down.map(u64::from),
                    score: score.map(i64::from),
                    comment: comment.into(),
                    award: 0,
                    ..Default::default()
                };
                e.absent
                    .set(OptionalField::Score, absent && score.is_none());
                Engagements::Reddit(e)
            }),
        prop::array::uniform9(any::<u16>()).prop_map(|c| {
            Engagements::Facebook(FacebookEngagements {
                like: c[0].into(),
                love: c[1].into(),
                care: c[2].into(),
                haha: c[3].into(),
                wow: c[4].into(),
                sad: c[5].into(),
                angry: c[6].into(),
                comment: c[7].into(),
                share: c[8].into(),
            })
        }),
    ]
}

fn item() -> impl Strategy<Value = ContentItem> {
    (
        "\\PC{0,12}",
        optional_string(),
        optional_string(),
        "\\PC{0,80}",
        any::<bool>(),
        0i64..4_000_000_000,
        0u32..1_000_000,
        engagements(),
        prop::option::of(prop::collection::vec("[a-z]{1,10}", 0..3)),
        (prop::option::of(any::<u32>()), any::<bool>()),
    )
        .prop_map(
            |(
                id,
                post_id,
                title,
                text,
                is_post,
                secs,
                micros,
                engagements,
                hosts,
                (rank, absent),
            )| {
                let created = Timestamp::from_unix_seconds(secs)
                    .map(|t| {
                        let naive = t.naive_utc() + chrono::TimeDelta::microseconds(micros.into());
                        Timestamp::from_naive_utc(naive)
                    })
                    .unwrap_or_else(Timestamp::now);
                let kind = if is_post {
                    ContentType::Post
                } else {
                    ContentType::Comment
                };
                let mut item = ContentItem::new(id, kind, text, "hash", created, engagements);
                item.post_id = post_id;
                item.title = title;
                item.original_rank = rank.map(u64::from);
                item.embedded_urls = hosts.map(|hs| {
                    hs.into_iter()
                        .map(|h| format!("https://{h}.example/p?q=1"))
                        .collect()
                });
                item.absent
                    .set(OptionalField::OriginalRank, absent && rank.is_none());
                item.absent.set(OptionalField::Language, absent);
                item
            },
        )
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        let _ = ContentItem::from_json(&text);
    }

    #[test]
    fn arbitrary_json_never_panics(value in json_value()) {
        let _ = ContentItem::from_value(&value);
        let _ = Engagements::from_value(&value);
    }

    #[test]
    fn arbitrary_datetimes_never_panic(text in "[0-9T:+.Z -]{0,40}") {
        let _ = Timestamp::parse(&text);
    }

    #[test]
    fn valid_datetimes_parse_to_their_instant_and_round_trip(datetime in written_datetime()) {
        let parsed = Timestamp::parse(&datetime.text);
        prop_assert_eq!(
            parsed.map(|t| t.naive_utc()),
            Ok(datetime.utc),
            "{}", datetime.text
        );
        let t = Timestamp::from_naive_utc(datetime.utc);
        prop_assert_eq!(Timestamp::parse(&t.to_string()), Ok(t));
        prop_assert_eq!(Timestamp::parse(&t.to_db_string()).map(|d| d.unix_seconds()), Ok(t.unix_seconds()));
    }

    #[test]
    fn valid_items_round_trip(item in item()) {
        let encoded = item.to_json();
        let decoded = ContentItem::from_json(&encoded);
        prop_assert_eq!(decoded.as_ref(), Ok(&item));
        let again = decoded.map(|d| d.to_json()).unwrap_or_default();
        let a: Value = serde_json::from_str(&encoded).unwrap_or_default();
        let b: Value = serde_json::from_str(&again).unwrap_or_default();
        prop_assert_eq!(a, b);
    }
}
