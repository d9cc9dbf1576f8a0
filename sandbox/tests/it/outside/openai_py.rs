//! The official `openai` Python package against the sandbox's Chat Completions
//! (`base_url` is [`SandboxHandle::openai_base_url`]): one scripted session
//! (`sandbox/tests/outside/openai_client.py`) of plain and streamed completions,
//! refusals seen as the package's own exceptions (`AuthenticationError`,
//! `RateLimitError` with `retry-after`, `InternalServerError`, timeouts), and
//! the sandbox's directives; then the sandbox's record of every request checked.
//!
//! [`SandboxHandle::openai_base_url`]: switchyard_sandbox::SandboxHandle::openai_base_url

use std::time::Duration;

use switchyard_sandbox::{self as sandbox, Platform, SandboxOptions};

use super::run_script;

const KEY: &str = "sk-sandbox-outside-client";
const MODEL: &str = "fleet-model";

#[tokio::test]
async fn the_openai_package_runs_a_session_against_the_sandbox() {
    let sb = sandbox::start(SandboxOptions {
        openai_api_keys: vec![KEY.into()],
        openai_models: vec![MODEL.into()],
        ..SandboxOptions::default()
    })
    .await
    .expect("the sandbox starts");
    let env = [
        ("OPENAI_BASE_URL", sb.openai_base_url()),
        ("OPENAI_KEY", KEY.to_owned()),
        ("OPENAI_MODEL", MODEL.to_owned()),
    ];
    let stdout = run_script("openai_client.py", &env, Duration::from_secs(90)).await;
    let state = sb.state();
    sb.shutdown().await;
    let Some(stdout) = stdout else { return };
    assert!(stdout.lines().any(|l| l == "DONE"), "{stdout}");

    let done = &state.openai.completions;
    let first = done.first().expect("the first completion is recorded");
    assert_eq!(
        (first.status, first.stream, first.model.as_str()),
        (200, false, MODEL)
    );
    assert_eq!(
        first.system_first_line.as_deref(),
        Some("You are the fleet's helper.")
    );
    let streamed = done
        .iter()
        .find(|c| c.include_usage)
        .expect("the streamed completion with include_usage");
    assert!(streamed.stream);
    assert_eq!(streamed.answer.as_deref(), Some("Deploying web-1 now"));
    assert_eq!(streamed.finish_reason.as_deref(), Some("stop"));
    // The plain 429 once, and the patient client's first try and one retry.
    let limited = done
        .iter()
        .filter(|c| c.directives.contains(&"429".to_owned()));
    assert_eq!(limited.clone().count(), 3, "{done:#?}");
    assert!(limited.clone().all(|c| c.status == 429));
    assert!(
        done.iter()
            .any(|c| c.status == 503 && c.directives.iter().any(|d| d == "status=503"))
    );
    assert!(
        done.iter()
            .any(|c| c.directives.contains(&"broken".to_owned()))
    );
    // The wrong key: refused with 401 once, the key masked in the record.
    let refused: Vec<_> = state
        .recent_requests
        .iter()
        .filter(|r| r.platform == Platform::Openai && r.status == 401)
        .collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    let error = refused[0].error.as_deref().unwrap_or("");
    assert!(
        error.contains("Incorrect API key") && !error.contains("sk-wrong-key"),
        "{error}"
    );
}
