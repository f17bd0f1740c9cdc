use super::*;

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    pairs
        .iter()
        .map(|(k, v)| (header::HeaderName::from_static(k), v.parse().unwrap()))
        .collect()
}

#[test]
fn content_ranges() {
    assert_eq!(parse_content_range("bytes 0-9/100"), Some((0..10, 100)));
    assert_eq!(parse_content_range("bytes 99-99/100"), Some((99..100, 100)));
    assert_eq!(parse_content_range("bytes 5-4/100"), None);
    assert_eq!(parse_content_range("bytes 0-100/100"), None);
    assert_eq!(parse_content_range("bytes 0-9/*"), None);
    assert_eq!(parse_content_range("items 0-9/100"), None);
}

#[test]
fn range_headers() {
    let h = |r| {
        range_header(&r)
            .map(|v| v.to_str().unwrap().to_owned())
            .ok()
    };
    assert_eq!(h(GetRange::Bounded(3..5)).as_deref(), Some("bytes=3-4"));
    assert_eq!(h(GetRange::Suffix(7)).as_deref(), Some("bytes=-7"));
    assert_eq!(h(GetRange::Offset(9)).as_deref(), Some("bytes=9-"));
    assert_eq!(h(GetRange::Bounded(3..3)), None);
    assert_eq!(h(GetRange::Suffix(0)), None);
}

#[test]
fn answers_are_checked_against_what_was_asked() {
    let suffix = GetRange::Suffix(10);
    let ok = answer(
        StatusCode::PARTIAL_CONTENT,
        &headers(&[("content-range", "bytes 90-99/100"), ("etag", "\"v1\"")]),
        Some(&suffix),
        false,
    )
    .unwrap();
    assert_eq!(
        (ok.0.size, ok.1, ok.0.etag.as_deref()),
        (100, 90..100, Some("\"v1\""))
    );
    // A suffix longer than the object is all of it.
    let short = answer(
        StatusCode::PARTIAL_CONTENT,
        &headers(&[("content-range", "bytes 0-4/5")]),
        Some(&suffix),
        false,
    );
    assert_eq!(short.unwrap().1, 0..5);
    let wrong = answer(
        StatusCode::PARTIAL_CONTENT,
        &headers(&[("content-range", "bytes 0-9/100")]),
        Some(&suffix),
        false,
    );
    assert!(matches!(wrong, Err(StorageError::Unavailable(_))));
    // A 200 to a range of part of the object: another version, or Range ignored.
    let whole = headers(&[("content-length", "100")]);
    let bounded = GetRange::Bounded(10..20);
    assert!(matches!(
        answer(StatusCode::OK, &whole, Some(&bounded), true),
        Err(StorageError::PreconditionFailed)
    ));
    assert!(matches!(
        answer(StatusCode::OK, &whole, Some(&bounded), false),
        Err(StorageError::Unavailable(_))
    ));
    assert_eq!(
        answer(StatusCode::OK, &whole, None, false).unwrap().1,
        0..100
    );
    let all = GetRange::Suffix(200);
    assert_eq!(
        answer(StatusCode::OK, &whole, Some(&all), false).unwrap().1,
        0..100
    );
    for (status, expired) in [(400, true), (401, true), (403, true), (404, false)] {
        let status = StatusCode::from_u16(status).unwrap();
        let result = answer(status, &HeaderMap::new(), None, false);
        assert_eq!(
            matches!(result, Err(StorageError::Expired)),
            expired,
            "{status}"
        );
    }
    let unsatisfied = answer(
        StatusCode::RANGE_NOT_SATISFIABLE,
        &headers(&[("content-range", "bytes */42")]),
        Some(&bounded),
        true,
    );
    assert!(matches!(
        unsatisfied,
        Err(StorageError::RangeNotSatisfiable { size: 42 })
    ));
    assert!(matches!(
        answer(
            StatusCode::PRECONDITION_FAILED,
            &HeaderMap::new(),
            None,
            true
        ),
        Err(StorageError::PreconditionFailed)
    ));
}

#[test]
fn validators_are_the_etag_or_made_from_size_and_date() {
    let modified = crate::http_util::conditional::parse_http_date("Tue, 01 Dec 2026 10:00:00 GMT");
    let meta = |etag: Option<&str>, last_modified| Meta {
        size: 255,
        etag: etag.map(str::to_owned),
        last_modified,
    };
    assert_eq!(
        meta(Some("\"abc\""), modified).validator().as_deref(),
        Some("\"abc\"")
    );
    let made = meta(None, modified).validator().unwrap();
    assert!(
        made.starts_with(MADE_VALIDATOR) && made.contains("ff-"),
        "{made}"
    );
    assert_ne!(Some(made), meta(None, None).validator());
    assert_eq!(meta(None, None).validator(), None);
}

#[test]
fn presigned_urls_are_keyed_and_shown_without_their_query() {
    let uri: Uri = "https://s3.example.com/bucket/6b/86/key?X-Amz-Signature=secret"
        .parse()
        .unwrap();
    let object = RemoteObject::presigned(uri);
    assert_eq!(object.key(), "https://s3.example.com/bucket/6b/86/key");
    for shown in [object.to_string(), format!("{object:?}")] {
        assert!(shown.contains("located object "), "{shown}");
        for secret in ["secret", "s3.example.com", "bucket", "6b/86"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }
}
