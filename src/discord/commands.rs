//! The slash commands as poise shells: one poise `Command` per row of the
//! neutral catalog (`switchyard_commands::COMMANDS`), built from the table
//! rather than written by hand, so names, descriptions, options and
//! autocomplete always match the text grammar and `/help`.
//!
//! Each shell converts the interaction's options to a `CommandInput`, runs
//! the neutral `handle` in a task of its own (a panic is an answer, not a crash),
//! defers when that takes longer than [`DEFER_AFTER`] (Discord drops an
//! interaction not answered within 3 s), renders the `Reply` as an embed
//! and stores the audit row.

use std::time::Duration;

use chrono::Utc;
use futures_util::future::BoxFuture;
use poise::serenity_prelude as serenity;
use serenity::{
    CommandInteraction, CommandOptionType, CreateActionRow, CreateAutocompleteResponse,
    CreateButton, CreateEmbed, ResolvedOption, ResolvedValue,
};
use switchyard_commands::catalog::{CommandSpec, OptionSpec, ValueKind};
use switchyard_commands::{
    ButtonAction, COMMANDS, Caller, Command, CommandInput, OptionValue, Reply, complete,
    completion_for, handle, handle_usage_error,
};
use tracing::{info, warn};

use crate::delivery::render::truncate;
use crate::fleet::{AgentFleet, audit_entry};

/// Answer with a deferral when the handler has not finished by then: the
/// callback still reaches Discord well inside its 3 s window.
pub const DEFER_AFTER: Duration = Duration::from_millis(1500);
/// Discord's embed limits.
const EMBED_TITLE_MAX: usize = 256;
const EMBED_DESCRIPTION_MAX: usize = 4096;
const EMBED_FIELDS_MAX: usize = 25;
const EMBED_FIELD_NAME_MAX: usize = 256;
const EMBED_FIELD_VALUE_MAX: usize = 1024;
const EMBED_TOTAL_MAX: usize = 6000;
/// Discord shows at most 25 autocomplete choices.
const AUTOCOMPLETE_MAX: usize = 25;

/// What every command shell shares.
pub struct Data {
    pub fleet: AgentFleet,
    /// The bot's own user id (from READY), for mentions.
    pub bot_user: u64,
    pub defer_after: Duration,
    /// The agent's conversations, when it has a responder.
    pub conversations: Option<crate::conversations::Conversations>,
    /// The outbox's limiter: the acknowledging reactions wait their turn there.
    pub limits: Option<crate::delivery::DiscordLimiter>,
}

pub type Error = anyhow::Error;
type Ctx<'a> = poise::ApplicationContext<'a, Data, Error>;
type ActionResult<'a> = BoxFuture<'a, Result<(), poise::FrameworkError<'a, Data, Error>>>;

/// The poise commands, one per catalog row.
pub fn commands() -> Vec<poise::Command<Data, Error>> {
    COMMANDS.iter().map(command_for).collect()
}

fn command_for(spec: &CommandSpec) -> poise::Command<Data, Error> {
    let subcommands = spec
        .subcommands
        .iter()
        .map(|sub| poise::Command {
            name: sub.name.into(),
            qualified_name: format!("{} {}", spec.name, sub.name).into(),
            identifying_name: format!("{}_{}", spec.name, sub.name).into(),
            source_code_name: format!("{}_{}", spec.name, sub.name).into(),
            description: Some(sub.summary.into()),
            slash_action: Some(slash_action),
            parameters: sub.options.iter().map(parameter_for).collect(),
            ..Default::default()
        })
        .collect::<Vec<_>>();
    poise::Command {
        name: spec.name.into(),
        qualified_name: spec.name.into(),
        identifying_name: spec.name.into(),
        source_code_name: spec.name.into(),
        description: Some(spec.summary.into()),
        // A parent needs an action too, or poise leaves it out of the registration.
        slash_action: Some(slash_action),
        subcommand_required: !subcommands.is_empty(),
        subcommands,
        parameters: spec.options.iter().map(parameter_for).collect(),
        ..Default::default()
    }
}

