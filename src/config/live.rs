//! What an agent applies from a reloaded configuration without a restart:
//! its routes and routing settings, behind one handle that every reader
//! takes a snapshot of (the event path, the chat commands' `/route` and
//! `/send`), and that a reload replaces whole; and likewise who may do what
//! ([`LiveAccess`]: the Discord and Telegram access lists and Telegram's
//! approvers), so that taking someone's access away needs no restart.

use std::sync::{Arc, RwLock};

use switchyard_routing::Router;

use super::RoutingSettings;

/// The routes compiled, and the routing settings, as of the last (re)load.
#[derive(Debug)]
pub struct Routing {
    pub router: Router,
    pub settings: RoutingSettings,
}

/// The agent's current [`Routing`]. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LiveRouting(Arc<RwLock<Arc<Routing>>>);

impl LiveRouting {
    pub fn new(router: Router, settings: RoutingSettings) -> LiveRouting {
        LiveRouting(Arc::new(RwLock::new(Arc::new(Routing {
            router,
            settings,
        }))))
    }

    /// The routing now (a snapshot: a reload meanwhile does not change it).
    pub fn get(&self) -> Arc<Routing> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replace the routing, for every reader from now on.
    pub fn set(&self, router: Router, settings: RoutingSettings) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(Routing { router, settings });
    }
}

/// Who may do what, as of the last (re)load.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    pub discord: Option<switchyard_commands::AccessList>,
    pub telegram: Option<switchyard_commands::AccessList>,
    /// Telegram user ids whose button presses decide approvals.
    pub telegram_approvers: Vec<i64>,
}

impl Access {
    pub fn of(config: &super::Config) -> Access {
        Access {
            discord: config.discord.as_ref().map(|d| d.access.clone()),
            telegram: config.telegram.as_ref().map(|t| t.access.clone()),
            telegram_approvers: config
                .telegram
                .as_ref()
                .map(|t| t.approvers.clone())
                .unwrap_or_default(),
        }
    }

    /// The list of `platform` (nobody may do anything on one not configured).
    pub fn list(&self, platform: switchyard_routing::Platform) -> switchyard_commands::AccessList {
        match platform {
            switchyard_routing::Platform::Discord => self.discord.clone(),
            switchyard_routing::Platform::Telegram => self.telegram.clone(),
        }
        .unwrap_or_default()
    }
}

/// The agent's current [`Access`]. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct LiveAccess(Arc<RwLock<Arc<Access>>>);

impl LiveAccess {
    pub fn new(access: Access) -> LiveAccess {
        LiveAccess(Arc::new(RwLock::new(Arc::new(access))))
    }

    pub fn get(&self) -> Arc<Access> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set(&self, access: Access) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(access);
    }
}
