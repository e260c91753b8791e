//! Publishing the `.torrent` of each file we seed on the tracker's web page,
//! so every seeded file can be downloaded from the page.
//!
//! A tracker with a web page names it in its `OK` (`"web":"http://IP:PORT/"`).
//! The JSON tracker thread (`register`) hands each such `OK` to a
//! [`Publisher`], which queues every complete file it has not published to
//! that page yet; one background thread per tracker sends them with
//! `POST {web}api/torrents` (body: the raw `.torrent`), so neither the
//! tracker loop nor a download ever waits on HTTP. Each file is posted once
//! per tracker page: a success, a refusal (4xx/5xx) and an unreachable page
//! alike are done with (the last two are one warning each), and seeding goes
//! on whatever happened.
//!
//! The bytes posted: the `.torrent` the session kept for the file (the one
//! built when it hashed the file, or the one it downloads from) when it names
//! no tracker but this one; else one made from the info dictionary it holds
//! plus this tracker as announce (a download from a magnet link or an info
//! hash, or a `.torrent` of another tracker, whose announce may carry a
//! personal passkey). A private torrent (BEP 27) is never published.
//!
//! Only `http://` URLs whose host is the tracker's own IP are used: a tracker
//! must not be able to make its peers post to a third party. An unspecified
//! host (`0.0.0.0`, `::`, a tracker bound to every interface) means the
//! tracker's IP.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crossbeam_channel::{Sender, TrySendError};
use log::{debug, info, warn};
use minitorrent_common::metainfo::{InfoHash, Metainfo};
use minitorrent_common::tracker_proto::short_hash;

use crate::core::shared::{Meta, CLIENT_NAME};
use crate::net::shared::TorrentHandle;
use crate::net::trace;

/// How long one publication may take, connecting included.
pub const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);
/// Most files remembered as published to one tracker; past it, new files
/// are not published (one warning). Matches the most files a peer may
/// register at once.
pub const MAX_PUBLISHED: usize = 10_000;
/// Most `.torrent`s the session keeps for publishing; past it, a file's
/// `.torrent` is made from its info dictionary instead.
pub const MAX_KEPT: usize = 10_000;
/// Publications waiting for the background thread; a file that finds the
/// queue full is tried again at the next `OK`.
const QUEUE: usize = 64;
/// The most of a reply's body read (it is only logged).
const MAX_REPLY_BODY: u64 = 4096;

/// The `.torrent` bytes the session holds for its files, by info hash:
/// written by the session when it starts seeding or downloading from a
/// metainfo, read by the tracker thread, emptied as files are withdrawn.
/// At most [`MAX_KEPT`] entries.
#[derive(Clone, Default)]
pub struct Kept(Arc<Mutex<HashMap<InfoHash, Arc<Vec<u8>>>>>);

impl Kept {
    /// Keeps `torrent` for `info_hash` (replacing an older one for the same
    /// content); ignored when [`MAX_KEPT`] are held.
    pub fn keep(&self, info_hash: InfoHash, torrent: Vec<u8>) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() < MAX_KEPT || map.contains_key(&info_hash) {
            map.insert(info_hash, Arc::new(torrent));
        }
    }

    pub fn get(&self, info_hash: &InfoHash) -> Option<Arc<Vec<u8>>> {
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(info_hash).cloned()
    }

    pub fn forget(&self, info_hash: &InfoHash) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.remove(info_hash);
    }
}

/// Why the `web` of an `OK` is not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebUrlError {
    #[error("only http:// web pages are used")]
    NotHttp,
    #[error("its host {0:?} is not an IP address")]
    NotAnIp(String),
    #[error(
        "its host {host} is not the tracker's own IP {tracker}, and a tracker must not make \
         its peers post to another server"
    )]
    OtherHost { host: IpAddr, tracker: IpAddr },
    #[error("it is not a plain http://IP:PORT/ URL ({0})")]
    Malformed(&'static str),
}

