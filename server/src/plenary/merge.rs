//! The plenary merge: from each group document's `conclusions` to that group's section of the
//! plenary document. Pure: yrs transactions in, yrs edits out; no locks, sockets or clocks.
//!
//! Deterministic and idempotent (merging twice changes nothing), and it edits in place: a
//! conclusion kept in both lists is patched (a one-character edit in a group becomes a
//! one-character edit here), conclusions are matched by id with a longest common subsequence,
//! so only removed or moved items are deleted and re-inserted.

use plenary_protocol::layout::{self, conclusion as ck, plenary as pk};
use std::collections::{HashMap, HashSet};
use yrs::types::ToJson;
use yrs::{
    Any, Array, ArrayPrelim, ArrayRef, GetString, Map, MapPrelim, MapRef, Out, ReadTxn, Text, TextPrelim,
    TextRef, TransactionMut, WriteTxn,
};

/// One conclusion as the plenary shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conclusion {
    pub id: String,
    pub text: String,
    pub status: String,
}

/// A group's conclusions, in document order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConclusions {
    pub group: String,
    pub conclusions: Vec<Conclusion>,
}

/// A group as the meeting declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMeta {
    pub id: String,
    pub title: String,
    pub closed: bool,
}

fn out_str(v: Option<Out>) -> Option<String> {
    match v {
        Some(Out::Any(Any::String(s))) => Some(s.to_string()),
        _ => None,
    }
}

fn out_text<T: ReadTxn>(txn: &T, v: Option<Out>) -> String {
    match v {
        Some(Out::YText(t)) => t.get_string(txn),
        Some(Out::Any(Any::String(s))) => s.to_string(),
        _ => String::new(),
    }
}

/// Most conclusions of one group carried into the plenary (a summary is read by people; the
/// cap also bounds the merge's work, which is quadratic in the list length at worst).
pub const MAX_CONCLUSIONS_PER_GROUP: usize = 1000;

/// Reads a group document's conclusions. Items without a string id, and repeated ids after the
/// first, are skipped; a missing or unknown status reads as `draft`; at most
/// [`MAX_CONCLUSIONS_PER_GROUP`] are read. Items come in [`ordered_maps`] order and trashed
/// items (`trashed` set) are left out.
pub fn read_conclusions<T: ReadTxn>(txn: &T) -> Vec<Conclusion> {
    let Some(arr) = txn.get_array(layout::CONCLUSIONS) else {
        return Vec::new();
    };
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for m in ordered_maps(txn, &arr) {
        if out.len() >= MAX_CONCLUSIONS_PER_GROUP {
            break;
        }
        let Some(id) = out_str(m.get(txn, ck::ID)) else {
            continue;
        };
        if is_trashed(txn, &m) || !seen.insert(id.clone()) {
            continue;
        }
        let status = match out_str(m.get(txn, ck::STATUS)).as_deref() {
            Some(ck::FINAL) => ck::FINAL,
            _ => ck::DRAFT,
        };
        out.push(Conclusion {
            id,
            text: out_text(txn, m.get(txn, ck::TEXT)),
            status: status.into(),
        });
    }
    out
}

/// A conclusion is in the trash when its `trashed` key holds a non-empty string (the time it was
/// trashed). Anything else (absent, null, empty) means it is live.
fn is_trashed<T: ReadTxn>(txn: &T, m: &MapRef) -> bool {
    matches!(out_str(m.get(txn, ck::TRASHED)), Some(s) if !s.is_empty())
}

/// The conclusion maps in reading order (docs/PLENARY_LAYOUT.md "Order of conclusions"): maps with
/// a string `position` first, sorted by (position, array index) comparing positions as byte
/// strings; maps without one after them, in array order.
pub fn ordered_maps<T: ReadTxn>(txn: &T, arr: &ArrayRef) -> Vec<MapRef> {
    let mut positioned: Vec<(String, usize, MapRef)> = Vec::new();
    let mut rest = Vec::new();
    for (i, item) in arr.iter(txn).enumerate() {
        let Out::YMap(m) = item else { continue };
        match out_str(m.get(txn, ck::POSITION)) {
            Some(p) if !p.is_empty() => positioned.push((p, i, m)),
            _ => rest.push(m),
        }
    }
    positioned.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()).then(a.1.cmp(&b.1)));
    positioned.into_iter().map(|(_, _, m)| m).chain(rest).collect()
}

