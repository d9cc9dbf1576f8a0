//! Where a path argument lands: the root, the home directory, a top-level
//! system directory, "everything here" in a directory nobody knows, a disk
//! device, or somewhere ordinary. Paths are normalized lexically (`//`,
//! `/./`, `/tmp/..`), never looked up: there is no file system here.
//!
//! The home directory has no known path, so expansions of `~` and `$HOME`
//! are carried as the marker [`HOME`] at the start of a value. Input cannot
//! forge it: NUL bytes are removed from scripts and argv before reading.

use crate::report::Danger;

pub(crate) const HOME: char = '\0';

/// Top-level directories whose removal (or `chmod -R`) wrecks a system.
/// `/tmp` is deliberately absent: cleaning it is routine.
const SYSTEM: &[&str] = &[
    "bin", "boot", "dev", "etc", "home", "lib", "lib32", "lib64", "libx32", "media", "mnt", "nix",
    "opt", "proc", "root", "run", "sbin", "snap", "srv", "sys", "usr", "var",
];

/// Device nodes that are safe to write: sinks, terminals, descriptors.
const HARMLESS_DEV: &[&str] = &[
    "null",
    "zero",
    "full",
    "random",
    "urandom",
    "stdin",
    "stdout",
    "stderr",
    "console",
    "ptmx",
    "fd",
    "pts",
    "shm",
    "tcp",
    "udp",
    "mqueue",
    "log",
    "kmsg",
    "hugepages",
];

/// The working directory as far as the script tells: after `cd /` it is
/// known; at the start of a step it is not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum Cwd {
    #[default]
    Unknown,
    /// Normalized: `/…`, or the home marker followed by `/…`.
    Known(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// `/`, `/*`, or any glob at the top level.
    Root,
    /// `/usr`, `/etc/*` …
    SystemDir,
    /// `~`, `~/*`, `$HOME`.
    Home,
    /// `*`, `./*`, `../*` in a directory the script never named.
    CwdWide,
    Other,
}

impl Place {
    pub(crate) fn is_wide(self) -> bool {
        self != Place::Other
    }

    /// Wide, leaving out "everything here", which is a normal clean-up for
    /// everything but rm (where the old gate flagged it and still does).
    pub(crate) fn is_system_wide(self) -> bool {
        matches!(self, Place::Root | Place::SystemDir | Place::Home)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Base {
    Root,
    Home,
    Rel,
}

fn locate(path: &str, cwd: &Cwd) -> (Base, Vec<String>) {
    let (mut base, rest, mut comps) = if let Some(r) = path.strip_prefix(HOME) {
        (Base::Home, r, Vec::new())
    } else if path.starts_with('/') {
        (Base::Root, path, Vec::new())
    } else {
        match cwd {
            Cwd::Known(c) => {
                let (b, cs) = locate(c, &Cwd::Unknown);
                (b, path, cs)
            }
            Cwd::Unknown => (Base::Rel, path, Vec::new()),
        }
    };
    for c in rest.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if comps.last().is_some_and(|l| l != "..") {
                    comps.pop();
                } else if base == Base::Home {
                    // Above the home directory: somewhere near the root.
                    base = Base::Root;
                } else if base == Base::Rel {
                    comps.push("..".into());
                }
            }
            _ => comps.push(c.to_string()),
        }
    }
    (base, comps)
}

fn has_glob(c: &str) -> bool {
    c.contains(['*', '?', '['])
}

/// `*`, `.*`, `*.*`, `?*`: a component that matches (nearly) every name.
fn match_all(c: &str) -> bool {
    c.contains(['*', '?']) && c.chars().all(|ch| matches!(ch, '*' | '?' | '.'))
}

pub(crate) fn classify(path: &str, cwd: &Cwd) -> Place {
    let (base, comps) = locate(path, cwd);
    match base {
        Base::Root => match comps.as_slice() {
            [] => Place::Root,
            [first, ..] if has_glob(first) => Place::Root,
            [first] if SYSTEM.contains(&first.as_str()) => Place::SystemDir,
            [first, second] if SYSTEM.contains(&first.as_str()) && has_glob(second) => {
                Place::SystemDir
            }
            _ => Place::Other,
        },
        Base::Home => match comps.first() {
            None => Place::Home,
            Some(f) if has_glob(f) => Place::Home,
            _ => Place::Other,
        },
        Base::Rel => match comps.iter().find(|c| *c != "..") {
            Some(f) if match_all(f) => Place::CwdWide,
            _ => Place::Other,
        },
    }
}

