//! /proc readers (server RSS and CPU, our own CPU) and a small deterministic RNG.
use std::time::{SystemTime, UNIX_EPOCH};

const CLK_TCK: f64 = 100.0;

/// utime + stime of a process in seconds (None when it is gone).
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    cpu_times(pid).map(|c| c.user + c.sys)
}

/// A process's CPU time from `/proc/PID/stat`, in seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CpuTimes {
    /// utime: user space
    pub user: f64,
    /// stime: the kernel, on the process's behalf (syscalls, the loopback network stack)
    pub sys: f64,
}

impl std::ops::Sub for CpuTimes {
    type Output = CpuTimes;
    fn sub(self, o: CpuTimes) -> CpuTimes {
        CpuTimes {
            user: self.user - o.user,
            sys: self.sys - o.sys,
        }
    }
}

impl std::ops::Add for CpuTimes {
    type Output = CpuTimes;
    fn add(self, o: CpuTimes) -> CpuTimes {
        CpuTimes {
            user: self.user + o.user,
            sys: self.sys + o.sys,
        }
    }
}

/// Fields of `/proc/PID/stat` after the command name (field 3 onwards).
fn stat_fields(pid: &str) -> Option<Vec<String>> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = s.get(s.rfind(')')? + 2..)?;
    Some(after.split_whitespace().map(str::to_owned).collect())
}

/// utime and stime of a process (None when it is gone).
pub fn cpu_times(pid: &str) -> Option<CpuTimes> {
    let f = stat_fields(pid)?;
    let ut: f64 = f.get(11)?.parse().ok()?;
    let st: f64 = f.get(12)?.parse().ok()?;
    Some(CpuTimes {
        user: ut / CLK_TCK,
        sys: st / CLK_TCK,
    })
}

/// The live descendants of `pid` (plenary's sandbox workers), found by parent PID.
pub fn descendants(pid: &str) -> Vec<String> {
    let mut parents: Vec<(String, String)> = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if !name.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            if let Some(f) = stat_fields(&name) {
                if let Some(ppid) = f.get(1) {
                    parents.push((name, ppid.clone()));
                }
            }
        }
    }
    let mut out: Vec<String> = Vec::new();
    let mut frontier = vec![pid.to_string()];
    while let Some(p) = frontier.pop() {
        for (child, ppid) in &parents {
            if *ppid == p && !out.contains(child) {
                out.push(child.clone());
                frontier.push(child.clone());
            }
        }
    }
    out
}

/// CPU times of every live descendant of `pid`, keyed by PID (a child that starts or exits
/// within a window is counted from zero or not at all).
pub fn children_cpu(pid: &str) -> Vec<(String, CpuTimes)> {
    descendants(pid)
        .into_iter()
        .filter_map(|c| cpu_times(&c).map(|t| (c, t)))
        .collect()
}

/// CPU the children used between two `children_cpu` readings.
pub fn children_delta(before: &[(String, CpuTimes)], after: &[(String, CpuTimes)]) -> CpuTimes {
    let mut d = CpuTimes::default();
    for (pid, t) in after {
        let t0 = before
            .iter()
            .find(|(p, _)| p == pid)
            .map(|(_, t)| *t)
            .unwrap_or_default();
        d = d + (*t - t0);
    }
    d
}

/// (VmRSS, VmHWM) in KiB.
pub fn rss_kib(pid: &str) -> Option<(u64, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let mut rss = None;
    let mut hwm = None;
    for line in s.lines() {
        let mut it = line.split_whitespace();
        match it.next() {
            Some("VmRSS:") => rss = it.next().and_then(|v| v.parse().ok()),
            Some("VmHWM:") => hwm = it.next().and_then(|v| v.parse().ok()),
            _ => {}
        }
    }
    Some((rss?, hwm.unwrap_or(0)))
}

pub fn self_cpu() -> f64 {
    cpu_seconds("self").unwrap_or(0.0)
}

/// splitmix64
pub struct Rng(u64);
impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn from_time() -> Self {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        Rng::new(t ^ ((std::process::id() as u64) << 32))
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// 32-bit, non-zero Yjs client id (browsers use 32-bit ids; y-sweet 0.9.1 mishandles larger).
    pub fn client_id(&mut self) -> u64 {
        loop {
            let v = self.next_u64() & 0xFFFF_FFFF;
            if v > 1 {
                return v;
            }
        }
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
    pub fn hex(&mut self, n: usize) -> String {
        let mut s = String::new();
        while s.len() < n {
            s.push_str(&format!("{:016x}", self.next_u64()));
        }
        s.truncate(n);
        s
    }
}

/// Samples server RSS every `period` and keeps the maximum.
pub struct RssPeak {
    pub peak: std::sync::Arc<std::sync::atomic::AtomicU64>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}
impl RssPeak {
    pub fn start(pid: Option<String>) -> Self {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        let peak = std::sync::Arc::new(AtomicU64::new(0));
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        if let Some(pid) = pid {
            let (p, s) = (peak.clone(), stop.clone());
            std::thread::spawn(move || {
                while !s.load(Ordering::Relaxed) {
                    if let Some((rss, _)) = rss_kib(&pid) {
                        p.fetch_max(rss, Ordering::Relaxed);
                    }
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
            });
        }
        RssPeak { peak, stop }
    }
    pub fn peak_kib(&self) -> u64 {
        self.peak.load(std::sync::atomic::Ordering::Relaxed)
    }
}
impl Drop for RssPeak {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

pub fn percentile(sorted: &[u32], q: f64) -> Option<u32> {
    if sorted.is_empty() {
        return None;
    }
    let idx = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    Some(sorted[idx])
}

/// Busy CPU seconds of the whole machine (all cores) from /proc/stat.
pub fn machine_busy_seconds() -> f64 {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = s.lines().next() else { return 0.0 };
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    let busy: f64 = [0usize, 1, 2, 5, 6, 7].iter().filter_map(|i| v.get(*i)).sum();
    busy / CLK_TCK
}
