//! Who acts: the principal recorded on every event (person, body, role), and what each role
//! may see.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ids::BodyCode;

/// The role a principal holds. Which commands a role may issue is declared next to the
/// commands ([`crate::complaint::ComplaintCommand::permitted`],
/// [`crate::enterprise::EnterpriseCommand::permitted`]); which lead a body may act on is
/// decided by the procedure itself in `decide`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Registers leads; at 住建 also classifies, transfers and notifies (REG-1, TRF-1, TRF-2).
    Registrar,
    /// Handles leads transferred to its own body.
    Handler,
    /// A street office or community: handles leads transferred to it and countersigns the
    /// closure of matters 住建 handles directly (HDL-3).
    StreetOffice,
    /// Reviews closures at the city level and cancels or sends them back (HDL-3).
    CityReviewer,
    /// A 住建 official (领导): decides whether a body recommended for referral to the discipline
    /// organ is referred or not, with a reason (ACC-2, interpretation 9 as amended).
    Official,
    /// Reads everything, changes nothing: other departments and the discipline organs (ACC-1).
    Auditor,
    /// Runs the service: projections, tokens, manual deadline checks.
    Operator,
    /// tousu's own workers (the deadline reactor); never issued to a person.
    System,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 8] = [
        Role::Registrar,
        Role::Handler,
        Role::StreetOffice,
        Role::CityReviewer,
        Role::Official,
        Role::Auditor,
        Role::Operator,
        Role::System,
    ];

    /// The role's name in tokens and configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Registrar => "registrar",
            Role::Handler => "handler",
            Role::StreetOffice => "street_office",
            Role::CityReviewer => "city_reviewer",
            Role::Official => "official",
            Role::Auditor => "auditor",
            Role::Operator => "operator",
            Role::System => "system",
        }
    }

    /// Whether the role sees complainants' contact details unmasked. Registrars took the
    /// details down, handlers must call back, street offices mediate on site, and the
    /// discipline organs read everything (ACC-1); reviewers and operators do not need them.
    pub fn sees_contact_details(self) -> bool {
        match self {
            Role::Registrar | Role::Handler | Role::StreetOffice | Role::Auditor => true,
            Role::CityReviewer | Role::Official | Role::Operator | Role::System => false,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text does not name a role.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown role {0:?}: expected registrar, handler, street_office, city_reviewer, official, auditor, operator or system"
)]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL.into_iter().find(|role| role.as_str() == s).ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

/// The principal behind a command: recorded as the actor of every event it produces.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Actor {
    /// The person's name or staff identifier.
    pub person: String,
    /// The body the person acts for.
    pub body: BodyCode,
    /// The role the person holds.
    pub role: Role,
}

impl Actor {
    /// The deadline reactor, acting for 住建, which reports missed deadlines (ACC-2).
    pub fn deadline_reactor() -> Actor {
        Actor { person: "deadline-reactor".to_owned(), body: BodyCode::ZJ, role: Role::System }
    }
}

/// Masks a contact detail for roles that must not see it: keeps the first three and last
/// two characters of a phone number, or the first character of anything else.
pub fn mask_contact(contact: &str) -> String {
    let chars: Vec<char> = contact.chars().collect();
    let digits = chars.iter().filter(|c| c.is_ascii_digit()).count();
    if digits >= 7 && chars.len() >= 7 {
        let head: String = chars[..3].iter().collect();
        let tail: String = chars[chars.len() - 2..].iter().collect();
        format!("{head}{}{tail}", "*".repeat(chars.len() - 5))
    } else {
        match chars.first() {
            Some(first) => format!("{first}{}", "*".repeat(chars.len().saturating_sub(1).max(2))),
            None => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acc_1_auditors_read_contact_details_and_reviewers_do_not() {
        assert!(Role::Auditor.sees_contact_details());
        assert!(!Role::CityReviewer.sees_contact_details());
        assert!(!Role::Operator.sees_contact_details());
    }

    #[test]
    fn phone_numbers_are_masked_in_the_middle() {
        assert_eq!(mask_contact("13812345678"), "138******78");
        assert_eq!(mask_contact("王"), "王**");
        assert_eq!(mask_contact("wang@example.org"), "w***************");
    }

    #[test]
    fn roles_round_trip_through_text() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
    }
}
