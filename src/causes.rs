//! The one walker of an error's chain of causes, behind the log text of a failure, the
//! recognition of timeouts and the reason an aborted body gives.
//!
//! Client and storage errors hide the cause that matters (refused, reset, timed out) deep in
//! their source chain. `io::Error::source` skips the error it wraps, so the walk steps into
//! that error instead.

use std::error::Error;

/// The error, then each of its causes, outermost first.
pub fn causes<'a>(
    error: &'a (dyn Error + 'static),
) -> impl Iterator<Item = &'a (dyn Error + 'static)> {
    std::iter::successors(Some(error), |&e| cause_of(e))
}

fn cause_of<'a>(error: &'a (dyn Error + 'static)) -> Option<&'a (dyn Error + 'static)> {
    match error.downcast_ref::<std::io::Error>() {
        Some(io) => match io.get_ref() {
            Some(inner) => Some(inner as &(dyn Error + 'static)),
            None => io.source(),
        },
        None => error.source(),
    }
}

/// The first cause of type `T`.
pub fn find<'a, T: Error + 'static>(error: &'a (dyn Error + 'static)) -> Option<&'a T> {
    causes(error).find_map(|e| e.downcast_ref::<T>())
}

/// An error and its causes on one line (`a: b: c`); a cause that reads as the one before
/// it (an `io::Error` shows the error it wraps) is said once.
pub fn text(error: &(dyn Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in causes(error) {
        let part = cause.to_string();
        if parts.last() != Some(&part) {
            parts.push(part);
        }
    }
    parts.join(": ")
}

/// Whether a timer ran out anywhere in the chain, judged by the errors' types: an
/// `io::Error` of kind `TimedOut`, a tokio timer's `Elapsed`, hyper's own timeouts, an
/// object store HTTP request that timed out. (Not by text: a retry error prints its
/// configured `retry_timeout` whatever went wrong.)
pub fn is_timeout(error: &(dyn Error + 'static)) -> bool {
    causes(error).any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
            || e.is::<tokio::time::error::Elapsed>()
            || e.downcast_ref::<hyper::Error>()
                .is_some_and(hyper::Error::is_timeout)
            || e.downcast_ref::<object_store::client::HttpError>()
                .is_some_and(|http| http.kind() == object_store::client::HttpErrorKind::Timeout)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("inner")]
    struct Inner;

    #[test]
    fn the_walk_steps_into_what_an_io_error_wraps() {
        let error = Outer(std::io::Error::other(Inner));
        assert!(find::<Inner>(&error).is_some());
        assert_eq!(text(&error), "outer: inner");
    }

    #[test]
    fn timeouts_are_known_by_type_not_by_text() {
        let timed_out = Outer(std::io::Error::new(std::io::ErrorKind::TimedOut, "slow"));
        assert!(is_timeout(&timed_out));
        let says_so = Outer(std::io::Error::other("retry_timeout: 3s, timed out"));
        assert!(!is_timeout(&says_so));
    }
}
