//! Document layouts: the Yjs root types of group and plenary documents.
//!
//! # Group document (contract)
//! - `notes`: `Y.XmlFragment`, rich text in the ProseMirror/Tiptap schema.
//! - `conclusions`: `Y.Array` of `Y.Map` with keys `id` (string, unique), `text` (`Y.Text`),
//!   `status` (`"draft"` or `"final"`), `author` (string).
//!   Optional keys (project layout, docs/PLENARY_LAYOUT.md "Order of conclusions"):
//!   - `position` (string): a fractional index; a move rewrites only this key, so the item's
//!     `Y.Text` (and whoever is typing in it) stays in place. Reading order: maps with a non-empty
//!     `position` first, sorted by (position compared as byte strings, array index); maps without
//!     one after them, in array order (old documents and stock clients that only append).
//!   - `trashed` (string, RFC 3339 time): a soft delete. Readers skip the item; restoring it
//!     deletes the key. Maps are never removed from the array by the web client.
//!
//! # Plenary document (kept by the server, live)
//! A third-party client declares these root types (`doc.getMap('meta')`, `doc.getArray('groups')`,
//! `doc.getMap('curation')`) and finds everything in `doc.toJSON()`:
//! - `meta`: `Y.Map`, written by the server: `meeting_id`, `title`, and `short_title` when the
//!   organizer set one (the projector's headline; absent otherwise).
//! - `groups`: `Y.Array` of `Y.Map`, written by the server, one per group in meeting order:
//!   `id`, `title`, `short_title` (only when set), `closed` (bool), `conclusions`: `Y.Array` of `Y.Map` { `id`, `text`
//!   (`Y.Text`, the group's current text), `status` }. Every conclusion is present, empty ones
//!   too; exports drop those whose text is blank.
//! - `curation`: `Y.Map`, written by moderators only:
//!   - `order`: JSON array of group ids (replace the whole value to reorder; absent = meeting order;
//!     unknown ids are ignored and missing groups follow in meeting order);
//!   - `hidden`: `Y.Map` of `"{group}/{conclusion}"` → `true` (delete the key to un-hide);
//!     keyed by conclusion id, so a hidden item stays hidden when its text changes;
//!   - `presenting`: `"{group}/{conclusion}"`, or absent/null;
//!   - `intro`, `closing`: `Y.Text`.
//!   The server creates `hidden`, `intro` and `closing` with the document; clients wait for the
//!   first sync and never create them (two clients creating them at once would lose text).
//!
//! Only `curation` is the moderators': an update that would change `meta`, `groups` or add a
//! root type is refused with `permission denied`, like any write without permission.

/// Group document: rich-text notes.
pub const NOTES: &str = "notes";
/// Group document: the conclusions array.
pub const CONCLUSIONS: &str = "conclusions";

/// Keys of a conclusion map (group and plenary documents).
pub mod conclusion {
    pub const ID: &str = "id";
    pub const TEXT: &str = "text";
    pub const STATUS: &str = "status";
    pub const AUTHOR: &str = "author";
    /// Fractional-index sort key (string); see the module docs.
    pub const POSITION: &str = "position";
    /// Soft-delete time (RFC 3339 string); a trashed item is not read.
    pub const TRASHED: &str = "trashed";
    pub const DRAFT: &str = "draft";
    pub const FINAL: &str = "final";
}

/// Plenary document root types and keys.
pub mod plenary {
    pub const META: &str = "meta";
    pub const GROUPS: &str = "groups";
    pub const CURATION: &str = "curation";

    pub const META_MEETING_ID: &str = "meeting_id";
    pub const META_TITLE: &str = "title";
    /// Optional: the projector's headline instead of `title` (absent when not set).
    pub const META_SHORT_TITLE: &str = "short_title";

    pub const GROUP_ID: &str = "id";
    pub const GROUP_TITLE: &str = "title";
    pub const GROUP_CLOSED: &str = "closed";
    /// Optional: a group's short title for the projector (absent when not set).
    pub const GROUP_SHORT_TITLE: &str = "short_title";
    pub const GROUP_CONCLUSIONS: &str = "conclusions";
    /// Optional, server-written: when the group's conclusions last changed (RFC 3339, UTC),
    /// rewritten at most once a minute.
    pub const GROUP_EDITED_AT: &str = "edited_at";

    pub const ORDER: &str = "order";
    pub const HIDDEN: &str = "hidden";
    pub const PRESENTING: &str = "presenting";
    pub const INTRO: &str = "intro";
    pub const CLOSING: &str = "closing";

    /// The key of a conclusion in `hidden` and `presenting`.
    pub fn item_key(group: &str, conclusion: &str) -> String {
        format!("{group}/{conclusion}")
    }
}
