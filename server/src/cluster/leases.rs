//! This node's plenary leases: the table rooms read ([`Leases`]) and the task that keeps it
//! current against the database ([`spawn`]), through a [`LeaseStore`] (PostgreSQL:
//! `store::postgres::lease`). The decisions are [`super::lease`]'s.
//!
//! On the embedded store a node is alone: [`Leases::solo`] holds every lease, unfenced, and
//! keeps no room loaded for it (single-node behaviour unchanged).

use super::lease::{LeaseBook, LeaseTiming};
use crate::store::{Fence, StoreError};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub type LeaseFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Where leases are kept: rows acquired and renewed on the keeper's clock.
pub trait LeaseStore: Send + Sync + 'static {
    /// For each of `meetings` (sorted): renews the lease if `holder` holds it and it has not
    /// expired; takes it if it is free or expired (raising its epoch); leaves it otherwise.
    /// Returns the leases `holder` now holds, with their epochs. Each lasts `ttl` from the
    /// keeper's clock at the grant.
    fn take<'a>(
        &'a self,
        holder: &'a str,
        meetings: &'a [String],
        ttl: Duration,
    ) -> LeaseFuture<'a, Vec<(String, i64)>>;
    /// Expires `holder`'s leases of `meetings` now, so that another node takes them at once.
    fn hand_back<'a>(&'a self, holder: &'a str, meetings: &'a [String]) -> LeaseFuture<'a, ()>;
}

/// May this node's plenary room of a meeting merge now?
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeRight {
    /// Alone on its store: always, unfenced.
    Solo,
    /// It holds the lease: its merge writes carry this fence.
    Holder(Fence),
    /// Another node merges (or none yet): the plenary here is a replica.
    Replica,
}

impl MergeRight {
    pub fn may_merge(&self) -> bool {
        !matches!(self, MergeRight::Replica)
    }

    pub fn fence(&self) -> Option<Fence> {
        match self {
            MergeRight::Holder(f) => Some(f.clone()),
            _ => None,
        }
    }
}

pub struct Leases {
    node: String,
    /// `None` alone on the store: every lease is held.
    book: Option<Mutex<LeaseBook>>,
    stop: CancellationToken,
    /// Held by the task for each round, and by [`Leases::hand_back`]: no grant lands after the
    /// hand-back.
    round: tokio::sync::Mutex<Option<Arc<dyn LeaseStore>>>,
    /// [`spawn`]'s `on_gained`, for a lease taken by [`Leases::ask_now`].
    gained: Mutex<Option<GainedHook>>,
}

type GainedHook = Arc<dyn Fn(Vec<String>) + Send + Sync>;

impl Leases {
    /// Alone on the store: every lease held, nothing fenced, no room kept loaded.
    pub fn solo(node: &str) -> Leases {
        Leases {
            node: node.to_owned(),
            book: None,
            stop: CancellationToken::new(),
            round: tokio::sync::Mutex::new(None),
            gained: Mutex::new(None),
        }
    }

    /// A node of a cluster: nothing held until [`spawn`]'s task is granted leases.
    pub fn shared(node: &str, timing: LeaseTiming) -> Leases {
        Leases {
            node: node.to_owned(),
            book: Some(Mutex::new(LeaseBook::new(timing))),
            stop: CancellationToken::new(),
            round: tokio::sync::Mutex::new(None),
            gained: Mutex::new(None),
        }
    }

    fn with_book<R>(&self, f: impl FnOnce(&mut LeaseBook) -> R) -> Option<R> {
        let book = self.book.as_ref()?;
        let mut b = book.lock().unwrap_or_else(|e| e.into_inner());
        Some(f(&mut b))
    }

    /// The meeting is active on this node (a room of it handled a command or has members).
    pub fn touch(&self, meeting: &str) {
        self.with_book(|b| b.touch(meeting, Instant::now()));
    }

    /// Asks for the meeting's lease now rather than at the next round (a plenary is loading:
    /// its first merge need not wait up to a round, nor its first follower see it unmerged).
    /// Returns once the database answered, or failed, or [`spawn`] has not started.
    pub async fn ask_now(&self, meeting: &str) {
        let now = Instant::now();
        let Some((timing, held)) = self.with_book(|b| {
            b.touch(meeting, now);
            (b.timing(), b.holds(meeting, now).is_some())
        }) else {
            return;
        };
        if held {
            return;
        }
        let round = self.round.lock().await;
        let Some(store) = round.as_ref() else { return };
        if let Some(gained) = one_round(self, store.as_ref(), timing).await {
            let hook = self.gained.lock().unwrap_or_else(|e| e.into_inner()).clone();
            if let (false, Some(hook)) = (gained.is_empty(), hook) {
                hook(gained);
            }
        }
    }

