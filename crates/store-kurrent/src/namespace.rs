//! Which KurrentDB streams and events are tousu's: the stream prefix that separates
//! installations sharing one database, the server-side filter of `$all`, and the
//! client-side predicate that every event read from `$all` passes.
//!
//! KurrentDB filters `$all` on the server either by stream name or by event type, not
//! both. tousu filters on the stream name (its prefix, or "not `$`" without one), which
//! leaves out system streams, including system streams whose events have ordinary types
//! such as the results of projections. The predicate then also leaves out `$`-typed
//! events in ordinary streams (the links a user projection may emit, a tombstone), so what
//! remains is exactly what tousu appended.

use kurrentdb::SubscriptionFilter;
use thiserror::Error;
use tousu_store::{MAX_STREAM_NAME_LEN, StreamName};

/// The longest stream prefix, in bytes.
pub const MAX_STREAM_PREFIX_LEN: usize = 64;

/// Why a string cannot be a stream prefix.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum StreamPrefixError {
    /// The prefix starts with `$`, which KurrentDB reserves for system streams.
    #[error("stream prefix {prefix:?} starts with $, which kurrentdb reserves for system streams")]
    SystemPrefix {
        /// The rejected prefix.
        prefix: String,
    },
    /// The prefix is longer than [`MAX_STREAM_PREFIX_LEN`] bytes.
    #[error("stream prefix is {len} bytes long, more than the 64 allowed")]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The prefix contains a character outside `[A-Za-z0-9._:@-]`.
    #[error("stream prefix {prefix:?} contains {character:?}, outside [A-Za-z0-9._:@-]")]
    BadCharacter {
        /// The rejected prefix.
        prefix: String,
        /// The first offending character.
        character: char,
    },
}

/// Why a KurrentDB stream holds no tousu stream.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ForeignStream {
    /// The stream does not start with the store's prefix.
    #[error("stream {stream:?} does not start with the prefix {prefix:?}")]
    OutsidePrefix {
        /// The KurrentDB stream name.
        stream: String,
        /// The store's prefix.
        prefix: String,
    },
    /// What follows the prefix is not a tousu stream name.
    #[error("stream {stream:?} does not name a tousu stream: {source}")]
    BadName {
        /// The KurrentDB stream name.
        stream: String,
        /// Why the rest is not a stream name.
        source: tousu_store::StreamNameError,
    },
}

/// The streams of one tousu installation in a KurrentDB database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Namespace {
    prefix: String,
}

impl Namespace {
    /// The streams whose KurrentDB names are `prefix` followed by a tousu stream name;
    /// an empty prefix keeps tousu's names as they are.
    pub fn new(prefix: impl Into<String>) -> Result<Self, StreamPrefixError> {
        let prefix = prefix.into();
        if prefix.starts_with('$') {
            return Err(StreamPrefixError::SystemPrefix { prefix });
        }
        if prefix.len() > MAX_STREAM_PREFIX_LEN {
            return Err(StreamPrefixError::TooLong { len: prefix.len() });
        }
        if let Some(character) =
            prefix.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '@' | '-')))
        {
            return Err(StreamPrefixError::BadCharacter { prefix, character });
        }
        Ok(Self { prefix })
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The KurrentDB name of a tousu stream.
    pub fn kurrent_stream(&self, stream: &StreamName) -> String {
        let mut name = String::with_capacity(self.prefix.len() + stream.as_str().len());
        name.push_str(&self.prefix);
        name.push_str(stream.as_str());
        name
    }

    /// The tousu stream a KurrentDB stream holds.
    pub fn tousu_stream(&self, kurrent_stream: &str) -> Result<StreamName, ForeignStream> {
        let rest = kurrent_stream.strip_prefix(self.prefix.as_str()).ok_or_else(|| ForeignStream::OutsidePrefix {
            stream: kurrent_stream.to_owned(),
            prefix: self.prefix.clone(),
        })?;
        StreamName::new(rest).map_err(|source| ForeignStream::BadName { stream: kurrent_stream.to_owned(), source })
    }

    /// Whether an event of `$all` in `kurrent_stream` with `event_type` is one of this
    /// installation's: not a system stream, not a system event type, and in a stream
    /// under the prefix with a name after it.
    pub fn admits(&self, kurrent_stream: &str, event_type: &str) -> bool {
        !kurrent_stream.starts_with('$')
            && !event_type.starts_with('$')
            && kurrent_stream.len() > self.prefix.len()
            && kurrent_stream.len() <= self.prefix.len() + MAX_STREAM_NAME_LEN
            && kurrent_stream.starts_with(self.prefix.as_str())
    }

    /// The server-side filter of `$all` for this installation's streams.
    pub fn server_filter(&self) -> SubscriptionFilter {
        if self.prefix.is_empty() {
            SubscriptionFilter::on_stream_name().regex(NON_SYSTEM_STREAM_REGEX)
        } else {
            SubscriptionFilter::on_stream_name().add_prefix(&self.prefix)
        }
    }
}

