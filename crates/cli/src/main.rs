//! The `tousu` command. It parses arguments and wires the library crates together; the
//! substance lives in those crates.

fn main() {}
