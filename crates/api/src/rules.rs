//! The rule every RPC serves, so that every refusal names a rule of the catalogue (the
//! protocol's promise: `google.rpc.ErrorInfo` metadata `rule`).
//!
//! A refusal the procedure decides names the rule that forbids the command: a closure signed
//! before a finding names HDL-3 whatever RPC carried it. A refusal that is about no rule of its
//! own names the rule of the RPC: a request that does not decode, a missing, malformed or
//! oversized field, an unknown enum value, a role that may not call the RPC, a lead or company
//! that does not exist, a request id reused, a read model not built yet. The rule of an RPC is:
//! for a command, the rule the command belongs to (the domain's `ComplaintCommand::rule` and
//! `EnterpriseCommand::rule`; `Register` is REG-1); for a query, the rule it serves (the
//! watchlist is REG-4's ledger of key supervision); for the service's own administration, the
//! rule its data serves (the read models are how the system is open to supervision, ACC-1; the
//! holiday calendar decides when a deadline is missed, ACC-2). `docs/api.md` tabulates them.
//!
//! The table is keyed by the RPC's request message, which no two RPCs share, so that the codec,
//! which knows only the message it decodes, names the same rule as the service.

use tousu_domain::rule::RuleId;

/// The rule of the RPC whose request message is called `message` (its protobuf name without
/// the package, e.g. `RegisterRequest`); none for a message that is no RPC's request.
pub fn rule_of_request(message: &str) -> Option<RuleId> {
    let rule = match message {
        // ComplaintCommands: the rule each command belongs to.
        "RegisterRequest" => RuleId::Reg1,
        "ClassifyRequest" | "ReturnTransferRequest" | "ReviewReturnRequest" => RuleId::Trf3,
        "NotifyUrgentRequest" => RuleId::Trf1,
        "TransferRequest" | "AcceptRequest" => RuleId::Trf2,
        "RegradeRequest" | "DeclarePlanNeededRequest" | "SubmitPlanRequest" | "ReportProgressRequest" => RuleId::Hdl2,
        "GiveFeedbackRequest" => RuleId::Hdl1,
        "RecordFindingRequest" | "SignClosureRequest" | "CountersignClosureRequest" | "ReviewClosureRequest" => {
            RuleId::Hdl3
        }
        "OpenPenaltyMatterRequest"
        | "VerifyPenaltyMatterRequest"
        | "FilePenaltyCaseRequest"
        | "ExtendPenaltyPeriodRequest"
        | "DecidePenaltyRequest" => RuleId::Pen1,
        "RecordSatisfactionRequest" => RuleId::Hdl4,
        // Interpretation 9: the decision on a recommendation to refer is ACC-2's.
        "DecideReferralRequest" | "DecideCompanyReferralRequest" => RuleId::Acc2,
        // EnterpriseCommands.
        "RecordCreditRatingRequest"
        | "RecordBlacklistingRequest"
        | "RecordBlacklistRemovalRequest"
        | "RecordSurveyRequest" => RuleId::Grd1,
        "RecordRectificationRefusedRequest" | "DowngradeGradeRequest" => RuleId::Grd2,
        "EnforceFeeStandardRequest" => RuleId::Grd3,
        "RefuseFeeStandardRequest" | "OrderRefundRequest" => RuleId::Grd4,
        "StartExitProcedureRequest" => RuleId::Ext1,
        "EvaluateConditionsRequest" => RuleId::Reg4,
        // Queries: a lead with its whole history is what ACC-1 opens to supervision; the list
        // is REG-1's ledger; a company's counts are REG-4's; deadlines are what ACC-2 holds
        // the bodies to.
        "GetComplaintRequest" => RuleId::Acc1,
        "ListComplaintsRequest" => RuleId::Reg1,
        "GetEnterpriseRequest" => RuleId::Reg4,
        "CalculateDeadlineRequest" => RuleId::Acc2,
        // Audit: the raw log, who did what when (ACC-1).
        "ReadStreamRequest" | "StreamAllRequest" | "VerifyRequest" | "GetHeadRequest" => RuleId::Acc1,
        // ReadModels: the rule each read model serves.
        "GetWatchlistRequest" | "GetWatchlistCompanyRequest" => RuleId::Reg4,
        "GetWeeklySummaryRequest" | "ListWeeksRequest" => RuleId::Reg3,
        "ListOverdueRequest" | "ListReferralsRequest" => RuleId::Acc2,
        "GetDashboardRequest" => RuleId::Dsp1,
        "GetBulletinRequest" | "ApproveBulletinRequest" | "GetApprovedBulletinRequest" => RuleId::Pub1,
        // Admin: the read models are how the system is open to supervision in real time
        // (ACC-1); the holiday calendar decides when a deadline is missed (ACC-2).
        "ListProjectionsRequest" | "RebuildProjectionRequest" => RuleId::Acc1,
        "GetCalendarStatusRequest" | "GetCalendarYearRequest" | "LoadCalendarYearRequest" => RuleId::Acc2,
        _ => return None,
    };
    Some(rule)
}

