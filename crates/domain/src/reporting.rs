//! Reporting periods and the public bulletin's criteria: the REG-3 week, the PUB-1 month
//! (interpretation 10), and the verdict of the monthly bulletin on a company (PUB-1).

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, TimeDelta};
use serde::{Deserialize, Serialize};

use crate::calendar::shanghai;
use crate::policy::Bulletin;

/// The Monday (Shanghai) of the REG-3 reporting week that contains `at`: weeks run from
/// Monday 00:00 to Sunday 24:00, Asia/Shanghai (interpretation 10).
pub fn reporting_week(at: DateTime<FixedOffset>) -> NaiveDate {
    let local = at.with_timezone(&shanghai()).date_naive();
    local - TimeDelta::days(i64::from(local.weekday().num_days_from_monday()))
}

/// The first day of the PUB-1 calendar month (Shanghai) that contains `at`.
pub fn reporting_month(at: DateTime<FixedOffset>) -> NaiveDate {
    let local = at.with_timezone(&shanghai()).date_naive();
    local.with_day(1).unwrap_or(local)
}

/// A company's handling record for one month, as the bulletin weighs it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CompanyMonth {
    /// Leads against the company closed in the month.
    pub closed: u32,
    /// Of those, closed on or before their handling deadline.
    pub closed_on_time: u32,
    /// Distinct complainants registering leads in the month.
    pub complainants: u32,
    /// Refusals to rectify recorded in the month.
    pub refusals: u32,
    /// Dissatisfied 12345 follow-ups in the month.
    pub dissatisfied: u32,
    /// The longest any open lead of the company was past its deadline at the month's end,
    /// in calendar days.
    pub longest_overdue_days: u32,
    /// Interpretation 23: the company's refusals, recorded in the month, to apply the lower
    /// grade's fee standard (GRD-3, handed to 市场监管 under GRD-4): an obligation of its own
    /// it failed. Absent from a month approved before it was counted.
    #[serde(default)]
    pub fee_refusals: u32,
}

/// Why a company is praised or criticised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BulletinReason {
    /// 处置及时: enough closures, nearly all on time.
    HandledPromptly,
    /// 投诉率低: few complainants.
    FewComplaints,
    /// 整改态度敷衍: refused to rectify.
    RefusedRectification,
    /// 措施不力: complainants dissatisfied after handling.
    IneffectiveMeasures,
    /// 久拖不决: a lead open long past its deadline.
    DraggedOn,
    /// 拒不执行降级后收费标准: refused the lower grade's fee standard (GRD-3, GRD-4,
    /// interpretation 23).
    RefusedFeeStandard,
}

/// The bulletin's verdict on a company (PUB-1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", content = "reasons", rename_all = "snake_case")]
pub enum BulletinVerdict {
    /// 通报表扬.
    Praise(Vec<BulletinReason>),
    /// 通报批评.
    Criticise(Vec<BulletinReason>),
    /// Neither.
    Neither,
}

/// PUB-1: weighs a company's month against the written criteria. Criticism wins over praise:
/// a company that refused to rectify is not praised for its closures.
pub fn bulletin_verdict(month: &CompanyMonth, criteria: &Bulletin) -> BulletinVerdict {
    let mut criticism = Vec::new();
    if month.refusals > 0 {
        criticism.push(BulletinReason::RefusedRectification);
    }
    // Interpretation 23: the company's own missed obligation.
    if month.fee_refusals > 0 {
        criticism.push(BulletinReason::RefusedFeeStandard);
    }
    if month.dissatisfied >= criteria.criticise_dissatisfied {
        criticism.push(BulletinReason::IneffectiveMeasures);
    }
    if month.longest_overdue_days >= criteria.criticise_overdue_days {
        criticism.push(BulletinReason::DraggedOn);
    }
    if !criticism.is_empty() {
        return BulletinVerdict::Criticise(criticism);
    }
    let prompt = month.closed >= criteria.praise_min_closed
        && u64::from(month.closed_on_time) * 10_000
            >= u64::from(criteria.praise_min_on_time_bp) * u64::from(month.closed);
    let few = month.complainants <= criteria.praise_max_complainants;
    if prompt && few {
        BulletinVerdict::Praise(vec![BulletinReason::HandledPromptly, BulletinReason::FewComplaints])
    } else {
        BulletinVerdict::Neither
    }
}
