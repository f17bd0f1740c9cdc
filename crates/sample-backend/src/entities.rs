//! The user and project objects of `GET /user` and `GET /projects/:id`, in GitLab's shape
//! (its `Entities::UserPublic` and `Entities::Project`, trimmed to the fields a client reads
//! first). Enough for python-gitlab's `gl.auth()` and a non-lazy `gl.projects.get(id)`.
//!
//! Users are numbered by username order from 1, as `Sudo` with a numeric id names them;
//! times are fixed, like the job JSON's. URLs are on the backend's own base, or on the
//! forwarded host (`X-Forwarded-Host`/`-Proto`) as its `Link` headers are.

use serde::Serialize;

use super::model::{Project, State, Visibility};

/// Creation time of every sample user and project.
const CREATED_AT: &str = "2024-01-01T00:00:00.000Z";

impl State {
    /// The user id of `username` (its place in [`Self::usernames`], from 1).
    fn user_id(&self, username: &str) -> u64 {
        let position = self.usernames().iter().position(|n| n.as_str() == username);
        position.map_or(0, |i| i as u64 + 1)
    }

    /// `GET /user`'s answer for `username`, its URLs on `base` (`http://host:port`).
    pub(super) fn user_json(&self, username: &str, base: &str) -> UserJson {
        let admin = self.admins.contains(username);
        UserJson {
            id: self.user_id(username),
            username: username.to_owned(),
            name: display_name(username),
            state: "active",
            locked: false,
            avatar_url: None,
            web_url: format!("{base}/{username}"),
            created_at: CREATED_AT,
            bio: "",
            public_email: None,
            bot: false,
            email: format!("{username}@example.com"),
            projects_limit: 100_000,
            can_create_group: true,
            can_create_project: true,
            two_factor_enabled: false,
            external: false,
            private_profile: false,
            is_admin: admin.then_some(true),
        }
    }

    /// `GET /projects/:id`'s answer for `project`, its URLs on `base` (`http://host:port`).
    pub(super) fn project_json(&self, project: &Project, base: &str) -> ProjectJson {
        let full_path = project.path.as_str();
        let (namespace_path, path) = full_path.rsplit_once('/').unwrap_or(("", full_path));
        let namespace_name = namespace_path.rsplit('/').next().unwrap_or_default();
        let web_url = format!("{base}/{full_path}");
        // `git@host:path.git`: SSH has its own port, so the HTTP one is dropped.
        let authority = base
            .split_once("://")
            .map_or(base, |(_, authority)| authority);
        let host = authority
            .rsplit_once(':')
            .map_or(authority, |(host, _port)| host);
        let api = format!("{base}/api/v4/projects/{}", project.id);
        ProjectJson {
            id: project.id,
            description: None,
            name: path.to_owned(),
            name_with_namespace: full_path.replace('/', " / "),
            path: path.to_owned(),
            path_with_namespace: full_path.to_owned(),
            created_at: CREATED_AT,
            default_branch: "main",
            tag_list: Vec::new(),
            topics: Vec::new(),
            ssh_url_to_repo: format!("git@{host}:{full_path}.git"),
            http_url_to_repo: format!("{web_url}.git"),
            web_url: web_url.clone(),
            readme_url: None,
            avatar_url: None,
            forks_count: 0,
            star_count: 0,
            last_activity_at: CREATED_AT,
            namespace: NamespaceJson {
                // Projects and their group share no id space in GitLab; a fixed offset
                // keeps a group's id apart from its first project's.
                id: 1000 + project.id,
                name: namespace_name.to_owned(),
                path: namespace_name.to_owned(),
                kind: "group",
                full_path: namespace_path.to_owned(),
                parent_id: None,
                avatar_url: None,
                web_url: format!("{base}/groups/{namespace_path}"),
            },
            visibility: match project.visibility {
                Visibility::Public => "public",
                Visibility::Private => "private",
            },
            archived: false,
            empty_repo: false,
            jobs_enabled: true,
            links: LinksJson {
                self_url: api.clone(),
                issues: format!("{api}/issues"),
                merge_requests: format!("{api}/merge_requests"),
                repo_branches: format!("{api}/repository/branches"),
                labels: format!("{api}/labels"),
                events: format!("{api}/events"),
                members: format!("{api}/members"),
            },
        }
    }
}

/// "Demo User" for `demo`: GitLab's `name` is the display name.
fn display_name(username: &str) -> String {
    let mut chars = username.chars();
    let first: String = chars
        .next()
        .map(|c| c.to_uppercase().collect())
        .unwrap_or_default();
    format!("{first}{} User", chars.as_str())
}

/// The current user, as `GET /user` returns it.
#[derive(Debug, Serialize)]
pub(super) struct UserJson {
    id: u64,
    username: String,
    name: String,
    state: &'static str,
    locked: bool,
    avatar_url: Option<&'static str>,
    web_url: String,
    created_at: &'static str,
    bio: &'static str,
    public_email: Option<&'static str>,
    bot: bool,
    email: String,
    projects_limit: u32,
    can_create_group: bool,
    can_create_project: bool,
    two_factor_enabled: bool,
    external: bool,
    private_profile: bool,
    /// Present only for an administrator, as GitLab's `UserWithAdmin` adds it.
    #[serde(skip_serializing_if = "Option::is_none")]
    is_admin: Option<bool>,
}

/// A project, as `GET /projects/:id` returns it.
#[derive(Debug, Serialize)]
pub(super) struct ProjectJson {
    id: u64,
    description: Option<&'static str>,
    name: String,
    name_with_namespace: String,
    path: String,
    path_with_namespace: String,
    created_at: &'static str,
    default_branch: &'static str,
    tag_list: Vec<String>,
    topics: Vec<String>,
    ssh_url_to_repo: String,
    http_url_to_repo: String,
    web_url: String,
    readme_url: Option<String>,
    avatar_url: Option<String>,
    forks_count: u64,
    star_count: u64,
    last_activity_at: &'static str,
    namespace: NamespaceJson,
    visibility: &'static str,
    archived: bool,
    empty_repo: bool,
    jobs_enabled: bool,
    #[serde(rename = "_links")]
    links: LinksJson,
}

#[derive(Debug, Serialize)]
struct NamespaceJson {
    id: u64,
    name: String,
    path: String,
    kind: &'static str,
    full_path: String,
    parent_id: Option<u64>,
    avatar_url: Option<String>,
    web_url: String,
}

#[derive(Debug, Serialize)]
struct LinksJson {
    #[serde(rename = "self")]
    self_url: String,
    issues: String,
    merge_requests: String,
    repo_branches: String,
    labels: String,
    events: String,
    members: String,
}