/// The rule of the RPC whose request message is `T`.
pub fn rule_of<T: prost::Name>() -> Option<RuleId> {
    rule_of_request(T::NAME)
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;
    use crate::pb;

    #[test]
    fn every_rpc_of_the_protocol_names_a_rule() {
        let descriptors =
            prost_types::FileDescriptorSet::decode(pb::FILE_DESCRIPTOR_SET).expect("the descriptor set decodes");
        let mut rpcs = 0;
        for file in descriptors.file.iter().filter(|file| file.package() == "tousu.v1") {
            for service in &file.service {
                for method in &service.method {
                    let message = method.input_type().trim_start_matches(".tousu.v1.");
                    assert!(rule_of_request(message).is_some(), "{}.{} ({message})", service.name(), method.name());
                    rpcs += 1;
                }
            }
        }
        assert_eq!(rpcs, 58, "every RPC of the six services");
    }

    #[test]
    fn a_command_rpc_names_the_rule_its_command_belongs_to() {
        use tousu_domain::complaint::ComplaintCommand;
        use tousu_domain::enterprise::EnterpriseCommand;

        let complaints = [
            (rule_of::<pb::AcceptRequest>(), ComplaintCommand::Accept),
            (rule_of::<pb::RegradeRequest>(), ComplaintCommand::Regrade { reason: String::new() }),
            (rule_of::<pb::SignClosureRequest>(), ComplaintCommand::SignClosure { opinion: String::new() }),
            (rule_of::<pb::FilePenaltyCaseRequest>(), ComplaintCommand::FilePenaltyCase { case_number: String::new() }),
            (rule_of::<pb::ReturnTransferRequest>(), ComplaintCommand::ReturnTransfer { reason: String::new() }),
            (rule_of::<pb::DeclarePlanNeededRequest>(), ComplaintCommand::DeclarePlanNeeded { reason: String::new() }),
            (
                rule_of::<pb::DecideReferralRequest>(),
                ComplaintCommand::DecideReferral {
                    seq: 0,
                    decision: tousu_domain::obligations::ReferralDecision::Referred,
                    reason: String::new(),
                },
            ),
        ];
        for (rpc, command) in complaints {
            assert_eq!(rpc, Some(command.rule()), "{}", command.name());
        }
        let enterprises = [
            (rule_of::<pb::EvaluateConditionsRequest>(), EnterpriseCommand::EvaluateConditions),
            (
                rule_of::<pb::RecordCreditRatingRequest>(),
                EnterpriseCommand::RecordCreditRating { rating: String::new() },
            ),
            (
                rule_of::<pb::StartExitProcedureRequest>(),
                EnterpriseCommand::StartExitProcedure {
                    decision: String::new(),
                    street_office_official: String::new(),
                },
            ),
        ];
        for (rpc, command) in enterprises {
            assert_eq!(rpc, Some(command.rule()), "{}", command.name());
        }
        assert_eq!(rule_of::<pb::CommandResult>(), None, "an answer is no RPC's request");
    }
}
