//! A token bucket shared by the connection threads of a process, for
//! `--max-upload-rate` and `--max-download-rate`. Unlimited by default, when
//! it costs one atomic load. The rate can be changed while it runs (the web
//! page's limits, the menu's `limit`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The lowest download limit (`32k`): blocks are 16 KiB, and a peer that
/// sends none for 15 s is dropped as stalled, so a slower limit over
/// several peers would stall them all.
pub const MIN_DOWNLOAD_RATE: u64 = 32_000;

/// Checks a download limit (0: unlimited).
pub fn check_download_rate(rate: u64) -> Result<(), String> {
    if rate != 0 && rate < MIN_DOWNLOAD_RATE {
        return Err(format!(
            "a download limit of {rate} bytes/s is too low: blocks are 16 KiB and a peer that \
             sends none for 15 s is dropped; give at least 32k (or 0 for none)"
        ));
    }
    Ok(())
}

#[derive(Debug)]
pub struct RateLimit {
    /// Bytes per second; 0 means unlimited.
    rate: AtomicU64,
    /// Tokens (negative: a debt) and when they were last counted.
    state: Mutex<(f64, Instant)>,
}

impl RateLimit {
    /// `rate` bytes per second (0: unlimited), starting at `now` with a
    /// tenth of a second's worth of tokens.
    pub fn new(rate: u64, now: Instant) -> RateLimit {
        RateLimit {
            rate: AtomicU64::new(rate),
            state: Mutex::new((rate as f64 / 10.0, now)),
        }
    }

    pub fn unlimited(&self) -> bool {
        self.rate() == 0
    }

    /// Bytes per second; 0: unlimited.
    pub fn rate(&self) -> u64 {
        self.rate.load(Ordering::Relaxed)
    }

    /// Changes the rate from `now` on: what was saved or owed is forgotten,
    /// so a new limit takes effect at once.
    pub fn set_rate(&self, rate: u64, now: Instant) {
        if let Ok(mut st) = self.state.lock() {
            *st = (rate as f64 / 10.0, now);
        }
        self.rate.store(rate, Ordering::Relaxed);
    }

    /// The tokens at `now`, saved up to a burst of a tenth of a second (or
    /// `n`, so that one large block can pass at all).
    fn refill(rate: u64, st: (f64, Instant), n: usize, now: Instant) -> f64 {
        let (tokens, last) = st;
        let cap = (rate as f64 / 10.0).max(n as f64);
        (tokens + now.saturating_duration_since(last).as_secs_f64() * rate as f64).min(cap)
    }

    /// Takes `n` bytes' worth of tokens if available. Otherwise returns how
    /// long to wait before trying again.
    pub fn take(&self, n: usize, now: Instant) -> Result<(), Duration> {
        let rate = self.rate();
        if rate == 0 {
            return Ok(());
        }
        let Ok(mut st) = self.state.lock() else {
            return Ok(());
        };
        let tokens = Self::refill(rate, *st, n, now);
        if tokens >= n as f64 {
            *st = (tokens - n as f64, now);
            Ok(())
        } else {
            *st = (tokens, now);
            let missing = n as f64 - tokens;
            Err(Duration::from_secs_f64(missing / rate as f64).max(Duration::from_millis(1)))
        }
    }

    /// Counts `n` bytes that already moved (received data cannot be put
    /// back), running into debt if need be. Returns how long to wait before
    /// moving more, if the bucket is now in debt.
    pub fn charge(&self, n: usize, now: Instant) -> Option<Duration> {
        let rate = self.rate();
        if rate == 0 {
            return None;
        }
        let Ok(mut st) = self.state.lock() else {
            return None;
        };
        let tokens = Self::refill(rate, *st, 0, now) - n as f64;
        *st = (tokens, now);
        (tokens < 0.0)
            .then(|| Duration::from_secs_f64(-tokens / rate as f64).max(Duration::from_millis(1)))
    }

    /// How long until the bucket is out of debt at `now`; `None` when it
    /// is not in debt (or unlimited). Takes nothing.
    pub fn owed(&self, now: Instant) -> Option<Duration> {
        let rate = self.rate();
        if rate == 0 {
            return None;
        }
        let st = self.state.lock().ok()?;
        let tokens = Self::refill(rate, *st, 0, now);
        (tokens < 0.0)
            .then(|| Duration::from_secs_f64(-tokens / rate as f64).max(Duration::from_millis(1)))
    }

    /// How much to read at once under this limit: a tenth of a second's
    /// worth, 4 to 256 KiB; `None` when unlimited.
    pub fn chunk(&self) -> Option<usize> {
        match self.rate() {
            0 => None,
            r => Some(((r / 10) as usize).clamp(4 << 10, 256 << 10)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_rate() {
        let t0 = Instant::now();
        let r = RateLimit::new(100_000, t0);
        let mut sent = 0;
        let mut now = t0;
        while now < t0 + Duration::from_secs(2) {
            match r.take(16384, now) {
                Ok(()) => sent += 16384,
                Err(d) => now += d,
            }
        }
        assert!((190_000..=230_000).contains(&sent), "{sent}");
        assert!(RateLimit::new(0, t0).take(1 << 30, t0).is_ok());
    }

    #[test]
    fn charge_runs_into_debt_and_waits_it_off() {
        let t0 = Instant::now();
        let r = RateLimit::new(100_000, t0);
        let mut got = 0;
        let mut now = t0;
        while now < t0 + Duration::from_secs(3) {
            got += 40_000;
            if let Some(wait) = r.charge(40_000, now) {
                now += wait;
            }
        }
        // 3 s at 100 kB/s, plus the starting burst and the last read.
        assert!((290_000..=360_000).contains(&got), "{got}");
        assert_eq!(RateLimit::new(0, t0).charge(1 << 30, t0), None);
    }

    #[test]
    fn rate_changes_at_once() {
        let t0 = Instant::now();
        let r = RateLimit::new(0, t0);
        assert!(r.unlimited());
        r.set_rate(10_000, t0);
        assert_eq!(r.rate(), 10_000);
        assert!(r
            .charge(50_000, t0)
            .is_some_and(|d| d >= Duration::from_secs(4)));
        assert!(r.owed(t0).is_some_and(|d| d >= Duration::from_secs(4)));
        assert!(r.owed(t0 + Duration::from_secs(6)).is_none());
        r.set_rate(0, t0);
        assert!(r.charge(50_000, t0).is_none());
        assert!(r.owed(t0).is_none());
        assert_eq!(r.chunk(), None);
        r.set_rate(1_000_000, t0);
        assert_eq!(r.chunk(), Some(100_000));
        r.set_rate(10_000, t0);
        assert_eq!(r.chunk(), Some(4096));
        assert!(check_download_rate(0).is_ok());
        assert!(check_download_rate(MIN_DOWNLOAD_RATE).is_ok());
        assert!(check_download_rate(1000).is_err());
    }
}