/// The normalized absolute path (home marker included), or None when it is
/// relative to a directory nobody knows.
pub(crate) fn absolute(path: &str, cwd: &Cwd) -> Option<String> {
    let (base, comps) = locate(path, cwd);
    let tail: String = comps.iter().map(|c| format!("/{c}")).collect();
    match base {
        Base::Rel => None,
        Base::Root if tail.is_empty() => Some("/".into()),
        Base::Root => Some(tail),
        Base::Home => Some(format!("{HOME}{tail}")),
    }
}

/// A key for remembering a file by path: `./a.sh` and `a.sh` are the same.
pub(crate) fn file_key(path: &str, cwd: &Cwd) -> String {
    absolute(path, cwd).unwrap_or_else(|| locate(path, &Cwd::Unknown).1.join("/"))
}

/// Writing to this path wrecks a disk (a device node) or the machine
/// (`/proc/sysrq-trigger`).
pub(crate) fn device_write(path: &str, cwd: &Cwd) -> Option<Danger> {
    let (base, comps) = locate(path, cwd);
    if base != Base::Root {
        return None;
    }
    match comps.as_slice() {
        [d, name, ..] if d == "dev" => {
            let harmless = HARMLESS_DEV.contains(&name.as_str()) || name.starts_with("tty");
            (!harmless).then_some(Danger::RawDeviceWrite)
        }
        [p, s] if p == "proc" && s == "sysrq-trigger" => Some(Danger::Shutdown),
        _ => None,
    }
}

/// A device node (for `shred`, which destroys whatever it is given).
pub(crate) fn is_device(path: &str, cwd: &Cwd) -> bool {
    device_write(path, cwd) == Some(Danger::RawDeviceWrite)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places() {
        let u = Cwd::Unknown;
        let home = format!("{HOME}");
        for (p, want) in [
            ("/", Place::Root),
            ("//", Place::Root),
            ("/./", Place::Root),
            ("/tmp/..", Place::Root),
            ("/*", Place::Root),
            ("/b*", Place::Root),
            ("/usr", Place::SystemDir),
            ("/etc/", Place::SystemDir),
            ("/var/*", Place::SystemDir),
            ("/var/lib/apt/lists/*", Place::Other),
            ("/tmp/x", Place::Other),
            ("/tmp", Place::Other),
            ("*", Place::CwdWide),
            ("./*", Place::CwdWide),
            ("../*", Place::CwdWide),
            ("*.o", Place::Other),
            ("build/", Place::Other),
            (".", Place::Other),
            ("", Place::Other),
        ] {
            assert_eq!(classify(p, &u), want, "{p}");
        }
        assert_eq!(classify(&home, &u), Place::Home);
        assert_eq!(classify(&format!("{HOME}/"), &u), Place::Home);
        assert_eq!(classify(&format!("{HOME}/*"), &u), Place::Home);
        assert_eq!(classify(&format!("{HOME}/.cache"), &u), Place::Other);
        assert_eq!(classify(&format!("{HOME}/.."), &u), Place::Root);
        let root = Cwd::Known("/".into());
        assert_eq!(classify("*", &root), Place::Root);
        assert_eq!(classify(".", &root), Place::Root);
        assert_eq!(classify("*", &Cwd::Known("/tmp/x".into())), Place::Other);
        assert_eq!(
            classify("../../*", &Cwd::Known("/tmp/x".into())),
            Place::Root
        );
    }

    #[test]
    fn devices() {
        let u = Cwd::Unknown;
        assert!(device_write("/dev/sda", &u).is_some());
        assert!(device_write("/dev//nvme0n1", &u).is_some());
        assert!(device_write("/dev/null", &u).is_none());
        assert!(device_write("/dev/tty1", &u).is_none());
        assert!(device_write("./disk.img", &u).is_none());
        assert!(device_write("sda", &Cwd::Known("/dev".into())).is_some());
        assert_eq!(
            device_write("/proc/sysrq-trigger", &u),
            Some(crate::Danger::Shutdown)
        );
    }

    #[test]
    fn absolute_paths() {
        assert_eq!(absolute("/a/../b", &Cwd::Unknown).as_deref(), Some("/b"));
        assert_eq!(absolute("x", &Cwd::Unknown), None);
        assert_eq!(
            absolute("x", &Cwd::Known("/".into())).as_deref(),
            Some("/x")
        );
        assert_eq!(file_key("./a.sh", &Cwd::Unknown), "a.sh");
    }
}
