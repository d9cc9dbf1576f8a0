//! The files under `examples/` work as written: the event and the tasks
//! validate, the tasks score as their README says, the registry file
//! imports, the schedule is a valid configuration section.

use std::path::PathBuf;

use crate::common;

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

fn policy_check(name: &str) -> String {
    let out = std::process::Command::new(common::exe())
        .args(["--config"])
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/example.toml"))
        .args(["policy", "check"])
        .arg(example(name))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_examples_work_as_written() {
    let event: switchyard_routing::EventDraft =
        serde_json::from_slice(&std::fs::read(example("event.json")).unwrap()).unwrap();
    let event = event
        .validate(
            chrono::Utc::now(),
            switchyard_routing::EventId::generate(chrono::Utc::now(), 1),
        )
        .expect("the example event validates");
    assert_eq!(event.attachments.len(), 1);

    let low = policy_check("task.json");
    assert!(low.contains("runs without approval"), "{low}");
    let high = policy_check("risky-task.json");
    assert!(high.contains("needs a human approval"), "{high}");

    let text = std::fs::read_to_string(example("active-tasks.json")).unwrap();
    let tasks = switchyard::github::registry::parse(&text, &example("active-tasks.json"))
        .expect("the example registry parses");
    assert_eq!(tasks.len(), 1);

    let schedule = std::fs::read_to_string(example("schedule.toml")).unwrap();
    let config = common::fleet_toml(&["manager"], &schedule);
    let loaded = switchyard::config::Config::load(&switchyard::config::ConfigSource::Text {
        name: "example schedule".into(),
        text: config,
        base_dir: std::env::temp_dir(),
    })
    .expect("the example schedule is valid");
    assert_eq!(loaded.schedules.len(), 1);

    let soul = std::fs::read_to_string(example("SOUL.md")).unwrap();
    assert!(soul.trim().len() > 40);
}
