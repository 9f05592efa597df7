//! The complaint-handling procedure of `process.zh.txt` as a pure model.
//!
//! Nothing here does I/O, reads the clock or knows about the event store, tokio or
//! protobuf: the clock, the calendar, the policy and the acting principal come in through a
//! [`Context`], and every decision is a function from state and command to events.

#![forbid(unsafe_code)]

pub mod calendar;
pub mod ids;
pub mod taxonomy;
