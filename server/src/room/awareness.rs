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
//! - Several nodes: states that other nodes accepted from their own connections are *remote*
//!   entries, owned by a node instead of a connection ([`AwarenessTable::apply_remote`]). Only
//!   their node updates or removes them (in the order it sent them; a state it sends again
//!   with a clock not above the last changes nothing); a local connection's claim wins over
//!   them, and a node's claim replaces another node's (the client moved) without a removal in
//!   between, so presence does not flicker. A local connection claims a remote-held id only
//!   with a state that cannot be an echo: a clock above the one relayed for the id, or a state
//!   without the `role` stamp every relayed state carries (stock providers echo relayed states
//!   as received; a client's own state has no stamp). Their node's silence or departure drops
//!   them ([`AwarenessTable::drop_node`]); after missed messages they must be confirmed again
//!   ([`AwarenessTable::unconfirm_remote`], [`AwarenessTable::drop_unconfirmed`]).

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
/// The node that holds a remote entry.
#[derive(Debug)]
struct RemoteOwner {
    node: Arc<str>,
    /// The last clock that node sent for the id.
    clock: u32,
    /// Heard (again) since the last [`AwarenessTable::unconfirm_remote`].
    confirmed: bool,
}

#[derive(Debug)]
struct Entry {
    /// The local connection that holds the id; `None` for a tombstone or a remote entry.
    owner: Option<ConnId>,
    /// The node that holds the id (then `owner` is `None`).
    remote: Option<RemoteOwner>,
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
    stamp(state, role).map(|(s, _)| s)
}

