//! What the session knows about each of its trackers, for people: which
//! one is in use and the last error of each. The thread that talks to them
//! (the JSON thread, or the announcer once it runs) writes here; `--stats`,
//! the menu, the progress line and the web page read it.

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// Most trackers a session keeps (a torrent's announce-list beyond this is
/// not used; the bound is in docs/STATE.md).
pub const MAX_TRACKERS: usize = 32;
/// An error is kept to this many characters.
const MAX_ERROR: usize = 300;

/// One tracker as a person is told about it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TrackerState {
    /// `udp://IP:PORT` or the announce URL.
    pub url: String,
    /// How the session speaks to it: `json`, `bep15` or `http`.
    pub protocol: &'static str,
    pub in_use: bool,
    /// Whether it answered since the session started.
    pub answered: bool,
    /// Its last failure, cleared when it answers.
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Board(Arc<Mutex<Vec<TrackerState>>>);

impl Board {
    fn with<R>(&self, f: impl FnOnce(&mut Vec<TrackerState>) -> R) -> R {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The trackers now tried, in order; the first is in use. Keeps what
    /// was known of the ones listed before.
    pub fn set(&self, trackers: impl IntoIterator<Item = (String, &'static str)>) {
        self.with(|v| {
            let old = std::mem::take(v);
            for (i, (url, protocol)) in trackers.into_iter().take(MAX_TRACKERS).enumerate() {
                let known = old.iter().find(|t| t.url == url);
                v.push(TrackerState {
                    in_use: i == 0,
                    answered: known.is_some_and(|t| t.answered),
                    last_error: known.and_then(|t| t.last_error.clone()),
                    url,
                    protocol,
                });
            }
        })
    }

    /// `url` is the one in use now.
    pub fn using(&self, url: &str) {
        self.with(|v| v.iter_mut().for_each(|t| t.in_use = t.url == url))
    }

    pub fn answered(&self, url: &str) {
        self.with(|v| {
            if let Some(t) = v.iter_mut().find(|t| t.url == url) {
                t.answered = true;
                t.last_error = None;
            }
        })
    }

    pub fn failed(&self, url: &str, e: &dyn fmt::Display) {
        let mut e = e.to_string();
        if e.len() > MAX_ERROR {
            let mut cut = MAX_ERROR;
            while !e.is_char_boundary(cut) {
                cut -= 1;
            }
            e.truncate(cut);
            e.push('…');
        }
        self.with(|v| {
            if let Some(t) = v.iter_mut().find(|t| t.url == url) {
                t.last_error = Some(e);
            }
        })
    }

    pub fn snapshot(&self) -> Vec<TrackerState> {
        self.with(|v| v.clone())
    }

    /// The tracker in use, e.g. for `tracker udp://…` in a status line.
    pub fn in_use(&self) -> Option<String> {
        self.with(|v| v.iter().find(|t| t.in_use).map(|t| t.url.clone()))
    }
}

/// A JSON tracker's name on the board.
pub fn json_url(addr: SocketAddr) -> String {
    format!("udp://{addr}")
}

/// "tracker X" and, for each tracker whose last try failed, "Y: error":
/// one line's worth for the progress line.
pub fn words(states: &[TrackerState]) -> String {
    let mut s = match states.iter().find(|t| t.in_use) {
        Some(t) => format!("tracker {}", t.url),
        None => "no tracker".to_string(),
    };
    for t in states.iter().filter(|t| t.last_error.is_some()) {
        let e = t.last_error.as_deref().unwrap_or_default();
        let short: String = e.chars().take(80).collect();
        let more = if short.len() < e.len() { "…" } else { "" };
        s.push_str(&format!("; {} failed: {short}{more}", t.url));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_board_tells_which_is_in_use_and_the_last_error_of_each() {
        let b = Board::default();
        b.set([
            ("udp://a".to_string(), "json"),
            ("http://b/announce".into(), "http"),
        ]);
        assert_eq!(b.in_use().as_deref(), Some("udp://a"));
        b.failed("udp://a", &"no answer after 4 tries");
        b.using("http://b/announce");
        b.answered("http://b/announce");
        let s = b.snapshot();
        assert!(!s[0].in_use && s[1].in_use && s[1].answered && !s[0].answered);
        assert_eq!(s[0].last_error.as_deref(), Some("no answer after 4 tries"));
        assert_eq!(
            words(&s),
            "tracker http://b/announce; udp://a failed: no answer after 4 tries"
        );
        // It answers again: its error goes; a new list keeps what was known.
        b.answered("udp://a");
        b.set([("udp://a".to_string(), "bep15")]);
        let s = b.snapshot();
        assert_eq!(s.len(), 1);
        assert!(s[0].answered && s[0].in_use && s[0].last_error.is_none());
        // Long errors are cut.
        b.failed("udp://a", &"x".repeat(1000));
        assert!(b.snapshot()[0].last_error.as_ref().unwrap().len() < 400);
    }
}
