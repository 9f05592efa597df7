//! Protocol values to domain values, refusing what is missing or unknown with
//! `InvalidArgument` naming the field.

use chrono::{DateTime, FixedOffset, NaiveDate};
use tonic::Status;
use tousu_app::RequestId;
use tousu_domain::actor::Role;
use tousu_domain::calendar::shanghai;
use tousu_domain::complaint::{
    Channel, CompanyRef, Complainant, Complexity, FeedbackRecipient, Finding, LeadStatus, PenaltyVerification, Place,
    Satisfaction, TransferMethod, Urgency,
};
use tousu_domain::deadline::{DeadlineKind, EscalationLevel};
use tousu_domain::ids::{BodyCode, ComplaintId, Uscc};

use crate::pb;
use crate::status::{invalid, to_status};

/// A request id from the request.
pub fn request_id(text: &str) -> Result<RequestId, Status> {
    RequestId::new(text).map_err(to_status)
}

/// A lead id from the request.
pub fn complaint_id(field: &'static str, text: &str) -> Result<ComplaintId, Status> {
    if text.is_empty() {
        return Err(invalid(field, "is required"));
    }
    text.parse().map_err(|error: tousu_domain::ids::IdError| invalid(field, error.to_string()))
}

/// A unified social credit code from the request.
pub fn uscc(field: &'static str, text: &str) -> Result<Uscc, Status> {
    if text.is_empty() {
        return Err(invalid(field, "is required"));
    }
    text.parse().map_err(|error: tousu_domain::ids::IdError| invalid(field, error.to_string()))
}

/// A date written YYYY-MM-DD.
pub fn date(field: &'static str, text: &str) -> Result<NaiveDate, Status> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| invalid(field, format!("{text:?} is not a date YYYY-MM-DD")))
}

/// A required instant.
pub fn instant(field: &'static str, value: Option<prost_types::Timestamp>) -> Result<DateTime<FixedOffset>, Status> {
    let value = value.ok_or_else(|| invalid(field, "is required"))?;
    optional_instant(field, Some(value)).map(|instant| instant.expect("given"))
}

/// An optional instant.
pub fn optional_instant(
    field: &'static str,
    value: Option<prost_types::Timestamp>,
) -> Result<Option<DateTime<FixedOffset>>, Status> {
    let Some(value) = value else { return Ok(None) };
    let nanos = u32::try_from(value.nanos).map_err(|_| invalid(field, "has negative nanoseconds"))?;
    DateTime::from_timestamp(value.seconds, nanos)
        .map(|instant| Some(instant.with_timezone(&shanghai())))
        .ok_or_else(|| invalid(field, "is out of range"))
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

fn unspecified(field: &'static str) -> Status {
    invalid(field, "is unspecified")
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
    let value = value.ok_or_else(|| invalid("complainant", "is required"))?;
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
pub fn company(value: Option<pb::CompanyRef>) -> Result<CompanyRef, Status> {
    let value = value.ok_or_else(|| invalid("company", "is required"))?;
    Ok(CompanyRef { uscc: uscc("company.uscc", &value.uscc)?, name: value.name })
}

/// The place of a registration.
pub fn place(value: Option<pb::Place>) -> Result<Place, Status> {
    let value = value.ok_or_else(|| invalid("place", "is required"))?;
    Ok(Place { community: value.community, district: value.district, street: value.street })
}
