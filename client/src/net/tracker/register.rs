//! The JSON tracker thread: REGISTER the files we share, HEARTBEAT every
//! `interval`, REGISTER again when the tracker forgot us, EXIT on shutdown;
//! and each torrent's `REQUEST` for peers, on a short-lived thread of its own.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use log::{debug, info, warn};
use minitorrent_common::metainfo::InfoHash;
use minitorrent_common::tracker_proto::ErrorCode;

use crate::core::msg::{Event, Input, TrackerMsg};
use crate::net::tracker::json::{RegisterFile, TrackerClient, TrackerError};

/// Why a REGISTER did not go through.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// The thread could not open its socket at start (logged then).
    #[error("no socket for tracker {0}")]
    NoSocket(SocketAddr),
    #[error(transparent)]
    Tracker(#[from] TrackerError),
}

pub fn run(addr: SocketAddr, local: IpAddr, peer_id: String, port: u16, rx: Receiver<TrackerMsg>) {
    let mut client = match TrackerClient::from_ip(addr, local) {
        Ok(c) => Some(c),
        Err(e) => {
            warn!("{e}");
            None
        }
    };
    let mut files: BTreeMap<InfoHash, RegisterFile> = BTreeMap::new();
    let mut registered = false;
    let mut interval = Duration::from_secs(10);
    let mut next = Instant::now() + interval;
    let register = |c: &mut Option<TrackerClient>,
                    files: &BTreeMap<InfoHash, RegisterFile>|
     -> Result<Duration, RegisterError> {
        let c = c.as_mut().ok_or(RegisterError::NoSocket(addr))?;
        let list: Vec<RegisterFile> = files.values().cloned().collect();
        Ok(c.register(&peer_id, port, &list)?.interval)
    };
    loop {
        let wait = next.saturating_duration_since(Instant::now());
        match rx.recv_timeout(wait) {
            Ok(TrackerMsg::Update(t, reply)) => {
                files.insert(
                    t.info_hash,
                    RegisterFile {
                        info_hash: t.info_hash,
                        name: t.name.clone(),
                        size: t.size,
                        complete: t.complete,
                    },
                );
                let r = register(&mut client, &files);
                match &r {
                    Ok(i) => {
                        registered = true;
                        interval = *i;
                        info!(
                            "registered {} with tracker {addr} ({})",
                            t.name,
                            if t.complete { "seeder" } else { "leecher" }
                        );
                    }
                    Err(e) => {
                        registered = false;
                        warn!("{e}");
                    }
                }
                next = Instant::now() + interval;
                if let Some(reply) = reply {
                    let _ = reply.send(r.map(|_| ()).map_err(Into::into));
                }
            }
            Ok(TrackerMsg::Lookup { info_hash, reply }) => lookup(addr, info_hash, &peer_id, reply),
            Ok(TrackerMsg::Forget(info_hash)) => {
                let Some(gone) = files.remove(&info_hash) else {
                    continue;
                };
                // REGISTER only adds: leaving one swarm takes an EXIT, then a
                // REGISTER of the files we still share.
                if registered {
                    if let Some(c) = client.as_mut() {
                        if let Err(e) = c.exit(&peer_id) {
                            warn!("EXIT: {e}");
                        }
                    }
                    registered = false;
                    if !files.is_empty() {
                        match register(&mut client, &files) {
                            Ok(i) => {
                                registered = true;
                                interval = i;
                            }
                            Err(e) => warn!("{e}"),
                        }
                    }
                    info!("withdrew {} from tracker {addr}", gone.name);
                }
            }
            Ok(TrackerMsg::Shutdown(ack)) => {
                if registered {
                    if let Some(c) = client.as_mut() {
                        match c.exit(&peer_id) {
                            Ok(()) => info!("sent EXIT to tracker {addr}"),
                            Err(e) => warn!("EXIT: {e}"),
                        }
                    }
                }
                let _ = ack.send(());
                return;
            }
            Err(RecvTimeoutError::Timeout) => {
                next = Instant::now() + interval;
                if files.is_empty() {
                    continue;
                }
                if !registered {
                    match register(&mut client, &files) {
                        Ok(i) => {
                            registered = true;
                            interval = i;
                        }
                        Err(e) => warn!("{e}"),
                    }
                    continue;
                }
                let Some(c) = client.as_mut() else { continue };
                match c.heartbeat(&peer_id) {
                    Ok(true) => debug!("heartbeat ok"),
                    Ok(false) => {
                        info!("tracker {addr} forgot us; registering again");
                        match register(&mut client, &files) {
                            Ok(i) => interval = i,
                            Err(e) => {
                                registered = false;
                                warn!("{e}");
                            }
                        }
                    }
                    Err(e) => warn!("heartbeat: {e}"),
                }
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// REQUESTs the peers of one torrent on a short-lived thread (a lost
/// datagram costs seconds of retries; the heartbeats must not wait for it)
/// and sends the answer to the torrent as `Event::Lookup`.
fn lookup(addr: SocketAddr, info_hash: InfoHash, me: &str, reply: Sender<Input>) {
    let me = me.to_string();
    let answer = reply.clone();
    let spawned = std::thread::Builder::new()
        .name("tracker lookup".into())
        .spawn(move || {
            let ev = match TrackerClient::new(addr)
                .and_then(|mut c| c.request_peers(Some(&info_hash), None, Some(&me)))
            {
                // Nobody but us: the seeder left (or changed the file).
                Ok(r) if r.peers.is_empty() && r.seeders == 0 => Event::Unlisted,
                Ok(r) => Event::Lookup(Ok(r.peers)),
                // Nobody registered it (yet: our own REGISTER, or a new
                // seeder's, may still be on its way): no peers for now, not
                // a failure.
                Err(e) if e.code() == Some(&ErrorCode::NotFound) => Event::Unlisted,
                Err(e) => Event::Lookup(Err(e.into())),
            };
            let _ = reply.send(ev.into());
        });
    if let Err(e) = spawned {
        warn!("cannot start a tracker lookup thread: {e}");
        let _ = answer.send(Event::Lookup(Err(Box::new(e))).into());
    }
}
