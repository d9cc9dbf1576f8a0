//! What a task step would run: `switchyard_policy::analyze_script` on the
//! bytes as a script, and `analyze_argv` on them split into an argv at NUL
//! bytes (a step's `args` can hold anything a JSON string can).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let a = switchyard_policy::analyze_script(text);
    let _ = a.git_push();
    let _ = a.force();
    let _ = a.not_understood();
    let _ = a.dangerous().count();
    let argv: Vec<String> = text.split('\0').map(str::to_string).collect();
    let b = switchyard_policy::analyze_argv(&argv);
    let _ = b.dangerous().count();
    let _ = b.not_understood();
});
