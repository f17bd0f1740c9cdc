use super::*;

/// Runs "METHOD path?query" (`~` stands for `/api/v4/projects/`) and renders the answer on
/// one line, `name|project|fields...` or the error, so that each case is one table row.
fn run(req: &str) -> String {
    let (method, target) = req.split_once(' ').unwrap();
    let target = target.replacen('~', PREFIX, 1);
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target.as_str(), None),
    };
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let route = match match_route(&method, path, query) {
        Ok(route) => route,
        Err(RouteError::BadPath(_)) => return "BadPath".into(),
        Err(e @ RouteError::MissingParam(_)) => return format!("Missing: {e}"),
    };
    let mut out = route.name().to_owned();
    match route.project() {
        Some(ProjectRef::Id(id)) => out += &format!("|{id}"),
        Some(ProjectRef::Path(path)) => out += &format!("|path:{path}"),
        None => {}
    }
    let fields = match route {
        Route::ListPipelineJobs { pipeline_id, .. } => vec![pipeline_id.to_string()],
        Route::GetJob { job_id, .. }
        | Route::JobAction { job_id, .. }
        | Route::Trace { job_id, .. }
        | Route::Archive { job_id, .. } => vec![job_id.to_string()],
        Route::ArtifactFile { job_id, path, .. } => vec![job_id.to_string(), path],
        Route::ArchiveByRef { ref_name, job, .. } => vec![ref_name, job],
        Route::ArtifactFileByRef {
            ref_name,
            path,
            job,
            ..
        } => vec![ref_name, path, job],
        Route::ArchiveView { job, .. } => match job {
            JobName::Id(id) => vec![id.to_string()],
            JobName::LatestOnRef { ref_name, job } => vec![ref_name, job],
        },
        Route::IssueLink { job_id, .. } => job_id.iter().map(u64::to_string).collect(),
        Route::Link { token } => vec![token],
        Route::ListProjectJobs { .. } | Route::Reserved | Route::Other => vec![],
    };
    for field in fields {
        out = out + "|" + &field;
    }
    out
}

/// Each case is "request => expected rendering".
fn check(cases: &[&str]) {
    for case in cases {
        let (req, want) = case.split_once(" => ").unwrap();
        assert_eq!(run(req), want, "{req}");
    }
}

#[test]
fn every_route_shape() {
    check(&[
        "GET ~5/jobs => list_project_jobs|5",
        "GET ~5/pipelines/9/jobs => list_pipeline_jobs|5|9",
        "GET ~5/jobs/7 => get_job|5|7",
        "POST ~5/jobs/7/cancel => cancel|5|7",
        "POST ~5/jobs/7/retry => retry|5|7",
        "POST ~5/jobs/7/erase => erase|5|7",
        "POST ~5/jobs/7/play => play|5|7",
        "POST ~5/jobs/7/artifacts/keep => keep_artifacts|5|7",
        "DELETE ~5/jobs/7/artifacts => delete_artifacts|5|7",
        "GET ~5/jobs/7/trace => trace|5|7",
        "HEAD ~5/jobs/7/trace => trace|5|7",
        "GET ~5/jobs/7/artifacts => archive|5|7",
        "HEAD ~5/jobs/7/artifacts => archive|5|7",
        "GET ~5/jobs/7/artifacts/dir/a.txt => artifact_file|5|7|dir/a.txt",
        "HEAD ~5/jobs/7/artifacts/a.txt => artifact_file|5|7|a.txt",
        "GET ~5/jobs/artifacts/main/download?job=b => archive_by_ref|5|main|b",
        "HEAD ~5/jobs/artifacts/main/download?job=b => archive_by_ref|5|main|b",
        "GET ~5/jobs/artifacts/main/raw/d/a.txt?job=b => artifact_file_by_ref|5|main|d/a.txt|b",
        "HEAD ~5/jobs/artifacts/main/raw/a?job=b => artifact_file_by_ref|5|main|a|b",
    ]);
    assert_eq!(Route::Other.name(), "other");
    assert_eq!(Route::Other.project(), None);
}

