//! The key that signs settled weeks' history anchors: an Ed25519 secret key, 32 random bytes
//! from the operating system in a file of its own (`DATA_DIR/signing.key` unless
//! `--signing-key-file`, `TOUSU_SIGNING_KEY_FILE` or `signing_key_file` names another). `tousu
//! serve` creates it on its first start, readable by the owner only, as it does the identity
//! secret; the audit tools read it and never create one. Whoever holds the file can sign any
//! anchor: it is kept like the identity secret, and the commission keeps the public key that
//! `tousu audit key` prints, to check the anchors it exports with.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use clap::Args;
use tousu_read_weekly_summary::signing::AnchorSigner;

use crate::config::DEFAULT_DATA_DIR;

/// The key file's name in the data directory.
pub const FILE_NAME: &str = "signing.key";

/// Where an audit tool finds the signing key.
#[derive(Debug, Clone, Args)]
pub struct SigningKeyArgs {
    /// The data directory whose signing key to use [default: ./data].
    #[arg(long, env = "TOUSU_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The signing key file [default: DATA_DIR/signing.key].
    #[arg(long, env = "TOUSU_SIGNING_KEY_FILE", value_name = "FILE")]
    pub signing_key_file: Option<PathBuf>,
}

impl SigningKeyArgs {
    /// The key file these arguments name.
    pub fn path(&self) -> PathBuf {
        self.signing_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)).join(FILE_NAME))
    }
}

/// Creates a file holding 32 random bytes, readable and writable by its owner only, synced;
/// refuses to replace an existing file. `what` names it in errors.
pub fn create_random_secret(path: &Path, what: &str) -> Result<[u8; 32]> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|error| anyhow::anyhow!("no randomness from the system: {error}"))?;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {what} {}", path.display()))?;
    file.write_all(&secret)?;
    file.sync_all()?;
    Ok(secret)
}

/// Reads the signing key, creating a random one (readable by the owner only) on the first
/// start.
pub fn load_or_create(path: &Path) -> Result<AnchorSigner> {
    match fs::read(path) {
        Ok(bytes) => from_file_bytes(path, &bytes),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let secret = create_random_secret(path, "signing key")?;
            let signer = AnchorSigner::from_secret(&secret);
            tracing::info!(
                path = %path.display(),
                fingerprint = signer.public_key().fingerprint(),
                "created a new key signing the weekly history anchors; back it up with the data, and give its public key (tousu audit key) to the commission"
            );
            Ok(signer)
        }
        Err(error) => Err(error).with_context(|| format!("cannot read signing key {}", path.display())),
    }
}

/// Reads an existing signing key.
pub fn load(path: &Path) -> Result<AnchorSigner> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            bail!("no signing key at {}: tousu serve creates it on its first start", path.display())
        }
        Err(error) => return Err(error).with_context(|| format!("cannot read signing key {}", path.display())),
    };
    from_file_bytes(path, &bytes)
}

fn from_file_bytes(path: &Path, bytes: &[u8]) -> Result<AnchorSigner> {
    let Ok(secret) = <[u8; 32]>::try_from(bytes) else {
        bail!("signing key {} holds {} bytes, not the 32 of an ed25519 secret key", path.display(), bytes.len())
    };
    Ok(AnchorSigner::from_secret(&secret))
}
