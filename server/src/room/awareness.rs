//! Server-checked awareness (contract, "Awareness is server-checked"). Pure: no I/O, no time.
//!
//! - A connection claims a Yjs client id when it sends a state for it with a clock newer than
//!   the server's, and keeps the claim until it closes; others' messages about a claimed id are
//!   ignored.
//! - Stock providers echo every change they receive: an echo (same or older clock) changes
//!   nothing and claims nothing.
//! - A client that reconnects gets its id back: a connection opened after the id's owner left
//!   may claim it whatever its clock (an echo can only come from a connection that was open
//!   while the owner was).
//! - Clocks relayed to others are the server's own per id and only grow, so peers that saw the
//!   removal of an id accept its state again when its owner comes back with its old clock.
//! - Each relayed state carries `role`, stamped from the sender's capability.
//! - Client id 0 is the server's: it publishes follower counts there.
//! - Bounded: per room in present states and their encoded bytes, per token in ids its
//!   connections hold together (besides the ids per connection). What would pass a bound is
//!   refused silently: not stored, not relayed, counted in [`AwarenessTable::take_refused`].
//! - [`AwarenessTable::version`] changes whenever the snapshot does, so the room encodes the
//!   snapshot (greeting, query-awareness) once per change.

use crate::auth::TokenHash;
use plenary_protocol::AwarenessEntry;
use std::collections::HashMap;
use std::sync::Arc;

use super::command::ConnId;

/// The Yjs client id under which the server publishes its own state.
pub const SERVER_CLIENT_ID: u64 = 0;

/// Most client ids one connection may hold (a browser tab holds one).
pub const MAX_CLAIMS_PER_CONNECTION: usize = 8;

/// Tombstones kept for ids whose owner left, beyond which the oldest are forgotten.
const MAX_TOMBSTONES: usize = 4096;

/// Present states one room holds (a plenary of 500 writers needs 500).
pub const MAX_ROOM_ENTRIES: usize = 2_000;
/// Bytes of stamped JSON states one room holds: bounds the greeting every newcomer gets.
pub const MAX_ROOM_STATE_BYTES: usize = 1 << 20;
/// Ids the connections of one token hold together in one room (a rapporteur with a laptop, a
/// phone and a few tabs holds a handful).
pub const MAX_CLAIMS_PER_TOKEN: usize = 32;

/// The bounds of one table; the constants above unless a test sets smaller ones.
#[derive(Debug, Clone, Copy)]
pub struct AwarenessLimits {
    pub room_entries: usize,
    pub room_state_bytes: usize,
    pub per_token: usize,
}

impl Default for AwarenessLimits {
    fn default() -> Self {
        AwarenessLimits {
            room_entries: MAX_ROOM_ENTRIES,
            room_state_bytes: MAX_ROOM_STATE_BYTES,
            per_token: MAX_CLAIMS_PER_TOKEN,
        }
    }
}

/// The ids a connection holds, and the token it was opened with.
#[derive(Debug)]
struct Claims {
    token: TokenHash,
    ids: Vec<u64>,
}

fn state_len(state: &Option<Arc<str>>) -> usize {
    state.as_ref().map(|s| s.len()).unwrap_or(0)
}
#[derive(Debug)]
struct Entry {
    owner: Option<ConnId>,
    /// Last clock the owner sent.
    client_clock: u32,
    /// Last clock the server relayed for this id.
    relay_clock: u32,
    /// Stamped JSON; `None` once removed.
    state: Option<Arc<str>>,
    /// Join epoch current when the owner left.
    released_epoch: u64,
}

#[derive(Debug, Default)]
pub struct AwarenessTable {
    entries: HashMap<u64, Entry>,
    claims: HashMap<ConnId, Claims>,
    /// Ids held per token.
    token_claims: HashMap<TokenHash, usize>,
    limits: AwarenessLimits,
    /// Present states (not the server's) and their bytes.
    present: usize,
    present_bytes: usize,
    /// Changes whenever the snapshot does.
    version: u64,
    /// States refused for a bound since the last [`AwarenessTable::take_refused`].
    refused: u64,
    /// Counts joins, to tell connections opened after an owner left from those open before.
    epoch: u64,
    server_clock: u32,
    server_state: Option<Arc<str>>,
}

