//! `tousu calendar` against the real binary (interpretation 21): a provisional year shown day
//! by day, a year file checked against the provisional year, and a year loaded into a running
//! server through its local admin socket, after which the server's status and `tousu
//! projections status` no longer warn.

use tousu_e2e::server::{ServerOptions, TestServer, test_calendar_2027};
use tousu_e2e::{run_tousu, stderr_of, stdout_of};

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tousu-calendar-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

#[test]
fn interp_21_show_lists_a_provisional_years_rest_and_make_up_days() {
    let dir = scratch("show");
    let data_dir = dir.to_string_lossy().into_owned();
    let output = run_tousu(&["calendar", "show", "2027", "--data-dir", &data_dir]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    let text = stdout_of(&output);
    assert!(text.starts_with("2027: provisional (暂定), version 2027.provisional"), "{text}");
    // 初一 and 初二 on a weekend are made up on Tuesday 9 and Wednesday 10 February.
    assert!(text.contains("2027-02-09 周二  补休    春节"), "{text}");
    assert!(text.contains("2027-02-10 周三  补休    春节"), "{text}");
    assert!(text.contains("2027-04-05 周一  放假    清明节"), "{text}");
    assert!(!text.contains("调休上班"), "a provisional year has no adjusted working day: {text}");
    // Outside every year with data: refused, naming the year.
    let output = run_tousu(&["calendar", "show", "2101", "--data-dir", &data_dir]);
    assert!(!output.status.success());
    assert!(stderr_of(&output).contains("2101"), "{}", stderr_of(&output));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn interp_21_check_lists_how_a_year_file_differs_from_the_provisional_year() {
    let file = test_calendar_2027().to_string_lossy().into_owned();
    let output = run_tousu(&["calendar", "check", &file]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    let text = stdout_of(&output);
    assert!(text.contains("a valid year file for 2027, version 2027.official."), "{text}");
    // The file rests 11–12 February, which the provisional year works, and works Saturday 20.
    assert!(text.contains("+ 2027-02-11 周四 rests in the file (春节)"), "{text}");
    assert!(text.contains("* 2027-02-20 周六 is worked in exchange (调休上班, 春节)"), "{text}");
    // A file that is not valid names the entry at fault and exits non-zero.
    let dir = scratch("check");
    let broken = dir.join("2027.toml");
    let text = std::fs::read_to_string(test_calendar_2027()).expect("the fixture");
    std::fs::write(&broken, text.replace("date = \"2027-02-20\"", "date = \"2027-02-22\"")).expect("write");
    let output = run_tousu(&["calendar", "check", &broken.to_string_lossy()]);
    assert!(!output.status.success());
    let error = stderr_of(&output);
    assert!(error.contains("[[working_day]]") && error.contains("2027-02-22") && error.contains("Saturday"), "{error}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn interp_21_load_puts_a_year_in_force_on_the_running_server_and_the_warning_goes() {
    // The server's clock on 10 December 2026: 21 days before the last official year ends.
    let server = TestServer::start_with(ServerOptions {
        clock_start: Some("2026-12-10T09:00:00+08:00".to_owned()),
        ..ServerOptions::default()
    })
    .await;
    let data_dir = server.data_dir().to_string_lossy().into_owned();
    let status = run_tousu(&["calendar", "status", "--data-dir", &data_dir]);
    assert!(status.status.success(), "{}", stderr_of(&status));
    let text = stdout_of(&status);
    assert!(text.starts_with("calendar of the running server"), "{text}");
    assert!(
        text.contains(
            "warning: the last year with the State Council's holiday schedule is 2026, which ends in 21 days"
        ),
        "{text}"
    );
    let projections = run_tousu(&["projections", "status", "--data-dir", &data_dir]);
    assert!(stdout_of(&projections).contains("calendar: the last year"), "{}", stdout_of(&projections));

    let file = test_calendar_2027().to_string_lossy().into_owned();
    let load = run_tousu(&["calendar", "load", &file, "--data-dir", &data_dir]);
    assert!(load.status.success(), "{}", stderr_of(&load));
    assert!(
        stdout_of(&load).starts_with("2027: the official schedule (version 2027.official."),
        "{}",
        stdout_of(&load)
    );
    let again = run_tousu(&["calendar", "load", &file, "--data-dir", &data_dir]);
    assert!(stdout_of(&again).contains("already in force; nothing recorded"), "{}", stdout_of(&again));

    let status = stdout_of(&run_tousu(&["calendar", "status", "--data-dir", &data_dir]));
    assert!(status.contains("\n  2027  2027.official."), "{status}");
    assert!(status.contains("no warning: the last official year is 2027"), "{status}");
    let show = stdout_of(&run_tousu(&["calendar", "show", "2027", "--data-dir", &data_dir]));
    assert!(show.starts_with("2027: official, version 2027.official."), "{show}");
    let projections = stdout_of(&run_tousu(&["projections", "status", "--data-dir", &data_dir]));
    assert!(!projections.contains("calendar:"), "{projections}");
}
