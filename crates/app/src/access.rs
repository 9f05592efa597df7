//! Who may do what: the principal behind a request, the role matrix for commands (declared by
//! the domain beside its commands) and for reads (declared here), and masking of contact
//! details for roles that do not need them.

use tousu_domain::actor::{Actor, Role};
use tousu_domain::complaint::Lead;
use tousu_domain::ids::BodyCode;

use crate::error::AppError;

/// An authenticated principal: person, body (none for auditors and operators outside the
/// twelve bodies, such as the discipline commission) and role.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Principal {
    /// The person's name or staff identifier.
    pub person: String,
    /// The body the person acts for.
    pub body: Option<BodyCode>,
    /// The role.
    pub role: Role,
}

impl Principal {
    /// tousu's own reactions and deadline reactor, acting for 住建 (ACC-2).
    pub fn system() -> Principal {
        let actor = Actor::deadline_reactor();
        Principal { person: actor.person, body: Some(actor.body), role: actor.role }
    }

    /// The principal as the domain's actor; commands need a body. An operator may hold a token
    /// without one (it runs the service rather than acting for a body), and its one command,
    /// re-evaluating a company, is tousu's own bookkeeping: it acts for 住建, as tousu's own
    /// system principal does.
    pub fn actor(&self, action: &str) -> Result<Actor, AppError> {
        match (self.body, self.role) {
            (Some(body), _) => Ok(Actor { person: self.person.clone(), body, role: self.role }),
            (None, Role::Operator) => Ok(Actor { person: self.person.clone(), body: BodyCode::ZJ, role: self.role }),
            (None, _) => {
                Err(AppError::PermissionDenied { role: self.role, action: format!("{action} without a body") })
            }
        }
    }

    fn denied(&self, action: &str) -> AppError {
        AppError::PermissionDenied { role: self.role, action: action.to_owned() }
    }

    /// Whether the principal may read this lead (ACC-1: registrars, reviewers, auditors and
    /// tousu's workers read every lead; handlers and street offices the leads their body holds).
    pub fn may_read_lead(&self, lead: &Lead) -> bool {
        match self.role {
            Role::Registrar | Role::CityReviewer | Role::Official | Role::Auditor | Role::System => true,
            Role::Handler | Role::StreetOffice => self.body.is_some() && lead.handling_body == self.body,
            Role::Operator => false,
        }
    }

    /// Checks the principal's role may read leads at all; which leads it may read is
    /// [`Principal::may_read_lead`]. Checked before a lead is looked up, so that a role that
    /// reads no leads cannot learn which exist.
    pub fn check_read_leads(&self) -> Result<(), AppError> {
        match self.role {
            Role::Operator => Err(self.denied("read leads")),
            _ => Ok(()),
        }
    }

    /// The body a list of leads is restricted to for this principal, or `None` for all.
    pub fn list_restriction(&self) -> Result<Option<BodyCode>, AppError> {
        match self.role {
            Role::Registrar | Role::CityReviewer | Role::Official | Role::Auditor | Role::System => Ok(None),
            Role::Handler | Role::StreetOffice => self.body.map(Some).ok_or_else(|| self.denied("list leads")),
            Role::Operator => Err(self.denied("list leads")),
        }
    }

    /// Checks the principal may read companies.
    pub fn check_read_enterprises(&self) -> Result<(), AppError> {
        match self.role {
            Role::Operator => Err(self.denied("read companies")),
            _ => Ok(()),
        }
    }

    /// Checks the principal may read the watchlist (REG-4, GRD-1, GRD-2, EXT-1): 住建's ledger
    /// of companies at risk, for those who keep it and those who carry out the surveys,
    /// downgrades and exits its flags call for (住建's handlers with 街办 and 社区).
    pub fn check_read_watchlist(&self) -> Result<(), AppError> {
        match (self.role, self.body) {
            (
                Role::Registrar
                | Role::CityReviewer
                | Role::Official
                | Role::Auditor
                | Role::System
                | Role::StreetOffice,
                _,
            ) => Ok(()),
            (Role::Handler, Some(BodyCode::ZJ)) => Ok(()),
            _ => Err(self.denied("read the watchlist")),
        }
    }

    /// Checks the principal may read the weekly summary (REG-3), 住建's report to the
    /// discipline commission: not the handling bodies.
    pub fn check_read_weekly_summary(&self) -> Result<(), AppError> {
        match self.role {
            Role::Registrar | Role::CityReviewer | Role::Official | Role::Auditor | Role::System => Ok(()),
            _ => Err(self.denied("read the weekly summary")),
        }
    }

    /// Checks the principal may read the recommendations to refer and their decisions (ACC-2,
    /// interpretation 9): the discipline organ, the 住建 officials who decide them, and those who
    /// read every body's overdue obligations.
    pub fn check_read_referrals(&self) -> Result<(), AppError> {
        match self.role {
            Role::Auditor | Role::Official | Role::Registrar | Role::CityReviewer | Role::System => Ok(()),
            _ => Err(self.denied("read the recommendations to refer")),
        }
    }

