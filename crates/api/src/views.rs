//! Domain and store values as protocol messages, with contact details masked for principals
//! whose role does not see them.

use chrono::{DateTime, FixedOffset};
use tousu_app::{CommandReply, ComplaintView, Principal};
use tousu_domain::actor::mask_contact;
use tousu_domain::complaint::{
    Channel, Complainant, ComplaintEvent, ComplaintFact, Complexity, Finding, Lead, LeadStatus, Urgency,
};
use tousu_domain::deadline::{Deadline, DueBasis};
use tousu_domain::enterprise::Company;
use tousu_domain::obligations::Obligations;
use tousu_domain::policy::Policy;
use tousu_store::RecordedEvent;

use crate::convert::{body_to_pb, deadline_kind_to_pb, escalation_to_pb, role_to_pb, timestamp, timestamp_utc};
use crate::pb;

/// A command's answer.
pub fn command_result(request_id: &str, reply: CommandReply) -> pb::CommandResult {
    pb::CommandResult {
        request_id: request_id.to_owned(),
        stream: reply.written.stream,
        complaint_id: reply.complaint_id.map(|id| id.to_string()).unwrap_or_default(),
        uscc: reply.uscc.map(|uscc| uscc.to_string()).unwrap_or_default(),
        revision: reply.written.revision,
        position: reply.written.position,
        event_types: reply.written.event_types,
        created_complaint_ids: reply.created.into_iter().map(|id| id.to_string()).collect(),
        replayed: reply.written.replayed,
    }
}

fn status_to_pb(status: LeadStatus) -> pb::LeadStatus {
    match status {
        LeadStatus::Registered => pb::LeadStatus::Registered,
        LeadStatus::Classified => pb::LeadStatus::Classified,
        LeadStatus::Returned => pb::LeadStatus::Returned,
        LeadStatus::Transferred => pb::LeadStatus::Transferred,
        LeadStatus::Handling => pb::LeadStatus::Handling,
        LeadStatus::Closed => pb::LeadStatus::Closed,
        LeadStatus::Cancelled => pb::LeadStatus::Cancelled,
    }
}

fn channel_to_pb(channel: Channel) -> pb::Channel {
    match channel {
        Channel::Hotline => pb::Channel::Hotline,
        Channel::Mailbox => pb::Channel::Mailbox,
        Channel::Hotline12345 => pb::Channel::Hotline12345,
        Channel::WalkIn => pb::Channel::WalkIn,
        Channel::Import => pb::Channel::Import,
    }
}

/// A deadline with the escalations recorded against it.
pub fn deadline(deadline: &Deadline, obligations: &Obligations) -> pb::Deadline {
    let basis = match &deadline.basis {
        DueBasis::Period { start, period } => format!("{period} from {}", start.to_rfc3339()),
        DueBasis::PlanDate { date } => format!("the plan's date {date}"),
        DueBasis::Reinstated { original } => format!("deadline #{original} reinstated"),
    };
    pb::Deadline {
        seq: deadline.seq,
        kind: deadline_kind_to_pb(deadline.kind).into(),
        rule: deadline.rule.as_str().to_owned(),
        body: body_to_pb(deadline.body).into(),
        community: deadline.community.clone().unwrap_or_default(),
        due: Some(timestamp(deadline.due)),
        basis,
        escalations: obligations.levels(deadline.seq).map(|level| escalation_to_pb(level).into()).collect(),
        provisional: deadline.provisional,
        calendar_version: deadline.calendar.as_ref().map(|version| version.as_str().to_owned()).unwrap_or_default(),
    }
}

