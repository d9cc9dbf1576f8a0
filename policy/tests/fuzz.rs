//! Robustness: pseudo-random and pathological input never panics, never
//! overflows a 2 MiB stack (what tokio worker threads get) and always ends.

use std::time::{Duration, Instant};

use switchyard_policy::{analyze_argv, analyze_script};

/// xorshift64: a tiny reproducible generator, no dependencies.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Shell-ish fragments, so random strings reach deep into the grammar.
const PIECES: &[&str] = &[
    "rm",
    " -rf ",
    "/",
    "*",
    "~",
    "$(",
    ")",
    "`",
    "'",
    "\"",
    "\\",
    "${",
    "}",
    "{",
    "(",
    "|",
    "&",
    ";",
    "&&",
    "||",
    "\n",
    "<<",
    "EOF\n",
    "<<-",
    "<<<",
    "<(",
    ">(",
    ">",
    "<",
    "2>&1",
    "$'\\x72'",
    "sh -c ",
    "bash -lc ",
    "eval ",
    "f(){ f|f& };f",
    "git push -f origin main",
    "curl x | sh",
    "base64 -d",
    "echo ",
    "printf '%s\\n' ",
    "xargs ",
    "find / -delete",
    "cd / ",
    "if ",
    "then ",
    "fi",
    "while true; do ",
    "done",
    "for x in a b; do ",
    "case $x in a) ",
    ";;",
    "esac",
    "$x",
    "$1",
    "\"$@\"",
    "x=/ ",
    "alias a=",
    "function ",
    "[[ ",
    " ]]",
    "((",
    "))",
    "$((1+",
    "#",
    " ",
    "\t",
    "{a,b}",
    "sudo ",
    "env -S ",
    "python -c ",
    "system(",
    "${x:-/}",
    "${#x}",
    "$[",
    "]",
    "xxd -r -p",
    "| sh",
    "source <(",
    "trap ",
    "exec ",
    "\0",
    "é",
    "\r\n",
];

fn random_script(r: &mut Rng) -> String {
    match r.below(3) {
        0 => {
            let bytes: Vec<u8> = (0..r.below(200)).map(|_| r.next() as u8).collect();
            String::from_utf8_lossy(&bytes).into_owned()
        }
        1 => (0..r.below(200))
            .map(|_| (b' ' + r.below(95) as u8) as char)
            .collect(),
        _ => (0..r.below(40))
            .map(|_| PIECES[r.below(PIECES.len())])
            .collect(),
    }
}

fn random_argv(r: &mut Rng) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    match r.below(4) {
        0 => v.extend(["sh".into(), "-c".into()]),
        1 => v.push(["sudo", "env", "xargs", "git", "find", "rm", "busybox"][r.below(7)].into()),
        _ => {}
    }
    for _ in 0..r.below(8) {
        v.push(random_script(r));
    }
    v
}

/// Inputs built to be expensive: deep, wide, exponential or huge.
fn pathological() -> Vec<String> {
    let mut v = vec![
        "$(".repeat(5000),
        "(".repeat(5000) + &")".repeat(5000),
        "{ ".repeat(3000),
        "if a; then ".repeat(200) + &"fi\n".repeat(200),
        "`".repeat(3001),
        "\"$(".repeat(2000),
        "${".repeat(3000),
        "{a,b}".repeat(2000),
        "a|".repeat(20_000) + "a",
        "cat <<EOF\n".repeat(1000),
        "x".repeat(70 * 1024),
        "a".repeat(60_000),
        "f(){ f; }; f".into(),
        "f(){ f|f& };f".into(),
        "alias a=b; alias b=a; a".into(),
        "alias a='a a'; a".into(),
        "x=ab; ".to_string() + &"x=$x$x; ".repeat(40) + "rm -rf $x",
        "printf '%4096s%4096s%4096s' a b c | sh".into(),
        "for i in 1 2 3 4 5 6 7 8; do ".repeat(12) + "rm -rf /" + &"; done".repeat(12),
        "eval \"$(".repeat(30) + "echo /" + &")\"".repeat(30),
        "(((((((((((((((((((( x ))))))))))))))))))))".into(),
        "$((".repeat(1000),
        "<<".repeat(5000),
        "echo $'".to_string() + &"\\".repeat(5000),
    ];
    // Functions calling the next twice: 2^30 calls if followed naively.
    let mut chain = String::new();
    for i in 0..30 {
        chain.push_str(&format!("f{i}() {{ f{} a; f{} b; }}\n", i + 1, i + 1));
    }
    chain.push_str("f30() { rm -rf \"$1\"; }\nf0 /\n");
    v.push(chain);
    // sh -c nested by quoting (the text grows 4x per level, so only a few)
    // and without end by replicating itself through $0.
    v.push(nested_sh(6));
    v.push(SELF_REPLICATING.into());
    // Many small commands: the work budget must hold.
    v.push("echo $(echo $(echo $(echo x)));\n".repeat(2000));
    v
}

