//! Bearer tokens: issued to a principal (person, body, role), stored only as SHA-256 hashes in
//! `tokens.json` in the data directory, listed and revoked by `tousu token`, and looked up by
//! the server, which reloads the file when it changes so a revocation takes effect at once.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tousu_domain::actor::Role;
use tousu_domain::ids::BodyCode;

use crate::access::Principal;

/// The token file's name in the data directory.
pub const TOKEN_FILE: &str = "tokens.json";

/// How often the server looks at the token file's modification time.
const RELOAD_CHECK: Duration = Duration::from_millis(250);

/// Why a token operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The role needs a body, or the body does not fit the role.
    #[error("role {role} {problem}")]
    BodyForRole {
        /// The role.
        role: Role,
        /// What is wrong.
        problem: &'static str,
    },
    /// The person's name is empty.
    #[error("the person's name is empty")]
    EmptyPerson,
    /// No token has this id.
    #[error("no token with id {0}")]
    UnknownId(String),
    /// The token file cannot be read or written.
    #[error("token file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// The token file is not valid.
    #[error("token file {path} is not valid: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// A token as stored: its hash, never the token itself.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenRecord {
    /// A short public id, to list and revoke the token.
    pub id: String,
    /// SHA-256 of the token, hex.
    pub sha256: String,
    /// The person.
    pub person: String,
    /// The body, where the role has one.
    pub body: Option<BodyCode>,
    /// The role.
    pub role: Role,
    /// When it was issued.
    pub issued_at: DateTime<Utc>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct TokenFile {
    tokens: Vec<TokenRecord>,
}

/// The SHA-256 of a token in lower-case hex, as the token file stores it.
fn hash_token(token: &str) -> String {
    tousu_store::hash::hex(&Sha256::digest(token.as_bytes()))
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> TokenError + '_ {
    move |source| TokenError::Io { path: path.to_owned(), source }
}

fn read_file(path: &Path) -> Result<TokenFile, TokenError> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|error| TokenError::Corrupt { path: path.to_owned(), reason: error.to_string() }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(TokenFile::default()),
        Err(error) => Err(io_error(path)(error)),
    }
}

fn write_file(path: &Path, file: &TokenFile) -> Result<(), TokenError> {
    let temporary = path.with_extension("json.tmp");
    let bytes = serde_json::to_vec_pretty(file)
        .map_err(|error| TokenError::Corrupt { path: path.to_owned(), reason: error.to_string() })?;
    let mut out = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)
        .map_err(io_error(&temporary))?;
    out.write_all(&bytes).map_err(io_error(&temporary))?;
    out.sync_all().map_err(io_error(&temporary))?;
    fs::rename(&temporary, path).map_err(io_error(path))
}

/// Checks that a role and a body fit together: roles that act on leads need a body; the
/// street-office role belongs to street offices and communities.
pub fn check_body_for_role(role: Role, body: Option<BodyCode>) -> Result<(), TokenError> {
    match (role, body) {
        (Role::Registrar | Role::Handler | Role::CityReviewer | Role::StreetOffice, None) => {
            Err(TokenError::BodyForRole { role, problem: "needs a body (--body)" })
        }
        (Role::StreetOffice, Some(body)) if !matches!(body, BodyCode::JB | BodyCode::SQ) => {
            Err(TokenError::BodyForRole { role, problem: "belongs to a street office (JB) or community (SQ)" })
        }
        _ => Ok(()),
    }
}

/// A newly issued token: the secret is shown once and never stored.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The public id.
    pub id: String,
    /// The bearer token to give to the client.
    pub token: String,
}

/// Issues a token for a principal, recording its hash in the data directory.
pub fn issue(data_dir: &Path, person: &str, body: Option<BodyCode>, role: Role) -> Result<IssuedToken, TokenError> {
    if person.trim().is_empty() {
        return Err(TokenError::EmptyPerson);
    }
    check_body_for_role(role, body)?;
    let path = data_dir.join(TOKEN_FILE);
    fs::create_dir_all(data_dir).map_err(io_error(data_dir))?;
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|error| TokenError::Io {
        path: path.clone(),
        source: std::io::Error::other(format!("no randomness from the system: {error}")),
    })?;
    let secret_hex: String = secret.iter().map(|byte| format!("{byte:02x}")).collect();
    let token = format!("tsu_{secret_hex}");
    let id = format!("t{}", &hash_token(&token)[..10]);
    let mut file = read_file(&path)?;
    file.tokens.push(TokenRecord {
        id: id.clone(),
        sha256: hash_token(&token),
        person: person.trim().to_owned(),
        body,
        role,
        issued_at: Utc::now(),
        revoked_at: None,
    });
    write_file(&path, &file)?;
    Ok(IssuedToken { id, token })
}

/// Every token recorded, revoked ones included.
pub fn list(data_dir: &Path) -> Result<Vec<TokenRecord>, TokenError> {
    Ok(read_file(&data_dir.join(TOKEN_FILE))?.tokens)
}

