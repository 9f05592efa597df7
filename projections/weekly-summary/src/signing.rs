//! Signed weekly history anchors: what a week's anchor states, the exact bytes that are signed,
//! and the Ed25519 keys that sign and check them (`docs/storage-format.md`, "Signed weekly
//! anchors").
//!
//! The stores' hash chains and the history anchor are plain SHA-256, so whoever can write the
//! disk can recompute both over an edited log, and a read model rebuilt from it agrees. A
//! settled week's anchor signed with a key, and kept outside the data directory, cannot be
//! recomputed that way: a log altered or cut after the anchor was signed no longer reproduces
//! it, and an anchor altered to match such a log no longer verifies against the public key.
//!
//! The read model holds no key. The server signs the anchors it serves with an
//! [`AnchorSigner`] passed to the API, and `tousu audit anchors` signs those it computes from
//! the log with [`AnchorChain`], which follows the event log exactly as the read model's
//! writer does: the anchors it gives are the rows of the `anchors` table.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use thiserror::Error;
use tousu_domain::calendar::shanghai;
use tousu_domain::reporting::reporting_week;

use crate::{ANCHOR_ZERO, anchor_step};

/// The tag that opens every signed statement: it keeps these signatures apart from any other
/// use of the key, and names the layout's version.
pub const SIGNED_ANCHOR_TAG: &[u8; 30] = b"tousu.weekly-summary.anchor.v1";

/// The length of a signed statement: the tag, the week, the position, the event count and
/// the anchor.
pub const SIGNED_ANCHOR_LEN: usize = SIGNED_ANCHOR_TAG.len() + 4 + 8 + 8 + 32;

/// The length of a signature (Ed25519).
pub const SIGNATURE_LEN: usize = 64;

/// The history anchor of a week: the anchor after the last event recorded before the week's
/// end, with that event's position and the number of events it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeekAnchor {
    /// The week's Monday.
    pub week: NaiveDate,
    /// The position of the last event recorded before the week's end.
    pub position: u64,
    /// The number of events the anchor covers, from the start of the log.
    pub events: u64,
    /// `anchor_n`.
    pub anchor: [u8; 32],
}

impl WeekAnchor {
    /// The bytes a signature covers, all integers little-endian:
    ///
    /// ```text
    /// tag       30 bytes  "tousu.weekly-summary.anchor.v1"
    /// week      i32       the week's Monday, in days since 1970-01-01
    /// position  u64       the position of the last event the anchor covers
    /// events    u64       the number of events it covers
    /// anchor    32 bytes  anchor_n
    /// ```
    pub fn signed_bytes(&self) -> [u8; SIGNED_ANCHOR_LEN] {
        let mut out = [0u8; SIGNED_ANCHOR_LEN];
        let days = self.week.signed_duration_since(DateTime::UNIX_EPOCH.date_naive()).num_days();
        // Every date chrono represents is within ±2^31 days of 1970.
        let days = i32::try_from(days).expect("chrono dates fit an i32 of days");
        let mut at = 0;
        for field in [
            &SIGNED_ANCHOR_TAG[..],
            &days.to_le_bytes(),
            &self.position.to_le_bytes(),
            &self.events.to_le_bytes(),
            &self.anchor,
        ] {
            out[at..at + field.len()].copy_from_slice(field);
            at += field.len();
        }
        out
    }
}

/// The instant a week ends: the next Monday 00:00 in Shanghai.
pub fn week_end(week: NaiveDate) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(crate::writer::week_end_ms(week)).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Every week's history anchor, computed event by event over the log in position order as the
/// read model's writer computes it: an event belongs to the week it was recorded in (the
/// store's `recorded_at`, in Shanghai), or to the latest week already seen if the clock
/// stepped back, so every week's anchor covers a prefix of the log.
#[derive(Debug, Clone, Default)]
pub struct AnchorChain {
    current: Option<WeekAnchor>,
}

impl AnchorChain {
    /// A chain that has seen no event.
    pub fn new() -> Self {
        Self::default()
    }

    /// Extends the chain with the next event of the log. Returns the anchor of the week before
    /// when this event is the first one recorded in a later week: that week is then complete.
    pub fn push(&mut self, position: u64, recorded_at: DateTime<Utc>, hash: &[u8; 32]) -> Option<WeekAnchor> {
        let recorded_week = reporting_week(recorded_at.with_timezone(&shanghai()));
        let (previous, events) = self.current.map_or((ANCHOR_ZERO, 0), |current| (current.anchor, current.events));
        let week = self.current.map_or(recorded_week, |current| current.week.max(recorded_week));
        let next = WeekAnchor { week, position, events: events + 1, anchor: anchor_step(&previous, hash) };
        let closed = self.current.filter(|current| current.week < week);
        self.current = Some(next);
        closed
    }

    /// The anchor after the last event pushed, in the week that event belongs to; `None`
    /// before the first event.
    pub fn current(&self) -> Option<WeekAnchor> {
        self.current
    }
}

