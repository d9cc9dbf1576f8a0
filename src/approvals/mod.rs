//! Approvals in the runtime (DESIGN.md 4.4): the API other parts call
//! ([`request`], [`wait`], [`status`]), the `approval_request` and
//! `approval_decision` inbox items, and the agent's approvals loop.
//!
//! Every agent keeps its own requests in its database. The agent that owns
//! the Telegram token prompts, takes the answers and sends decisions back;
//! any other agent forwards its requests to the owner's inbox and records the
//! decision that comes back as an `approval_decision` item. Each step is
//! driven by what the database says is left to do, so a crash between two
//! steps resumes where it stopped.

pub mod buttons;
mod intake;
pub mod items;
pub mod seal;

use std::sync::Arc;
use std::time::Duration;

use crate::shutdown::Shutdown;
use anyhow::Context;
use chrono::{DateTime, Utc};
use switchyard_routing::Severity;
use tracing::{info, warn};

use crate::config::Config;
use crate::config::keys::SigningKey;
use crate::delivery::OutboxNotify;
use crate::store::Store;
pub use crate::store::approvals::{
    Approval, ApprovalOrigin, ApprovalStatus, DecideOutcome, NewApproval, Vote, VoteRecord,
    new_approval_id,
};
pub use intake::{handle_decision_item, handle_request_item};
pub use items::{DecisionItem, RequestItem};
pub use seal::FleetSecret;

use crate::store::AuditEntry;

/// An approval id (`apr_…`).
pub type ApprovalId = String;

/// What a caller (the task pipeline, the CLI, a peer) asks a human.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRequest {
    /// One line: what will happen ("Deploy web-1 to production").
    pub summary: String,
    /// What will run, e.g. the command; long previews are cut in the prompt.
    pub detail: String,
    pub task_id: Option<String>,
    /// The agent (or `shell`) asking.
    pub requested_by: String,
    /// The policy's risk score, 0-100.
    pub risk: u8,
    /// The policy's reasons for the score.
    pub reasons: Vec<String>,
    /// `None`: the fleet's `[approvals] expires`.
    pub expires_in: Option<Duration>,
    /// Set by the runtime for requests forwarded from another agent.
    pub reply_to: Option<String>,
    /// A caller-chosen id (inbox items carry one); `None` makes one.
    pub id: Option<ApprovalId>,
    /// Who asks; only [`ApprovalOrigin::Task`] can let a task run.
    pub origin: ApprovalOrigin,
}

impl ApprovalRequest {
    pub fn new(summary: impl Into<String>, requested_by: impl Into<String>) -> Self {
        ApprovalRequest {
            summary: summary.into(),
            detail: String::new(),
            task_id: None,
            requested_by: requested_by.into(),
            risk: 0,
            reasons: Vec::new(),
            expires_in: None,
            reply_to: None,
            id: None,
            origin: ApprovalOrigin::Inbox,
        }
    }
}

/// Default expiry when the caller has no configuration at hand.
pub const DEFAULT_EXPIRES: Duration = Duration::from_secs(30 * 60);

/// Store a request in this agent's database and return its id. The agent's
/// approvals loop takes it from there (prompt in Telegram, or forward to the
/// agent that owns Telegram). Storing the same id twice stores it once.
pub async fn request(store: &Store, req: ApprovalRequest) -> anyhow::Result<ApprovalId> {
    let id = req.id.clone().unwrap_or_else(new_approval_id);
    crate::coord::inbox::validate_id(&id).map_err(|e| anyhow::anyhow!("approval id: {e}"))?;
    let new = NewApproval {
        id: id.clone(),
        origin: req.origin,
        summary: req.summary,
        detail: req.detail,
        task_id: req.task_id,
        requested_by: req.requested_by,
        risk: req.risk.min(100),
        reasons: req.reasons,
        expires_in: req.expires_in.unwrap_or(DEFAULT_EXPIRES),
        required_approvers: 1,
        reply_to: req.reply_to,
    };
    store.insert_approval(&new, Utc::now()).await?;
    Ok(id)
}