#[test]
fn project_ids_and_encoded_paths() {
    check(&[
        "GET ~group%2Fsub%2Fproject/jobs => list_project_jobs|path:group/sub/project",
        "GET ~group%2fproject/jobs/3 => get_job|path:group/project|3",
        "GET ~my-project/jobs => list_project_jobs|path:my-project",
        "GET ~007/jobs => list_project_jobs|7",
        "GET ~%35/jobs => list_project_jobs|5", // classified after decoding, as GitLab
        "GET ~18446744073709551615/jobs => list_project_jobs|18446744073709551615",
        "GET ~18446744073709551616/jobs => other",
        "GET ~/jobs => other",
        "GET ~%FF/jobs => other",
        "GET ~%C3/jobs => other",
        // An unencoded slash cannot be told apart from route segments.
        "GET ~group/project/jobs => other",
    ]);
    assert_eq!(ProjectRef::Path("g/s/p".into()).to_string(), "g/s/p");
    assert_eq!(ProjectRef::Id(5).to_string(), "5");
}

#[test]
fn job_and_pipeline_ids_are_ascii_digits_only() {
    for bad in ["+7", "-7", "7a", "%37", "", "99999999999999999999", "٣"] {
        assert_eq!(run(&format!("GET ~5/jobs/{bad}")), "other", "{bad:?}");
        assert_eq!(run(&format!("GET ~5/jobs/{bad}/trace")), "other", "{bad:?}");
        let pipeline = format!("GET ~5/pipelines/{bad}/jobs");
        assert_eq!(run(&pipeline), "other", "{bad:?}");
    }
}

#[test]
fn wrong_methods_are_other() {
    check(&[
        "HEAD ~5/jobs => other",
        "POST ~5/jobs => other",
        "HEAD ~5/pipelines/9/jobs => other",
        "HEAD ~5/jobs/7 => other",
        "DELETE ~5/jobs/7 => other",
        "GET ~5/jobs/7/cancel => other",
        "PUT ~5/jobs/7/retry => other",
        "POST ~5/jobs/7/trace => other",
        "POST ~5/jobs/7/artifacts => other",
        "PUT ~5/jobs/7/artifacts => other",
        "POST ~5/jobs/7/artifacts/a.txt => other",
        "DELETE ~5/jobs/7/artifacts/keep => other",
        "OPTIONS ~5/jobs/7/artifacts/a.txt => other",
        "PATCH ~5/jobs/7/trace => other",
        // Wrong method on a by-ref route is forwarded, not answered 400 for a missing job.
        "POST ~5/jobs/artifacts/main/download => other",
        "DELETE ~5/jobs/artifacts/main/raw/a => other",
    ]);
}

#[test]
fn keep_is_an_action_for_post_and_a_file_for_get() {
    check(&[
        "POST ~5/jobs/3/artifacts/keep => keep_artifacts|5|3",
        "GET ~5/jobs/3/artifacts/keep => artifact_file|5|3|keep",
        "HEAD ~5/jobs/3/artifacts/keep => artifact_file|5|3|keep",
        "GET ~5/jobs/3/artifacts/ => BadPath", // empty path
    ]);
}

#[test]
fn file_paths_are_decoded() {
    let f = "artifact_file|1|2|";
    for (raw, decoded) in [
        ("dir/a%20b.txt", "dir/a b.txt"),
        ("%23tag.txt", "#tag.txt"),
        ("what%3F.txt", "what?.txt"),
        ("dir%2Fname.txt", "dir/name.txt"),
        ("a+b.txt", "a+b.txt"), // paths are not form-encoded
        ("%C3%A9t%C3%A9.txt", "été.txt"),
        ("été.txt", "été.txt"),
        ("a\\..\\b", "a\\..\\b"), // backslash is ordinary
        ("%zz%4", "%zz%4"),       // malformed escapes stay literal
        ("..a/b...", "..a/b..."),
        ("dir/", "dir/"), // a directory: kept, the zip lookup answers 404
        ("a//b", "a//b"),
        ("/abs", "/abs"),
    ] {
        let got = run(&format!("GET ~1/jobs/2/artifacts/{raw}"));
        assert_eq!(got, format!("{f}{decoded}"), "{raw:?}");
    }
}

#[test]
fn raw_non_ascii_from_http_uri() {
    // http 1.x passes raw UTF-8 through in the path; it must route like the encoded form.
    let uri: http::Uri = "/api/v4/projects/1/jobs/2/artifacts/été.txt"
        .parse()
        .unwrap();
    assert_eq!(
        run(&format!("GET {}", uri.path())),
        "artifact_file|1|2|été.txt"
    );
}

#[test]
fn bad_file_paths() {
    let bad = "../x %2e%2e/x %2E%2E/x .%2e/x a/../b ./x a/. a/.. .. a%2F..%2Fb a%00b %00 %FF a/%C3";
    for bad in bad.split(' ') {
        let by_id = format!("GET ~1/jobs/2/artifacts/{bad}");
        assert_eq!(run(&by_id), "BadPath", "{bad:?}");
        let by_ref = format!("GET ~1/jobs/artifacts/main/raw/{bad}?job=b");
        assert_eq!(run(&by_ref), "BadPath", "{bad:?}");
    }
}

