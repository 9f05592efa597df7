//! Refusals tonic makes before a request reaches tousu's services: a request message over the
//! size limit answers `OUT_OF_RANGE` from tonic's decoder, without the details every tousu
//! refusal carries. This layer gives such a refusal those details (`ErrorInfo` with reason
//! `MESSAGE_TOO_LARGE` and the rule of the RPC, found from its path), so that the protocol's
//! promise holds: every refusal names its rule.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use prost::Message as _;
use tonic::Code;
use tonic::body::Body;
use tonic::codegen::http::{Request, Response};
use tousu_domain::rule::RuleId;

use crate::pb;

/// The rule of every tousu RPC, by its path (`/tousu.v1.ComplaintCommands/Register`), read from
/// the compiled protocol's descriptors and the table of `rules`.
fn rules_by_path() -> HashMap<String, RuleId> {
    let Ok(files) = prost_types::FileDescriptorSet::decode(pb::FILE_DESCRIPTOR_SET) else {
        return HashMap::new();
    };
    let mut rules = HashMap::new();
    for file in &files.file {
        let package = file.package();
        for service in &file.service {
            for method in &service.method {
                let message = method.input_type().rsplit('.').next().unwrap_or_default();
                if let Some(rule) = crate::rules::rule_of_request(message) {
                    rules.insert(format!("/{package}.{}/{}", service.name(), method.name()), rule);
                }
            }
        }
    }
    rules
}

/// Adds the details to the refusals tonic makes itself.
#[derive(Debug, Clone)]
pub struct NameTransportRefusalsLayer {
    rules: Arc<HashMap<String, RuleId>>,
}

impl NameTransportRefusalsLayer {
    /// The layer, with the rule of every RPC of the compiled protocol.
    pub fn new() -> Self {
        NameTransportRefusalsLayer { rules: Arc::new(rules_by_path()) }
    }
}

impl Default for NameTransportRefusalsLayer {
    fn default() -> Self {
        NameTransportRefusalsLayer::new()
    }
}

impl<S> tower::Layer<S> for NameTransportRefusalsLayer {
    type Service = NameTransportRefusals<S>;

    fn layer(&self, inner: S) -> NameTransportRefusals<S> {
        NameTransportRefusals { inner, rules: self.rules.clone() }
    }
}

/// The service of [`NameTransportRefusalsLayer`].
#[derive(Debug, Clone)]
pub struct NameTransportRefusals<S> {
    inner: S,
    rules: Arc<HashMap<String, RuleId>>,
}

impl<S> tower::Service<Request<Body>> for NameTransportRefusals<S>
where
    S: tower::Service<Request<Body>, Response = Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let rule = self.rules.get(request.uri().path()).copied();
        let answer = self.inner.call(request);
        Box::pin(async move {
            let mut response = answer.await?;
            if let Some(rule) = rule {
                name_refusal(&mut response, rule);
            }
            Ok(response)
        })
    }
}

/// Gives an `OUT_OF_RANGE` answered without details (a refusal of tonic's, not of tousu's, which
/// always carries details) the details of tousu's refusals. A trailers-only answer carries its
/// status in the headers, which is how tonic refuses a request before any message.
fn name_refusal(response: &mut Response<Body>, rule: RuleId) {
    let headers = response.headers_mut();
    if headers.contains_key("grpc-status-details-bin") {
        return;
    }
    let Some(status) = tonic::Status::from_header_map(headers) else { return };
    if status.code() != Code::OutOfRange {
        return;
    }
    let named = crate::status::message_too_large(status.message(), rule);
    headers.remove("grpc-message");
    if let Err(error) = named.add_header(headers) {
        tracing::warn!(%error, "a refusal's details could not be added");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tousu_rpc_has_the_rule_the_services_name() {
        let rules = rules_by_path();
        assert_eq!(rules.get("/tousu.v1.ComplaintCommands/Register"), Some(&RuleId::Reg1));
        assert_eq!(rules.get("/tousu.v1.ComplaintCommands/SignClosure"), Some(&RuleId::Hdl3));
        assert_eq!(rules.get("/tousu.v1.ReadModels/GetWatchlist"), Some(&RuleId::Reg4));
        assert!(rules.len() >= 50, "every RPC of the protocol: {}", rules.len());
        assert!(rules.keys().all(|path| path.starts_with("/tousu.v1.")));
    }
}