/// The publication endpoint (`http://IP:PORT/…/api/torrents`) of the `web`
/// an `OK` from the tracker at `tracker` named, when it may be used: an
/// `http://` URL without user, query or fragment whose host is `tracker`
/// (or unspecified, meaning `tracker`); the port defaults to 80.
pub fn endpoint(web: &str, tracker: IpAddr) -> Result<String, WebUrlError> {
    let rest = match web.get(..7) {
        Some(s) if s.eq_ignore_ascii_case("http://") => &web[7..],
        _ => return Err(WebUrlError::NotHttp),
    };
    if rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(WebUrlError::Malformed(
            "it contains spaces or control characters",
        ));
    }
    if rest.contains(['?', '#']) {
        return Err(WebUrlError::Malformed("it has a query or a fragment"));
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return Err(WebUrlError::Malformed("it names a user"));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let end = v6
            .find(']')
            .ok_or(WebUrlError::Malformed("an IPv6 address without its ]"))?;
        (&v6[..end], &v6[end + 1..])
    } else {
        match authority.rfind(':') {
            Some(i) => (&authority[..i], &authority[i..]),
            None => (authority, ""),
        }
    };
    let port = match port {
        "" => 80,
        p => match p.strip_prefix(':').and_then(|n| n.parse::<u16>().ok()) {
            Some(n) if n > 0 => n,
            _ => return Err(WebUrlError::Malformed("a bad port")),
        },
    };
    if host.is_empty() {
        return Err(WebUrlError::Malformed("no host"));
    }
    let ip: IpAddr = host
        .parse()
        .map_err(|_| WebUrlError::NotAnIp(host.to_string()))?;
    let ip = ip.to_canonical();
    let tracker = tracker.to_canonical();
    let ip = if ip.is_unspecified() { tracker } else { ip };
    if ip != tracker {
        return Err(WebUrlError::OtherHost { host: ip, tracker });
    }
    let slash = if path.ends_with('/') { "" } else { "/" };
    Ok(format!(
        "http://{}{path}{slash}api/torrents",
        SocketAddr::new(ip, port)
    ))
}

/// Where a publication's bytes come from.
enum Source {
    /// The `.torrent` the session kept.
    Kept(Arc<Vec<u8>>),
    /// The info dictionary only (a magnet download): made into a `.torrent`
    /// with the tracker as announce, on the background thread.
    Info(Arc<Meta>),
}

struct Job {
    info_hash: InfoHash,
    name: String,
    source: Source,
    endpoint: String,
}

/// One tracker's page and what was published there; owned by the JSON
/// tracker thread.
pub struct Publisher {
    tracker: SocketAddr,
    /// The endpoint the latest `OK` named (`None`: no page, or one refused).
    endpoint: Option<String>,
    /// The last `web` refused, so it is warned about once.
    refused: Option<String>,
    /// Files published (or given up on) at `done_at`, the last endpoint
    /// used (kept while an `OK` names no page: a tracker that comes back
    /// with the same page gets nothing twice).
    done: HashSet<InfoHash>,
    done_at: Option<String>,
    /// Warned that [`MAX_PUBLISHED`] was reached.
    full_warned: bool,
    /// The background thread, started on the first publication.
    jobs: Option<Sender<Job>>,
    /// The thread could not be started (warned once): publish nothing.
    no_thread: bool,
}

impl Publisher {
    pub fn new(tracker: SocketAddr) -> Publisher {
        Publisher {
            tracker,
            endpoint: None,
            refused: None,
            done: HashSet::new(),
            done_at: None,
            full_warned: false,
            jobs: None,
            no_thread: false,
        }
    }

