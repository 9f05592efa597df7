//! Valid requests and unique identifiers for the tests: request ids, companies' unified social
//! credit codes with a correct check character, complainants and registrations.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tousu_api::pb;

static NEXT: AtomicU64 = AtomicU64::new(1);

fn next() -> u64 {
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A request id no other request of this test run uses.
pub fn request_id() -> String {
    format!("e2e-{}-{}", std::process::id(), next())
}

/// The example code of the brief; its check character is valid.
pub const EXAMPLE_USCC: &str = "91350100M000100Y43";

/// The 31 characters of a unified social credit code, in value order (GB 32100-2015).
const USCC_ALPHABET: &[u8] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
/// The weights of positions 1 to 17, as GB 32100-2015 tabulates them.
const USCC_WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];

/// The check character GB 32100-2015 calls for after these 17 characters.
pub fn uscc_check_character(first_17: &str) -> char {
    assert_eq!(first_17.len(), 17, "17 characters");
    let sum: u32 = first_17
        .bytes()
        .zip(USCC_WEIGHTS)
        .map(|(byte, weight)| {
            let value = USCC_ALPHABET.iter().position(|&c| c == byte).expect("a character of the alphabet");
            value as u32 * weight
        })
        .sum();
    char::from(USCC_ALPHABET[((31 - sum % 31) % 31) as usize])
}

/// A valid code for a company no other test uses.
pub fn unique_uscc() -> String {
    // 91 (enterprise), 350100 (the administrative division), then a 9-character
    // organisation code made unique from the process and a counter.
    let mut unique = (u64::from(std::process::id()) << 24) | next();
    let mut organisation = String::new();
    for _ in 0..9 {
        organisation.push(char::from(USCC_ALPHABET[(unique % 31) as usize]));
        unique /= 31;
    }
    let first_17 = format!("91350100{organisation}");
    format!("{first_17}{}", uscc_check_character(&first_17))
}

/// An instant as a protocol timestamp.
pub fn timestamp(instant: SystemTime) -> prost_types::Timestamp {
    let since_epoch = instant.duration_since(UNIX_EPOCH).expect("after 1970");
    prost_types::Timestamp {
        seconds: i64::try_from(since_epoch.as_secs()).expect("in range"),
        nanos: i32::try_from(since_epoch.subsec_nanos()).expect("in range"),
    }
}

/// A moment ago, as a protocol timestamp (a complaint received before it is registered).
pub fn moments_ago() -> prost_types::Timestamp {
    timestamp(SystemTime::now() - Duration::from_secs(60))
}

/// A named complainant with a mainland mobile number derived from `n`.
pub fn complainant(n: u64) -> pb::Complainant {
    pb::Complainant {
        anonymous: false,
        name: format!("投诉人{n}"),
        contact: format!("139{:08}", n % 100_000_000),
        id_number: String::new(),
    }
}

/// A named complainant no other registration of this run uses.
pub fn unique_complainant() -> pb::Complainant {
    complainant(next())
}

/// A valid registration by the published hotline about `uscc`.
pub fn registration(uscc: &str) -> pb::RegisterRequest {
    pb::RegisterRequest {
        request_id: request_id(),
        channel: pb::Channel::Hotline.into(),
        received_at: Some(moments_ago()),
        complainant: Some(unique_complainant()),
        content: "电梯长期停运，物业不维修".to_owned(),
        company: Some(pb::CompanyRef { uscc: uscc.to_owned(), name: "某某物业服务有限公司".to_owned() }),
        place: Some(pb::Place {
            community: "幸福小区".to_owned(),
            district: "鼓楼区".to_owned(),
            street: "东街街道".to_owned(),
        }),
        hotline_ticket: String::new(),
    }
}

/// A valid 12345 registration (HDL-4) about `uscc`, with its work-order number.
pub fn hotline_12345_registration(uscc: &str) -> pb::RegisterRequest {
    pb::RegisterRequest {
        channel: pb::Channel::Hotline12345.into(),
        hotline_ticket: format!("12345-{}", next()),
        ..registration(uscc)
    }
}

/// An instant written in RFC 3339, as the protocol carries it.
pub fn timestamp_of(text: &str) -> prost_types::Timestamp {
    let instant = chrono::DateTime::parse_from_rfc3339(text).unwrap_or_else(|error| panic!("{text}: {error}"));
    prost_types::Timestamp { seconds: instant.timestamp(), nanos: 0 }
}

/// The README's registration (3号楼 of 福苑小区, 鼓楼区), received at `received_at`, by a new
/// complainant, about the company `uscc`.
pub fn readme_registration(received_at: &str, uscc: &str) -> pb::RegisterRequest {
    pb::RegisterRequest {
        request_id: request_id(),
        channel: pb::Channel::Hotline.into(),
        received_at: Some(timestamp_of(received_at)),
        complainant: Some(unique_complainant()),
        content: "3号楼电梯停运三天无人维修".to_owned(),
        company: Some(pb::CompanyRef { uscc: uscc.to_owned(), name: "榕城物业服务有限公司".to_owned() }),
        place: Some(pb::Place {
            community: "福苑小区".to_owned(),
            district: "鼓楼区".to_owned(),
            street: "东街街道".to_owned(),
        }),
        hotline_ticket: String::new(),
    }
}
