//! Document edits the suites share, written with the layout constants of the protocol crate.

use super::Peer;
use plenary_protocol::layout::{conclusion as ck, CONCLUSIONS};
use yrs::{Array, In, MapPrelim, Text, TextPrelim, WriteTxn};

/// Appends a conclusion to a group document as its rapporteur's client would.
pub fn add_conclusion_with_status(p: &Peer, id: &str, text: &str, status: &str) {
    p.edit(|t| {
        let arr = t.get_or_insert_array(CONCLUSIONS);
        arr.push_back(
            t,
            MapPrelim::from([
                (ck::ID, In::from(id)),
                (ck::TEXT, In::from(TextPrelim::new(text))),
                (ck::STATUS, In::from(status)),
                (ck::AUTHOR, In::from("test")),
            ]),
        );
    });
}

/// A draft conclusion.
pub fn add_conclusion(p: &Peer, id: &str, text: &str) {
    add_conclusion_with_status(p, id, text, "draft");
}

/// Appends `s` to the text `name`.
pub fn append_text(p: &Peer, name: &str, s: &str) {
    p.edit(|t| {
        let text = t.get_or_insert_text(name);
        let len = text.len(t);
        text.insert(t, len, s);
    });
}
