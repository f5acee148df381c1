//! Several nodes: the same document on every node, who connects where, and the figures a cluster
//! run adds (latency by hop, the failover window, updates lost). Pure: no I/O.
use std::collections::BTreeMap;

/// `http://HOST:PORT` → `ws://HOST:PORT`, without a trailing slash.
pub fn ws_base(http_base: &str) -> String {
    http_base.trim_end_matches('/').replacen("http://", "ws://", 1)
}

/// The same document URL on every node: `url` addresses node 0 (`ws_bases[0]`); entry `i` is the
/// URL with node `i`'s base in its place. A URL not under node 0's base is returned unchanged.
pub fn urls_for(url: &str, ws_bases: &[String]) -> Vec<String> {
    let Some(first) = ws_bases.first() else {
        return vec![url.to_string()];
    };
    match url.strip_prefix(first.as_str()) {
        Some(rest) => ws_bases.iter().map(|b| format!("{b}{rest}")).collect(),
        None => ws_bases.iter().map(|_| url.to_string()).collect(),
    }
}

/// The node of the `k`-th writer (counted over all rooms): round-robin over `writer_nodes`.
pub fn writer_node(k: usize, writer_nodes: &[usize], nodes: usize) -> usize {
    if writer_nodes.is_empty() {
        k % nodes.max(1)
    } else {
        writer_nodes[k % writer_nodes.len()] % nodes.max(1)
    }
}

/// The node of the `i`-th follower of a room, round-robin over `follower_nodes` (empty: all
/// nodes). Sampled followers are spread by their own index (`sample`), so a stride of sampled
/// followers cannot all land on one node.
pub fn follower_node(i: usize, sample: Option<usize>, follower_nodes: &[usize], nodes: usize) -> usize {
    writer_node(sample.unwrap_or(i), follower_nodes, nodes)
}

/// The next node a dropped client tries: the one after its own, cycling (one node: itself).
pub fn next_node(current: usize, attempt: usize, nodes: usize) -> usize {
    let n = nodes.max(1);
    if n == 1 {
        0
    } else {
        (current + 1 + attempt % (n - 1)) % n
    }
}

/// One measured keystroke at one probe.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    pub lat_us: u32,
    /// when the keystroke was sent, ms since the run's clock started
    pub sent_ms: u32,
    /// the writer and the probe were on different nodes
    pub remote: bool,
}

/// Latencies of the same-node and the cross-node samples, apart.
pub fn split_hop(samples: &[Sample]) -> (Vec<u32>, Vec<u32>) {
    let local = samples.iter().filter(|s| !s.remote).map(|s| s.lat_us).collect();
    let remote = samples.iter().filter(|s| s.remote).map(|s| s.lat_us).collect();
    (local, remote)
}

/// Latencies of keystrokes sent in `[from_ms, to_ms)`.
pub fn sent_between(samples: &[Sample], from_ms: u32, to_ms: u32) -> Vec<u32> {
    samples
        .iter()
        .filter(|s| s.sent_ms >= from_ms && s.sent_ms < to_ms)
        .map(|s| s.lat_us)
        .collect()
}

/// Updates lost: for every writer, the characters it typed (its own text's length) that some
/// fresh probe does not hold, summed over writers (the worst probe counts). A writer missing from
/// a probe entirely counts all its characters.
pub fn lost_updates(writers: &BTreeMap<String, u32>, probes: &[BTreeMap<String, u32>]) -> u64 {
    writers
        .iter()
        .map(|(id, &typed)| {
            probes
                .iter()
                .map(|p| typed.saturating_sub(p.get(id).copied().unwrap_or(0)) as u64)
                .max()
                .unwrap_or(0)
        })
        .sum()
}

/// Percentile difference `remote - local` in ms, when both sides have samples.
pub fn added_ms(local_sorted: &[u32], remote_sorted: &[u32], q: f64) -> Option<f64> {
    let l = crate::sys::percentile(local_sorted, q)?;
    let r = crate::sys::percentile(remote_sorted, q)?;
    Some((r as f64 - l as f64) / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_url_is_moved_to_every_node() {
        let bases = vec![
            "ws://127.0.0.1:1000".to_string(),
            "ws://127.0.0.1:2000".to_string(),
        ];
        assert_eq!(
            urls_for("ws://127.0.0.1:1000/ws/m/g0?token=t", &bases),
            vec![
                "ws://127.0.0.1:1000/ws/m/g0?token=t",
                "ws://127.0.0.1:2000/ws/m/g0?token=t"
            ]
        );
        assert_eq!(ws_base("http://127.0.0.1:2000/"), "ws://127.0.0.1:2000");
        // not under node 0: unchanged everywhere
        assert_eq!(urls_for("ws://x/y", &bases), vec!["ws://x/y", "ws://x/y"]);
    }

    #[test]
    fn sampled_followers_are_spread_over_nodes_by_their_own_index() {
        // a stride of 250 from 125: every connection index is odd, yet samples alternate
        let nodes: Vec<usize> = (0..4)
            .map(|j| follower_node(125 + 250 * j, Some(j), &[], 2))
            .collect();
        assert_eq!(nodes, vec![0, 1, 0, 1]);
        assert_eq!(follower_node(7, None, &[], 2), 1);
        assert_eq!(follower_node(7, None, &[], 1), 0);
        assert_eq!(follower_node(7, None, &[0], 2), 0);
    }

    #[test]
    fn writers_go_round_robin_over_the_nodes_given() {
        assert_eq!(
            (0..4).map(|k| writer_node(k, &[], 2)).collect::<Vec<_>>(),
            vec![0, 1, 0, 1]
        );
        assert_eq!(
            (0..3).map(|k| writer_node(k, &[1], 2)).collect::<Vec<_>>(),
            vec![1, 1, 1]
        );
    }

    #[test]
    fn a_dropped_client_tries_the_other_nodes_in_turn() {
        assert_eq!(next_node(0, 0, 2), 1);
        assert_eq!(next_node(0, 1, 2), 1);
        assert_eq!(next_node(1, 0, 3), 2);
        assert_eq!(next_node(1, 1, 3), 0);
        assert_eq!(next_node(0, 5, 1), 0);
    }

    #[test]
    fn hop_and_window_split_the_samples() {
        let s = [
            Sample {
                lat_us: 1000,
                sent_ms: 10,
                remote: false,
            },
            Sample {
                lat_us: 3000,
                sent_ms: 20,
                remote: true,
            },
            Sample {
                lat_us: 9000,
                sent_ms: 30,
                remote: true,
            },
        ];
        let (l, r) = split_hop(&s);
        assert_eq!((l, r.clone()), (vec![1000], vec![3000, 9000]));
        assert_eq!(sent_between(&s, 15, 30), vec![3000]);
        assert_eq!(added_ms(&[1000], &[3000, 9000], 0.5), Some(2.0));
        assert_eq!(added_ms(&[], &r, 0.5), None);
    }

    #[test]
    fn lost_updates_count_what_the_worst_probe_misses() {
        let w = BTreeMap::from([("a".to_string(), 10), ("b".to_string(), 5)]);
        let full = BTreeMap::from([("a".to_string(), 10), ("b".to_string(), 5)]);
        let short = BTreeMap::from([("a".to_string(), 7)]);
        assert_eq!(lost_updates(&w, &[full.clone()]), 0);
        assert_eq!(lost_updates(&w, &[full, short]), 3 + 5);
        assert_eq!(lost_updates(&w, &[]), 0);
    }
}
