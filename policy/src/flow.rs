//! What a command writes on its standard output (the `Flow` of `value`), as
//! far as a reader without a file system or a network can tell. A shell that reads its script from
//! a pipe, a process substitution or `$( )` runs exactly this, so whether it
//! is a literal (echo/printf of literals, evaluated here), a download, or a
//! decoded payload is decided here, as is the text of a decodable payload.

use std::collections::HashMap;

use crate::argv::program_name;
use crate::danger;
use crate::echo::{echo, printf};
use crate::target::{Cwd, absolute, classify, file_key};
use crate::value::{Arg, Flow, Origin};

const DOWNLOADERS: &[&str] = &[
    "curl", "wget", "fetch", "http", "https", "xh", "xhs", "nc", "ncat", "netcat", "socat", "lynx",
    "links", "w3m", "aria2c",
];

const UNPACKERS: &[&str] = &[
    "uudecode", "gunzip", "zcat", "gzcat", "bunzip2", "bzcat", "unxz", "xzcat", "unlzma", "lzcat",
    "unzstd", "zstdcat", "lz4cat", "unlz4",
];

const COMPRESSORS: &[&str] = &[
    "gzip", "bzip2", "xz", "lzma", "zstd", "lz4", "brotli", "pigz",
];

/// Rewriters: harmless on data, but on a literal piped into a shell they
/// are how payloads are disguised (`echo '/ fr- mr' | rev | sh`).
const REWRITERS: &[&str] = &["rev", "tr", "sed", "awk", "gawk", "mawk", "perl", "iconv"];

/// Commands that pass stdin through unchanged.
const PASSTHROUGH: &[&str] = &["tee", "pv", "buffer", "mbuffer", "stdbuf"];

/// Filters that keep some of stdin.
const FILTERS: &[&str] = &[
    "head", "tail", "sort", "uniq", "grep", "egrep", "fgrep", "cut", "tac", "fold", "dd",
];

fn known(args: &[Arg]) -> Option<Vec<String>> {
    args.iter().map(|a| a.value.clone()).collect()
}

/// The worst thing substituted into any argument, for echo "$(curl …)".
fn tainted(args: &[Arg]) -> Option<Flow> {
    args.iter()
        .filter_map(|a| a.origin.as_ref().and_then(Origin::flow))
        .filter(|f| matches!(f, Flow::Download | Flow::Decoded(_)))
        .max_by_key(|f| matches!(f, Flow::Download))
        .cloned()
}

fn operands(args: &[Arg]) -> Vec<&Arg> {
    args.iter()
        .filter(|a| {
            !a.value
                .as_deref()
                .is_some_and(|v| v.starts_with('-') && v.len() > 1)
        })
        .collect()
}

fn short(args: &[Arg], c: char) -> bool {
    args.iter().any(|a| {
        a.value
            .as_deref()
            .is_some_and(|v| v.starts_with('-') && !v.starts_with("--") && v[1..].contains(c))
    })
}

fn long(args: &[Arg], names: &[&str]) -> bool {
    args.iter().any(|a| {
        a.value
            .as_deref()
            .and_then(|v| v.strip_prefix("--"))
            .is_some_and(|l| {
                let l = l.split('=').next().unwrap_or(l);
                l.len() >= 3 && names.iter().any(|n| n.starts_with(l))
            })
    })
}

pub(crate) fn is_downloader(name: &str) -> bool {
    DOWNLOADERS.contains(&name)
}

fn is_decoder(name: &str, args: &[Arg]) -> bool {
    match name {
        "base64" | "base32" | "basenc" => {
            short(args, 'd') || short(args, 'D') || long(args, &["decode"])
        }
        "xxd" => short(args, 'r') || long(args, &["revert"]),
        "openssl" => args.iter().any(|a| {
            matches!(
                a.value.as_deref(),
                Some("-d" | "-decrypt" | "-decode" | "-a" | "-base64")
            )
        }),
        "gpg" | "gpg2" => short(args, 'd') || long(args, &["decrypt"]),
        n if UNPACKERS.contains(&n) => true,
        n if COMPRESSORS.contains(&n) => {
            short(args, 'd') || long(args, &["decompress", "uncompress"])
        }
        _ => false,
    }
}

