//! Tests of the in-process S3 test server (`tests/common/s3.rs`) through `object_store`, the
//! client the gateway uses. They pin down what the gateway can rely on from storage: ETags,
//! ranges and the `object_store::Error` variant of each failure (404, 304, 412, 416, 403).
#[path = "common/s3.rs"]
mod s3;

use std::ops::Range;
use std::time::Duration;

use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload};
use s3::S3Server;

const BODY: &[u8] = b"0123456789abcdef";
const KEY: &str = "group/project/artifacts/job-1.zip";

async fn ranged(server: &S3Server, range: GetRange) -> (Range<u64>, Vec<u8>) {
    let options = GetOptions {
        range: Some(range),
        ..Default::default()
    };
    let result = server
        .object_store()
        .get_opts(&Path::from(KEY), options)
        .await
        .expect("ranged get");
    let range = result.range.clone();
    (range, result.bytes().await.expect("body").to_vec())
}

async fn get_err(server: &S3Server, options: GetOptions) -> object_store::Error {
    server
        .object_store()
        .get_opts(&Path::from(KEY), options)
        .await
        .expect_err("the request fails")
}

#[tokio::test]
async fn head_and_get_a_file_put_on_disk() {
    let server = S3Server::start("artifacts").await;
    // Listening once `start` returns, with nothing served yet.
    assert!(server.endpoint().starts_with("http://127.0.0.1:"));
    let address = server.endpoint().trim_start_matches("http://").to_owned();
    tokio::net::TcpStream::connect(&address)
        .await
        .expect("the server accepts connections as soon as it has started");
    assert_eq!((server.head_count(), server.get_count()), (0, 0));
    assert_eq!(server.region(), "us-east-1");

    server.put(KEY, BODY);
    assert!(server.object_path(KEY).is_file());
    let store = server.object_store();

    let meta = store.head(&Path::from(KEY)).await.expect("head");
    assert_eq!(meta.size, BODY.len() as u64);
    let e_tag = meta.e_tag.expect("an ETag");
    eprintln!("ETag as object_store sees it: {e_tag}");
    // MD5 of BODY, quoted as on AWS.
    assert_eq!(e_tag, "\"4032af8d61035123906e58e067140cc5\"");

    let got = store.get(&Path::from(KEY)).await.expect("get");
    assert_eq!(got.meta.e_tag.as_deref(), Some(e_tag.as_str()));
    assert_eq!(got.range, 0..BODY.len() as u64);
    assert_eq!(got.bytes().await.unwrap().as_ref(), BODY);

    assert_eq!(server.head_count(), 1);
    assert_eq!(server.get_count(), 1);
}

#[tokio::test]
async fn ranges() {
    let server = S3Server::start("bucket").await;
    server.put(KEY, BODY);

    assert_eq!(
        ranged(&server, GetRange::Bounded(2..5)).await,
        (2..5, b"234".to_vec())
    );
    assert_eq!(
        ranged(&server, GetRange::Offset(10)).await,
        (10..16, b"abcdef".to_vec())
    );
    assert_eq!(
        ranged(&server, GetRange::Suffix(4)).await,
        (12..16, b"cdef".to_vec())
    );
    // A suffix longer than the object is the whole object (s3s-fs alone would answer 500).
    assert_eq!(
        ranged(&server, GetRange::Suffix(100)).await,
        (0..16, BODY.to_vec())
    );
    // A range running past the end is cut to the object, as HTTP says.
    assert_eq!(
        ranged(&server, GetRange::Bounded(14..100)).await,
        (14..16, b"ef".to_vec())
    );
    assert_eq!(server.get_count(), 5);
    assert_eq!(server.head_count(), 0);
}

