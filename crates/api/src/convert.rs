//! Protocol values to domain values, refusing what is missing, malformed, unknown or out of
//! range with `InvalidArgument` naming the field.
//!
//! The transport's own types are checked here, where they become the domain's: a Timestamp's
//! nanoseconds and its year, a date's year (both within `limits::FIRST_YEAR` to
//! `limits::LAST_YEAR`), the length of a query's text filters. What the procedure requires of
//! a command's fields, their sizes included, the domain checks when it decides the command
//! (`tousu_domain::limits`), so that it holds for every command whoever sends it.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate};
use tonic::Status;
use tousu_app::RequestId;
use tousu_domain::actor::Role;
use tousu_domain::calendar::shanghai;
use tousu_domain::complaint::{
    Attribution, Channel, CompanyRef, Complainant, Complexity, FeedbackRecipient, Finding, LeadStatus,
    PenaltyVerification, Place, Satisfaction, TransferMethod, Urgency,
};
use tousu_domain::deadline::{DeadlineKind, EscalationLevel};
use tousu_domain::ids::{BodyCode, ComplaintId, Uscc};
use tousu_domain::limits::{Echo, FIRST_YEAR, LAST_YEAR};

use crate::pb;
use crate::status::{invalid, missing, to_status, too_long};

/// A request id from the request.
pub fn request_id(text: &str) -> Result<RequestId, Status> {
    RequestId::new(text).map_err(to_status)
}

/// A lead id from the request.
pub fn complaint_id(field: &'static str, text: &str) -> Result<ComplaintId, Status> {
    if text.is_empty() {
        return Err(missing(field));
    }
    text.parse().map_err(|error: tousu_domain::ids::IdError| invalid(field, error.to_string()))
}

/// A unified social credit code from the request.
pub fn uscc(field: &'static str, text: &str) -> Result<Uscc, Status> {
    if text.is_empty() {
        return Err(missing(field));
    }
    text.parse().map_err(|error: tousu_domain::ids::IdError| invalid(field, error.to_string()))
}

/// Refuses a year outside `limits::FIRST_YEAR` to `limits::LAST_YEAR`.
fn within_years(field: &'static str, year: i32, what: impl std::fmt::Display) -> Result<(), Status> {
    if (FIRST_YEAR..=LAST_YEAR).contains(&year) {
        Ok(())
    } else {
        Err(invalid(field, format!("{what} lies outside the years {FIRST_YEAR} to {LAST_YEAR}")))
    }
}

/// A required date written YYYY-MM-DD, within the years a request may name.
pub fn date(field: &'static str, text: &str) -> Result<NaiveDate, Status> {
    if text.is_empty() {
        return Err(missing(field));
    }
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| invalid(field, format!("{} is not a date YYYY-MM-DD", Echo(text))))?;
    within_years(field, date.year(), date)?;
    Ok(date)
}

/// A required instant.
pub fn instant(field: &'static str, value: Option<prost_types::Timestamp>) -> Result<DateTime<FixedOffset>, Status> {
    let value = value.ok_or_else(|| missing(field))?;
    optional_instant(field, Some(value)).map(|instant| instant.expect("given"))
}

/// The largest `nanos` of a google.protobuf.Timestamp: "must be from 0 to 999,999,999
/// inclusive". chrono would take up to 1,999,999,999 as a leap second and store an instant
/// such as `02:24:60.500` that other tools cannot read back.
const MAX_TIMESTAMP_NANOS: i32 = 999_999_999;

/// An optional instant, within the years a request may name.
pub fn optional_instant(
    field: &'static str,
    value: Option<prost_types::Timestamp>,
) -> Result<Option<DateTime<FixedOffset>>, Status> {
    let Some(value) = value else { return Ok(None) };
    if !(0..=MAX_TIMESTAMP_NANOS).contains(&value.nanos) {
        return Err(invalid(field, format!("nanos {} is outside 0 to {MAX_TIMESTAMP_NANOS}", value.nanos)));
    }
    let nanos = u32::try_from(value.nanos).unwrap_or(0);
    let instant =
        DateTime::from_timestamp(value.seconds, nanos).map(|instant| instant.with_timezone(&shanghai())).ok_or_else(
            || invalid(field, format!("seconds {} lies outside the years {FIRST_YEAR} to {LAST_YEAR}", value.seconds)),
        )?;
    within_years(field, instant.year(), instant.to_rfc3339())?;
    Ok(Some(instant))
}

