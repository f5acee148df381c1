//! The one numbering rule, `G.N`, used by every export (contract, "More exports").
//!
//! G is the 1-based position of the group in the curated order (the order of
//! [`Summary::groups`], which [`from_plenary`](crate::plenary::summary::from_plenary) builds:
//! `curation.order` first, unknown ids ignored, missing groups after it in meeting order).
//! N is the 1-based position of the conclusion among its group's *shown* conclusions (not
//! hidden, text not blank) in document order. Hidden and blank items take no number, so the
//! numbers have no gaps; a group without shown conclusions keeps its number G.

use crate::plenary::summary::{Summary, SummaryConclusion, SummaryGroup};

/// A group with its number and its numbered conclusions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberedGroup<'a> {
    /// G, 1-based.
    pub number: usize,
    pub group: &'a SummaryGroup,
    pub items: Vec<NumberedItem<'a>>,
}

/// A shown conclusion with its number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberedItem<'a> {
    /// G, 1-based.
    pub group: usize,
    /// N, 1-based.
    pub index: usize,
    pub conclusion: &'a SummaryConclusion,
}

impl NumberedItem<'_> {
    /// "G.N".
    pub fn label(&self) -> String {
        label(self.group, self.index)
    }

    /// The conclusion's text, trimmed.
    pub fn text(&self) -> &str {
        self.conclusion.text.trim()
    }

    /// Anything but `final` is a draft (the merge reads an unknown status as `draft`).
    pub fn is_draft(&self) -> bool {
        self.conclusion.status != "final"
    }
}

/// "G.N".
pub fn label(group: usize, index: usize) -> String {
    format!("{group}.{index}")
}

/// Numbers a curated summary. Blank items are skipped here too (a summary read back from an
/// older version might hold one), so they can never take a number.
pub fn number(summary: &Summary) -> Vec<NumberedGroup<'_>> {
    summary
        .groups
        .iter()
        .enumerate()
        .map(|(gi, group)| {
            let g = gi + 1;
            let items = group
                .conclusions
                .iter()
                .filter(|c| !c.text.trim().is_empty())
                .enumerate()
                .map(|(ci, conclusion)| NumberedItem {
                    group: g,
                    index: ci + 1,
                    conclusion,
                })
                .collect();
            NumberedGroup {
                number: g,
                group,
                items,
            }
        })
        .collect()
}

/// `("{group}/{conclusion}", "G.N")` for every shown conclusion, in order: the key of
/// `curation.hidden` and `curation.presenting`, for views that show the numbers (the
/// projector, the console, the phones, `summary.json`).
pub fn labels_by_key(summary: &Summary) -> Vec<(String, String)> {
    number(summary)
        .iter()
        .flat_map(|g| {
            g.items.iter().map(|i| {
                (
                    plenary_protocol::layout::plenary::item_key(&g.group.id, &i.conclusion.id),
                    i.label(),
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plenary::summary::from_plenary;
    use serde_json::json;

    fn labels(s: &Summary) -> Vec<(String, String)> {
        number(s)
            .iter()
            .flat_map(|g| g.items.iter().map(|i| (i.label(), i.conclusion.id.clone())))
            .collect()
    }

    #[test]
    fn minutes_numbering_follows_curated_order_and_skips_hidden_and_blank() {
        let plenary = json!({
            "groups": [
                {"id":"a","title":"A","conclusions":[
                    {"id":"a1","text":"one","status":"final"},
                    {"id":"a2","text":"  \n","status":"draft"},
                    {"id":"a3","text":"hidden","status":"draft"},
                    {"id":"a4","text":"four","status":"draft"}]},
                {"id":"b","title":"B","conclusions":[]},
                {"id":"c","title":"C","conclusions":[{"id":"c1","text":"c one","status":"final"}]}
            ],
            "curation": {"order":["c","nope","b"],"hidden":{"a/a3":true}}
        });
        let s = from_plenary("m", "M", &plenary, "now".into());
        let groups = number(&s);
        let ids: Vec<(usize, &str)> = groups.iter().map(|g| (g.number, g.group.id.as_str())).collect();
        assert_eq!(ids, vec![(1, "c"), (2, "b"), (3, "a")]);
        assert!(
            groups[1].items.is_empty(),
            "an empty group keeps its number and has no items"
        );
        assert_eq!(
            labels(&s),
            vec![
                ("1.1".to_owned(), "c1".to_owned()),
                ("3.1".to_owned(), "a1".to_owned()),
                ("3.2".to_owned(), "a4".to_owned()),
            ]
        );
        assert_eq!(
            labels_by_key(&s),
            vec![
                ("c/c1".to_owned(), "1.1".to_owned()),
                ("a/a1".to_owned(), "3.1".to_owned()),
                ("a/a4".to_owned(), "3.2".to_owned()),
            ]
        );
        assert!(groups[2].items[1].is_draft());
        assert!(!groups[2].items[0].is_draft());
    }

    #[test]
    fn minutes_numbering_skips_blank_items_left_in_a_summary() {
        let mut s = from_plenary(
            "m",
            "M",
            &json!({"groups":[{"id":"a","title":"A","conclusions":[]}]}),
            "now".into(),
        );
        for (id, text) in [("x", "first"), ("y", " "), ("z", "second")] {
            s.groups[0].conclusions.push(SummaryConclusion {
                id: id.into(),
                text: text.into(),
                status: "final".into(),
            });
        }
        assert_eq!(
            labels(&s),
            vec![
                ("1.1".to_owned(), "x".to_owned()),
                ("1.2".to_owned(), "z".to_owned())
            ]
        );
    }
}
