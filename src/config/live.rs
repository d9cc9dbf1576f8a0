//! What an agent applies from a reloaded configuration without a restart:
//! its routes and routing settings, behind one handle that every reader
//! takes a snapshot of (the event path, the chat commands' `/route` and
//! `/send`), and that a reload replaces whole.

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
