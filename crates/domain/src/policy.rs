//! Every threshold, window and period of `RULES.md` as a named value, with the default that
//! the catalogue's interpretations decide, loadable from TOML so a deployment can override
//! any of them.

use serde::{Deserialize, Serialize};

/// The whole policy. Missing keys in a TOML file keep their defaults; unknown keys are refused
/// so that a misspelt override never silently does nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// Periods of the handling procedure.
    pub periods: Periods,
    /// Company thresholds and windows.
    pub companies: CompanyRules,
    /// The escalation ladder for missed deadlines (ACC-2, interpretation 9).
    pub escalation: Escalation,
    /// The criteria of the monthly public bulletin (PUB-1).
    pub bulletin: Bulletin,
    /// The yearly update of the holiday calendar (interpretation 21).
    pub calendar: CalendarUpdate,
    /// When reports are issued (REG-3, interpretation 26).
    pub reporting: Reporting,
}

/// When reports are issued (REG-3, interpretation 26).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Reporting {
    /// Hours after a week's end (Sunday 24:00) at which its summary is issued to the
    /// discipline commission: 9 is Monday 09:00.
    pub weekly_issue_hours_after_week_end: u32,
}

impl Default for Reporting {
    fn default() -> Self {
        Reporting { weekly_issue_hours_after_week_end: 9 }
    }
}

/// The yearly update of the holiday calendar (interpretation 21).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CalendarUpdate {
    /// Days before the last day of the last year with the State Council's schedule from which
    /// operators are warned that deadlines will soon be provisional.
    pub warn_days_before_last_official_day: u32,
}

impl Default for CalendarUpdate {
    fn default() -> Self {
        CalendarUpdate { warn_days_before_last_official_day: 90 }
    }
}

/// Periods of the handling procedure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Periods {
    /// TRF-1, interpretation 7: hours to notify the responsible body of an urgent lead.
    pub urgent_notify_hours: u32,
    /// TRF-2: working days from registration to transfer.
    pub transfer_working_days: u32,
    /// HDL-1: days from the body's receipt to closure of a general matter.
    pub general_close_days: u32,
    /// HDL-2: months from receipt to resolution of a major matter.
    pub major_resolve_months: u32,
    /// HDL-2: days from receipt to a plan, when a major matter cannot be resolved in time.
    pub major_plan_days: u32,
    /// HDL-2: months between progress reports once a plan is in force.
    pub progress_report_months: u32,
    /// PEN-1: working days from discovery or receipt to verification of a penalty lead.
    pub penalty_verify_working_days: u32,
    /// PEN-1, interpretation 11: days from filing the penalty case to the penalty.
    pub penalty_complete_days: u32,
    /// PEN-1: the longest extension the body's head may approve, in days.
    pub penalty_extension_max_days: u32,
    /// GRD-1: days to complete the service-quality and satisfaction survey.
    pub survey_days: u32,
    /// GRD-2: days to re-set the community's service grade.
    pub downgrade_days: u32,
    /// GRD-3: days for 发改 to enforce the lower grade's fee standard.
    pub fee_enforce_days: u32,
    /// GRD-4: days for 市场监管 to have over-collected fees refunded.
    pub refund_days: u32,
}

impl Default for Periods {
    fn default() -> Self {
        Periods {
            urgent_notify_hours: 2,
            transfer_working_days: 7,
            general_close_days: 7,
            major_resolve_months: 1,
            major_plan_days: 7,
            progress_report_months: 1,
            penalty_verify_working_days: 15,
            penalty_complete_days: 90,
            penalty_extension_max_days: 30,
            survey_days: 10,
            downgrade_days: 5,
            fee_enforce_days: 5,
            refund_days: 90,
        }
    }
}

