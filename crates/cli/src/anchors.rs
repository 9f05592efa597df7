//! Signed weekly history anchors kept outside the data directory (`docs/storage-format.md`,
//! "Signed weekly anchors"). `tousu audit anchors` computes every settled week's anchor from
//! the log, as the weekly summary computes it, signs each with the server's key and writes
//! them as JSON lines; `tousu audit verify --anchors FILE` recomputes them from the log and
//! names every anchor the log no longer reproduces and every signature that does not verify.
//!
//! An anchor file is evidence about the log as it stood when the file was written: each line
//! says "up to this position, this many events hashed to this anchor", under the key's
//! signature. A log edited afterwards (even with its hash chains recomputed), or cut short, no
//! longer gives the same anchor at that position; a line edited to match such a log no longer
//! verifies against the public key.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use tousu_read_weekly_summary::signing::{
    AnchorChain, AnchorPublicKey, AnchorSigner, SIGNATURE_LEN, WeekAnchor, unhex, week_end,
};
use tousu_store::RecordedEvent;
use tousu_store::hash::hex;

use crate::log::Log;

/// One line of an anchor file: a settled week's anchor, signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnchorLine {
    /// The week's Monday, `YYYY-MM-DD`.
    pub week: NaiveDate,
    /// The position of the last event recorded before the week's end.
    pub position: u64,
    /// The number of events the anchor covers, from the start of the log.
    pub events: u64,
    /// The anchor, 64 lower-case hexadecimal digits.
    pub anchor: String,
    /// The Ed25519 signature of the statement, 128 lower-case hexadecimal digits.
    pub signature: String,
    /// The fingerprint of the key that signed it (the SHA-256 of the public key, hex).
    pub key_fingerprint: String,
}

impl AnchorLine {
    /// The line of `anchor`, signed by `signer`.
    pub fn signed(anchor: &WeekAnchor, signer: &AnchorSigner) -> AnchorLine {
        AnchorLine {
            week: anchor.week,
            position: anchor.position,
            events: anchor.events,
            anchor: hex(&anchor.anchor),
            signature: hex(&signer.sign(anchor)),
            key_fingerprint: signer.public_key().fingerprint(),
        }
    }

    /// The anchor the line states.
    fn week_anchor(&self) -> Result<WeekAnchor, String> {
        let anchor =
            unhex::<32>(&self.anchor).ok_or_else(|| format!("anchor {:?} is not 64 hex digits", self.anchor))?;
        Ok(WeekAnchor { week: self.week, position: self.position, events: self.events, anchor })
    }
}

/// Writes the signed anchor of every settled week of the log to `out`, one JSON line each:
/// every week an event was recorded in but the last, and the last too once it has ended at
/// `now`. Returns the anchors written.
pub fn export(log: &Log, signer: &AnchorSigner, now: DateTime<Utc>, out: &mut dyn Write) -> Result<Vec<WeekAnchor>> {
    let mut chain = AnchorChain::new();
    let mut written = Vec::new();
    let mut write = |anchor: WeekAnchor| -> Result<()> {
        serde_json::to_writer(&mut *out, &AnchorLine::signed(&anchor, signer))?;
        out.write_all(b"\n")?;
        written.push(anchor);
        Ok(())
    };
    log.for_each("anchoring", |event| match chain.push(event.position.0, event.recorded_at, &event.hash) {
        Some(settled) => write(settled),
        None => Ok(()),
    })?;
    if let Some(last) = chain.current().filter(|last| week_end(last.week) <= now) {
        write(last)?;
    }
    out.flush()?;
    Ok(written)
}

/// An anchor file being checked against the log, event by event.
pub struct AnchorFileCheck {
    path: PathBuf,
    lines: usize,
    /// The anchors still to be met, by the position each covers up to, with their line.
    expected: BTreeMap<u64, Vec<(usize, WeekAnchor)>>,
    chain: AnchorChain,
    last_position: Option<u64>,
    reproduced: usize,
    signatures_checked: Option<String>,
    findings: Vec<String>,
}

/// What checking an anchor file found.
pub struct AnchorFileOutcome {
    /// A sentence on what was checked, for the report of a log that verifies.
    pub summary: String,
    /// Every anchor the log does not reproduce, every line that is not a signed anchor, and
    /// every signature that does not verify.
    pub findings: Vec<String>,
}

