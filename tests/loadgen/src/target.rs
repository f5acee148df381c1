//! Target adapters: how rooms are created and addressed on each server.
use crate::http;
use crate::proto::Wire;
use anyhow::{anyhow, bail, Context, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    Plenary,
    #[value(name = "y-sweet")]
    YSweet,
    #[value(name = "y-websocket")]
    YWebsocket,
    Hocuspocus,
}

impl Target {
    pub fn name(&self) -> &'static str {
        match self {
            Target::Plenary => "plenary",
            Target::YSweet => "y-sweet",
            Target::YWebsocket => "y-websocket",
            Target::Hocuspocus => "hocuspocus",
        }
    }
}

/// One document as the load generator addresses it.
#[derive(Clone, Debug)]
pub struct Room {
    pub name: String,
    /// URL for connections that write (rapporteur token on plenary).
    pub write_url: String,
    /// URL for read-only followers (participant token on plenary).
    pub read_url: String,
    pub wire: Wire,
}

pub struct Rooms {
    pub groups: Vec<Room>,
    /// plenary only: the meeting's plenary document (participant token).
    pub plenary: Option<Room>,
    #[allow(dead_code)]
    pub meeting: Option<String>,
}

pub struct Env {
    pub target: Target,
    /// http://HOST:PORT
    pub base: String,
    pub admin_token: Option<String>,
}

impl Env {
    pub fn ws_base(&self) -> String {
        self.base
            .replacen("http://", "ws://", 1)
            .trim_end_matches('/')
            .to_string()
    }

    /// Creates `n` rooms named after `tag`. On plenary they are groups of one new meeting.
    pub async fn rooms(&self, tag: &str, n: usize) -> Result<Rooms> {
        let ws = self.ws_base();
        match self.target {
            Target::Plenary => {
                // A meeting has at most 100 groups: spread the rooms over as many meetings as needed.
                let mut groups = Vec::new();
                let mut first = None;
                for (i, start) in (0..n).step_by(100).enumerate() {
                    let t = if i == 0 {
                        tag.to_string()
                    } else {
                        format!("{tag}-{i}")
                    };
                    let r = self.plenary_meeting(&t, (n - start).min(100), false).await?;
                    groups.extend(r.groups);
                    first.get_or_insert((r.plenary, r.meeting));
                }
                let (plenary, meeting) = first.unwrap_or((None, None));
                Ok(Rooms {
                    groups,
                    plenary,
                    meeting,
                })
            }
            Target::YWebsocket | Target::Hocuspocus => {
                let groups = (0..n)
                    .map(|i| {
                        let name = format!("{tag}-r{i}");
                        let url = format!("{ws}/{name}");
                        let wire = if self.target == Target::Hocuspocus {
                            Wire::hocuspocus(&name)
                        } else {
                            Wire::plain()
                        };
                        Room {
                            name,
                            write_url: url.clone(),
                            read_url: url,
                            wire,
                        }
                    })
                    .collect();
                Ok(Rooms {
                    groups,
                    plenary: None,
                    meeting: None,
                })
            }
            Target::YSweet => {
                let mut groups = Vec::new();
                for i in 0..n {
                    let want = format!("{tag}-r{i}");
                    let body = serde_json::json!({ "docId": want }).to_string();
                    let r = http::request(&self.base, "POST", "/doc/new", None, Some(&body)).await?;
                    if r.status / 100 != 2 {
                        bail!("y-sweet POST /doc/new: {} {}", r.status, r.body);
                    }
                    let v: serde_json::Value =
                        serde_json::from_str(&r.body).context("y-sweet /doc/new body")?;
                    let doc = v["docId"]
                        .as_str()
                        .ok_or_else(|| anyhow!("no docId in {}", r.body))?
                        .to_string();
                    let url = format!("{ws}/d/{doc}/ws/{doc}");
                    groups.push(Room {
                        name: doc,
                        write_url: url.clone(),
                        read_url: url,
                        wire: Wire::plain(),
                    });
                }
                Ok(Rooms {
                    groups,
                    plenary: None,
                    meeting: None,
                })
            }
        }
    }

