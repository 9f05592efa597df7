//! The gRPC API of tousu: the protocol compiled from `proto/tousu/v1`, the services that map
//! its messages to the application layer, bearer-token authentication, the one place where
//! errors become statuses, and the server with health, reflection and graceful shutdown.
//!
//! Only this crate knows protobuf.

#![forbid(unsafe_code)]
// `tonic::Status` is the error type the generated service traits require; boxing it in the
// helpers would only add conversions at every call.
#![allow(clippy::result_large_err)]

pub mod auth;
pub mod client;
mod codec;
mod connections;
mod convert;
mod own_writes;
pub mod read;
mod read_views;
pub mod rules;
mod services;
pub mod status;
mod transport_refusals;
mod views;
mod watchlist_cache;

pub mod server;

/// The protocol, generated from `proto/tousu/v1/*.proto`.
#[allow(clippy::all, clippy::pedantic, missing_docs, rust_2018_idioms)]
pub mod pb {
    tonic::include_proto!("tousu.v1");

    /// The encoded file descriptor set of the protocol, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/tousu_descriptor.bin"));
}

pub use server::{ServerOptions, serve};
pub use services::NodeOperations;
