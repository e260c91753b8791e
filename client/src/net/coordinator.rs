//! The coordinator thread of one torrent: it receives [`Input`]s, asks the
//! core's [`Swarm`] what to do, and carries out the [`Action`]s it returns:
//! commands to connection threads (through their [`ConnLink`]), dials,
//! tracker messages, opening and checking the storage on a thread of its
//! own, finishing the files, notices to the session, the status snapshot.
//! It decides nothing itself.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use log::warn;
use minitorrent_common::metainfo::Info;

use crate::core::msg::{
    ConnError, ConnLink, Event, Input, Notice, Opened, Phase, TorrentDetail, TorrentStatus,
    TrackerMsg,
};
use crate::core::picker::ConnId;
use crate::core::swarm::{Action, ConnFigures, Rates, Swarm};
use crate::core::traffic::delta;
use crate::net::conn;
use crate::net::open::{self, OpenError};
use crate::net::shared::{MetaCtx, TorrentShared};
use crate::net::trace;

/// How often the swarm's timers run.
const TICK: Duration = Duration::from_millis(250);

/// How the coordinator reaches the rest of the session.
pub struct SessionLink {
    pub tracker_updates: Sender<TrackerMsg>,
    pub notices: Sender<Notice>,
    /// Called once if the torrent fails, so the session can drop it.
    pub on_failure: Box<dyn FnOnce() + Send>,
}

/// The storage check running on its own thread.
struct Check {
    result: Receiver<Result<(MetaCtx, u32), OpenError>>,
    checked: Arc<AtomicU32>,
    /// Set when the check is no longer wanted (the torrent stopped): its
    /// thread stops hashing.
    cancel: Arc<AtomicBool>,
}

impl Drop for Check {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
    }
}

pub struct Coordinator {
    t: Arc<TorrentShared>,
    rx: Receiver<Input>,
    swarm: Swarm,
    link: SessionLink,
    /// Where a download's files go.
    dir: PathBuf,
    meta: Option<Arc<MetaCtx>>,
    links: HashMap<ConnId, ConnLink>,
    check: Option<Check>,
    status: Arc<Mutex<TorrentStatus>>,
    /// Events the shell itself produced while carrying out actions.
    pending: VecDeque<Event>,
    /// The phase in the last status published.
    published: Phase,
    /// Each connection's byte totals when last added to `t.traffic`.
    counted: HashMap<ConnId, (u64, u64)>,
    /// Each connection's rates (received, sent), for the torrent's page.
    conn_rates: HashMap<ConnId, Rates>,
}

impl Coordinator {
    /// `meta` is the opened storage when the swarm starts live (a seed).
    pub fn new(
        t: Arc<TorrentShared>,
        rx: Receiver<Input>,
        swarm: Swarm,
        link: SessionLink,
        dir: PathBuf,
        status: Arc<Mutex<TorrentStatus>>,
    ) -> Coordinator {
        Coordinator {
            meta: t.meta.get().cloned(),
            t,
            rx,
            swarm,
            link,
            dir,
            links: HashMap::new(),
            check: None,
            status,
            pending: VecDeque::new(),
            published: Phase::Metadata,
            counted: HashMap::new(),
            conn_rates: HashMap::new(),
        }
    }

