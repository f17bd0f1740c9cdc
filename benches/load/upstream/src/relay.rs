//! A TCP relay in front of the S3 server that keeps small responses from waiting on a
//! delayed ACK.
//!
//! The harness's S3 server (`tests/common/s3.rs`) leaves Nagle's algorithm on, and s3s-fs
//! streams a GET's body after its headers in a separate write. A small body (one file of
//! an archive: a few hundred bytes) then waits until the headers are acknowledged, and the
//! receiver delays that ACK by up to 40 ms on Linux: every warm single-file request took
//! about 44 ms, in both modes, without this relay. Real object stores do not behave so.
//!
//! The relay acknowledges at once (`TCP_QUICKACK`, set again after every read and write,
//! as the kernel clears it) and sends without delay on both sides (`TCP_NODELAY`). It costs
//! one more loopback hop and one more copy per byte, the same in both modes. Each
//! connection ends when both of its peers have closed; the accept loop ends with the
//! runtime.

use std::net::SocketAddr;
use std::os::fd::AsRawFd as _;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// Per connection and direction: the copy buffer.
const BUFFER_BYTES: usize = 64 * 1024;

fn quickack(stream: &TcpStream) {
    let one: libc::c_int = 1;
    // Safety: setsockopt on a socket this process owns, with a valid int option.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_QUICKACK,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// Listen on 127.0.0.1:0 and relay every connection to `target`; returns the address.
pub async fn start(target: SocketAddr) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            tokio::spawn(relay(client, target));
        }
    });
    addr
}

async fn relay(mut client: TcpStream, target: SocketAddr) {
    let Ok(mut server) = TcpStream::connect(target).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    quickack(&server);
    let (mut client_read, mut client_write) = client.split();
    let (mut server_read, mut server_write) = server.split();
    let up = async {
        let mut buf = vec![0u8; BUFFER_BYTES];
        loop {
            let n = match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if server_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
            quickack(server_write.as_ref());
        }
        let _ = server_write.shutdown().await;
    };
    let down = async {
        let mut buf = vec![0u8; BUFFER_BYTES];
        loop {
            let n = match server_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            quickack(server_read.as_ref());
            if client_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = client_write.shutdown().await;
    };
    tokio::join!(up, down);
}
