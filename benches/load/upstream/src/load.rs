//! The four measurements, each over one gateway (or the backend) at a time. Every answer is
//! checked: status, byte count, and the bytes themselves against what was uploaded. A
//! failed check is counted and described, and fails the run at the end.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Barrier;

/// Each client request's own limit: a hang becomes an error, not a stuck run.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Limit for one whole-archive download.
pub const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(120);

/// The caller: a member of the private project, with a personal token.
pub const TOKEN: &str = "bench-token";

/// Failed checks, with the first few described.
#[derive(Default)]
pub struct Failures {
    pub count: u64,
    pub examples: Vec<String>,
}

pub type Shared = Arc<Mutex<Failures>>;

pub fn fail(failures: &Shared, what: String) {
    let mut f = failures.lock().unwrap();
    f.count += 1;
    if f.examples.len() < 10 {
        f.examples.push(what);
    }
}

/// One keep-alive connection per client (as a browser tab or a CI job would have).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(1)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .unwrap()
}

/// GET `url` as the caller and compare the whole body with `expected`. Returns whether it
/// was right.
async fn get_exact(
    client: &reqwest::Client,
    url: &str,
    expected: &[u8],
    failures: &Shared,
) -> bool {
    let response = match client.get(url).header("PRIVATE-TOKEN", TOKEN).send().await {
        Ok(r) => r,
        Err(e) => {
            fail(failures, format!("GET {url}: {e}"));
            return false;
        }
    };
    if response.status() != 200 {
        fail(failures, format!("GET {url}: status {}", response.status()));
        return false;
    }
    let mut response = response;
    let mut at = 0usize;
    let mut same = true;
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let end = at + chunk.len();
                same &= end <= expected.len() && expected[at..end] == chunk[..];
                at = end;
            }
            Ok(None) => break,
            Err(e) => {
                fail(
                    failures,
                    format!("GET {url}: body failed after {at} bytes: {e}"),
                );
                return false;
            }
        }
    }
    if !same || at != expected.len() {
        fail(
            failures,
            format!(
                "GET {url}: {at} bytes (expected {}), bytes equal: {same}",
                expected.len()
            ),
        );
        return false;
    }
    true
}

/// Latencies of one pass, in µs.
pub struct Pass {
    pub latencies: Vec<u64>,
    pub wall: Duration,
}

/// Cold single files: for each `(url, expected)`, sequentially, one request on a fresh
/// archive.
pub async fn cold(requests: &[(String, Arc<Vec<u8>>)], failures: &Shared) -> Pass {
    let client = client();
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(requests.len());
    for (url, expected) in requests {
        let t = Instant::now();
        if get_exact(&client, url, expected, failures).await {
            latencies.push(t.elapsed().as_micros() as u64);
        }
    }
    Pass {
        latencies,
        wall: started.elapsed(),
    }
}

/// Warm single file: `conc` clients, each on its own connection, GET `url` in a loop for
/// `duration` after one unmeasured request each (connection set up, archive open). The
/// wall time runs from the common start to the last client's last answer.
pub async fn warm(
    url: &str,
    expected: Arc<Vec<u8>>,
    conc: usize,
    duration: Duration,
    failures: &Shared,
) -> Pass {
    let barrier = Arc::new(Barrier::new(conc + 1));
    let mut tasks = Vec::new();
    for _ in 0..conc {
        let (url, expected, barrier, failures) = (
            url.to_owned(),
            Arc::clone(&expected),
            Arc::clone(&barrier),
            Arc::clone(failures),
        );
        tasks.push(tokio::spawn(async move {
            let client = client();
            get_exact(&client, &url, &expected, &failures).await;
            barrier.wait().await;
            let deadline = Instant::now() + duration;
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let t = Instant::now();
                if get_exact(&client, &url, &expected, &failures).await {
                    latencies.push(t.elapsed().as_micros() as u64);
                }
            }
            latencies
        }));
    }
    barrier.wait().await;
    let started = Instant::now();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    Pass {
        latencies,
        wall: started.elapsed(),
    }
}

/// Whole-archive downloads: `conc` at once, each on its own connection, timed from the
/// common start to the last finish.
pub async fn archive(url: &str, expected: Arc<Vec<u8>>, conc: usize, failures: &Shared) -> Pass {
    let barrier = Arc::new(Barrier::new(conc + 1));
    let mut tasks = Vec::new();
    for _ in 0..conc {
        let (url, expected, barrier, failures) = (
            url.to_owned(),
            Arc::clone(&expected),
            Arc::clone(&barrier),
            Arc::clone(failures),
        );
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(DOWNLOAD_TIMEOUT)
                .build()
                .unwrap();
            barrier.wait().await;
            let t = Instant::now();
            let ok = get_exact(&client, &url, &expected, &failures).await;
            ok.then(|| t.elapsed().as_micros() as u64)
        }));
    }
    barrier.wait().await;
    let started = Instant::now();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    Pass {
        latencies,
        wall: started.elapsed(),
    }
}

/// The two backend answers the modes wait for, asked directly (no gateway), alternately,
/// `samples` times each on one keep-alive connection: the archive route (`302` to a
/// presigned URL, not followed) and the job lookup (`200` job JSON). Latency to the end of
/// the body, in µs.
pub async fn backend(
    backend: &str,
    project: u64,
    job: u64,
    samples: usize,
    s3_endpoint: &str,
    failures: &Shared,
) -> (Vec<u64>, Vec<u64>) {
    let client = client();
    let route = format!("{backend}/api/v4/projects/{project}/jobs/{job}/artifacts");
    let lookup = format!("{backend}/api/v4/projects/{project}/jobs/{job}");
    let (mut routes, mut lookups) = (Vec::new(), Vec::new());
    for _ in 0..samples {
        let t = Instant::now();
        match client
            .get(&route)
            .header("PRIVATE-TOKEN", TOKEN)
            .send()
            .await
        {
            Ok(r) if r.status() == 302 => {
                let location = r
                    .headers()
                    .get("location")
                    .and_then(|l| l.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                match r.bytes().await {
                    Ok(_)
                        if location.starts_with(s3_endpoint)
                            && location.contains("X-Amz-Signature") =>
                    {
                        routes.push(t.elapsed().as_micros() as u64)
                    }
                    Ok(_) => fail(failures, format!("{route}: Location {location:.60}…")),
                    Err(e) => fail(failures, format!("{route}: body: {e}")),
                }
            }
            Ok(r) => fail(failures, format!("{route}: status {}", r.status())),
            Err(e) => fail(failures, format!("{route}: {e}")),
        }
        let t = Instant::now();
        match client
            .get(&lookup)
            .header("PRIVATE-TOKEN", TOKEN)
            .send()
            .await
        {
            Ok(r) if r.status() == 200 => match r.bytes().await {
                Ok(body) => {
                    let id = serde_json::from_slice::<serde_json::Value>(&body)
                        .ok()
                        .and_then(|v| v["id"].as_u64());
                    if id == Some(job) {
                        lookups.push(t.elapsed().as_micros() as u64);
                    } else {
                        fail(failures, format!("{lookup}: job JSON without id {job}"));
                    }
                }
                Err(e) => fail(failures, format!("{lookup}: body: {e}")),
            },
            Ok(r) => fail(failures, format!("{lookup}: status {}", r.status())),
            Err(e) => fail(failures, format!("{lookup}: {e}")),
        }
    }
    (routes, lookups)
}
