//! The lead index behind the filtered list of leads: every lead's state, folded from the
//! global log by a subscription, held in memory.
//!
//! This is the simplest read model that answers the list exactly; the projection runtime
//! replaces it with a SQL read model with a checkpoint. Until then it is rebuilt from the log
//! at every start, which takes about as long as reading the log once.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, FixedOffset};
use tokio::sync::watch;
use tousu_domain::complaint::{ComplaintEvent, ComplaintState, Lead, LeadStatus};
use tousu_domain::ids::{BodyCode, ComplaintId};
use tousu_store::{EventStore, Position, ReadFrom, Subscription, SubscriptionError};

use crate::error::AppError;

/// Which leads a list shows. `None` fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeadFilter {
    /// Leads in this state.
    pub status: Option<LeadStatus>,
    /// Leads whose responsible body is this.
    pub body: Option<BodyCode>,
    /// Leads of this category.
    pub category: Option<String>,
    /// Leads in this district.
    pub district: Option<String>,
    /// Leads in this street.
    pub street: Option<String>,
    /// Leads about this company.
    pub company_uscc: Option<String>,
    /// Leads registered at or after this instant.
    pub registered_from: Option<DateTime<FixedOffset>>,
    /// Leads registered before this instant.
    pub registered_to: Option<DateTime<FixedOffset>>,
}

impl LeadFilter {
    fn matches(&self, lead: &Lead) -> bool {
        let classification = lead.classification.as_ref();
        self.status.is_none_or(|status| lead.status == status)
            && self.body.is_none_or(|body| lead.accountable_body() == body)
            && self.category.as_deref().is_none_or(|category| {
                classification.is_some_and(|classification| classification.category.as_str() == category)
            })
            && self.district.as_deref().is_none_or(|district| lead.registration.place.district == district)
            && self.street.as_deref().is_none_or(|street| lead.registration.place.street == street)
            && self.company_uscc.as_deref().is_none_or(|uscc| lead.registration.company.uscc.as_str() == uscc)
            && self.registered_from.is_none_or(|from| lead.registered_at >= from)
            && self.registered_to.is_none_or(|to| lead.registered_at < to)
    }
}

/// One page of leads.
#[derive(Debug, Clone)]
pub struct LeadPage {
    /// The leads, newest registration first.
    pub leads: Vec<Lead>,
    /// The offset of the next page, if there is one.
    pub next_offset: Option<usize>,
    /// Leads matching the filter in all.
    pub total: usize,
}

/// Every lead's state, folded from the log.
#[derive(Debug, Default)]
pub struct LeadIndex {
    leads: RwLock<HashMap<ComplaintId, ComplaintState>>,
    caught_up_to: Option<watch::Sender<Option<Position>>>,
}

impl LeadIndex {
    /// An empty index.
    pub fn new() -> Arc<LeadIndex> {
        let (sender, _) = watch::channel(None);
        Arc::new(LeadIndex { leads: RwLock::default(), caught_up_to: Some(sender) })
    }

    fn apply(&self, stream: &str, event: &ComplaintEvent) {
        let Some(id) = stream.strip_prefix("complaint-").and_then(|id| id.parse::<ComplaintId>().ok()) else {
            return;
        };
        let mut leads = self.leads.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        let state = leads.remove(&id).unwrap_or_default();
        leads.insert(id, tousu_domain::complaint::evolve(state, event));
    }

    /// Follows the log from its start until the store closes.
    pub async fn follow<S: EventStore>(self: Arc<Self>, store: Arc<S>) -> Result<(), AppError> {
        let mut subscription = store.subscribe_all(ReadFrom::Start).await?;
        loop {
            let batch = match subscription.next_batch(1024).await {
                Ok(batch) => batch,
                Err(SubscriptionError::Closed) => return Ok(()),
                Err(error) => return Err(error.into()),
            };
            for recorded in &batch {
                if !recorded.event.event_type.starts_with("complaint.") {
                    continue;
                }
                match serde_json::from_slice::<ComplaintEvent>(&recorded.event.payload) {
                    Ok(event) => self.apply(recorded.stream.as_str(), &event),
                    Err(error) => tracing::error!(position = recorded.position.0, %error, "lead event does not decode"),
                }
            }
            if let (Some(last), Some(sender)) = (batch.last(), &self.caught_up_to) {
                sender.send_replace(Some(last.position));
            }
        }
    }

    /// Waits until the index has applied the log up to `position`, or `timeout` passes.
    pub async fn wait_for(&self, position: Position, timeout: Duration) -> bool {
        let Some(sender) = &self.caught_up_to else { return false };
        let mut receiver = sender.subscribe();
        let reached = receiver.wait_for(|applied| applied.is_some_and(|applied| applied >= position));
        matches!(tokio::time::timeout(timeout, reached).await, Ok(Ok(_)))
    }

    /// A page of the leads matching `filter`, newest registration first, skipping `offset`.
    pub fn list(&self, filter: &LeadFilter, offset: usize, page_size: usize) -> LeadPage {
        let leads = self.leads.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut matching: Vec<&Lead> =
            leads.values().filter_map(|state| state.lead.as_ref()).filter(|lead| filter.matches(lead)).collect();
        matching.sort_by(|a, b| b.registered_at.cmp(&a.registered_at).then_with(|| a.id.cmp(&b.id)));
        let total = matching.len();
        let page: Vec<Lead> = matching.iter().skip(offset).take(page_size).map(|lead| (*lead).clone()).collect();
        let end = offset + page.len();
        LeadPage { leads: page, next_offset: (end < total).then_some(end), total }
    }
}
