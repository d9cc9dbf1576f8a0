//! The standard `process_*` metrics Prometheus users alert on (resident
//! and virtual memory, CPU time, start time, open and maximum file
//! descriptors, threads), read from `/proc/self` when `/metrics` is scraped.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// The process's own figures; refreshed by [`ProcessMetrics::refresh`].
#[derive(Clone, Default)]
pub struct ProcessMetrics {
    resident: Gauge,
    virtual_bytes: Gauge,
    cpu_seconds: Counter<f64, AtomicU64>,
    start_time: Gauge<f64, AtomicU64>,
    open_fds: Gauge,
    max_fds: Gauge,
    threads: Gauge,
}

impl ProcessMetrics {
    /// Register under the standard names (no `switchyard_` prefix).
    pub fn register(&self, root: &mut Registry) {
        root.register(
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            self.resident.clone(),
        );
        root.register(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes",
            self.virtual_bytes.clone(),
        );
        // The name ends in _seconds: the encoder adds `_total` for a counter.
        root.register(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            self.cpu_seconds.clone(),
        );
        root.register(
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch in seconds",
            self.start_time.clone(),
        );
        root.register(
            "process_open_fds",
            "Number of open file descriptors",
            self.open_fds.clone(),
        );
        root.register(
            "process_max_fds",
            "Maximum number of open file descriptors",
            self.max_fds.clone(),
        );
        root.register(
            "process_threads",
            "Number of OS threads in the process",
            self.threads.clone(),
        );
    }

    /// Read `/proc/self` (Linux); elsewhere the figures stay at zero.
    pub fn refresh(&self) {
        let ticks = clock_ticks();
        let page = page_size();
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
            // Fields after the command name, which is in parentheses and may hold spaces.
            let fields: Vec<&str> = stat
                .rsplit_once(')')
                .map(|(_, rest)| rest.split_whitespace().collect())
                .unwrap_or_default();
            let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok());
            if let (Some(utime), Some(stime)) = (field(14), field(15)) {
                let total = (utime + stime) as f64 / ticks;
                let seen = self.cpu_seconds.get();
                if total > seen {
                    self.cpu_seconds.inc_by(total - seen);
                }
            }
            if let Some(threads) = field(20) {
                self.threads.set(threads as i64);
            }
            if let Some(start) = field(22)
                && let Some(boot) = boot_time()
            {
                self.start_time.set(boot + start as f64 / ticks);
            }
            if let Some(vsize) = field(23) {
                self.virtual_bytes.set(vsize as i64);
            }
            if let Some(rss) = field(24) {
                self.resident.set((rss * page) as i64);
            }
        }
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            self.open_fds.set(dir.count() as i64);
        }
        if let Ok(limits) = std::fs::read_to_string("/proc/self/limits")
            && let Some(max) = limits
                .lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse::<i64>().ok())
        {
            self.max_fds.set(max);
        }
    }
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 { p as u64 } else { 4096 }
}

/// The system's boot time (`btime` in /proc/stat), read once.
fn boot_time() -> Option<f64> {
    static BOOT: AtomicU64 = AtomicU64::new(0);
    let cached = BOOT.load(Ordering::Relaxed);
    if cached > 0 {
        return Some(cached as f64);
    }
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let btime = stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse::<u64>()
        .ok()?;
    BOOT.store(btime, Ordering::Relaxed);
    Some(btime as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_process_reads_itself() {
        let p = ProcessMetrics::default();
        p.refresh();
        assert!(
            p.resident.get() > 1024 * 1024,
            "resident {}",
            p.resident.get()
        );
        assert!(p.open_fds.get() >= 3);
        assert!(p.threads.get() >= 1);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let started = p.start_time.get();
        assert!(
            started > now - 3600.0 && started <= now + 1.0,
            "{started} vs {now}"
        );
    }
}