    /// Runs until shutdown or a fatal error.
    pub fn run(mut self) {
        let actions = self.swarm.start(Instant::now());
        self.act(actions);
        self.publish();
        let ticker = crossbeam_channel::tick(TICK);
        let never = crossbeam_channel::never();
        loop {
            let check_rx = self.check.as_ref().map(|c| c.result.clone());
            crossbeam_channel::select! {
                recv(self.rx) -> input => match input {
                    Ok(Input::Shutdown(ack)) => {
                        let actions = self.swarm.stop();
                        self.act(actions);
                        self.publish();
                        let _ = ack.send(());
                        return;
                    }
                    Ok(Input::Link { conn, link }) => {
                        self.links.insert(conn, link);
                    }
                    Ok(Input::Status(reply)) => {
                        self.publish();
                        if let Ok(s) = self.status.lock() {
                            let _ = reply.send(s.clone());
                        }
                    }
                    Ok(Input::Detail(reply)) => {
                        self.count_traffic();
                        self.publish();
                        let _ = reply.send(self.detail());
                    }
                    Ok(Input::Event(ev)) => self.handle(ev),
                    Err(_) => return,
                },
                recv(check_rx.as_ref().unwrap_or(&never)) -> r => match r {
                    Ok(r) => self.checked(r),
                    // The checking thread ended without an answer.
                    Err(_) => {
                        self.check = None;
                        self.handle(Event::Opened(Err(
                            "checking the data on disk ended unexpectedly".into(),
                        )));
                    }
                },
                recv(ticker) -> _ => {
                    self.count_traffic();
                    let actions = self.swarm.tick(Instant::now());
                    self.act(actions);
                    self.publish();
                }
            }
            if self.swarm.is_over() {
                self.publish();
                let noop: Box<dyn FnOnce() + Send> = Box::new(|| {});
                (std::mem::replace(&mut self.link.on_failure, noop))();
                return;
            }
        }
    }

    fn handle(&mut self, ev: Event) {
        self.pending.push_back(ev);
        self.act(Vec::new());
    }

    /// Carries out `actions`, then handles the events that produced, until
    /// none is left.
    fn act(&mut self, actions: Vec<Action>) {
        self.carry_out(actions);
        while let Some(ev) = self.pending.pop_front() {
            let gone = match &ev {
                Event::Gone { conn, .. } => Some(*conn),
                _ => None,
            };
            if let Some(c) = gone {
                // Its last bytes, while the swarm still knows its address.
                self.count_conn(c);
                self.counted.remove(&c);
                self.conn_rates.remove(&c);
            }
            let actions = self.swarm.handle(ev, Instant::now());
            self.carry_out(actions);
            if let Some(c) = gone {
                self.links.remove(&c);
            }
        }
        self.t.set_hide_pieces(self.swarm.hides_pieces());
        if std::mem::discriminant(&self.swarm.phase()) != std::mem::discriminant(&self.published) {
            self.publish();
        }
    }

    /// Adds what each connection moved since the last count to the bytes
    /// the tracker thread reports in `STATS`, by the peer's address.
    fn count_traffic(&mut self) {
        let conns: Vec<ConnId> = self.links.keys().copied().collect();
        for c in conns {
            self.count_conn(c);
        }
    }

    fn count_conn(&mut self, conn: ConnId) {
        let Some(link) = self.links.get(&conn) else {
            return;
        };
        let now = link.traffic.load();
        self.conn_rates
            .entry(conn)
            .or_insert_with(|| Rates::without_history(Instant::now()))
            .update(Instant::now(), now.1, now.0);
        let before = self.counted.insert(conn, now).unwrap_or((0, 0));
        let (sent, received) = delta(before, now);
        if sent == 0 && received == 0 {
            return;
        }
        if sent > 0 {
            self.swarm.served(conn, Instant::now());
        }
        if let Some(addr) = self.swarm.peer_addr(conn) {
            if let Ok(mut t) = self.t.traffic.lock() {
                t.add(addr, sent, received);
            }
        }
    }