/// Company thresholds and windows. "More than N" is strict (interpretation 1): a count
/// qualifies when it exceeds the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CompanyRules {
    /// REG-4: key supervision when distinct complainants exceed this.
    pub key_supervision_more_than: u32,
    /// REG-4, interpretation 3: the window for key supervision, in months.
    pub key_supervision_window_months: u32,
    /// GRD-1: a grade review when substantiated distinct complainants exceed this.
    pub grade_review_more_than: u32,
    /// GRD-1, interpretation 3: the window for the grade review ("half a year"), in months.
    pub grade_review_window_months: u32,
    /// EXT-1: the exit procedure may start when substantiated distinct complainants exceed this.
    pub exit_more_than: u32,
    /// EXT-1, interpretation 3: the window for the exit procedure ("one year"), in months.
    pub exit_window_months: u32,
    /// GRD-2: a community is downgraded when satisfaction is below this, in basis points.
    pub downgrade_satisfaction_below_bp: u32,
    /// EXT-1: satisfaction below this, in basis points, makes the exit procedure possible.
    pub exit_satisfaction_below_bp: u32,
    /// GRD-1, interpretation 12: credit ratings that count as low.
    pub low_credit_ratings: Vec<String>,
    /// GRD-1, interpretation 12: months on the black list without a break that count as long.
    pub long_blacklist_months: u32,
}

impl Default for CompanyRules {
    fn default() -> Self {
        CompanyRules {
            key_supervision_more_than: 10,
            key_supervision_window_months: 12,
            grade_review_more_than: 10,
            grade_review_window_months: 6,
            exit_more_than: 20,
            exit_window_months: 12,
            downgrade_satisfaction_below_bp: 6_000,
            exit_satisfaction_below_bp: 5_000,
            low_credit_ratings: vec!["D".to_owned()],
            long_blacklist_months: 6,
        }
    }
}

/// The escalation ladder of interpretation 9.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Escalation {
    /// Working days late at which 住建 reports the body to 区委、区政府.
    pub district_report_working_days: u32,
    /// Working days late at which the matter is referred to the discipline organ.
    pub discipline_referral_working_days: u32,
    /// Misses by the same body on the same lead at which the referral is immediate.
    pub discipline_referral_repeat_misses: u32,
}

impl Default for Escalation {
    fn default() -> Self {
        Escalation {
            district_report_working_days: 3,
            discipline_referral_working_days: 10,
            discipline_referral_repeat_misses: 2,
        }
    }
}

/// The criteria of the monthly public bulletin (PUB-1), written down so that praise and
/// criticism can be checked by anyone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Bulletin {
    /// Praise needs at least this many leads closed in the month (处置及时 needs a record).
    pub praise_min_closed: u32,
    /// Praise needs at least this share of the month's closures on time, in basis points.
    pub praise_min_on_time_bp: u32,
    /// Praise allows at most this many distinct complainants in the month (投诉率低).
    pub praise_max_complainants: u32,
    /// Criticism when a lead of the company is open this many days past its deadline (久拖不决).
    pub criticise_overdue_days: u32,
    /// Criticism when this many dissatisfied follow-ups fall in the month (措施不力).
    pub criticise_dissatisfied: u32,
}

impl Default for Bulletin {
    fn default() -> Self {
        Bulletin {
            praise_min_closed: 3,
            praise_min_on_time_bp: 9_500,
            praise_max_complainants: 2,
            criticise_overdue_days: 30,
            criticise_dissatisfied: 2,
        }
    }
}

/// Why a policy file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The text is not valid TOML for a policy (includes unknown keys).
    #[error("policy is not valid: {0}")]
    Parse(String),
    /// A value is out of its range.
    #[error("policy value {key} = {value} is out of range: {expected}")]
    OutOfRange {
        /// The dotted key, e.g. `periods.transfer_working_days`.
        key: &'static str,
        /// The value given.
        value: u32,
        /// What the value must be.
        expected: &'static str,
    },
}

impl Policy {
    /// Parses and validates a policy from TOML. Keys not given keep their defaults.
    pub fn from_toml(text: &str) -> Result<Policy, PolicyError> {
        let policy: Policy = toml::from_str(text).map_err(|error| PolicyError::Parse(error.to_string()))?;
        policy.validate()?;
        Ok(policy)
    }

