//! Who is asking and what they may do: the credentials a request can present, checking
//! them (personal, OAuth, job and session tokens, `Sudo`), and the read and write rules of
//! projects (404 where a project may not be read, never 403).

use super::{JobSpec, JobStatus, Project, State, Visibility};
use crate::error::ApiError;

/// A credential as presented, before it is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Credential {
    /// `PRIVATE-TOKEN` header or `private_token` query: personal tokens only.
    Personal(String),
    /// `JOB-TOKEN` header or `job_token` query: job tokens only.
    Job(String),
    /// `Authorization: Bearer`: either kind.
    Bearer(String),
    /// `access_token` query: an OAuth token of a user (here: the user's one token).
    OAuth(String),
    /// The `_gitlab_session` browser cookie.
    Session(String),
}

/// Who is asking, once the credential checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Caller {
    Anonymous,
    User(String),
    /// A running job's token: read access to that job's project only.
    Job {
        project_id: u64,
    },
}

/// The running-job token for job `id`.
pub(crate) fn job_token(id: u64) -> String {
    format!("job-token-{id}")
}

impl State {
    /// Check a credential. No credential is anonymous; one that matches nothing is 401,
    /// whatever project it is used on.
    pub(crate) fn authenticate(&self, credential: Option<&Credential>) -> Result<Caller, ApiError> {
        let Some(credential) = credential else {
            return Ok(Caller::Anonymous);
        };
        let (personal, job) = match credential {
            Credential::Personal(t) | Credential::OAuth(t) => (Some(t), None),
            Credential::Job(t) => (None, Some(t)),
            Credential::Bearer(t) => (Some(t), Some(t)),
            Credential::Session(cookie) => {
                return self
                    .sessions
                    .get(cookie)
                    .map(|name| Caller::User(name.clone()))
                    .ok_or(ApiError::Unauthorized);
            }
        };
        if let Some(username) = personal.and_then(|t| self.users.get(t)) {
            return Ok(Caller::User(username.clone()));
        }
        job.and_then(|t| self.running_job_for_token(t))
            .map(|spec| Caller::Job {
                project_id: spec.project_id,
            })
            .ok_or(ApiError::Unauthorized)
    }

    /// Apply `Sudo` (a username or numeric user id) to an authenticated caller, as GitLab
    /// does: only an admin's token may, and the request then acts as that user.
    pub(crate) fn sudo(
        &self,
        caller: Caller,
        credential: Option<&Credential>,
        sudo: Option<&str>,
    ) -> Result<Caller, ApiError> {
        let Some(target) = sudo else {
            return Ok(caller);
        };
        let by_token = matches!(
            credential,
            Some(Credential::Personal(_) | Credential::OAuth(_) | Credential::Bearer(_))
        );
        match caller {
            Caller::Anonymous => Err(ApiError::Unauthorized),
            Caller::User(_) if !by_token => Err(ApiError::SudoNeedsToken),
            Caller::Job { .. } => Err(ApiError::SudoNeedsToken),
            Caller::User(name) if !self.admins.contains(&name) => Err(ApiError::SudoNotAdmin),
            Caller::User(_) => {
                // Users are numbered by username order, from 1, when named by id.
                let names = self.usernames();
                let by_id = target
                    .parse::<usize>()
                    .ok()
                    .and_then(|id| names.get(id.checked_sub(1)?).copied());
                names
                    .iter()
                    .find(|n| n.as_str() == target)
                    .copied()
                    .or(by_id)
                    .map(|n| Caller::User(n.clone()))
                    .ok_or(ApiError::UserNotFound)
            }
        }
    }

    /// Every username (of a token or a session), sorted: user id `n` is the `n`th, from 1.
    pub(crate) fn usernames(&self) -> Vec<&String> {
        let mut names: Vec<&String> = self.users.values().chain(self.sessions.values()).collect();
        names.sort();
        names.dedup();
        names
    }

    fn running_job_for_token(&self, token: &str) -> Option<&JobSpec> {
        let id: u64 = token.strip_prefix("job-token-")?.parse().ok()?;
        let record = self.jobs.get(&id)?;
        (record.spec.status == JobStatus::Running && job_token(id) == token).then_some(&record.spec)
    }

    /// The project named by `key` (a decoded numeric id or full path) if `caller` may read
    /// it; otherwise 404, never 403, so private projects do not leak their existence.
    pub(crate) fn readable_project(
        &self,
        caller: &Caller,
        key: &str,
    ) -> Result<&Project, ApiError> {
        let project = match key.parse::<u64>() {
            Ok(id) if key.bytes().all(|b| b.is_ascii_digit()) => {
                self.projects.iter().find(|p| p.id == id)
            }
            _ => self.projects.iter().find(|p| p.path == key),
        }
        .ok_or(ApiError::ProjectNotFound)?;
        let readable = match caller {
            Caller::Anonymous => project.visibility == Visibility::Public,
            Caller::User(name) => {
                project.visibility == Visibility::Public || project.members.contains(name)
            }
            Caller::Job { project_id } => *project_id == project.id,
        };
        if readable {
            Ok(project)
        } else {
            Err(ApiError::ProjectNotFound)
        }
    }

    /// The id of the project named by `key` if `caller` may run job actions on it: a
    /// member with a personal token. Readable but not writable is 403.
    pub(crate) fn writable_project(&self, caller: &Caller, key: &str) -> Result<u64, ApiError> {
        if *caller == Caller::Anonymous {
            return Err(ApiError::Unauthorized);
        }
        let project = self.readable_project(caller, key)?;
        match caller {
            Caller::User(name) if project.members.contains(name) => Ok(project.id),
            _ => Err(ApiError::Forbidden),
        }
    }
}