/// Creates the plenary's root structure when it is missing: `meta`, `groups`, and `curation`
/// with its `hidden` map and `intro`/`closing` texts.
pub fn ensure_structure(txn: &mut TransactionMut, meeting_id: &str, title: &str) {
    let meta = txn.get_or_insert_map(pk::META);
    if out_str(meta.get(txn, pk::META_MEETING_ID)).as_deref() != Some(meeting_id) {
        meta.insert(txn, pk::META_MEETING_ID, meeting_id);
    }
    if out_str(meta.get(txn, pk::META_TITLE)).as_deref() != Some(title) {
        meta.insert(txn, pk::META_TITLE, title);
    }
    txn.get_or_insert_array(pk::GROUPS);
    let cur = txn.get_or_insert_map(pk::CURATION);
    if !matches!(cur.get(txn, pk::HIDDEN), Some(Out::YMap(_))) {
        cur.insert(txn, pk::HIDDEN, MapPrelim::default());
    }
    for key in [pk::INTRO, pk::CLOSING] {
        if !matches!(cur.get(txn, key), Some(Out::YText(_))) {
            cur.insert(txn, key, TextPrelim::new(""));
        }
    }
}

fn map_id<T: ReadTxn>(txn: &T, v: &Out) -> Option<String> {
    match v {
        Out::YMap(m) => out_str(m.get(txn, pk::GROUP_ID)),
        _ => None,
    }
}

/// Brings the plenary's `groups` in line with the meeting's groups and their conclusions.
/// Groups missing from `data` keep their current conclusions.
pub fn merge(txn: &mut TransactionMut, groups: &[GroupMeta], data: &HashMap<String, Vec<Conclusion>>) {
    let arr = txn.get_or_insert_array(pk::GROUPS);
    align_groups(txn, &arr, groups);
    for (i, g) in groups.iter().enumerate() {
        let Some(Out::YMap(section)) = arr.get(txn, i as u32) else {
            continue;
        };
        set_str(txn, &section, pk::GROUP_TITLE, &g.title);
        if !matches!(section.get(txn, pk::GROUP_CLOSED), Some(Out::Any(Any::Bool(b))) if b == g.closed) {
            section.insert(txn, pk::GROUP_CLOSED, g.closed);
        }
        let list = match section.get(txn, pk::GROUP_CONCLUSIONS) {
            Some(Out::YArray(a)) => a,
            _ => section.insert(txn, pk::GROUP_CONCLUSIONS, ArrayPrelim::default()),
        };
        if let Some(target) = data.get(&g.id) {
            merge_list(txn, &list, target);
        }
    }
}

/// The conclusions the plenary shows for a group (empty when it has no section yet).
pub fn section_conclusions<T: ReadTxn>(txn: &T, group: &str) -> Vec<Conclusion> {
    let Some(arr) = txn.get_array(pk::GROUPS) else {
        return Vec::new();
    };
    for v in arr.iter(txn) {
        let Out::YMap(section) = v else { continue };
        if out_str(section.get(txn, pk::GROUP_ID)).as_deref() != Some(group) {
            continue;
        }
        let Some(Out::YArray(list)) = section.get(txn, pk::GROUP_CONCLUSIONS) else {
            return Vec::new();
        };
        return list
            .iter(txn)
            .filter_map(|v| match v {
                Out::YMap(m) => Some(Conclusion {
                    id: out_str(m.get(txn, ck::ID)).unwrap_or_default(),
                    text: out_text(txn, m.get(txn, ck::TEXT)),
                    status: out_str(m.get(txn, ck::STATUS)).unwrap_or_default(),
                }),
                _ => None,
            })
            .collect();
    }
    Vec::new()
}

/// Records in the group's section (`edited_at`, RFC 3339) that its conclusions changed at `at`.
/// Rewritten only when the minute differs (the first 16 characters, `YYYY-MM-DDTHH:MM`), so that
/// steady typing adds one small write a minute to the plenary rather than one per merge.
/// Returns whether it wrote. An unknown group is left alone.
pub fn stamp_edited(txn: &mut TransactionMut, group: &str, at: &str) -> bool {
    let Some(arr) = txn.get_array(pk::GROUPS) else {
        return false;
    };
    let section = arr.iter(txn).find_map(|v| match v {
        Out::YMap(m) if out_str(m.get(txn, pk::GROUP_ID)).as_deref() == Some(group) => Some(m),
        _ => None,
    });
    let Some(section) = section else { return false };
    let minute = |s: &str| s.get(..16).map(str::to_owned);
    let old = out_str(section.get(txn, pk::GROUP_EDITED_AT));
    if old.as_deref().and_then(minute) == minute(at) && old.is_some() {
        return false;
    }
    section.insert(txn, pk::GROUP_EDITED_AT, at);
    true
}

