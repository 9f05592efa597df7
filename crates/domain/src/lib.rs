//! The complaint-handling procedure of `process.zh.txt` as a pure model.
//!
//! Nothing here does I/O, reads the clock or knows about the event store, tokio or
//! protobuf: the clock, the calendar, the policy and the acting principal come in through a
//! [`Context`], and every decision is a function from state and command to events.
//!
//! Two kinds of stream carry the procedure: a lead (`complaint-<id>`, [`complaint`]) and a
//! company (`enterprise-<uscc>`, [`enterprise`]). A third, `calendar` ([`holiday_schedule`]),
//! records the State Council's holiday schedules loaded while the service runs. Each
//! implements [`Aggregate`], so the application layer handles them the same way: fold the
//! stream with `evolve`, `decide` the command, append the events with the expected revision.

#![forbid(unsafe_code)]

pub mod actor;
pub mod bulletin_approval;
pub mod calendar;
pub mod complaint;
pub mod context;
pub mod deadline;
pub mod enterprise;
pub mod error;
pub mod holiday_schedule;
pub mod identity;
pub mod ids;
pub mod limits;
pub mod obligations;
pub mod policy;
pub mod reporting;
pub mod rule;
pub mod taxonomy;
pub mod weekly_report;

pub use context::Context;
pub use error::DomainError;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A kind of stream: its state, commands and events, and the pure functions between them.
pub trait Aggregate: Default + Clone {
    /// Commands on the stream.
    type Command;
    /// Events on the stream.
    type Event: Serialize + DeserializeOwned + Clone;

    /// Decides a command against the state.
    fn decide(&self, command: Self::Command, ctx: &Context<'_>) -> Result<Vec<Self::Event>, DomainError>;

    /// Folds one event into the state.
    fn evolve(self, event: &Self::Event) -> Self;

    /// The type name an event is stored under.
    fn event_type(event: &Self::Event) -> &'static str;

    /// The business instant an event records.
    fn occurred_at(event: &Self::Event) -> chrono::DateTime<chrono::FixedOffset>;
}

impl Aggregate for complaint::ComplaintState {
    type Command = complaint::ComplaintCommand;
    type Event = complaint::ComplaintEvent;

    fn decide(&self, command: Self::Command, ctx: &Context<'_>) -> Result<Vec<Self::Event>, DomainError> {
        complaint::decide(self, command, ctx)
    }

    fn evolve(self, event: &Self::Event) -> Self {
        complaint::evolve(self, event)
    }

    fn event_type(event: &Self::Event) -> &'static str {
        event.event_type()
    }

    fn occurred_at(event: &Self::Event) -> chrono::DateTime<chrono::FixedOffset> {
        event.at
    }
}

impl Aggregate for holiday_schedule::ScheduleState {
    type Command = holiday_schedule::ScheduleCommand;
    type Event = holiday_schedule::ScheduleEvent;

    fn decide(&self, command: Self::Command, ctx: &Context<'_>) -> Result<Vec<Self::Event>, DomainError> {
        holiday_schedule::decide(self, command, ctx)
    }

    fn evolve(self, event: &Self::Event) -> Self {
        holiday_schedule::evolve(self, event)
    }

    fn event_type(event: &Self::Event) -> &'static str {
        event.event_type()
    }

    fn occurred_at(event: &Self::Event) -> chrono::DateTime<chrono::FixedOffset> {
        event.at
    }
}

impl Aggregate for bulletin_approval::BulletinState {
    type Command = bulletin_approval::BulletinCommand;
    type Event = bulletin_approval::BulletinEvent;

    fn decide(&self, command: Self::Command, ctx: &Context<'_>) -> Result<Vec<Self::Event>, DomainError> {
        bulletin_approval::decide(self, command, ctx)
    }

    fn evolve(self, event: &Self::Event) -> Self {
        bulletin_approval::evolve(self, event)
    }

    fn event_type(event: &Self::Event) -> &'static str {
        event.event_type()
    }

    fn occurred_at(event: &Self::Event) -> chrono::DateTime<chrono::FixedOffset> {
        event.at
    }
}

impl Aggregate for weekly_report::WeeklyState {
    type Command = weekly_report::WeeklyCommand;
    type Event = weekly_report::WeeklyEvent;

    fn decide(&self, command: Self::Command, ctx: &Context<'_>) -> Result<Vec<Self::Event>, DomainError> {
        weekly_report::decide(self, command, ctx)
    }

    fn evolve(self, event: &Self::Event) -> Self {
        weekly_report::evolve(self, event)
    }

    fn event_type(event: &Self::Event) -> &'static str {
        event.event_type()
    }

    fn occurred_at(event: &Self::Event) -> chrono::DateTime<chrono::FixedOffset> {
        event.at
    }
}

impl Aggregate for enterprise::EnterpriseState {
    type Command = enterprise::EnterpriseCommand;
    type Event = enterprise::EnterpriseEvent;

    fn decide(&self, command: Self::Command, ctx: &Context<'_>) -> Result<Vec<Self::Event>, DomainError> {
        enterprise::decide(self, command, ctx)
    }

    fn evolve(self, event: &Self::Event) -> Self {
        enterprise::evolve(self, event)
    }

    fn event_type(event: &Self::Event) -> &'static str {
        event.event_type()
    }

    fn occurred_at(event: &Self::Event) -> chrono::DateTime<chrono::FixedOffset> {
        event.at
    }
}