impl AnchorFileCheck {
    /// Reads the anchor file at `path`, checking every line's signature against `public_key`
    /// when one is given.
    pub fn read(path: &Path, public_key: Option<&AnchorPublicKey>) -> Result<AnchorFileCheck> {
        let file = std::fs::File::open(path).with_context(|| format!("cannot open anchor file {}", path.display()))?;
        let mut check = AnchorFileCheck {
            path: path.to_owned(),
            lines: 0,
            expected: BTreeMap::new(),
            chain: AnchorChain::new(),
            last_position: None,
            reproduced: 0,
            signatures_checked: public_key.map(AnchorPublicKey::fingerprint),
            findings: Vec::new(),
        };
        for (index, text) in BufReader::new(file).lines().enumerate() {
            let text = text.with_context(|| format!("cannot read anchor file {}", path.display()))?;
            if text.trim().is_empty() {
                continue;
            }
            let number = index + 1;
            check.lines += 1;
            let parsed = serde_json::from_str::<AnchorLine>(&text)
                .map_err(|error| error.to_string())
                .and_then(|line| Ok((line.week_anchor()?, line)));
            let (anchor, line) = match parsed {
                Ok(parsed) => parsed,
                Err(error) => {
                    check.findings.push(format!("line {number} of {} is not a signed anchor: {error}", path.display()));
                    continue;
                }
            };
            if let Some(key) = public_key
                && let Some(finding) = signature_finding(&line, &anchor, key)
            {
                check.findings.push(format!("line {number} (the week of {}): {finding}", line.week));
            }
            check.expected.entry(anchor.position).or_default().push((number, anchor));
        }
        Ok(check)
    }

    /// Takes the next event of the log, in position order.
    pub fn event(&mut self, event: &RecordedEvent) {
        let position = event.position.0;
        self.chain.push(position, event.recorded_at, &event.hash);
        self.last_position = Some(position);
        let Some(expected) = self.expected.remove(&position) else { return };
        let log = self.chain.current().expect("an event was just pushed");
        for (number, anchor) in expected {
            if (anchor.events, anchor.anchor) == (log.events, log.anchor) {
                self.reproduced += 1;
            } else {
                self.findings.push(format!(
                    "line {number} (the week of {}): the log no longer reproduces the anchor at position {position}: \
                     the file has {} events hashing to {}, the log {} events hashing to {}",
                    anchor.week,
                    anchor.events,
                    hex(&anchor.anchor),
                    log.events,
                    hex(&log.anchor)
                ));
            }
        }
    }

    /// The outcome, once the log has been read to its end: an anchor never met is past the
    /// log's end (the log was cut) or at a position the log no longer holds.
    pub fn finish(mut self) -> AnchorFileOutcome {
        for (position, expected) in std::mem::take(&mut self.expected) {
            for (number, anchor) in expected {
                let finding = match self.last_position {
                    Some(last) if position <= last => {
                        format!("the log holds no event at position {position}: an event was removed")
                    }
                    Some(last) => format!(
                        "its anchor covers the log up to position {position}, past the log's end at position {last}: \
                         the log was cut or lost events"
                    ),
                    None => format!(
                        "its anchor covers the log up to position {position}, but the log is empty: the log was cut"
                    ),
                };
                self.findings.push(format!("line {number} (the week of {}): {finding}", anchor.week));
            }
        }
        let signatures = match &self.signatures_checked {
            Some(fingerprint) => format!("signatures checked against the key {fingerprint}"),
            None => "signatures not checked (no --public-key)".to_owned(),
        };
        AnchorFileOutcome {
            summary: format!(
                "{} of {} signed anchors of {} reproduced by the log, {signatures}",
                self.reproduced,
                self.lines,
                self.path.display()
            ),
            findings: self.findings,
        }
    }
}

/// What is wrong with a line's signature under `key`, if anything.
fn signature_finding(line: &AnchorLine, anchor: &WeekAnchor, key: &AnchorPublicKey) -> Option<String> {
    let Some(signature) = unhex::<SIGNATURE_LEN>(&line.signature) else {
        return Some(format!("the signature {:?} is not 128 hex digits", line.signature));
    };
    let fingerprint = key.fingerprint();
    match key.verify(anchor, &signature) {
        Ok(()) if line.key_fingerprint == fingerprint => None,
        Ok(()) => Some(format!(
            "the line names the key {}, but the signature is the key {fingerprint}'s",
            line.key_fingerprint
        )),
        Err(_) if line.key_fingerprint != fingerprint => Some(format!(
            "signed by another key ({}), not the public key given ({fingerprint}): the signature does not verify",
            line.key_fingerprint
        )),
        Err(error) => Some(format!("the {error}: the line was altered, or forged")),
    }
}
