//! `tousu deadline`: the due instant of any deadline kind from a start instant, computed by
//! the same calendar and policy as the service, so anyone can check a deadline by hand. A due
//! instant that looks at a year without the State Council's schedule is printed as
//! provisional, with the calendar version it rests on (interpretation 21).

use anyhow::{Context as _, Result, bail};
use chrono::DateTime;
use clap::Args;
use tousu_domain::calendar::Period;
use tousu_domain::deadline::DeadlineKind;

use crate::settings::DomainFiles;

/// Arguments of `tousu deadline`.
#[derive(Debug, Args)]
pub struct DeadlineArgs {
    /// The deadline kind, e.g. `transfer` (see `--list`).
    #[arg(required_unless_present = "list")]
    kind: Option<String>,
    /// The instant the period starts, RFC 3339, e.g. 2026-09-30T10:00:00+08:00.
    #[arg(required_unless_present = "list")]
    start: Option<String>,
    /// List the kinds with their rule, period and start.
    #[arg(long, conflicts_with_all = ["kind", "start"])]
    list: bool,
    /// Days of the one PEN-1 extension, for `penalty-complete`.
    #[arg(long, value_name = "DAYS")]
    extension: Option<u32>,
    #[command(flatten)]
    files: DomainFiles,
}

pub fn run(args: &DeadlineArgs) -> Result<()> {
    let policy = args.files.policy()?;
    if args.list {
        println!("{:<17} {:<6} {:<17} starts at", "kind", "rule", "period");
        for kind in DeadlineKind::ALL {
            println!(
                "{:<17} {:<6} {:<17} {}",
                kind.as_str(),
                kind.rule().as_str(),
                kind.period(&policy).to_string(),
                kind.starts_at()
            );
        }
        return Ok(());
    }
    let (Some(kind), Some(start)) = (&args.kind, &args.start) else {
        bail!("a kind and a start instant are required (or --list)");
    };
    let kind: DeadlineKind = kind.parse()?;
    let start = DateTime::parse_from_rfc3339(start)
        .with_context(|| format!("start {start:?} is not an RFC 3339 instant such as 2026-09-30T10:00:00+08:00"))?;
    let mut period = kind.period(&policy);
    if let Some(days) = args.extension {
        let max = policy.periods.penalty_extension_max_days;
        if kind != DeadlineKind::PenaltyComplete {
            bail!("--extension applies to penalty-complete only (PEN-1)");
        }
        if days == 0 || days > max {
            bail!("PEN-1: an extension must be between 1 and {max} days, not {days}");
        }
        period = Period::Days(policy.periods.penalty_complete_days + days);
    }
    let calendar = args.files.calendar()?;
    let computed = calendar
        .compute_due(start, period)
        .with_context(|| format!("{} ({}, {period}) from {start} cannot be computed", kind, kind.rule()))?;
    if !computed.provisional {
        println!("{}", computed.due.to_rfc3339());
        return Ok(());
    }
    // Interpretation 21: a due instant that looked at a year without the State Council's
    // schedule is provisional; say so on the same line, then which data it rests on.
    let years: Vec<String> = computed.version.provisional_years().map(|year| year.to_string()).collect();
    println!("{} provisional (暂定)", computed.due.to_rfc3339());
    println!(
        "  no State Council holiday schedule is loaded for {}: computed from the statutory holidays of the \
         放假办法 (calendar {}); recomputed once the schedule is loaded",
        years.join(", "),
        computed.version
    );
    Ok(())
}
