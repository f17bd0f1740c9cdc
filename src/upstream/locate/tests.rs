use super::*;

fn artifacts(hosts: &[&str]) -> ArtifactsConfig {
    ArtifactsConfig {
        allowed_hosts: hosts.iter().map(|h| (*h).to_owned()).collect(),
        ..ArtifactsConfig::default()
    }
}

fn follow(location: &str, hosts: &[&str]) -> Result<String, String> {
    let base = "http://gitlab.internal:8080/api/v4/projects/1/jobs/2/artifacts";
    followable(
        base,
        &HeaderValue::from_str(location).unwrap(),
        &artifacts(hosts),
    )
    .map(|uri| uri.to_string())
    .map_err(|e| e.to_string())
}

#[test]
fn locations_are_resolved_and_guarded() {
    let signed = "https://s3.example.com/bucket/key?X-Amz-Signature=abc&X-Amz-Expires=900";
    assert_eq!(follow(signed, &[]).unwrap(), signed);
    assert_eq!(follow(signed, &["s3.example.com"]).unwrap(), signed);
    assert_eq!(
        follow("/uploads/a.zip?sig=1", &[]).unwrap(),
        "http://gitlab.internal:8080/uploads/a.zip?sig=1"
    );
    for bad in [
        "file:///etc/passwd",
        "ftp://s3.example.com/a",
        "gopher://x/",
    ] {
        let error = follow(bad, &[]).unwrap_err();
        assert!(error.contains("not http or https"), "{bad}: {error}");
    }
    let error = follow(
        "http://169.254.169.254/latest/meta-data",
        &["s3.example.com"],
    )
    .unwrap_err();
    assert!(error.contains("allowed_hosts"), "{error}");
    assert!(
        !error.contains("169.254"),
        "the URL stays out of the error: {error}"
    );
    // A relative Location resolves to the backend's host, which must be allowed too.
    assert!(follow("/uploads/a.zip", &["s3.example.com"]).is_err());
    assert!(!follow(signed, &["other.example.com"])
        .unwrap_err()
        .contains("Signature"));
}

#[test]
fn archive_routes_name_the_job_or_the_ref() {
    let project = ProjectRef::Path("group/app".into());
    let (path, pairs, job) = archive_route(&project, JobSelector::Id(7));
    assert_eq!(path, "/api/v4/projects/group%2Fapp/jobs/7/artifacts");
    assert!(pairs.is_empty());
    assert_eq!(job, Some(7));
    let by_ref = JobSelector::LatestOnRef {
        ref_name: "feature/x y",
        job_name: "build & test",
    };
    let (path, pairs, job) = archive_route(&ProjectRef::Id(5), by_ref);
    assert_eq!(
        path,
        "/api/v4/projects/5/jobs/artifacts/feature%2Fx%20y/download"
    );
    assert_eq!(pairs, [("job".to_owned(), "build & test".to_owned())]);
    assert_eq!(job, None);
}
