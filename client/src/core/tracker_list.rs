//! A torrent's trackers in BEP 12 order: tiers tried in order, each tier
//! shuffled once, the next tracker tried when one does not answer, and a
//! tracker that answers moved to the front of its tier. Pure: the shuffle's
//! randomness is passed in.

use std::net::SocketAddr;

/// `T` is how a tracker is written down: a socket address for the JSON
/// thread, an address or URL for the announcer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackerList<T = SocketAddr> {
    tiers: Vec<Vec<T>>,
    /// The tracker in use: (tier, index in the tier).
    at: (usize, usize),
}

impl<T: Clone + PartialEq> TrackerList<T> {
    /// `tiers` in order (empty tiers and repeats dropped), each shuffled
    /// with `rng`. `None` when no tracker is left.
    pub fn new(tiers: Vec<Vec<T>>, rng: &mut fastrand::Rng) -> Option<TrackerList<T>> {
        let mut seen = Vec::new();
        let mut out = Vec::new();
        for tier in tiers {
            let mut t: Vec<T> = Vec::new();
            for a in tier {
                if !seen.contains(&a) && !t.contains(&a) {
                    t.push(a);
                }
            }
            seen.extend(t.iter().cloned());
            if !t.is_empty() {
                rng.shuffle(&mut t);
                out.push(t);
            }
        }
        (!out.is_empty()).then_some(TrackerList {
            tiers: out,
            at: (0, 0),
        })
    }

    /// One tracker alone.
    pub fn single(addr: T) -> TrackerList<T> {
        TrackerList {
            tiers: vec![vec![addr]],
            at: (0, 0),
        }
    }

    /// The tracker in use.
    pub fn current(&self) -> T {
        self.tiers[self.at.0][self.at.1].clone()
    }

    /// How many trackers in all.
    pub fn len(&self) -> usize {
        self.tiers.iter().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the tracker in use is the first of the first tier.
    pub fn at_first(&self) -> bool {
        self.at == (0, 0)
    }

    /// The first tracker of the first tier: where to come back to.
    pub fn first(&self) -> T {
        self.tiers[0][0].clone()
    }

    /// The tracker in use did not answer: the next one (in its tier, then
    /// the next tier, then the first tier again). Returns it.
    pub fn failed(&mut self) -> T {
        let (t, i) = self.at;
        self.at = if i + 1 < self.tiers[t].len() {
            (t, i + 1)
        } else if t + 1 < self.tiers.len() {
            (t + 1, 0)
        } else {
            (0, 0)
        };
        self.current()
    }

    /// The tracker in use answered: it moves to the front of its tier.
    pub fn answered(&mut self) {
        let (t, i) = self.at;
        if i > 0 {
            let a = self.tiers[t].remove(i);
            self.tiers[t].insert(0, a);
            self.at = (t, 0);
        }
    }

    /// Back to the first tracker of the first tier (it answered again).
    pub fn back_to_first(&mut self) {
        self.at = (0, 0);
    }

    /// Every tracker, in the order they are tried.
    pub fn all(&self) -> Vec<T> {
        self.tiers.iter().flatten().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn tiers_in_order_each_tracker_once() {
        let mut rng = fastrand::Rng::with_seed(1);
        let l =
            TrackerList::new(vec![vec![a(1)], vec![], vec![a(2), a(1), a(3)]], &mut rng).unwrap();
        assert_eq!(l.current(), a(1));
        assert_eq!(l.len(), 3);
        let mut rest = l.all()[1..].to_vec();
        rest.sort();
        assert_eq!(rest, vec![a(2), a(3)]);
        assert!(TrackerList::<SocketAddr>::new(vec![vec![]], &mut rng).is_none());
    }

    #[test]
    fn failing_moves_on_and_wraps_answering_moves_to_front() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut l = TrackerList::new(vec![vec![a(1)], vec![a(2), a(3)]], &mut rng).unwrap();
        assert!(l.at_first());
        let second = l.failed();
        assert_ne!(second, a(1));
        assert!(!l.at_first());
        let third = l.failed();
        assert_ne!(third, second);
        l.answered();
        assert_eq!(l.all()[1], third, "the one that answered leads its tier");
        assert_eq!(l.current(), third);
        l.failed();
        l.failed();
        assert_eq!(l.current(), a(1), "after the last tier, the first again");
        l.failed();
        l.back_to_first();
        assert!(l.at_first());
    }

    #[test]
    fn one_tier_is_shuffled_once() {
        let tier: Vec<SocketAddr> = (1..=8).map(a).collect();
        let orders: std::collections::HashSet<Vec<SocketAddr>> = (0..20)
            .map(|s| {
                let mut rng = fastrand::Rng::with_seed(s);
                TrackerList::new(vec![tier.clone()], &mut rng)
                    .unwrap()
                    .all()
            })
            .collect();
        assert!(orders.len() > 1, "shuffled");
    }
}
