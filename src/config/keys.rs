//! The keys that sign approval decisions: a [`SigningKey`] (private, read from
//! the environment of the one agent that prompts the approvers) and the
//! [`DecisionKey`]s (public, written in `[approvals] decision_keys`) every
//! agent checks a decision with.
//!
//! The fleet secret is symmetric: every agent process holds it, so every
//! host that runs an agent could seal a decision. On a fleet across hosts a
//! worker's host is such a host. An Ed25519 signature separates checking
//! from making: the public keys may sit in every host's configuration, and
//! only the host that holds the private key can sign.
//!
//! What is signed and what is sealed is framed the same way ([`framed`]):
//! a domain, the recipient and the fields, each with its length, so no two
//! different inputs make the same bytes.

use std::fmt;
use std::str::FromStr;

use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::Serialize;

/// Where the signing key is read from unless `[approvals] signing_key_env`
/// says otherwise.
pub const DEFAULT_SIGNING_KEY_ENV: &str = "SWITCHYARD_DECISION_KEY";

const PUBLIC_PREFIX: &str = "ed25519:";

/// Why a key's text is not a key; said to the operator as it stands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error(
        "is not a public key: write `ed25519:` and 64 hex digits, as `switchyard approval keygen` prints it"
    )]
    PublicShape,
    #[error(
        "is not a signing key: it holds 64 hex digits (a 32-byte Ed25519 seed), as `switchyard approval keygen` prints it"
    )]
    PrivateShape,
}

/// The bytes a seal or a signature covers: `domain`, `recipient` and the
/// fields as JSON, each after its length.
pub fn framed(domain: &str, recipient: &str, fields: &impl Serialize) -> Vec<u8> {
    let body = serde_json::to_vec(fields).expect("signed fields serialise");
    let mut out = Vec::with_capacity(domain.len() + recipient.len() + body.len() + 24);
    for part in [domain.as_bytes(), recipient.as_bytes(), &body] {
        out.extend_from_slice(&(part.len() as u64).to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

/// A public key that decisions are checked with. Shown (and written in the
/// configuration) as `ed25519:` and 64 hex digits.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct DecisionKey([u8; 32]);

impl DecisionKey {
    /// Whether `signature` (hex) is this key's signature of `fields` for
    /// `recipient` in `domain`.
    pub fn verify(
        &self,
        domain: &str,
        recipient: &str,
        fields: &impl Serialize,
        signature: &str,
    ) -> bool {
        let Some(sig) = unhex(signature, 64) else {
            return false;
        };
        UnparsedPublicKey::new(&ED25519, &self.0)
            .verify(&framed(domain, recipient, fields), &sig)
            .is_ok()
    }
}

impl fmt::Display for DecisionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PUBLIC_PREFIX}{}", hex(&self.0))
    }
}

impl fmt::Debug for DecisionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DecisionKey({self})")
    }
}

impl FromStr for DecisionKey {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, KeyError> {
        let hex = s
            .trim()
            .strip_prefix(PUBLIC_PREFIX)
            .ok_or(KeyError::PublicShape)?;
        let bytes = unhex(hex, 32).ok_or(KeyError::PublicShape)?;
        Ok(DecisionKey(bytes.try_into().expect("32 bytes")))
    }
}

/// The private key the Telegram owner signs its decisions with. Prints as
/// `SigningKey(***)`; its public half as [`SigningKey::public`].
pub struct SigningKey {
    pair: Ed25519KeyPair,
    public: DecisionKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(***)")
    }
}

impl SigningKey {
    /// The key whose seed is `text` (64 hex digits).
    pub fn from_seed_hex(text: &str) -> Result<SigningKey, KeyError> {
        let seed = unhex(text.trim(), 32).ok_or(KeyError::PrivateShape)?;
        SigningKey::from_seed(&seed)
    }

