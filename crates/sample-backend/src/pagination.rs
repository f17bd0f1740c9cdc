//! The list endpoints' query parameters (`scope`/`scope[]`, `page`, `per_page`) and
//! GitLab's pagination: cutting a page out of the list, and the `X-*` and `Link` headers
//! that describe it.

use super::error::ApiError;
use super::model::JobStatus;

/// GitLab's ceiling on `per_page`.
pub(super) const MAX_PER_PAGE: usize = 100;

/// The list endpoints' query parameters, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ListParams {
    /// Statuses to keep; empty keeps all.
    pub(super) scopes: Vec<JobStatus>,
    pub(super) page: usize,
    pub(super) per_page: usize,
}

/// Read `scope`/`scope[]`, `page` and `per_page` from the decoded query pairs.
/// `page` below 1 is 1; `per_page` 0 is the default and above 100 is 100.
pub(super) fn list_params(
    query: &[(String, String)],
    default_per_page: usize,
) -> Result<ListParams, ApiError> {
    let mut params = ListParams {
        scopes: Vec::new(),
        page: 1,
        per_page: default_per_page,
    };
    for (key, value) in query {
        match key.as_str() {
            "scope" | "scope[]" => {
                let status = JobStatus::parse(value)
                    .ok_or(ApiError::BadRequest("scope does not have a valid value"))?;
                params.scopes.push(status);
            }
            "page" => {
                let page: usize = value
                    .parse()
                    .map_err(|_| ApiError::BadRequest("page is invalid"))?;
                params.page = page.max(1);
            }
            "per_page" => {
                let per_page: usize = value
                    .parse()
                    .map_err(|_| ApiError::BadRequest("per_page is invalid"))?;
                params.per_page = match per_page {
                    0 => default_per_page,
                    n => n.min(MAX_PER_PAGE),
                };
            }
            _ => {}
        }
    }
    Ok(params)
}

/// Where one page sits among all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PageInfo {
    pub(super) page: usize,
    pub(super) per_page: usize,
    pub(super) has_next: bool,
    /// `(X-Total, X-Total-Pages)`, when the endpoint reports totals.
    pub(super) totals: Option<(usize, usize)>,
}

/// Cut page `page` of `per_page` items out of `items`.
pub(super) fn paginate<T>(
    items: Vec<T>,
    page: usize,
    per_page: usize,
    with_totals: bool,
) -> (Vec<T>, PageInfo) {
    let total = items.len();
    let start = (page - 1).saturating_mul(per_page);
    let has_next = start.saturating_add(per_page) < total;
    let total_pages = total.div_ceil(per_page).max(1);
    let slice = items.into_iter().skip(start).take(per_page).collect();
    let info = PageInfo {
        page,
        per_page,
        has_next,
        totals: with_totals.then_some((total, total_pages)),
    };
    (slice, info)
}

/// GitLab's pagination headers. `Link` URLs are absolute on `base_url` and keep every
/// other query parameter, in order, followed by `page` and `per_page`.
pub(super) fn pagination_headers(
    base_url: &str,
    raw_path: &str,
    query: &[(String, String)],
    info: PageInfo,
) -> Vec<(&'static str, String)> {
    let link = |page: usize, rel: &str| {
        let mut url = form_urlencoded::Serializer::new(String::new());
        for (key, value) in query {
            if key != "page" && key != "per_page" {
                url.append_pair(key, value);
            }
        }
        url.append_pair("page", &page.to_string());
        url.append_pair("per_page", &info.per_page.to_string());
        format!("<{base_url}{raw_path}?{}>; rel=\"{rel}\"", url.finish())
    };
    let prev = (info.page > 1).then(|| info.page - 1);
    let next = info.has_next.then(|| info.page + 1);
    let mut links = Vec::new();
    links.extend(prev.map(|p| link(p, "prev")));
    links.extend(next.map(|p| link(p, "next")));
    links.push(link(1, "first"));
    let optional = |n: Option<usize>| n.map(|n| n.to_string()).unwrap_or_default();
    let mut headers = vec![
        ("X-Page", info.page.to_string()),
        ("X-Per-Page", info.per_page.to_string()),
        ("X-Next-Page", optional(next)),
        ("X-Prev-Page", optional(prev)),
    ];
    if let Some((total, total_pages)) = info.totals {
        links.push(link(total_pages, "last"));
        headers.push(("X-Total", total.to_string()));
        headers.push(("X-Total-Pages", total_pages.to_string()));
    }
    headers.push(("Link", links.join(", ")));
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_params_validate_and_clamp() {
        let q = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let p = list_params(&q(&[("scope[]", "failed"), ("scope", "running")]), 20).unwrap();
        assert_eq!(p.scopes, vec![JobStatus::Failed, JobStatus::Running]);
        assert_eq!((p.page, p.per_page), (1, 20));
        let p = list_params(&q(&[("page", "0"), ("per_page", "500")]), 20).unwrap();
        assert_eq!((p.page, p.per_page), (1, MAX_PER_PAGE));
        assert_eq!(
            list_params(&q(&[("per_page", "0")]), 7).unwrap().per_page,
            7
        );
        let bad = |pairs: &[(&str, &str)]| list_params(&q(pairs), 20).unwrap_err().message();
        assert_eq!(
            bad(&[("scope[]", "bogus")]),
            "400 Bad request - scope does not have a valid value"
        );
        assert_eq!(bad(&[("scope", "Failed")]), bad(&[("scope[]", "bogus")]));
        assert_eq!(bad(&[("page", "x")]), "400 Bad request - page is invalid");
        assert_eq!(
            bad(&[("per_page", "-1")]),
            "400 Bad request - per_page is invalid"
        );
    }

    #[test]
    fn pagination_headers_without_and_with_totals() {
        let query = vec![
            ("scope[]".to_string(), "failed".to_string()),
            ("page".into(), "2".into()),
        ];
        let (items, info) = paginate((1..=5).collect::<Vec<_>>(), 2, 2, false);
        assert_eq!(items, vec![3, 4]);
        let h = pagination_headers("http://h:1", "/p", &query, info);
        let get = |name: &str| h.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str());
        assert_eq!(get("X-Next-Page"), Some("3"));
        assert_eq!(get("X-Prev-Page"), Some("1"));
        assert_eq!(get("X-Total"), None);
        assert_eq!(
            get("Link"),
            Some(
                "<http://h:1/p?scope%5B%5D=failed&page=1&per_page=2>; rel=\"prev\", \
                 <http://h:1/p?scope%5B%5D=failed&page=3&per_page=2>; rel=\"next\", \
                 <http://h:1/p?scope%5B%5D=failed&page=1&per_page=2>; rel=\"first\""
            )
        );
        let (items, info) = paginate((1..=5).collect::<Vec<_>>(), 3, 2, true);
        assert_eq!(items, vec![5]);
        let h = pagination_headers("http://h:1", "/p", &[], info);
        let get = |name: &str| h.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str());
        assert_eq!(get("X-Next-Page"), Some(""));
        assert_eq!(get("X-Total"), Some("5"));
        assert_eq!(get("X-Total-Pages"), Some("3"));
        assert!(get("Link")
            .unwrap()
            .ends_with("<http://h:1/p?page=3&per_page=2>; rel=\"last\""));
        let (items, info) = paginate(Vec::<u8>::new(), 1, 20, true);
        assert!(items.is_empty());
        assert_eq!((info.has_next, info.totals), (false, Some((0, 1))));
    }
}
