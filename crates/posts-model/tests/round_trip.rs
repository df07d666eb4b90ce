//! Round trips of pydantic blobs and the validation errors of bad ones.

use posts_model::{
    ContentItem, ContentType, Engagements, ModelError, OptionalField, Platform, Reason, Session,
};
use serde_json::{Value, json};

const ISSUE_BLOB: &str = r#"{"id":"a1","post_id":null,"parent_id":"","title":null,"text":"Truth!","author_name_hash":"0f..","type":"comment","embedded_urls":[],"created_at":"2017-05-31T15:59:28","engagements":{"like":0,"love":0,"care":0,"haha":0,"wow":0,"sad":0,"angry":0,"comment":0,"share":0}}"#;

fn round_trip(text: &str) -> (Value, Value) {
    let item = ContentItem::from_json(text).unwrap_or_else(|e| panic!("{e}: {text}"));
    let before: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}"));
    let after: Value = serde_json::from_str(&item.to_json()).unwrap_or_else(|e| panic!("{e}"));
    (before, after)
}

fn field_error(value: Value) -> (String, Reason) {
    match ContentItem::from_value(&value) {
        Err(ModelError::Invalid { field, reason }) => (field, reason),
        other => panic!("expected a field error, got {other:?}"),
    }
}

fn facebook_blob() -> Value {
    serde_json::from_str(ISSUE_BLOB).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn issue_blob_round_trips_and_keeps_absent_fields_absent() {
    let (before, after) = round_trip(ISSUE_BLOB);
    assert_eq!(before, after);
    let after = after.as_object().cloned().unwrap_or_default();
    assert!(!after.contains_key("original_rank"));
    assert!(!after.contains_key("language"));
    assert_eq!(after.get("post_id"), Some(&Value::Null));
    assert_eq!(after.get("parent_id"), Some(&json!("")));
}

#[test]
fn issue_blob_decodes_to_the_expected_item() {
    let item = ContentItem::from_json(ISSUE_BLOB).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(item.platform(), Platform::Facebook);
    assert_eq!(item.content_type, ContentType::Comment);
    assert_eq!(item.text, "Truth!");
    assert_eq!(item.created_at.to_db_string(), "2017-05-31 15:59:28");
    assert!(item.absent.contains(OptionalField::Language));
    assert!(!item.absent.contains(OptionalField::PostId));
}

#[test]
fn twitter_and_reddit_blobs_round_trip() {
    let tweet = r#"{"id":"t1","original_rank":3,"post_id":"t0","parent_id":"t0","title":null,"text":"@CNN yes! 🎉","author_name_hash":"ab","type":"comment","embedded_urls":["https://example.com/a?b=1"],"created_at":"2021-01-06T18:00:01.250000","engagements":{"retweet":1,"like":20,"comment":0,"share":2},"language":"en"}"#;
    let reddit_null_votes = r#"{"id":"r1","post_id":"r0","parent_id":null,"title":"Hi","text":"[removed]","author_name_hash":"cd","type":"post","embedded_urls":null,"created_at":"2019-03-01T00:00:00","engagements":{"upvote":null,"downvote":null,"score":-4,"comment":0,"award":0},"language":null}"#;
    let reddit_absent_votes = r#"{"id":"r2","text":"","author_name_hash":"cd","type":"comment","created_at":"2019-03-01T00:00:00","engagements":{"score":7,"comment":1,"award":0},"future_field":{"x":[1,2]}}"#;
    for blob in [tweet, reddit_null_votes, reddit_absent_votes] {
        let (before, after) = round_trip(blob);
        assert_eq!(before, after, "{blob}");
    }
}

#[test]
fn built_items_encode_every_optional_field_as_null() {
    let created =
        posts_model::Timestamp::parse("2020-02-02 02:02:02").unwrap_or_else(|e| panic!("{e}"));
    let item = ContentItem::new(
        "x",
        ContentType::Post,
        "hello",
        "h",
        created,
        Engagements::Twitter(Default::default()),
    );
    let value: Value = serde_json::from_str(&item.to_json()).unwrap_or_else(|e| panic!("{e}"));
    for key in [
        "original_rank",
        "post_id",
        "parent_id",
        "title",
        "embedded_urls",
        "language",
    ] {
        assert_eq!(value.get(key), Some(&Value::Null), "{key}");
    }
    assert_eq!(value.get("created_at"), Some(&json!("2020-02-02T02:02:02")));
}

#[test]
fn offsets_and_space_separated_datetimes_normalise() {
    let mut blob = facebook_blob();
    blob["created_at"] = json!("2017-05-31 17:59:28+02:00");
    let item = ContentItem::from_value(&blob).unwrap_or_else(|e| panic!("{e}"));
    let out: Value = serde_json::from_str(&item.to_json()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out["created_at"], json!("2017-05-31T15:59:28"));
}

#[test]
fn negative_count_names_the_field() {
    let mut blob = facebook_blob();
    blob["engagements"]["wow"] = json!(-1);
    let (field, reason) = field_error(blob);
    assert_eq!(field, "engagements.wow");
    assert_eq!(reason, Reason::Negative("-1".into()));
}

#[test]
fn unknown_type_is_rejected() {
    let mut blob = facebook_blob();
    blob["type"] = json!("Post");
    let (field, reason) = field_error(blob);
    assert_eq!(field, "type");
    assert!(
        matches!(reason, Reason::UnknownVariant { .. }),
        "{reason:?}"
    );
}

#[test]
fn bad_url_names_its_index() {
    let mut blob = facebook_blob();
    blob["embedded_urls"] = json!(["https://ok.example", "ftp://files.example/x"]);
    let (field, reason) = field_error(blob);
    assert_eq!(field, "embedded_urls[1]");
    assert!(matches!(reason, Reason::BadUrl { .. }), "{reason:?}");
}

#[test]
fn bad_datetime_is_rejected() {
    let mut blob = facebook_blob();
    blob["created_at"] = json!("31/05/2017");
    let (field, reason) = field_error(blob);
    assert_eq!(field, "created_at");
    assert!(matches!(reason, Reason::BadDatetime(_)), "{reason:?}");
}

#[test]
fn missing_required_fields_are_named() {
    for key in [
        "id",
        "text",
        "author_name_hash",
        "type",
        "created_at",
        "engagements",
    ] {
        let mut blob = facebook_blob();
        blob.as_object_mut().map(|m| m.remove(key));
        let (field, reason) = field_error(blob);
        assert_eq!((field.as_str(), reason), (key, Reason::Missing));
    }
    let mut blob = facebook_blob();
    blob["engagements"]
        .as_object_mut()
        .map(|m| m.remove("share"));
    assert_eq!(
        field_error(blob),
        ("engagements.share".into(), Reason::Missing)
    );
}

#[test]
fn wrong_json_types_and_shapes_are_rejected() {
    let mut blob = facebook_blob();
    blob["text"] = json!(5);
    assert_eq!(field_error(blob).0, "text");
    let mut blob = facebook_blob();
    blob["engagements"] = json!({"like": 1, "comment": 2, "share": 0});
    assert_eq!(
        field_error(blob),
        ("engagements".into(), Reason::UnknownEngagements)
    );
    let mut blob = facebook_blob();
    blob["engagements"]["like"] = json!(2.5);
    assert_eq!(field_error(blob).0, "engagements.like");
}

#[test]
fn syntax_errors_report_the_position() {
    let truncated = &ISSUE_BLOB[..40];
    match ContentItem::from_json(truncated) {
        Err(ModelError::Json { line, .. }) => assert_eq!(line, 1),
        other => panic!("expected a JSON error, got {other:?}"),
    }
}

#[test]
fn serde_deserialize_agrees_with_from_json() {
    // Both must decode: comparing two failures (`None == None`) would prove nothing.
    let via_serde: ContentItem =
        serde_json::from_str(ISSUE_BLOB).unwrap_or_else(|e| panic!("serde: {e}"));
    let via_from_json = ContentItem::from_json(ISSUE_BLOB).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(via_serde, via_from_json);
    let bad = ISSUE_BLOB.replace("\"like\":0", "\"like\":-3");
    let err = serde_json::from_str::<ContentItem>(&bad)
        .err()
        .map(|e| e.to_string());
    assert!(err.is_some_and(|e| e.contains("engagements.like")));
}

#[test]
fn session_round_trips_with_prefetch_default() {
    let text = r#"{"session_id":"s","user_id":"u","user_name_hash":"h","cohort":null,"cohort_index":2,"platform":"reddit","url":"https://reddit.com","current_time":"2024-01-01T10:00:00"}"#;
    let session: Session = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}"));
    assert!(!session.prefetch);
    assert_eq!(session.platform, Platform::Reddit);
    let again: Session = serde_json::from_str(&serde_json::to_string(&session).unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again, session);
}
