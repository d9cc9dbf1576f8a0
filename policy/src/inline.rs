//! Shell commands inside interpreter one-liners: `python -c
//! "os.system('rm -rf /')"`, `perl -e 'system("…")'`, `ruby -e '`…`'`,
//! `node -e "execSync('…')"`, `awk 'BEGIN{system("…")}'`. Only string
//! literals handed straight to a function that runs a command are read (a
//! list of literals is an argv); the interpreter's own language is not.

use crate::value::Arg;

/// Functions that run their string through a shell, or their list as argv.
const RUNNERS: &[&str] = &[
    "system",
    "popen",
    "exec",
    "execSync",
    "spawnSync",
    "spawn",
    "check_output",
    "check_call",
    "call",
    "run",
    "Popen",
    "getoutput",
    "getstatusoutput",
    "qx",
];
const MAX_CALLS: usize = 16;

pub(crate) enum Call {
    Script(String),
    Argv(Vec<String>),
}

fn is_awk(name: &str) -> bool {
    matches!(name, "awk" | "gawk" | "mawk" | "nawk" | "busybox-awk")
}

/// The inline program of `python -c CODE`, `perl -e CODE`, `node -e CODE`,
/// `php -r CODE`, `awk 'PROGRAM'`.
pub(crate) fn code_of(name: &str, args: &[Arg]) -> Option<String> {
    if is_awk(name) {
        let mut i = 0;
        while let Some(v) = args.get(i).and_then(|a| a.value.as_deref()) {
            match v {
                "-f" | "--file" => return None,
                "-F" | "-v" | "--assign" | "--field-separator" => i += 2,
                "--" => return args.get(i + 1)?.value.clone(),
                _ if v.starts_with('-') && v.len() > 1 => i += 1,
                _ => return Some(v.to_string()),
            }
        }
        return None;
    }
    let flags: &[char] = match name {
        n if n.starts_with("python") || n.starts_with("pypy") => &['c'],
        n if n.starts_with("perl") || n.starts_with("ruby") => &['e', 'E'],
        n if n.starts_with("node") => &['e', 'p'],
        n if n.starts_with("php") => &['r'],
        _ => return None,
    };
    for (i, a) in args.iter().enumerate() {
        let v = a.value.as_deref()?;
        if matches!(v, "--eval" | "--print") {
            return args.get(i + 1)?.value.clone();
        }
        let Some(cluster) = v.strip_prefix('-').filter(|c| !c.starts_with('-')) else {
            continue;
        };
        if let Some(k) = cluster.find(flags) {
            let attached = &cluster[k + 1..];
            return if attached.is_empty() {
                args.get(i + 1)?.value.clone()
            } else {
                Some(attached.to_string())
            };
        }
    }
    None
}

/// The commands a one-liner hands to a shell (or runs as an argv).
pub(crate) fn shell_calls(name: &str, code: &str) -> Vec<Call> {
    let cs: Vec<char> = code.chars().collect();
    let backticks = name.starts_with("perl") || name.starts_with("ruby");
    let mut out = Vec::new();
    let mut i = 0;
    while i < cs.len() && out.len() < MAX_CALLS {
        let c = cs[i];
        if c == '`'
            && backticks
            && let Some((s, next)) = literal(&cs, i)
        {
            out.push(Call::Script(s));
            i = next;
            continue;
        }
        if c.is_ascii_alphabetic()
            && (i == 0 || !(cs[i - 1].is_ascii_alphanumeric() || cs[i - 1] == '_'))
        {
            let start = i;
            while i < cs.len() && (cs[i].is_ascii_alphanumeric() || cs[i] == '_') {
                i += 1;
            }
            let word: String = cs[start..i].iter().collect();
            if RUNNERS.contains(&word.as_str()) {
                let mut j = i;
                while j < cs.len() && cs[j] == ' ' {
                    j += 1;
                }
                if matches!(cs.get(j), Some('(' | '{')) {
                    j += 1;
                }
                while j < cs.len() && cs[j] == ' ' {
                    j += 1;
                }
                if cs.get(j) == Some(&'[') {
                    if let Some((v, next)) = list(&cs, j + 1) {
                        out.push(Call::Argv(v));
                        i = next;
                    }
                } else if let Some((s, next)) = literal(&cs, j) {
                    out.push(Call::Script(s));
                    i = next;
                }
            }
            continue;
        }
        i += 1;
    }
    out
}

/// A quoted literal starting at `i` (', " or `): its text and the index
/// after it. Escapes are taken as the character they escape.
fn literal(cs: &[char], i: usize) -> Option<(String, usize)> {
    let q = *cs.get(i)?;
    if !matches!(q, '\'' | '"' | '`') {
        return None;
    }
    let mut s = String::new();
    let mut j = i + 1;
    while let Some(&c) = cs.get(j) {
        match c {
            '\\' => {
                if let Some(&n) = cs.get(j + 1) {
                    s.push(match n {
                        'n' => '\n',
                        't' => '\t',
                        n => n,
                    });
                }
                j += 2;
            }
            c if c == q => return Some((s, j + 1)),
            c => {
                s.push(c);
                j += 1;
            }
        }
    }
    None
}

/// `"a", 'b', "c"]` from just after the `[`.
fn list(cs: &[char], mut j: usize) -> Option<(Vec<String>, usize)> {
    let mut items = Vec::new();
    loop {
        while matches!(cs.get(j), Some(' ' | ',')) {
            j += 1;
        }
        match cs.get(j)? {
            ']' => return Some((items, j + 1)),
            _ => {
                let (s, next) = literal(cs, j)?;
                items.push(s);
                j = next;
            }
        }
    }
}
