//! `tousu simulate` through the real binary: a short span of a small city written to a new
//! data directory, whose history verifies, and which `tousu serve` then serves with every lead
//! the simulation reported; refusals of a directory that already holds a log and of a span
//! the calendar cannot carry.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tousu_api::client::Bearer;
use tousu_api::pb;
use tousu_api::pb::queries_client::QueriesClient;
use tousu_e2e::{run_tousu, stderr_of, stdout_of, tousu_bin};

/// A directory of its own under the system's temporary directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let path = std::env::temp_dir().join(format!("tousu-e2e-simulate-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).expect("create the scratch directory");
        Scratch(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A `tousu serve` process, killed when dropped.
struct Served {
    child: Child,
    address: SocketAddr,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Serves the city with the business clock starting at `clock_start`, the day after the
/// simulated span, so that the city is judged as on that day whatever the day the test runs.
fn serve(data_dir: &Path, log: &Path, clock_start: &str) -> Served {
    let log = std::fs::File::create(log).expect("create the server log");
    let mut command = Command::new(tousu_bin());
    command.arg("serve").arg("--data-dir").arg(data_dir).args([
        "--listen",
        "127.0.0.1:0",
        "--clock-start",
        clock_start,
    ]);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("TOUSU_") {
            command.env_remove(name);
        }
    }
    let mut child = command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(log).spawn().expect("spawn tousu serve");
    let stdout = child.stdout.take().expect("piped stdout");
    let (sender, receiver) = std::sync::mpsc::channel();
    // Reads the listening line, then keeps draining standard output.
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(address) = line.strip_prefix("tousu listening on ") {
                let _ = sender.send(address.trim().parse::<SocketAddr>());
            }
        }
    });
    let address = receiver
        .recv_timeout(Duration::from_secs(30))
        .expect("tousu serve reports its address")
        .expect("a socket address");
    Served { child, address }
}

/// The number after `label` in the simulation's summary.
fn reported(summary: &str, label: &str) -> u64 {
    let line =
        summary.lines().find(|line| line.starts_with(label)).unwrap_or_else(|| panic!("no {label:?} in {summary}"));
    let digits: String = line[label.len()..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap_or_else(|_| panic!("no number after {label:?} in {line:?}"))
}

/// The token of the first principal with this role in `simulation-tokens.txt`.
fn token_of(data_dir: &Path, role: &str) -> String {
    let text = std::fs::read_to_string(data_dir.join("simulation-tokens.txt")).expect("the tokens file");
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| line.split('\t').collect::<Vec<_>>())
        .find(|fields| fields.first() == Some(&role))
        .and_then(|fields| fields.last().map(|token| (*token).to_owned()))
        .unwrap_or_else(|| panic!("no {role} token in {text}"))
}

fn queries(address: SocketAddr, token: &str) -> QueriesClient<InterceptedService<Channel, Bearer>> {
    let channel = Endpoint::from_shared(format!("http://{address}"))
        .expect("a valid URI")
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .connect_lazy();
    QueriesClient::with_interceptor(channel, Bearer::new(token).expect("a valid token"))
}