/// The stamped state, and whether the state already had a `role` (every state the server
/// relays has one: a state without it is not an echo).
fn stamp(state: &str, role: &str) -> Option<(String, bool)> {
    let mut v: serde_json::Value = serde_json::from_str(state).ok()?;
    let obj = v.as_object_mut()?;
    let had_role = obj
        .insert("role".into(), serde_json::Value::String(role.into()))
        .is_some();
    serde_json::to_string(&v).ok().map(|s| (s, had_role))
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
            let (stamped, had_role) = if removal {
                (None, false)
            } else {
                match stamp(&e.state, role) {
                    Some((s, had_role)) => (Some(Arc::<str>::from(s)), had_role),
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
                Some(entry) if entry.remote.is_some() => {
                    // Held by another node: the client moved here, unless this is an echo.
                    let fresh = !had_role || e.clock > entry.relay_clock;
                    if removal || !fresh {
                        continue;
                    }
                    if !may_claim || !fits {
                        self.refused += 1;
                        continue;
                    }
                    entry.remote = None;
                    entry.owner = Some(conn);
                    entry.client_clock = e.clock;
                    entry.relay_clock = e.clock.max(entry.relay_clock.saturating_add(1));
                    let old = std::mem::replace(&mut entry.state, stamped);
                    relay.push(out_entry(e.client_id, entry));
                    let new = entry.state.clone();
                    self.replaced(&old, &new);
                    self.claim(conn, token, e.client_id);
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
                        remote: None,
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
        let tombstones = self.entries.values().filter(|e| e.is_tombstone()).count();
        if tombstones <= MAX_TOMBSTONES {
            return;
        }
        let mut oldest: Vec<(u64, u64)> = self
            .entries
            .iter()
            .filter(|(_, e)| e.is_tombstone())
            .map(|(id, e)| (e.released_epoch, *id))
            .collect();
        oldest.sort_unstable();
        for (_, id) in oldest.into_iter().take(tombstones - MAX_TOMBSTONES) {
            self.entries.remove(&id);
        }
    }

    /// Applies what another node accepted from its own connections (states already stamped),
    /// and returns what to relay to this node's members.
    pub fn apply_remote(&mut self, node: &Arc<str>, entries: Vec<AwarenessEntry>) -> Vec<AwarenessEntry> {
        let mut relay = Vec::new();
        for e in entries {
            if e.client_id == SERVER_CLIENT_ID {
                continue;
            }
            let state: Option<Arc<str>> = (!e.is_removal()).then(|| Arc::from(e.state.as_str()));
            let none = None;
            let old = match self.entries.get(&e.client_id) {
                Some(entry) => &entry.state,
                None => &none,
            };
            let fits = self.fits(old, &state);
            let epoch = self.epoch;
            match self.entries.get_mut(&e.client_id) {
                Some(entry) if entry.owner.is_some() => continue, // a local claim wins
                Some(entry) if entry.remote.as_ref().is_some_and(|r| r.node == *node) => {
                    let r = entry.remote.as_mut().expect("just matched");
                    r.confirmed = true;
                    if e.clock <= r.clock {
                        continue; // sent again (an answer to a query): nothing new
                    }
                    if state.is_none() {
                        entry.remote = None;
                        entry.released_epoch = epoch;
                    } else if !fits {
                        self.refused += 1;
                        continue;
                    } else {
                        r.clock = e.clock;
                    }
                    entry.relay_clock = e.clock.max(entry.relay_clock.saturating_add(1));
                    let old = std::mem::replace(&mut entry.state, state);
                    relay.push(out_entry(e.client_id, entry));
                    let new = entry.state.clone();
                    self.replaced(&old, &new);
                }
                Some(entry) => {
                    // A tombstone, or another node's entry: the client moved there.
                    if state.is_none() {
                        continue; // only the holder removes
                    }
                    if !fits {
                        self.refused += 1;
                        continue;
                    }
                    entry.remote = Some(RemoteOwner {
                        node: node.clone(),
                        clock: e.clock,
                        confirmed: true,
                    });
                    entry.relay_clock = e.clock.max(entry.relay_clock.saturating_add(1));
                    let old = std::mem::replace(&mut entry.state, state);
                    relay.push(out_entry(e.client_id, entry));
                    let new = entry.state.clone();
                    self.replaced(&old, &new);
                }
                None => {
                    if state.is_none() {
                        continue;
                    }
                    if !fits {
                        self.refused += 1;
                        continue;
                    }
                    let entry = Entry {
                        owner: None,
                        remote: Some(RemoteOwner {
                            node: node.clone(),
                            clock: e.clock,
                            confirmed: true,
                        }),
                        client_clock: 0,
                        relay_clock: e.clock,
                        state,
                        released_epoch: 0,
                    };
                    relay.push(out_entry(e.client_id, &entry));
                    self.replaced(&None, &entry.state.clone());
                    self.entries.insert(e.client_id, entry);
                }
            }
        }
        if !relay.is_empty() {
            self.version += 1;
        }
        self.prune_tombstones();
        relay
    }

    /// Drops the remote entries that `which` selects; returns the removals to relay.
    fn drop_remote(&mut self, which: impl Fn(&RemoteOwner) -> bool) -> Vec<AwarenessEntry> {
        let mut relay = Vec::new();
        let epoch = self.epoch;
        for (id, entry) in self.entries.iter_mut() {
            if !entry.remote.as_ref().is_some_and(&which) {
                continue;
            }
            entry.remote = None;
            entry.released_epoch = epoch;
            if let Some(old) = entry.state.take() {
                self.present -= 1;
                self.present_bytes -= old.len();
                entry.relay_clock = entry.relay_clock.saturating_add(1);
                relay.push(AwarenessEntry {
                    client_id: *id,
                    clock: entry.relay_clock,
                    state: "null".into(),
                });
            }
        }
        relay.sort_unstable_by_key(|e| e.client_id);
        if !relay.is_empty() {
            self.version += 1;
        }
        self.prune_tombstones();
        relay
    }

    /// The node left the room or went silent: its entries go; returns the removals to relay.
    pub fn drop_node(&mut self, node: &str) -> Vec<AwarenessEntry> {
        self.drop_remote(|r| &*r.node == node)
    }

    /// Messages may have been missed: every remote entry must be heard again before
    /// [`AwarenessTable::drop_unconfirmed`].
    pub fn unconfirm_remote(&mut self) {
        for entry in self.entries.values_mut() {
            if let Some(r) = entry.remote.as_mut() {
                r.confirmed = false;
            }
        }
    }

    /// Drops the remote entries not heard since [`AwarenessTable::unconfirm_remote`].
    pub fn drop_unconfirmed(&mut self) -> Vec<AwarenessEntry> {
        self.drop_remote(|r| !r.confirmed)
    }

    /// The present states this node's connections hold (what other nodes are told).
    pub fn local_entries(&self) -> Vec<AwarenessEntry> {
        let mut ids: Vec<&u64> = self
            .entries
            .iter()
            .filter(|(_, e)| e.owner.is_some() && e.state.is_some())
            .map(|(id, _)| id)
            .collect();
        ids.sort_unstable();
        ids.into_iter()
            .map(|id| out_entry(*id, &self.entries[id]))
            .collect()
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

impl Entry {
    fn is_tombstone(&self) -> bool {
        self.owner.is_none() && self.remote.is_none()
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

    fn node(n: &str) -> Arc<str> {
        n.into()
    }

    fn ids(entries: &[AwarenessEntry]) -> Vec<(u64, bool)> {
        entries.iter().map(|e| (e.client_id, e.is_removal())).collect()
    }

    const STAMPED: &str = r#"{"user":{"name":"C"},"role":"rapporteur"}"#;

    #[test]
    fn a_remote_entry_is_relayed_shown_to_joiners_and_changed_or_removed_only_by_its_node() {
        let mut t = AwarenessTable::default();
        let (a, b) = (node("a"), node("b"));
        let out = t.apply_remote(&a, vec![st(42, 3, STAMPED)]);
        assert_eq!(ids(&out), vec![(42, false)]);
        assert_eq!(out[0].clock, 3);
        assert_eq!(out[0].state, STAMPED, "relayed as the node stamped it");
        assert_eq!(ids(&t.snapshot()), vec![(42, false)]);
        // sent again (a query's answer): nothing new
        let v = t.version();
        assert!(t.apply_remote(&a, vec![st(42, 3, STAMPED)]).is_empty());
        assert_eq!(t.version(), v);
        // another node cannot remove it, nor can a local connection
        assert!(t.apply_remote(&b, vec![st(42, 9, "null")]).is_empty());
        let e = t.join();
        assert!(t
            .apply(ConnId(1), tk(1), e, "moderator", vec![st(42, 50, "null")])
            .is_empty());
        // its node updates it, then removes it
        let out = t.apply_remote(&a, vec![st(42, 4, r#"{"x":1,"role":"rapporteur"}"#)]);
        assert_eq!(out[0].clock, 4);
        let out = t.apply_remote(&a, vec![st(42, 5, "null")]);
        assert_eq!(ids(&out), vec![(42, true)]);
        assert!(t.snapshot().is_empty());
        assert_eq!(t.size(), (0, 0));
        // the server's own id is nobody's to send
        assert!(t.apply_remote(&a, vec![st(SERVER_CLIENT_ID, 9, "{}")]).is_empty());
    }

    #[test]
    fn an_echo_of_a_remote_entry_claims_nothing_but_the_moved_client_does_without_a_removal() {
        let mut t = AwarenessTable::default();
        let a = node("a");
        let echoer = t.join();
        t.apply_remote(&a, vec![st(42, 7, STAMPED)]);
        // a local stock client echoes what it was relayed: same clock, stamped state
        assert!(t
            .apply(ConnId(1), tk(1), echoer, "rapporteur", vec![st(42, 7, STAMPED)])
            .is_empty());
        // ...or an older relay of it
        assert!(t
            .apply(ConnId(1), tk(1), echoer, "rapporteur", vec![st(42, 6, STAMPED)])
            .is_empty());
        assert!(t.local_entries().is_empty());
        // the client itself arrives (its node died): its own state has no stamp, same clock
        let moved = t.join();
        let out = t.apply(
            ConnId(2),
            tk(2),
            moved,
            "rapporteur",
            vec![st(42, 7, r#"{"user":{"name":"C"}}"#)],
        );
        assert_eq!(ids(&out), vec![(42, false)], "an update, never a removal");
        assert!(out[0].clock > 7, "peers that saw clock 7 accept it");
        assert_eq!(ids(&t.local_entries()), vec![(42, false)]);
        assert_eq!(ids(&t.snapshot()), vec![(42, false)]);
        // the old node's late removal or update no longer touches it; the echoer cannot take it
        assert!(t.apply_remote(&a, vec![st(42, 8, "null")]).is_empty());
        assert!(t.apply_remote(&a, vec![st(42, 9, STAMPED)]).is_empty());
        assert!(t.drop_node("a").is_empty());
        assert!(t
            .apply(ConnId(1), tk(1), echoer, "rapporteur", vec![st(42, 99, "{}")])
            .is_empty());
        // and it is the new connection's: its leave removes it
        assert_eq!(ids(&t.leave(ConnId(2))), vec![(42, true)]);
    }

    #[test]
    fn a_stamped_state_with_a_newer_clock_than_relayed_claims_a_remote_id() {
        let mut t = AwarenessTable::default();
        t.apply_remote(&node("a"), vec![st(42, 7, STAMPED)]);
        let e = t.join();
        let out = t.apply(ConnId(1), tk(1), e, "rapporteur", vec![st(42, 8, STAMPED)]);
        assert_eq!(ids(&out), vec![(42, false)]);
        assert_eq!(out[0].clock, 8);
    }

    #[test]
    fn a_local_claim_wins_over_other_nodes() {
        let mut t = AwarenessTable::default();
        let e = t.join();
        t.apply(ConnId(1), tk(1), e, "rapporteur", vec![st(42, 2, "{}")]);
        assert!(t.apply_remote(&node("a"), vec![st(42, 50, STAMPED)]).is_empty());
        assert!(t.snapshot()[0].state.contains("rapporteur"));
        assert_eq!(ids(&t.local_entries()), vec![(42, false)]);
        // once the local connection left, another node may hold the id
        t.leave(ConnId(1));
        let out = t.apply_remote(&node("a"), vec![st(42, 1, STAMPED)]);
        assert_eq!(ids(&out), vec![(42, false)]);
        assert!(out[0].clock > 3, "above the removal peers saw");
        assert!(t.local_entries().is_empty());
    }

    #[test]
    fn a_client_moving_between_other_nodes_changes_holder_without_a_removal() {
        let mut t = AwarenessTable::default();
        let (a, b) = (node("a"), node("b"));
        t.apply_remote(&a, vec![st(42, 7, STAMPED)]);
        let out = t.apply_remote(&b, vec![st(42, 3, STAMPED)]);
        assert_eq!(ids(&out), vec![(42, false)]);
        assert!(out[0].clock > 7);
        // the old holder's removal (its connection finally closed) is not the new holder's
        assert!(t.apply_remote(&a, vec![st(42, 8, "null")]).is_empty());
        assert!(t.drop_node("a").is_empty());
        assert_eq!(ids(&t.snapshot()), vec![(42, false)]);
        assert_eq!(ids(&t.drop_node("b")), vec![(42, true)]);
    }

    #[test]
    fn a_silent_node_takes_only_its_own_entries() {
        let mut t = AwarenessTable::default();
        let e = t.join();
        t.apply(ConnId(1), tk(1), e, "rapporteur", vec![st(1, 1, "{}")]);
        t.apply_remote(&node("a"), vec![st(2, 1, STAMPED), st(3, 1, STAMPED)]);
        t.apply_remote(&node("b"), vec![st(4, 1, STAMPED)]);
        assert_eq!(t.size().0, 4);
        let out = t.drop_node("a");
        assert_eq!(ids(&out), vec![(2, true), (3, true)]);
        assert!(out.iter().all(|e| e.clock > 1));
        assert_eq!(ids(&t.snapshot()), vec![(1, false), (4, false)]);
        assert_eq!(t.size().0, 2);
        assert!(t.drop_node("a").is_empty());
        // a connection opened after the node went may claim the id back whatever its clock
        let late = t.join();
        assert_eq!(
            t.apply(ConnId(2), tk(2), late, "rapporteur", vec![st(2, 1, STAMPED)])
                .len(),
            1
        );
    }

    #[test]
    fn after_missed_messages_remote_entries_not_heard_again_go() {
        let mut t = AwarenessTable::default();
        let a = node("a");
        t.apply_remote(&a, vec![st(2, 1, STAMPED), st(3, 1, STAMPED)]);
        t.unconfirm_remote();
        // the node answers the query with what it holds now: 2 (unchanged), not 3
        assert!(t.apply_remote(&a, vec![st(2, 1, STAMPED)]).is_empty());
        assert_eq!(ids(&t.drop_unconfirmed()), vec![(3, true)]);
        assert_eq!(ids(&t.snapshot()), vec![(2, false)]);
        assert!(t.drop_unconfirmed().is_empty());
    }

    #[test]
    fn remote_entries_count_against_the_room_bounds() {
        let limits = AwarenessLimits {
            room_entries: 2,
            ..AwarenessLimits::default()
        };
        let mut t = AwarenessTable::default().with_limits(limits);
        let out = t.apply_remote(&node("a"), vec![st(1, 1, "{}"), st(2, 1, "{}"), st(3, 1, "{}")]);
        assert_eq!(out.len(), 2);
        assert_eq!(t.take_refused(), 1);
        let e = t.join();
        assert!(t
            .apply(ConnId(1), tk(1), e, "rapporteur", vec![st(9, 1, "{}")])
            .is_empty());
        assert_eq!(t.take_refused(), 1);
    }
}
