//! The writer thread: the only code that writes log events and completed
//! counts to the store. It drains the bounded event queue into a batch and
//! commits the batch, with the completed totals that changed, in one
//! transaction when the batch is full, every `flush_every`, on request
//! ([`Msg::Flush`]) and at stop. The UDP workers only ever `try_send` to it.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use log::{debug, warn};

use super::store::{Batch, StoreError};
use super::Shared;
use super::SwarmEvent;

pub(super) enum Msg {
    Event(SwarmEvent),
    /// Commit now and say how it went.
    Flush(Sender<Result<(), StoreError>>),
    /// Commit what is queued, then end.
    Stop,
}

pub(super) fn run(shared: Arc<Shared>, rx: Receiver<Msg>) {
    let limits = shared.limits;
    let mut batch = Batch::default();
    let mut next = Instant::now() + limits.flush_every;
    loop {
        let mut replies = Vec::new();
        let mut stop = false;
        let wait = next.saturating_duration_since(Instant::now());
        match rx.recv_timeout(wait) {
            Ok(m) => take(m, &mut batch, &mut replies, &mut stop),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => stop = true,
        }
        while batch.events.len() < limits.max_batch && !stop {
            match rx.try_recv() {
                Ok(m) => take(m, &mut batch, &mut replies, &mut stop),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => stop = true,
            }
        }
        let now = Instant::now();
        if stop || !replies.is_empty() || batch.events.len() >= limits.max_batch || now >= next {
            let result = commit(&shared, &mut batch);
            next = Instant::now() + limits.flush_every;
            for r in replies {
                let _ = r.send(result.clone());
            }
        }
        if stop {
            // Whatever was queued behind the stop is committed too.
            while let Ok(m) = rx.try_recv() {
                let mut ignored = false;
                let mut replies = Vec::new();
                take(m, &mut batch, &mut replies, &mut ignored);
                for r in replies {
                    let _ = r.send(Ok(()));
                }
            }
            let _ = commit(&shared, &mut batch);
            return;
        }
    }
}

fn take(
    m: Msg,
    batch: &mut Batch,
    replies: &mut Vec<Sender<Result<(), StoreError>>>,
    stop: &mut bool,
) {
    match m {
        Msg::Event(e) => batch.events.push(e),
        Msg::Flush(r) => replies.push(r),
        Msg::Stop => *stop = true,
    }
}

/// Writes the batch's events and the changed counts in one transaction.
/// On failure the events are lost (counted as dropped) and the counts are
/// marked to be written again next time.
pub(super) fn commit(shared: &Shared, batch: &mut Batch) -> Result<(), StoreError> {
    batch.completed.clear();
    shared.counts.take_dirty(&mut batch.completed);
    if batch.is_empty() {
        return Ok(());
    }
    let n = batch.events.len() as u64;
    let result = shared.store().write(batch, &shared.limits);
    match &result {
        Ok(()) => {
            shared.written.fetch_add(n, Ordering::Relaxed);
            debug!(
                "catalogue: wrote {n} events and {} completed counts",
                batch.completed.len()
            );
        }
        Err(e) => {
            shared.write_errors.fetch_add(1, Ordering::Relaxed);
            shared.dropped.fetch_add(n, Ordering::Relaxed);
            warn!(
                "{e}: {n} log events lost; the completed counts will be written again in {} s",
                shared.limits.flush_every.as_secs_f32()
            );
            shared
                .counts
                .mark_dirty(batch.completed.iter().map(|(h, _)| *h));
        }
    }
    batch.events.clear();
    batch.completed.clear();
    result
}