    fn carry_out(&mut self, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Send(conn, cmd) => {
                    if let Some(l) = self.links.get(&conn) {
                        l.send(cmd);
                    }
                }
                Action::Dial { conn, addr } => {
                    let t = self.t.clone();
                    let spawned = std::thread::Builder::new()
                        .name(format!("peer {addr}"))
                        .spawn(move || conn::run_outbound(t, conn, addr));
                    if let Err(e) = spawned {
                        warn!("cannot start a connection thread: {e}");
                        self.pending.push_back(Event::ConnectFailed {
                            conn,
                            addr,
                            error: ConnError::Connect(e),
                        });
                    }
                }
                Action::Lookup => {
                    let asked = self.link.tracker_updates.send(TrackerMsg::Lookup {
                        info_hash: self.t.info_hash,
                        reply: self.t.events.clone(),
                    });
                    if asked.is_err() {
                        self.pending
                            .push_back(Event::Lookup(Err("the tracker thread has stopped".into())));
                    }
                }
                Action::Track(t) => {
                    let _ = self.link.tracker_updates.send(TrackerMsg::Update(t, None));
                }
                Action::Open { info, info_bytes } => self.start_check(info, info_bytes),
                Action::Finish => {
                    let r = match &self.meta {
                        Some(m) => m.storage.finish().map_err(Into::into),
                        None => Err("no storage is open".into()),
                    };
                    self.pending.push_back(Event::Finished(r));
                }
                Action::Sync => {
                    if let Some(m) = &self.meta {
                        if let Err(e) = m.storage.sync() {
                            warn!("{}: {e}", self.swarm.name());
                        }
                    }
                }
                Action::Notify(n) => {
                    // Whoever reads the notice sees the status it announces.
                    self.publish();
                    let _ = self.link.notices.send(n);
                }
                Action::Trace { at, line } => trace::note(at, || line),
            }
        }
    }

    /// Opens and checks the storage on a thread of its own, so that this
    /// thread keeps answering meanwhile.
    fn start_check(&mut self, info: Info, info_bytes: Vec<u8>) {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let checked = Arc::new(AtomicU32::new(0));
        let cancel = Arc::new(AtomicBool::new(false));
        let (dir, counter, stop) = (self.dir.clone(), checked.clone(), cancel.clone());
        let spawned = std::thread::Builder::new()
            .name("checking".into())
            .spawn(move || {
                let _ = tx.send(open::open_download(info, info_bytes, &dir, &counter, &stop));
            });
        match spawned {
            Ok(_) => {
                self.check = Some(Check {
                    result: rx,
                    checked,
                    cancel,
                })
            }
            Err(e) => self.pending.push_back(Event::Opened(Err(Box::new(e)))),
        }
    }

    fn checked(&mut self, r: Result<(MetaCtx, u32), OpenError>) {
        self.check = None;
        let ev = match r {
            Ok((ctx, on_disk)) => {
                let ctx = Arc::new(ctx);
                let _ = self.t.meta.set(ctx.clone());
                let opened = Opened {
                    meta: ctx.meta.clone(),
                    on_disk,
                    paths: ctx.storage.final_paths(),
                };
                self.meta = Some(ctx);
                Event::Opened(Ok(opened))
            }
            Err(e) => Event::Opened(Err(Box::new(e))),
        };
        self.handle(ev);
        self.publish();
    }

    /// The torrent's page: the swarm's detail with what the connections
    /// count themselves.
    fn detail(&mut self) -> TorrentDetail {
        let now = Instant::now();
        let status = self.status.lock().map(|s| s.clone());
        let status = match status {
            Ok(s) => s,
            Err(_) => self
                .swarm
                .status(now, self.t.downloaded(), self.t.uploaded(), 0),
        };
        let (links, counted, rates) = (&self.links, &self.counted, &mut self.conn_rates);
        self.swarm.detail(status, now, |c| {
            let (uploaded, downloaded) = counted.get(&c).copied().unwrap_or((0, 0));
            let (down_rate, up_rate) = rates
                .get_mut(&c)
                .map(|r| r.update(now, downloaded, uploaded))
                .unwrap_or((0.0, 0.0));
            ConnFigures {
                am_choking: links.get(&c).is_none_or(|l| l.traffic.choking()),
                downloaded,
                uploaded,
                down_rate,
                up_rate,
            }
        })
    }

    fn publish(&mut self) {
        let checked = self
            .check
            .as_ref()
            .map(|c| c.checked.load(Ordering::Relaxed))
            .unwrap_or(0);
        let s = self.swarm.status(
            Instant::now(),
            self.t.downloaded(),
            self.t.uploaded(),
            checked,
        );
        self.published = s.phase.clone();
        if let Ok(mut st) = self.status.lock() {
            *st = s;
        }
    }
}