// The one supported way to make a `poise::CommandParameter` outside poise:
// its own macro (the struct has a hidden field a struct literal would have to
// set, which any poise release may change). The parameters of the table's
// commands are this template with every public field set. (Plain comments:
// poise would take a doc comment as the command's description.)
#[poise::command(slash_command, description_localized("en-US", "template"))]
async fn parameter_template(
    _ctx: poise::Context<'_, Data, Error>,
    #[description = "template"] _value: Option<String>,
) -> Result<(), Error> {
    Ok(())
}

fn parameter_for(option: &OptionSpec) -> poise::CommandParameter<Data, Error> {
    let mut p = parameter_template()
        .parameters
        .pop()
        .expect("the template command has one parameter");
    p.name = option.name.into();
    p.description = Some(option.description.into());
    p.required = option.required;
    p.type_setter = Some(match option.kind {
        ValueKind::Text => |b| b.kind(CommandOptionType::String),
        ValueKind::Flag => |b| b.kind(CommandOptionType::Boolean),
    });
    p.autocomplete_callback = option.completion.map(|_| autocomplete as _);
    p.name_localizations = Default::default();
    p.description_localizations = Default::default();
    p.channel_types = None;
    p.choices = Default::default();
    p
}

fn slash_action(ctx: Ctx<'_>) -> ActionResult<'_> {
    Box::pin(async move {
        if let Err(e) = run(ctx).await {
            let error_id = crate::error::error_id();
            warn!(error_id = %error_id, command = %ctx.interaction.data.name, error = format!("{e:#}"), "a Discord command could not be answered");
        }
        Ok(())
    })
}

/// The options as the neutral commands take them.
pub fn command_input(interaction: &CommandInteraction) -> CommandInput {
    let mut input = CommandInput {
        name: interaction.data.name.clone(),
        ..CommandInput::default()
    };
    let options = interaction.data.options();
    collect_options(&options, &mut input);
    input
}

fn collect_options(options: &[ResolvedOption<'_>], input: &mut CommandInput) {
    for o in options {
        let value = match &o.value {
            ResolvedValue::String(s) => OptionValue::Text((*s).to_string()),
            ResolvedValue::Boolean(b) => OptionValue::Flag(*b),
            ResolvedValue::Integer(i) => OptionValue::Text(i.to_string()),
            ResolvedValue::Number(n) => OptionValue::Text(n.to_string()),
            ResolvedValue::SubCommand(inner) => {
                input.subcommand = Some(o.name.to_string());
                collect_options(inner, input);
                continue;
            }
            _ => continue,
        };
        input.options.push((o.name.to_string(), value));
    }
}

/// Who is asking, with the roles the interaction carries (no extra request).
pub fn caller_of(interaction: &CommandInteraction) -> Caller {
    let user = &interaction.user;
    Caller {
        platform: switchyard_routing::Platform::Discord,
        user_id: user.id.get(),
        display_name: user
            .global_name
            .clone()
            .unwrap_or_else(|| user.name.clone()),
        roles: interaction
            .member
            .as_ref()
            .map(|m| m.roles.iter().map(|r| r.get()).collect())
            .unwrap_or_default(),
    }
}

/// The command as typed, for usage errors and logs.
fn input_text(input: &CommandInput) -> String {
    let mut s = format!("/{}", input.name);
    if let Some(sub) = &input.subcommand {
        s.push(' ');
        s.push_str(sub);
    }
    for (name, value) in &input.options {
        match value {
            OptionValue::Text(t) => s.push_str(&format!(" {name}:{t}")),
            OptionValue::Flag(b) => s.push_str(&format!(" {name}:{b}")),
        }
    }
    s
}

async fn run(ctx: Ctx<'_>) -> anyhow::Result<()> {
    let data = ctx.data();
    let input = command_input(ctx.interaction);
    let caller = caller_of(ctx.interaction);
    let fleet = data.fleet.clone();
    // Read per command: a reload may have changed it.
    let access = data
        .fleet
        .access()
        .get()
        .list(switchyard_routing::Platform::Discord);
    let now = Utc::now();
    let mut work = tokio::spawn(async move {
        match Command::from_input(&input) {
            Ok(command) => handle(&command, &caller, &access, &fleet, now).await,
            Err(e) => handle_usage_error(&input_text(&input), &e, &caller, now),
        }
    });
    let handled = match tokio::time::timeout(data.defer_after, &mut work).await {
        Ok(done) => done?,
        Err(_) => {
            info!(command = %ctx.interaction.data.name, "deferring: the handler is still working");
            ctx.defer_response(false).await?;
            work.await?
        }
    };
    poise::send_application_reply(ctx, render(&handled.reply)).await?;
    let entry = audit_entry(&handled.audit, "discord");
    if let Err(e) = data.fleet.store().audit(entry).await {
        warn!(
            error = format!("{e:#}"),
            "the audit row of a Discord command was not stored"
        );
    }
    Ok(())
}

/// The neutral reply as a Discord embed (ephemeral when the reply says so),
/// cut to Discord's embed limits.
pub fn render(reply: &Reply) -> poise::CreateReply {
    let rows: Vec<CreateActionRow> = reply
        .buttons
        .iter()
        .take(5)
        .map(|row| {
            CreateActionRow::Buttons(
                row.iter()
                    .take(5)
                    .map(|b| {
                        CreateButton::new(b.token.as_str())
                            .label(truncate(&b.label, 80))
                            .style(match b.action {
                                ButtonAction::Approve => serenity::ButtonStyle::Success,
                                ButtonAction::Deny => serenity::ButtonStyle::Danger,
                            })
                    })
                    .collect(),
            )
        })
        .collect();
    let mut out = poise::CreateReply::default()
        .embed(embed(reply))
        .ephemeral(reply.ephemeral);
    if !rows.is_empty() {
        out = out.components(rows);
    }
    out
}

/// The reply's title, lines and fields as one embed within Discord's limits.
pub fn embed(reply: &Reply) -> CreateEmbed {
    let title = truncate(&reply.title, EMBED_TITLE_MAX);
    let fields: Vec<(String, String, bool)> = reply
        .fields
        .iter()
        .take(EMBED_FIELDS_MAX)
        .map(|f| {
            let value = if f.value.trim().is_empty() {
                "—".to_string()
            } else {
                truncate(&f.value, EMBED_FIELD_VALUE_MAX)
            };
            (truncate(&f.name, EMBED_FIELD_NAME_MAX), value, f.inline)
        })
        .collect();
    let used: usize = title.chars().count()
        + fields
            .iter()
            .map(|(n, v, _)| n.chars().count() + v.chars().count())
            .sum::<usize>();
    let room = EMBED_DESCRIPTION_MAX.min(EMBED_TOTAL_MAX.saturating_sub(used));
    let mut embed = CreateEmbed::new().title(title).colour(reply.tone.colour());
    if !reply.lines.is_empty() && room > 0 {
        embed = embed.description(truncate(&reply.lines.join("\n"), room));
    }
    for (name, value, inline) in fields {
        embed = embed.field(name, value, inline);
    }
    embed
}

/// Autocomplete for every option that has known values: the catalog says
/// which values, the neutral `complete` ranks them.
fn autocomplete<'a>(ctx: Ctx<'a>, partial: &'a str) -> BoxFuture<'a, CreateAutocompleteResponse> {
    Box::pin(async move {
        let input = command_input(ctx.interaction);
        let focused = ctx
            .interaction
            .data
            .autocomplete()
            .map(|o| o.name.to_string());
        let Some(kind) = focused
            .and_then(|name| completion_for(&input.name, input.subcommand.as_deref(), &name))
        else {
            return CreateAutocompleteResponse::new();
        };
        let fleet = ctx.data().fleet.clone();
        let partial = partial.to_string();
        let values = tokio::spawn(async move { complete(kind, &partial, &fleet).await })
            .await
            .unwrap_or_default();
        values
            .into_iter()
            .take(AUTOCOMPLETE_MAX)
            .fold(CreateAutocompleteResponse::new(), |r, v| {
                r.add_string_choice(v.clone(), v)
            })
    })
}