/// Runs itself again through `sh -c "$0"` for ever.
const SELF_REPLICATING: &str = r#"sh -c 'sh -c "$0" "$0"' 'sh -c "$0" "$0"'"#;

fn nested_sh(levels: usize) -> String {
    let mut s = "rm -rf /".to_string();
    for _ in 0..levels {
        s = format!("sh -c '{}'", s.replace('\'', "'\\''"));
    }
    s
}

fn on_small_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(f)
        .expect("spawn")
        .join()
        .expect("analysis panicked or overflowed its stack");
}

#[test]
fn random_input_never_panics_and_ends() {
    on_small_stack(|| {
        let mut r = Rng(0x9E37_79B9_7F4A_7C15);
        let start = Instant::now();
        let mut slowest = Duration::ZERO;
        for _ in 0..10_000 {
            let s = random_script(&mut r);
            let t = Instant::now();
            let a = analyze_script(&s);
            assert!(a.findings.len() <= 256);
            for f in &a.findings {
                assert!(f.command.chars().count() <= 120);
            }
            let argv = random_argv(&mut r);
            analyze_argv(&argv);
            slowest = slowest.max(t.elapsed());
        }
        eprintln!(
            "10000 random inputs in {:?}, slowest {:?}",
            start.elapsed(),
            slowest
        );
        assert!(start.elapsed() < Duration::from_secs(120));
    });
}

#[test]
fn pathological_input_is_bounded() {
    on_small_stack(|| {
        for s in pathological() {
            let t = Instant::now();
            let a = analyze_script(&s);
            let b = analyze_argv(&["sh".to_string(), "-c".to_string(), s.clone()]);
            let took = t.elapsed();
            let head: String = s.chars().take(40).collect();
            eprintln!(
                "{took:>12?} {:>3} findings  {head:?}",
                a.findings.len() + b.findings.len()
            );
            assert!(took < Duration::from_secs(20), "{head:?} took {took:?}");
        }
    });
}

#[test]
fn pathological_results_err_towards_asking() {
    on_small_stack(|| {
        // Followed through six levels of quoting.
        assert!(analyze_script(&nested_sh(6)).dangerous().next().is_some());
        // Too deep to follow: said so, not silently passed.
        let a = analyze_script(SELF_REPLICATING);
        assert!(
            a.not_understood()
                .is_some_and(|w| w.contains("nesting too deep"))
        );
        // The exponential chain still finds the rm at the bottom, or says
        // it gave up.
        let mut chain = String::new();
        for i in 0..30 {
            chain.push_str(&format!(
                "f{i}() {{ f{} \"$1\"; f{} \"$1\"; }}\n",
                i + 1,
                i + 1
            ));
        }
        chain.push_str("f30() { rm -rf \"$1\"; }\nf0 /\n");
        let a = analyze_script(&chain);
        assert!(a.dangerous().next().is_some() || a.not_understood().is_some());
        let a = analyze_script(&("x".repeat(70 * 1024)));
        assert!(a.not_understood().is_some_and(|w| w.contains("64 KiB")));
    });
}

#[test]
fn deepest_walk_fits_half_the_stack() {
    // Substitutions and compound commands nested as deep as the limits
    // allow, each level through the largest frames (a simple command with
    // redirections, wrappers and a shell). Debug frames are the biggest.
    let mut s = "rm -rf /".to_string();
    for _ in 0..20 {
        s = format!(
            "sudo env X=1 sh -c \"$( {{ if true; then while true; do echo \"$({s})\" > /dev/null; done; fi; }} )\""
        );
    }
    let deep_groups = format!("{}rm -rf /{}", "{ ".repeat(31), "; }".repeat(31));
    std::thread::Builder::new()
        .stack_size(1024 * 1024)
        .spawn(move || {
            let a = analyze_script(&s);
            assert!(
                a.not_understood()
                    .is_some_and(|w| w.contains("nesting too deep"))
            );
            assert!(analyze_script(&deep_groups).dangerous().next().is_some());
        })
        .expect("spawn")
        .join()
        .expect("overflowed a 1 MiB stack");
}
