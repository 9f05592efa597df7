//! `tousu-bench company`: what a company's decision costs as its leads pile up.
//!
//! Every registration is followed by a count on its company's stream (REG-4, GRD-1, EXT-1),
//! whose decision evaluates the company's window conditions. The bench builds one company with
//! N leads from distinct complainants spread over the last twelve months, three or four of them
//! found substantiated (one every third of the way: below every threshold, so the substantiated
//! counts of GRD-1 and EXT-1 cannot stop early), then times the decision on one more lead, in
//! this process, without a store.

use std::time::Instant;

use chrono::{DateTime, FixedOffset, TimeDelta};
use tousu_domain::actor::Actor;
use tousu_domain::calendar::Calendar;
use tousu_domain::complaint::Finding;
use tousu_domain::enterprise::{EnterpriseCommand, EnterpriseState, FindingRecord, LeadRecord};
use tousu_domain::identity::{ComplainantKey, IdentitySecret};
use tousu_domain::policy::Policy;
use tousu_domain::taxonomy::Taxonomy;
use tousu_domain::{Aggregate, Context};

use crate::{BenchResult, out};

const COMPANY: &str = "91350100M000100Y43";
/// Decisions timed per company size.
const DECISIONS: u32 = 2_000;

pub fn parse_company_args(mut args: impl Iterator<Item = String>) -> BenchResult<Vec<u32>> {
    let mut sizes = vec![1_000, 10_000, 100_000];
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--leads" => {
                let list = args.next().ok_or("--leads needs a comma-separated list of counts")?;
                sizes = list.split(',').map(|n| n.trim().parse()).collect::<Result<_, _>>()?;
            }
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    Ok(sizes)
}

fn lead(secret: &IdentitySecret, id: &str, complainant: u32, at: DateTime<FixedOffset>) -> BenchResult<LeadRecord> {
    Ok(LeadRecord {
        lead: id.parse()?,
        complainant_key: Some(ComplainantKey::derive(
            secret,
            &format!("业主{complainant}"),
            &format!("138{complainant:08}"),
            None,
        )),
        registered_at: at,
        community: format!("小区{}", complainant % 7),
        linked_to: None,
    })
}

fn count(leads: Vec<LeadRecord>, findings: Vec<FindingRecord>) -> BenchResult<EnterpriseCommand> {
    Ok(EnterpriseCommand::CountLeads {
        uscc: COMPANY.parse()?,
        company_name: "榕城物业服务有限公司".to_owned(),
        complaints: leads,
        findings,
    })
}

pub fn company_bench(sizes: Vec<u32>) -> BenchResult<()> {
    let (calendar, policy, taxonomy) = (Calendar::builtin()?, Policy::default(), Taxonomy::builtin()?);
    let secret = IdentitySecret::new(b"bench secret".to_vec());
    let actor = Actor::deadline_reactor();
    let now = DateTime::parse_from_rfc3339("2026-11-27T12:00:00+08:00")?;
    let ctx = Context {
        now,
        actor: &actor,
        calendar: &calendar,
        policy: &policy,
        taxonomy: &taxonomy,
        identity_secret: &secret,
    };
    out(format!("tousu-bench company: one count decision on a company with N leads ({DECISIONS} decisions each)"));
    for n in sizes {
        let started = Instant::now();
        let mut state = EnterpriseState::default();
        // Leads a minute or more apart, the newest a minute before now, over at most a year.
        let spacing = TimeDelta::seconds((365 * 24 * 3600 / i64::from(n.max(1))).max(60));
        for i in 0..n {
            let at = now - spacing * i32::try_from(n - i)?;
            let mut findings = Vec::new();
            let record = lead(&secret, &format!("C-{i}"), i, at)?;
            if i % (n / 3).max(1) == 0 {
                findings.push(FindingRecord {
                    lead: record.lead.clone(),
                    finding: Finding::Substantiated,
                    attributable: true,
                    found_at: at,
                });
            }
            let leads = vec![record];
            for event in state.decide(count(leads, Vec::new())?, &Context { now: at, ..ctx })? {
                state = state.evolve(&event);
            }
            if !findings.is_empty() {
                for event in state.decide(count(Vec::new(), findings)?, &Context { now: at, ..ctx })? {
                    state = state.evolve(&event);
                }
            }
        }
        let built = started.elapsed();
        let commands: Vec<EnterpriseCommand> = (0..DECISIONS)
            .map(|i| count(vec![lead(&secret, &format!("D-{i}"), n + i, now)?], Vec::new()))
            .collect::<BenchResult<_>>()?;
        let started = Instant::now();
        let mut written = 0;
        for command in commands {
            written += state.decide(command, &ctx)?.len();
        }
        let per_decision = started.elapsed() / DECISIONS;
        let leads = state.company.as_ref().map_or(0, |company| company.leads.len());
        out(format!(
            "{leads:>8} leads  decision {:>9.1} µs  ({written} events decided; building the company took {:.2} s, {:.1} µs a lead)",
            per_decision.as_secs_f64() * 1e6,
            built.as_secs_f64(),
            built.as_secs_f64() * 1e6 / f64::from(n.max(1)),
        ));
    }
    Ok(())
}
