//! The HTTP tracker client: one `GET /announce` (BEP 3) per call, compact
//! peers (BEP 23) and `peers6` (BEP 7) read by `common::http_tracker`. Plain
//! `http://` only (no TLS in this build), no redirects (which could lead to
//! another server), no proxy, [`HTTP_TIMEOUT`] for the whole exchange and at
//! most [`MAX_REPLY`] bytes read.

use std::io::Read;
use std::net::SocketAddr;
use std::time::Duration;

use minitorrent_common::http_tracker::{AnnounceRequest, AnnounceResponse, ReplyError};

use crate::net::trace;
use crate::net::tracker::bep15::{AnnounceArgs, AnnounceReply};

/// The whole announce: connect, send, read the reply.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(15);
/// A reply longer than this is cut and then fails to decode (200 compact
/// peers take 1.2 kB; 200 peer dictionaries about 15 kB).
pub const MAX_REPLY: u64 = 1 << 20;
/// Peers asked for in each announce (the tracker may cap it).
pub const NUMWANT: usize = 50;

/// Why an HTTP announce failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HttpTrackerError {
    #[error("HTTP tracker {url} is unreachable: {why}")]
    Unreachable { url: String, why: String },
    #[error("HTTP tracker {url} answered HTTP {status}{}", snippet(.body))]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("HTTP tracker {url} refused: {reason}")]
    Refused { url: String, reason: String },
    #[error("HTTP tracker {url} sent a bad reply: {why}")]
    BadReply { url: String, why: String },
}

fn snippet(body: &str) -> String {
    let t: String = body.trim().chars().take(120).collect();
    if t.is_empty() {
        String::new()
    } else {
        format!(": {t}")
    }
}

/// One HTTP tracker, as its announce URL is written (path and query kept:
/// a passkey in the query goes with every announce).
pub struct HttpClient {
    url: String,
    agent: ureq::Agent,
}

impl HttpClient {
    pub fn new(url: &str) -> HttpClient {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(HTTP_TIMEOUT))
            .http_status_as_error(false)
            .max_redirects(0)
            .proxy(None)
            .user_agent(crate::core::shared::CLIENT_NAME)
            .build()
            .into();
        HttpClient {
            url: url.to_string(),
            agent,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The announce URL with `a`'s query added (after the URL's own query,
    /// if it has one).
    pub fn query_url(&self, a: &AnnounceArgs) -> String {
        let q = request(a).to_query();
        let sep = if self.url.contains('?') { '&' } else { '?' };
        format!("{}{sep}{q}&key={:08x}", self.url, a.key)
    }

    pub fn announce(&self, a: &AnnounceArgs) -> Result<AnnounceReply, HttpTrackerError> {
        let full = self.query_url(a);
        let base = self.url.split('?').next().unwrap_or(&self.url);
        trace::tracker_http(base, true, || request(a).summary());
        let err = |why: String| HttpTrackerError::Unreachable {
            url: self.url.clone(),
            why,
        };
        let mut reply = self
            .agent
            .get(&full)
            .call()
            .map_err(|e| err(e.to_string()))?;
        let status = reply.status().as_u16();
        let mut body = Vec::new();
        reply
            .body_mut()
            .as_reader()
            .take(MAX_REPLY)
            .read_to_end(&mut body)
            .map_err(|e| err(format!("reading the reply: {e}")))?;
        if status != 200 {
            // A failure reason may still come with another status.
            if let Err(ReplyError::Failure(reason)) = AnnounceResponse::decode(&body) {
                return Err(HttpTrackerError::Refused {
                    url: self.url.clone(),
                    reason,
                });
            }
            return Err(HttpTrackerError::Status {
                url: self.url.clone(),
                status,
                body: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
            });
        }
        let r = AnnounceResponse::decode(&body).map_err(|e| match e {
            ReplyError::Failure(reason) => HttpTrackerError::Refused {
                url: self.url.clone(),
                reason,
            },
            e => HttpTrackerError::BadReply {
                url: self.url.clone(),
                why: e.to_string(),
            },
        })?;
        trace::tracker_http(base, false, || r.summary());
        let interval = r.min_interval.map_or(r.interval, |m| r.interval.max(m));
        Ok(AnnounceReply {
            interval: Duration::from_secs(u64::from(interval)),
            seeders: r.complete,
            leechers: r.incomplete,
            peers: r
                .peers
                .into_iter()
                .map(|p| p.addr)
                .collect::<Vec<SocketAddr>>(),
        })
    }
}

fn request(a: &AnnounceArgs) -> AnnounceRequest {
    AnnounceRequest {
        info_hash: a.info_hash,
        peer_id: a.peer_id,
        port: a.port,
        uploaded: a.uploaded,
        downloaded: a.downloaded,
        left: a.left,
        event: a.event,
        numwant: Some(NUMWANT),
        compact: true,
        no_peer_id: true,
    }
}
