//! Read your own writes: the log position each principal's acknowledged writes reached on
//! this server, so that an answer kept in a cache (the watchlist's, `crate::watchlist_cache`)
//! is not served to a principal whose own writes it predates.
//!
//! The authenticator attaches the server's one record to every request it admits, beside the
//! principal ([`crate::auth::Authenticator`]); the command services note the position of every
//! write they acknowledge; a cached query asks for the position of the caller's last one. It is
//! kept per principal (person, body and role), so it holds across connections and tokens of the
//! same principal, but only on the server that took the write: in a deployment of several
//! servers, a client reading on another server than the one it wrote to passes an explicit `at`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tonic::Request;
use tousu_app::Principal;

/// The log position each principal's acknowledged writes reached.
#[derive(Debug, Default)]
pub struct OwnWrites {
    positions: Mutex<HashMap<Principal, u64>>,
}

impl OwnWrites {
    /// Notes a write of `principal` acknowledged at `position` (a repeated request's answer
    /// carries the first write's position, which changes nothing).
    pub fn record(&self, principal: &Principal, position: u64) {
        let mut positions = self.positions.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match positions.get_mut(principal) {
            Some(last) => *last = (*last).max(position),
            None => {
                positions.insert(principal.clone(), position);
            }
        }
    }

    /// The position `principal`'s last acknowledged write reached, if it wrote anything here.
    pub fn position(&self, principal: &Principal) -> Option<u64> {
        self.positions.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).get(principal).copied()
    }
}

/// Notes a write of the request's principal, when the request came through the authenticator.
pub fn record<T>(request: &Request<T>, principal: &Principal, position: u64) {
    if position > 0
        && let Some(own_writes) = request.extensions().get::<Arc<OwnWrites>>()
    {
        own_writes.record(principal, position);
    }
}

/// The position the last acknowledged write of the request's principal reached.
pub fn position<T>(request: &Request<T>, principal: &Principal) -> Option<u64> {
    request.extensions().get::<Arc<OwnWrites>>().and_then(|own_writes| own_writes.position(principal))
}

#[cfg(test)]
mod tests {
    use tousu_domain::actor::Role;
    use tousu_domain::ids::BodyCode;

    use super::*;

    #[test]
    fn the_last_position_of_each_principal_is_kept() {
        let own_writes = OwnWrites::default();
        let registrar = Principal { person: "王芳".to_owned(), body: Some(BodyCode::ZJ), role: Role::Registrar };
        let handler = Principal { role: Role::Handler, ..registrar.clone() };
        assert_eq!(own_writes.position(&registrar), None);
        own_writes.record(&registrar, 7);
        own_writes.record(&registrar, 5);
        assert_eq!(own_writes.position(&registrar), Some(7), "a repeated request's older position changes nothing");
        assert_eq!(own_writes.position(&handler), None, "the same person in another role is another principal");
    }
}
