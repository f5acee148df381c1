//! A room as one replica of its document's log, when other nodes write to the same store
//! (issue 13): its watermark, what it does with other nodes' rings, and its reads of the log
//! that fill gaps. Knows nothing of members or of the document: the room applies and relays
//! what this part says is new.
//!
//! - Own appends raise the watermark once durable, with the numbers the store gave them.
//! - A ring ([`Replica::judge`]) is stale, applied at once (its bytes follow the watermark), or
//!   wants a read of the log (a gap, a ring without its bytes).
//! - The node's periodic check of the heads ([`Replica::store_head`]) wants a read when the
//!   store is ahead (a lost ring). The head moves with this node's own appends too: while one
//!   of those is in flight the head check waits for the next check before it reads.
//! - One read at a time ([`Replica::start_read`]), awaited in the room's loop beside its other
//!   work, so that a slow database never stalls the room; a failed read is retried on the
//!   next ring or check.

use super::watermark::Watermark;
use crate::cluster::rings::{on_ring, Next, Ring};
use crate::store::{DocTail, Store, StoreError};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

type Read = Pin<Box<dyn Future<Output = Result<DocTail, StoreError>> + Send>>;

pub struct Replica {
    mark: Watermark,
    /// A read of the log is wanted up to at least this number.
    wanted: i64,
    /// The read in flight and the watermark it read after.
    reading: Option<(i64, Read)>,
    /// The head the last periodic check saw.
    last_check: i64,
}

impl Replica {
    /// A replica loaded with every update up to `head`.
    pub fn new(head: i64) -> Replica {
        Replica {
            mark: Watermark::new(head),
            wanted: 0,
            reading: None,
            last_check: 0,
        }
    }

    /// Every update up to here is applied: what a snapshot may claim to cover.
    pub fn watermark(&self) -> i64 {
        self.mark.get()
    }

    /// Updates `first..=last` are applied here (this node's own durable append, or another
    /// node's updates the room applied).
    pub fn applied(&mut self, first: i64, last: i64) {
        self.mark.applied(first, last);
    }

    /// What to do with another node's ring. `Apply`: the room applies the updates, then calls
    /// [`Replica::applied`] with the ring's range. `Fetch`: a read is wanted.
    pub fn judge(&mut self, ring: &Ring) -> Next {
        if self.mark.holds(ring.first, ring.last) {
            return Next::Stale;
        }
        let next = on_ring(self.mark.get(), ring);
        if let Next::Fetch { upto, .. } = next {
            self.want(upto);
        }
        next
    }

    /// The store's head of the document, from the node's periodic check. `idle`: none of this
    /// node's appends is in flight (else the head may be one of them, not yet confirmed here).
    pub fn store_head(&mut self, head: i64, idle: bool) {
        let behind_before = self.last_check > self.mark.get();
        self.last_check = head;
        if head > self.mark.get() && (idle || behind_before) {
            self.want(head);
        }
    }

    fn want(&mut self, upto: i64) {
        self.wanted = self.wanted.max(upto);
    }

    /// Starts a read of the log after the watermark, if one is wanted and none is in flight.
    /// True if it started one.
    pub fn start_read(&mut self, store: &Arc<dyn Store>, doc: &str) -> bool {
        if self.reading.is_some() || self.wanted <= self.mark.get() {
            return false;
        }
        let after = self.mark.get();
        let store = store.clone();
        let doc = doc.to_owned();
        let read: Read = Box::pin(async move { store.updates_after(&doc, after).await });
        self.reading = Some((after, read));
        true
    }

    pub fn is_reading(&self) -> bool {
        self.reading.is_some()
    }

    /// The answer of the read in flight (never resolves without one: guard with
    /// [`Replica::is_reading`]). Cancel-safe: the read stays in flight if this is dropped.
    pub async fn read_done(&mut self) -> Result<DocTail, StoreError> {
        let Some((_, read)) = self.reading.as_mut() else {
            return std::future::pending().await;
        };
        let result = read.await;
        self.reading = None;
        result
    }