    /// The `web` of the tracker's latest `OK`. A page at a new address
    /// starts afresh (every file is published there too); no page, or a
    /// refused one, stops publishing until one comes.
    pub fn web(&mut self, web: Option<&str>) {
        let Some(web) = web else {
            self.endpoint = None;
            return;
        };
        match endpoint(web, self.tracker.ip()) {
            Ok(e) => {
                if self.done_at.as_ref() != Some(&e) {
                    if !self.done.is_empty() {
                        debug!("tracker {} now names {web}: publishing there", self.tracker);
                    }
                    self.done.clear();
                    self.full_warned = false;
                    self.done_at = Some(e.clone());
                }
                self.endpoint = Some(e);
                self.refused = None;
            }
            Err(why) => {
                if self.refused.as_deref() != Some(web) {
                    warn!(
                        "tracker {} names the web page {web:?}; not publishing .torrents \
                         there: {why}",
                        self.tracker
                    );
                    self.refused = Some(web.to_string());
                }
                self.endpoint = None;
            }
        }
    }

    /// The file left the session: forget that it was published (seeding it
    /// again publishes it again, which the page takes as nothing new).
    pub fn forget(&mut self, info_hash: &InfoHash) {
        self.done.remove(info_hash);
    }

    /// Queues every file of `seeded` (info hash, name) not yet published to
    /// the current page, with its bytes from `kept` or the metadata in
    /// `torrents`. Never waits.
    pub fn publish<'a>(
        &mut self,
        seeded: impl IntoIterator<Item = (&'a InfoHash, &'a str)>,
        kept: &Kept,
        torrents: &Mutex<HashMap<InfoHash, TorrentHandle>>,
    ) {
        let Some(endpoint) = self.endpoint.clone().filter(|_| !self.no_thread) else {
            return;
        };
        for (info_hash, name) in seeded {
            if self.done.contains(info_hash) {
                continue;
            }
            if self.done.len() >= MAX_PUBLISHED {
                if !self.full_warned {
                    warn!(
                        "{MAX_PUBLISHED} files published to {endpoint}; not publishing more \
                         from this session"
                    );
                    self.full_warned = true;
                }
                return;
            }
            let source = match kept.get(info_hash) {
                Some(bytes) => Source::Kept(bytes),
                None => {
                    let meta = torrents
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .get(info_hash)
                        .and_then(|h| h.shared.meta.get().map(|ctx| ctx.meta.clone()));
                    match meta {
                        Some(m) => Source::Info(m),
                        // Not in the session (yet): the next OK tries again.
                        None => continue,
                    }
                }
            };
            let Some(jobs) = self.sender() else { return };
            let job = Job {
                info_hash: *info_hash,
                name: name.to_string(),
                source,
                endpoint: endpoint.clone(),
            };
            match jobs.try_send(job) {
                Ok(()) => {
                    self.done.insert(*info_hash);
                }
                // The queue is full: the rest waits for the next OK.
                Err(TrySendError::Full(_)) => return,
                Err(TrySendError::Disconnected(_)) => {
                    self.jobs = None;
                    return;
                }
            }
        }
    }

    /// The background thread's queue, started on first use.
    fn sender(&mut self) -> Option<Sender<Job>> {
        if let Some(tx) = &self.jobs {
            return Some(tx.clone());
        }
        let (tx, rx) = crossbeam_channel::bounded::<Job>(QUEUE);
        let tracker = self.tracker;
        let spawned = std::thread::Builder::new()
            .name("publish".into())
            .spawn(move || {
                let agent = agent();
                for job in rx {
                    post(&agent, tracker, job);
                }
            });
        match spawned {
            Ok(_) => {
                self.jobs = Some(tx.clone());
                Some(tx)
            }
            Err(e) => {
                warn!(
                    "cannot start the thread that publishes .torrents on the tracker's web \
                     page: {e}; the files are seeded, their .torrents not published"
                );
                // Do not try again at every OK.
                self.no_thread = true;
                None
            }
        }
    }
}

/// The HTTP client: plain http, no proxy (the page is on the tracker's own
/// IP), no redirects (which could lead to another server), every status
/// returned as a reply, [`PUBLISH_TIMEOUT`] for the whole exchange.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(PUBLISH_TIMEOUT))
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .user_agent(CLIENT_NAME)
        .build()
        .into()
}

