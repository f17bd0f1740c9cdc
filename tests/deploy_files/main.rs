//! Structure checks of the deployment files in `deploy/`: the Dockerfile, the compose file,
//! the Kubernetes manifests and the container configuration. No network and no docker: the
//! files are parsed and checked against each other and against the gateway's own
//! configuration loader, so a renamed key, a port that no longer lines up or a probe on the
//! wrong path fails here instead of in a cluster. One test binary grouped by file:
//!
//! - [`manifests`]: every YAML file parses; the Kubernetes documents and the kustomization.
//! - [`deployment`]: the Deployment (probes, ports, security, resources, shutdown, env)
//!   and the Service, HorizontalPodAutoscaler and PodDisruptionBudget around it.
//! - [`compose`]: the compose file's services, dependencies and gateway env.
//! - [`image`]: the Dockerfile, the image's own configuration, and the systemd unit.
//!
//! Reading and picking apart the files is in [`support`].

mod support;

mod compose;
mod deployment;
mod image;
mod manifests;
