//! Who may change the namespace: the checks in front of requeue and purge.

use axum::http::{HeaderMap, StatusCode, header};

use crate::state::Shared;

/// Why a changing request was refused: the status and a sentence for the person.
pub(crate) type Refusal = (StatusCode, String);

/// Allows a changing request, or says why not. `form_token` is the `token` field of a
/// posted form.
pub(crate) fn allow(
    shared: &Shared,
    headers: &HeaderMap,
    form_token: Option<&str>,
) -> Result<(), Refusal> {
    if !shared.mutations_allowed {
        return Err((
            StatusCode::FORBIDDEN,
            "Changes are disabled: this dashboard listens on a non-loopback address without --token."
                .to_owned(),
        ));
    }
    if is_cross_site(headers) {
        return Err((
            StatusCode::FORBIDDEN,
            "Refused a request sent from another site.".to_owned(),
        ));
    }
    let Some(expected) = &shared.token else {
        return Ok(());
    };
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let given = bearer.or(form_token).unwrap_or("");
    if constant_time_eq(given.as_bytes(), expected.as_bytes()) {
        Ok(())
    } else {
        Err((
            StatusCode::UNAUTHORIZED,
            "A valid token is required (the dashboard's --token).".to_owned(),
        ))
    }
}

/// Whether a browser says the request comes from a page of another origin.
fn is_cross_site(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return !matches!(site, "same-origin" | "none");
    }
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    match (origin, host) {
        (Some("null"), _) => true,
        (Some(origin), Some(host)) => {
            let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
            origin_host != host
        }
        _ => false,
    }
}

/// Compares secrets in time that does not depend on where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn cross_site_posts_are_recognised() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:9808"));
        assert!(!is_cross_site(&headers), "curl sends no origin");
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:9808"),
        );
        assert!(!is_cross_site(&headers));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(is_cross_site(&headers));
        headers.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(is_cross_site(&headers));
        headers.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        assert!(!is_cross_site(&headers));
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secre"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
    }
}