/// The request as it stands now.
pub async fn status(store: &Store, id: &str) -> anyhow::Result<Option<Approval>> {
    store.approval(id).await
}

/// Wait until the request is decided (approved, denied, expired or
/// cancelled), looking every `poll`. Returns the decided record. Bound it
/// with `tokio::time::timeout` if the caller has a deadline of its own; the
/// request's own expiry ends the wait in any case once the agent runs.
pub async fn wait(store: &Store, id: &str, poll: Duration) -> anyhow::Result<Approval> {
    loop {
        match store.approval(id).await? {
            Some(a) if a.status.is_final() => return Ok(a),
            Some(_) => tokio::time::sleep(poll).await,
            None => anyhow::bail!("no approval has the id {id:?}"),
        }
    }
}

/// Shows approval requests to the humans who decide them, and edits each
/// prompt once its request is decided or expired. The Telegram adapter is
/// the implementation; the approvals loop only calls this port.
pub trait Prompter: Send + Sync {
    /// Post the prompts of requests not shown yet.
    fn send_due_prompts<'a>(
        &'a self,
        ctx: &'a ApprovalsContext,
    ) -> futures_util::future::BoxFuture<'a, anyhow::Result<()>>;
    /// Show a decided request as decided (who, when) and remove its buttons.
    fn finalize<'a>(
        &'a self,
        ctx: &'a ApprovalsContext,
        approval: &'a Approval,
    ) -> futures_util::future::BoxFuture<'a, ()>;
}

/// What the approvals loop and the item handlers need.
#[derive(Clone)]
pub struct ApprovalsContext {
    pub config: Config,
    pub agent: String,
    pub store: Store,
    pub outbox: OutboxNotify,
    /// Present on the agent that owns the Telegram token (its adapter).
    pub prompter: Option<Arc<dyn Prompter>>,
    /// Seals forwarded requests and decisions, and checks those that arrive.
    /// `None` when the environment has none: nothing is forwarded, and no
    /// decision from a peer is taken.
    pub secret: Option<FleetSecret>,
    /// Signs the decisions this agent sends back, where `[approvals]
    /// decision_keys` asks for signatures (the Telegram owner only).
    pub signer: Option<Arc<SigningKey>>,
}

impl ApprovalsContext {
    /// Whether this agent answers approvals itself.
    pub fn is_owner(&self) -> bool {
        self.config
            .telegram_owner()
            .is_some_and(|o| o.name == self.agent)
    }
}

/// The agent's approvals loop: expiry everywhere; on the Telegram owner
/// prompts, reminders, escalation and finalising decisions; elsewhere
/// forwarding requests to the owner.
pub async fn run(ctx: ApprovalsContext, stop: Shutdown) -> anyhow::Result<()> {
    let mut tick = stop.ticker(Duration::from_millis(200));
    while tick.tick().await {
        if let Err(e) = step(&ctx).await {
            warn!(
                error = format!("{e:#}"),
                "approvals step failed; trying again"
            );
        }
    }
    Ok(())
}

async fn step(ctx: &ApprovalsContext) -> anyhow::Result<()> {
    let now = Utc::now();
    for id in ctx.store.expire_due_approvals(now).await? {
        info!(approval = %id, "approval expired");
    }
    match &ctx.prompter {
        Some(tg) => {
            tg.send_due_prompts(ctx).await?;
            ladder(ctx).await?;
            for a in ctx.store.approvals_to_finalize().await? {
                tg.finalize(ctx, &a).await;
            }
        }
        None => {
            if !ctx.is_owner() {
                forward(ctx, now).await?;
            }
            // Nothing to show here: the requester polls its own database.
            for a in ctx.store.approvals_to_finalize().await? {
                ctx.store.claim_finalize(&a.id, now).await?;
            }
        }
    }
    Ok(())
}