/// Revokes a token by id; revoking twice keeps the first revocation time.
pub fn revoke(data_dir: &Path, id: &str) -> Result<TokenRecord, TokenError> {
    let path = data_dir.join(TOKEN_FILE);
    let mut file = read_file(&path)?;
    let record =
        file.tokens.iter_mut().find(|record| record.id == id).ok_or_else(|| TokenError::UnknownId(id.to_owned()))?;
    record.revoked_at.get_or_insert_with(Utc::now);
    let revoked = record.clone();
    write_file(&path, &file)?;
    Ok(revoked)
}

#[derive(Debug)]
struct Loaded {
    stamp: Option<FileStamp>,
    checked: Instant,
    principals: HashMap<String, Principal>,
}

/// What tells one version of the token file from another. The modification time alone does
/// not: the kernel stamps it from a coarse clock, so a revocation written within a few
/// milliseconds of the previous write keeps the same time and would go unseen. Every write
/// replaces the file by a rename, so its inode changes too, and a revocation changes its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    inode: u64,
    len: u64,
}

fn stamp(path: &Path) -> Option<FileStamp> {
    use std::os::unix::fs::MetadataExt as _;
    let meta = fs::metadata(path).ok()?;
    Some(FileStamp { modified: meta.modified().ok(), inode: meta.ino(), len: meta.len() })
}

/// The server's view of the token file.
#[derive(Debug)]
pub struct TokenRegistry {
    path: PathBuf,
    loaded: RwLock<Loaded>,
}

impl TokenRegistry {
    /// Reads the token file of a data directory (a missing file means no tokens yet).
    pub fn open(data_dir: &Path) -> Result<TokenRegistry, TokenError> {
        let path = data_dir.join(TOKEN_FILE);
        let registry = TokenRegistry {
            loaded: RwLock::new(Loaded { stamp: None, checked: Instant::now(), principals: HashMap::new() }),
            path,
        };
        registry.reload()?;
        Ok(registry)
    }

    fn reload(&self) -> Result<(), TokenError> {
        let stamp = stamp(&self.path);
        let file = read_file(&self.path)?;
        let principals = file
            .tokens
            .into_iter()
            .filter(|record| record.revoked_at.is_none())
            .map(|record| (record.sha256, Principal { person: record.person, body: record.body, role: record.role }))
            .collect();
        let mut loaded = self.loaded.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        *loaded = Loaded { stamp, checked: Instant::now(), principals };
        Ok(())
    }

    fn reload_if_changed(&self) {
        {
            let loaded = self.loaded.read().unwrap_or_else(|poisoned| poisoned.into_inner());
            if loaded.checked.elapsed() < RELOAD_CHECK {
                return;
            }
            if stamp(&self.path) == loaded.stamp {
                drop(loaded);
                self.loaded.write().unwrap_or_else(|poisoned| poisoned.into_inner()).checked = Instant::now();
                return;
            }
        }
        if let Err(error) = self.reload() {
            // Keep serving with the tokens known before; a broken file must not lock
            // everyone out, and must not let revoked tokens back in either.
            tracing::error!(%error, "token file not reloaded");
        }
    }

    /// The principal a bearer token belongs to, if it is known and not revoked.
    pub fn authenticate(&self, token: &str) -> Option<Principal> {
        self.reload_if_changed();
        let loaded = self.loaded.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        loaded.principals.get(&hash_token(token)).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tousu-tokens-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_token_authenticates_until_revoked_and_only_its_hash_is_stored() {
        let dir = temp_dir("revoke");
        let issued = issue(&dir, "王芳", Some(BodyCode::SJ), Role::Handler).unwrap();
        let registry = TokenRegistry::open(&dir).unwrap();
        let principal = registry.authenticate(&issued.token).expect("known token");
        assert_eq!(principal, Principal { person: "王芳".into(), body: Some(BodyCode::SJ), role: Role::Handler });
        assert!(registry.authenticate("tsu_unknown").is_none());
        let stored = fs::read_to_string(dir.join(TOKEN_FILE)).unwrap();
        assert!(!stored.contains(&issued.token), "the token itself is never stored");

        revoke(&dir, &issued.id).unwrap();
        std::thread::sleep(RELOAD_CHECK + Duration::from_millis(50));
        assert!(registry.authenticate(&issued.token).is_none(), "revocation takes effect without a restart");
        assert!(list(&dir).unwrap()[0].revoked_at.is_some());
        fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn roles_that_act_on_leads_need_a_fitting_body() {
        let dir = temp_dir("bodies");
        assert!(matches!(issue(&dir, "王芳", None, Role::Handler), Err(TokenError::BodyForRole { .. })));
        assert!(matches!(
            issue(&dir, "王芳", Some(BodyCode::SJ), Role::StreetOffice),
            Err(TokenError::BodyForRole { .. })
        ));
        assert!(issue(&dir, "纪委", None, Role::Auditor).is_ok());
        assert!(matches!(revoke(&dir, "t-nope"), Err(TokenError::UnknownId(_))));
        fs::remove_dir_all(&dir).ok();
    }
}