/// Where a downloader saves: Some(path) for `-o path`; None when it writes
/// to stdout or picks a name itself.
pub(crate) fn saved_file(name: &str, args: &[Arg]) -> Option<String> {
    match save_target(name, args) {
        Save::File(f) => Some(f),
        _ => None,
    }
}

enum Save {
    Stdout,
    File(String),
    Unnamed,
}

fn save_target(name: &str, args: &[Arg]) -> Save {
    let (flag, long_name, with_arg) = match name {
        "curl" => ('o', "--output", "AbcCdDeEFHKmPQrtTuUwxXyYz"),
        "wget" => ('O', "--output-document", "oaePDtTwQiUBIXAR"),
        _ => return Save::Stdout,
    };
    let mut out = if name == "wget" {
        Save::Unnamed
    } else {
        Save::Stdout
    };
    let mut i = 0;
    while i < args.len() {
        let Some(v) = args[i].value.as_deref() else {
            i += 1;
            continue;
        };
        let mut target: Option<Option<String>> = None;
        if let Some(rest) = v.strip_prefix(long_name) {
            target = Some(match rest.strip_prefix('=') {
                Some(f) => Some(f.to_string()),
                None => args.get(i + 1).and_then(|a| a.value.clone()),
            });
        } else if name == "curl" && matches!(v, "--remote-name" | "--remote-name-all") {
            out = Save::Unnamed;
        } else if v.starts_with('-') && !v.starts_with("--") {
            for (k, c) in v.char_indices().skip(1) {
                if c == flag {
                    let attached = &v[k + 1..];
                    target = Some(if attached.is_empty() {
                        args.get(i + 1).and_then(|a| a.value.clone())
                    } else {
                        Some(attached.to_string())
                    });
                    break;
                }
                if name == "curl" && c == 'O' {
                    out = Save::Unnamed;
                }
                if with_arg.contains(c) {
                    break;
                }
            }
        }
        if let Some(t) = target {
            out = match t {
                Some(f) if f == "-" => Save::Stdout,
                Some(f) => Save::File(f),
                None => Save::Unnamed,
            };
        }
        i += 1;
    }
    out
}

/// stdout of `name args` given what its stdin carries.
/// `saved` is what the script wrote into files (downloads, decoded
/// payloads), by `target::file_key`.
pub(crate) fn output(
    name: &str,
    args: &[Arg],
    stdin: &Flow,
    cwd: &Cwd,
    saved: &HashMap<String, Flow>,
) -> Flow {
    if matches!(name, "echo" | "printf")
        && let Some(t) = tainted(args)
    {
        return t;
    }
    match name {
        "echo" => known(args).map_or(Flow::Unknown, |v| Flow::Literal(echo(&v))),
        "printf" => known(args)
            .and_then(|v| printf(&v))
            .map_or(Flow::Unknown, Flow::Literal),
        "true" | ":" | "false" => Flow::Empty,
        "pwd" => match cwd {
            Cwd::Known(p) => Flow::Literal(format!("{p}\n")),
            Cwd::Unknown => Flow::Unknown,
        },
        "which" => known(&operands(args).into_iter().cloned().collect::<Vec<_>>())
            .map_or(Flow::Unknown, |v| {
                Flow::Literal(v.iter().map(|n| format!("{n}\n")).collect())
            }),
        "dirname" | "basename" | "realpath" => paths(name, args, cwd),
        "readlink" if short(args, 'f') || short(args, 'm') || short(args, 'e') => {
            paths("realpath", args, cwd)
        }
        "cat" => {
            let files = operands(args);
            match files.as_slice() {
                [] => stdin.clone(),
                [f] if f.value.as_deref() == Some("-") => stdin.clone(),
                [f] => f
                    .origin
                    .as_ref()
                    .and_then(Origin::flow)
                    .or_else(|| saved.get(&file_key(f.value.as_deref()?, cwd)))
                    .cloned()
                    .unwrap_or(Flow::Unknown),
                _ => Flow::Unknown,
            }
        }
        n if PASSTHROUGH.contains(&n) => stdin.clone(),
        n if FILTERS.contains(&n) => stdin.taint(),
        n if is_decoder(n, args) => {
            let text = match stdin {
                Flow::Literal(s) if operands(args).is_empty() => decode(n, args, s),
                _ => None,
            };
            Flow::Decoded(text)
        }
        n if REWRITERS.contains(&n) => match stdin {
            Flow::Literal(s) if n == "rev" => Flow::Decoded(Some(
                s.lines()
                    .map(|l| l.chars().rev().collect::<String>() + "\n")
                    .collect(),
            )),
            Flow::Literal(_) => Flow::Decoded(None),
            other => other.taint(),
        },
        n if is_downloader(n) => match save_target(n, args) {
            Save::Stdout => Flow::Download,
            Save::Unnamed if n == "wget" => Flow::Download,
            _ => Flow::Empty,
        },
        // `ls -d /*` lists the root as surely as find does.
        "ls" if operands(args).iter().any(|p| {
            p.value
                .as_deref()
                .is_some_and(|v| classify(v, cwd).is_system_wide())
        }) =>
        {
            Flow::FindRoot
        }
        "find" => {
            let (paths, expr) = danger::find_split(args);
            let root = paths.iter().any(|p| {
                p.value
                    .as_deref()
                    .is_some_and(|v| classify(v, cwd).is_system_wide())
            });
            if root && !danger::find_deletes(expr) {
                Flow::FindRoot
            } else {
                Flow::Unknown
            }
        }
        _ => Flow::Unknown,
    }
}

