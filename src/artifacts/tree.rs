//! The listing of an archive's files: `GET /projects/:id/jobs/:job_id/artifacts/tree`
//! (GitLab 18.8's route and answer) and the gateway's by-ref form
//! `/projects/:id/jobs/artifacts/:ref_name/tree?job=NAME`.
//!
//! Served from the cached zip index alone: a warm archive costs no storage read, and no
//! `metadata.gz` is needed, so archives from any writer can be listed. Directories the zip
//! names only as prefixes of its entries are listed like explicit `dir/` entries.
//!
//! The order is the byte order of the paths, a directory's path ending in `/` (so
//! `a.txt`, `a/`, `a0`); recursively, every directory comes right before its contents.
//! `mode` is the Unix mode the writer recorded, else `100644` for files and `040755` for
//! directories.

use http::request::Parts;
use http::{header, HeaderValue, Method, Response, StatusCode};

use super::Artifacts;
use crate::archive::index::{Listed, ZipIndex};
use crate::error::{GatewayError, Stop};
use crate::http_util::body::{self, Body};
use crate::request::route::JobRef;
use crate::upstream::jobs::Jobs;

/// GitLab's page size when none is asked for, and its ceiling.
const DEFAULT_PER_PAGE: usize = 20;
const MAX_PER_PAGE: usize = 100;

const FILE_MODE: u32 = 0o100_644;
const DIRECTORY_MODE: u32 = 0o040_755;
const TYPE_BITS: u32 = 0o170_000;
const DIRECTORY_TYPE: u32 = 0o040_000;
const FILE_TYPE: u32 = 0o100_000;

/// The listing's query parameters, validated as Grape does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeQuery {
    /// `""` for the root, else the directory's path with one trailing `/`.
    pub dir: String,
    pub recursive: bool,
    pub page: usize,
    pub per_page: usize,
}

impl TreeQuery {
    /// From the raw query string. `page` below 1 is 1; `per_page` 0 is the default, above
    /// 100 is 100; what does not parse is a 400 naming the parameter.
    pub fn parse(query: Option<&str>) -> Result<Self, GatewayError> {
        let mut parsed = TreeQuery {
            dir: String::new(),
            recursive: false,
            page: 1,
            per_page: DEFAULT_PER_PAGE,
        };
        let invalid = |name: &str| GatewayError::InvalidParam(format!("{name} is invalid"));
        for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match &*key {
                "path" => parsed.dir = directory(&value).ok_or_else(|| invalid("path"))?,
                "recursive" => {
                    parsed.recursive = boolean(&value).ok_or_else(|| invalid("recursive"))?
                }
                "page" => {
                    let page: usize = value.parse().map_err(|_| invalid("page"))?;
                    parsed.page = page.max(1);
                }
                "per_page" => {
                    let per_page: usize = value.parse().map_err(|_| invalid("per_page"))?;
                    parsed.per_page = match per_page {
                        0 => DEFAULT_PER_PAGE,
                        n => n.min(MAX_PER_PAGE),
                    };
                }
                _ => {}
            }
        }
        Ok(parsed)
    }
}

/// `path` as a directory prefix: `""` for the root, else with one trailing `/`. `None`
/// for what can name no directory of an archive (NUL, `.` or `..` segments).
fn directory(path: &str) -> Option<String> {
    let path = path.strip_suffix('/').unwrap_or(path);
    if path.is_empty() {
        return Some(String::new());
    }
    if path.contains('\0') || path.split('/').any(|s| s == "." || s == "..") {
        return None;
    }
    Some(format!("{path}/"))
}

/// Grape's Boolean coercion.
fn boolean(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "t" | "1" | "yes" | "y" | "on" => Some(true),
        "false" | "f" | "0" | "no" | "n" | "off" => Some(false),
        _ => None,
    }
}

/// One line of the listing; paths borrow the index's names (a directory's path is a
/// prefix of the entries under it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Item<'a> {
    pub path: &'a str,
    /// `None` for a directory.
    pub size: Option<u64>,
    pub mode: u32,
}