/// Stream names that do not start with `$` (a .NET regular expression, run by the server).
const NON_SYSTEM_STREAM_REGEX: &str = "^[^$]";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_validated() {
        assert!(Namespace::new("").is_ok());
        assert!(Namespace::new("prov-fj.").is_ok());
        assert_eq!(Namespace::new("$tousu-"), Err(StreamPrefixError::SystemPrefix { prefix: "$tousu-".into() }));
        assert_eq!(Namespace::new("a".repeat(65)), Err(StreamPrefixError::TooLong { len: 65 }));
        assert!(matches!(Namespace::new("a b"), Err(StreamPrefixError::BadCharacter { character: ' ', .. })));
    }

    #[test]
    fn stream_names_map_both_ways() {
        let stream = StreamName::new("complaint-C20260001").unwrap();
        let plain = Namespace::new("").unwrap();
        assert_eq!(plain.kurrent_stream(&stream), "complaint-C20260001");
        assert_eq!(plain.tousu_stream("complaint-C20260001"), Ok(stream.clone()));
        let prefixed = Namespace::new("fj.").unwrap();
        assert_eq!(prefixed.kurrent_stream(&stream), "fj.complaint-C20260001");
        assert_eq!(prefixed.tousu_stream("fj.complaint-C20260001"), Ok(stream));
        assert!(matches!(prefixed.tousu_stream("zj.complaint-1"), Err(ForeignStream::OutsidePrefix { .. })));
        assert!(matches!(prefixed.tousu_stream("fj."), Err(ForeignStream::BadName { .. })));
        assert!(matches!(plain.tousu_stream("投诉-1"), Err(ForeignStream::BadName { .. })));
    }

    #[test]
    fn the_all_predicate_leaves_out_system_streams_and_events_and_other_prefixes() {
        let plain = Namespace::new("").unwrap();
        let cases = [
            ("complaint-C1", "complaint-received", true),
            ("enterprise-91350100M000100Y43", "lead-counted", true),
            ("$projections-$all", "$ProjectionsInitialized", false),
            ("$projections-summary-result", "Result", false),
            ("$ce-complaint", "$>", false),
            ("$$complaint-C1", "$metadata", false),
            ("$scavenges", "$scavengeStarted", false),
            ("complaint-C1", "$>", false),
            ("complaint-C1", "$streamDeleted", false),
            ("", "complaint-received", false),
        ];
        for (stream, event_type, admitted) in cases {
            assert_eq!(plain.admits(stream, event_type), admitted, "{stream} / {event_type}");
        }
        let prefixed = Namespace::new("fj.").unwrap();
        assert!(prefixed.admits("fj.complaint-C1", "complaint-received"));
        assert!(!prefixed.admits("complaint-C1", "complaint-received"));
        assert!(!prefixed.admits("fj.", "complaint-received"));
        assert!(!prefixed.admits("fj.complaint-C1", "$>"));
        assert!(!prefixed.admits(&format!("fj.{}", "x".repeat(257)), "t"));
    }

    #[test]
    fn the_server_filter_is_on_stream_names() {
        let plain = format!("{:?}", Namespace::new("").unwrap().server_filter());
        assert!(plain.contains("based_on_stream: true") && plain.contains("^[^$]"), "{plain}");
        let prefixed = format!("{:?}", Namespace::new("fj.").unwrap().server_filter());
        assert!(prefixed.contains("based_on_stream: true") && prefixed.contains("\"fj.\""), "{prefixed}");
    }
}
