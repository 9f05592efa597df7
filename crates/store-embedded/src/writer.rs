//! The single writer: a dedicated thread that group-commits appends.
//!
//! Appends queue on a channel. The writer takes everything queued, checks each append's
//! expectation in order against the durable state plus the appends before it in the same
//! group, assigns revisions, positions, the recorded-at time and the hash chain, encodes
//! the whole group into one buffer, writes it with one call and makes it durable with one
//! `fdatasync`. Only then does it publish the group to the index and answer every
//! append. A conflict in one append does not touch the others. If a write or sync fails,
//! every append of the group fails and the writer refuses all later appends
//! ([`AppendError::PreviousIo`]) until the log is reopened, because what reached the disk
//! is then unknown.

use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};
use tousu_store::hash::{HashedFields, ZERO_HASH, canonical_len, encode_canonical, hash_canonical};
use tousu_store::{AppendError, AppendResult, EventId, ExpectedRevision, Position, ProposedEvent, StreamName};

use crate::format::{BODY_PREFIX_LEN, FLAG_END_OF_APPEND, FRAME_HEADER_LEN, MAX_BODY_LEN, decode_record, seal_frame};
use crate::index::{Index, SegmentEntry};
use crate::io::Storage;
use crate::recovery::{ActiveSegment, create_segment, seal_segment};
use crate::{Shared, read_lock, write_lock};

/// The most appends one group commit takes.
const MAX_GROUP_APPENDS: usize = 4096;
/// The largest append, in encoded bytes; it keeps segment offsets within `u32`.
pub(crate) const MAX_APPEND_BYTES: u64 = 256 * 1024 * 1024;

/// One append waiting for the writer.
pub(crate) struct AppendRequest {
    pub stream: StreamName,
    pub expected: ExpectedRevision,
    pub events: Vec<ProposedEvent>,
    pub reply: oneshot::Sender<Result<AppendResult, AppendError>>,
}

/// What the writer's channel carries.
pub(crate) enum Message {
    Append(AppendRequest),
    /// Finish the appends queued before this, then stop; answer when stopped.
    Close(oneshot::Sender<()>),
}

/// An event encoded in the current group, not yet durable.
struct PendingEvent {
    slot: u32,
    id: u128,
    position: u64,
    offset: u32,
    end: u64,
    hash: [u8; 32],
}

/// Where an id is stored, or pending in the current group.
struct IdPlace {
    stream: StreamName,
    revision: u64,
    position: u64,
}

/// The current group: what it adds on top of the durable index.
#[derive(Default)]
struct Group {
    /// Touched streams: next revision and last hash.
    streams: HashMap<u32, (u64, [u8; 32])>,
    /// Streams created in this group, in slot order from `first_new_slot`.
    new_streams: Vec<StreamName>,
    new_stream_slots: HashMap<StreamName, u32>,
    first_new_slot: u32,
    ids: HashMap<u128, (u32, u64, u64)>,
    events: Vec<PendingEvent>,
}

enum Outcome {
    /// Answer once the group is durable.
    Ok(AppendResult),
    /// Refused without writing anything.
    Refused(AppendError),
}

pub(crate) struct Writer {
    pub shared: Arc<Shared>,
    pub storage: Arc<dyn Storage>,
    pub dir: PathBuf,
    pub active: ActiveSegment,
    pub segment_size: u64,
    pub next_position: u64,
    pub poisoned: bool,
    pub buf: Vec<u8>,
    pub lock: Box<dyn Any + Send + Sync>,
}

impl Writer {
    /// Runs until the store is closed or dropped.
    pub fn run(mut self, mut receiver: mpsc::Receiver<Message>) {
        // Should the writer ever panic, subscribers must still learn that no more events
        // will come, instead of waiting forever.
        let _closes_on_exit = ClosesOnExit(Arc::clone(&self.shared));
        let mut appends = Vec::new();
        let mut closers = Vec::new();
        while let Some(first) = receiver.blocking_recv() {
            let mut message = Some(first);
            while let Some(next) = message.take() {
                match next {
                    Message::Append(request) if closers.is_empty() => appends.push(request),
                    Message::Append(request) => {
                        let _ = request.reply.send(Err(AppendError::Closed));
                    }
                    Message::Close(reply) => closers.push(reply),
                }
                if appends.len() < MAX_GROUP_APPENDS {
                    message = receiver.try_recv().ok();
                }
            }
            self.commit_group(std::mem::take(&mut appends));
            if !closers.is_empty() {
                receiver.close();
                while let Ok(message) = receiver.try_recv() {
                    match message {
                        Message::Append(request) => {
                            let _ = request.reply.send(Err(AppendError::Closed));
                        }
                        Message::Close(reply) => closers.push(reply),
                    }
                }
                break;
            }
        }
        self.shared.closed.store(true, Ordering::SeqCst);
        self.shared.head.send_modify(|state| state.closed = true);
        // Release the directory lock before anyone is told the store is closed.
        drop(std::mem::replace(&mut self.lock, Box::new(())));
        for reply in closers {
            let _ = reply.send(());
        }
    }

