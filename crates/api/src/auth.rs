//! Bearer-token authentication: an interceptor that maps `authorization: Bearer <token>` to
//! the principal it was issued to and puts the principal in the request's extensions. Health
//! and reflection are served without it.

use std::sync::Arc;

use tonic::service::Interceptor;
use tonic::{Request, Status};
use tousu_app::Principal;
use tousu_app::tokens::TokenRegistry;

/// Authenticates every request of the services it wraps.
#[derive(Clone)]
pub struct Authenticator {
    tokens: Arc<TokenRegistry>,
}

impl Authenticator {
    /// An authenticator over the server's token registry.
    pub fn new(tokens: Arc<TokenRegistry>) -> Self {
        Authenticator { tokens }
    }
}

impl Interceptor for Authenticator {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let header = request.metadata().get("authorization").ok_or_else(|| {
            Status::unauthenticated("missing authorization metadata: send `authorization: Bearer <token>`")
        })?;
        let text = header.to_str().map_err(|_| Status::unauthenticated("authorization metadata is not text"))?;
        let token = text
            .strip_prefix("Bearer ")
            .or_else(|| text.strip_prefix("bearer "))
            .ok_or_else(|| Status::unauthenticated("authorization metadata must be `Bearer <token>`"))?;
        let principal = self
            .tokens
            .authenticate(token.trim())
            .ok_or_else(|| Status::unauthenticated("unknown or revoked token"))?;
        request.extensions_mut().insert(principal);
        Ok(request)
    }
}

/// The principal the authenticator attached to a request.
pub fn principal<T>(request: &Request<T>) -> Result<Principal, Status> {
    request.extensions().get::<Principal>().cloned().ok_or_else(|| Status::unauthenticated("request not authenticated"))
}