#[tokio::test]
async fn unsatisfiable_range_is_a_generic_error_with_status_416() {
    let server = S3Server::start("bucket").await;
    server.put(KEY, BODY);

    let options = GetOptions {
        range: Some(GetRange::Offset(100)),
        ..Default::default()
    };
    let err = get_err(&server, options).await;
    eprintln!("start beyond the end: {err:?}\n  displayed: {err}");
    assert!(
        matches!(err, object_store::Error::Generic { store: "S3", .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("416"), "{err}");
    // Not retried: one request reached the server.
    assert_eq!(server.get_count(), 1);
}

#[tokio::test]
async fn conditional_requests() {
    let server = S3Server::start("bucket").await;
    server.put(KEY, BODY);
    let store = server.object_store();
    let meta = store.head(&Path::from(KEY)).await.unwrap();
    let e_tag = meta.e_tag.clone().unwrap();
    let wrong = "\"00000000000000000000000000000000\"".to_owned();

    let with = |f: fn(&mut GetOptions, String), value: String| {
        let mut options = GetOptions::default();
        f(&mut options, value);
        options
    };
    let if_match = |o: &mut GetOptions, v: String| o.if_match = Some(v);
    let if_none_match = |o: &mut GetOptions, v: String| o.if_none_match = Some(v);

    let err = get_err(&server, with(if_match, wrong.clone())).await;
    eprintln!("If-Match wrong: {err:?}");
    assert!(
        matches!(err, object_store::Error::Precondition { .. }),
        "{err:?}"
    );

    let err = get_err(&server, with(if_none_match, e_tag.clone())).await;
    eprintln!("If-None-Match right: {err:?}");
    assert!(
        matches!(err, object_store::Error::NotModified { .. }),
        "{err:?}"
    );

    for options in [
        with(if_match, e_tag.clone()),
        with(if_match, "*".to_owned()),
        with(if_none_match, wrong.clone()),
    ] {
        let got = store.get_opts(&Path::from(KEY), options).await.unwrap();
        assert_eq!(got.bytes().await.unwrap().as_ref(), BODY);
    }

    // The same on HEAD (object_store sends a HEAD for `head: true`).
    let head = |mut options: GetOptions| {
        options.head = true;
        options
    };
    let err = get_err(&server, head(with(if_match, wrong.clone()))).await;
    assert!(
        matches!(err, object_store::Error::Precondition { .. }),
        "{err:?}"
    );
    let err = get_err(&server, head(with(if_none_match, e_tag.clone()))).await;
    assert!(
        matches!(err, object_store::Error::NotModified { .. }),
        "{err:?}"
    );

    // Dates, at HTTP's whole-second precision.
    let modified = meta.last_modified;
    let since = |modified_since: bool, at: chrono::DateTime<chrono::Utc>| {
        let mut options = GetOptions::default();
        if modified_since {
            options.if_modified_since = Some(at);
        } else {
            options.if_unmodified_since = Some(at);
        }
        options
    };
    let later = modified + chrono::Duration::seconds(5);
    let earlier = modified - chrono::Duration::seconds(5);
    let err = get_err(&server, since(true, modified)).await;
    assert!(
        matches!(err, object_store::Error::NotModified { .. }),
        "{err:?}"
    );
    let err = get_err(&server, since(false, earlier)).await;
    assert!(
        matches!(err, object_store::Error::Precondition { .. }),
        "{err:?}"
    );
    store
        .get_opts(&Path::from(KEY), since(true, earlier))
        .await
        .unwrap();
    store
        .get_opts(&Path::from(KEY), since(false, later))
        .await
        .unwrap();

    // A condition on a missing object is a plain 404.
    server.delete(KEY);
    let err = get_err(&server, with(if_match, e_tag)).await;
    assert!(
        matches!(err, object_store::Error::NotFound { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn missing_keys_and_bad_credentials() {
    let server = S3Server::start("bucket").await;
    let store = server.object_store();

    let err = store.head(&Path::from("nope/missing")).await.unwrap_err();
    assert!(
        matches!(err, object_store::Error::NotFound { .. }),
        "{err:?}"
    );
    let err = store.get(&Path::from("nope/missing")).await.unwrap_err();
    eprintln!("missing key: {err:?}");
    assert!(
        matches!(err, object_store::Error::NotFound { .. }),
        "{err:?}"
    );
    assert_eq!((server.get_count(), server.head_count()), (1, 1));

    server.put("present", b"x");
    let impostor = object_store::aws::AmazonS3Builder::new()
        .with_endpoint(server.endpoint())
        .with_bucket_name(server.bucket())
        .with_region(server.region())
        .with_access_key_id(server.access_key())
        .with_secret_access_key("not-the-secret")
        .with_allow_http(true)
        .with_virtual_hosted_style_request(false)
        .build()
        .unwrap();
    let err = impostor.get(&Path::from("present")).await.unwrap_err();
    eprintln!("wrong secret: {err:?}");
    assert!(
        matches!(err, object_store::Error::PermissionDenied { .. }),
        "{err:?}"
    );
    // Rejected before GetObject runs.
    assert_eq!(server.get_count(), 1);
}

#[tokio::test]
async fn disk_and_s3_writes_agree() {
    let server = S3Server::start("bucket").await;
    let store = server.object_store();

    // Written through S3: visible on disk.
    store
        .put(&Path::from("a/b.txt"), PutPayload::from_static(b"via s3"))
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(server.object_path("a/b.txt")).unwrap(),
        b"via s3"
    );

    // Overwritten on disk: S3 serves the new bytes with the new ETag (MD5 of "on disk").
    server.put("a/b.txt", b"on disk");
    let got = store.get(&Path::from("a/b.txt")).await.unwrap();
    assert_eq!(
        got.meta.e_tag.as_deref(),
        Some("\"f4bfaef6216dfc685387b3cd6d251017\"")
    );
    assert_eq!(got.bytes().await.unwrap().as_ref(), b"on disk");

    server.put("a/c.txt", b"c");
    let mut listed: Vec<String> = store
        .list_with_delimiter(Some(&Path::from("a")))
        .await
        .unwrap()
        .objects
        .into_iter()
        .map(|meta| meta.location.to_string())
        .collect();
    listed.sort();
    assert_eq!(listed, ["a/b.txt", "a/c.txt"]);

    server.delete("a/b.txt");
    let err = store.head(&Path::from("a/b.txt")).await.unwrap_err();
    assert!(
        matches!(err, object_store::Error::NotFound { .. }),
        "{err:?}"
    );
    server.delete("a/b.txt"); // deleting a missing key is fine
}

#[tokio::test]
async fn dropping_stops_the_server_and_removes_the_directory() {
    let server = S3Server::start("bucket").await;
    server.put(KEY, BODY);
    let store = server.object_store();
    store.head(&Path::from(KEY)).await.unwrap(); // leaves a pooled keep-alive connection
    let root = server
        .object_path(KEY)
        .ancestors()
        .nth(5)
        .unwrap()
        .to_path_buf();
    assert!(root.is_dir());
    let address = server.endpoint().trim_start_matches("http://").to_owned();

    drop(server);
    assert!(!root.exists());
    // The listener closes once the aborted server task is dropped by the runtime.
    let mut refused = false;
    for _ in 0..100 {
        tokio::task::yield_now().await;
        if tokio::net::TcpStream::connect(&address).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refused, "the server still accepts connections");
    let err = tokio::time::timeout(Duration::from_secs(30), store.head(&Path::from(KEY)))
        .await
        .expect("fails quickly")
        .unwrap_err();
    eprintln!("after drop: {err}");
}

#[tokio::test]
#[should_panic(expected = "not a valid S3 bucket name")]
async fn bucket_names_s3_would_refuse_are_refused_up_front() {
    S3Server::start("b").await;
}
