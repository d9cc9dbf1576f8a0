//! The fleet file (TOML). Two readings, both public:
//! - `Config::load(&ConfigSource::Text { .. })`: exactly what `--config PATH`
//!   does after reading the file (the `config` crate's TOML layer, the
//!   `SWITCHYARD__*` environment overrides, serde_ignored, `Config::from_raw`);
//! - `toml::from_str::<RawConfig>` then `Config::from_raw`, the section
//!   validators on their own (toml 0.9 rather than the `config` crate's parser).
//! Bytes that are not UTF-8 stop at the UTF-8 check, as `read_to_string` would.
#![no_main]

use std::path::{Path, PathBuf};

use libfuzzer_sys::fuzz_target;
use switchyard::config::{Config, ConfigSource, RawConfig};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let source = ConfigSource::Text {
        name: "fuzz".into(),
        text: text.to_string(),
        base_dir: PathBuf::from("/nonexistent/fuzz"),
    };
    match Config::load(&source) {
        Ok(config) => {
            let _ = config.router();
            let _ = config.fleet_id();
            for a in &config.agents {
                let _ = config.database_url(&a.name);
                let _ = config.check_tokens(a);
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    if let Ok(raw) = toml::from_str::<RawConfig>(text) {
        if let Err(e) = Config::from_raw(raw, Path::new("/nonexistent/fuzz"), "fuzz") {
            let _ = e.to_string();
        }
    }
});