#[test]
fn archive_by_ref() {
    check(&[
        // python-gitlab sends the ref's slashes raw; an encoded %2F decodes the same.
        "GET ~5/jobs/artifacts/feature/foo/download?job=b => archive_by_ref|5|feature/foo|b",
        "GET ~5/jobs/artifacts/feature%2Ffoo/download?job=b => archive_by_ref|5|feature/foo|b",
        "GET ~5/jobs/artifacts/v1.0+b/download?job=b => archive_by_ref|5|v1.0+b|b",
        // Download is declared first in GitLab, so it wins over a `raw` segment.
        "GET ~5/jobs/artifacts/main/raw/download?job=b => archive_by_ref|5|main/raw|b",
        "GET ~5/jobs/artifacts//download?job=b => other",
        "GET ~5/jobs/artifacts/download?job=b => other",
        "GET ~5/jobs/artifacts/main/download/?job=b => other",
        "GET ~5/jobs/artifacts/a/../b/download?job=b => BadPath",
        "GET ~5/jobs/artifacts/%00/download?job=b => BadPath",
    ]);
}

#[test]
fn file_by_ref() {
    check(&[
        "GET ~5/jobs/artifacts/feature/foo/raw/a%20b?job=j => artifact_file_by_ref|5|feature/foo|a b|j",
        "GET ~5/jobs/artifacts/feature%2Ffoo/raw/a?job=j => artifact_file_by_ref|5|feature/foo|a|j",
        // Split at the first `raw` segment; a ref with a `raw` segment must be encoded.
        "GET ~5/jobs/artifacts/f/raw/x/raw/a?job=j => artifact_file_by_ref|5|f|x/raw/a|j",
        "GET ~5/jobs/artifacts/f%2Fraw%2Fx/raw/a?job=j => artifact_file_by_ref|5|f/raw/x|a|j",
        "GET ~5/jobs/artifacts/raw/raw/a?job=j => artifact_file_by_ref|5|raw|a|j",
        "GET ~5/jobs/artifacts/main/raw/dir/?job=j => artifact_file_by_ref|5|main|dir/|j",
        "GET ~5/jobs/artifacts/main/rawx/a?job=j => other",
        "GET ~5/jobs/artifacts/main/raw?job=j => other",
        "GET ~5/jobs/artifacts/raw/a?job=j => other", // empty ref
        "GET ~5/jobs/artifacts//raw/a?job=j => other",
        "GET ~5/jobs/artifacts/main?job=j => other",
        "GET ~5/jobs/artifacts/..%2Fx/raw/a?job=j => BadPath",
        "GET ~5/jobs/artifacts/main/raw/?job=j => BadPath", // empty path
    ]);
}

#[test]
fn job_query_parameter() {
    check(&[
        "GET ~5/jobs/artifacts/m/download => Missing: job is missing",
        "GET ~5/jobs/artifacts/m/download? => Missing: job is missing",
        "GET ~5/jobs/artifacts/m/download?job= => Missing: job is missing",
        "GET ~5/jobs/artifacts/m/download?jobs=x&private_token=t => Missing: job is missing",
        "GET ~5/jobs/artifacts/m/raw/a.txt => Missing: job is missing",
        "GET ~5/jobs/artifacts/m/download?job=a+b => archive_by_ref|5|m|a b",
        "GET ~5/jobs/artifacts/m/download?job=a%20b%2Bc => archive_by_ref|5|m|a b+c",
        "GET ~5/jobs/artifacts/m/download?x=1&job=t&y=2 => archive_by_ref|5|m|t",
        "GET ~5/jobs/artifacts/m/download?job=a&job=b => archive_by_ref|5|m|b", // as Rack
    ]);
}

#[test]
fn non_api_unknown_and_trailing_slash_paths_are_other() {
    let paths = "/ /api/v4/projects ~ ~5 ~5/ /api/v3/projects/5/jobs /API/v4/projects/5/jobs \
        /api/v4/user ~5/issues ~5/jobs/ ~5//jobs ~5/jobs/7/ ~5/jobs/7/trace/ ~5/jobs/7/unknown \
        ~5/pipelines/9 ~5/pipelines/9/jobs/ ~5/jobs/artifacts";
    for path in paths.split_whitespace().chain([""]) {
        assert_eq!(run(&format!("GET {path}")), "other", "{path:?}");
    }
}

