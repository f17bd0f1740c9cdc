//! The reference every relay is checked against: the backend asked directly, and a
//! request through the gateway compared with it (status, pagination, link, content type
//! and body).

use sample_backend::SampleBackend;

use crate::common;
use crate::common::{header, Harness, TOKEN};

pub(crate) const PAGINATION: [&str; 6] = [
    "x-page",
    "x-per-page",
    "x-next-page",
    "x-prev-page",
    "x-total",
    "x-total-pages",
];

/// Ask the backend directly, as a reference for what the gateway must relay.
pub(crate) async fn direct(backend: &SampleBackend, path: &str) -> reqwest::Response {
    common::client()
        .get(format!("{}/api/v4{path}", backend.url()))
        .header("PRIVATE-TOKEN", TOKEN)
        .send()
        .await
        .unwrap()
}

pub(crate) async fn assert_relayed_as_sent(h: &Harness, path: &str) {
    let reference = direct(&h.backend, path).await;
    let through = h.get(path, Some(TOKEN)).await;
    assert_eq!(through.status(), reference.status(), "{path}");
    for name in PAGINATION {
        assert_eq!(
            header(&through, name),
            header(&reference, name),
            "{name} of {path}"
        );
    }
    let link_reference = header(&reference, "link")
        .map(|l| l.replace(&h.backend.url(), &format!("http://{}", h.gateway.addr())));
    assert_eq!(
        header(&through, "link").map(str::to_owned),
        link_reference,
        "link of {path}"
    );
    assert_eq!(
        header(&through, "content-type"),
        header(&reference, "content-type")
    );
    let (a, b) = (
        through.bytes().await.unwrap(),
        reference.bytes().await.unwrap(),
    );
    assert_eq!(a, b, "body of {path}");
}