/// Sets (or removes) the optional `meta.short_title` and each group section's `short_title`.
pub fn set_short_titles(
    txn: &mut TransactionMut,
    meeting_short: Option<&str>,
    groups: &HashMap<String, String>,
) {
    let meta = txn.get_or_insert_map(pk::META);
    set_opt_str(txn, &meta, pk::META_SHORT_TITLE, meeting_short);
    let arr = txn.get_or_insert_array(pk::GROUPS);
    let sections: Vec<MapRef> = arr
        .iter(txn)
        .filter_map(|v| match v {
            Out::YMap(m) => Some(m),
            _ => None,
        })
        .collect();
    for section in sections {
        let Some(id) = out_str(section.get(txn, pk::GROUP_ID)) else {
            continue;
        };
        set_opt_str(
            txn,
            &section,
            pk::GROUP_SHORT_TITLE,
            groups.get(&id).map(String::as_str),
        );
    }
}

fn set_opt_str(txn: &mut TransactionMut, m: &MapRef, key: &str, value: Option<&str>) {
    match value {
        Some(v) => set_str(txn, m, key, v),
        None => {
            if m.get(txn, key).is_some() {
                m.remove(txn, key);
            }
        }
    }
}

/// Makes `arr` hold exactly one map per group, in meeting order, keeping matching sections.
fn align_groups(txn: &mut TransactionMut, arr: &ArrayRef, groups: &[GroupMeta]) {
    for (i, g) in groups.iter().enumerate() {
        let i = i as u32;
        loop {
            let len = arr.len(txn);
            if i >= len {
                arr.insert(txn, i, new_section(g));
                break;
            }
            let Some(v) = arr.get(txn, i) else { break };
            if map_id(txn, &v).as_deref() == Some(g.id.as_str()) {
                break;
            }
            // A stray or misplaced entry: drop it if the group appears later, else insert.
            let later = (i + 1..len)
                .any(|j| arr.get(txn, j).and_then(|v| map_id(txn, &v)).as_deref() == Some(g.id.as_str()));
            if later {
                arr.remove(txn, i);
            } else {
                arr.insert(txn, i, new_section(g));
                break;
            }
        }
    }
    let len = arr.len(txn);
    let n = groups.len() as u32;
    if len > n {
        arr.remove_range(txn, n, len - n);
    }
}

fn new_section(g: &GroupMeta) -> MapPrelim {
    MapPrelim::from([
        (pk::GROUP_ID, yrs::In::from(g.id.as_str())),
        (pk::GROUP_TITLE, yrs::In::from(g.title.as_str())),
        (pk::GROUP_CLOSED, yrs::In::from(g.closed)),
        (pk::GROUP_CONCLUSIONS, yrs::In::from(ArrayPrelim::default())),
    ])
}

fn new_conclusion(c: &Conclusion) -> MapPrelim {
    MapPrelim::from([
        (ck::ID, yrs::In::from(c.id.as_str())),
        (ck::TEXT, yrs::In::from(TextPrelim::new(c.text.as_str()))),
        (ck::STATUS, yrs::In::from(c.status.as_str())),
    ])
}

fn set_str(txn: &mut TransactionMut, m: &MapRef, key: &str, value: &str) {
    if out_str(m.get(txn, key)).as_deref() != Some(value) {
        m.insert(txn, key, value);
    }
}

/// Longest common subsequence of two id lists: the indexes in `a` that are kept. The common
/// prefix and suffix (the usual case: one item edited, added or removed) are matched directly;
/// the table is built for the differing middle only.
fn lcs_keep(a: &[Option<String>], b: &[&str]) -> Vec<bool> {
    let same = |x: &Option<String>, y: &&str| x.as_deref() == Some(*y);
    let prefix = a.iter().zip(b).take_while(|(x, y)| same(x, y)).count();
    let suffix = a[prefix..]
        .iter()
        .rev()
        .zip(b[prefix..].iter().rev())
        .take_while(|(x, y)| same(x, y))
        .count();
    let mut keep = vec![true; a.len()];
    let middle = lcs_table_keep(&a[prefix..a.len() - suffix], &b[prefix..b.len() - suffix]);
    keep[prefix..a.len() - suffix].copy_from_slice(&middle);
    keep
}

