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
            Role::Registrar | Role::CityReviewer | Role::Auditor | Role::System => true,
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
            Role::Registrar | Role::CityReviewer | Role::Auditor | Role::System => Ok(None),
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

    /// Whether contact details are shown unmasked to this principal.
    pub fn sees_contact_details(&self) -> bool {
        self.role.sees_contact_details()
    }
}
