//! Decoder bombs (issue 8, defect 3): entries whose headers ask LZMA, xz, zstd or bzip2 for
//! large dictionaries or windows, against the real binary with a decoder cap of 8 MiB, and
//! the memory budget that decoders share. The bombs' headers are crafted (no writer makes
//! a 4 GiB dictionary for a few KiB of data); the valid entries come from real encoders
//! (liblzma, zstd, libbzip2 through async-compression).
//!
//! Expected values come from the test's own knowledge: the content is generated here and
//! the caps are set here.
//!
//! This module holds the zip container and the harness the cases share; the compressed
//! streams come from [`streams`].

use sample_backend::{BackendBuilder, JobSpec, JobStatus, SampleBackend, Visibility};

use crate::support::{Gateway, TempDir};

mod decoder_caps;
mod memory_budget;
mod streams;

const CAP: &str = "[zip]\nmax_decoder_memory = \"8MiB\"\n";
const MIB: usize = 1 << 20;

/// Zip methods.
const BZIP2: u16 = 12;
const LZMA: u16 = 14;
const ZSTD: u16 = 93;
const XZ: u16 = 95;

struct Entry {
    name: &'static str,
    method: u16,
    flags: u16,
    content_len: usize,
    crc: u32,
    data: Vec<u8>,
}

impl Entry {
    fn new(name: &'static str, method: u16, content: &[u8], data: Vec<u8>) -> Self {
        Self {
            name,
            method,
            flags: if method == LZMA { 0x0002 } else { 0 },
            content_len: content.len(),
            crc: crc32fast::hash(content),
            data,
        }
    }
}

/// A zip archive of `entries` (no zip64, no extra fields).
fn zip(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for e in entries {
        let offset = out.len() as u32;
        let fields = |sig: u32, out: &mut Vec<u8>, central: bool| {
            out.extend_from_slice(&sig.to_le_bytes());
            if central {
                out.extend_from_slice(&63u16.to_le_bytes()); // made by
            }
            out.extend_from_slice(&63u16.to_le_bytes()); // needed
            out.extend_from_slice(&e.flags.to_le_bytes());
            out.extend_from_slice(&e.method.to_le_bytes());
            out.extend_from_slice(&[0, 0, 0x21, 0]); // time, date
            out.extend_from_slice(&e.crc.to_le_bytes());
            out.extend_from_slice(&(e.data.len() as u32).to_le_bytes());
            out.extend_from_slice(&(e.content_len as u32).to_le_bytes());
            out.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes()); // extra
            if central {
                out.extend_from_slice(&[0; 6]); // comment, disk, internal attributes
                out.extend_from_slice(&0u32.to_le_bytes()); // external attributes
                out.extend_from_slice(&offset.to_le_bytes());
            }
            out.extend_from_slice(e.name.as_bytes());
        };
        fields(0x0403_4b50, &mut out, false);
        out.extend_from_slice(&e.data);
        fields(0x0201_4b50, &mut central, true);
    }
    let (start, len, n) = (out.len() as u32, central.len() as u32, entries.len() as u16);
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&start.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

struct Setup {
    gateway: Gateway,
    _backend: SampleBackend,
    _storage: TempDir,
}

/// The real binary in front of a backend with one public project (1) whose job 1 has
/// `entries` as its archive, with `config` merged over the base.
async fn setup(entries: &[Entry], config: &str) -> Setup {
    setup_archives(&[zip(entries)], config).await
}

/// As [`setup`], job `i + 1` having `archives[i]`.
async fn setup_archives(archives: &[Vec<u8>], config: &str) -> Setup {
    let mut backend = BackendBuilder::new().project(1, "bombs/app", Visibility::Public, &[]);
    let storage = TempDir::new("decoder-bombs");
    for (i, archive) in archives.iter().enumerate() {
        let job = i as u64 + 1;
        backend = backend.job(
            JobSpec::new(job, 1, "build", &format!("ref-{job}"), JobStatus::Success)
                .with_archive(archive.len() as u64),
        );
        storage.write(&format!("1/{job}/artifacts.zip"), archive);
    }
    let backend = backend.start().await.expect("backend starts");
    let gateway = Gateway::spawn(&backend.url(), &storage.url(), config).await;
    Setup {
        gateway,
        _backend: backend,
        _storage: storage,
    }
}

impl Setup {
    async fn get(&self, name: &str) -> reqwest::Response {
        self.get_from(1, name).await
    }

    async fn get_from(&self, job: u64, name: &str) -> reqwest::Response {
        crate::common::client()
            .get(
                self.gateway
                    .url(&format!("/projects/1/jobs/{job}/artifacts/{name}")),
            )
            .send()
            .await
            .expect("the gateway answers")
    }

    /// `GET name` must be a 501 whose GitLab JSON message names the cap and `says`.
    async fn expect_refused(&self, name: &str, says: &str) {
        let response = self.get(name).await;
        if response.status() != 501 {
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            panic!("{name}: {status} {text}\n{}", self.gateway.log().join("\n"));
        }
        let body = crate::common::json(response).await;
        let message = body["message"].as_str().expect("a message");
        assert!(
            message.starts_with("501 Not Implemented - ")
                && message.contains(says)
                && message.contains("zip.max_decoder_memory (8 MiB)"),
            "{name}: {message}"
        );
    }

    /// `GET name` must be a 200 with exactly `content`.
    async fn expect_exact(&self, name: &str, content: &[u8]) {
        let response = self.get(name).await;
        if response.status() != 200 {
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            panic!("{name}: {status} {text}\n{}", self.gateway.log().join("\n"));
        }
        let body = response.bytes().await.expect("the whole body");
        assert!(
            body == content,
            "{name}: {} bytes differ from the {} expected",
            body.len(),
            content.len()
        );
    }
}
