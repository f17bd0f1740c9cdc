//! S3's conditional GET and HEAD (`If-Match`, `If-None-Match`, `If-Modified-Since`,
//! `If-Unmodified-Since`), which s3s-fs ignores: evaluated here against the current object,
//! with S3's precedence, before s3s-fs serves the request.

use s3s::dto::{ETag, ETagCondition, GetObjectInput, HeadObjectInput, Timestamp, TimestampFormat};
use s3s::{s3_error, S3Result};

/// Truncate to whole seconds, the precision of HTTP dates (Last-Modified, If-Modified-Since).
fn whole_seconds(t: &Timestamp) -> Option<Timestamp> {
    let mut buf = Vec::new();
    t.format(TimestampFormat::HttpDate, &mut buf).ok()?;
    Timestamp::parse(TimestampFormat::HttpDate, std::str::from_utf8(&buf).ok()?).ok()
}

/// The conditional headers of a GetObject or HeadObject request.
pub(super) struct Conditions {
    if_match: Option<ETagCondition>,
    if_none_match: Option<ETagCondition>,
    if_modified_since: Option<Timestamp>,
    if_unmodified_since: Option<Timestamp>,
}

impl Conditions {
    pub(super) fn of_get(input: &GetObjectInput) -> Self {
        Conditions {
            if_match: input.if_match.clone(),
            if_none_match: input.if_none_match.clone(),
            if_modified_since: input.if_modified_since.clone(),
            if_unmodified_since: input.if_unmodified_since.clone(),
        }
    }

    pub(super) fn of_head(input: &HeadObjectInput) -> Self {
        Conditions {
            if_match: input.if_match.clone(),
            if_none_match: input.if_none_match.clone(),
            if_modified_since: input.if_modified_since.clone(),
            if_unmodified_since: input.if_unmodified_since.clone(),
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.if_match.is_none()
            && self.if_none_match.is_none()
            && self.if_modified_since.is_none()
            && self.if_unmodified_since.is_none()
    }

    /// S3's evaluation against the current object: 412 conditions first, then 304 ones.
    pub(super) fn check(
        &self,
        e_tag: Option<&ETag>,
        last_modified: Option<&Timestamp>,
    ) -> S3Result<()> {
        let modified = last_modified.and_then(whole_seconds);
        let newer_than = |since: &Timestamp| match (&modified, whole_seconds(since)) {
            (Some(modified), Some(since)) => *modified > since,
            _ => true,
        };
        let etag_matches = |condition: &ETagCondition, strong: bool| match condition {
            ETagCondition::Any => true,
            ETagCondition::ETag(wanted) => e_tag.is_some_and(|current| {
                if strong {
                    current.strong_cmp(wanted)
                } else {
                    current.weak_cmp(wanted)
                }
            }),
        };

        if let Some(condition) = &self.if_match {
            if !etag_matches(condition, true) {
                return Err(s3_error!(PreconditionFailed));
            }
        } else if let Some(since) = &self.if_unmodified_since {
            if newer_than(since) {
                return Err(s3_error!(PreconditionFailed));
            }
        }

        if let Some(condition) = &self.if_none_match {
            if etag_matches(condition, false) {
                return Err(s3_error!(NotModified));
            }
        } else if let Some(since) = &self.if_modified_since {
            if !newer_than(since) {
                return Err(s3_error!(NotModified));
            }
        }
        Ok(())
    }
}
