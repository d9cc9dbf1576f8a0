//! What the analysis reports: the findings, in order, and the dangers they
//! name. These are the crate's public types (the crate root re-exports
//! them); they sit at the bottom so that the rules and the walker can build
//! them without reaching up to the root that calls the walker.

use std::fmt;

/// What analysis found in one argv (or script). Findings are in order of
/// appearance; within one command: git push, force, dangers, then what was
/// not understood. The same finding on the same command is listed once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Analysis {
    pub findings: Vec<Finding>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: FindingKind,
    /// The simple command it was found in, re-quoted for display, cut to
    /// ~120 chars. For a pipe into a shell, the pipe (`curl … | sh`).
    pub command: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FindingKind {
    Dangerous(Danger),
    /// Any `git push`, whatever global options precede `push`.
    GitPush,
    /// `--force…` on any program; `-f` and clusters holding `f` on rm, cp,
    /// mv, ln and git push/clean/branch/tag/checkout/switch; `+refspec` and
    /// `--mirror` on push.
    ForceFlag,
    /// The analyzer could not read the command; the reason in words.
    NotUnderstood(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Danger {
    /// rm -r on /, /*, ~, ~/*, $HOME, a top-level system directory, `*`
    /// where the directory is unknown or is / or ~; --no-preserve-root;
    /// rsync --delete onto those; mv of those.
    RecursiveDeleteOfRoot,
    /// find on / or ~ (or a system directory) with -delete or -exec rm.
    FindDelete,
    /// mkfs*, mke2fs, mkswap, wipefs, blkdiscard, sgdisk --zap-all,
    /// parted mklabel.
    FilesystemFormat,
    /// dd of=/dev/sdX, any output redirection or tee/cp onto a device,
    /// shred of a device.
    RawDeviceWrite,
    /// shutdown, reboot, poweroff, halt, init 0/6, systemctl
    /// poweroff/reboot/halt (or start/isolate of their targets), loginctl,
    /// kill 1 / kill -1, killall5, writes to /proc/sysrq-trigger.
    Shutdown,
    /// chmod/chown/chgrp -R on / or ~ or a system directory; chmod 777 /.
    PermissionBomb,
    /// A function that calls itself in a pipe or in the background; an
    /// endless loop that starts background jobs.
    ForkBomb,
    /// Code nobody can read run by a shell or an interpreter: a download
    /// piped, substituted, saved or stored in a variable and then run;
    /// `source <(…)`; exec of a command's output.
    CodeInjection,
    /// A decoded or unpacked payload (base64 -d, xxd -r, openssl enc -d,
    /// gunzip, rev…) run by a shell or an interpreter.
    DecodeIntoShell,
    /// git push with force (or +refspec) naming main/master, or a branch
    /// that may be main (no refspec, HEAD, a glob, --all); --mirror;
    /// deleting main/master.
    ForcePushToMain,
}

impl Danger {
    /// A human name for the explanation lines.
    pub fn describe(self) -> &'static str {
        match self {
            Danger::RecursiveDeleteOfRoot => "destructive file operation (rm -r on / or ~)",
            Danger::FindDelete => "destructive file operation (find / -delete)",
            Danger::FilesystemFormat => "filesystem format (mkfs)",
            Danger::RawDeviceWrite => "raw write to a disk device (dd of=/dev/..., > /dev/sdX)",
            Danger::Shutdown => "shutdown or reboot",
            Danger::PermissionBomb => "permission bomb (chmod -R 777 /, chown -R /)",
            Danger::ForkBomb => "fork bomb",
            Danger::CodeInjection => "code injection (eval/exec, curl | sh)",
            Danger::DecodeIntoShell => "decoded payload run by a shell (base64 -d | sh)",
            Danger::ForcePushToMain => "force-push to main/master",
        }
    }
}

impl fmt::Display for Danger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

impl Analysis {
    pub fn dangerous(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| matches!(f.kind, FindingKind::Dangerous(_)))
    }

    pub fn git_push(&self) -> bool {
        self.findings.iter().any(|f| f.kind == FindingKind::GitPush)
    }

    pub fn force(&self) -> bool {
        self.findings
            .iter()
            .any(|f| f.kind == FindingKind::ForceFlag)
    }

    /// The first reason the analyzer gave for not understanding something.
    pub fn not_understood(&self) -> Option<&str> {
        self.findings.iter().find_map(|f| match &f.kind {
            FindingKind::NotUnderstood(why) => Some(why.as_str()),
            _ => None,
        })
    }
}