impl Item<'_> {
    /// The last segment of the path, without a directory's trailing `/`.
    pub fn name(&self) -> &str {
        let path = self.path.strip_suffix('/').unwrap_or(self.path);
        path.rsplit('/').next().unwrap_or(path)
    }

    /// GitLab's fields, in GitLab's order.
    fn json(&self) -> ItemJson<'_> {
        ItemJson {
            name: self.name(),
            path: self.path,
            kind: if self.size.is_some() {
                "file"
            } else {
                "directory"
            },
            size: self.size,
            mode: format!("{:06o}", self.mode),
        }
    }
}

#[derive(serde::Serialize)]
struct ItemJson<'a> {
    name: &'a str,
    path: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    mode: String,
}

fn directory_item<'a>(path: &'a str, entry: Option<&Listed<'_>>) -> Item<'a> {
    let mode = match entry.map(|e| u32::from(e.unix_mode)) {
        Some(mode) if mode != 0 => mode & 0o7777 | DIRECTORY_TYPE,
        _ => DIRECTORY_MODE,
    };
    Item {
        path,
        size: None,
        mode,
    }
}

fn file_item<'a>(entry: &Listed<'a>) -> Item<'a> {
    let mode = match u32::from(entry.unix_mode) {
        0 => FILE_MODE,
        mode if mode & TYPE_BITS == 0 => mode | FILE_TYPE,
        mode => mode,
    };
    Item {
        path: entry.name,
        size: Some(entry.info.uncompressed_size),
        mode,
    }
}

/// Every item under `dir` (`""` or ending in `/`), in order; `None` when `dir` is not a
/// directory of the archive.
pub fn list<'a>(
    index: &'a ZipIndex,
    dir: &'a str,
    recursive: bool,
    mut visit: impl FnMut(Item<'a>),
) -> Option<()> {
    if !index.is_directory(dir) {
        return None;
    }
    // Recursively: the chain of directories already listed above the current entry.
    let mut open: Vec<&'a str> = Vec::new();
    for entry in index.starting_with(dir) {
        let name = entry.name;
        if name.len() == dir.len() {
            continue; // the directory's own `dir/` entry
        }
        if !recursive {
            match name[dir.len()..].find('/') {
                Some(at) => {
                    let path = &name[..dir.len() + at + 1];
                    // Entries under one directory are one run of the sorted names, and
                    // its own `dir/` entry, if any, comes first.
                    if open.last() != Some(&path) {
                        open.clear();
                        open.push(path);
                        visit(directory_item(path, (name == path).then_some(&entry)));
                    }
                }
                None => visit(file_item(&entry)),
            }
            continue;
        }
        while open.last().is_some_and(|d| !name.starts_with(d)) {
            open.pop();
        }
        let mut from = open.last().map_or(dir.len(), |d| d.len());
        while let Some(at) = name[from..].find('/') {
            let path = &name[..from + at + 1];
            visit(directory_item(path, (name == path).then_some(&entry)));
            open.push(path);
            from = path.len();
        }
        if !name.ends_with('/') {
            visit(file_item(&entry));
        }
    }
    Some(())
}

/// One page of the listing, as JSON, and how many items all pages hold.
struct Page {
    json: String,
    total: usize,
}

fn page(index: &ZipIndex, query: &TreeQuery) -> Option<Page> {
    let start = (query.page - 1).saturating_mul(query.per_page);
    let end = start.saturating_add(query.per_page);
    let mut items = Vec::new();
    let mut total = 0;
    list(index, &query.dir, query.recursive, |item| {
        if (start..end).contains(&total) {
            items.push(item);
        }
        total += 1;
    })?;
    let items: Vec<ItemJson> = items.iter().map(Item::json).collect();
    let json = serde_json::to_string(&items).unwrap_or_else(|_| "[]".to_owned());
    Some(Page { json, total })
}