/// True when every tracker `m` names is `tracker` (its `announce` and its
/// `announce-list`): such a `.torrent` is published as it is, byte for byte.
fn only_this_tracker(m: &Metainfo, tracker: SocketAddr) -> bool {
    let ours = |url: &str| {
        let rest = url.strip_prefix("udp://").unwrap_or(url);
        let hostport = rest.split('/').next().unwrap_or(rest);
        hostport.parse::<SocketAddr>().ok() == Some(tracker)
    };
    m.announce.as_deref().is_none_or(ours) && m.announce_list.iter().flatten().all(|u| ours(u))
}

/// What the page answered, for the log and `--trace`.
enum Outcome {
    Published { new: bool },
    Refused { status: u16, why: String },
    Failed(String),
}

/// Sends one publication and says how it went: one `--trace` line, and a
/// log line (a warning unless the page took it).
fn post(agent: &ureq::Agent, tracker: SocketAddr, job: Job) {
    let (info_bytes, private) = match &job.source {
        Source::Kept(b) => match Metainfo::from_bytes(b) {
            Ok(m) if only_this_tracker(&m, tracker) => (None, m.info.private),
            Ok(m) => (Some(m.info_bytes), m.info.private),
            Err(e) => {
                warn!("cannot read the .torrent of {} to publish: {e}", job.name);
                return;
            }
        },
        Source::Info(meta) => (Some(meta.info_bytes.clone()), meta.info.private),
    };
    if private {
        // BEP 27: a private torrent is shared through its own tracker only.
        info!(
            "{} is a private torrent: its .torrent is not published on {}",
            job.name, job.endpoint
        );
        return;
    }
    let bytes = match (job.source, info_bytes) {
        (Source::Kept(b), None) => b,
        // Another tracker's announce (perhaps with a personal passkey) is
        // never published: only the info dictionary, with this tracker.
        (_, Some(info)) => {
            match Metainfo::from_info_bytes(info, Some(format!("udp://{tracker}"))) {
                Ok(m) => Arc::new(m.to_bytes()),
                Err(e) => {
                    warn!("cannot make a .torrent of {} to publish: {e}", job.name);
                    return;
                }
            }
        }
        (Source::Info(_), None) => return,
    };
    let outcome = send(agent, &job.endpoint, &bytes);
    if trace::enabled() {
        let result = match &outcome {
            Outcome::Published { new: true } => "published (new)".to_string(),
            Outcome::Published { new: false } => "published (already there)".to_string(),
            Outcome::Refused { status, why } => format!("HTTP {status}: {why}"),
            Outcome::Failed(e) => format!("failed: {e}"),
        };
        eprintln!(
            "{} web → {}  POST {} {} ({} bytes) → {result}",
            trace::clock(),
            job.endpoint,
            job.name,
            short_hash(&job.info_hash),
            bytes.len()
        );
    }
    match outcome {
        Outcome::Published { new } => info!(
            "published the .torrent of {} on the tracker's web page ({})",
            job.name,
            if new { "new" } else { "it was already there" }
        ),
        Outcome::Refused { status, why } => warn!(
            "could not publish the .torrent of {} at {}: HTTP {status}: {why} (the file \
             is still seeded; only its .torrent is not on the tracker's page)",
            job.name, job.endpoint
        ),
        Outcome::Failed(e) => warn!(
            "could not publish the .torrent of {} at {}: {e} (the file is still seeded; \
             only its .torrent is not on the tracker's page)",
            job.name, job.endpoint
        ),
    }
}

