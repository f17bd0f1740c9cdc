//! How a file from an archive is presented: its type, whether a browser shows it or saves
//! it, and the headers that keep attacker-controlled content from running on the gateway's
//! origin.
//!
//! Artifacts are written by CI jobs, so anyone who can push a branch controls them. GitLab
//! serves them with `nosniff` and `Content-Security-Policy: default-src 'none'`, and on the
//! raw-by-ref endpoint shows only types that cannot script (images, video, PDF, plain text)
//! inline; HTML, SVG, XML and scripts are downloads.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Which endpoint serves the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileEndpoint {
    /// `/jobs/:job_id/artifacts/*path`: always a download, as Workhorse does.
    ByJob,
    /// `/jobs/artifacts/:ref/raw/*path`: safe types inline.
    RawByRef,
}

/// `Content-Type` and `Content-Disposition` for an entry named `name`.
pub fn presentation(name: &str, endpoint: FileEndpoint) -> (String, String) {
    let guessed = mime_guess::from_path(name).first_or_octet_stream();
    let attachment = attachment(base_name(name));
    if endpoint == FileEndpoint::ByJob {
        return (guessed.essence_str().to_owned(), attachment);
    }
    let (kind, sub) = (guessed.type_().as_str(), guessed.subtype().as_str());
    // The essence keeps structured-syntax suffixes (`image/svg+xml`), which `subtype` drops.
    let essence = guessed.essence_str();
    let scriptable = ["html", "xml", "javascript", "ecmascript"]
        .iter()
        .any(|word| essence.contains(word));
    match (kind, sub) {
        _ if scriptable => (guessed.essence_str().to_owned(), attachment),
        ("text", _) => ("text/plain; charset=utf-8".to_owned(), "inline".to_owned()),
        ("image", _) | ("video", _) | ("application", "pdf") => {
            (guessed.essence_str().to_owned(), "inline".to_owned())
        }
        _ => (guessed.essence_str().to_owned(), attachment),
    }
}

fn base_name(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// RFC 6266 / 5987: an ASCII fallback and the exact UTF-8 name.
const EXT_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'!')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'^')
    .remove(b'`')
    .remove(b'|');

fn attachment(file: &str) -> String {
    let fallback: String = file
        .chars()
        .map(|c| match c {
            '"' | '\\' => '_',
            c if c.is_ascii_graphic() || c == ' ' => c,
            _ => '_',
        })
        .collect();
    format!(
        "attachment; filename=\"{fallback}\"; filename*=UTF-8''{}",
        utf8_percent_encode(file, EXT_VALUE)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_job_is_always_a_download_with_the_base_name() {
        let (kind, disposition) = presentation("site/index.html", FileEndpoint::ByJob);
        assert_eq!(kind, "text/html");
        assert_eq!(
            disposition,
            "attachment; filename=\"index.html\"; filename*=UTF-8''index.html"
        );
        let (kind, _) = presentation("bin/tool", FileEndpoint::ByJob);
        assert_eq!(kind, "application/octet-stream");
    }

    #[test]
    fn raw_by_ref_shows_only_types_that_cannot_script() {
        let cases = [
            ("a/b.png", "image/png", "inline"),
            ("report.pdf", "application/pdf", "inline"),
            ("notes.txt", "text/plain; charset=utf-8", "inline"),
            ("data.csv", "text/plain; charset=utf-8", "inline"),
            ("style.css", "text/plain; charset=utf-8", "inline"),
            ("clip.mp4", "video/mp4", "inline"),
            ("index.html", "text/html", "attachment"),
            ("logo.svg", "image/svg+xml", "attachment"),
            ("feed.xml", "text/xml", "attachment"),
            ("app.js", "text/javascript", "attachment"),
            ("module.mjs", "application/javascript", "attachment"),
            ("archive.tar.gz", "application/gzip", "attachment"),
        ];
        for (name, kind, disposition) in cases {
            let (got_kind, got_disposition) = presentation(name, FileEndpoint::RawByRef);
            assert_eq!(got_kind, kind, "{name}");
            assert!(
                got_disposition.starts_with(disposition),
                "{name}: {got_disposition}"
            );
        }
    }

    #[test]
    fn unicode_and_quotes_in_names_are_encoded() {
        let (_, disposition) = presentation("dir/été \"q\".txt", FileEndpoint::ByJob);
        assert_eq!(
            disposition,
            "attachment; filename=\"_t_ _q_.txt\"; filename*=UTF-8''%C3%A9t%C3%A9%20%22q%22.txt"
        );
    }
}
