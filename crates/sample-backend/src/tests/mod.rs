//! End-to-end tests over real sockets: raw HTTP/1.1 (and one h2c request) against a
//! backend, mostly started with the demo dataset. `access` covers credentials and
//! visibility, `lists` the list endpoints and the job JSON; `entities` the user and project
//! objects; `actions` the job actions and the server itself.

mod access;
mod actions;
mod entities;
mod lists;

use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{BackendBuilder, JobSpec, JobStatus, SampleBackend, Visibility};

const P1: &str = "/api/v4/projects/1";
const P2: &str = "/api/v4/projects/2";
const DEMO: (&str, &str) = ("PRIVATE-TOKEN", "demo-token");
const OUTSIDER: (&str, &str) = ("PRIVATE-TOKEN", "outsider-token");

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        let mut found = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name));
        found.next().map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    fn message(&self) -> String {
        self.json()["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    fn ids(&self) -> Vec<u64> {
        let jobs = self.json();
        jobs.as_array()
            .unwrap()
            .iter()
            .map(|j| j["id"].as_u64().unwrap())
            .collect()
    }
}

/// One HTTP/1.1 request with `Connection: close`; reads the whole answer.
async fn send(
    b: &SampleBackend,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut stream = TcpStream::connect(b.addr()).await.unwrap();
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
        b.addr()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_owned(),
    }
}

async fn get(b: &SampleBackend, target: &str, headers: &[(&str, &str)]) -> Reply {
    send(b, "GET", target, headers, b"").await
}

async fn post(b: &SampleBackend, target: &str, headers: &[(&str, &str)]) -> Reply {
    send(b, "POST", target, headers, b"").await
}

async fn delete(b: &SampleBackend, target: &str, headers: &[(&str, &str)]) -> Reply {
    send(b, "DELETE", target, headers, b"").await
}

async fn demo() -> SampleBackend {
    BackendBuilder::sample_data().start().await.unwrap()
}
