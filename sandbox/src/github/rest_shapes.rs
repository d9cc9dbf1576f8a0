//! The JSON shapes of the REST answers, as GitHub's OpenAPI description
//! has them (users, repositories, pulls, reviews, commits, compare, check
//! runs, combined status, rate limit, a pull's files), with timestamps from
//! each repository's logical clock so unchanged resources keep their ETag.

use serde_json::{Value, json};

use super::{API, CheckRun, CiResult, HTML, Pull, RateLimit, Repo, Review};

pub(super) fn ts(r: &Repo, seq: i64) -> String {
    chrono::DateTime::from_timestamp(r.origin + seq, 0)
        .expect("in range")
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub(super) fn user_json(login: &str) -> Value {
    let id = login
        .bytes()
        .fold(7u64, |a, b| a.wrapping_mul(31).wrapping_add(b as u64))
        % 1_000_000;
    let u = format!("{API}/users/{login}");
    json!({
        "login": login, "id": id, "node_id": format!("U_{id}"),
        "avatar_url": format!("{HTML}/avatars/{login}"), "gravatar_id": "",
        "url": u, "html_url": format!("{HTML}/{login}"),
        "followers_url": format!("{u}/followers"), "following_url": format!("{u}/following{{/other_user}}"),
        "gists_url": format!("{u}/gists{{/gist_id}}"), "starred_url": format!("{u}/starred{{/owner}}{{/repo}}"),
        "subscriptions_url": format!("{u}/subscriptions"), "organizations_url": format!("{u}/orgs"),
        "repos_url": format!("{u}/repos"), "events_url": format!("{u}/events{{/privacy}}"),
        "received_events_url": format!("{u}/received_events"), "type": "User", "site_admin": false
    })
}

pub(super) fn repo_json(r: &Repo) -> Value {
    let full = format!("{}/{}", r.owner, r.name);
    let u = format!("{API}/repos/{full}");
    let mut v = json!({
        "id": r.id, "node_id": format!("R_{}", r.id), "name": r.name, "full_name": full,
        "owner": user_json(&r.owner), "private": false, "html_url": format!("{HTML}/{full}"),
        "description": null, "fork": false, "url": u,
        "clone_url": format!("{HTML}/{full}.git"), "git_url": format!("git://github.sandbox.invalid/{full}.git"),
        "ssh_url": format!("git@github.sandbox.invalid:{full}.git"), "svn_url": format!("{HTML}/{full}"),
        "mirror_url": null, "homepage": null, "language": "Rust", "default_branch": r.default_branch,
        "forks": 0, "forks_count": 0, "stargazers_count": 0, "watchers": 0, "watchers_count": 0,
        "size": 1, "open_issues": 0, "open_issues_count": 0,
        "has_issues": true, "has_projects": false, "has_wiki": false, "has_pages": false, "has_downloads": true,
        "archived": false, "disabled": false, "license": null,
        "pushed_at": ts(r, r.created), "created_at": ts(r, r.created), "updated_at": ts(r, r.created)
    });
    let templated = [
        ("archive_url", "/{archive_format}{/ref}"),
        ("assignees_url", "/assignees{/user}"),
        ("blobs_url", "/git/blobs{/sha}"),
        ("branches_url", "/branches{/branch}"),
        ("collaborators_url", "/collaborators{/collaborator}"),
        ("comments_url", "/comments{/number}"),
        ("commits_url", "/commits{/sha}"),
        ("compare_url", "/compare/{base}...{head}"),
        ("contents_url", "/contents/{+path}"),
        ("contributors_url", "/contributors"),
        ("deployments_url", "/deployments"),
        ("downloads_url", "/downloads"),
        ("events_url", "/events"),
        ("forks_url", "/forks"),
        ("git_commits_url", "/git/commits{/sha}"),
        ("git_refs_url", "/git/refs{/sha}"),
        ("git_tags_url", "/git/tags{/sha}"),
        ("hooks_url", "/hooks"),
        ("issue_comment_url", "/issues/comments{/number}"),
        ("issue_events_url", "/issues/events{/number}"),
        ("issues_url", "/issues{/number}"),
        ("keys_url", "/keys{/key_id}"),
        ("labels_url", "/labels{/name}"),
        ("languages_url", "/languages"),
        ("merges_url", "/merges"),
        ("milestones_url", "/milestones{/number}"),
        (
            "notifications_url",
            "/notifications{?since,all,participating}",
        ),
        ("pulls_url", "/pulls{/number}"),
        ("releases_url", "/releases{/id}"),
        ("stargazers_url", "/stargazers"),
        ("statuses_url", "/statuses/{sha}"),
        ("subscribers_url", "/subscribers"),
        ("subscription_url", "/subscription"),
        ("tags_url", "/tags"),
        ("teams_url", "/teams"),
        ("trees_url", "/git/trees{/sha}"),
    ];
    let obj = v.as_object_mut().expect("object literal");
    for (key, suffix) in templated {
        obj.insert(key.into(), Value::String(format!("{u}{suffix}")));
    }
    v
}

pub(super) fn pull_json(r: &Repo, p: &Pull, full: bool) -> Value {
    let repo = format!("{}/{}", r.owner, r.name);
    let u = format!("{API}/repos/{repo}/pulls/{}", p.number);
    let issue = format!("{API}/repos/{repo}/issues/{}", p.number);
    let html = format!("{HTML}/{repo}/pull/{}", p.number);
    let head_sha = r
        .branches
        .get(&p.head_ref)
        .map(|b| b.sha.clone())
        .unwrap_or_default();
    let statuses = format!("{API}/repos/{repo}/statuses/{head_sha}");
    let end = |ref_: &str, sha: &str| json!({ "label": format!("{}:{ref_}", r.owner), "ref": ref_, "sha": sha, "user": user_json(&r.owner), "repo": repo_json(r) });
    let links = json!({
            "self": {"href": u}, "html": {"href": html}, "issue": {"href": issue},
            "comments": {"href": format!("{issue}/comments")}, "review_comments": {"href": format!("{u}/comments")},
            "review_comment": {"href": format!("{API}/repos/{repo}/pulls/comments{{/number}}")},
            "commits": {"href": format!("{u}/commits")}, "statuses": {"href": statuses}
    });
    let merged_at = p.merged.then(|| ts(r, p.updated));
    let closed_at = (!p.open).then(|| ts(r, p.updated));
    let mut v = json!({
        "url": u, "id": p.id, "node_id": format!("PR_{}", p.id), "html_url": html,
        "diff_url": format!("{html}.diff"), "patch_url": format!("{html}.patch"), "issue_url": issue,
        "commits_url": format!("{u}/commits"), "review_comments_url": format!("{u}/comments"),
        "review_comment_url": format!("{API}/repos/{repo}/pulls/comments{{/number}}"),
        "comments_url": format!("{issue}/comments"), "statuses_url": statuses,
        "number": p.number, "state": if p.open { "open" } else { "closed" }, "locked": false,
        "title": format!("{}: work from the agent", p.head_ref), "user": user_json("agent-bot"),
        "body": p.body, "labels": [], "milestone": null, "active_lock_reason": null,
        "created_at": ts(r, p.created), "updated_at": ts(r, p.updated), "closed_at": closed_at, "merged_at": merged_at,
        "merge_commit_sha": null, "assignee": null, "assignees": [], "requested_reviewers": [], "requested_teams": [],
        "head": end(&p.head_ref, &head_sha), "base": end(&p.base_ref, &r.base_sha),
        "author_association": "CONTRIBUTOR", "auto_merge": null, "draft": false,
        "_links": links
    });
    if full {
        let (ahead, behind) = r
            .branches
            .get(&p.head_ref)
            .and_then(|b| r.commits.get(&b.sha))
            .map(|c| (c.ahead, r.base_version - c.base_version))
            .unwrap_or((0, 0));
        let conflict = r.branches.get(&p.head_ref).is_some_and(|b| b.conflict);
        let files = pr_files(r, p);
        let (additions, deletions) = files
            .iter()
            .fold((0, 0), |(a, d), f| (a + f.additions, d + f.deletions));
        let mergeable_state = match p.mergeable {
            None => "unknown",
            Some(_) if conflict => "dirty",
            Some(_) if behind > 0 => "behind",
            Some(_) => "clean",
        };
        let obj = v.as_object_mut().expect("object literal");
        for (k, val) in [
            ("merged", json!(p.merged)),
            ("mergeable", json!(p.mergeable)),
            ("rebaseable", json!(p.mergeable)),
            ("mergeable_state", json!(mergeable_state)),
            ("merged_by", Value::Null),
            ("comments", json!(0)),
            (
                "review_comments",
                json!(p.threads.iter().map(|t| t.comments.len()).sum::<usize>()),
            ),
            ("maintainer_can_modify", json!(false)),
            ("commits", json!(ahead)),
            ("additions", json!(additions)),
            ("deletions", json!(deletions)),
            ("changed_files", json!(files.len())),
        ] {
            obj.insert(k.into(), val);
        }
    }
    v
}

pub(super) fn review_json(r: &Repo, p: &Pull, rv: &Review) -> Value {
    let repo = format!("{}/{}", r.owner, r.name);
    let html = format!(
        "{HTML}/{repo}/pull/{}#pullrequestreview-{}",
        p.number, rv.id
    );
    let pr_url = format!("{API}/repos/{repo}/pulls/{}", p.number);
    json!({
        "id": rv.id, "node_id": format!("PRR_{}", rv.id), "user": user_json(&rv.user), "body": rv.body,
        "state": rv.state, "html_url": html, "pull_request_url": pr_url,
        "_links": { "html": {"href": html}, "pull_request": {"href": pr_url} },
        "submitted_at": ts(r, rv.seq), "commit_id": rv.commit_id, "author_association": "MEMBER"
    })
}

pub(super) fn commit_json(r: &Repo, sha: &str, message: &str) -> Value {
    let repo = format!("{}/{}", r.owner, r.name);
    let u = format!("{API}/repos/{repo}/commits/{sha}");
    json!({
        "url": u, "sha": sha, "node_id": format!("C_{sha}"), "html_url": format!("{HTML}/{repo}/commit/{sha}"),
        "comments_url": format!("{u}/comments"),
        "commit": {
            "url": format!("{API}/repos/{repo}/git/commits/{sha}"), "message": message, "comment_count": 0,
            "author": {"name": "agent", "email": "agent@sandbox.invalid", "date": ts(r, r.created)},
            "committer": {"name": "agent", "email": "agent@sandbox.invalid", "date": ts(r, r.created)},
            "tree": {"sha": sha, "url": format!("{API}/repos/{repo}/git/trees/{sha}")}
        },
        "author": user_json("agent-bot"), "committer": user_json("agent-bot"), "parents": []
    })
}

pub(super) fn compare_json(
    r: &Repo,
    base: &str,
    head: &str,
    basehead: &str,
    ahead: u64,
    behind: u64,
) -> Value {
    let repo = format!("{}/{}", r.owner, r.name);
    let status = match (ahead, behind) {
        (0, 0) => "identical",
        (_, 0) => "ahead",
        (0, _) => "behind",
        _ => "diverged",
    };
    let commits: Vec<Value> = if ahead > 0 {
        vec![commit_json(r, head, "agent work")]
    } else {
        vec![]
    };
    json!({
        "url": format!("{API}/repos/{repo}/compare/{basehead}"),
        "html_url": format!("{HTML}/{repo}/compare/{basehead}"),
        "permalink_url": format!("{HTML}/{repo}/compare/{}:{base}...{}:{head}", r.owner, r.owner),
        "diff_url": format!("{HTML}/{repo}/compare/{basehead}.diff"),
        "patch_url": format!("{HTML}/{repo}/compare/{basehead}.patch"),
        "base_commit": commit_json(r, base, "base"), "merge_base_commit": commit_json(r, base, "merge base"),
        "status": status, "ahead_by": ahead, "behind_by": behind, "total_commits": ahead,
        "commits": commits, "files": []
    })
}

pub(super) fn check_run_json(r: &Repo, sha: &str, c: &CheckRun) -> Value {
    let repo = format!("{}/{}", r.owner, r.name);
    let u = format!("{API}/repos/{repo}/check-runs/{}", c.id);
    let (status, conclusion, completed) = match c.result {
        CiResult::Pending => ("in_progress", Value::Null, Value::Null),
        CiResult::Success => ("completed", json!("success"), json!(ts(r, c.seq))),
        CiResult::Failure => ("completed", json!("failure"), json!(ts(r, c.seq))),
    };
    let title = match c.result {
        CiResult::Failure => Some(format!("{} failed", c.name)),
        CiResult::Success => Some(format!("{} passed", c.name)),
        CiResult::Pending => None,
    };
    let pulls: Vec<Value> = r
        .pulls
        .iter()
        .filter(|p| p.open && r.branches.get(&p.head_ref).is_some_and(|b| b.sha == sha))
        .map(|p| {
            let rr = json!({"id": r.id, "url": format!("{API}/repos/{repo}"), "name": r.name});
            json!({
                "id": p.id, "number": p.number, "url": format!("{API}/repos/{repo}/pulls/{}", p.number),
                "head": {"ref": p.head_ref, "sha": sha, "repo": rr},
                "base": {"ref": p.base_ref, "sha": r.base_sha, "repo": rr}
            })
        })
        .collect();
    json!({
        "id": c.id, "node_id": format!("CR_{}", c.id), "head_sha": sha, "external_id": format!("ext-{}", c.id),
        "url": u, "html_url": format!("{HTML}/{repo}/runs/{}", c.id), "details_url": format!("{HTML}/{repo}/runs/{}", c.id),
        "status": status, "conclusion": conclusion, "started_at": ts(r, c.seq), "completed_at": completed,
        "output": {
            "title": title, "summary": c.summary, "text": null, "annotations_count": 0,
            "annotations_url": format!("{u}/annotations")
        },
        "name": c.name, "check_suite": {"id": c.id + 1}, "app": null, "pull_requests": pulls
    })
}

pub(super) fn combined_status_json(r: &Repo, sha: &str) -> Value {
    let repo = format!("{}/{}", r.owner, r.name);
    let list = r.statuses.get(sha).cloned().unwrap_or_default();
    let word = |s: CiResult| match s {
        CiResult::Pending => "pending",
        CiResult::Success => "success",
        CiResult::Failure => "failure",
    };
    let state = if list.iter().any(|s| s.2 == CiResult::Failure) {
        "failure"
    } else if list.is_empty() || list.iter().any(|s| s.2 == CiResult::Pending) {
        "pending"
    } else {
        "success"
    };
    let statuses: Vec<Value> = list
        .iter()
        .map(|(id, context, st, seq)| {
            json!({
                "url": format!("{API}/repos/{repo}/statuses/{sha}"), "avatar_url": null, "id": id,
                "node_id": format!("S_{id}"), "state": word(*st), "description": format!("{context}: {}", word(*st)),
                "target_url": format!("{HTML}/{repo}/ci/{id}"), "context": context,
                "created_at": ts(r, *seq), "updated_at": ts(r, *seq)
            })
        })
        .collect();
    json!({
        "state": state, "statuses": statuses, "sha": sha, "total_count": list.len(),
        "repository": repo_json(r), "commit_url": format!("{API}/repos/{repo}/commits/{sha}"),
        "url": format!("{API}/repos/{repo}/commits/{sha}/status")
    })
}

pub(super) fn rate_limit_json(rate: &RateLimit, gql: &RateLimit) -> Value {
    let core = json!({"limit": rate.limit, "remaining": rate.remaining, "reset": rate.reset, "used": rate.limit - rate.remaining});
    let graphql = json!({"limit": gql.limit, "remaining": gql.remaining, "reset": gql.reset, "used": gql.limit - gql.remaining});
    json!({
        "resources": {
            "core": core,
            "search": {"limit": 30, "remaining": 30, "reset": rate.reset, "used": 0},
            "graphql": graphql
        },
        "rate": core
    })
}

/// One entry of `GET .../pulls/{n}/files`.
pub(super) struct FileEntry {
    pub(super) filename: String,
    pub(super) additions: u64,
    pub(super) deletions: u64,
    /// `None` for binary files: GitHub sends no `patch` for them.
    pub(super) patch: Option<String>,
}

pub(super) fn is_binary(name: &str) -> bool {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    matches!(
        ext.as_deref(),
        Some("png" | "jpg" | "jpeg" | "gif" | "webp" | "ico" | "pdf" | "zip" | "bin")
    )
}

/// The PR's files: the settable list, or (unset) files made up so that the
/// counts match what `GET .../pulls/{n}` said before files were settable.
pub(super) fn pr_files(r: &Repo, p: &Pull) -> Vec<FileEntry> {
    let text = |filename: &str, additions: u64, deletions: u64| {
        let mut patch = format!("@@ -1,{deletions} +1,{additions} @@");
        for i in 0..deletions {
            patch.push_str(&format!("\n-old line {i}"));
        }
        for i in 0..additions {
            patch.push_str(&format!("\n+new line {i}"));
        }
        FileEntry {
            filename: filename.into(),
            additions,
            deletions,
            patch: Some(patch),
        }
    };
    if let Some(files) = &p.files {
        return files
            .iter()
            .map(|f| {
                if is_binary(f) {
                    FileEntry {
                        filename: f.clone(),
                        additions: 0,
                        deletions: 0,
                        patch: None,
                    }
                } else {
                    text(f, 3, 1)
                }
            })
            .collect();
    }
    let ahead = r
        .branches
        .get(&p.head_ref)
        .and_then(|b| r.commits.get(&b.sha))
        .map_or(0, |c| c.ahead);
    let n = ahead.min(3);
    let names = ["src/lib.rs", "src/main.rs", "README.md"];
    (0..n)
        .map(|i| {
            // The first file takes the remainder, so the sums stay ahead*10 and ahead*2.
            let share = |total: u64| total / n + if i == 0 { total % n } else { 0 };
            text(names[i as usize], share(ahead * 10), share(ahead * 2))
        })
        .collect()
}

/// Percent-encodes a repository path for a URL, keeping its slashes.
pub(super) fn encode_path(path: &str) -> String {
    let mut out = String::new();
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
