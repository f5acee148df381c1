//! The demo meeting: the Skopje regional meeting of `seed-meeting.txt` (built into the binary)
//! with its three working groups. Each group's notes start with the text of its panel.

use crate::app::AppState;
use crate::meetings::{self, CreatedMeeting, GroupSpec, MeetingSpec};
use plenary_protocol::layout;
use yrs::{Doc, Transact, WriteTxn, XmlElementPrelim, XmlFragment, XmlTextPrelim};

pub const SEED: &str = include_str!("demo/seed-meeting.txt");
pub const MEETING_ID: &str = "skopje-2023";

/// (group id, title, the seed paragraph that introduces it)
fn groups() -> Vec<(&'static str, &'static str, &'static str)> {
    let para = |needle: &str| SEED.lines().find(|l| l.contains(needle)).unwrap_or("");
    vec![
        ("wg-migrants", "Migrants with weapons", para("The first panel")),
        (
            "wg-handbook",
            "Handbook on Firearms for Border Guards and Customs and its implementation",
            para("During the second panel"),
        ),
        (
            "wg-trends",
            "New trends and threats in firearms trafficking",
            para("The Third panel"),
        ),
    ]
}

/// The notes document a group starts with: a heading and its panel's paragraph.
fn initial_notes(title: &str, panel: &str) -> Vec<u8> {
    let doc = Doc::new();
    let mut txn = doc.transact_mut();
    let notes = txn.get_or_insert_xml_fragment(layout::NOTES);
    let h = notes.push_back(&mut txn, XmlElementPrelim::empty("heading"));
    yrs::Xml::insert_attribute(&h, &mut txn, "level", "2");
    h.push_back(&mut txn, XmlTextPrelim::new(title));
    let p = notes.push_back(&mut txn, XmlElementPrelim::empty("paragraph"));
    p.push_back(&mut txn, XmlTextPrelim::new(panel));
    txn.encode_update_v1()
}

/// Creates the demo meeting and its documents.
pub async fn seed(svc: &AppState) -> anyhow::Result<CreatedMeeting> {
    let title = SEED
        .lines()
        .next()
        .unwrap_or("Regional meeting")
        .trim()
        .to_owned();
    let spec = MeetingSpec {
        id: Some(MEETING_ID.into()),
        title,
        groups: groups()
            .iter()
            .map(|(id, t, _)| GroupSpec {
                id: (*id).into(),
                title: (*t).into(),
            })
            .collect(),
    };
    let created = meetings::create(svc, spec).await?;
    for (id, t, panel) in groups() {
        let rx = svc
            .room
            .persister
            .append(format!("{MEETING_ID}/{id}"), vec![initial_notes(t, panel)])
            .await;
        rx.await
            .map_err(|_| anyhow::anyhow!("store closed"))?
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(created)
}
