//! A task spec file (seed 004's shape): `TaskSpec::parse`, then for a valid
//! spec what the runner does before a container starts: the skill check
//! against the demo fleet's skills, the policy score and gate, and the
//! serialised form written to the store (parsed again).
#![no_main]

use std::path::Path;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use switchyard::config::Config;
use switchyard::tasks::{TaskSpec, gate, score};

static DEMO: LazyLock<Config> =
    LazyLock::new(|| Config::demo(Path::new("/nonexistent/fuzz")).expect("the demo config loads"));

fuzz_target!(|data: &[u8]| {
    let spec = match TaskSpec::parse(data) {
        Ok(spec) => spec,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let _ = spec.check_skills(DEMO.skills.keys().map(String::as_str));
    let report = score(&spec, &DEMO.policy, &DEMO.skills);
    let _ = report.explain();
    let _ = report.reasons();
    let _ = gate(&report, None);
    let _ = spec.args_bytes();
    for step in &spec.steps {
        let _ = step.timeout();
    }
    let again = serde_json::to_vec(&spec).expect("a TaskSpec serialises");
    let _ = TaskSpec::parse(&again);
});