    /// Checks every value is in its range.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let p = &self.periods;
        let c = &self.companies;
        let e = &self.escalation;
        let b = &self.bulletin;
        let positive: [(&'static str, u32); 21] = [
            ("periods.urgent_notify_hours", p.urgent_notify_hours),
            ("periods.transfer_working_days", p.transfer_working_days),
            ("periods.general_close_days", p.general_close_days),
            ("periods.major_resolve_months", p.major_resolve_months),
            ("periods.major_plan_days", p.major_plan_days),
            ("periods.progress_report_months", p.progress_report_months),
            ("periods.penalty_verify_working_days", p.penalty_verify_working_days),
            ("periods.penalty_complete_days", p.penalty_complete_days),
            ("periods.penalty_extension_max_days", p.penalty_extension_max_days),
            ("periods.survey_days", p.survey_days),
            ("periods.downgrade_days", p.downgrade_days),
            ("periods.fee_enforce_days", p.fee_enforce_days),
            ("periods.refund_days", p.refund_days),
            ("companies.key_supervision_window_months", c.key_supervision_window_months),
            ("companies.grade_review_window_months", c.grade_review_window_months),
            ("companies.exit_window_months", c.exit_window_months),
            ("companies.long_blacklist_months", c.long_blacklist_months),
            ("escalation.district_report_working_days", e.district_report_working_days),
            ("escalation.discipline_referral_working_days", e.discipline_referral_working_days),
            ("escalation.discipline_referral_repeat_misses", e.discipline_referral_repeat_misses),
            ("bulletin.criticise_dissatisfied", b.criticise_dissatisfied),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(PolicyError::OutOfRange { key, value, expected: "at least 1" });
            }
        }
        let basis_points: [(&'static str, u32); 3] = [
            ("companies.downgrade_satisfaction_below_bp", c.downgrade_satisfaction_below_bp),
            ("companies.exit_satisfaction_below_bp", c.exit_satisfaction_below_bp),
            ("bulletin.praise_min_on_time_bp", b.praise_min_on_time_bp),
        ];
        for (key, value) in basis_points {
            if value > 10_000 {
                return Err(PolicyError::OutOfRange { key, value, expected: "basis points between 0 and 10000" });
            }
        }
        if e.discipline_referral_working_days <= e.district_report_working_days {
            return Err(PolicyError::OutOfRange {
                key: "escalation.discipline_referral_working_days",
                value: e.discipline_referral_working_days,
                expected: "more than escalation.district_report_working_days",
            });
        }
        Ok(())
    }

    /// The policy as TOML, every key with its value: the starting point of an override file.
    pub fn to_toml(&self) -> String {
        // Every field is a plain integer, string or list, so serialisation cannot fail; an
        // empty string would only hide a bug that the tests below catch.
        toml::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interp_defaults_follow_the_rule_catalogue() {
        let policy = Policy::default();
        assert_eq!(policy.periods.transfer_working_days, 7);
        assert_eq!(policy.periods.urgent_notify_hours, 2);
        assert_eq!(policy.periods.penalty_complete_days, 90);
        assert_eq!(policy.companies.key_supervision_window_months, 12);
        assert_eq!(policy.companies.grade_review_window_months, 6);
        assert_eq!(policy.companies.downgrade_satisfaction_below_bp, 6_000);
        assert_eq!(policy.escalation.discipline_referral_working_days, 10);
        assert_eq!(policy.calendar.warn_days_before_last_official_day, 90, "interpretation 21");
    }

    #[test]
    fn a_partial_file_overrides_only_what_it_names() {
        let policy = Policy::from_toml("[periods]\ntransfer_working_days = 5\n").expect("valid policy");
        assert_eq!(policy.periods.transfer_working_days, 5);
        assert_eq!(policy.periods.general_close_days, 7);
    }

    #[test]
    fn unknown_keys_are_refused() {
        let error = Policy::from_toml("[periods]\ntransfer_workingdays = 5\n").unwrap_err();
        assert!(matches!(error, PolicyError::Parse(ref text) if text.contains("transfer_workingdays")), "{error}");
    }

    #[test]
    fn out_of_range_values_name_the_key() {
        assert_eq!(
            Policy::from_toml("[companies]\nexit_satisfaction_below_bp = 12000\n"),
            Err(PolicyError::OutOfRange {
                key: "companies.exit_satisfaction_below_bp",
                value: 12_000,
                expected: "basis points between 0 and 10000",
            })
        );
        assert!(Policy::from_toml("[periods]\nsurvey_days = 0\n").is_err());
    }

    #[test]
    fn the_written_policy_reads_back_equal() {
        let policy = Policy::default();
        let text = policy.to_toml();
        assert!(text.contains("transfer_working_days = 7"), "{text}");
        assert_eq!(Policy::from_toml(&text), Ok(policy));
    }
}
