//! A raw HTTP/1.1 client for what an HTTP library would not send or would hide: request
//! targets sent byte for byte, requests cut short, and responses read to the last byte the
//! server wrote before closing (a short body, or no status line at all).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long an exchange may take unless the caller says otherwise.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// `{method} {target} HTTP/1.1` with `Host`, the given headers and `Connection: close`, so
/// that the server ends the exchange by closing the connection.
pub fn request(method: &str, target: &[u8], host: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut out = format!("{method} ").into_bytes();
    out.extend_from_slice(target);
    out.extend_from_slice(format!(" HTTP/1.1\r\nHost: {host}\r\n").as_bytes());
    for (name, value) in headers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out
}

/// Everything read from one connection.
pub struct Received {
    pub bytes: Vec<u8>,
    /// The server closed the connection (or reset it) before the deadline.
    pub closed: bool,
}

impl Received {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    /// The response, or a panic naming `what` when the connection closed before a status
    /// line.
    pub fn response(&self, what: &str) -> RawResponse {
        parse(&self.bytes).unwrap_or_else(|| {
            panic!(
                "{what}: connection closed before status line ({} bytes: {:?})",
                self.bytes.len(),
                String::from_utf8_lossy(&self.bytes[..self.bytes.len().min(200)])
            )
        })
    }
}

/// Read from `stream` until the server closes it or `deadline` passes.
pub async fn read_until_closed(stream: &mut TcpStream, deadline: Duration) -> Received {
    let mut bytes = Vec::new();
    let closed = tokio::time::timeout(deadline, async {
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await
    .is_ok();
    Received { bytes, closed }
}

/// Read from `stream` until the server closes it, nothing arrives for `quiet`, or
/// `deadline` passes: for servers that may keep the connection open after answering.
pub async fn read_until_quiet(
    stream: &mut TcpStream,
    quiet: Duration,
    deadline: Duration,
) -> Received {
    let mut bytes = Vec::new();
    let mut closed = false;
    let _ = tokio::time::timeout(deadline, async {
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            match tokio::time::timeout(quiet, stream.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) => {
                    closed = true;
                    break;
                }
                Err(_) => break,
                Ok(Ok(n)) => bytes.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    Received { bytes, closed }
}

/// Write `request` on a fresh connection and read until the server closes it or `deadline`
/// passes.
pub async fn exchange(addr: SocketAddr, request: &[u8], deadline: Duration) -> Received {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("write the request");
    read_until_closed(&mut stream, deadline).await
}

/// As [`exchange`], asserting that the server closed the connection in time.
pub async fn exchange_closed(addr: SocketAddr, request: &[u8]) -> Received {
    let received = exchange(addr, request, DEADLINE).await;
    assert!(
        received.closed,
        "the connection stayed open for {DEADLINE:?} after {:?}",
        String::from_utf8_lossy(&request[..request.len().min(200)])
    );
    received
}

/// One request (`target` sent as given, headers, `Connection: close`), its response read
/// until the server closes the connection; panics if there is no status line.
pub async fn send(
    addr: SocketAddr,
    method: &str,
    target: &[u8],
    headers: &[(&str, &str)],
) -> RawResponse {
    let request = request(method, target, &addr.to_string(), headers);
    let what = format!("{method} {}", String::from_utf8_lossy(target));
    exchange_closed(addr, &request).await.response(&what)
}

/// A response head and whatever body arrived.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    /// The head as text, status line included, without the blank line.
    pub head: String,
    pub headers: HeaderMap,
    /// The body as sent (chunked bodies decoded); shorter than announced when cut.
    pub body: Vec<u8>,
    /// A chunked body ended with its last chunk; a body with a Content-Length had all of
    /// it.
    pub complete: bool,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn content_length(&self) -> Option<u64> {
        self.header("content-length")?.trim().parse().ok()
    }

    pub fn is_chunked(&self) -> bool {
        self.header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body[..self.body.len().min(200)])
            )
        })
    }
}

/// Parse a response: `None` when `bytes` hold no complete head (the connection closed
/// before the status line, or within the head).
pub fn parse(bytes: &[u8]) -> Option<RawResponse> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .filter(|line| line.starts_with("HTTP/"))
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())?;
    let mut headers = HeaderMap::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .unwrap_or_else(|| panic!("not a header line: {line:?}"));
        headers.append(
            HeaderName::from_bytes(name.trim().as_bytes()).expect("a header name"),
            HeaderValue::from_bytes(value.trim().as_bytes()).expect("a header value"),
        );
    }
    let mut response = RawResponse {
        status,
        head,
        headers,
        body: Vec::new(),
        complete: false,
    };
    let rest = &bytes[end + 4..];
    if response.is_chunked() {
        let (body, complete) = dechunk(rest);
        response.body = body;
        response.complete = complete;
    } else {
        response.body = rest.to_vec();
        response.complete = response
            .content_length()
            .is_none_or(|length| rest.len() as u64 >= length);
    }
    Some(response)
}

/// Decode a chunked body: the data, and whether the last chunk arrived.
pub fn dechunk(mut rest: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    loop {
        let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") else {
            return (out, false);
        };
        let size_text = String::from_utf8_lossy(&rest[..line_end]);
        let size_text = size_text.split(';').next().unwrap().trim();
        let size = usize::from_str_radix(size_text, 16).expect("a hex chunk size");
        rest = &rest[line_end + 2..];
        if size == 0 {
            return (out, true);
        }
        if rest.len() < size {
            out.extend_from_slice(rest);
            return (out, false);
        }
        out.extend_from_slice(&rest[..size]);
        rest = rest.get(size + 2..).unwrap_or_default();
    }
}

/// The status codes of every HTTP/1.1 response head in `bytes`, in order (pipelined or
/// interim responses).
pub fn statuses(bytes: &[u8]) -> Vec<u16> {
    let text = String::from_utf8_lossy(bytes);
    text.match_indices("HTTP/1.1 ")
        .filter_map(|(i, _)| text.get(i + 9..i + 12)?.parse().ok())
        .collect()
}
