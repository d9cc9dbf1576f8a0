//! Destinations: where a routed message goes, written `platform:alias`
//! (`discord:alerts`, `telegram:operator`). The alias is resolved to a channel
//! or chat id by configuration, never here.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The chat platforms switchyard delivers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    Discord,
    Telegram,
}

impl Platform {
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Discord => "discord",
            Platform::Telegram => "telegram",
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A platform plus the configured alias of a channel (Discord) or chat (Telegram).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Destination {
    pub platform: Platform,
    pub alias: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DestinationError {
    #[error(
        "destination {0:?} is not `platform:alias` (for example `discord:alerts` or `telegram:operator`)"
    )]
    Shape(String),
    #[error("destination {0:?} names an unknown platform: use `discord:` or `telegram:`")]
    Platform(String),
    #[error(
        "destination {0:?} has an invalid alias: use letters, digits, `-` and `_` (at most 64)"
    )]
    Alias(String),
}

impl Destination {
    pub fn new(platform: Platform, alias: impl Into<String>) -> Self {
        Destination {
            platform,
            alias: alias.into(),
        }
    }
    pub fn discord(alias: impl Into<String>) -> Self {
        Self::new(Platform::Discord, alias)
    }
    pub fn telegram(alias: impl Into<String>) -> Self {
        Self::new(Platform::Telegram, alias)
    }
}

/// An alias is a config key: short, and safe to put in logs, file names and metrics labels.
pub fn valid_alias(alias: &str) -> bool {
    !alias.is_empty()
        && alias.len() <= 64
        && alias
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl FromStr for Destination {
    type Err = DestinationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (platform, alias) = s
            .split_once(':')
            .ok_or_else(|| DestinationError::Shape(s.into()))?;
        let platform = match platform {
            "discord" => Platform::Discord,
            "telegram" => Platform::Telegram,
            _ => return Err(DestinationError::Platform(s.into())),
        };
        if !valid_alias(alias) {
            return Err(DestinationError::Alias(s.into()));
        }
        Ok(Destination::new(platform, alias))
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.platform, self.alias)
    }
}

impl Serialize for Destination {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Destination {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        for (text, ok) in [
            ("discord:alerts", true),
            ("telegram:operator", true),
            ("discord:sub-agent-results", true),
            ("discord", false),
            ("slack:x", false),
            ("discord:", false),
            ("discord:a b", false),
            ("discord:../x", false),
        ] {
            let parsed = text.parse::<Destination>();
            assert_eq!(parsed.is_ok(), ok, "{text}");
            if let Ok(d) = parsed {
                assert_eq!(d.to_string(), text);
            }
        }
    }
}
