//! The approvals table on both backends: one decision however many vote at
//! once, distinct approvers, prompt leases, expiry.

use std::time::Duration;

use chrono::Utc;
use switchyard::store::approvals::{
    ApprovalOrigin, ApprovalStatus, DecideOutcome, NewApproval, Vote, Voter,
};

use crate::common::TestDb;

crate::on_both_backends!(
    concurrent_votes_decide_once,
    two_approvers_must_be_distinct_and_concurrent_approvals_decide_once,
    a_prompt_being_sent_is_not_sent_again_until_its_lease_ends,
    a_vote_after_expiry_expires_the_request,
);

fn new(id: &str, required: u8) -> NewApproval {
    NewApproval {
        id: id.into(),
        origin: ApprovalOrigin::Inbox,
        summary: "Deploy".into(),
        detail: "deploy.sh".into(),
        task_id: None,
        requested_by: "tech-lead".into(),
        risk: 90,
        reasons: vec!["risky".into()],
        expires_in: Duration::from_secs(600),
        required_approvers: required,
        reply_to: None,
    }
}

fn voter(i: usize) -> Voter {
    Voter {
        id: format!("telegram:{i}"),
        name: format!("@u{i}"),
    }
}

async fn concurrent_votes_decide_once(db: TestDb) {
    let store = db.open().await;
    let now = Utc::now();
    assert!(store.insert_approval(&new("apr_1", 1), now).await.unwrap());
    assert!(
        !store.insert_approval(&new("apr_1", 1), now).await.unwrap(),
        "the same id twice stores once"
    );
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let store = store.clone();
            let vote = if i % 2 == 0 {
                Vote::Approve
            } else {
                Vote::Deny
            };
            tokio::spawn(async move {
                store
                    .decide_approval("apr_1", &voter(i), vote, false, Utc::now())
                    .await
            })
        })
        .collect();
    let mut decided = 0;
    let mut already = 0;
    for t in tasks {
        match t.await.unwrap().unwrap() {
            DecideOutcome::Decided { .. } => decided += 1,
            DecideOutcome::AlreadyDecided { .. } => already += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((decided, already), (1, 15));
}

async fn two_approvers_must_be_distinct_and_concurrent_approvals_decide_once(db: TestDb) {
    let store = db.open().await;
    let now = Utc::now();
    store.insert_approval(&new("apr_2", 2), now).await.unwrap();
    assert_eq!(
        store
            .decide_approval("apr_2", &voter(1), Vote::Approve, false, now)
            .await
            .unwrap(),
        DecideOutcome::Awaiting {
            approvals: 1,
            required: 2
        }
    );
    assert_eq!(
        store
            .decide_approval("apr_2", &voter(1), Vote::Approve, false, now)
            .await
            .unwrap(),
        DecideOutcome::AlreadyVoted
    );
    let tasks: Vec<_> = (2..10)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .decide_approval("apr_2", &voter(i), Vote::Approve, false, Utc::now())
                    .await
            })
        })
        .collect();
    let mut decided = Vec::new();
    for t in tasks {
        if let DecideOutcome::Decided { by, status, .. } = t.await.unwrap().unwrap() {
            assert_eq!(status, ApprovalStatus::Approved);
            decided.push(by);
        }
    }
    assert_eq!(decided.len(), 1, "{decided:?}");
    assert!(decided[0].starts_with("@u1 + @u"), "{decided:?}");
}

async fn a_prompt_being_sent_is_not_sent_again_until_its_lease_ends(db: TestDb) {
    let store = db.open().await;
    let now = Utc::now();
    store
        .insert_approval(&new("apr_lease", 1), now)
        .await
        .unwrap();
    assert_eq!(store.approvals_to_prompt(now).await.unwrap().len(), 1);
    // Sending (then a crash before the message id is recorded).
    store
        .lease_prompt("apr_lease", now + chrono::Duration::seconds(60))
        .await
        .unwrap();
    assert!(
        store.approvals_to_prompt(now).await.unwrap().is_empty(),
        "not sent twice at once"
    );
    let later = now + chrono::Duration::seconds(61);
    assert_eq!(
        store.approvals_to_prompt(later).await.unwrap().len(),
        1,
        "nobody answered: sent again"
    );
}

async fn a_vote_after_expiry_expires_the_request(db: TestDb) {
    let store = db.open().await;
    let then = Utc::now() - chrono::Duration::hours(1);
    store.insert_approval(&new("apr_3", 1), then).await.unwrap();
    assert!(matches!(
        store
            .decide_approval("apr_3", &voter(1), Vote::Approve, false, Utc::now())
            .await
            .unwrap(),
        DecideOutcome::Expired { .. }
    ));
    let a = store.approval("apr_3").await.unwrap().unwrap();
    assert_eq!(a.status, ApprovalStatus::Expired);
    assert!(
        store
            .expire_due_approvals(Utc::now())
            .await
            .unwrap()
            .is_empty(),
        "expired once"
    );
    let audit = store.approval_audit("apr_3").await.unwrap();
    assert!(audit.iter().any(|e| e.action == "approval.expire"));
    assert!(audit.iter().any(|e| e.outcome == "refused"));
}