#[tokio::test(flavor = "multi_thread")]
async fn simulate_writes_a_city_that_verifies_and_serves_every_lead_it_reported() {
    let scratch = Scratch::new("city");
    let data_dir = scratch.0.join("city");
    let data = data_dir.to_string_lossy().into_owned();
    // Twelve days across the new year: from 1 January 2027 the city runs on the provisional
    // calendar (interpretation 21), with no refusal.
    let args = [
        "simulate",
        "--data-dir",
        &data,
        "--from",
        "2026-12-21",
        "--days",
        "12",
        "--companies",
        "30",
        "--leads-per-day",
        "20",
    ];
    let output = run_tousu(&args);
    assert!(output.status.success(), "tousu simulate failed: {}\n{}", stderr_of(&output), stdout_of(&output));
    let summary = stdout_of(&output);
    let leads = reported(&summary, "leads: ");
    assert!(leads >= 100, "a working fortnight of 20 leads a day: {summary}");
    assert!(reported(&summary, "commands: ") > 4 * leads, "the leads go along the procedure: {summary}");
    assert!(summary.contains("refused: 0"), "the procedure refused none of the simulation's commands: {summary}");
    assert!(summary.contains("calendar: official schedules through 2026;"), "{summary}");
    for model in ["bulletin", "leads", "overdue-escalation", "watchlist", "weekly-summary"] {
        let line = summary
            .lines()
            .find(|line| line.split_whitespace().next() == Some(model))
            .unwrap_or_else(|| panic!("no status of {model} in {summary}"));
        assert!(line.contains(" live "), "every read model is live at the end: {line}");
    }
    assert!(
        reported(&summary, "escalations recorded by the deadline reactor: ") > 0,
        "deadlines are missed: {summary}"
    );

    // A directory with an event log is refused, naming the log; nothing is written.
    let again = run_tousu(&args);
    assert!(!again.status.success(), "a second simulation into the same directory is refused");
    let refusal = stderr_of(&again);
    assert!(refusal.contains("already holds an event log"), "{refusal}");
    assert!(refusal.contains(&data_dir.join("events").to_string_lossy().into_owned()), "{refusal}");

    let verify = run_tousu(&["audit", "verify", "--data-dir", &data]);
    assert!(verify.status.success(), "tousu audit verify: {}\n{}", stderr_of(&verify), stdout_of(&verify));

    // The simulation's own escalations are in the log, before anything else touches it.
    let export = run_tousu(&["audit", "export", "--data-dir", &data]);
    assert!(export.status.success(), "tousu audit export: {}", stderr_of(&export));
    let history = String::from_utf8_lossy(&export.stdout);
    let escalated = history.lines().filter(|line| line.contains("\"type\":\"complaint.escalated\"")).count();
    assert!(escalated > 0, "some lead was escalated during the simulation");
    let registered = history.lines().filter(|line| line.contains("\"type\":\"complaint.registered\"")).count();
    let split = history.lines().filter(|line| line.contains("\"type\":\"complaint.split_from\"")).count();
    assert_eq!((registered + split) as u64, leads, "the log holds every lead reported");

    // Served afterwards, with an auditor's token from the simulation.
    let served = serve(&data_dir, &scratch.0.join("serve.log"), "2027-01-02T09:00:00+08:00");
    let mut auditor = queries(served.address, &token_of(&data_dir, "auditor"));
    let deadline = Instant::now() + Duration::from_secs(30);
    let first_page = loop {
        let request = pb::ListComplaintsRequest { page_size: 500, ..pb::ListComplaintsRequest::default() };
        match auditor.list_complaints(request).await {
            Ok(page) if page.get_ref().total == leads => break page.into_inner(),
            outcome => {
                assert!(Instant::now() < deadline, "ListComplaints never showed {leads} leads: {outcome:?}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    let mut summaries = first_page.complaints;
    let mut token = first_page.next_page_token;
    while !token.is_empty() {
        let request =
            pb::ListComplaintsRequest { page_size: 500, page_token: token, ..pb::ListComplaintsRequest::default() };
        let page = auditor.list_complaints(request).await.expect("the next page").into_inner();
        summaries.extend(page.complaints);
        token = page.next_page_token;
    }
    assert_eq!(summaries.len() as u64, leads);
    let overdue: Vec<&pb::ComplaintSummary> = summaries.iter().filter(|summary| summary.overdue).collect();
    assert!(!overdue.is_empty(), "some lead is overdue");
    let complaint = auditor
        .get_complaint(pb::GetComplaintRequest { complaint_id: overdue[0].complaint_id.clone() })
        .await
        .expect("GetComplaint of an overdue lead")
        .into_inner();
    assert!(!complaint.open_deadlines.is_empty(), "an overdue lead has an open deadline: {complaint:?}");
    let statuses: Vec<pb::LeadStatus> = summaries.iter().map(pb::ComplaintSummary::status).collect();
    assert!(statuses.contains(&pb::LeadStatus::Cancelled), "some leads went all the way to the city review");
    assert!(statuses.contains(&pb::LeadStatus::Handling), "some leads are still being handled");

    let registrar = token_of(&data_dir, "registrar");
    let company = summaries[0].company.clone().expect("a company").uscc;
    let enterprise = queries(served.address, &registrar)
        .get_enterprise(pb::GetEnterpriseRequest { uscc: company })
        .await
        .expect("GetEnterprise as 住建's registrar")
        .into_inner();
    assert!(enterprise.leads > 0);
}

#[test]
fn simulate_refuses_a_span_past_what_the_provisional_calendar_carries() {
    let scratch = Scratch::new("span");
    let data_dir = scratch.0.join("late");
    let data = data_dir.to_string_lossy().into_owned();
    let output = run_tousu(&["simulate", "--data-dir", &data, "--from", "2100-06-01", "--days", "90"]);
    assert!(!output.status.success(), "a span ending on 2100-08-29 is refused");
    let refusal = stderr_of(&output);
    assert!(refusal.contains("2100-07-31") && refusal.contains("calendar"), "{refusal}");
    assert!(!data_dir.exists(), "nothing is written");
}
