//! Excerpts of answers (short, secrets masked) and which errors are worth a retry.

use super::*;

#[test]
fn an_html_page_is_reduced_to_its_title() {
    let page = b"<html><head><title>502 Bad Gateway</title></head><body><h1>502</h1></body></html>";
    assert_eq!(excerpt(page), "html page: 502 Bad Gateway");
}

#[test]
fn excerpts_are_short_and_mask_token_like_words() {
    let body = format!(
        "{{\"msg\": \"bad token eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9abc\", \"pad\": \"{}\"}}",
        "x ".repeat(500)
    );
    let e = excerpt(body.as_bytes());
    assert!(e.len() <= EXCERPT_LIMIT_WITH_ELLIPSIS, "{}", e.len());
    assert!(!e.contains("eyJhbGci"), "{e}");
    assert!(e.contains("[redacted]"));
}

const EXCERPT_LIMIT_WITH_ELLIPSIS: usize = EXCERPT_BYTES + 3;

#[test]
fn excerpts_mask_the_client_key_and_secret_however_short() {
    never_quote(&SecretString::from("ck-unit-4e1"));
    never_quote(&SecretString::from("sk-unit-ck-unit-4e1-b2"));
    let body = br#"{"msg": "client ck-unit-4e1 with secret sk-unit-ck-unit-4e1-b2 refused"}"#;

    let e = excerpt(body);

    assert!(
        !e.contains("ck-unit") && !e.contains("sk-unit") && !e.contains("4e1"),
        "{e}"
    );
    assert!(
        e.contains("client [redacted] with secret [redacted] refused"),
        "{e}"
    );
}

#[test]
fn a_secret_cut_at_the_excerpt_window_is_not_quoted_in_part() {
    never_quote(&SecretString::from("sk-window-5c77"));
    let mut body = vec![b' '; 4090];
    body.extend_from_slice(b"sk-window-5c77 and more");

    let e = excerpt(&body);

    assert!(!e.contains("sk-win"), "{e}");
}

#[test]
fn only_transient_failures_are_retryable() {
    let e = |status| Error::Unavailable {
        endpoint: "GET /x".into(),
        status,
        content_type: "text/html".into(),
        excerpt: String::new(),
        retry_after: None,
    };
    assert!(e(503).is_retryable());
    let rejected = Error::Rejected {
        endpoint: "POST /x".into(),
        status: 400,
        message: "no".into(),
    };
    assert!(!rejected.is_retryable());
}