    /// The body the overdue obligations (ACC-2) are restricted to for this principal, or
    /// `None` for every body: handlers and street offices see what their own body owes.
    pub fn overdue_restriction(&self) -> Result<Option<BodyCode>, AppError> {
        match self.role {
            Role::Registrar | Role::CityReviewer | Role::Official | Role::Auditor | Role::System => Ok(None),
            Role::Handler | Role::StreetOffice => {
                self.body.map(Some).ok_or_else(|| self.denied("read overdue obligations"))
            }
            Role::Operator => Err(self.denied("read overdue obligations")),
        }
    }

    /// Checks the principal may read the reports shared with every body: the DSP-1 dashboard
    /// of the coordination meeting and the PUB-1 public bulletin.
    pub fn check_read_shared_reports(&self) -> Result<(), AppError> {
        match self.role {
            Role::Operator => Err(self.denied("read the dashboard and the bulletin")),
            _ => Ok(()),
        }
    }

    /// Checks the principal may approve a month's public bulletin (interpretation 23): a 住建
    /// official. Checked before the draft is computed, so that nobody else costs the server
    /// that work.
    pub fn check_approve_bulletin(&self) -> Result<(), AppError> {
        match (self.role, self.body) {
            (Role::Official, Some(BodyCode::ZJ)) => Ok(()),
            _ => Err(self.denied("approve the bulletin")),
        }
    }

    /// Checks the principal may read the raw log (the commission's replay, remote workers).
    pub fn check_read_log(&self) -> Result<(), AppError> {
        match self.role {
            Role::Auditor | Role::System => Ok(()),
            _ => Err(self.denied("read the event log")),
        }
    }

    /// Checks the principal may verify the hash chains.
    pub fn check_verify(&self) -> Result<(), AppError> {
        match self.role {
            Role::Auditor | Role::Operator | Role::System => Ok(()),
            _ => Err(self.denied("verify the event log")),
        }
    }

    /// Checks the principal may operate the service (projection status and rebuilds).
    pub fn check_operate(&self) -> Result<(), AppError> {
        match self.role {
            Role::Operator => Ok(()),
            _ => Err(self.denied("operate the projections")),
        }
    }

    /// The principal of the local admin socket: whoever can open the socket file in the data
    /// directory operates the service.
    pub fn local_operator() -> Principal {
        Principal { person: "local-admin".to_owned(), body: None, role: Role::Operator }
    }

    /// Checks the principal may ask for a read model as of a past instant (a replay of the log,
    /// one at a time on the server): the discipline organs and 住建's registrars and reviewers,
    /// who audit the history, and tousu's workers.
    pub fn check_replay(&self) -> Result<(), AppError> {
        match self.role {
            Role::Auditor | Role::Registrar | Role::CityReviewer | Role::System => Ok(()),
            _ => Err(self.denied("replay a read model to a past instant")),
        }
    }

    /// Whether contact details are shown unmasked to this principal.
    pub fn sees_contact_details(&self) -> bool {
        self.role.sees_contact_details()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(role: Role, body: Option<BodyCode>) -> Principal {
        Principal { person: "p".to_owned(), body, role }
    }

    #[test]
    fn read_models_are_read_by_the_roles_the_procedure_gives_them() {
        use BodyCode::{JB, SJ, ZJ};
        // (role, body, watchlist, weekly summary, overdue restriction, dashboard and bulletin)
        let table = [
            (Role::Registrar, Some(ZJ), true, true, Ok(None), true),
            (Role::Handler, Some(ZJ), true, false, Ok(Some(ZJ)), true),
            (Role::Handler, Some(SJ), false, false, Ok(Some(SJ)), true),
            (Role::Handler, None, false, false, Err(()), true),
            (Role::StreetOffice, Some(JB), true, false, Ok(Some(JB)), true),
            (Role::CityReviewer, Some(SJ), true, true, Ok(None), true),
            (Role::Auditor, None, true, true, Ok(None), true),
            (Role::Operator, None, false, false, Err(()), false),
            (Role::System, Some(ZJ), true, true, Ok(None), true),
        ];
        for (role, body, watchlist, weekly, overdue, shared) in table {
            let who = principal(role, body);
            assert_eq!(who.check_read_watchlist().is_ok(), watchlist, "watchlist: {who:?}");
            assert_eq!(who.check_read_weekly_summary().is_ok(), weekly, "weekly summary: {who:?}");
            assert_eq!(who.overdue_restriction().map_err(drop), overdue, "overdue: {who:?}");
            assert_eq!(who.check_read_shared_reports().is_ok(), shared, "dashboard, bulletin: {who:?}");
        }
    }
}
