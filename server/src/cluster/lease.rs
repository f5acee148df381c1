//! The plenary lease as one node sees it: which meetings' leases it wants, which it holds, and
//! until when it may act on one (pure: the caller passes the time; [`super::leases`] does the
//! I/O).
//!
//! Exactly one node merges a meeting's plenary at a time: the holder of the meeting's lease row
//! in the database. The database grants a lease until ITS clock reads `now() + ttl` at the
//! grant, and that `now()` is no earlier than the moment this node sent the request. So the
//! grant lasts at least `ttl` from the moment the request was sent, on any clock that runs at
//! the database's rate. This node counts a lease as held for [`LeaseTiming::held_for`] (`ttl`
//! less a quarter) from that moment: it stops merging a quarter TTL before the database could
//! let another node take the lease, whatever the request's round trip was. The merge's own
//! write is fenced too (its epoch is checked in its transaction), so this margin only keeps a
//! slow node from wasting merges; the fence is what keeps a paused one from writing.
//!
//! A node wants a meeting's lease while the meeting was active on it within the interest
//! window (a command reached one of its rooms, or a room had members at a tick). It asks for
//! every wanted lease every [`LeaseTiming::renew_every`] (a third of the TTL, so one lost
//! round trip does not lose the lease) and hands back the leases it no longer wants.

use std::collections::HashMap;
use std::time::Duration;
use tokio::time::Instant;

/// The lease's TTL and what follows from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTiming {
    /// How long the database grants a lease for.
    pub ttl: Duration,
    /// How long after its last activity a meeting's lease is still wanted.
    pub interest: Duration,
}

impl LeaseTiming {
    pub const DEFAULT_TTL: Duration = Duration::from_secs(3);

    pub fn new(ttl: Duration, interest: Duration) -> LeaseTiming {
        LeaseTiming { ttl, interest }
    }

    /// How often leases are asked for (acquired or renewed).
    pub fn renew_every(&self) -> Duration {
        self.ttl / 3
    }

    /// How long after the request that granted a lease this node acts on it.
    pub fn held_for(&self) -> Duration {
        self.ttl - self.ttl / 4
    }
}

/// A lease this node was granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    pub epoch: i64,
    /// This node acts on the lease until then.
    pub until: Instant,
}

/// What a round of grants changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Newly held (not held before, or under another epoch: someone else may have merged in
    /// between, so the plenary must be rebuilt from the store).
    pub gained: Vec<String>,
    /// Held before, and refused now (another node holds it).
    pub lost: Vec<String>,
}

/// What to ask the database for in one round.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Leases to acquire or renew, sorted.
    pub ask: Vec<String>,
    /// Leases held but no longer wanted: to hand back, sorted.
    pub release: Vec<String>,
}

/// One node's leases, by meeting id.
#[derive(Debug)]
pub struct LeaseBook {
    timing: LeaseTiming,
    held: HashMap<String, Held>,
    /// Last activity per meeting.
    touched: HashMap<String, Instant>,
}

impl LeaseBook {
    pub fn new(timing: LeaseTiming) -> LeaseBook {
        LeaseBook {
            timing,
            held: HashMap::new(),
            touched: HashMap::new(),
        }
    }

    pub fn timing(&self) -> LeaseTiming {
        self.timing
    }

    /// The meeting was active on this node at `now`.
    pub fn touch(&mut self, meeting: &str, now: Instant) {
        match self.touched.get_mut(meeting) {
            Some(t) => *t = (*t).max(now),
            None => {
                self.touched.insert(meeting.to_owned(), now);
            }
        }
    }

    /// The epoch of the meeting's lease if this node may act on it at `now`.
    pub fn holds(&self, meeting: &str, now: Instant) -> Option<i64> {
        self.held.get(meeting).filter(|h| now < h.until).map(|h| h.epoch)
    }

    /// Every meeting whose lease this node may act on at `now`.
    pub fn held_now(&self, now: Instant) -> Vec<String> {
        let mut v: Vec<String> = self
            .held
            .iter()
            .filter(|(_, h)| now < h.until)
            .map(|(m, _)| m.clone())
            .collect();
        v.sort();
        v
    }

    /// What to ask for at `now`: every meeting active within the interest window; the held
    /// ones that are not are to be handed back (and are dropped from the book at once, so that
    /// nothing merges on them any more). Forgets activity older than the window.
    pub fn plan(&mut self, now: Instant) -> Plan {
        let window = self.timing.interest;
        self.touched
            .retain(|_, t| now.saturating_duration_since(*t) < window);
        let mut ask: Vec<String> = self.touched.keys().cloned().collect();
        ask.sort();
        let mut release: Vec<String> = self
            .held
            .keys()
            .filter(|m| !self.touched.contains_key(*m))
            .cloned()
            .collect();
        release.sort();
        for m in &release {
            self.held.remove(m);
        }
        Plan { ask, release }
    }

    /// The database answered a request sent at `asked_at` for `asked` with `granted` (meeting,
    /// epoch): what this node now holds, until `asked_at` + [`LeaseTiming::held_for`].
    pub fn granted(&mut self, asked_at: Instant, asked: &[String], granted: &[(String, i64)]) -> Changes {
        let until = asked_at + self.timing.held_for();
        let mut changes = Changes::default();
        for (meeting, epoch) in granted {
            let before = self.held.insert(meeting.clone(), Held { epoch: *epoch, until });
            if before.map(|b| b.epoch) != Some(*epoch) {
                changes.gained.push(meeting.clone());
            }
        }
        for meeting in asked {
            if !granted.iter().any(|(m, _)| m == meeting) && self.held.remove(meeting).is_some() {
                changes.lost.push(meeting.clone());
            }
        }
        changes.gained.sort();
        changes.lost.sort();
        changes
    }

