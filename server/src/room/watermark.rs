//! How far a room's replica has applied its document's log (pure): the store numbers each
//! document's updates 1, 2, 3, … in commit order, whichever node appended them. The watermark
//! is the highest number up to which every update is applied here. Ranges applied above a gap
//! (this node's own appends committed after another node's that was not heard yet) are
//! remembered, so that the watermark jumps over them once the gap is filled.
//!
//! A snapshot may claim only the watermark ([`Watermark::get`]): it holds every update up to
//! it, and may hold later ones too (harmless: Yjs updates are idempotent).

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watermark {
    /// Every update up to here is applied.
    contiguous: i64,
    /// Applied ranges above `contiguous + 1`, by first number: `first -> last`, disjoint, not
    /// touching `contiguous`.
    above: BTreeMap<i64, i64>,
}

impl Watermark {
    /// A replica loaded with every update up to `head`.
    pub fn new(head: i64) -> Watermark {
        Watermark {
            contiguous: head.max(0),
            above: BTreeMap::new(),
        }
    }

    /// The highest number up to which every update is applied.
    pub fn get(&self) -> i64 {
        self.contiguous
    }

    /// Updates above the watermark are applied while one before them is not.
    pub fn has_gap(&self) -> bool {
        !self.above.is_empty()
    }

    /// Every update of `first..=last` is applied here.
    pub fn holds(&self, first: i64, last: i64) -> bool {
        if last <= self.contiguous {
            return true;
        }
        let from = first.max(self.contiguous + 1);
        self.above
            .range(..=from)
            .next_back()
            .is_some_and(|(_, &end)| end >= last)
    }

    /// Updates `first..=last` are now applied.
    pub fn applied(&mut self, first: i64, last: i64) {
        if last < first || last <= self.contiguous {
            return;
        }
        let mut first = first.max(self.contiguous + 1);
        let mut last = last;
        // Merge with every range it overlaps or touches.
        let touching: Vec<(i64, i64)> = self
            .above
            .range(..=last.saturating_add(1))
            .filter(|(_, &end)| end.saturating_add(1) >= first)
            .map(|(&s, &e)| (s, e))
            .collect();
        for (s, e) in touching {
            self.above.remove(&s);
            first = first.min(s);
            last = last.max(e);
        }
        if first <= self.contiguous + 1 {
            self.contiguous = last;
        } else {
            self.above.insert(first, last);
        }
    }

    /// Every update up to `head` is applied (a read of the log up to its head).
    pub fn caught_up_to(&mut self, head: i64) {
        self.applied(1, head);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguous_updates_raise_the_watermark() {
        let mut w = Watermark::new(3);
        assert_eq!(w.get(), 3);
        w.applied(4, 6);
        assert_eq!(w.get(), 6);
        assert!(!w.has_gap());
        // already applied: nothing moves
        w.applied(2, 5);
        assert_eq!(w.get(), 6);
        assert!(w.holds(1, 6));
        assert!(!w.holds(6, 7));
    }

    #[test]
    fn own_ranges_above_a_gap_wait_until_the_gap_is_filled() {
        let mut w = Watermark::new(5);
        // this node's batch got 7..8: another node's 6 is not heard yet
        w.applied(7, 8);
        assert_eq!(w.get(), 5, "the watermark claims an update it has not applied");
        assert!(w.has_gap());
        assert!(w.holds(7, 8));
        assert!(!w.holds(6, 8));
        w.applied(11, 11);
        assert_eq!(w.get(), 5);
        // the gap is filled: the watermark jumps over what was applied above it
        w.applied(6, 6);
        assert_eq!(w.get(), 8);
        assert!(w.has_gap(), "11 is still above a gap at 9..10");
        w.applied(9, 10);
        assert_eq!(w.get(), 11);
        assert!(!w.has_gap());
    }

    #[test]
    fn ranges_above_merge_when_they_touch_or_overlap() {
        let mut w = Watermark::new(0);
        w.applied(5, 6);
        w.applied(8, 9);
        w.applied(7, 7);
        assert!(w.holds(5, 9));
        w.applied(3, 4);
        assert!(w.holds(3, 9));
        assert_eq!(w.get(), 0);
        w.applied(1, 2);
        assert_eq!(w.get(), 9);
        assert!(!w.has_gap());
    }

    #[test]
    fn a_read_of_the_log_catches_up_over_everything_below_its_head() {
        let mut w = Watermark::new(2);
        w.applied(6, 7);
        w.applied(12, 13);
        w.caught_up_to(9);
        assert_eq!(w.get(), 9);
        assert!(w.has_gap());
        w.caught_up_to(11);
        assert_eq!(w.get(), 13);
        // a stale read changes nothing
        w.caught_up_to(4);
        assert_eq!(w.get(), 13);
        assert_eq!(Watermark::new(-1).get(), 0);
    }
}