    fn commit_group(&mut self, appends: Vec<AppendRequest>) {
        if appends.is_empty() {
            return;
        }
        if self.poisoned {
            for request in appends {
                let _ = request.reply.send(Err(AppendError::PreviousIo));
            }
            return;
        }
        let recorded_at = Utc::now();
        let mut group =
            Group { first_new_slot: read_lock(&self.shared.index).streams.len() as u32, ..Group::default() };
        let mut outcomes = Vec::with_capacity(appends.len());
        let mut failure: Option<Arc<io::Error>> = None;
        for request in &appends {
            if failure.is_some() {
                outcomes.push(Outcome::Refused(AppendError::PreviousIo));
                continue;
            }
            match self.plan(request, &mut group, recorded_at) {
                Ok(outcome) => outcomes.push(outcome),
                Err(error) => {
                    failure = Some(Arc::new(error));
                    outcomes.push(Outcome::Refused(AppendError::PreviousIo));
                }
            }
        }
        if failure.is_none() && !group.events.is_empty() {
            failure = self.flush().err().map(Arc::new);
        }
        if let Some(error) = failure {
            self.poisoned = true;
            self.shared.poisoned.store(true, Ordering::SeqCst);
            tracing::error!(%error, "a write or sync failed; the store refuses writes until reopened");
            self.shared.refusal.send_replace(Some(format!(
                "a write or sync of the event log in {} failed: {error}; it refuses writes until reopened",
                self.dir.display()
            )));
            for (request, outcome) in appends.into_iter().zip(outcomes) {
                let answer = match outcome {
                    Outcome::Ok(_) | Outcome::Refused(AppendError::PreviousIo) => {
                        Err(AppendError::Io { stream: request.stream.clone(), source: Arc::clone(&error) })
                    }
                    Outcome::Refused(refused) => Err(refused),
                };
                let _ = request.reply.send(answer);
            }
            return;
        }
        self.publish(group);
        for (request, outcome) in appends.into_iter().zip(outcomes) {
            let answer = match outcome {
                Outcome::Ok(result) => Ok(result),
                Outcome::Refused(error) => Err(error),
            };
            let _ = request.reply.send(answer);
        }
    }

