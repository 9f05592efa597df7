//! How large the values a command carries may be, and how much of a refused value an error
//! message repeats.
//!
//! The procedure names the fields of each step but not their sizes. The bounds here keep
//! every event small enough that a lead read back in full (`Queries.GetComplaint`: its
//! registration, and each event's payload in its timeline) fits in one gRPC answer under the
//! default 4 MiB message limit with room for many steps, and keep the state of a lead held in
//! the stream cache small. They live in the domain because they bound what the events record,
//! so they hold whatever front end sends the command; `docs/operations.md` lists them under
//! "Field sizes".
//!
//! Text is measured in Unicode scalar values (Rust's `char`, `str::chars`), not in bytes,
//! UTF-16 code units or grapheme clusters: one Chinese character is one, and a field of
//! `n` characters takes at most `4 n` bytes of UTF-8.

use std::fmt;

use crate::error::DomainError;
use crate::rule::RuleId;

/// 投诉内容: the complainant's account of the matter, as registered.
pub const CONTENT_MAX_CHARS: usize = 20_000;

/// Free text a step of the procedure records: reasons, notes, plans, summaries, feedback,
/// opinions, decisions, details, measures, reports, publications and comments.
pub const TEXT_MAX_CHARS: usize = 4_000;

/// A person's name: the complainant's, the head who approves an extension (`approved_by`),
/// the street-office official taking part in an exit.
pub const PERSON_NAME_MAX_CHARS: usize = 100;

/// A complainant's contact (联系方式): a telephone number, an address or an e-mail address.
pub const CONTACT_MAX_CHARS: usize = 200;

/// A complainant's ID number: 18 characters for a resident identity card, fewer for the
/// other documents.
pub const ID_NUMBER_MAX_CHARS: usize = 32;

/// A company's name.
pub const COMPANY_NAME_MAX_CHARS: usize = 200;

/// A place's name: the residential community (小区), the district, the street or township.
pub const PLACE_MAX_CHARS: usize = 100;

/// A reference another system assigns: the 12345 work-order number, a penalty case number
/// (案号), a credit rating.
pub const REFERENCE_MAX_CHARS: usize = 64;

/// The largest amount of money a command records, in fen: 10^12 fen, 100 亿元. A fine or a
/// refund above it is a typing error, and it keeps every sum of amounts well inside the
/// signed 64-bit integers the read models store.
pub const AMOUNT_MAX_FEN: u64 = 1_000_000_000_000;

/// The most respondents one community's survey may have (GRD-1): more people than the
/// largest residential communities house.
pub const SURVEY_MAX_RESPONDENTS: u32 = 100_000;

/// The first year of an instant or a date a request may name: no complaint handled today
/// was received before it, and nothing the service computes reaches back further.
pub const FIRST_YEAR: i32 = 2000;

/// The last year of an instant or a date a request may name: the provisional calendar's last
/// year (interpretation 21), beyond which no deadline can be computed.
pub const LAST_YEAR: i32 = 2100;

/// The most characters of a refused value an error message repeats.
pub const ECHO_MAX_CHARS: usize = 64;

/// A refused value as an error message shows it: quoted and escaped as Rust's `{:?}` writes
/// it, and, when it is longer than [`ECHO_MAX_CHARS`] characters, only its first
/// [`ECHO_MAX_CHARS`] characters followed by `…` and its length, so that a refusal never
/// repeats a large input back to the client or into the log.
#[derive(Debug, Clone, Copy)]
pub struct Echo<'a>(pub &'a str);

impl fmt::Display for Echo<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = self.0;
        match value.char_indices().nth(ECHO_MAX_CHARS) {
            None => write!(f, "{value:?}"),
            Some((cut, _)) => write!(f, "{:?}… ({} characters)", &value[..cut], value.chars().count()),
        }
    }
}

/// Refuses a text field longer than `max` characters.
pub(crate) fn within(rule: RuleId, field: &'static str, value: &str, max: usize) -> Result<(), DomainError> {
    // A string of at most `max` bytes has at most `max` characters: most fields are decided
    // without counting.
    if value.len() <= max {
        return Ok(());
    }
    let chars = value.chars().count();
    if chars <= max { Ok(()) } else { Err(DomainError::FieldTooLong { rule, field, chars, max }) }
}

/// Refuses a required text field that is blank or longer than `max` characters.
pub(crate) fn required_within(rule: RuleId, field: &'static str, value: &str, max: usize) -> Result<(), DomainError> {
    if value.trim().is_empty() {
        return Err(DomainError::MissingField { rule, field });
    }
    within(rule, field, value, max)
}

/// Refuses an amount of money above [`AMOUNT_MAX_FEN`].
pub(crate) fn amount(rule: RuleId, field: &'static str, fen: u64) -> Result<(), DomainError> {
    if fen <= AMOUNT_MAX_FEN {
        Ok(())
    } else {
        Err(DomainError::InvalidField {
            rule,
            field,
            reason: format!("{fen} fen is more than the {AMOUNT_MAX_FEN} fen a command may record"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_value_is_echoed_whole_and_quoted() {
        assert_eq!(Echo("ZJ-9-9").to_string(), r#""ZJ-9-9""#);
        assert_eq!(Echo("a\nb").to_string(), r#""a\nb""#);
        assert_eq!(Echo(&"投".repeat(ECHO_MAX_CHARS)).to_string(), format!("{:?}", "投".repeat(ECHO_MAX_CHARS)));
    }

    #[test]
    fn a_long_value_is_echoed_as_its_first_characters_and_its_length() {
        let value = "投".repeat(1 << 20);
        let echo = Echo(&value).to_string();
        assert_eq!(echo, format!("{:?}… (1048576 characters)", "投".repeat(ECHO_MAX_CHARS)));
        assert!(echo.chars().count() < ECHO_MAX_CHARS + 30, "{echo}");
    }

    #[test]
    fn text_is_measured_in_characters_not_bytes() {
        let at_the_limit = "投".repeat(10);
        assert_eq!(within(RuleId::Reg1, "content", &at_the_limit, 10), Ok(()));
        assert_eq!(
            within(RuleId::Reg1, "content", &"投".repeat(11), 10),
            Err(DomainError::FieldTooLong { rule: RuleId::Reg1, field: "content", chars: 11, max: 10 })
        );
        assert_eq!(
            required_within(RuleId::Reg1, "content", "  ", 10),
            Err(DomainError::MissingField { rule: RuleId::Reg1, field: "content" })
        );
    }

    #[test]
    fn an_amount_above_the_bound_is_refused_naming_the_field() {
        assert_eq!(amount(RuleId::Pen1, "fine_fen", AMOUNT_MAX_FEN), Ok(()));
        assert!(matches!(
            amount(RuleId::Pen1, "fine_fen", u64::MAX),
            Err(DomainError::InvalidField { rule: RuleId::Pen1, field: "fine_fen", .. })
        ));
    }
}