/// A lead's summary as of `now`.
pub fn summary(lead: &Lead, now: DateTime<FixedOffset>) -> pb::ComplaintSummary {
    let classification = lead.classification.as_ref();
    // The earliest due instant, provisional when every open deadline due then is
    // (interpretation 21), as the `leads` read model has it.
    let earliest = lead.obligations.open().map(|deadline| deadline.due).min().map(|due| {
        let provisional =
            lead.obligations.open().filter(|deadline| deadline.due == due).all(|deadline| deadline.provisional);
        (due, provisional)
    });
    pb::ComplaintSummary {
        complaint_id: lead.id.to_string(),
        status: status_to_pb(lead.status).into(),
        channel: channel_to_pb(lead.registration.channel).into(),
        category: classification.map(|c| c.category.to_string()).unwrap_or_default(),
        body: body_to_pb(lead.accountable_body()).into(),
        urgency: match classification.map(|c| c.urgency) {
            Some(Urgency::Urgent) => pb::Urgency::Urgent,
            Some(Urgency::Normal) => pb::Urgency::Normal,
            None => pb::Urgency::Unspecified,
        }
        .into(),
        complexity: match classification.map(|c| c.complexity) {
            Some(Complexity::General) => pb::Complexity::General,
            Some(Complexity::Major) => pb::Complexity::Major,
            None => pb::Complexity::Unspecified,
        }
        .into(),
        company: lead
            .registration
            .company
            .as_ref()
            .map(|company| pb::CompanyRef { uscc: company.uscc.to_string(), name: company.name.clone() }),
        place: Some(pb::Place {
            community: lead.registration.place.community.clone(),
            district: lead.registration.place.district.clone(),
            street: lead.registration.place.street.clone(),
        }),
        registered_at: Some(timestamp(lead.registered_at)),
        finding: match lead.finding {
            Some(Finding::Substantiated) => pb::Finding::Substantiated,
            Some(Finding::Unsubstantiated) => pb::Finding::Unsubstantiated,
            None => pb::Finding::Unspecified,
        }
        .into(),
        reopen_count: lead.reopen_count,
        return_count: lead.return_count,
        overdue: lead.is_overdue_at(now),
        earliest_due: earliest.map(|(due, _)| timestamp(due)),
        earliest_due_provisional: earliest.is_some_and(|(_, provisional)| provisional),
        overdue_provisional: lead.is_overdue_at(now)
            && lead.obligations.open().filter(|deadline| deadline.due < now).all(|deadline| deadline.provisional),
    }
}

fn complainant(complainant: &Complainant, unmasked: bool) -> pb::Complainant {
    match complainant {
        Complainant::Anonymous => pb::Complainant { anonymous: true, ..Default::default() },
        Complainant::Named { name, contact, id_number } => pb::Complainant {
            anonymous: false,
            name: name.clone(),
            contact: if unmasked { contact.clone() } else { mask_contact(contact) },
            id_number: match id_number {
                Some(id) if unmasked => id.clone(),
                Some(id) => mask_contact(id),
                None => String::new(),
            },
        },
    }
}

/// The event's payload as JSON, with contact details masked where the principal must not
/// see them.
fn payload_json(event: &ComplaintEvent, unmasked: bool) -> String {
    let mut event = event.clone();
    if !unmasked
        && let ComplaintFact::Registered { registration, .. } | ComplaintFact::SplitFrom { registration, .. } =
            &mut event.fact
        && let Complainant::Named { contact, id_number, .. } = &mut registration.complainant
    {
        *contact = mask_contact(contact);
        if let Some(id) = id_number {
            *id = mask_contact(id);
        }
    }
    serde_json::to_string(&event).unwrap_or_default()
}

fn actor(recorded: &RecordedEvent) -> pb::Principal {
    let store_actor = &recorded.event.actor;
    pb::Principal {
        person: store_actor.person.clone(),
        body: store_actor.body.parse().map(|body| body_to_pb(body).into()).unwrap_or(0),
        role: store_actor.role.parse().map(|role| role_to_pb(role).into()).unwrap_or(0),
    }
}

/// A lead in full, with its timeline.
pub fn complaint(view: &ComplaintView, principal: &Principal, now: DateTime<FixedOffset>) -> pb::Complaint {
    let lead = &view.lead;
    let unmasked = principal.sees_contact_details();
    pb::Complaint {
        summary: Some(summary(lead, now)),
        complainant: Some(complainant(&lead.registration.complainant, unmasked)),
        content: lead.registration.content.clone(),
        received_at: Some(timestamp(lead.registration.received_at)),
        hotline_ticket: lead.registration.hotline_ticket.clone().unwrap_or_default(),
        parent_complaint_id: lead.parent.as_ref().map(|id| id.to_string()).unwrap_or_default(),
        linked_complaint_ids: lead.children.iter().map(|child| child.lead.to_string()).collect(),
        open_deadlines: lead.obligations.open().map(|d| deadline(d, &lead.obligations)).collect(),
        timeline: view
            .events
            .iter()
            .map(|(recorded, event)| pb::TimelineEntry {
                revision: recorded.revision,
                position: recorded.position.0,
                event_type: recorded.event.event_type.clone(),
                at: Some(timestamp(event.at)),
                recorded_at: Some(timestamp_utc(recorded.recorded_at)),
                actor: Some(actor(recorded)),
                payload_json: payload_json(event, unmasked),
            })
            .collect(),
        counts_against_company: lead.substantiated_against_company(),
        attribution_reason: view
            .events
            .iter()
            .rev()
            .find_map(|(_, event)| match &event.fact {
                ComplaintFact::FindingRecorded { attribution_reason, .. } => Some(attribution_reason.clone()),
                _ => None,
            })
            .flatten()
            .unwrap_or_default(),
    }
}

