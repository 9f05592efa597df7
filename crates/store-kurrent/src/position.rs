//! KurrentDB's log positions and the trait's [`Position`].
//!
//! A KurrentDB position is a pair (commit, prepare) of byte offsets in its transaction
//! log, ordered by commit, then prepare. Every event appended through the gRPC API is its
//! own committed record, so its commit and prepare positions are equal (they differ only
//! for events written in the legacy explicit transactions, which the gRPC API cannot
//! write), and the events of one multi-event append each get their own, increasing
//! position. tousu's position is therefore the commit position, and it maps back to the
//! pair (p, p). Positions strictly increase in log order and have gaps (they are byte
//! offsets), which the trait allows. An event whose two positions differ is not one tousu
//! wrote, and is reported rather than given a position that would not map back.
//!
//! Reading `$all` from a position includes the event at that position, so a read or a
//! subscription after `p` starts at (p, p) and skips every event at or before `p`
//! ([`StartAfter`]); this also holds if a server version starts after it instead.

use kurrentdb::StreamPosition;
use thiserror::Error;
use tousu_store::{Position, ReadFrom};

/// Why a KurrentDB position has no tousu position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("kurrentdb position C:{commit}/P:{prepare} has different commit and prepare positions")]
pub struct UnmappablePosition {
    /// The commit position.
    pub commit: u64,
    /// The prepare position.
    pub prepare: u64,
}

/// The tousu position of an event at `position` in KurrentDB's log.
pub fn from_kurrent(position: kurrentdb::Position) -> Result<Position, UnmappablePosition> {
    if position.commit == position.prepare {
        Ok(Position(position.commit))
    } else {
        Err(UnmappablePosition { commit: position.commit, prepare: position.prepare })
    }
}

/// The KurrentDB position of the event at tousu position `position`.
pub fn to_kurrent(position: Position) -> kurrentdb::Position {
    kurrentdb::Position { commit: position.0, prepare: position.0 }
}

/// Where a forward read or subscription of `$all` starts, and which events it must skip
/// because they are at or before the exclusive start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartAfter(pub Option<kurrentdb::Position>);

impl StartAfter {
    /// The start of a read of the log from `from`.
    pub fn from_read_from(from: ReadFrom) -> Self {
        match from {
            ReadFrom::Start => Self(None),
            ReadFrom::After(position) => Self(Some(to_kurrent(position))),
        }
    }

    /// The position to hand to KurrentDB: inclusive, hence the skipping.
    pub fn stream_position(self) -> StreamPosition<kurrentdb::Position> {
        match self.0 {
            None => StreamPosition::Start,
            Some(position) => StreamPosition::Position(position),
        }
    }

    /// Whether an event at `position` comes after the start.
    pub fn admits(self, position: kurrentdb::Position) -> bool {
        self.0.is_none_or(|after| position > after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(commit: u64, prepare: u64) -> kurrentdb::Position {
        kurrentdb::Position { commit, prepare }
    }

    #[test]
    fn positions_map_both_ways_when_commit_equals_prepare() {
        for p in [0, 1, 4_096, 1 << 40, u64::MAX - 1] {
            assert_eq!(from_kurrent(at(p, p)), Ok(Position(p)));
            assert_eq!(to_kurrent(Position(p)), at(p, p));
            assert_eq!(from_kurrent(to_kurrent(Position(p))), Ok(Position(p)));
        }
        assert_eq!(from_kurrent(at(200, 100)), Err(UnmappablePosition { commit: 200, prepare: 100 }));
        assert_eq!(
            from_kurrent(at(200, 100)).unwrap_err().to_string(),
            "kurrentdb position C:200/P:100 has different commit and prepare positions"
        );
    }

    #[test]
    fn mapped_positions_keep_kurrentdb_order() {
        let mut offsets = vec![9_000u64, 12, 4_096, 77_777, 13];
        let mut pairs: Vec<kurrentdb::Position> = offsets.iter().map(|&p| at(p, p)).collect();
        offsets.sort_unstable();
        pairs.sort();
        let mapped: Vec<u64> = pairs.into_iter().map(|p| from_kurrent(p).unwrap().0).collect();
        assert_eq!(mapped, offsets);
    }

    #[test]
    fn a_read_after_a_position_skips_that_position_and_everything_before() {
        let start = StartAfter::from_read_from(ReadFrom::Start);
        assert_eq!(start.stream_position(), StreamPosition::Start);
        assert!(start.admits(at(0, 0)) && start.admits(at(5, 5)));

        let after = StartAfter::from_read_from(ReadFrom::After(Position(500)));
        assert_eq!(after.stream_position(), StreamPosition::Position(at(500, 500)));
        assert!(!after.admits(at(500, 500)), "the start is exclusive");
        assert!(!after.admits(at(499, 499)));
        assert!(after.admits(at(501, 501)));
        // A transaction's event at (commit 500, prepare 600) sorts after (500, 500).
        assert!(after.admits(at(500, 600)));
    }
}
