//! Helpers shared by the end-to-end tests: locating and running the real `tousu` binary.
