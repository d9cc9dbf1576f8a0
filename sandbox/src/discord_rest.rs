//! The front door of the Discord REST stand-in (`/api/v10`): each request is
//! offered first to the routes the gateway owns (interaction callbacks and
//! follow-ups, commands, reactions — checked against the channels by
//! `discord/reactions.rs`: `gateway.rs`), then to the channel,
//! message, webhook and login routes (`discord.rs`).
//!
//! It sits above both so that they import one way: the gateway builds on the
//! REST world (it plays users' messages into its channels and shows its guild),
//! so `discord.rs` must not call the gateway. What a REST write tells the
//! connected bots (a started thread's `THREAD_CREATE`) is handed down from here
//! as a [`Dispatch`](crate::discord::Dispatch) that broadcasts through the gateway.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use serde_json::Value;

use super::{Inner, Shared, discord, finish, gateway};

pub(crate) async fn entry(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri
        .path()
        .strip_prefix("/api/v10")
        .unwrap_or(uri.path())
        .to_owned();
    if let Some((route, reply)) =
        gateway::rest(&shared, &method, &path, uri.query(), &headers, &body)
    {
        return finish(&shared, discord::seen(&method, &uri, route), reply);
    }
    discord::serve(&shared, &method, &uri, &path, &headers, &body, broadcast).await
}

/// Every identified gateway connection receives the event, as on Discord
/// (called with the sandbox's lock held, in the same step as the write).
fn broadcast(inner: &mut Inner, event: &str, d: &Value) {
    inner.gateway.broadcast(event, d);
}