/// Why a public key is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PublicKeyError {
    /// The text is not 64 hexadecimal digits.
    #[error("public key {text:?} is not 64 hexadecimal digits")]
    NotHex {
        /// The text given.
        text: String,
    },
    /// The bytes are not a usable Ed25519 public key (not a point of the curve, or one of
    /// small order, which any signature would match).
    #[error("public key {hex} is not a usable ed25519 public key")]
    NotAKey {
        /// The key, in hex.
        hex: String,
    },
}

/// Why a signature does not verify.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The signature is not 64 bytes long.
    #[error("signature is {len} bytes long, not 64")]
    WrongLength {
        /// Its length.
        len: usize,
    },
    /// The signature is not the key's signature of the statement.
    #[error("signature does not verify against the public key {fingerprint}")]
    Invalid {
        /// The fingerprint of the key it was checked against.
        fingerprint: String,
    },
}

/// A public key that checks signed anchors.
#[derive(Clone, PartialEq, Eq)]
pub struct AnchorPublicKey {
    key: VerifyingKey,
}

impl AnchorPublicKey {
    /// The key of these 32 bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, PublicKeyError> {
        let not_a_key = || PublicKeyError::NotAKey { hex: tousu_store::hash::hex(bytes) };
        let key = VerifyingKey::from_bytes(bytes).map_err(|_| not_a_key())?;
        if key.is_weak() {
            return Err(not_a_key());
        }
        Ok(Self { key })
    }

    /// The key written as 64 hexadecimal digits (as [`AnchorPublicKey::hex`] writes it).
    pub fn from_hex(text: &str) -> Result<Self, PublicKeyError> {
        let bytes = unhex::<32>(text.trim()).ok_or_else(|| PublicKeyError::NotHex { text: text.to_owned() })?;
        Self::from_bytes(&bytes)
    }

    /// The key's 32 bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// The key's 32 bytes in lower-case hex.
    pub fn hex(&self) -> String {
        tousu_store::hash::hex(self.key.as_bytes())
    }

    /// The key's fingerprint: the SHA-256 of its 32 bytes, in lower-case hex.
    pub fn fingerprint(&self) -> String {
        tousu_store::hash::hex(&Sha256::digest(self.key.as_bytes()))
    }

    /// Checks that `signature` is this key's signature of `anchor`'s statement. The check is
    /// strict (RFC 8032 with the malleability checks), so a signature verifies in one form
    /// only.
    pub fn verify(&self, anchor: &WeekAnchor, signature: &[u8]) -> Result<(), SignatureError> {
        let bytes: [u8; SIGNATURE_LEN] =
            signature.try_into().map_err(|_| SignatureError::WrongLength { len: signature.len() })?;
        self.key
            .verify_strict(&anchor.signed_bytes(), &Signature::from_bytes(&bytes))
            .map_err(|_| SignatureError::Invalid { fingerprint: self.fingerprint() })
    }
}

impl fmt::Debug for AnchorPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnchorPublicKey").field("hex", &self.hex()).finish()
    }
}

/// The key that signs settled weeks' anchors. Its secret never leaves it: it prints as its
/// public key's fingerprint, and is cleared from memory when dropped.
pub struct AnchorSigner {
    key: SigningKey,
    public: AnchorPublicKey,
}

impl AnchorSigner {
    /// The signer whose Ed25519 secret key is these 32 bytes.
    pub fn from_secret(secret: &[u8; 32]) -> Self {
        let key = SigningKey::from_bytes(secret);
        let public = AnchorPublicKey { key: key.verifying_key() };
        Self { key, public }
    }

    /// The public key that checks its signatures.
    pub fn public_key(&self) -> &AnchorPublicKey {
        &self.public
    }

    /// The signature of `anchor`'s statement ([`WeekAnchor::signed_bytes`]). Ed25519 signs
    /// deterministically: the same key signs the same anchor with the same bytes.
    pub fn sign(&self, anchor: &WeekAnchor) -> [u8; SIGNATURE_LEN] {
        self.key.sign(&anchor.signed_bytes()).to_bytes()
    }
}

impl fmt::Debug for AnchorSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnchorSigner").field("fingerprint", &self.public.fingerprint()).finish_non_exhaustive()
    }
}