    /// Writes what the buffer holds to the active segment and makes it durable.
    fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.active.file.write_at(&self.buf, self.active.len)?;
            self.active.len += self.buf.len() as u64;
            self.buf.clear();
        }
        self.active.file.sync_data()
    }

    /// Makes the group visible: index first, then the head that wakes subscribers.
    fn publish(&mut self, group: Group) {
        let Some(last) = group.events.last() else {
            return;
        };
        let head = last.position;
        {
            let mut index = write_lock(&self.shared.index);
            for name in &group.new_streams {
                index.slot_for(name.as_str());
            }
            for event in &group.events {
                index.push_record(event.slot, event.id, event.position, event.offset, event.end);
                index.streams[event.slot as usize].last_hash = event.hash;
            }
        }
        self.shared.head.send_modify(|state| state.head = head);
    }

    /// Decides one append of the group and encodes its events into the buffer; an
    /// `Err` is an I/O failure while rotating segments.
    fn plan(&mut self, request: &AppendRequest, group: &mut Group, recorded_at: DateTime<Utc>) -> io::Result<Outcome> {
        let stream = &request.stream;
        let events = &request.events;
        if events.is_empty() {
            return Ok(Outcome::Refused(AppendError::EmptyAppend { stream: stream.clone() }));
        }
        if events.len() > 1 {
            let mut seen = HashSet::with_capacity(events.len());
            if let Some(event) = events.iter().find(|e| !seen.insert(e.id)) {
                return Ok(Outcome::Refused(AppendError::DuplicateEventIdInAppend {
                    id: event.id,
                    stream: stream.clone(),
                }));
            }
        }
        let mut append_bytes = 0u64;
        for event in events {
            let body = BODY_PREFIX_LEN
                + canonical_len(&HashedFields { stream, revision: 0, recorded_at, prev_hash: &ZERO_HASH, event });
            if body > MAX_BODY_LEN as usize {
                return Ok(Outcome::Refused(AppendError::EventTooLarge {
                    id: event.id,
                    len: body as u64,
                    max: u64::from(MAX_BODY_LEN),
                }));
            }
            append_bytes += (FRAME_HEADER_LEN + body) as u64;
        }
        if append_bytes > MAX_APPEND_BYTES {
            return Ok(Outcome::Refused(AppendError::AppendTooLarge {
                stream: stream.clone(),
                len: append_bytes,
                max: MAX_APPEND_BYTES,
            }));
        }

        let index = read_lock(&self.shared.index);
        let slot = index.stream_slots.get(stream).or_else(|| group.new_stream_slots.get(stream)).copied();
        let (current, last_hash) = match slot {
            Some(slot) => match group.streams.get(&slot) {
                Some(&(next, hash)) => (next.checked_sub(1), hash),
                None => {
                    let entry = &index.streams[slot as usize];
                    ((entry.positions.len() as u64).checked_sub(1), entry.last_hash)
                }
            },
            None => (None, ZERO_HASH),
        };

        if let Some(outcome) = self.idempotency(&index, group, request, slot)? {
            return Ok(outcome);
        }
        if !request.expected.is_met_by(current) {
            return Ok(Outcome::Refused(AppendError::WrongExpectedRevision {
                stream: stream.clone(),
                expected: request.expected,
                current,
            }));
        }
        drop(index);

        let pending_len = self.active.len + self.buf.len() as u64;
        if !self.active.records.is_empty() && pending_len + append_bytes > self.segment_size {
            self.rotate(group)?;
        }
        let slot = match slot {
            Some(slot) => slot,
            None => {
                let slot = group.first_new_slot + group.new_streams.len() as u32;
                group.new_streams.push(stream.clone());
                group.new_stream_slots.insert(stream.clone(), slot);
                slot
            }
        };
        let first_revision = current.map_or(0, |c| c + 1);
        let mut prev_hash = last_hash;
        for (i, event) in events.iter().enumerate() {
            let revision = first_revision + i as u64;
            let position = self.next_position;
            let start = self.buf.len();
            self.buf.resize(start + FRAME_HEADER_LEN + BODY_PREFIX_LEN, 0);
            let flags = if i + 1 == events.len() { FLAG_END_OF_APPEND } else { 0 };
            let body = start + FRAME_HEADER_LEN;
            self.buf[body] = flags;
            self.buf[body + 1..body + 9].copy_from_slice(&position.to_le_bytes());
            let canonical = self.buf.len();
            encode_canonical(
                &mut self.buf,
                &HashedFields { stream, revision, recorded_at, prev_hash: &prev_hash, event },
            )
            .expect("lengths were checked against MAX_BODY_LEN");
            let hash = hash_canonical(&self.buf[canonical..]);
            self.buf[body + 9..body + 41].copy_from_slice(&hash);
            seal_frame(&mut self.buf, start);
            let offset = self.active.len + start as u64;
            let end = self.active.len + self.buf.len() as u64;
            let id = event.id.as_u128();
            group.events.push(PendingEvent { slot, id, position, offset: offset as u32, end, hash });
            group.ids.insert(id, (slot, revision, position));
            self.active.records.push((offset as u32, slot, *event.id.as_bytes()));
            self.active.stream_last.insert(slot, hash);
            prev_hash = hash;
            self.next_position += 1;
        }
        group.streams.insert(slot, (first_revision + events.len() as u64, prev_hash));
        Ok(Outcome::Ok(AppendResult {
            revision: first_revision + events.len() as u64 - 1,
            position: Position(self.next_position - 1),
        }))
    }

    /// Recognises a repeated append (all ids stored at the place this append would give
    /// them) and refuses ids stored anywhere else.
    fn idempotency(
        &self,
        index: &Index,
        group: &Group,
        request: &AppendRequest,
        slot: Option<u32>,
    ) -> io::Result<Option<Outcome>> {
        let events = &request.events;
        let Some((first_stored, place)) = events
            .iter()
            .enumerate()
            .find_map(|(i, e)| self.find_id(index, group, e.id).map(|p| (i, p)))
            .map(|(i, place)| (i, place.map(|p| (events[i].id, p))))
        else {
            return Ok(None);
        };
        let (id, place) = place?;
        let stream = &request.stream;
        if first_stored == 0
            && place.stream == *stream
            && request.expected.admits_first_revision(place.revision)
            && slot.is_some()
        {
            let mut last_position = place.position;
            let mut at_place = true;
            for (i, event) in events.iter().enumerate().skip(1) {
                let revision = place.revision + i as u64;
                match self.find_id(index, group, event.id).transpose()? {
                    Some(found) if found.stream == *stream && found.revision == revision => {
                        last_position = found.position;
                    }
                    _ => {
                        at_place = false;
                        break;
                    }
                }
            }
            if at_place {
                return Ok(Some(Outcome::Ok(AppendResult {
                    revision: place.revision + events.len() as u64 - 1,
                    position: Position(last_position),
                })));
            }
        }
        Ok(Some(Outcome::Refused(AppendError::DuplicateEventIdElsewhere {
            id,
            stream: place.stream,
            revision: place.revision,
        })))
    }

    /// Where `id` is stored or pending, reading the record from disk when only its
    /// position is known.
    fn find_id(&self, index: &Index, group: &Group, id: EventId) -> Option<io::Result<IdPlace>> {
        let key = id.as_u128();
        if let Some(&(slot, revision, position)) = group.ids.get(&key) {
            let stream = match slot.checked_sub(group.first_new_slot) {
                Some(new) => group.new_streams[new as usize].clone(),
                None => index.streams[slot as usize].name.clone(),
            };
            return Some(Ok(IdPlace { stream, revision, position }));
        }
        let position = *index.ids.get(&key)?;
        Some(read_place(index, position))
    }

    /// Seals the active segment (its data synced, its index file written) and starts a
    /// new one, durably, directory entry included.
    fn rotate(&mut self, group: &Group) -> io::Result<()> {
        self.flush()?;
        {
            let index = read_lock(&self.shared.index);
            let name_of = |slot: u32| match slot.checked_sub(group.first_new_slot) {
                Some(new) => group.new_streams[new as usize].to_string(),
                None => index.streams[slot as usize].name.to_string(),
            };
            seal_segment(&*self.storage, &self.dir, &self.active, name_of)?;
        }
        let first_position = self.next_position;
        let (path, file) = create_segment(&*self.storage, &self.dir, first_position)?;
        write_lock(&self.shared.index).segments.push(SegmentEntry {
            first_position,
            path,
            file: Arc::clone(&file),
            offsets: Vec::new(),
            end: crate::format::SEGMENT_HEADER_LEN,
        });
        self.active = ActiveSegment {
            first_position,
            file,
            len: crate::format::SEGMENT_HEADER_LEN,
            records: Vec::new(),
            stream_last: HashMap::new(),
        };
        tracing::debug!(first_position, "started a new segment");
        Ok(())
    }
}

/// Marks the store closed when the writer stops, however it stops.
struct ClosesOnExit(Arc<Shared>);

impl Drop for ClosesOnExit {
    fn drop(&mut self) {
        self.0.closed.store(true, Ordering::SeqCst);
        self.0.head.send_modify(|state| state.closed = true);
    }
}

/// The stream and revision of the durable record at `position`.
fn read_place(index: &Index, position: u64) -> io::Result<IdPlace> {
    let location =
        index.locate(position).ok_or_else(|| io::Error::other(format!("indexed position {position} has no record")))?;
    let mut bytes = vec![0u8; (location.end - location.offset) as usize];
    location.file.read_at(&mut bytes, location.offset)?;
    let view = decode_record(&bytes).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("record at {}@{}: {e}", location.path.display(), location.offset),
        )
    })?;
    let stream = view
        .stream()
        .ok()
        .and_then(|s| StreamName::new(s).ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad stream name"))?;
    Ok(IdPlace { stream, revision: view.revision(), position })
}