/// dirname, basename and realpath of literal paths, lexically (realpath
/// does not see symlinks here; what it prints is still where rm would go).
fn paths(name: &str, args: &[Arg], cwd: &Cwd) -> Flow {
    let ops: Option<Vec<String>> = operands(args).iter().map(|a| a.value.clone()).collect();
    let Some(ops) = ops.filter(|o| !o.is_empty()) else {
        return Flow::Unknown;
    };
    let one = |p: &str| -> Option<String> {
        let trimmed = p.trim_end_matches('/');
        match name {
            "dirname" if trimmed.is_empty() && p.starts_with('/') => Some("/".into()),
            "dirname" => Some(match trimmed.rfind('/') {
                Some(0) => "/".into(),
                Some(k) => trimmed[..k].trim_end_matches('/').to_string(),
                None => ".".into(),
            }),
            "basename" => Some(trimmed.rsplit('/').next().unwrap_or("/").to_string()),
            _ => absolute(p, cwd),
        }
    };
    // basename's second operand is a suffix, not a path.
    let ops = if name == "basename" {
        &ops[..1]
    } else {
        &ops[..]
    };
    let out: Option<String> = ops.iter().map(|p| one(p).map(|o| o + "\n")).collect();
    out.map_or(Flow::Unknown, Flow::Literal)
}

/// stdout of a command that runs nothing but answers a lookup:
/// `command -v rm`, `type -P rm`.
pub(crate) fn lookup(args: &[Arg]) -> Flow {
    let words: Option<Vec<String>> = known(args);
    let Some(w) = words else { return Flow::Unknown };
    let name = w.first().map(|n| program_name(n));
    match name.as_deref() {
        Some("command" | "type") if w.len() >= 3 && w[1].starts_with('-') => {
            Flow::Literal(format!("{}\n", w[2]))
        }
        _ => Flow::Empty,
    }
}

fn decode(name: &str, args: &[Arg], s: &str) -> Option<String> {
    let bytes = match name {
        "base64" => base64(s)?,
        "xxd" if short(args, 'p') => hex(s)?,
        _ => return None,
    };
    String::from_utf8(bytes).ok()
}

fn base64(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.chars() {
        let v = match c {
            'A'..='Z' => c as u32 - 'A' as u32,
            'a'..='z' => c as u32 - 'a' as u32 + 26,
            '0'..='9' => c as u32 - '0' as u32 + 52,
            '+' | '-' => 62,
            '/' | '_' => 63,
            '=' => break,
            c if c.is_whitespace() => continue,
            _ => return None,
        };
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

fn hex(s: &str) -> Option<Vec<u8>> {
    let digits: Vec<u32> = s
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_digit(16))
        .collect::<Option<_>>()?;
    Some(
        digits
            .chunks(2)
            .filter(|c| c.len() == 2)
            .map(|c| (c[0] * 16 + c[1]) as u8)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes() {
        assert_eq!(base64("cm0gLXJmIC8=").as_deref(), Some(&b"rm -rf /"[..]));
        assert_eq!(hex("726d").as_deref(), Some(&b"rm"[..]));
    }
}