/// GitLab's pagination headers; `Link` URLs are absolute on `base` and keep every other
/// query parameter, in order, followed by `page` and `per_page`.
fn pagination_headers(
    headers: &mut http::HeaderMap,
    base: &str,
    query: Option<&str>,
    at: &TreeQuery,
    total: usize,
) {
    let total_pages = total.div_ceil(at.per_page).max(1);
    let link = |page: usize, rel: &str| {
        let mut url = form_urlencoded::Serializer::new(String::new());
        for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            if key != "page" && key != "per_page" {
                url.append_pair(&key, &value);
            }
        }
        url.append_pair("page", &page.to_string());
        url.append_pair("per_page", &at.per_page.to_string());
        format!("<{base}?{}>; rel=\"{rel}\"", url.finish())
    };
    let prev = (at.page > 1).then(|| at.page - 1);
    let next = (at.page < total_pages).then(|| at.page + 1);
    let mut links: Vec<String> = Vec::new();
    links.extend(prev.map(|p| link(p, "prev")));
    links.extend(next.map(|p| link(p, "next")));
    links.push(link(1, "first"));
    links.push(link(total_pages, "last"));
    let optional = |n: Option<usize>| n.map(|n| n.to_string()).unwrap_or_default();
    for (name, value) in [
        ("x-page", at.page.to_string()),
        ("x-per-page", at.per_page.to_string()),
        ("x-next-page", optional(next)),
        ("x-prev-page", optional(prev)),
        ("x-total", total.to_string()),
        ("x-total-pages", total_pages.to_string()),
        ("link", links.join(", ")),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
}

impl Artifacts {
    /// `GET|HEAD /projects/:id/jobs/:job_id/artifacts/tree` and
    /// `/projects/:id/jobs/artifacts/:ref_name/tree?job=NAME`
    pub async fn tree(
        &self,
        jobs: &Jobs<'_>,
        parts: &Parts,
        job: JobRef<'_>,
    ) -> Result<Response<Body>, Stop> {
        let query = TreeQuery::parse(parts.uri.query())?;
        let query = &query;
        let page = self
            .on_archive(
                |again| self.caller_archive(jobs, job, again),
                |archive, _| async move {
                    page(&archive.index, query)
                        .ok_or(GatewayError::NotFound("404 Not Found").into())
                },
            )
            .await?;
        let json = page.json;
        let mut response = Response::new(if parts.method == Method::HEAD {
            body::empty()
        } else {
            body::full(json.clone())
        });
        *response.status_mut() = StatusCode::OK;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(json.len()));
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("max-age=0, private, must-revalidate"),
        );
        let base = format!("{}{}", jobs.ctx.public_base, parts.uri.path());
        pagination_headers(headers, &base, parts.uri.query(), query, page.total);
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_as_grape_reads_them() {
        let q = |s: &str| TreeQuery::parse(Some(s));
        let root = q("").unwrap();
        assert_eq!(
            (root.dir.as_str(), root.recursive, root.page, root.per_page),
            ("", false, 1, 20)
        );
        let deep = q("path=a%2Fb/&recursive=TRUE&page=0&per_page=500").unwrap();
        assert_eq!(
            (deep.dir.as_str(), deep.recursive, deep.page, deep.per_page),
            ("a/b/", true, 1, 100)
        );
        assert_eq!(q("path=a+b").unwrap().dir, "a b/");
        assert_eq!(q("path=/").unwrap().dir, "");
        assert_eq!(q("per_page=0").unwrap().per_page, 20);
        assert!(!q("recursive=0").unwrap().recursive);
        for (bad, name) in [
            ("recursive=maybe", "recursive"),
            ("page=x", "page"),
            ("per_page=-1", "per_page"),
            ("path=a/../b", "path"),
            ("path=%00", "path"),
            ("path=./a", "path"),
        ] {
            let error = q(bad).unwrap_err();
            assert_eq!(error.status(), StatusCode::BAD_REQUEST, "{bad}");
            assert_eq!(
                error.body(),
                serde_json::json!({ "error": format!("{name} is invalid") })
            );
        }
    }
}
