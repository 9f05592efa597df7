//! The `tousu` command. It parses arguments and wires the library crates together; the
//! substance lives in those crates.

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod anchors;
mod audit;
mod calendar;
mod config;
mod deadline;
mod health;
mod limits;
mod log;
mod node;
mod projections;
mod serve;
mod settings;
mod signing;
mod simulate;
mod token;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// tousu: complaints about property-management companies, from registration to review.
#[derive(Debug, Parser)]
#[command(name = "tousu", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gRPC service on the embedded store (data in ./data, listening on 127.0.0.1:50051).
    Serve(serve::ServeArgs),
    /// The read models' status and rebuilds.
    #[command(subcommand)]
    Projections(projections::ProjectionsCommand),
    /// Run one read model's worker in its own process.
    Worker(projections::WorkerArgs),
    /// Issue, list and revoke bearer tokens.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Verify and export the history (the discipline commission's tools).
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Compute a deadline as the procedure does: `tousu deadline transfer 2026-09-30T10:00:00+08:00`.
    Deadline(deadline::DeadlineArgs),
    /// The holiday calendar: official and provisional years, a year's days, checking and
    /// loading a year's State Council schedule.
    #[command(subcommand)]
    Calendar(calendar::CalendarCommand),
    /// Simulate a city's months of complaints through the API into a new data directory.
    Simulate(simulate::SimulateArgs),
    /// Ask a running server whether it serves (exit status 0 when SERVING), for health checks.
    Health(health::HealthArgs),
}

/// mimalloc rather than the C library's allocator: a loaded server allocates and frees many
/// small buffers on every thread (request frames, rows, events), where glibc's arenas spent a
/// sixth of its time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Token(command) => token::run(command),
        Command::Projections(command) => projections::run(command),
        Command::Worker(args) => projections::worker(args),
        Command::Deadline(args) => deadline::run(&args),
        Command::Calendar(command) => calendar::run(command),
        Command::Audit(command) => audit::run(command),
        Command::Simulate(args) => simulate::run(args),
        Command::Health(args) => health::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            if error.downcast_ref::<serve::StoreRefusingWrites>().is_some() {
                ExitCode::from(serve::EXIT_STORE_REFUSING_WRITES)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
