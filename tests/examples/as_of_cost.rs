//! Measures what `as_of` costs: fills a real `tousu serve` (release build, fresh data
//! directory, the e2e harness's server) with leads driven through the procedure over gRPC
//! until the log holds EVENTS events, waits for every read model to catch up, then times each
//! `tousu.v1.ReadModels` RPC live and as of two instants: halfway through the filling and the
//! end (a replay of half the log and of all of it). Prints the server's peak memory too.
//!
//! Run with `cargo run --release -p tousu-e2e --example as_of_cost -- [EVENTS]` (default
//! 1,000,000). docs/api.md gives the results.
//!
//! The city: 300 companies with a skewed share of the leads, 6 districts, 20,000
//! complainants who complain again; 32 clients, each taking leads through register, classify,
//! transfer, accept, finding (two in three substantiated), feedback, closure and city review,
//! with every fifth lead left with its handling body and every seventh left untransferred, so
//! the read models hold open obligations too. Business instants are the real clock's: the
//! whole log falls in one week and one month, which costs the replay nothing less.

#![allow(clippy::print_stdout, reason = "an example that reports what it measured")]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tonic::Status;
use tousu_api::pb;
use tousu_e2e::requests::uscc_check_character;
use tousu_e2e::server::{AUDITOR, CITY_REVIEWER_SJ, HANDLER_SJ, OPERATOR, REGISTRAR_ZJ, TestServer};

const COMPANIES: u64 = 300;
const COMPLAINANTS: u64 = 20_000;
const CLIENTS: u64 = 32;

/// A cheap deterministic mix, for skew without a random-number crate.
fn mix(n: u64) -> u64 {
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 31;
    x.wrapping_mul(0xBF58_476D_1CE4_E5B9) ^ (x >> 29)
}

fn uscc(company: u64) -> String {
    let first_17 = format!("91350100M{company:08}");
    format!("{first_17}{}", uscc_check_character(&first_17))
}

fn timestamp(instant: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: instant.timestamp(), nanos: instant.timestamp_subsec_nanos() as i32 }
}

fn registration(n: u64, request_id: String) -> pb::RegisterRequest {
    // Skewed: the smaller of two draws favours the first companies and complainants.
    let company = (mix(n) % COMPANIES).min(mix(n ^ 7) % COMPANIES);
    let complainant = (mix(n ^ 3) % COMPLAINANTS).min(mix(n ^ 5) % COMPLAINANTS);
    pb::RegisterRequest {
        request_id,
        channel: if n.is_multiple_of(4) { pb::Channel::Mailbox } else { pb::Channel::Hotline }.into(),
        received_at: Some(timestamp(Utc::now() - chrono::TimeDelta::minutes(10))),
        complainant: Some(pb::Complainant {
            anonymous: false,
            name: format!("业主{complainant}"),
            contact: format!("138{complainant:08}"),
            id_number: String::new(),
        }),
        content: "3号楼电梯停运三天，多次报修物业公司无人处理，请尽快督促维修。".to_owned(),
        company: Some(pb::CompanyRef { uscc: uscc(company), name: format!("物业服务公司{company}") }),
        place: Some(pb::Place {
            community: format!("小区{}", company * 3 + complainant % 3),
            district: format!("区{}", company % 6),
            street: format!("街道{}", company % 40),
        }),
        hotline_ticket: String::new(),
    }
}

/// One lead through as much of the procedure as its number says.
async fn lead(server: &TestServer, client: u64, n: u64) -> Result<(), Status> {
    let key = |step: &str| format!("cost-{client}-{n}-{step}");
    let mut registrar = server.complaints(REGISTRAR_ZJ);
    let id = registrar.register(registration(client * 1_000_000_007 + n, key("register"))).await?.into_inner();
    let id = id.complaint_id;
    if n % 7 == 3 {
        return Ok(());
    }
    registrar
        .classify(pb::ClassifyRequest {
            request_id: key("classify"),
            complaint_id: id.clone(),
            category: "SJ-3-1".to_owned(),
            urgency: pb::Urgency::Normal.into(),
            complexity: pb::Complexity::General.into(),
            split: Vec::new(),
        })
        .await?;
    registrar
        .transfer(pb::TransferRequest {
            request_id: key("transfer"),
            complaint_id: id.clone(),
            to: pb::Body::Sj.into(),
            method: pb::TransferMethod::System.into(),
            note: String::new(),
        })
        .await?;
    let mut handler = server.complaints(HANDLER_SJ);
    handler.accept(pb::AcceptRequest { request_id: key("accept"), complaint_id: id.clone() }).await?;
    if n % 5 == 1 {
        return Ok(());
    }
    let finding = if n.is_multiple_of(3) { pb::Finding::Unsubstantiated } else { pb::Finding::Substantiated };
    handler
        .record_finding(pb::RecordFindingRequest {
            request_id: key("finding"),
            complaint_id: id.clone(),
            finding: finding.into(),
            summary: "现场核实".to_owned(),
            attribution: None,
        })
        .await?;
    handler
        .give_feedback(pb::GiveFeedbackRequest {
            request_id: key("feedback"),
            complaint_id: id.clone(),
            recipient: pb::FeedbackRecipient::Complainant.into(),
            content: "已督促维修完毕".to_owned(),
        })
        .await?;
    handler
        .sign_closure(pb::SignClosureRequest {
            request_id: key("sign"),
            complaint_id: id.clone(),
            opinion: "同意办结".to_owned(),
        })
        .await?;
    server
        .complaints(CITY_REVIEWER_SJ)
        .review_closure(pb::ReviewClosureRequest {
            request_id: key("review"),
            complaint_id: id,
            cancel: true,
            reason: String::new(),
        })
        .await?;
    Ok(())
}

