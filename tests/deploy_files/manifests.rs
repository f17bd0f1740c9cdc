//! Every YAML file under `deploy/` parses; every Kubernetes document has an `apiVersion`,
//! a `kind` and a name; the kustomization lists every manifest but the example secret and
//! retags the Deployment's image.

use std::collections::BTreeSet;

use crate::support::{
    documents, gateway_container, one_of_kind, seq_of, str_of, strings, the_document, yaml_files,
};

#[test]
fn every_yaml_file_parses() {
    let files = yaml_files();
    for expected in [
        "docker-compose.yml",
        "kubernetes/configmap.yaml",
        "kubernetes/deployment.yaml",
        "kubernetes/hpa.yaml",
        "kubernetes/kustomization.yaml",
        "kubernetes/pdb.yaml",
        "kubernetes/secret.example.yaml",
        "kubernetes/service.yaml",
    ] {
        assert!(
            files.iter().any(|f| f == expected),
            "deploy/{expected} missing"
        );
    }
    for file in &files {
        assert!(!documents(file).is_empty(), "deploy/{file}: no document");
    }
}

#[test]
fn kubernetes_documents_have_api_version_kind_and_name() {
    for file in yaml_files() {
        if !file.starts_with("kubernetes/") {
            continue;
        }
        for doc in documents(&file) {
            str_of(&doc["apiVersion"], &format!("{file}: apiVersion"));
            let kind = str_of(&doc["kind"], &format!("{file}: kind"));
            if kind != "Kustomization" {
                let name = str_of(&doc["metadata"]["name"], &format!("{file}: metadata.name"));
                assert!(!name.is_empty(), "{file}: empty metadata.name");
            }
        }
    }
    let expected = [
        ("ConfigMap", "v1"),
        ("Deployment", "apps/v1"),
        ("Service", "v1"),
        ("HorizontalPodAutoscaler", "autoscaling/v2"),
        ("PodDisruptionBudget", "policy/v1"),
        ("Secret", "v1"),
    ];
    for (kind, api_version) in expected {
        assert_eq!(one_of_kind(kind)["apiVersion"], api_version, "{kind}");
    }
}

#[test]
fn kustomization_lists_every_manifest_but_the_example_secret() {
    let kustomization = the_document("kubernetes/kustomization.yaml");
    assert_eq!(kustomization["kind"], "Kustomization");
    let listed: BTreeSet<String> = strings(&kustomization["resources"], "resources")
        .into_iter()
        .collect();
    // The example Secret is left out on purpose: applying it would overwrite the real one.
    let expected: BTreeSet<String> = yaml_files()
        .into_iter()
        .filter_map(|f| f.strip_prefix("kubernetes/").map(str::to_owned))
        .filter(|f| f != "kustomization.yaml" && f != "secret.example.yaml")
        .collect();
    assert_eq!(listed, expected);
    // The image it retags is the Deployment's.
    let image = str_of(
        &gateway_container(&one_of_kind("Deployment"))["image"],
        "image",
    )
    .to_owned();
    let retagged = seq_of(&kustomization["images"], "images")
        .iter()
        .map(|i| str_of(&i["name"], "images name"))
        .collect::<Vec<_>>();
    assert!(
        retagged
            .iter()
            .any(|name| image.starts_with(&format!("{name}:"))),
        "kustomization images {retagged:?} do not name the Deployment's image {image}"
    );
}
