//! The fleet secret and the seals it makes: the proof that an approval item
//! crossing an inbox was written by an agent process of this fleet, for the
//! agent whose inbox it is in.
//!
//! Anything that can write to an inbox can write any JSON there, the
//! autonomous agents the approval gate exists to constrain included. So no
//! field of an item is evidence of who wrote it; a seal is. It is an
//! HMAC-SHA256 under a secret that only agent processes hold (from the
//! environment; never in the workspace, the database, a container or a log)
//! over the item's fields and its recipient, so a sealed item cannot be
//! altered, nor replayed into another agent's inbox.

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::keys::{framed, hex, unhex};
use crate::config::{MIN_FLEET_SECRET_LEN, Secret};

/// The secret every agent of a fleet shares. Prints as `FleetSecret(***)`.
#[derive(Clone)]
pub struct FleetSecret(Secret);

impl std::fmt::Debug for FleetSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FleetSecret(***)")
    }
}

impl FleetSecret {
    /// `None` when shorter than [`MIN_FLEET_SECRET_LEN`] bytes: the
    /// configuration check says so to the operator.
    pub fn new(value: impl Into<String>) -> Option<FleetSecret> {
        let value = value.into();
        (value.trim().len() >= MIN_FLEET_SECRET_LEN).then(|| FleetSecret(Secret::new(value.trim())))
    }

    /// Read it from `env`; `None` when unset or too short.
    pub fn from_env(env: &str) -> Option<FleetSecret> {
        FleetSecret::new(std::env::var(env).ok()?)
    }

    fn mac(&self, domain: &str, recipient: &str, fields: &impl Serialize) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.0.expose().as_bytes())
            .expect("HMAC takes a key of any length");
        mac.update(&framed(domain, recipient, fields));
        mac
    }

    /// The seal of `fields`, for `recipient`, hex.
    pub fn seal(&self, domain: &str, recipient: &str, fields: &impl Serialize) -> String {
        hex(&self.mac(domain, recipient, fields).finalize().into_bytes())
    }

    /// Whether `seal` is this secret's seal of `fields` for `recipient`
    /// (compared in constant time).
    pub fn verify(
        &self,
        domain: &str,
        recipient: &str,
        fields: &impl Serialize,
        seal: &str,
    ) -> bool {
        let Some(bytes) = unhex(seal, 32) else {
            return false;
        };
        self.mac(domain, recipient, fields)
            .verify_slice(&bytes)
            .is_ok()
    }
}

/// SHA-256 of `fields` as JSON, hex: what a decision says it is about.
pub fn digest(fields: &impl Serialize) -> String {
    let body = serde_json::to_vec(fields).expect("digested fields serialise");
    hex(&Sha256::digest(&body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(c: char) -> FleetSecret {
        FleetSecret::new(c.to_string().repeat(40)).unwrap()
    }

    #[test]
    fn a_seal_verifies_only_for_its_fields_recipient_domain_and_secret() {
        let s = secret('a');
        let seal = s.seal("d", "beta", &("apr_1", "approved"));
        assert!(s.verify("d", "beta", &("apr_1", "approved"), &seal));
        assert!(!s.verify("d", "beta", &("apr_1", "denied"), &seal));
        assert!(!s.verify("d", "gamma", &("apr_1", "approved"), &seal));
        assert!(!s.verify("e", "beta", &("apr_1", "approved"), &seal));
        assert!(!secret('b').verify("d", "beta", &("apr_1", "approved"), &seal));
        assert!(!s.verify("d", "beta", &("apr_1", "approved"), "zz"));
        assert!(!s.verify("d", "beta", &("apr_1", "approved"), &"0".repeat(64)));
    }

    #[test]
    fn a_short_or_missing_secret_is_refused_and_never_printed() {
        assert!(FleetSecret::new("short").is_none());
        assert!(FleetSecret::from_env("SWITCHYARD_TEST_NO_SUCH_SECRET_VAR").is_none());
        let s = secret('x');
        assert_eq!(format!("{s:?}"), "FleetSecret(***)");
    }
}
