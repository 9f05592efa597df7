//! Bearer-token authentication: an interceptor that maps `authorization: Bearer <token>` to
//! the principal it was issued to and puts the principal in the request's extensions, with the
//! server's record of the principals' own writes (`crate::own_writes`). Health and reflection
//! are served without it.
//!
//! A call without a valid token is refused here, before the request is read and before any
//! RPC is chosen, so its refusal names the rule of access itself
//! ([`crate::status::AUTHENTICATION_RULE`]) rather than an RPC's.

use std::sync::Arc;

use tonic::service::Interceptor;
use tonic::{Request, Status};
use tousu_app::Principal;
use tousu_app::tokens::TokenRegistry;

use crate::own_writes::OwnWrites;
use crate::status::unauthenticated;

/// Authenticates every request of the services it wraps. Its clones share one record of the
/// principals' own writes: the server builds one authenticator and clones it for every
/// service, so that a query sees the writes a command service noted.
#[derive(Clone)]
pub struct Authenticator {
    tokens: Arc<TokenRegistry>,
    own_writes: Arc<OwnWrites>,
}

impl Authenticator {
    /// An authenticator over the server's token registry.
    pub fn new(tokens: Arc<TokenRegistry>) -> Self {
        Authenticator { tokens, own_writes: Arc::default() }
    }
}

impl Interceptor for Authenticator {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let header = request
            .metadata()
            .get("authorization")
            .ok_or_else(|| unauthenticated("missing authorization metadata: send `authorization: Bearer <token>`"))?;
        let text = header.to_str().map_err(|_| unauthenticated("authorization metadata is not text"))?;
        let token = text
            .strip_prefix("Bearer ")
            .or_else(|| text.strip_prefix("bearer "))
            .ok_or_else(|| unauthenticated("authorization metadata must be `Bearer <token>`"))?;
        let principal =
            self.tokens.authenticate(token.trim()).ok_or_else(|| unauthenticated("unknown or revoked token"))?;
        request.extensions_mut().insert(principal);
        request.extensions_mut().insert(self.own_writes.clone());
        Ok(request)
    }
}

/// The principal the authenticator attached to a request.
pub fn principal<T>(request: &Request<T>) -> Result<Principal, Status> {
    request.extensions().get::<Principal>().cloned().ok_or_else(|| unauthenticated("request not authenticated"))
}
