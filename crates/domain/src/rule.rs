//! Rule identifiers of `RULES.md`, so that code, errors, deadlines and tests can name the
//! rule they implement.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A rule of the catalogue in `RULES.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum RuleId {
    /// REG-1: the ledger and its required fields.
    Reg1,
    /// REG-2: one system for every channel; results reported to the city level.
    Reg2,
    /// REG-3: the weekly summary for the discipline commission.
    Reg3,
    /// REG-4: key supervision of companies with more than 10 distinct complainants.
    Reg4,
    /// TRF-1: urgent leads are acted on at once.
    Trf1,
    /// TRF-2: other leads are transferred within 7 working days.
    Trf2,
    /// TRF-3: a category decides the responsible body.
    Trf3,
    /// HDL-1: general matters closed with feedback within 7 days.
    Hdl1,
    /// HDL-2: major matters resolved within a month, or planned and reported monthly.
    Hdl2,
    /// HDL-3: closure signed and reviewed by the city level.
    Hdl3,
    /// HDL-4: 12345 feedback and satisfaction follow-up.
    Hdl4,
    /// PEN-1: penalty verification, completion and one extension.
    Pen1,
    /// GRD-1: service-quality survey.
    Grd1,
    /// GRD-2: downgrade.
    Grd2,
    /// GRD-3: lower fee standard enforced.
    Grd3,
    /// GRD-4: refund of over-collected fees.
    Grd4,
    /// EXT-1: exit procedure.
    Ext1,
    /// DSP-1: per-body picture for coordination meetings.
    Dsp1,
    /// PUB-1: monthly public bulletin.
    Pub1,
    /// ACC-1: supervision access for other departments and the discipline organs.
    Acc1,
    /// ACC-2: accountability for missed deadlines.
    Acc2,
}

impl RuleId {
    /// Every rule, in catalogue order.
    pub const ALL: [RuleId; 21] = [
        RuleId::Reg1,
        RuleId::Reg2,
        RuleId::Reg3,
        RuleId::Reg4,
        RuleId::Trf1,
        RuleId::Trf2,
        RuleId::Trf3,
        RuleId::Hdl1,
        RuleId::Hdl2,
        RuleId::Hdl3,
        RuleId::Hdl4,
        RuleId::Pen1,
        RuleId::Grd1,
        RuleId::Grd2,
        RuleId::Grd3,
        RuleId::Grd4,
        RuleId::Ext1,
        RuleId::Dsp1,
        RuleId::Pub1,
        RuleId::Acc1,
        RuleId::Acc2,
    ];

    /// The identifier as `RULES.md` writes it, e.g. `TRF-2`.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleId::Reg1 => "REG-1",
            RuleId::Reg2 => "REG-2",
            RuleId::Reg3 => "REG-3",
            RuleId::Reg4 => "REG-4",
            RuleId::Trf1 => "TRF-1",
            RuleId::Trf2 => "TRF-2",
            RuleId::Trf3 => "TRF-3",
            RuleId::Hdl1 => "HDL-1",
            RuleId::Hdl2 => "HDL-2",
            RuleId::Hdl3 => "HDL-3",
            RuleId::Hdl4 => "HDL-4",
            RuleId::Pen1 => "PEN-1",
            RuleId::Grd1 => "GRD-1",
            RuleId::Grd2 => "GRD-2",
            RuleId::Grd3 => "GRD-3",
            RuleId::Grd4 => "GRD-4",
            RuleId::Ext1 => "EXT-1",
            RuleId::Dsp1 => "DSP-1",
            RuleId::Pub1 => "PUB-1",
            RuleId::Acc1 => "ACC-1",
            RuleId::Acc2 => "ACC-2",
        }
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text is not a rule identifier of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown rule id {0:?}")]
pub struct UnknownRule(pub String);

impl FromStr for RuleId {
    type Err = UnknownRule;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RuleId::ALL.into_iter().find(|rule| rule.as_str() == s).ok_or_else(|| UnknownRule(s.to_owned()))
    }
}

impl Serialize for RuleId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for RuleId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}