    /// What of a read's answer is new here, in order: the snapshot first when the log after
    /// the watermark was folded into it, then the updates not applied yet.
    pub fn fresh(&self, tail: &DocTail) -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = tail.snapshot.iter().cloned().collect();
        out.extend(
            tail.updates
                .iter()
                .filter(|(seq, _)| !self.mark.holds(*seq, *seq))
                .map(|(_, u)| u.clone()),
        );
        out
    }

    /// The room applied a read's answer (from [`Replica::fresh`]) whose head was `head`. True
    /// if another read should start at once (rings asked for more meanwhile and this read made
    /// progress); otherwise a read still wanted waits for the next ring or check.
    pub fn read_applied(&mut self, head: i64) -> bool {
        let before = self.mark.get();
        self.mark.caught_up_to(head);
        self.wanted > self.mark.get() && self.mark.get() > before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(first: i64, updates: &[&[u8]]) -> Ring {
        Ring {
            doc: "m/g".into(),
            first,
            last: first + updates.len() as i64 - 1,
            updates: Some(updates.iter().map(|u| u.to_vec()).collect()),
        }
    }

    #[test]
    fn rings_after_the_watermark_apply_and_gaps_want_a_read() {
        let mut r = Replica::new(4);
        assert_eq!(r.judge(&ring(5, &[b"5"])), Next::Apply(vec![b"5".to_vec()]));
        r.applied(5, 5);
        assert_eq!(r.judge(&ring(5, &[b"5"])), Next::Stale);
        assert_eq!(r.wanted, 0);
        assert_eq!(r.judge(&ring(8, &[b"8"])), Next::Fetch { after: 5, upto: 8 });
        assert_eq!(r.wanted, 8);
    }

    #[test]
    fn a_ring_over_own_updates_above_a_gap_is_stale() {
        let mut r = Replica::new(4);
        r.applied(6, 7);
        assert_eq!(r.judge(&ring(6, &[b"6", b"7"])), Next::Stale);
        assert_eq!(r.watermark(), 4);
        assert_eq!(r.judge(&ring(5, &[b"5"])), Next::Apply(vec![b"5".to_vec()]));
        r.applied(5, 5);
        assert_eq!(r.watermark(), 7);
    }

    #[test]
    fn the_head_check_waits_for_own_appends_in_flight_but_not_twice() {
        let mut r = Replica::new(3);
        // the head may be this node's append, not confirmed yet
        r.store_head(4, false);
        assert_eq!(r.wanted, 0);
        // still behind that head at the next check: read
        r.store_head(4, false);
        assert_eq!(r.wanted, 4);
        let mut idle = Replica::new(3);
        idle.store_head(5, true);
        assert_eq!(idle.wanted, 5);
        let mut level = Replica::new(5);
        level.store_head(5, true);
        assert_eq!(level.wanted, 0);
    }

    #[test]
    fn a_read_yields_what_is_new_and_catches_up_to_its_head() {
        let mut r = Replica::new(2);
        r.applied(4, 4);
        let tail = DocTail {
            snapshot: None,
            updates: vec![(3, b"3".to_vec()), (4, b"4".to_vec()), (5, b"5".to_vec())],
            head: 5,
        };
        assert_eq!(r.fresh(&tail), vec![b"3".to_vec(), b"5".to_vec()]);
        r.want(9);
        assert!(r.read_applied(5), "progress and more wanted: read again");
        assert_eq!(r.watermark(), 5);
        assert!(!r.read_applied(5), "no progress: wait for the next check");
        let folded = DocTail {
            snapshot: Some(b"s".to_vec()),
            updates: vec![(9, b"9".to_vec())],
            head: 9,
        };
        assert_eq!(r.fresh(&folded), vec![b"s".to_vec(), b"9".to_vec()]);
        assert!(!r.read_applied(9));
        assert_eq!(r.watermark(), 9);
    }
}
