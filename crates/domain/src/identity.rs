//! Complainant identity keys (interpretation 2): the same person counts once however often
//! they complain, and projections hold only a keyed hash of who they are.
//!
//! The normalised identity is the ID number if given, else a mainland mobile number, else
//! the name with the contact. It is hashed with HMAC-SHA-256 under a deployment secret, so
//! the key cannot be reversed by hashing candidate phone numbers without that secret.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The deployment secret that keys complainant hashes. Kept out of the log and the read
/// models; changing it changes every key, so it is set once per deployment.
#[derive(Clone)]
pub struct IdentitySecret(Vec<u8>);

impl IdentitySecret {
    /// Wraps secret bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> IdentitySecret {
        IdentitySecret(bytes.into())
    }
}

impl fmt::Debug for IdentitySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IdentitySecret(..)")
    }
}

/// A complainant's keyed identity hash, as lower-case hex.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ComplainantKey(String);

impl ComplainantKey {
    /// The key as hex text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key for a named complainant, from the details given at registration.
    pub fn derive(secret: &IdentitySecret, name: &str, contact: &str, id_number: Option<&str>) -> ComplainantKey {
        let identity = normalised_identity(name, contact, id_number);
        // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&secret.0).expect("hmac takes keys of any length");
        mac.update(identity.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut hex = String::with_capacity(64);
        for byte in digest.iter() {
            hex.push_str(&format!("{byte:02x}"));
        }
        ComplainantKey(hex)
    }
}

impl fmt::Display for ComplainantKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The normalised identity of interpretation 2, before hashing.
fn normalised_identity(name: &str, contact: &str, id_number: Option<&str>) -> String {
    if let Some(id_number) = id_number {
        let id: String = id_number.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_uppercase();
        if !id.is_empty() {
            return format!("id:{id}");
        }
    }
    if let Some(mobile) = mainland_mobile(contact) {
        return format!("mobile:{mobile}");
    }
    let name: String = name.chars().filter(|c| !c.is_whitespace()).collect();
    let contact: String = contact.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_lowercase();
    format!("name-contact:{name}|{contact}")
}

/// The 11 digits of a mainland mobile number written in any of the usual ways
/// (`138 1234 5678`, `+86-13812345678`, `8613812345678`), or `None`.
fn mainland_mobile(contact: &str) -> Option<String> {
    let allowed = |c: char| c.is_ascii_digit() || matches!(c, ' ' | '-' | '+' | '(' | ')');
    if !contact.chars().all(allowed) {
        return None;
    }
    let digits: String = contact.chars().filter(char::is_ascii_digit).collect();
    let national = match digits.len() {
        11 => digits.as_str(),
        13 if digits.starts_with("86") => &digits[2..],
        _ => return None,
    };
    national.starts_with('1').then(|| national.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> IdentitySecret {
        IdentitySecret::new(b"test-secret".to_vec())
    }

    #[test]
    fn reg_4_the_same_mobile_written_differently_is_one_complainant() {
        let a = ComplainantKey::derive(&secret(), "王芳", "138 1234 5678", None);
        let b = ComplainantKey::derive(&secret(), "王 芳", "+86-13812345678", None);
        assert_eq!(a, b);
    }

    #[test]
    fn reg_4_an_id_number_wins_over_the_contact() {
        let a = ComplainantKey::derive(&secret(), "王芳", "13812345678", Some("11010519491231002x"));
        let b = ComplainantKey::derive(&secret(), "王芳", "13900000000", Some("11010519491231002X"));
        assert_eq!(a, b);
    }

    #[test]
    fn different_people_and_different_secrets_give_different_keys() {
        let a = ComplainantKey::derive(&secret(), "王芳", "13812345678", None);
        let b = ComplainantKey::derive(&secret(), "李雷", "13812345679", None);
        let c = ComplainantKey::derive(&IdentitySecret::new(b"other".to_vec()), "王芳", "13812345678", None);
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.as_str().len(), 64);
    }

    #[test]
    fn a_landline_falls_back_to_name_and_contact() {
        let a = ComplainantKey::derive(&secret(), "王芳", "0591-8765 4321", None);
        let b = ComplainantKey::derive(&secret(), "王芳", "0591-87654321", None);
        let c = ComplainantKey::derive(&secret(), "李雷", "0591-87654321", None);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
