//! The gRPC services: each RPC authenticates (through the interceptor), converts its request,
//! calls the application layer and converts the answer. No procedure logic lives here.

mod admin;
mod audit;
mod complaints;
mod enterprises;
mod queries;
mod read_models;

pub use admin::{AdminService, NodeOperations};
pub use audit::AuditService;
pub use complaints::ComplaintService;
pub use enterprises::EnterpriseService;
pub use queries::QueryService;
pub use read_models::ReadModelService;
