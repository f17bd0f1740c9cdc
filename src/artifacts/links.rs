//! Expiring links: `POST /projects/:id/jobs/:job_id/artifacts/-/links` (by ref:
//! `POST /projects/:id/jobs/artifacts/-/links` with `ref` and `job` in the body) issues
//! `{public_url}/-/links/<token>`, which serves that archive, or one file of it, without
//! credentials until it expires: GET, HEAD, ranges and conditional requests, with the
//! headers of an authenticated download.
//!
//! The token is the claims (project id, job id, file path, expiry) and an HMAC-SHA256 of
//! them under `links.keys[0]`, both base64url: nothing is stored, so a link survives
//! restarts and works on every replica with the same keys. Every listed key verifies, so
//! a key can be rotated in while old links stay valid until their key is removed. A token
//! that does not verify (tampered, truncated, unknown key) is a 403 and an expired one a
//! 410, decided before storage or the backend is asked anything.
//!
//! Issuing checks the caller's access exactly as a download does (the backend decides).
//! Using a link asks nobody, unless `links.recheck`: then the backend is asked for the job
//! (as `links.service_token`, or anonymously) and an erased job's link is a 410. Without
//! recheck a link keeps working after its job is erased, until it expires, as long as the
//! object is in storage. In upstream mode the archive is located as the service token (or
//! anonymously), since the link's holder has no credentials to ask with.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::hmac;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bytes::Bytes;
use http::request::Parts;
use http::{header, HeaderValue, Response, StatusCode};

use super::content::FileEndpoint;
use super::source::ArchiveAt;
use super::Artifacts;
use crate::config::LinksConfig;
use crate::error::{GatewayError, Stop};
use crate::http_util::body::{self, Body};
use crate::request::route::{JobRef, JobSelector, ProjectRef};
use crate::upstream::jobs::Jobs;

/// Largest issue request body read.
pub const MAX_ISSUE_BODY: usize = 64 * 1024;
/// A link's lifetime when the request names none (shortened to `links.max_lifetime`).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);

const VERSION: u8 = 1;
/// Bound into every MAC, so a tag made for something else never verifies as a link.
const CONTEXT: &[u8] = b"artifact-gateway link v1\0";
/// version + expiry + project id + job id.
const FIXED_LEN: usize = 1 + 8 + 8 + 8;

/// What a link grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// Seconds since the Unix epoch; the link works while now is before it.
    pub expires_at: u64,
    pub project_id: u64,
    pub job_id: u64,
    /// A file of the archive, or `""` for the archive itself.
    pub path: String,
}

/// Why a token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Invalid,
    Expired,
}

/// The link keys: the first signs, all verify.
pub struct LinkKeys {
    keys: Vec<hmac::Key>,
}

impl LinkKeys {
    /// `None` without keys: links are off.
    pub fn new(config: &LinksConfig) -> Option<Self> {
        let keys: Vec<hmac::Key> = config
            .keys
            .iter()
            .map(|key| hmac::Key::new(hmac::HMAC_SHA256, &key.0))
            .collect();
        (!keys.is_empty()).then_some(Self { keys })
    }

    pub fn sign(&self, claims: &Claims) -> String {
        let payload = encode(claims);
        let tag = hmac::sign(&self.keys[0], &[CONTEXT, &payload].concat());
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(tag.as_ref())
        )
    }

    /// The claims of `token` if one of the keys made it, and it has not expired at `now`.
    pub fn verify(&self, token: &str, now: u64) -> Result<Claims, Refusal> {
        let (payload, tag) = token.split_once('.').ok_or(Refusal::Invalid)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| Refusal::Invalid)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| Refusal::Invalid)?;
        let signed = [CONTEXT, &payload].concat();
        if !self
            .keys
            .iter()
            .any(|key| hmac::verify(key, &signed, &tag).is_ok())
        {
            return Err(Refusal::Invalid);
        }
        let claims = decode(&payload).ok_or(Refusal::Invalid)?;
        if now >= claims.expires_at {
            return Err(Refusal::Expired);
        }
        Ok(claims)
    }
}

fn encode(claims: &Claims) -> Vec<u8> {
    let mut out = Vec::with_capacity(FIXED_LEN + claims.path.len());
    out.push(VERSION);
    out.extend_from_slice(&claims.expires_at.to_be_bytes());
    out.extend_from_slice(&claims.project_id.to_be_bytes());
    out.extend_from_slice(&claims.job_id.to_be_bytes());
    out.extend_from_slice(claims.path.as_bytes());
    out
}

