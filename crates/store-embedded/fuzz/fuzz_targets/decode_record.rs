//! Fuzzes the embedded log's record decoder and index-file decoder with arbitrary
//! bytes: they must never panic, and whatever they accept must decode fully.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tousu_store_embedded::format::{decode_index_file, decode_record};

fuzz_target!(|bytes: &[u8]| {
    if let Ok(view) = decode_record(bytes) {
        assert!(view.len as usize <= bytes.len());
        let _ = view.stream();
        let _ = view.revision();
        let _ = view.id();
        let _ = view.to_recorded_event();
    }
    let _ = decode_index_file(bytes);
});