    fn from_seed(seed: &[u8]) -> Result<SigningKey, KeyError> {
        let pair = Ed25519KeyPair::from_seed_unchecked(seed).map_err(|_| KeyError::PrivateShape)?;
        let public = DecisionKey(
            pair.public_key()
                .as_ref()
                .try_into()
                .expect("an Ed25519 public key is 32 bytes"),
        );
        Ok(SigningKey { pair, public })
    }

    /// The key in `env`: `Ok(None)` when unset or empty.
    pub fn from_env(env: &str) -> Result<Option<SigningKey>, KeyError> {
        match std::env::var(env) {
            Ok(v) if !v.trim().is_empty() => SigningKey::from_seed_hex(&v).map(Some),
            _ => Ok(None),
        }
    }

    /// A new key from the system's random source, and its seed as hex (what
    /// goes into the environment).
    pub fn generate() -> (SigningKey, String) {
        use ring::rand::{SecureRandom, SystemRandom};
        let mut seed = [0u8; 32];
        SystemRandom::new()
            .fill(&mut seed)
            .expect("the system's random source answers");
        let key = SigningKey::from_seed(&seed).expect("any 32 bytes are a seed");
        (key, hex(&seed))
    }

    pub fn public(&self) -> DecisionKey {
        self.public
    }

    /// The signature (hex) of `fields` for `recipient` in `domain`.
    pub fn sign(&self, domain: &str, recipient: &str, fields: &impl Serialize) -> String {
        hex(self.pair.sign(&framed(domain, recipient, fields)).as_ref())
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `text` as `len` bytes, or `None` unless it is exactly `2 * len` hex digits.
pub(crate) fn unhex(text: &str, len: usize) -> Option<Vec<u8>> {
    if text.len() != 2 * len || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_holds_only_for_its_fields_recipient_domain_and_key() {
        let (key, seed) = SigningKey::generate();
        let public = key.public();
        let sig = key.sign("d", "beta", &("apr_1", "approved"));
        assert!(public.verify("d", "beta", &("apr_1", "approved"), &sig));
        assert!(!public.verify("d", "beta", &("apr_1", "denied"), &sig));
        assert!(!public.verify("d", "gamma", &("apr_1", "approved"), &sig));
        assert!(!public.verify("e", "beta", &("apr_1", "approved"), &sig));
        let (other, _) = SigningKey::generate();
        assert!(
            !other
                .public()
                .verify("d", "beta", &("apr_1", "approved"), &sig)
        );
        assert!(!public.verify("d", "beta", &("apr_1", "approved"), "zz"));
        assert!(!public.verify("d", "beta", &("apr_1", "approved"), &"0".repeat(128)));
        // The seed makes the same key again: it is all the environment holds.
        let again = SigningKey::from_seed_hex(&seed).unwrap();
        assert_eq!(again.public(), public);
    }

    #[test]
    fn public_keys_read_back_as_written_and_bad_text_says_what_a_key_looks_like() {
        let (key, _) = SigningKey::generate();
        let text = key.public().to_string();
        assert!(
            text.starts_with("ed25519:") && text.len() == 8 + 64,
            "{text}"
        );
        assert_eq!(text.parse::<DecisionKey>().unwrap(), key.public());
        for bad in [
            "",
            "ed25519:",
            "ed25519:zz",
            &text[8..],
            &format!("{text}00"),
        ] {
            assert_eq!(
                bad.parse::<DecisionKey>(),
                Err(KeyError::PublicShape),
                "{bad:?}"
            );
        }
        for bad in ["", "short", &"g".repeat(64), &text] {
            assert_eq!(
                SigningKey::from_seed_hex(bad).unwrap_err(),
                KeyError::PrivateShape,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_signing_key_never_prints() {
        let (key, seed) = SigningKey::generate();
        let shown = format!("{key:?}");
        assert_eq!(shown, "SigningKey(***)");
        assert!(!shown.contains(&seed));
    }

    #[test]
    fn framing_keeps_parts_apart() {
        assert_ne!(framed("ab", "c", &1), framed("a", "bc", &1));
    }
}
