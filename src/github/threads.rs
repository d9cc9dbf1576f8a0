//! Review threads through GitHub's GraphQL API (the REST API does not say
//! whether a thread is resolved): how many unresolved threads are marked
//! critical by their first comment.
//!
//! GraphQL answers are never conditional and cost points of a budget of
//! their own (5,000 an hour), so the monitor reads threads only when the PR
//! moved or `[github] threads_interval` passed (see `monitor.rs`), and each
//! answer reports what is left of the budget.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::client::{FetchError, GithubClient};
use super::registry::RepoName;

/// The query, with the fields switchyard reads and nothing else; the
/// sandbox checks it against GitHub's published schema.
pub const REVIEW_THREADS_QUERY: &str =
    "query($owner: String!, $name: String!, $number: Int!, $cursor: String) {
  rateLimit { cost remaining resetAt }
  repository(owner: $owner, name: $name) {
    pullRequest(number: $number) {
      reviewThreads(first: 100, after: $cursor) {
        totalCount
        pageInfo { hasNextPage endCursor }
        nodes {
          isResolved
          comments(first: 1) { nodes { body author { login } } }
        }
      }
    }
  }
}";

/// At most this many pages (100 threads each) are read for one PR.
const MAX_PAGES: usize = 10;

/// One review thread, as much as switchyard needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadSnapshot {
    pub resolved: bool,
    /// The thread's first comment: where the critical marker is.
    pub first_comment: String,
    pub author: Option<String>,
}

/// What GraphQL said of its own budget after the last query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GraphqlBudget {
    pub remaining: u64,
    pub reset: Option<DateTime<Utc>>,
}

/// Is this comment marked critical: a marker word standing alone (letters,
/// digits, `-` and `_` make up a word, so `non-critical` is not `critical`),
/// case-insensitively, or a marker that is not a word (an emoji) anywhere.
pub fn is_critical(comment: &str, markers: &[String]) -> bool {
    let lower = comment.to_lowercase();
    markers.iter().any(|m| {
        let m = m.trim().to_lowercase();
        if m.is_empty() {
            return false;
        }
        let wordlike = m
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '_');
        if !wordlike {
            return lower.contains(&m);
        }
        lower
            .split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '_'))
            .any(|w| w == m)
    })
}

/// Unresolved threads whose first comment is marked critical.
pub fn critical_count(threads: &[ThreadSnapshot], markers: &[String]) -> u32 {
    threads
        .iter()
        .filter(|t| !t.resolved && is_critical(&t.first_comment, markers))
        .count() as u32
}

#[derive(Deserialize)]
struct Answer {
    data: Option<Data>,
    #[serde(default)]
    errors: Vec<GraphqlError>,
}