    pub fn merge_right(&self, meeting: &str) -> MergeRight {
        match self.with_book(|b| b.holds(meeting, Instant::now())) {
            None => MergeRight::Solo,
            Some(Some(epoch)) => MergeRight::Holder(Fence {
                meeting: meeting.to_owned(),
                holder: self.node.clone(),
                epoch,
            }),
            Some(None) => MergeRight::Replica,
        }
    }

    /// Rooms of the meeting stay loaded (they hear the other nodes' edits for the merge): this
    /// node holds its lease in a cluster.
    pub fn pins(&self, meeting: &str) -> bool {
        matches!(self.merge_right(meeting), MergeRight::Holder(_))
    }

    /// Stops renewing and expires every lease held, so that other nodes take them at once
    /// (shutdown, after the rooms flushed). Nothing merges here afterwards.
    pub async fn hand_back(&self) {
        self.stop.cancel();
        let store = self.round.lock().await.take();
        let held = self.with_book(|b| b.take_all()).unwrap_or_default();
        let Some(store) = store else { return };
        if held.is_empty() {
            return;
        }
        match tokio::time::timeout(Duration::from_secs(5), store.hand_back(&self.node, &held)).await {
            Ok(Ok(())) => tracing::info!(meetings = ?held, "plenary leases handed back"),
            Ok(Err(e)) => tracing::warn!(error = %e, "could not hand the plenary leases back; they expire"),
            Err(_) => tracing::warn!("handing the plenary leases back timed out; they expire"),
        }
    }
}

/// Keeps `leases` current: every `renew_every`, asks `store` for the wanted leases and hands
/// back the others; `on_gained` is told of each lease newly held (its plenary must be rebuilt
/// from the store, and its rooms loaded). Stops at [`Leases::hand_back`].
pub fn spawn(
    leases: Arc<Leases>,
    store: Arc<dyn LeaseStore>,
    on_gained: impl Fn(Vec<String>) + Send + Sync + 'static,
) -> tokio::task::JoinHandle<()> {
    let on_gained: GainedHook = Arc::new(on_gained);
    *leases.gained.lock().unwrap_or_else(|e| e.into_inner()) = Some(on_gained.clone());
    tokio::spawn(async move {
        let Some(timing) = leases.with_book(|b| b.timing()) else {
            return;
        };
        *leases.round.lock().await = Some(store);
        let mut tick = tokio::time::interval(timing.renew_every());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = leases.stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            let round = leases.round.lock().await;
            let Some(store) = round.as_ref() else { break };
            if let Some(gained) = one_round(&leases, store.as_ref(), timing).await {
                if !gained.is_empty() {
                    on_gained(gained);
                }
            }
        }
    })
}

/// One round: hand back, then ask. The newly gained meetings, `None` if the store failed (the
/// leases held lapse on their own).
async fn one_round(leases: &Leases, store: &dyn LeaseStore, timing: LeaseTiming) -> Option<Vec<String>> {
    let plan = leases.with_book(|b| b.plan(Instant::now()))?;
    if !plan.release.is_empty() {
        if let Err(e) = store.hand_back(&leases.node, &plan.release).await {
            tracing::debug!(error = %e, "could not hand back unused plenary leases; they expire");
        }
    }
    if plan.ask.is_empty() {
        return Some(Vec::new());
    }
    let asked_at = Instant::now();
    // A grant answered after its TTL is of no use: the lease would already be given up here.
    let granted =
        match tokio::time::timeout(timing.ttl, store.take(&leases.node, &plan.ask, timing.ttl)).await {
            Ok(Ok(g)) => g,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "could not renew the plenary leases");
                return None;
            }
            Err(_) => {
                tracing::warn!("renewing the plenary leases timed out");
                return None;
            }
        };
    let changes = leases.with_book(|b| b.granted(asked_at, &plan.ask, &granted))?;
    if !changes.lost.is_empty() {
        tracing::info!(meetings = ?changes.lost, "plenary leases lost to another node");
    }
    if !changes.gained.is_empty() {
        tracing::info!(meetings = ?changes.gained, "plenary leases taken: this node merges them");
    }
    Some(changes.gained)
}

/// Leases in memory, on the local clock: a stand-in keeper for tests of several nodes in one
/// process.
#[derive(Default)]
pub struct MemoryLeases {
    rows: Mutex<std::collections::HashMap<String, (String, i64, Instant)>>,
}