    /// plenary: one meeting with `n` groups (+ its plenary document).
    pub async fn plenary_meeting(&self, tag: &str, n: usize, _plenary: bool) -> Result<Rooms> {
        let admin = self
            .admin_token
            .as_deref()
            .ok_or_else(|| anyhow!("--admin-token is required for plenary"))?;
        let ws = self.ws_base();
        let id = sanitize(tag);
        let groups: Vec<_> = (0..n)
            .map(|i| serde_json::json!({"id": format!("g{i}"), "title": format!("Working group {i}")}))
            .collect();
        let body =
            serde_json::json!({"id": id, "title": format!("Load test {tag}"), "groups": groups}).to_string();
        let r = http::request(&self.base, "POST", "/api/meetings", Some(admin), Some(&body)).await?;
        if r.status != 201 {
            bail!("POST /api/meetings: {} {}", r.status, r.body);
        }
        let v: serde_json::Value = serde_json::from_str(&r.body)?;
        let part = v["tokens"]["participant"]
            .as_str()
            .ok_or_else(|| anyhow!("no participant token: {}", r.body))?;
        let mut rooms = Vec::new();
        for i in 0..n {
            let g = format!("g{i}");
            let rap = v["tokens"]["rapporteurs"][&g]
                .as_str()
                .ok_or_else(|| anyhow!("no rapporteur token for {g}"))?;
            rooms.push(Room {
                name: format!("{id}/{g}"),
                write_url: format!("{ws}/ws/{id}/{g}?token={rap}"),
                read_url: format!("{ws}/ws/{id}/{g}?token={part}"),
                wire: Wire::plain(),
            });
        }
        let plenary = Room {
            name: format!("{id}/plenary"),
            write_url: format!(
                "{ws}/ws/{id}/plenary?token={}",
                v["tokens"]["moderator"].as_str().unwrap_or("")
            ),
            read_url: format!("{ws}/ws/{id}/plenary?token={part}"),
            wire: Wire::plain(),
        };
        Ok(Rooms {
            groups: rooms,
            plenary: Some(plenary),
            meeting: Some(id),
        })
    }
}

fn sanitize(tag: &str) -> String {
    let mut s: String = tag
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    s.truncate(60);
    if !s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric()) {
        s.insert(0, 'm');
    }
    s
}

impl Room {
    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({"name": self.name, "write_url": self.write_url, "read_url": self.read_url,
                           "hocuspocus": self.wire.is_hocuspocus()})
    }
    fn from_json(v: &serde_json::Value) -> Result<Room> {
        let s = |k: &str| {
            v[k].as_str()
                .map(str::to_string)
                .ok_or_else(|| anyhow!("rooms file: no {k} in {v}"))
        };
        let name = s("name")?;
        let wire = if v["hocuspocus"].as_bool() == Some(true) {
            Wire::hocuspocus(&name)
        } else {
            Wire::plain()
        };
        Ok(Room {
            write_url: s("write_url")?,
            read_url: s("read_url")?,
            name,
            wire,
        })
    }
}

impl Rooms {
    /// The rooms as `--prepare-only` writes them (URLs on the node they were created through).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "groups": self.groups.iter().map(Room::to_json).collect::<Vec<_>>(),
            "plenary": self.plenary.as_ref().map(Room::to_json),
            "meeting": self.meeting,
        })
    }
    pub fn from_json(v: &serde_json::Value) -> Result<Rooms> {
        let groups = v["groups"]
            .as_array()
            .ok_or_else(|| anyhow!("rooms file: no groups"))?
            .iter()
            .map(Room::from_json)
            .collect::<Result<Vec<_>>>()?;
        let plenary = match &v["plenary"] {
            serde_json::Value::Null => None,
            p => Some(Room::from_json(p)?),
        };
        Ok(Rooms {
            groups,
            plenary,
            meeting: v["meeting"].as_str().map(str::to_string),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_survive_the_rooms_file() {
        let r = Rooms {
            groups: vec![Room {
                name: "m/g0".into(),
                write_url: "ws://a/ws/m/g0?token=r".into(),
                read_url: "ws://a/ws/m/g0?token=p".into(),
                wire: Wire::plain(),
            }],
            plenary: Some(Room {
                name: "m/plenary".into(),
                write_url: "ws://a/ws/m/plenary?token=mo".into(),
                read_url: "ws://a/ws/m/plenary?token=p".into(),
                wire: Wire::plain(),
            }),
            meeting: Some("m".into()),
        };
        let back = Rooms::from_json(&r.to_json()).expect("parses");
        assert_eq!(back.groups[0].read_url, "ws://a/ws/m/g0?token=p");
        assert_eq!(
            back.plenary.expect("plenary").write_url,
            "ws://a/ws/m/plenary?token=mo"
        );
        assert_eq!(back.meeting.as_deref(), Some("m"));
        assert!(Rooms::from_json(&serde_json::json!({"groups": [{"name": "x"}]})).is_err());
    }
}