    /// Everything held, dropped from the book (handing back at shutdown).
    pub fn take_all(&mut self) -> Vec<String> {
        let mut v: Vec<String> = self.held.drain().map(|(m, _)| m).collect();
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(3);
    const INTEREST: Duration = Duration::from_secs(30);

    fn book() -> LeaseBook {
        LeaseBook::new(LeaseTiming::new(TTL, INTEREST))
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn renewals_come_three_times_per_ttl_and_a_lease_is_acted_on_for_three_quarters_of_it() {
        let t = LeaseTiming::new(TTL, INTEREST);
        assert_eq!(t.renew_every(), Duration::from_secs(1));
        assert_eq!(t.held_for(), Duration::from_millis(2250));
        // one lost renewal still leaves the lease held until the next one
        assert!(t.renew_every() * 2 < t.held_for());
        assert!(t.held_for() < t.ttl);
    }

    #[tokio::test(start_paused = true)]
    async fn a_grant_is_held_from_the_request_not_from_the_answer() {
        let mut b = book();
        b.touch("m", Instant::now());
        let plan = b.plan(Instant::now());
        assert_eq!(plan.ask, s(&["m"]));
        let asked_at = Instant::now();
        // a slow round trip: the answer comes a second later
        tokio::time::advance(Duration::from_secs(1)).await;
        let ch = b.granted(asked_at, &plan.ask, &[("m".into(), 1)]);
        assert_eq!(ch.gained, s(&["m"]));
        assert_eq!(b.holds("m", Instant::now()), Some(1));
        tokio::time::advance(Duration::from_millis(1249)).await;
        assert_eq!(b.holds("m", Instant::now()), Some(1), "2.249 s after the request");
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(
            b.holds("m", Instant::now()),
            None,
            "2.25 s after the request: stop, 0.75 s before the database could expire it"
        );
        assert!(b.held_now(Instant::now()).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_renewal_under_the_same_epoch_extends_without_a_gain() {
        let mut b = book();
        b.touch("m", Instant::now());
        let ask = b.plan(Instant::now()).ask;
        assert_eq!(
            b.granted(Instant::now(), &ask, &[("m".into(), 4)]).gained,
            s(&["m"])
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        let ask = b.plan(Instant::now()).ask;
        let ch = b.granted(Instant::now(), &ask, &[("m".into(), 4)]);
        assert_eq!(ch, Changes::default());
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(b.holds("m", Instant::now()), Some(4), "extended from the renewal");
        // granted again under a new epoch (it lapsed on the database meanwhile): a gain
        let ch = b.granted(Instant::now(), &ask, &[("m".into(), 5)]);
        assert_eq!(ch.gained, s(&["m"]));
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_renewal_loses_the_lease_at_once() {
        let mut b = book();
        b.touch("m", Instant::now());
        b.touch("n", Instant::now());
        let ask = b.plan(Instant::now()).ask;
        b.granted(Instant::now(), &ask, &[("m".into(), 1), ("n".into(), 1)]);
        let ch = b.granted(Instant::now(), &ask, &[("n".into(), 1)]);
        assert_eq!(ch.lost, s(&["m"]));
        assert_eq!(b.holds("m", Instant::now()), None);
        assert_eq!(b.holds("n", Instant::now()), Some(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_lease_is_wanted_while_its_meeting_was_active_within_the_window_then_handed_back() {
        let mut b = book();
        b.touch("m", Instant::now());
        let ask = b.plan(Instant::now()).ask;
        b.granted(Instant::now(), &ask, &[("m".into(), 1)]);
        tokio::time::advance(Duration::from_secs(10)).await;
        b.touch("m", Instant::now());
        // an older touch (reported late) does not move the last activity back
        b.touch("m", Instant::now() - Duration::from_secs(5));
        let ask = b.plan(Instant::now()).ask;
        b.granted(Instant::now(), &ask, &[("m".into(), 1)]);
        tokio::time::advance(INTEREST - Duration::from_millis(1)).await;
        let plan = b.plan(Instant::now());
        assert_eq!(plan.ask, s(&["m"]));
        assert!(plan.release.is_empty());
        b.granted(Instant::now(), &plan.ask, &[("m".into(), 1)]);
        tokio::time::advance(Duration::from_millis(1)).await;
        let plan = b.plan(Instant::now());
        assert!(plan.ask.is_empty());
        assert_eq!(plan.release, s(&["m"]));
        assert_eq!(
            b.holds("m", Instant::now()),
            None,
            "dropped before it is handed back"
        );
        assert_eq!(b.plan(Instant::now()), Plan::default());
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_is_held_without_a_grant_and_take_all_empties_the_book() {
        let mut b = book();
        assert_eq!(b.holds("m", Instant::now()), None);
        b.touch("m", Instant::now());
        b.touch("a", Instant::now());
        let ask = b.plan(Instant::now()).ask;
        assert_eq!(ask, s(&["a", "m"]), "sorted");
        b.granted(Instant::now(), &ask, &[("a".into(), 2), ("m".into(), 1)]);
        assert_eq!(b.held_now(Instant::now()), s(&["a", "m"]));
        assert_eq!(b.take_all(), s(&["a", "m"]));
        assert_eq!(b.holds("a", Instant::now()), None);
    }
}
