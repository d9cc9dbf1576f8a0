//! Signed approval decisions: where `[approvals] decision_keys` is set, only
//! the agent that prompts the approvers (it holds the private key) can make a
//! decision another agent takes. Every agent's host holds the fleet secret, a
//! worker's host on a fleet across hosts included, so a seal alone must not
//! decide. Real agent processes, the sandbox's Telegram, real SQLite files.

use crate::common;

use std::time::Duration;

use common::{FLEET_SECRET, Fleet, wait_for};
use serde_json::json;
use switchyard::approvals::{ApprovalStatus, DecisionItem, FleetSecret};
use switchyard::config::keys::SigningKey;

const KEY_ENV: &str = "SWITCHYARD_DECISION_KEY";

/// `switchyard check-config ARGS` with `env` added: its exit code, stdout and stderr.
fn check_config(
    fleet: &Fleet,
    args: &[&str],
    env: &[(&str, &str)],
) -> (Option<i32>, String, String) {
    let out = fleet
        .command()
        .envs(env.iter().copied())
        .arg("check-config")
        .args(args)
        .output()
        .expect("run check-config");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn where_decisions_are_signed_a_host_with_the_fleet_secret_alone_cannot_decide() {
    common::multi_thread().block_on(async {
        let (key, seed) = SigningKey::generate();
        let (stranger, stranger_seed) = SigningKey::generate();
        let extra = format!("[approvals]\ndecision_keys = [\"{}\"]\n", key.public());
        let mut fleet = Fleet::new(&["manager", "opsclaw"], &extra).await;

        // The Telegram owner cannot start without its key, nor with one that
        // is not listed; the other agents need none.
        let (code, _, err) = check_config(&fleet, &["--agent", "manager"], &[]);
        assert_eq!(code, Some(2), "{err}");
        assert!(
            err.contains("approvals.signing_key_env")
                && err.contains(&format!("{KEY_ENV} is not set")),
            "{err}"
        );
        let (code, _, err) = check_config(
            &fleet,
            &["--agent", "manager"],
            &[(KEY_ENV, &stranger_seed)],
        );
        assert_eq!(code, Some(2), "{err}");
        assert!(
            err.contains("is not one of approvals.decision_keys"),
            "{err}"
        );
        assert!(
            err.contains(&stranger.public().to_string()),
            "the public half, to list: {err}"
        );
        assert!(
            !err.contains(&stranger_seed),
            "the private key is never printed: {err}"
        );
        let (code, _, err) =
            check_config(&fleet, &["--agent", "manager"], &[(KEY_ENV, "not-a-key")]);
        assert_eq!(code, Some(2), "{err}");
        assert!(err.contains("64 hex digits"), "{err}");
        let (code, _, err) = check_config(&fleet, &["--agent", "manager"], &[(KEY_ENV, &seed)]);
        assert_eq!(code, Some(0), "{err}");
        let (code, _, err) = check_config(&fleet, &["--agent", "opsclaw"], &[]);
        assert_eq!(code, Some(0), "{err}");

        fleet.spawn_agent_with("manager", &[(KEY_ENV, &seed)]).await;
        fleet.spawn_agent("opsclaw").await;

        // Asked on opsclaw, which forwards it to manager, which prompts.
        let id = "apr_signed_1";
        fleet.drop(
            "opsclaw",
            "ask_signed",
            &json!({"kind": "approval_request", "id": id, "summary": "Deploy web-1 to production",
                    "detail": "scripts/deploy_prod.sh", "risk": 80}),
        );
        wait_for(Duration::from_secs(30), "the prompt in Telegram", || {
            common::telegram_texts(&fleet.state())
                .into_iter()
                .find(|t| t.contains("Deploy web-1"))
        })
        .await;
        let store = fleet.store("opsclaw").await;
        let mut decided = store
            .approval(id)
            .await
            .unwrap()
            .expect("the request on opsclaw");
        decided.status = ApprovalStatus::Approved;
        decided.decided_by = Some("@operator".into());
        decided.decided_at = Some(chrono::Utc::now());

        // What any agent's host can make: the right ids, the right digest, a
        // seal that holds. Then one signed with a key nobody listed.
        let secret = FleetSecret::new(FLEET_SECRET).unwrap();
        let sealed = DecisionItem::for_requester(&decided, "opsclaw", &secret, None).unwrap();
        assert!(
            sealed.seal_is_valid(&secret, "opsclaw"),
            "the forgery is as good as a seal gets"
        );
        let stray =
            DecisionItem::for_requester(&decided, "opsclaw", &secret, Some(&stranger)).unwrap();
        for (name, item) in [("forged_sealed", &sealed), ("forged_stray_key", &stray)] {
            fleet.drop("opsclaw", name, &serde_json::to_value(item).unwrap());
            let refused = fleet.wait_result("opsclaw", "failed", name).await;
            let why = refused["reason"]["error"].as_str().unwrap_or_default();
            assert!(
                why.contains("not signed for this agent"),
                "{name}: {refused}"
            );
        }
        let audit = store.approval_audit(id).await.unwrap();
        let refusals = audit
            .iter()
            .filter(|e| e.action == "approval.decision_refused" && e.actor == "@operator")
            .count();
        assert_eq!(refusals, 2, "{audit:?}");
        assert_eq!(
            store.approval(id).await.unwrap().unwrap().status,
            ApprovalStatus::Pending
        );
        let owner = fleet.store("manager").await;
        assert_eq!(
            owner.approval(id).await.unwrap().unwrap().status,
            ApprovalStatus::Pending
        );

        // The operator decides on manager; its signed decision counts.
        fleet.shell(&["approve", id]);
        let taken = fleet
            .wait_result("opsclaw", "done", &format!("dec_{id}"))
            .await;
        assert_eq!(taken["result"]["recorded"], true, "{taken}");
        let a = store.approval(id).await.unwrap().unwrap();
        assert_eq!(a.status, ApprovalStatus::Approved, "{a:?}");
    });
}

#[test]
fn keygen_prints_a_pair_that_check_config_takes_and_a_fleet_across_hosts_is_told_to_sign() {
    common::multi_thread().block_on(async {
        let unsigned = Fleet::new(&["manager", "opsclaw"], "").await;
        let out = unsigned.shell(&["approval", "keygen"]);
        let seed = out
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{KEY_ENV}=")))
            .unwrap_or_else(|| panic!("no {KEY_ENV}= line: {out}"));
        let public = out
            .lines()
            .find_map(|l| l.strip_prefix("decision_keys = [\"")?.strip_suffix("\"]"))
            .unwrap_or_else(|| panic!("no decision_keys line: {out}"));
        let key = SigningKey::from_seed_hex(seed).unwrap();
        assert_eq!(
            key.public().to_string(),
            public,
            "the two lines are one pair"
        );

        let across_hosts = |fleet: &Fleet| {
            let pg = "postgres://switchyard@db.invalid/fleet";
            let (code, out, err) = check_config(
                fleet,
                &[],
                &[
                    ("SWITCHYARD__FLEET__COORDINATION", pg),
                    ("SWITCHYARD__FLEET__DATABASE", pg),
                ],
            );
            assert_eq!(code, Some(0), "{err}");
            out
        };
        let said = across_hosts(&unsigned);
        assert!(
            said.contains(
                "note: approval decisions forwarded between agents are sealed with the fleet secret"
            ),
            "{said}"
        );
        assert!(said.contains("switchyard approval keygen"), "{said}");
        drop(unsigned);

        let signed = Fleet::new(
            &["manager", "opsclaw"],
            &format!("[approvals]\ndecision_keys = [\"{public}\"]\n"),
        )
        .await;
        let said = across_hosts(&signed);
        assert!(!said.contains("note:"), "{said}");
        // A key that is not one: every problem with its key path.
        let bad = Fleet::new(
            &["manager", "opsclaw"],
            "[approvals]\ndecision_keys = [\"ed25519:00\"]\nsigning_key_env = \"lower\"\n",
        )
        .await;
        let (code, _, err) = check_config(&bad, &[], &[]);
        assert_eq!(code, Some(2), "{err}");
        assert!(
            err.contains("approvals.decision_keys[0]") && err.contains("is not a public key"),
            "{err}"
        );
        assert!(err.contains("approvals.signing_key_env"), "{err}");
    });
}