fn send(agent: &ureq::Agent, endpoint: &str, bytes: &[u8]) -> Outcome {
    let reply = agent
        .post(endpoint)
        .header("Content-Type", "application/x-bittorrent")
        .send(bytes);
    let mut reply = match reply {
        Ok(r) => r,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let status = reply.status().as_u16();
    let mut body = Vec::new();
    let _ = reply
        .body_mut()
        .as_reader()
        .take(MAX_REPLY_BODY)
        .read_to_end(&mut body);
    let json: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
    if status == 200 || status == 201 {
        let new = json
            .as_ref()
            .and_then(|v| v.get("new"))
            .and_then(|n| n.as_bool())
            .unwrap_or(status == 201);
        return Outcome::Published { new };
    }
    let why = json
        .as_ref()
        .and_then(|v| v.get("error"))
        .and_then(|e| e.as_str())
        .map(|e| e.chars().take(200).collect())
        .unwrap_or_else(|| {
            reply
                .status()
                .canonical_reason()
                .unwrap_or("no reason given")
                .to_string()
        });
    Outcome::Refused { status, why }
}

#[cfg(test)]
mod tests {

    fn torrent_with(announce: Option<&str>, list: &[&str], private: bool) -> Metainfo {
        let mut info = Vec::from(&b"d6:lengthi1e4:name1:a12:piece lengthi16384e6:pieces20:"[..]);
        info.extend_from_slice(&[7u8; 20]);
        if private {
            info.extend_from_slice(b"7:privatei1e");
        }
        info.push(b'e');
        let mut m = Metainfo::from_info_bytes(info, announce.map(str::to_string)).unwrap();
        m.announce_list = list.iter().map(|u| vec![u.to_string()]).collect();
        m
    }

    #[test]
    fn only_a_torrent_naming_this_tracker_alone_is_published_as_it_is() {
        let t: SocketAddr = "10.0.0.1:6969".parse().unwrap();
        assert!(only_this_tracker(
            &torrent_with(Some("udp://10.0.0.1:6969"), &[], false),
            t
        ));
        assert!(only_this_tracker(
            &torrent_with(Some("udp://10.0.0.1:6969/announce"), &[], false),
            t
        ));
        assert!(only_this_tracker(&torrent_with(None, &[], false), t));
        // Another tracker, in announce or in announce-list (a passkey, say).
        assert!(!only_this_tracker(
            &torrent_with(
                Some("http://tracker.example/ann?passkey=s3cret"),
                &[],
                false
            ),
            t
        ));
        assert!(!only_this_tracker(
            &torrent_with(Some("udp://10.0.0.1:6969"), &["udp://10.0.0.2:6969"], false),
            t
        ));
        assert!(torrent_with(None, &[], true).info.private);
    }

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_tracker_s_own_page_is_used() {
        let t = ip("192.168.1.10");
        assert_eq!(
            endpoint("http://192.168.1.10:8080/", t).unwrap(),
            "http://192.168.1.10:8080/api/torrents"
        );
        // No slash, no port, a path, any case of the scheme.
        assert_eq!(
            endpoint("http://192.168.1.10:8080", t).unwrap(),
            "http://192.168.1.10:8080/api/torrents"
        );
        assert_eq!(
            endpoint("http://192.168.1.10", t).unwrap(),
            "http://192.168.1.10:80/api/torrents"
        );
        assert_eq!(
            endpoint("HTTP://192.168.1.10:8080/tracker", t).unwrap(),
            "http://192.168.1.10:8080/tracker/api/torrents"
        );
        // IPv6, and an IPv4 tracker reached through a mapped address.
        assert_eq!(
            endpoint("http://[::1]:8080/", ip("::1")).unwrap(),
            "http://[::1]:8080/api/torrents"
        );
        assert_eq!(
            endpoint("http://127.0.0.1:8080/", ip("::ffff:127.0.0.1")).unwrap(),
            "http://127.0.0.1:8080/api/torrents"
        );
        // A tracker bound to every interface: its own IP is meant.
        assert_eq!(
            endpoint("http://0.0.0.0:8080/", t).unwrap(),
            "http://192.168.1.10:8080/api/torrents"
        );
    }

    #[test]
    fn another_host_is_refused() {
        let t = ip("192.168.1.10");
        assert_eq!(
            endpoint("http://192.168.1.11:8080/", t),
            Err(WebUrlError::OtherHost {
                host: ip("192.168.1.11"),
                tracker: t
            })
        );
        assert!(matches!(
            endpoint("http://127.0.0.1:8080/", t),
            Err(WebUrlError::OtherHost { .. })
        ));
        assert_eq!(
            endpoint("http://example.com:8080/", t),
            Err(WebUrlError::NotAnIp("example.com".into()))
        );
        // A user part could hide the real host.
        assert!(matches!(
            endpoint("http://192.168.1.10@203.0.113.5:8080/", t),
            Err(WebUrlError::Malformed(_))
        ));
        let e = endpoint("http://10.0.0.1/", t).unwrap_err().to_string();
        assert!(e.contains("not the tracker's own IP 192.168.1.10"), "{e}");
    }

    #[test]
    fn only_plain_http_urls() {
        let t = ip("127.0.0.1");
        for (web, want) in [
            ("https://127.0.0.1:8443/", WebUrlError::NotHttp),
            ("ftp://127.0.0.1/", WebUrlError::NotHttp),
            ("127.0.0.1:8080", WebUrlError::NotHttp),
            ("", WebUrlError::NotHttp),
            ("http://", WebUrlError::Malformed("no host")),
            ("http://:8080/", WebUrlError::Malformed("no host")),
        ] {
            assert_eq!(endpoint(web, t), Err(want), "{web}");
        }
        for web in [
            "http://127.0.0.1:0/",
            "http://127.0.0.1:99999/",
            "http://127.0.0.1:port/",
            "http://127.0.0.1:8080/?x=1",
            "http://127.0.0.1:8080/#top",
            "http://127.0.0.1:8080/a b",
            "http://[::1:8080/",
        ] {
            assert!(
                matches!(endpoint(web, t), Err(WebUrlError::Malformed(_))),
                "{web}: {:?}",
                endpoint(web, t)
            );
        }
    }

    #[test]
    fn a_refused_page_is_not_used_and_a_new_page_starts_afresh() {
        let table = Mutex::new(HashMap::new());
        let kept = Kept::default();
        let h = InfoHash([1; 20]);
        kept.keep(h, b"d4:infod4:name1:aee".to_vec());
        let mut p = Publisher::new("127.0.0.1:6969".parse().unwrap());
        // Another host: nothing queued.
        p.web(Some("http://127.0.0.2:9/"));
        p.publish([(&h, "a")], &kept, &table);
        assert!(p.done.is_empty() && p.jobs.is_none());
        // Our tracker's page (nobody listens on port 9: the thread's
        // warning is all that comes of it): queued once.
        p.web(Some("http://127.0.0.1:9/"));
        p.publish([(&h, "a")], &kept, &table);
        assert!(p.done.contains(&h));
        // The same page again: still published once.
        p.web(Some("http://127.0.0.1:9/"));
        assert!(p.done.contains(&h));
        // A page at another port: published there too.
        p.web(Some("http://127.0.0.1:10/"));
        assert!(p.done.is_empty());
        p.publish([(&h, "a")], &kept, &table);
        assert!(p.done.contains(&h));
        // No page: nothing queued; the same page back: nothing again.
        p.web(None);
        assert!(p.endpoint.is_none());
        p.web(Some("http://127.0.0.1:10/"));
        assert!(p.done.contains(&h));
    }

    #[test]
    fn kept_torrents_are_bounded() {
        let kept = Kept::default();
        for i in 0..MAX_KEPT + 5 {
            let mut h = [0u8; 20];
            h[..8].copy_from_slice(&(i as u64).to_be_bytes());
            kept.keep(InfoHash(h), Vec::new());
        }
        assert_eq!(kept.0.lock().unwrap().len(), MAX_KEPT);
        // Replacing one held is still allowed.
        kept.keep(InfoHash([0; 20]), vec![1]);
        assert_eq!(kept.get(&InfoHash([0; 20])).unwrap().as_slice(), &[1]);
        kept.forget(&InfoHash([0; 20]));
        assert!(kept.get(&InfoHash([0; 20])).is_none());
    }
}
