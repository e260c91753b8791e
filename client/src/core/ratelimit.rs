//! A token bucket shared by the connection threads of a process, for
//! `--max-upload-rate`. Unlimited by default, when it costs one atomic load.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct RateLimit {
    /// Bytes per second; 0 means unlimited.
    rate: u64,
    state: Mutex<(f64, Instant)>,
}

impl RateLimit {
    /// `rate` bytes per second (0: unlimited), starting at `now` with a
    /// tenth of a second's worth of tokens.
    pub fn new(rate: u64, now: Instant) -> RateLimit {
        RateLimit {
            rate,
            state: Mutex::new((rate as f64 / 10.0, now)),
        }
    }

    pub fn unlimited(&self) -> bool {
        self.rate == 0
    }

    /// Takes `n` bytes' worth of tokens if available. Otherwise returns how
    /// long to wait before trying again.
    pub fn take(&self, n: usize, now: Instant) -> Result<(), Duration> {
        if self.rate == 0 {
            return Ok(());
        }
        let Ok(mut st) = self.state.lock() else {
            return Ok(());
        };
        let (tokens, last) = *st;
        // A burst of at most a tenth of a second keeps the rate smooth.
        let cap = (self.rate as f64 / 10.0).max(n as f64);
        let tokens = (tokens
            + now.saturating_duration_since(last).as_secs_f64() * self.rate as f64)
            .min(cap);
        if tokens >= n as f64 {
            *st = (tokens - n as f64, now);
            Ok(())
        } else {
            *st = (tokens, now);
            let missing = n as f64 - tokens;
            Err(Duration::from_secs_f64(missing / self.rate as f64).max(Duration::from_millis(1)))
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
}