/// A stored event as the audit service returns it.
pub fn recorded_event(recorded: &RecordedEvent) -> pb::RecordedEvent {
    pb::RecordedEvent {
        id: recorded.event.id.to_string(),
        stream: recorded.stream.as_str().to_owned(),
        revision: recorded.revision,
        position: recorded.position.0,
        event_type: recorded.event.event_type.clone(),
        schema_version: u32::from(recorded.event.schema_version),
        occurred_at: Some(timestamp_utc(recorded.event.occurred_at)),
        recorded_at: Some(timestamp_utc(recorded.recorded_at)),
        actor: Some(actor(recorded)),
        correlation_id: recorded.event.correlation_id.to_string(),
        causation_id: recorded.event.causation_id.to_string(),
        payload: recorded.event.payload.clone(),
        prev_hash: recorded.prev_hash.to_vec(),
        hash: recorded.hash.to_vec(),
    }
}

/// A company as of `now`.
pub fn enterprise(company: &Company, policy: &Policy, now: DateTime<FixedOffset>) -> pb::Enterprise {
    let rules = &policy.companies;
    let mut conditions = Vec::new();
    for (rule, name, since) in [
        ("REG-4", "key supervision", company.key_supervision_since),
        ("GRD-1", "grade review", company.grade_review_since),
        ("EXT-1", "exit possible", company.exit_condition_since),
    ] {
        if let Some(since) = since {
            conditions.push(pb::Condition {
                rule: rule.to_owned(),
                name: name.to_owned(),
                since: Some(timestamp(since)),
            });
        }
    }
    pb::Enterprise {
        uscc: company.uscc.to_string(),
        name: company.name.clone(),
        leads: u32::try_from(company.leads.len()).unwrap_or(u32::MAX),
        distinct_complainants: company.complainants_in_window(now, rules.key_supervision_window_months).distinct,
        substantiated_6_months: company.substantiated_in_window(now, rules.grade_review_window_months).distinct,
        substantiated_12_months: company.substantiated_in_window(now, rules.exit_window_months).distinct,
        conditions,
        credit_rating: company.credit_rating.clone().unwrap_or_default(),
        blacklisted_on: company.blacklisted_on.map(|date| date.to_string()).unwrap_or_default(),
        grades: company
            .grades
            .iter()
            .map(|(community, grade)| pb::CommunityGrade { community: community.clone(), grade: u32::from(*grade) })
            .collect(),
        open_deadlines: company.obligations.open().map(|d| deadline(d, &company.obligations)).collect(),
        exit_started: company.exit_started_at.is_some(),
    }
}

/// A row of the `leads` read model as a lead's summary.
pub fn lead_row(row: &tousu_read_leads::LeadRow) -> pb::ComplaintSummary {
    pb::ComplaintSummary {
        complaint_id: row.id.to_string(),
        status: status_to_pb(row.status).into(),
        channel: channel_to_pb(row.channel).into(),
        category: row.category.clone().unwrap_or_default(),
        body: body_to_pb(row.body).into(),
        urgency: match row.urgency {
            Some(Urgency::Urgent) => pb::Urgency::Urgent,
            Some(Urgency::Normal) => pb::Urgency::Normal,
            None => pb::Urgency::Unspecified,
        }
        .into(),
        complexity: match row.complexity {
            Some(Complexity::General) => pb::Complexity::General,
            Some(Complexity::Major) => pb::Complexity::Major,
            None => pb::Complexity::Unspecified,
        }
        .into(),
        // Interpretation 22: a lead naming no company is stored without one.
        company: (!row.company_uscc.is_empty())
            .then(|| pb::CompanyRef { uscc: row.company_uscc.clone(), name: row.company_name.clone() }),
        place: Some(pb::Place {
            community: row.community.clone(),
            district: row.district.clone(),
            street: row.street.clone(),
        }),
        registered_at: Some(timestamp(row.registered_at)),
        finding: match row.finding {
            Some(Finding::Substantiated) => pb::Finding::Substantiated,
            Some(Finding::Unsubstantiated) => pb::Finding::Unsubstantiated,
            None => pb::Finding::Unspecified,
        }
        .into(),
        reopen_count: row.reopen_count,
        return_count: row.return_count,
        overdue: row.overdue,
        earliest_due: row.earliest_due.map(timestamp),
        earliest_due_provisional: row.earliest_due_provisional,
        overdue_provisional: row.overdue_provisional,
    }
}
