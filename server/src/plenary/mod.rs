//! The plenary summary: the live merge of every group's conclusions and its exports.
//!
//! - [`merge`]: pure merge from group conclusions to the plenary document (small edits).
//! - [`guard`]: moderators write only `curation` (pure check on a scratch copy).
//! - [`live`]: the glue rooms use: a group room's feed, a plenary room's merge state.
//! - [`summary`]: the curated summary (moderator order, hidden items left out) and its
//!   JSON / Markdown / HTML renderings.

pub mod guard;
pub mod live;
pub mod merge;
pub mod summary;
