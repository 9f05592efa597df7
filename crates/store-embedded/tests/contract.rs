//! The backend-neutral contract suite of `tousu-store`, run against the embedded store
//! on the real file system, and again with tiny segments so that segment rotation
//! happens inside the suite's appends.

mod common;

tousu_store::contract_tests!(common::TempHarness::new(tousu_store_embedded::DEFAULT_SEGMENT_SIZE));

mod tiny_segments {
    use super::common;
    tousu_store::contract_tests!(common::TempHarness::new(4096));
}
