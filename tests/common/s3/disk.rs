//! Direct access to the bucket's files, in s3s-fs's on-disk layout (see the module docs of
//! [`super`]): where an object lives, writing and deleting it behind the server's back,
//! and the sidecar files that hold a stored ETag.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::S3Server;

impl S3Server {
    /// Where the object `key` of the bucket lives on disk (whether or not it exists).
    pub fn object_path(&self, key: &str) -> PathBuf {
        assert!(
            !key.is_empty()
                && !key.starts_with('/')
                && !key.ends_with('/')
                && key
                    .split('/')
                    .all(|part| !part.is_empty() && part != "." && part != ".."),
            "key {key:?} has no file of its own under s3s-fs"
        );
        self.root.join(&self.bucket).join(key)
    }

    /// Write an object directly (through the filesystem under the bucket dir, creating parent
    /// dirs). The write is atomic (temp file + rename), and any sidecar left by an earlier S3
    /// upload of the key is removed, so the ETag becomes the MD5 of `bytes`.
    pub fn put(&self, key: &str, bytes: &[u8]) {
        static TMP: AtomicUsize = AtomicUsize::new(0);
        let path = self.object_path(key);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create the key's directories");
        }
        let tmp = self.root.join(format!(
            ".harness-put-{}.tmp",
            TMP.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&tmp, bytes).expect("write the object");
        self.remove_sidecars(key);
        std::fs::rename(&tmp, &path).expect("move the object into place");
    }

    /// Delete an object directly (file and sidecars); a missing object is not an error.
    pub fn delete(&self, key: &str) {
        let path = self.object_path(key);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("delete {}: {e}", path.display()),
        }
        self.remove_sidecars(key);
    }

    /// Record `etag` (32 hex digits) as the stored ETag of the object `key`, as an S3 PUT
    /// would have: without one, s3s-fs computes the MD5 of the object on every request,
    /// which for a multi-GiB sparse file written in place means reading all of it each time.
    pub fn set_etag(&self, key: &str, etag: &str) {
        let sidecar = self.root.join(format!(
            ".bucket-{}.object-{}.internal.json",
            base64_url(&self.bucket),
            base64_url(key)
        ));
        std::fs::write(sidecar, format!(r#"{{"e_tag":"{etag}"}}"#)).expect("write the sidecar");
    }

    fn remove_sidecars(&self, key: &str) {
        let prefix = format!(
            ".bucket-{}.object-{}",
            base64_url(&self.bucket),
            base64_url(key)
        );
        for suffix in [".metadata.json", ".internal.json"] {
            let _ = std::fs::remove_file(self.root.join(format!("{prefix}{suffix}")));
        }
    }
}

/// URL-safe base64 without padding, as s3s-fs names its sidecar files.
fn base64_url(s: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in s.as_bytes().chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
        }
    }
    out
}
