//! Inputs the fuzz targets (`fuzz/`) found crashing, replayed through the
//! same entry points: each must now end without a panic or a hang.

use std::path::Path;
use std::time::Duration;

fn inputs(prefix: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir).expect("tests/fuzz_regressions") {
        let p = e.unwrap().path();
        if p.file_name().unwrap().to_string_lossy().starts_with(prefix) {
            out.push(std::fs::read(&p).unwrap());
        }
    }
    assert!(
        !out.is_empty(),
        "no {prefix} regression inputs in {}",
        dir.display()
    );
    out
}

/// Run `f` on a thread; fail if it panics or takes more than 10 s (a hang).
fn ends(what: &str, f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(()) => {}
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("{what} did not end"),
        Err(_) => panic!("{what} panicked"),
    }
}

#[test]
fn chat_commands_found_by_fuzzing_parse_without_panicking() {
    for input in inputs("chat_command-") {
        ends("parse_text", move || {
            let _ = switchyard_commands::parse_text(&String::from_utf8_lossy(&input));
        });
    }
}

#[test]
fn inbox_items_found_by_fuzzing_render_for_both_platforms() {
    use switchyard::delivery::render;
    for input in inputs("inbox_item-") {
        ends("parse, validate and render", move || {
            let Ok(switchyard::coord::InboxItem::Event(draft)) =
                switchyard::coord::parse_item(&input)
            else {
                return;
            };
            let now = chrono::Utc::now();
            let Ok(event) = draft.validate(now, switchyard_routing::EventId::generate(now, 0))
            else {
                return;
            };
            let footer = format!(
                "{} · {} · {}",
                event.category, event.source, event.event_type
            );
            let _ = render::discord_embed(event.severity, &event.title, &event.body, &footer);
            let _ = render::telegram_parts(event.severity, &event.title, &event.body, &footer);
        });
    }
}