#[derive(Deserialize)]
struct GraphqlError {
    message: String,
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    rate_limit: Option<RateLimitJson>,
    repository: Option<RepositoryJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RateLimitJson {
    remaining: u64,
    reset_at: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RepositoryJson {
    pull_request: Option<PullJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PullJson {
    review_threads: ThreadsJson,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ThreadsJson {
    page_info: PageInfoJson,
    nodes: Vec<Option<ThreadJson>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageInfoJson {
    has_next_page: bool,
    end_cursor: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ThreadJson {
    is_resolved: bool,
    comments: CommentsJson,
}

#[derive(Deserialize)]
struct CommentsJson {
    nodes: Vec<Option<CommentJson>>,
}

#[derive(Deserialize)]
struct CommentJson {
    body: String,
    author: Option<AuthorJson>,
}

#[derive(Deserialize)]
struct AuthorJson {
    login: String,
}

impl GithubClient {
    /// Every review thread of a PR (up to 1,000), and the budget left.
    pub async fn review_threads(
        &self,
        repo: &RepoName,
        number: u64,
    ) -> Result<(Vec<ThreadSnapshot>, Option<GraphqlBudget>), FetchError> {
        let path = "/graphql";
        let mut threads = Vec::new();
        let mut budget = None;
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let payload = json!({
                "query": REVIEW_THREADS_QUERY,
                "variables": {
                    "owner": repo.owner, "name": repo.name,
                    "number": number, "cursor": cursor,
                },
            });
            let body = self.post_graphql(&payload).await?;
            let answer: Answer = serde_json::from_str(&body).map_err(|e| FetchError::Decode {
                path: path.into(),
                message: e.to_string(),
            })?;
            if let Some(e) = answer.errors.first() {
                return Err(if e.kind.as_deref() == Some("RATE_LIMITED") {
                    FetchError::RateLimited {
                        path: path.into(),
                        status: 200,
                        retry_after: None,
                        reset: budget.and_then(|b: GraphqlBudget| b.reset),
                    }
                } else {
                    FetchError::Http {
                        path: path.into(),
                        status: 200,
                        message: format!("GraphQL: {}", e.message),
                    }
                });
            }
            let data = answer.data.ok_or_else(|| FetchError::Decode {
                path: path.into(),
                message: "an answer with neither data nor errors".into(),
            })?;
            if let Some(r) = data.rate_limit {
                budget = Some(GraphqlBudget {
                    remaining: r.remaining,
                    reset: r.reset_at,
                });
            }
            let Some(pr) = data.repository.and_then(|r| r.pull_request) else {
                return Err(FetchError::NotFound {
                    path: format!("{repo} PR #{number} (GraphQL)"),
                });
            };
            for t in pr.review_threads.nodes.into_iter().flatten() {
                let first = t.comments.nodes.into_iter().flatten().next();
                threads.push(ThreadSnapshot {
                    resolved: t.is_resolved,
                    author: first
                        .as_ref()
                        .and_then(|c| c.author.as_ref().map(|a| a.login.clone())),
                    first_comment: first.map(|c| c.body).unwrap_or_default(),
                });
            }
            let page = pr.review_threads.page_info;
            match page.end_cursor {
                Some(next) if page.has_next_page => cursor = Some(next),
                _ => break,
            }
        }
        Ok((threads, budget))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn markers() -> Vec<String> {
        vec!["critical".into(), "🚨".into()]
    }

    #[test]
    fn markers_are_whole_words_or_emoji() {
        let m = markers();
        assert!(is_critical("**Critical**: this leaks the token", &m));
        assert!(is_critical("[critical] race in the lease", &m));
        assert!(is_critical("🚨 drops data", &m));
        assert!(!is_critical("non-critical nit: rename this", &m));
        assert!(!is_critical("criticality is low", &m));
        assert!(!is_critical("looks fine", &m));
        assert!(!is_critical("critical", &[]));
    }

    #[test]
    fn only_unresolved_marked_threads_count() {
        let t = |resolved, body: &str| ThreadSnapshot {
            resolved,
            first_comment: body.into(),
            author: None,
        };
        let threads = [
            t(false, "critical: SQL injection"),
            t(true, "critical: fixed already"),
            t(false, "nit: spacing"),
            t(false, "🚨 panics on empty input"),
        ];
        assert_eq!(critical_count(&threads, &markers()), 2);
    }

    #[test]
    fn answers_decode() {
        let body = r#"{"data":{"rateLimit":{"cost":1,"remaining":4999,"resetAt":"2026-12-04T21:00:00Z"},
          "repository":{"pullRequest":{"reviewThreads":{"totalCount":1,
          "pageInfo":{"hasNextPage":false,"endCursor":null},
          "nodes":[{"isResolved":false,"comments":{"nodes":[{"body":"critical","author":null}]}}]}}}}}"#;
        let a: Answer = serde_json::from_str(body).unwrap();
        let pr = a.data.unwrap().repository.unwrap().pull_request.unwrap();
        assert_eq!(pr.review_threads.nodes.len(), 1);
    }
}