async fn head(server: &TestServer) -> u64 {
    server.audit(AUDITOR).get_head(pb::GetHeadRequest {}).await.map_or(0, |head| head.into_inner().position)
}

fn peak_memory_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// Times one call; its answer's snapshot and the seconds it took, or the error.
async fn timed<T>(
    call: impl Future<Output = Result<tonic::Response<T>, Status>>,
    snapshot: impl Fn(&T) -> Option<pb::ReadModelSnapshot>,
) -> (f64, Result<u64, Status>) {
    let started = Instant::now();
    let result = call.await;
    let seconds = started.elapsed().as_secs_f64();
    (seconds, result.map(|answer| snapshot(answer.get_ref()).map_or(0, |snapshot| snapshot.events)))
}

#[tokio::main]
async fn main() {
    let target: u64 = std::env::args().nth(1).map_or(1_000_000, |arg| arg.parse().expect("EVENTS is a number"));
    let server = Arc::new(TestServer::start().await);
    println!("filling the log to {target} events with {CLIENTS} clients...");
    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for client in 0..CLIENTS {
        let (server, stop, errors) = (server.clone(), stop.clone(), errors.clone());
        workers.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                if let Err(status) = lead(&server, client, n).await
                    && errors.fetch_add(1, Ordering::Relaxed) == 0
                {
                    println!("first error: {status}");
                }
            }
        }));
    }
    let mut halfway: Option<DateTime<Utc>> = None;
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let position = head(&server).await;
        if halfway.is_none() && position >= target / 2 {
            halfway = Some(Utc::now());
        }
        println!(
            "  {position} events, {:.0} events/s",
            position as f64 / started.elapsed().as_secs_f64().max(f64::EPSILON)
        );
        if position >= target {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.expect("a client");
    }
    let end = Utc::now();
    let events = head(&server).await;
    println!(
        "filled {events} events in {:.0} s ({} failed leads); waiting for the read models",
        started.elapsed().as_secs_f64(),
        errors.load(Ordering::Relaxed)
    );
    loop {
        let status = server.admin(OPERATOR).list_projections(pb::ListProjectionsRequest {}).await;
        let projections = status.expect("ListProjections").into_inner().projections;
        if projections.iter().all(|projection| projection.checkpoint >= events && projection.state == "live") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let halfway = halfway.expect("halfway passed");
    let week_start = end.with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("+08:00")).date_naive();
    let month = week_start.format("%Y-%m").to_string();

    println!();
    println!("| RPC | read model | live | as of halfway | as of the end |");
    println!("| --- | --- | ---: | ---: | ---: |");
    for rpc in ["GetWatchlist", "GetWeeklySummary", "ListOverdue", "GetDashboard", "GetBulletin"] {
        let mut cells = Vec::new();
        for as_of in [None, Some(halfway), Some(end)] {
            let as_of = as_of.map(timestamp);
            let mut read_models = server.read_models(AUDITOR);
            // The live watchlist is asked at an explicit instant, so its cache does not answer.
            let at = Some(timestamp(Utc::now()));
            let (seconds, outcome) = match rpc {
                "GetWatchlist" => {
                    timed(
                        read_models.get_watchlist(pb::GetWatchlistRequest { at, as_of, ..Default::default() }),
                        |answer| answer.snapshot.clone(),
                    )
                    .await
                }
                "GetWeeklySummary" => {
                    timed(
                        read_models.get_weekly_summary(pb::GetWeeklySummaryRequest {
                            week_start: week_start.to_string(),
                            as_of,
                            ..Default::default()
                        }),
                        |answer| answer.snapshot.clone(),
                    )
                    .await
                }
                "ListOverdue" => {
                    timed(
                        read_models.list_overdue(pb::ListOverdueRequest {
                            at: Some(timestamp(end + chrono::TimeDelta::days(20))),
                            as_of,
                            ..Default::default()
                        }),
                        |answer| answer.snapshot.clone(),
                    )
                    .await
                }
                "GetDashboard" => {
                    timed(read_models.get_dashboard(pb::GetDashboardRequest { at: None, as_of }), |answer| {
                        answer.snapshot.clone()
                    })
                    .await
                }
                _ => {
                    timed(
                        read_models.get_bulletin(pb::GetBulletinRequest {
                            month: month.clone(),
                            as_of,
                            ..Default::default()
                        }),
                        |answer| answer.snapshot.clone(),
                    )
                    .await
                }
            };
            cells.push(match outcome {
                Ok(replayed) if as_of.is_some() => format!("{seconds:.2} s ({replayed} events)"),
                Ok(_) => format!("{:.0} ms", seconds * 1000.0),
                Err(status) => format!("{:?} after {seconds:.1} s", status.code()),
            });
        }
        let model = match rpc {
            "GetWatchlist" => "watchlist",
            "GetWeeklySummary" => "weekly-summary",
            "ListOverdue" => "overdue-escalation",
            "GetDashboard" => "leads",
            _ => "bulletin",
        };
        println!("| {rpc} | {model} | {} | {} | {} |", cells[0], cells[1], cells[2]);
    }
    println!();
    println!("server peak memory (VmHWM): {:.0} MiB", peak_memory_mib(server.pid()));
}