fn decode(payload: &[u8]) -> Option<Claims> {
    if payload.len() < FIXED_LEN || payload[0] != VERSION {
        return None;
    }
    let u64_at = |at: usize| u64::from_be_bytes(payload[at..at + 8].try_into().unwrap_or([0; 8]));
    Some(Claims {
        expires_at: u64_at(1),
        project_id: u64_at(9),
        job_id: u64_at(17),
        path: String::from_utf8(payload[FIXED_LEN..].to_vec()).ok()?,
    })
}

/// `"90s"`, `"30m"`, `"1h"`, `"7d"`, or bare seconds.
fn parse_lifetime(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let n: u64 = text[..split].parse().ok()?;
    let unit = match &text[split..] {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(unit).map(Duration::from_secs)
}

/// The body of an issue request.
#[derive(serde::Deserialize, Default)]
struct IssueBody {
    path: Option<String>,
    expires_in: Option<String>,
    #[serde(rename = "ref")]
    ref_name: Option<String>,
    job: Option<String>,
}

/// A body field the by-ref form needs.
fn given<'a>(value: &'a Option<String>, name: &'static str) -> Result<&'a str, GatewayError> {
    value
        .as_deref()
        .filter(|v| !v.is_empty())
        .ok_or(GatewayError::MissingParam(name))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn invalid(text: &str) -> GatewayError {
    GatewayError::InvalidParam(text.to_owned())
}

/// A file path as the single-file routes take it.
fn check_path(path: &str) -> Result<(), GatewayError> {
    let bad = path.is_empty()
        || path.contains('\0')
        || path.ends_with('/')
        || path.split('/').any(|s| s == "." || s == "..");
    if bad {
        return Err(invalid("path is invalid"));
    }
    Ok(())
}

impl Artifacts {
    /// `POST …/jobs/:job_id/artifacts/-/links`, `POST …/jobs/artifacts/-/links`
    pub async fn issue_link(
        &self,
        jobs: &Jobs<'_>,
        project: &ProjectRef,
        job_id: Option<u64>,
        body: Bytes,
    ) -> Result<Response<Body>, Stop> {
        let Some(keys) = &self.link_keys else {
            return Err(GatewayError::NotFound("404 Not Found").into());
        };
        let request: IssueBody = if body.iter().all(u8::is_ascii_whitespace) {
            IssueBody::default()
        } else {
            serde_json::from_slice(&body)
                .map_err(|e| invalid(&format!("the body is not a valid link request: {e}")))?
        };
        let path = request.path.unwrap_or_default();
        if !path.is_empty() {
            check_path(&path)?;
        }
        let max = self.links.max_lifetime;
        let lifetime = match request.expires_in.as_deref() {
            None => DEFAULT_LIFETIME.min(max),
            Some(text) => match parse_lifetime(text) {
                Some(t) if !t.is_zero() && t <= max => t,
                _ => {
                    return Err(invalid(&format!(
                        "expires_in is invalid: a duration such as \"1h\", at most {}s",
                        max.as_secs()
                    ))
                    .into())
                }
            },
        };
        let job = match job_id {
            Some(id) => JobRef::new(project, JobSelector::Id(id)),
            None => JobRef::latest(
                project,
                given(&request.ref_name, "ref")?,
                given(&request.job, "job")?,
            ),
        };
        // As for a download: the backend decides.
        let (project_id, job_id) = self.source.identify(&self.storage, jobs, job).await?;
        if !path.is_empty() {
            // The file must be there: a link to nothing helps nobody.
            let numeric = ProjectRef::Id(project_id);
            let locate = |again| {
                self.source
                    .linked_archive(&self.storage, jobs, &numeric, job_id, again)
            };
            let path = &path;
            self.on_archive(locate, |archive, _| async move {
                match archive.index.get(path) {
                    Some(_) => Ok(()),
                    None => Err(GatewayError::NotFound("404 Not Found").into()),
                }
            })
            .await?;
        }
        let expires_at = now() + lifetime.as_secs();
        let token = keys.sign(&Claims {
            expires_at,
            project_id,
            job_id,
            path,
        });
        self.metrics.links_issued.inc();
        let expires = chrono::DateTime::from_timestamp(expires_at as i64, 0)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default();
        let answer = serde_json::json!({
            "url": format!("{}{}{token}", jobs.ctx.public_base, crate::request::route::LINKS_PREFIX),
            "expires_at": expires,
        })
        .to_string();
        let mut response = Response::new(body::full(answer));
        *response.status_mut() = StatusCode::CREATED;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        Ok(response)
    }

    /// `GET|HEAD /-/links/:token`; `jobs` asks as the service token, or anonymously.
    pub async fn serve_link(
        &self,
        jobs: &Jobs<'_>,
        parts: &Parts,
        token: &str,
    ) -> Result<Response<Body>, Stop> {
        let Some(keys) = &self.link_keys else {
            return Err(GatewayError::NotFound("404 Not Found").into());
        };
        let outcome = |name: &str| self.metrics.links.with_label_values(&[name]).inc();
        let claims = match keys.verify(token, now()) {
            Ok(claims) => claims,
            Err(Refusal::Invalid) => {
                outcome("invalid");
                return Err(GatewayError::Forbidden("invalid link").into());
            }
            Err(Refusal::Expired) => {
                outcome("expired");
                return Err(GatewayError::Gone("link expired").into());
            }
        };
        let project = ProjectRef::Id(claims.project_id);
        if self.links.recheck {
            let gone = match jobs.job(&project, claims.job_id).await {
                Ok(job) => !job.has_archive(),
                Err(Stop::Refused(_)) => true,
                Err(other) => return Err(other),
            };
            if gone {
                outcome("gone");
                return Err(GatewayError::Gone("the job's artifacts are gone").into());
            }
        }
        tracing::Span::current().record("job_id", claims.job_id);
        let locate = |again| {
            self.source
                .linked_archive(&self.storage, jobs, &project, claims.job_id, again)
        };
        let response = if claims.path.is_empty() {
            self.archive_at(parts, |again| {
                let located = locate(again);
                async move {
                    Ok(ArchiveAt {
                        location: located.await?,
                        redirect: None,
                    })
                }
            })
            .await?
        } else {
            self.entry_at(parts, locate, &claims.path, FileEndpoint::ByJob)
                .await?
        };
        outcome("served");
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LinkKey;

    fn keys(list: &[u8]) -> LinkKeys {
        let config = LinksConfig {
            keys: list.iter().map(|b| LinkKey(vec![*b; 32])).collect(),
            ..LinksConfig::default()
        };
        LinkKeys::new(&config).unwrap()
    }

    fn claims(path: &str) -> Claims {
        Claims {
            expires_at: 1_000,
            project_id: 7,
            job_id: 42,
            path: path.to_owned(),
        }
    }

    #[test]
    fn tokens_verify_under_any_listed_key_until_they_expire() {
        let old = keys(&[1]);
        let token = old.sign(&claims("dir/a b.txt"));
        assert!(!token.contains('/') && !token.contains('+') && !token.contains('='));
        assert_eq!(old.verify(&token, 999), Ok(claims("dir/a b.txt")));
        assert_eq!(old.verify(&token, 1_000), Err(Refusal::Expired));
        // Rotated: a new key signs, the old one still verifies.
        let rotated = keys(&[2, 1]);
        assert_eq!(rotated.verify(&token, 0), Ok(claims("dir/a b.txt")));
        assert_ne!(rotated.sign(&claims("")), old.sign(&claims("")));
        // Dropped: refused.
        assert_eq!(keys(&[2]).verify(&token, 0), Err(Refusal::Invalid));
        assert!(LinkKeys::new(&LinksConfig::default()).is_none());
    }

    #[test]
    fn tampered_and_truncated_tokens_are_invalid_even_when_expired() {
        let k = keys(&[1]);
        let token = k.sign(&claims(""));
        let (payload, tag) = token.split_once('.').unwrap();
        // Another job, same tag.
        let mut other = URL_SAFE_NO_PAD.decode(payload).unwrap();
        other[24] ^= 1;
        let forged = format!("{}.{tag}", URL_SAFE_NO_PAD.encode(&other));
        for bad in [
            forged.as_str(),
            &token[..token.len() - 1],
            payload,
            &token[1..],
            "",
            ".",
            "!!.!!",
        ] {
            assert_eq!(k.verify(bad, 5_000), Err(Refusal::Invalid), "{bad:?}");
        }
    }

    #[test]
    fn lifetimes() {
        assert_eq!(parse_lifetime("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_lifetime("30m"), Some(Duration::from_secs(1800)));
        assert_eq!(parse_lifetime("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_lifetime("7d"), Some(Duration::from_secs(7 * 86_400)));
        for bad in ["", "h", "1w", "-1h", "1.5h"] {
            assert_eq!(parse_lifetime(bad), None, "{bad}");
        }
    }
}
