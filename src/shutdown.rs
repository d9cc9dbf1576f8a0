//! The agent's stop signal: one [`ShutdownHandle`] that asks every loop to
//! stop, and the [`Shutdown`] each loop listens on (as mini-redis's
//! `Shutdown`), with the deadline shutdown may take, the wait for SIGINT or
//! SIGTERM, [`Ticker`], the "every N ms until stopped" skeleton the
//! periodic loops share, and [`start_over`], the abrupt stop of a holder
//! that lost its lease.

use std::time::Duration;

use tokio::sync::watch;

/// How long shutdown may take before the process exits anyway.
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(10);

/// Asks every [`Shutdown`] made from it to stop. Dropping it stops them too:
/// a loop whose owner is gone has nobody left to serve.
#[derive(Debug, Clone)]
pub struct ShutdownHandle {
    tx: watch::Sender<bool>,
}

/// A loop's view of the stop signal. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
}

impl ShutdownHandle {
    /// A new signal, not yet given.
    pub fn new() -> ShutdownHandle {
        ShutdownHandle {
            tx: watch::channel(false).0,
        }
    }

    /// A signal and its first listener.
    pub fn pair() -> (ShutdownHandle, Shutdown) {
        let handle = ShutdownHandle::new();
        let listener = handle.listen();
        (handle, listener)
    }

    /// Ask every listener to stop. Idempotent.
    pub fn stop(&self) {
        self.tx.send_replace(true);
    }

    /// A new listener of this signal.
    pub fn listen(&self) -> Shutdown {
        Shutdown {
            rx: self.tx.subscribe(),
        }
    }

    /// Whether stop has been asked for.
    pub fn is_stopped(&self) -> bool {
        *self.tx.borrow()
    }
}

impl Default for ShutdownHandle {
    fn default() -> Self {
        ShutdownHandle::new()
    }
}

impl Shutdown {
    /// Whether stop has been asked for (or the handle is gone).
    pub fn is_stopped(&self) -> bool {
        *self.rx.borrow() || self.rx.has_changed().is_err()
    }

    /// Resolves once stop is asked for (or the handle is gone).
    pub async fn stopped(&mut self) {
        let _ = self.rx.wait_for(|stop| *stop).await;
    }

    /// Sleep for `d` unless stopped first. Returns `false` when stopped.
    pub async fn sleep(&mut self, d: Duration) -> bool {
        tokio::select! {
            biased;
            _ = self.stopped() => false,
            _ = tokio::time::sleep(d) => true,
        }
    }

    /// A ticker firing every `every` (the first tick at once) until stopped.
    pub fn ticker(&self, every: Duration) -> Ticker {
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Ticker {
            interval,
            shutdown: self.clone(),
        }
    }
}

/// The periodic loop's skeleton: `while ticker.tick().await { ... }`.
/// A late tick is delayed, never bunched up (a slow step does not cause a burst).
#[derive(Debug)]
pub struct Ticker {
    interval: tokio::time::Interval,
    shutdown: Shutdown,
}

impl Ticker {
    /// Waits for the next tick. `false` once stopped: leave the loop.
    pub async fn tick(&mut self) -> bool {
        tokio::select! {
            biased;
            _ = self.shutdown.stopped() => false,
            _ = self.interval.tick() => true,
        }
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Ends everything this process is doing at once and starts it over in
/// place: the same program, arguments and environment, under the same pid
/// (`exec`), so a supervisor sees it keep running. For a holder that lost
/// its agent's lease: nothing it was doing may go on, not even a graceful
/// drain, and what it does next (wait as a standby, or for the database)
/// is what a fresh start does. Files and sockets are closed by the exec
/// (Rust opens them close-on-exec). Falls back to exiting with status 1.
pub fn start_over() -> ! {
    use std::os::unix::process::CommandExt;
    match std::env::current_exe() {
        Ok(exe) => {
            let err = std::process::Command::new(exe)
                .args(std::env::args_os().skip(1))
                .exec();
            tracing::error!(error = %err, "could not start over in place: exiting");
        }
        Err(e) => tracing::error!(error = %e, "could not find this program to start over: exiting"),
    }
    std::process::exit(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ticker_stops_when_asked() {
        let (handle, shutdown) = ShutdownHandle::pair();
        let mut ticker = shutdown.ticker(Duration::from_millis(5));
        assert!(ticker.tick().await, "the first tick fires at once");
        assert!(ticker.tick().await);
        handle.stop();
        assert!(!ticker.tick().await, "a stopped ticker ends the loop");
        assert!(shutdown.is_stopped());
    }

    #[tokio::test]
    async fn a_dropped_handle_stops_its_listeners() {
        let (handle, mut shutdown) = ShutdownHandle::pair();
        drop(handle);
        assert!(shutdown.is_stopped());
        assert!(!shutdown.sleep(Duration::from_secs(60)).await);
    }

    #[tokio::test]
    async fn sleep_runs_its_course_while_not_stopped() {
        let (_handle, mut shutdown) = ShutdownHandle::pair();
        assert!(shutdown.sleep(Duration::from_millis(5)).await);
        assert!(!shutdown.is_stopped());
    }
}
