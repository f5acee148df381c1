//! The plenary summary: the live merge of every group's conclusions and its exports.
//!
//! - [`merge`]: pure merge from group conclusions to the plenary document (small edits).
//! - [`guard`]: moderators write only `curation` (pure check on a scratch copy).
//! - [`live`]: a group room's feed and a plenary room's merge state (pure; rooms do the I/O).
//! - [`wording`]: times and adopted versions in words (summary and minutes).
//! - [`summary`]: the curated summary (moderator order, hidden items left out), its `G.N`
//!   numbering,
//!   and its JSON / Markdown / HTML renderings.

pub mod guard;
pub mod live;
pub mod merge;
pub mod summary;
pub mod wording;