fn lcs_table_keep(a: &[Option<String>], b: &[&str]) -> Vec<bool> {
    let (n, m) = (a.len(), b.len());
    let mut dp = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            dp[i][j] = if a[i].as_deref() == Some(b[j]) {
                dp[i + 1][j + 1] + 1
            } else {
                dp[i + 1][j].max(dp[i][j + 1])
            };
        }
    }
    let mut keep = vec![false; n];
    let (mut i, mut j) = (0, 0);
    while i < n && j < m {
        if a[i].as_deref() == Some(b[j]) {
            keep[i] = true;
            i += 1;
            j += 1;
        } else if dp[i + 1][j] >= dp[i][j + 1] {
            i += 1;
        } else {
            j += 1;
        }
    }
    keep
}

fn merge_list(txn: &mut TransactionMut, list: &ArrayRef, target: &[Conclusion]) {
    let current: Vec<Option<String>> = list
        .iter(txn)
        .map(|v| match v {
            Out::YMap(m) => out_str(m.get(txn, ck::ID)),
            _ => None,
        })
        .collect();
    let target_ids: Vec<&str> = target.iter().map(|c| c.id.as_str()).collect();
    let keep = lcs_keep(&current, &target_ids);
    for i in (0..current.len()).rev() {
        if !keep[i] {
            list.remove(txn, i as u32);
        }
    }
    for (i, c) in target.iter().enumerate() {
        let i = i as u32;
        let existing = match list.get(txn, i) {
            Some(Out::YMap(m)) if out_str(m.get(txn, ck::ID)).as_deref() == Some(c.id.as_str()) => Some(m),
            _ => None,
        };
        match existing {
            Some(m) => patch_conclusion(txn, &m, c),
            None => {
                list.insert(txn, i, new_conclusion(c));
            }
        }
    }
}

fn patch_conclusion(txn: &mut TransactionMut, m: &MapRef, c: &Conclusion) {
    set_str(txn, m, ck::STATUS, &c.status);
    match m.get(txn, ck::TEXT) {
        Some(Out::YText(t)) => patch_text(txn, &t, &c.text),
        _ => {
            m.insert(txn, ck::TEXT, TextPrelim::new(c.text.as_str()));
        }
    }
}

/// Replaces the differing middle of a text: common prefix and suffix stay untouched.
/// Offsets are UTF-8 bytes on char boundaries (the documents' offset kind).
pub fn patch_text(txn: &mut TransactionMut, text: &TextRef, target: &str) {
    let current = text.get_string(txn);
    if current == target {
        return;
    }
    let (start, cur_end, tgt_end) = middle(&current, target);
    if cur_end > start {
        text.remove_range(txn, start as u32, (cur_end - start) as u32);
    }
    if tgt_end > start {
        text.insert(txn, start as u32, &target[start..tgt_end]);
    }
}

/// Byte range `[start, a_end)` of `a` that differs from `[start, b_end)` of `b`.
fn middle(a: &str, b: &str) -> (usize, usize, usize) {
    let prefix: usize = a
        .chars()
        .zip(b.chars())
        .take_while(|(x, y)| x == y)
        .map(|(x, _)| x.len_utf8())
        .sum();
    let a_rest = &a[prefix..];
    let b_rest = &b[prefix..];
    let suffix: usize = a_rest
        .chars()
        .rev()
        .zip(b_rest.chars().rev())
        .take_while(|(x, y)| x == y)
        .map(|(x, _)| x.len_utf8())
        .sum();
    (prefix, a.len() - suffix, b.len() - suffix)
}

/// The plenary as JSON, for tests and exports.
pub fn plenary_json<T: ReadTxn>(txn: &T) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for root in [pk::META, pk::CURATION] {
        if let Some(m) = txn.get_map(root) {
            out.insert(root.into(), any_to_json(&m.to_json(txn)));
        }
    }
    if let Some(a) = txn.get_array(pk::GROUPS) {
        out.insert(pk::GROUPS.into(), any_to_json(&a.to_json(txn)));
    }
    serde_json::Value::Object(out)
}

pub fn any_to_json(a: &Any) -> serde_json::Value {
    serde_json::to_value(a).unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
#[path = "merge_tests.rs"]
mod tests;
