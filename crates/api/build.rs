//! Compiles `proto/tousu/v1/*.proto` with protox (pure Rust, no system `protoc`) and keeps the
//! file descriptor set, with its imports, for server reflection.

use std::path::PathBuf;

use prost::Message;

const FILES: [&str; 7] = [
    "tousu/v1/admin.proto",
    "tousu/v1/common.proto",
    "tousu/v1/complaints.proto",
    "tousu/v1/enterprises.proto",
    "tousu/v1/queries.proto",
    "tousu/v1/audit.proto",
    "tousu/v1/read_models.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    for file in FILES {
        println!("cargo:rerun-if-changed={}", root.join(file).display());
    }
    let mut compiler = protox::Compiler::new([&root])?;
    compiler.include_imports(true).include_source_info(true);
    compiler.open_files(FILES)?;
    let with_imports = compiler.file_descriptor_set();
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("tousu_descriptor.bin"), with_imports.encode_to_vec())?;
    // The well-known types map to prost-types (prost-build's default extern path), so only
    // tousu's own package is generated. Every message knows its name (`prost::Name`), and the
    // services use tousu's codec, which refuses a request that does not decode as
    // INVALID_ARGUMENT naming the RPC's rule (`src/codec.rs`) where prost's answers INTERNAL.
    let mut config = tonic_build::Config::new();
    config.enable_type_names();
    tonic_build::configure()
        .build_client(true)
        .build_server(true)
        .codec_path("crate::codec::TousuCodec")
        .compile_fds_with_config(config, with_imports)?;
    Ok(())
}
