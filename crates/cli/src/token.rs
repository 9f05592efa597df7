//! `tousu token`: issue, list and revoke bearer tokens in a data directory. Only the tokens'
//! hashes are stored; a running server picks up changes at once.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::{Args, Subcommand};
use tousu_app::tokens;
use tousu_domain::actor::Role;
use tousu_domain::ids::BodyCode;

use crate::config::DEFAULT_DATA_DIR;

/// Where the tokens are.
#[derive(Debug, Args)]
pub struct DataDir {
    /// The data directory [default: ./data].
    #[arg(long, env = "TOUSU_DATA_DIR", value_name = "DIR", default_value = DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
}

/// `tousu token` subcommands.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Issue a token; it is printed once, on the last line.
    Issue {
        #[command(flatten)]
        data: DataDir,
        /// registrar, handler, street_office, city_reviewer, official, auditor, operator or system.
        #[arg(long)]
        role: String,
        /// The body: ZJ FG SJ XF ZR GA NY WT XZ ZF JB SQ (required for registrar, handler,
        /// street_office and city_reviewer).
        #[arg(long)]
        body: Option<String>,
        /// The person's name or staff identifier.
        #[arg(long)]
        person: String,
    },
    /// List tokens (never the tokens themselves).
    List {
        #[command(flatten)]
        data: DataDir,
    },
    /// Revoke a token by its id.
    Revoke {
        #[command(flatten)]
        data: DataDir,
        /// The token's id, as `tousu token list` shows it.
        id: String,
    },
}

pub fn run(command: TokenCommand) -> Result<()> {
    match command {
        TokenCommand::Issue { data, role, body, person } => {
            let role: Role = role.parse()?;
            let body = body.map(|body| body.parse::<BodyCode>()).transpose()?;
            let issued = tokens::issue(&data.data_dir, &person, body, role)?;
            eprintln!(
                "issued token {} for {person} ({role}{}); keep it secret, it is shown only once",
                issued.id,
                body.map(|body| format!(", {body}")).unwrap_or_default()
            );
            println!("{}", issued.token);
        }
        TokenCommand::List { data } => {
            let records = tokens::list(&data.data_dir).context("cannot list tokens")?;
            println!("{:<12} {:<14} {:<5} {:<14} {:<26} revoked", "id", "role", "body", "person", "issued");
            for record in records {
                println!(
                    "{:<12} {:<14} {:<5} {:<14} {:<26} {}",
                    record.id,
                    record.role.as_str(),
                    record.body.map(|body| body.as_str()).unwrap_or("-"),
                    record.person,
                    record.issued_at.to_rfc3339(),
                    record.revoked_at.map(|at| at.to_rfc3339()).unwrap_or_else(|| "-".to_owned()),
                );
            }
        }
        TokenCommand::Revoke { data, id } => {
            let record = tokens::revoke(&data.data_dir, &id)?;
            println!("revoked {} ({}, {})", record.id, record.person, record.role);
        }
    }
    Ok(())
}
