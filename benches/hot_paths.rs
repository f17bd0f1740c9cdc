//! Hot paths of the foundation: naming a request (the route matcher), and answering a job
//! metadata request from the per-caller cache, both in-process and through a real socket.
//!
//! Run: `cargo bench --bench hot_paths`.

use std::sync::Arc;

use artifact_gateway::config::{BaseUrl, CacheConfig, Config};
use artifact_gateway::listener::RunningGateway;
use artifact_gateway::request::credentials::{self, Credentials};
use artifact_gateway::request::route::{self, ProjectRef};
use artifact_gateway::upstream::cache::{CacheKey, MetadataCache, Scope};
use artifact_gateway::upstream::keyed::KeyedGet;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use http::{HeaderMap, Method};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use sample_backend::BackendBuilder;

const PATHS: [(&str, Option<&str>); 6] = [
    (
        "/api/v4/projects/1/jobs",
        Some("scope[]=success&scope[]=failed&page=2"),
    ),
    ("/api/v4/projects/group%2Fsub%2Fproject/jobs/12345", None),
    (
        "/api/v4/projects/42/jobs/777/artifacts/dir/sub/report%20final.html",
        None,
    ),
    (
        "/api/v4/projects/42/jobs/artifacts/feature/login/download",
        Some("job=build"),
    ),
    (
        "/api/v4/projects/42/jobs/artifacts/main/raw/dist/app.js",
        Some("job=build"),
    ),
    ("/api/v4/version", None),
];

fn route_matcher(c: &mut Criterion) {
    c.bench_function("route_matcher/6_paths", |b| {
        b.iter(|| {
            for (path, query) in PATHS {
                std::hint::black_box(route::match_route(&Method::GET, path, query).ok());
            }
        })
    });
}

fn cache_key(headers: &HeaderMap, query: &str) -> CacheKey {
    let credentials = Credentials::from_request(headers, Some(query));
    let pairs = credentials::normalize_query(Some(query)).expect("a plain query");
    KeyedGet::new(
        "/api/v4/projects/1/jobs/104",
        pairs,
        &credentials,
        [],
        &HeaderMap::new(),
    )
    .key(Scope::Job {
        project: ProjectRef::Id(1),
        job_id: 104,
    })
}

fn cache_hit(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let backend = runtime
        .block_on(BackendBuilder::sample_data().start())
        .unwrap();
    let cache = Arc::new(MetadataCache::new(
        &CacheConfig::default(),
        Arc::new(artifact_gateway::metrics::Metrics::new()),
    ));
    let mut headers = HeaderMap::new();
    headers.insert("private-token", "demo-token".parse().unwrap());
    let client: Client<_, http_body_util::Empty<bytes::Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let uri: http::Uri = format!("{}/api/v4/projects/1/jobs/104", backend.url())
        .parse()
        .unwrap();

    // One real load fills the entry; every measured call must then be a hit.
    runtime.block_on(async {
        let key = cache_key(&headers, "");
        let fetch = || {
            let request = http::Request::get(uri.clone())
                .header("private-token", "demo-token")
                .body(http_body_util::Empty::new())
                .unwrap();
            let client = client.clone();
            async move {
                client.request(request).await.map_err(|e| {
                    artifact_gateway::error::GatewayError::UpstreamUnavailable(e.to_string())
                })
            }
        };
        cache.get_or_fetch(key, fetch).await.unwrap();
    });

    c.bench_function("metadata_cache/hit_in_process", |b| {
        b.to_async(&runtime).iter_batched(
            || cache_key(&headers, ""),
            |key| {
                let cache = Arc::clone(&cache);
                async move {
                    let (response, status) = cache
                        .get_or_fetch(key, || async { unreachable!("a hit never fetches") })
                        .await
                        .unwrap();
                    assert_eq!(status.as_str(), "HIT");
                    std::hint::black_box(response);
                }
            },
            BatchSize::SmallInput,
        )
    });

    // The whole path through a socket: accept, route, fingerprint, cache hit, respond.
    let mut config = Config::with_defaults(
        BaseUrl::parse(&backend.url()).unwrap(),
        format!("file://{}", std::env::temp_dir().display()),
    );
    config.listen = "127.0.0.1:0".parse().unwrap();
    let gateway = runtime.block_on(RunningGateway::start(config)).unwrap();
    let url: http::Uri = format!("http://{}/api/v4/projects/1/jobs/104", gateway.addr())
        .parse()
        .unwrap();
    let get = || {
        http::Request::get(url.clone())
            .header("private-token", "demo-token")
            .body(http_body_util::Empty::new())
            .unwrap()
    };
    runtime.block_on(async {
        client
            .request(get())
            .await
            .unwrap()
            .into_body()
            .collect()
            .await
            .unwrap()
    });
    c.bench_function("gateway/get_job_cache_hit_over_http1", |b| {
        b.to_async(&runtime).iter(|| async {
            let response = client.request(get()).await.unwrap();
            assert_eq!(response.headers()["x-cache"], "HIT");
            std::hint::black_box(response.into_body().collect().await.unwrap());
        })
    });
    drop(gateway);
}

criterion_group!(benches, route_matcher, cache_hit);
criterion_main!(benches);