impl LeaseStore for MemoryLeases {
    fn take<'a>(
        &'a self,
        holder: &'a str,
        meetings: &'a [String],
        ttl: Duration,
    ) -> LeaseFuture<'a, Vec<(String, i64)>> {
        Box::pin(async move {
            let now = Instant::now();
            let mut rows = self.rows.lock().unwrap_or_else(|e| e.into_inner());
            let mut out = Vec::new();
            for m in meetings {
                let row = rows.entry(m.clone()).or_insert((String::new(), 0, now));
                let live = row.2 > now;
                if live && row.0 != holder {
                    continue;
                }
                if !(live && row.0 == holder) {
                    row.1 += 1;
                    row.0 = holder.to_owned();
                }
                row.2 = now + ttl;
                out.push((m.clone(), row.1));
            }
            Ok(out)
        })
    }

    fn hand_back<'a>(&'a self, holder: &'a str, meetings: &'a [String]) -> LeaseFuture<'a, ()> {
        Box::pin(async move {
            let now = Instant::now();
            let mut rows = self.rows.lock().unwrap_or_else(|e| e.into_inner());
            for m in meetings {
                if let Some(row) = rows.get_mut(m) {
                    if row.0 == holder && row.2 > now {
                        row.2 = now;
                    }
                }
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing() -> LeaseTiming {
        LeaseTiming::new(Duration::from_secs(3), Duration::from_secs(30))
    }

    type Gains = Arc<Mutex<Vec<String>>>;

    fn node(name: &str, keeper: &Arc<MemoryLeases>) -> (Arc<Leases>, Gains, tokio::task::JoinHandle<()>) {
        let leases = Arc::new(Leases::shared(name, timing()));
        let gains: Gains = Default::default();
        let g = gains.clone();
        let task = spawn(leases.clone(), keeper.clone(), move |m| {
            g.lock().unwrap().extend(m)
        });
        (leases, gains, task)
    }

    /// Advances the paused clock in small steps until `f` holds (bounded).
    async fn until(mut f: impl FnMut() -> bool) {
        for _ in 0..1000 {
            if f() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("condition not reached");
    }

    #[test]
    fn alone_every_lease_is_held_unfenced_and_nothing_is_pinned() {
        let l = Leases::solo("n");
        assert_eq!(l.merge_right("m"), MergeRight::Solo);
        assert!(l.merge_right("m").may_merge());
        assert!(!l.pins("m"));
    }

    #[tokio::test(start_paused = true)]
    async fn one_node_of_two_holds_a_lease_and_the_other_takes_it_when_it_stops_renewing() {
        let keeper = Arc::new(MemoryLeases::default());
        let (a, a_gains, a_task) = node("a", &keeper);
        a.touch("m");
        until(|| a.pins("m")).await;
        let (b, b_gains, _b_task) = node("b", &keeper);
        b.touch("m");
        assert_eq!(b.merge_right("m"), MergeRight::Replica);
        // b keeps asking while a renews: a keeps it
        for _ in 0..10 {
            a.touch("m");
            b.touch("m");
            tokio::time::sleep(Duration::from_millis(500)).await;
            assert!(a.pins("m") && !b.pins("m"));
        }
        let MergeRight::Holder(fa) = a.merge_right("m") else {
            panic!()
        };
        assert_eq!((fa.holder.as_str(), fa.epoch), ("a", 1));
        // a dies (stops renewing without handing back): b takes it within TTL + a round
        a_task.abort();
        let died = Instant::now();
        until(|| {
            b.touch("m");
            b.pins("m")
        })
        .await;
        assert!(died.elapsed() <= Duration::from_secs(3) + Duration::from_secs(1));
        let MergeRight::Holder(fb) = b.merge_right("m") else {
            panic!()
        };
        assert_eq!(fb.epoch, 2, "a new holder raises the epoch");
        assert_eq!(a_gains.lock().unwrap().as_slice(), ["m"]);
        assert_eq!(b_gains.lock().unwrap().as_slice(), ["m"]);
        // a, frozen, acts on its lease no longer: it lapsed here before the keeper let b take it
        assert!(!a.pins("m"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_lease_handed_back_is_taken_by_the_next_round_of_another_node() {
        let keeper = Arc::new(MemoryLeases::default());
        let (a, _, _a_task) = node("a", &keeper);
        a.touch("m");
        until(|| a.pins("m")).await;
        let (b, _, _b_task) = node("b", &keeper);
        a.hand_back().await;
        assert!(!a.pins("m"));
        let handed = Instant::now();
        until(|| {
            b.touch("m");
            b.pins("m")
        })
        .await;
        assert!(
            handed.elapsed() <= Duration::from_millis(1100),
            "one round, not a TTL"
        );
        // a asks no more after handing back
        a.touch("m");
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(!a.pins("m"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_meeting_no_longer_active_is_handed_back() {
        let keeper = Arc::new(MemoryLeases::default());
        let (a, _, _t) = node("a", &keeper);
        a.touch("m");
        until(|| a.pins("m")).await;
        tokio::time::sleep(Duration::from_secs(31)).await;
        assert!(!a.pins("m"));
        let (b, _, _tb) = node("b", &keeper);
        b.touch("m");
        let t = Instant::now();
        until(|| b.pins("m")).await;
        assert!(t.elapsed() <= Duration::from_millis(1100), "a had handed it back");
    }
}