/// The `N` bytes written as `2 * N` hexadecimal digits (either case).
pub fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != 2 * N || !text.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return None;
    }
    let mut bytes = [0u8; N];
    for (index, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[index * 2..index * 2 + 2], 16).ok()?;
    }
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;
    use crate::anchor_over;

    fn date(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    fn anchor() -> WeekAnchor {
        WeekAnchor { week: date("2026-03-09"), position: 1234, events: 1200, anchor: [0xab; 32] }
    }

    #[test]
    fn the_signed_bytes_are_the_tag_the_week_in_days_the_position_the_count_and_the_anchor() {
        let bytes = anchor().signed_bytes();
        assert_eq!(bytes.len(), 82);
        assert_eq!(&bytes[..30], b"tousu.weekly-summary.anchor.v1");
        // 2026-03-09 is day 20521 after 1970-01-01.
        assert_eq!(&bytes[30..34], &20521i32.to_le_bytes());
        assert_eq!(&bytes[34..42], &1234u64.to_le_bytes());
        assert_eq!(&bytes[42..50], &1200u64.to_le_bytes());
        assert_eq!(&bytes[50..], &[0xab; 32]);
    }

    #[test]
    fn a_signature_verifies_with_its_key_only_and_over_its_statement_only() {
        let signer = AnchorSigner::from_secret(&[7; 32]);
        let signature = signer.sign(&anchor());
        let public = signer.public_key();
        assert_eq!(public.verify(&anchor(), &signature), Ok(()));
        assert_eq!(signature, signer.sign(&anchor()), "ed25519 signs deterministically");
        let changed = [
            WeekAnchor { week: date("2026-03-16"), ..anchor() },
            WeekAnchor { position: 1235, ..anchor() },
            WeekAnchor { events: 1199, ..anchor() },
            WeekAnchor { anchor: [0xac; 32], ..anchor() },
        ];
        for other in changed {
            assert!(matches!(public.verify(&other, &signature), Err(SignatureError::Invalid { .. })), "{other:?}");
        }
        let stranger = AnchorSigner::from_secret(&[8; 32]);
        assert!(stranger.public_key().verify(&anchor(), &signature).is_err());
        assert_eq!(public.verify(&anchor(), &signature[..63]), Err(SignatureError::WrongLength { len: 63 }));
        let mut flipped = signature;
        flipped[10] ^= 1;
        assert!(public.verify(&anchor(), &flipped).is_err());
    }

    #[test]
    fn a_public_key_reads_back_from_its_hex_and_its_fingerprint_is_the_sha_256_of_its_bytes() {
        let signer = AnchorSigner::from_secret(&[7; 32]);
        let public = signer.public_key();
        assert_eq!(AnchorPublicKey::from_hex(&public.hex()).as_ref(), Ok(public));
        assert_eq!(AnchorPublicKey::from_hex(&public.hex().to_uppercase()).as_ref(), Ok(public));
        assert_eq!(public.fingerprint(), tousu_store::hash::hex(&Sha256::digest(public.to_bytes())));
        assert!(matches!(AnchorPublicKey::from_hex("00"), Err(PublicKeyError::NotHex { .. })));
        // The identity point has small order: any signature would match it.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(matches!(AnchorPublicKey::from_bytes(&identity), Err(PublicKeyError::NotAKey { .. })));
        assert!(!format!("{signer:?}").contains(&tousu_store::hash::hex(&[7; 32])), "the secret never prints");
    }

    #[test]
    fn the_chain_closes_a_week_at_the_first_event_recorded_in_a_later_one_and_keeps_a_stepped_back_clock_in_it() {
        let hashes: Vec<[u8; 32]> = (1..=5u8).map(|n| [n; 32]).collect();
        let mut chain = AnchorChain::new();
        assert_eq!(chain.current(), None);
        // Sunday 23:59:59 and Monday 00:00:00 in Shanghai are in different weeks.
        assert_eq!(chain.push(1, at("2026-03-15T23:00:00+08:00"), &hashes[0]), None);
        assert_eq!(chain.push(2, at("2026-03-15T23:59:59+08:00"), &hashes[1]), None);
        let closed = chain.push(3, at("2026-03-16T00:00:00+08:00"), &hashes[2]).expect("the week of 9 March closes");
        assert_eq!(
            closed,
            WeekAnchor { week: date("2026-03-09"), position: 2, events: 2, anchor: anchor_over(&hashes[..2]) }
        );
        // A clock stepped back: the event stays in the latest week already seen.
        assert_eq!(chain.push(4, at("2026-03-15T12:00:00+08:00"), &hashes[3]), None);
        let current = chain.current().expect("an anchor");
        assert_eq!(
            current,
            WeekAnchor { week: date("2026-03-16"), position: 4, events: 4, anchor: anchor_over(&hashes[..4]) }
        );
        // A week without events is skipped: the next anchor is of the week recorded in.
        let closed = chain.push(9, at("2026-03-31T08:00:00+08:00"), &hashes[4]).expect("the week of 16 March closes");
        assert_eq!(closed, current);
        assert_eq!(chain.current().map(|anchor| (anchor.week, anchor.events)), Some((date("2026-03-30"), 5)));
    }

    #[test]
    fn a_week_ends_on_the_next_monday_at_midnight_in_shanghai() {
        assert_eq!(week_end(date("2026-03-09")), at("2026-03-16T00:00:00+08:00"));
        assert_eq!(week_end(date("2026-03-09")) - TimeDelta::days(7), at("2026-03-09T00:00:00+08:00"));
    }

    #[test]
    fn hex_reads_both_cases_and_refuses_any_other_length_or_digit() {
        assert_eq!(unhex::<2>("0aFf"), Some([0x0a, 0xff]));
        assert_eq!(unhex::<2>("0aF"), None);
        assert_eq!(unhex::<2>("0aFg"), None);
        assert_eq!(unhex::<2>("+a0f"), None);
        assert_eq!(unhex::<2>("ü0f"), None);
    }
}