/// Adds `role` to a JSON object state; `None` if the state is not a JSON object.
pub fn stamp_role(state: &str, role: &str) -> Option<String> {
    let mut v: serde_json::Value = serde_json::from_str(state).ok()?;
    let obj = v.as_object_mut()?;
    obj.insert("role".into(), serde_json::Value::String(role.into()));
    serde_json::to_string(&v).ok()
}

impl AwarenessTable {
    /// A table whose server clock starts at `start` (the room passes the Unix time in seconds,
    /// so that the server's clock keeps growing across room reloads and restarts: peers ignore
    /// a state whose clock is not above the one they saw).
    pub fn with_server_clock(start: u32) -> Self {
        AwarenessTable {
            server_clock: start,
            ..Default::default()
        }
    }

    pub fn with_limits(mut self, limits: AwarenessLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Changes whenever [`AwarenessTable::snapshot`] would answer differently.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// States refused for a bound since the last call.
    pub fn take_refused(&mut self) -> u64 {
        std::mem::take(&mut self.refused)
    }

    /// Present states and their bytes (the server's own excluded).
    pub fn size(&self) -> (usize, usize) {
        (self.present, self.present_bytes)
    }

    /// Whether replacing a state of `old` bytes by `new` keeps the room within its bounds.
    fn fits(&self, old: &Option<Arc<str>>, new: &Option<Arc<str>>) -> bool {
        let (old_len, new_len) = (state_len(old), state_len(new));
        let count = self.present - usize::from(old.is_some()) + usize::from(new.is_some());
        let bytes = self.present_bytes - old_len + new_len;
        (new_len <= old_len || bytes <= self.limits.room_state_bytes)
            && (new.is_none() || old.is_some() || count <= self.limits.room_entries)
    }

    /// Accounts for a state replaced in the table.
    fn replaced(&mut self, old: &Option<Arc<str>>, new: &Option<Arc<str>>) {
        self.present = self.present - usize::from(old.is_some()) + usize::from(new.is_some());
        self.present_bytes = self.present_bytes - state_len(old) + state_len(new);
    }

    /// Registers a joining connection; returns its join epoch.
    pub fn join(&mut self) -> u64 {
        self.epoch += 1;
        self.epoch
    }

    /// Applies an update sent by a connection that can write, and returns what to relay.
    pub fn apply(
        &mut self,
        conn: ConnId,
        token: TokenHash,
        join_epoch: u64,
        role: &str,
        entries: Vec<AwarenessEntry>,
    ) -> Vec<AwarenessEntry> {
        let mut relay = Vec::new();
        for e in entries {
            if e.client_id == SERVER_CLIENT_ID {
                continue;
            }
            let removal = e.is_removal();
            let stamped = if removal {
                None
            } else {
                match stamp_role(&e.state, role) {
                    Some(s) => Some(Arc::<str>::from(s)),
                    None => continue,
                }
            };
            let held = self.claims.get(&conn).map(|c| c.ids.len()).unwrap_or(0);
            let token_held = self.token_claims.get(&token).copied().unwrap_or(0);
            let may_claim = held < MAX_CLAIMS_PER_CONNECTION && token_held < self.limits.per_token;
            let none = None;
            let old = match self.entries.get(&e.client_id) {
                Some(entry) => &entry.state,
                None => &none,
            };
            let fits = self.fits(old, &stamped);
            match self.entries.get_mut(&e.client_id) {
                Some(entry) if entry.owner == Some(conn) => {
                    if e.clock <= entry.client_clock {
                        continue; // echo of its own state
                    }
                    if !fits {
                        self.refused += 1;
                        continue;
                    }
                    entry.client_clock = e.clock;
                    entry.relay_clock = e.clock.max(entry.relay_clock.saturating_add(1));
                    let old = std::mem::replace(&mut entry.state, stamped);
                    relay.push(out_entry(e.client_id, entry));
                    let new = entry.state.clone();
                    self.replaced(&old, &new);
                }
                Some(entry) if entry.owner.is_none() => {
                    let reconnect = join_epoch > entry.released_epoch;
                    let newer = e.clock > entry.client_clock.max(entry.relay_clock);
                    if removal || !(reconnect || newer) {
                        continue; // echo, or a removal of an id nobody holds
                    }
                    if !may_claim || !fits {
                        self.refused += 1;
                        continue;
                    }
                    entry.owner = Some(conn);
                    entry.client_clock = e.clock;
                    entry.relay_clock = e.clock.max(entry.relay_clock.saturating_add(1));
                    let old = std::mem::replace(&mut entry.state, stamped);
                    relay.push(out_entry(e.client_id, entry));
                    let new = entry.state.clone();
                    self.replaced(&old, &new);
                    self.claim(conn, token, e.client_id);
                }
                Some(_) => continue, // claimed by another connection
                None => {
                    if removal {
                        continue;
                    }
                    if !may_claim || !fits {
                        self.refused += 1;
                        continue;
                    }
                    let entry = Entry {
                        owner: Some(conn),
                        client_clock: e.clock,
                        relay_clock: e.clock,
                        state: stamped,
                        released_epoch: 0,
                    };
                    relay.push(out_entry(e.client_id, &entry));
                    let new = entry.state.clone();
                    self.replaced(&None, &new);
                    self.entries.insert(e.client_id, entry);
                    self.claim(conn, token, e.client_id);
                }
            }
        }
        if !relay.is_empty() {
            self.version += 1;
        }
        relay
    }

    fn claim(&mut self, conn: ConnId, token: TokenHash, id: u64) {
        self.claims
            .entry(conn)
            .or_insert_with(|| Claims {
                token,
                ids: Vec::new(),
            })
            .ids
            .push(id);
        *self.token_claims.entry(token).or_default() += 1;
    }

    /// Releases a leaving connection's ids; returns the removals to relay.
    pub fn leave(&mut self, conn: ConnId) -> Vec<AwarenessEntry> {
        let mut relay = Vec::new();
        let Some(claims) = self.claims.remove(&conn) else {
            return relay;
        };
        if let Some(n) = self.token_claims.get_mut(&claims.token) {
            *n = n.saturating_sub(claims.ids.len());
            if *n == 0 {
                self.token_claims.remove(&claims.token);
            }
        }
        for id in claims.ids {
            if let Some(entry) = self.entries.get_mut(&id) {
                entry.owner = None;
                entry.released_epoch = self.epoch;
                if let Some(old) = entry.state.take() {
                    self.present -= 1;
                    self.present_bytes -= old.len();
                    entry.relay_clock = entry.relay_clock.saturating_add(1);
                    relay.push(AwarenessEntry {
                        client_id: id,
                        clock: entry.relay_clock,
                        state: "null".into(),
                    });
                }
            }
        }
        self.prune_tombstones();
        if !relay.is_empty() {
            self.version += 1;
        }
        relay
    }

    fn prune_tombstones(&mut self) {
        let tombstones = self.entries.values().filter(|e| e.owner.is_none()).count();
        if tombstones <= MAX_TOMBSTONES {
            return;
        }
        let mut oldest: Vec<(u64, u64)> = self
            .entries
            .iter()
            .filter(|(_, e)| e.owner.is_none())
            .map(|(id, e)| (e.released_epoch, *id))
            .collect();
        oldest.sort_unstable();
        for (_, id) in oldest.into_iter().take(tombstones - MAX_TOMBSTONES) {
            self.entries.remove(&id);
        }
    }

    /// Sets the server's own state; returns the entry to relay.
    pub fn set_server_state(&mut self, json: String) -> AwarenessEntry {
        self.server_clock = self.server_clock.wrapping_add(1);
        self.server_state = Some(json.into());
        self.version += 1;
        self.server_entry().expect("just set")
    }

    fn server_entry(&self) -> Option<AwarenessEntry> {
        self.server_state.as_ref().map(|s| AwarenessEntry {
            client_id: SERVER_CLIENT_ID,
            clock: self.server_clock,
            state: s.to_string(),
        })
    }

    /// Every present state, the server's first: the answer to query-awareness and the greeting.
    pub fn snapshot(&self) -> Vec<AwarenessEntry> {
        let mut out: Vec<AwarenessEntry> = self.server_entry().into_iter().collect();
        let mut ids: Vec<&u64> = self.entries.keys().collect();
        ids.sort_unstable();
        for id in ids {
            let e = &self.entries[id];
            if e.state.is_some() {
                out.push(out_entry(*id, e));
            }
        }
        out
    }
}

fn out_entry(client_id: u64, e: &Entry) -> AwarenessEntry {
    AwarenessEntry {
        client_id,
        clock: e.relay_clock,
        state: e.state.as_deref().unwrap_or("null").to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tk(n: u8) -> TokenHash {
        TokenHash([n; 32])
    }

    fn st(id: u64, clock: u32, json: &str) -> AwarenessEntry {
        AwarenessEntry {
            client_id: id,
            clock,
            state: json.into(),
        }
    }

    #[test]
    fn first_state_claims_and_is_stamped() {
        let mut t = AwarenessTable::default();
        let e = t.join();
        let out = t.apply(
            ConnId(1),
            tk(1),
            e,
            "rapporteur",
            vec![st(42, 1, r#"{"user":{"name":"A"},"role":"moderator"}"#)],
        );
        assert_eq!(out.len(), 1);
        let v: serde_json::Value = serde_json::from_str(&out[0].state).unwrap();
        assert_eq!(v["role"], "rapporteur");
        assert_eq!(v["user"]["name"], "A");
    }

    #[test]
    fn others_cannot_overwrite_a_claimed_id() {
        let mut t = AwarenessTable::default();
        let (e1, e2) = (t.join(), t.join());
        t.apply(ConnId(1), tk(1), e1, "rapporteur", vec![st(42, 1, r#"{"a":1}"#)]);
        assert!(t
            .apply(ConnId(2), tk(2), e2, "moderator", vec![st(42, 99, r#"{"a":2}"#)])
            .is_empty());
        assert!(t
            .apply(ConnId(2), tk(2), e2, "moderator", vec![st(42, 100, "null")])
            .is_empty());
        assert!(t.snapshot()[0].state.contains("\"a\":1"));
    }

    #[test]
    fn echoes_change_nothing() {
        let mut t = AwarenessTable::default();
        let e1 = t.join();
        t.apply(ConnId(1), tk(1), e1, "rapporteur", vec![st(42, 5, r#"{"a":1}"#)]);
        assert!(t
            .apply(ConnId(1), tk(1), e1, "rapporteur", vec![st(42, 5, r#"{"a":1}"#)])
            .is_empty());
        assert!(t
            .apply(ConnId(1), tk(1), e1, "rapporteur", vec![st(42, 4, r#"{"a":0}"#)])
            .is_empty());
        assert_eq!(
            t.apply(ConnId(1), tk(1), e1, "rapporteur", vec![st(42, 6, r#"{"a":2}"#)])
                .len(),
            1
        );
    }

    #[test]
    fn leaving_relays_a_removal_and_an_old_echo_cannot_claim() {
        let mut t = AwarenessTable::default();
        let (e1, e2) = (t.join(), t.join());
        t.apply(ConnId(1), tk(1), e1, "rapporteur", vec![st(42, 5, r#"{"a":1}"#)]);
        let removed = t.leave(ConnId(1));
        assert_eq!(removed.len(), 1);
        assert_eq!(removed[0].state, "null");
        assert!(removed[0].clock > 5);
        // connection 2 was open while 42 was present: its echo claims nothing
        assert!(t
            .apply(ConnId(2), tk(2), e2, "rapporteur", vec![st(42, 5, r#"{"a":1}"#)])
            .is_empty());
        assert!(t.snapshot().is_empty());
    }

    #[test]
    fn a_reconnecting_client_gets_its_id_back_with_a_clock_peers_accept() {
        let mut t = AwarenessTable::default();
        let e1 = t.join();
        t.apply(ConnId(1), tk(1), e1, "rapporteur", vec![st(42, 5, r#"{"a":1}"#)]);
        let removal_clock = t.leave(ConnId(1))[0].clock;
        let e3 = t.join();
        let out = t.apply(ConnId(3), tk(3), e3, "rapporteur", vec![st(42, 5, r#"{"a":1}"#)]);
        assert_eq!(out.len(), 1);
        assert!(out[0].clock > removal_clock);
    }

    #[test]
    fn non_object_states_and_server_id_are_ignored() {
        let mut t = AwarenessTable::default();
        let e = t.join();
        assert!(t
            .apply(
                ConnId(1),
                tk(1),
                e,
                "rapporteur",
                vec![st(7, 1, "42"), st(SERVER_CLIENT_ID, 9, "{}")]
            )
            .is_empty());
    }

    #[test]
    fn claims_per_connection_are_bounded() {
        let mut t = AwarenessTable::default();
        let e = t.join();
        let many: Vec<_> = (1..=20).map(|i| st(i, 1, "{}")).collect();
        assert_eq!(
            t.apply(ConnId(1), tk(1), e, "rapporteur", many).len(),
            MAX_CLAIMS_PER_CONNECTION
        );
    }

    #[test]
    fn server_state_comes_first_in_snapshots() {
        let mut t = AwarenessTable::default();
        let e = t.join();
        t.apply(ConnId(1), tk(1), e, "moderator", vec![st(5, 1, "{}")]);
        let s = t.set_server_state(r#"{"server":{"followers":3}}"#.into());
        assert_eq!(s.client_id, SERVER_CLIENT_ID);
        let snap = t.snapshot();
        assert_eq!(snap[0].client_id, SERVER_CLIENT_ID);
        assert_eq!(snap.len(), 2);
    }

    #[test]
    fn ids_per_token_are_bounded_across_its_connections_and_freed_when_they_leave() {
        let limits = AwarenessLimits {
            per_token: 3,
            ..AwarenessLimits::default()
        };
        let mut t = AwarenessTable::default().with_limits(limits);
        let mut relayed = 0;
        for c in 1..=5 {
            let e = t.join();
            relayed += t
                .apply(ConnId(c), tk(9), e, "rapporteur", vec![st(c, 1, "{}")])
                .len();
        }
        assert_eq!(relayed, 3);
        assert_eq!(t.take_refused(), 2);
        assert_eq!(t.size().0, 3);
        // another token is not held back
        let e = t.join();
        assert_eq!(
            t.apply(ConnId(9), tk(8), e, "rapporteur", vec![st(99, 1, "{}")])
                .len(),
            1
        );
        // a leave frees the token's id
        t.leave(ConnId(1));
        let e = t.join();
        assert_eq!(
            t.apply(ConnId(6), tk(9), e, "rapporteur", vec![st(6, 1, "{}")])
                .len(),
            1
        );
    }

    #[test]
    fn room_entries_and_bytes_are_bounded_and_growth_of_a_held_state_is_refused() {
        let limits = AwarenessLimits {
            room_entries: 4,
            room_state_bytes: 200,
            per_token: 100,
        };
        let mut t = AwarenessTable::default().with_limits(limits);
        for c in 1..=6u64 {
            let e = t.join();
            t.apply(ConnId(c), tk(c as u8), e, "rapporteur", vec![st(c, 1, "{}")]);
        }
        assert_eq!(t.size().0, 4);
        assert_eq!(t.take_refused(), 2);
        // growing a held state past the byte bound is refused; the old state stays
        let big = format!(r#"{{"x":"{}"}}"#, "a".repeat(300));
        assert!(t
            .apply(ConnId(1), tk(1), 1, "rapporteur", vec![st(1, 2, &big)])
            .is_empty());
        assert_eq!(t.take_refused(), 1);
        let (n, bytes) = t.size();
        assert_eq!(n, 4);
        assert!(bytes <= 200, "{bytes}");
        // shrinking or removing is always accepted, and frees room for others
        assert_eq!(
            t.apply(ConnId(1), tk(1), 1, "rapporteur", vec![st(1, 3, "null")])
                .len(),
            1
        );
        let e = t.join();
        assert_eq!(
            t.apply(ConnId(7), tk(7), e, "rapporteur", vec![st(7, 1, "{}")])
                .len(),
            1
        );
    }

    #[test]
    fn the_version_changes_exactly_when_the_snapshot_does() {
        let mut t = AwarenessTable::default();
        let e = t.join();
        let v0 = t.version();
        t.apply(ConnId(1), tk(1), e, "rapporteur", vec![st(5, 1, "{}")]);
        let v1 = t.version();
        assert_ne!(v0, v1);
        // an echo changes nothing
        t.apply(ConnId(1), tk(1), e, "rapporteur", vec![st(5, 1, "{}")]);
        assert_eq!(t.version(), v1);
        t.set_server_state("{}".into());
        assert_ne!(t.version(), v1);
        let v2 = t.version();
        t.leave(ConnId(1));
        assert_ne!(t.version(), v2);
    }
}
