//! Typed identifiers of the procedure: bodies, leads, companies, places and people.
//!
//! Every identifier is validated when it is made, so a value of one of these types is known
//! to be well formed wherever it travels.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::limits::Echo;

/// A responsible body (承办主体) of sections 二(一)–二(十二).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum BodyCode {
    /// 住建部门: housing and construction, the registrar and coordinator.
    ZJ,
    /// 发展改革部门: development and reform.
    FG,
    /// 市场监督管理部门: market regulation.
    SJ,
    /// 消防救援部门: fire and rescue.
    XF,
    /// 自然资源部门: natural resources.
    ZR,
    /// 公安部门: public security.
    GA,
    /// 能源部门: energy.
    NY,
    /// 卫体部门: health and sports.
    WT,
    /// 行政审批服务管理部门: administrative approval, runs the 12345 hotline.
    XZ,
    /// 城市管理综合执法部门: urban-management law enforcement.
    ZF,
    /// 街办（乡镇）: street office or township.
    JB,
    /// 社区: community.
    SQ,
}

impl BodyCode {
    /// All twelve bodies in the order of the procedure's sections.
    pub const ALL: [BodyCode; 12] = [
        BodyCode::ZJ,
        BodyCode::FG,
        BodyCode::SJ,
        BodyCode::XF,
        BodyCode::ZR,
        BodyCode::GA,
        BodyCode::NY,
        BodyCode::WT,
        BodyCode::XZ,
        BodyCode::ZF,
        BodyCode::JB,
        BodyCode::SQ,
    ];

    /// The two-letter code used in category codes and in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            BodyCode::ZJ => "ZJ",
            BodyCode::FG => "FG",
            BodyCode::SJ => "SJ",
            BodyCode::XF => "XF",
            BodyCode::ZR => "ZR",
            BodyCode::GA => "GA",
            BodyCode::NY => "NY",
            BodyCode::WT => "WT",
            BodyCode::XZ => "XZ",
            BodyCode::ZF => "ZF",
            BodyCode::JB => "JB",
            BodyCode::SQ => "SQ",
        }
    }
}

impl fmt::Display for BodyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BodyCode {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        BodyCode::ALL.into_iter().find(|body| body.as_str() == s).ok_or_else(|| IdError::UnknownBody(s.to_owned()))
    }
}

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// The body code is not one of the twelve.
    #[error("unknown body code {}: expected one of ZJ FG SJ XF ZR GA NY WT XZ ZF JB SQ", Echo(.0))]
    UnknownBody(String),
    /// A lead identifier must be 1 to 64 ASCII letters, digits or hyphens.
    #[error("invalid lead id {}: expected 1 to 64 ASCII letters, digits or '-'", Echo(.0))]
    InvalidComplaintId(String),
    /// A unified social credit code must be 18 characters of its alphabet.
    #[error(
        "invalid unified social credit code {}: expected 18 characters of 0-9 and A-Z without I, O, S, V, Z",
        Echo(.0)
    )]
    MalformedUscc(String),
    /// The check character of a unified social credit code does not match (GB 32100-2015).
    #[error("unified social credit code {code:?} fails its check character: expected {expected}")]
    UsccCheckFailed {
        /// The code as given.
        code: String,
        /// The check character the first 17 characters call for.
        expected: char,
    },
}

/// The identifier of a lead (线索): one complaint, or one of the linked leads a complaint
/// was split into (interpretation 15). Its stream is `complaint-<id>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ComplaintId(String);

impl ComplaintId {
    /// The identifier as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name of the lead's event stream.
    pub fn stream_name(&self) -> String {
        format!("complaint-{}", self.0)
    }

    /// An identifier that orders before every well-formed one (it is empty, which no parsed
    /// identifier is), to bound ranges of keys that pair an instant with a lead.
    pub(crate) fn least() -> ComplaintId {
        ComplaintId(String::new())
    }
}

impl FromStr for ComplaintId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let well_formed = (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if well_formed { Ok(ComplaintId(s.to_owned())) } else { Err(IdError::InvalidComplaintId(s.to_owned())) }
    }
}

impl TryFrom<String> for ComplaintId {
    type Error = IdError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<ComplaintId> for String {
    fn from(id: ComplaintId) -> String {
        id.0
    }
}

impl fmt::Display for ComplaintId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A unified social credit code (统一社会信用代码, GB 32100-2015) naming a property-management
/// company. Its stream is `enterprise-<uscc>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Uscc(String);

/// The 31 characters of the code's alphabet, in value order (GB 32100-2015 table).
const USCC_ALPHABET: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";

impl Uscc {
    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name of the company's event stream.
    pub fn stream_name(&self) -> String {
        format!("enterprise-{}", self.0)
    }

    /// The check character that the first 17 characters of a code call for.
    fn check_character(first_17: &[u8]) -> char {
        // Weights are 3^i mod 31 for positions 1 to 17, as the standard tabulates them.
        let mut weight: u32 = 1;
        let mut sum: u32 = 0;
        for &byte in first_17 {
            let value = USCC_ALPHABET.bytes().position(|c| c == byte).unwrap_or(0) as u32;
            sum += value * weight;
            weight = weight * 3 % 31;
        }
        let check = (31 - sum % 31) % 31;
        char::from(USCC_ALPHABET.as_bytes()[check as usize])
    }
}

impl FromStr for Uscc {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let code = s.trim().to_ascii_uppercase();
        let bytes = code.as_bytes();
        if bytes.len() != 18 || !bytes.iter().all(|b| USCC_ALPHABET.as_bytes().contains(b)) {
            return Err(IdError::MalformedUscc(s.to_owned()));
        }
        let expected = Uscc::check_character(&bytes[..17]);
        if char::from(bytes[17]) != expected {
            return Err(IdError::UsccCheckFailed { code: s.to_owned(), expected });
        }
        Ok(Uscc(code))
    }
}

impl TryFrom<String> for Uscc {
    type Error = IdError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<Uscc> for String {
    fn from(code: Uscc) -> String {
        code.0
    }
}

impl fmt::Display for Uscc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uscc_accepts_a_code_with_a_correct_check_character() {
        let code: Uscc = "91350100M000100Y43".parse().expect("valid code");
        assert_eq!(code.stream_name(), "enterprise-91350100M000100Y43");
    }

    #[test]
    fn uscc_refuses_a_wrong_check_character_and_names_the_expected_one() {
        assert_eq!(
            "91350100M000100Y44".parse::<Uscc>(),
            Err(IdError::UsccCheckFailed { code: "91350100M000100Y44".into(), expected: '3' })
        );
    }

    #[test]
    fn uscc_refuses_letters_outside_the_alphabet() {
        assert!(matches!("9135010OM000100Y43".parse::<Uscc>(), Err(IdError::MalformedUscc(_))));
    }

    #[test]
    fn complaint_id_refuses_spaces_and_overlong_ids() {
        assert!("C-2026-1".parse::<ComplaintId>().is_ok());
        assert!("C 1".parse::<ComplaintId>().is_err());
        assert!("x".repeat(65).parse::<ComplaintId>().is_err());
        assert!("".parse::<ComplaintId>().is_err());
    }

    #[test]
    fn body_codes_round_trip_through_text() {
        for body in BodyCode::ALL {
            assert_eq!(body.as_str().parse::<BodyCode>(), Ok(body));
        }
        assert!("ZZ".parse::<BodyCode>().is_err());
    }
}