/// Checks what every returned path or ref promises, whatever the input.
fn assert_clean(s: &str) {
    assert!(!s.is_empty() && !s.contains('\0'), "{s:?}");
    assert!(!s.split('/').any(|seg| seg == "." || seg == ".."), "{s:?}");
}

#[test]
fn garbage_never_panics() {
    let pieces: Vec<&str> =
        "/|//|%|%2F|%2f|%2e|%2E%2E|..|.|%00|%FF|%C3|%A9|%C3%A9|é|\0|raw|/raw/|/download|\
        download|artifacts|keep|jobs|pipelines|cancel|trace|0|7|18446744073709551616|+|?|#|\\|a| "
            .split('|')
            .collect();
    let methods = [Method::GET, Method::HEAD, Method::POST, Method::DELETE];
    let queries = ["job=x", "", "job=%FF&", "&&=&job", "%", "job=a+b"];
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state as usize
    };
    let starts = [
        "",
        PREFIX,
        "~5/jobs/",
        "~5/jobs/7/artifacts/",
        "~5/jobs/artifacts/",
    ];
    for i in 0..20_000 {
        let mut path = starts[i % starts.len()].replacen('~', PREFIX, 1);
        for _ in 0..next() % 12 {
            path.push_str(pieces[next() % pieces.len()]);
        }
        let method = &methods[next() % methods.len()];
        let query = queries.get(next() % (queries.len() + 1)).copied(); // sometimes None
        match match_route(method, &path, query) {
            Ok(Route::ArtifactFile { path, .. }) => assert_clean(&path),
            Ok(Route::ArchiveByRef { ref_name, job, .. }) => {
                assert_clean(&ref_name);
                assert!(!job.is_empty());
            }
            Ok(Route::ArtifactFileByRef {
                ref_name,
                path,
                job,
                ..
            }) => {
                assert_clean(&ref_name);
                assert_clean(&path);
                assert!(!job.is_empty());
            }
            Ok(_) | Err(_) => {}
        }
    }
}

#[test]
fn the_gateways_own_routes() {
    check(&[
        "GET ~5/jobs/7/artifacts/tree => artifact_tree|5|7",
        "HEAD ~5/jobs/7/artifacts/tree?path=a&recursive=true => artifact_tree|5|7",
        "GET ~5/jobs/artifacts/main/tree?job=b => artifact_tree_by_ref|5|main|b",
        "GET ~5/jobs/artifacts/feature/x/tree?job=b => artifact_tree_by_ref|5|feature/x|b",
        "GET ~5/jobs/artifacts/main/tree => Missing: job is missing",
        "GET ~5/jobs/artifacts/tree?job=b => other", // empty ref
        // GitLab's `raw` shape is tried first: a file named `tree` by ref stays a file.
        "GET ~5/jobs/artifacts/main/raw/d/tree?job=b => artifact_file_by_ref|5|main|d/tree|b",
        "GET ~5/jobs/7/artifacts/d/tree => artifact_file|5|7|d/tree",
        "GET ~5/jobs/7/artifacts/-/zip?path=a/ => archive_part|5|7",
        "HEAD ~5/jobs/7/artifacts/-/zip => archive_part|5|7",
        "GET ~5/jobs/artifacts/main/-/zip?job=b&glob=*.xml => archive_part_by_ref|5|main|b",
        "GET ~5/jobs/artifacts/f%2Fg/-/zip?job=b => archive_part_by_ref|5|f/g|b",
        "GET ~5/jobs/artifacts/-/zip?job=b => other",
        "POST ~5/jobs/7/artifacts/-/links => issue_link|5|7",
        "POST ~5/jobs/artifacts/-/links => issue_link_by_ref|5",
        "GET ~5/jobs/7/artifacts/-/links => reserved",
        "POST ~5/jobs/7/artifacts/-/zip => other",
        "DELETE ~5/jobs/7/artifacts/tree => other",
        // `-/` is reserved in the single-file routes.
        "GET ~5/jobs/7/artifacts/-/other => reserved",
        "GET ~5/jobs/7/artifacts/-/ => reserved",
        "GET ~5/jobs/artifacts/main/raw/-/zip?job=b => reserved",
        "GET ~5/jobs/7/artifacts/a/-/zip => artifact_file|5|7|a/-/zip",
        "GET ~5/jobs/7/artifacts/-x => artifact_file|5|7|-x",
        "GET /-/links/abc.def => link|abc.def",
        "HEAD /-/links/abc => link|abc",
        "GET /-/links/ => other",
        "GET /-/links/a/b => other",
        "POST /-/links/abc => other",
    ]);
}