/// An optional text filter of a query: empty means no filter. A filter longer than the field
/// it matches can match nothing, and would only be held (the watchlist's cache keys on it).
pub fn text_filter(field: &'static str, text: String, max: usize) -> Result<Option<String>, Status> {
    if text.is_empty() {
        return Ok(None);
    }
    let chars = text.chars().count();
    if chars > max {
        return Err(too_long(field, chars, max));
    }
    Ok(Some(text))
}

/// An instant as a protocol timestamp.
pub fn timestamp(instant: DateTime<FixedOffset>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: instant.timestamp(),
        nanos: i32::try_from(instant.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// A UTC instant as a protocol timestamp.
pub fn timestamp_utc(instant: DateTime<chrono::Utc>) -> prost_types::Timestamp {
    timestamp(instant.fixed_offset())
}

fn unknown(field: &'static str, value: i32) -> Status {
    invalid(field, format!("{value} is not a known value"))
}

/// An enum left at its `_UNSPECIFIED` value, proto3's default: the field was not set.
fn unspecified(field: &'static str) -> Status {
    missing(field)
}

/// A required enum value, mapped.
macro_rules! required_enum {
    ($name:ident, $pb:ty, $domain:ty, { $($from:path => $to:expr),+ $(,)? }) => {
        /// The domain value of a required protocol enum.
        pub fn $name(field: &'static str, value: i32) -> Result<$domain, Status> {
            match <$pb>::try_from(value) {
                $(Ok($from) => Ok($to),)+
                Ok(_) => Err(unspecified(field)),
                Err(_) => Err(unknown(field, value)),
            }
        }
    };
}

required_enum!(body, pb::Body, BodyCode, {
    pb::Body::Zj => BodyCode::ZJ, pb::Body::Fg => BodyCode::FG, pb::Body::Sj => BodyCode::SJ,
    pb::Body::Xf => BodyCode::XF, pb::Body::Zr => BodyCode::ZR, pb::Body::Ga => BodyCode::GA,
    pb::Body::Ny => BodyCode::NY, pb::Body::Wt => BodyCode::WT, pb::Body::Xz => BodyCode::XZ,
    pb::Body::Zf => BodyCode::ZF, pb::Body::Jb => BodyCode::JB, pb::Body::Sq => BodyCode::SQ,
});

required_enum!(channel, pb::Channel, Channel, {
    pb::Channel::Hotline => Channel::Hotline, pb::Channel::Mailbox => Channel::Mailbox,
    pb::Channel::Hotline12345 => Channel::Hotline12345, pb::Channel::WalkIn => Channel::WalkIn,
    pb::Channel::Import => Channel::Import,
});

required_enum!(urgency, pb::Urgency, Urgency, {
    pb::Urgency::Urgent => Urgency::Urgent, pb::Urgency::Normal => Urgency::Normal,
});

required_enum!(complexity, pb::Complexity, Complexity, {
    pb::Complexity::General => Complexity::General, pb::Complexity::Major => Complexity::Major,
});

required_enum!(transfer_method, pb::TransferMethod, TransferMethod, {
    pb::TransferMethod::Written => TransferMethod::Written, pb::TransferMethod::System => TransferMethod::System,
});

required_enum!(finding, pb::Finding, Finding, {
    pb::Finding::Substantiated => Finding::Substantiated, pb::Finding::Unsubstantiated => Finding::Unsubstantiated,
});

required_enum!(feedback_recipient, pb::FeedbackRecipient, FeedbackRecipient, {
    pb::FeedbackRecipient::Complainant => FeedbackRecipient::Complainant,
    pb::FeedbackRecipient::Hotline12345 => FeedbackRecipient::Hotline12345,
    pb::FeedbackRecipient::TransferringBody => FeedbackRecipient::TransferringBody,
});

required_enum!(penalty_verification, pb::PenaltyVerification, PenaltyVerification, {
    pb::PenaltyVerification::CaseWarranted => PenaltyVerification::CaseWarranted,
    pb::PenaltyVerification::NoCase => PenaltyVerification::NoCase,
});

required_enum!(satisfaction, pb::Satisfaction, Satisfaction, {
    pb::Satisfaction::Satisfied => Satisfaction::Satisfied, pb::Satisfaction::Dissatisfied => Satisfaction::Dissatisfied,
});

required_enum!(referral_decision, pb::ReferralDecision, tousu_domain::obligations::ReferralDecision, {
    pb::ReferralDecision::Referred => tousu_domain::obligations::ReferralDecision::Referred,
    pb::ReferralDecision::Dismissed => tousu_domain::obligations::ReferralDecision::Dismissed,
});

required_enum!(deadline_kind, pb::DeadlineKind, DeadlineKind, {
    pb::DeadlineKind::UrgentNotify => DeadlineKind::UrgentNotify, pb::DeadlineKind::Transfer => DeadlineKind::Transfer,
    pb::DeadlineKind::GeneralClose => DeadlineKind::GeneralClose, pb::DeadlineKind::MajorResolve => DeadlineKind::MajorResolve,
    pb::DeadlineKind::MajorPlan => DeadlineKind::MajorPlan, pb::DeadlineKind::ProgressReport => DeadlineKind::ProgressReport,
    pb::DeadlineKind::PenaltyVerify => DeadlineKind::PenaltyVerify,
    pb::DeadlineKind::PenaltyComplete => DeadlineKind::PenaltyComplete, pb::DeadlineKind::Survey => DeadlineKind::Survey,
    pb::DeadlineKind::Downgrade => DeadlineKind::Downgrade, pb::DeadlineKind::FeeEnforce => DeadlineKind::FeeEnforce,
    pb::DeadlineKind::Refund => DeadlineKind::Refund,
});

/// An optional status filter: unspecified means no filter; unknown values are refused.
pub fn optional_status(field: &'static str, value: i32) -> Result<Option<LeadStatus>, Status> {
    match pb::LeadStatus::try_from(value) {
        Ok(pb::LeadStatus::Unspecified) => Ok(None),
        Ok(pb::LeadStatus::Registered) => Ok(Some(LeadStatus::Registered)),
        Ok(pb::LeadStatus::Classified) => Ok(Some(LeadStatus::Classified)),
        Ok(pb::LeadStatus::Returned) => Ok(Some(LeadStatus::Returned)),
        Ok(pb::LeadStatus::Transferred) => Ok(Some(LeadStatus::Transferred)),
        Ok(pb::LeadStatus::Handling) => Ok(Some(LeadStatus::Handling)),
        Ok(pb::LeadStatus::Closed) => Ok(Some(LeadStatus::Closed)),
        Ok(pb::LeadStatus::Cancelled) => Ok(Some(LeadStatus::Cancelled)),
        Err(_) => Err(unknown(field, value)),
    }
}

/// An optional body filter.
pub fn optional_body(field: &'static str, value: i32) -> Result<Option<BodyCode>, Status> {
    if value == 0 { Ok(None) } else { body(field, value).map(Some) }
}

/// The protocol value of a body.
pub fn body_to_pb(body: BodyCode) -> pb::Body {
    match body {
        BodyCode::ZJ => pb::Body::Zj,
        BodyCode::FG => pb::Body::Fg,
        BodyCode::SJ => pb::Body::Sj,
        BodyCode::XF => pb::Body::Xf,
        BodyCode::ZR => pb::Body::Zr,
        BodyCode::GA => pb::Body::Ga,
        BodyCode::NY => pb::Body::Ny,
        BodyCode::WT => pb::Body::Wt,
        BodyCode::XZ => pb::Body::Xz,
        BodyCode::ZF => pb::Body::Zf,
        BodyCode::JB => pb::Body::Jb,
        BodyCode::SQ => pb::Body::Sq,
    }
}

/// The protocol value of a role.
pub fn role_to_pb(role: Role) -> pb::Role {
    match role {
        Role::Registrar => pb::Role::Registrar,
        Role::Handler => pb::Role::Handler,
        Role::StreetOffice => pb::Role::StreetOffice,
        Role::CityReviewer => pb::Role::CityReviewer,
        Role::Official => pb::Role::Official,
        Role::Auditor => pb::Role::Auditor,
        Role::Operator => pb::Role::Operator,
        Role::System => pb::Role::System,
    }
}

/// The protocol value of a deadline kind.
pub fn deadline_kind_to_pb(kind: DeadlineKind) -> pb::DeadlineKind {
    match kind {
        DeadlineKind::UrgentNotify => pb::DeadlineKind::UrgentNotify,
        DeadlineKind::Transfer => pb::DeadlineKind::Transfer,
        DeadlineKind::GeneralClose => pb::DeadlineKind::GeneralClose,
        DeadlineKind::MajorResolve => pb::DeadlineKind::MajorResolve,
        DeadlineKind::MajorPlan => pb::DeadlineKind::MajorPlan,
        DeadlineKind::ProgressReport => pb::DeadlineKind::ProgressReport,
        DeadlineKind::PenaltyVerify => pb::DeadlineKind::PenaltyVerify,
        DeadlineKind::PenaltyComplete => pb::DeadlineKind::PenaltyComplete,
        DeadlineKind::Survey => pb::DeadlineKind::Survey,
        DeadlineKind::Downgrade => pb::DeadlineKind::Downgrade,
        DeadlineKind::FeeEnforce => pb::DeadlineKind::FeeEnforce,
        DeadlineKind::Refund => pb::DeadlineKind::Refund,
    }
}

/// The protocol value of an escalation level.
pub fn escalation_to_pb(level: EscalationLevel) -> pb::EscalationLevel {
    match level {
        EscalationLevel::Reminder => pb::EscalationLevel::Reminder,
        EscalationLevel::DistrictLeadership => pb::EscalationLevel::DistrictLeadership,
        EscalationLevel::DisciplineOrgan => pb::EscalationLevel::DisciplineOrgan,
    }
}

/// The complainant of a registration (REG-1, interpretation 19).
pub fn complainant(value: Option<pb::Complainant>) -> Result<Complainant, Status> {
    let value = value.ok_or_else(|| missing("complainant"))?;
    if value.anonymous {
        if !value.name.is_empty() || !value.contact.is_empty() || !value.id_number.is_empty() {
            return Err(invalid("complainant", "an anonymous complainant carries no name, contact or id number"));
        }
        return Ok(Complainant::Anonymous);
    }
    Ok(Complainant::Named {
        name: value.name,
        contact: value.contact,
        id_number: (!value.id_number.is_empty()).then_some(value.id_number),
    })
}

/// The company of a registration.
pub fn company(value: Option<pb::CompanyRef>) -> Result<Option<CompanyRef>, Status> {
    // Interpretation 22: a lead may name no company.
    let Some(value) = value else { return Ok(None) };
    Ok(Some(CompanyRef { uscc: uscc("company.uscc", &value.uscc)?, name: value.name }))
}

/// Interpretation 22: the handling body's decision on the company's responsibility, if given.
pub fn attribution(value: Option<pb::Attribution>) -> Option<Attribution> {
    value.map(|value| Attribution { attributable: value.attributable, reason: value.reason })
}

/// The place of a registration.
pub fn place(value: Option<pb::Place>) -> Result<Place, Status> {
    let value = value.ok_or_else(|| missing("place"))?;
    Ok(Place { community: value.community, district: value.district, street: value.street })
}

/// The categories of the linked leads a classification splits off (interpretation 15): at
/// most one for each body but the lead's own, since TRF-3 sends no two parts of a complaint to
/// one body. Refused here, before the application derives an id for every entry of the list.
pub fn split_categories(split: Vec<pb::SplitLead>) -> Result<Vec<String>, Status> {
    let max = BodyCode::ALL.len() - 1;
    if split.len() > max {
        return Err(invalid("split", format!("{} linked leads: at most {max}, one for each other body", split.len())));
    }
    Ok(split.into_iter().map(|split| split.category).collect())
}