/// Hand pending requests to the Telegram owner's inbox.
async fn forward(ctx: &ApprovalsContext, now: DateTime<Utc>) -> anyhow::Result<()> {
    let Some(owner) = ctx.config.telegram_owner() else {
        return Ok(());
    };
    let Some(secret) = &ctx.secret else {
        // The start-up check names the missing variable; nothing can be sent
        // that the owner would believe.
        return Ok(());
    };
    for a in ctx.store.approvals_to_forward().await? {
        let remaining = (a.expires_at - now)
            .to_std()
            .unwrap_or(Duration::from_secs(1));
        let item = RequestItem::forward(&a, &ctx.agent, remaining, &owner.name, secret);
        crate::coord::inbox::drop_item(
            &ctx.config.fleet.workspace,
            &owner.name,
            &format!("fwd_{}", a.id),
            &serde_json::to_value(&item).context("cannot serialise the request")?,
        )
        .with_context(|| format!("cannot forward approval {} to {}", a.id, owner.name))?;
        ctx.store.set_forwarded(&a.id, &owner.name, now).await?;
        info!(approval = %a.id, to = %owner.name, "approval forwarded to the Telegram owner");
    }
    Ok(())
}

/// Hand the decision on `a` back to the agent that forwarded it (none when
/// it was asked here): sealed, and signed where `[approvals] decision_keys`
/// asks for it. Whichever platform prompted calls this once `a` is final.
pub fn send_decision_back(ctx: &ApprovalsContext, a: &Approval) -> anyhow::Result<()> {
    let Some(to) = &a.reply_to else {
        return Ok(());
    };
    let secret = ctx.secret.as_ref().with_context(|| {
        format!(
            "cannot seal the decision for {to}: {} is not set",
            ctx.config.fleet.secret_env
        )
    })?;
    if ctx.config.signs_decisions(&ctx.agent) && ctx.signer.is_none() {
        anyhow::bail!(
            "cannot sign the decision for {to}: {} holds no key",
            ctx.config.approvals.signing_key_env
        );
    }
    let item = DecisionItem::for_requester(a, to, secret, ctx.signer.as_deref())
        .context("the approval is not decided")?;
    crate::coord::inbox::drop_item(
        &ctx.config.fleet.workspace,
        to,
        &format!("dec_{}", a.id),
        &serde_json::to_value(&item).context("cannot serialise the decision")?,
    )
    .map_err(|e| anyhow::anyhow!("cannot send the decision to {to}: {e}"))?;
    Ok(())
}

/// Reminder in Telegram, then a ping to `[approvals] escalate_to`.
async fn ladder(ctx: &ApprovalsContext) -> anyhow::Result<()> {
    let settings = &ctx.config.approvals;
    let now = Utc::now();
    let pending = ctx.store.approvals(Some(ApprovalStatus::Pending)).await?;
    for a in pending {
        let age = (now - a.created_at).to_std().unwrap_or_default();
        let left = buttons::until(a.expires_at, now);
        if let Some(after) = settings.remind_after
            && a.reminded_at.is_none()
            && a.message_id.is_some()
            && age >= after
        {
            let dest = switchyard_routing::Destination::telegram(&settings.chat);
            let title = format!("Reminder: approval still waiting: {}", a.summary);
            let body = format!(
                "Risk {}. It expires in {left}; answer with the buttons on the request above, or /approvals. Id {}.",
                a.risk, a.id
            );
            ctx.store
                .enqueue_notice(&dest, &title, &body, Severity::Warning, now)
                .await?;
            ctx.store.set_reminded(&a.id, now).await?;
            ctx.outbox.wake();
        }
        if let (Some(after), Some(dest)) = (settings.escalate_after, &settings.escalate_to)
            && a.escalated_at.is_none()
            && age >= after
        {
            let title = format!(
                "Approval waiting for {}: {}",
                humantime::format_duration(Duration::from_secs(age.as_secs())),
                a.summary
            );
            let body = format!(
                "Requested by {}, risk {}. Nobody has answered in Telegram; it expires (and counts as denied) in {left}. \
                 Decide with `switchyard approve {}` or `switchyard deny {}`.",
                a.requested_by, a.risk, a.id, a.id
            );
            ctx.store
                .enqueue_notice(dest, &title, &body, Severity::Warning, now)
                .await?;
            ctx.store
                .set_escalated(&a.id, &dest.to_string(), now)
                .await?;
            ctx.outbox.wake();
        }
    }
    Ok(())
}
