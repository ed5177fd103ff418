//! The connection ledger: one record per accepted TCP connection, with open/close timing and who
//! closed first, queryable while the server runs (`GET /_ledger` or [`Ledger::snapshot`]).

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// Oldest records are dropped once the ledger holds this many.
pub const MAX_RECORDS: usize = 10_000;

/// The current time as Unix epoch milliseconds with sub-millisecond precision (comparable with a
/// browser's `Date.now()` on the same machine).
pub fn now_ms() -> f64 {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    d.as_nanos() as f64 / 1e6
}

/// Which side ended a connection first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClosedBy {
    /// The peer went away first: we read EOF, or got `ECONNRESET`/`EPIPE`.
    Client,
    /// The server closed first: after a complete response, a deliberate reset, or shutdown.
    Server,
}

/// Everything recorded about one TCP connection (one request, as every response says
/// `Connection: close`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectionRecord {
    /// Increasing connection number, starting at 1 for each ledger.
    pub id: u64,
    /// The peer's `ip:port`, or `in-process` for requests driven without a socket.
    pub peer: String,
    /// When the connection was accepted (Unix epoch ms).
    pub opened_at_ms: f64,
    /// Request method; empty if the client never sent a complete request head.
    pub method: String,
    /// Request path without the query; empty if no request was received.
    pub path: String,
    /// The raw query string (without `?`); empty when there is none.
    pub query: String,
    /// The scenario named by a chat-completions path, if the path is one.
    pub scenario: Option<String>,
    /// The `tag` query parameter, if given.
    pub tag: Option<String>,
    /// The request body as (lossy) UTF-8.
    pub body: String,
    /// Request headers (lower-case names; repeated headers joined with `, `). Credential-bearing
    /// headers have their value replaced by `<redacted len=N>`.
    pub headers: BTreeMap<String, String>,
    /// Whether the request carried an `Authorization` header.
    pub authorization_seen: bool,
    /// The response status, once the handler produced one.
    pub status: Option<u16>,
    /// When the first response bytes (the head) were written, or null.
    pub response_started_at_ms: Option<f64>,
    /// When the connection ended, or null while it is open.
    pub closed_at_ms: Option<f64>,
    /// Who ended the connection first, or null while it is open.
    pub closed_by: Option<ClosedBy>,
    /// Whether the client ended it with a TCP reset (`ECONNRESET`).
    pub client_reset: bool,
    /// What the scenario made of the request, where it says: `continue` records `prefill`,
    /// `instruction` or `fresh`; `controlled` the setting it answered with
    /// (`stall-after=2 first_token_ms=200`). Null for the others.
    #[serde(default)]
    pub mode: Option<String>,
}

impl ConnectionRecord {
    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.closed_at_ms.is_some()
    }
}

/// Which records a query selects. Empty fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only records whose `tag` equals this.
    pub tag: Option<String>,
    /// Only records whose `scenario` equals this.
    pub scenario: Option<String>,
}

impl Filter {
    /// A filter selecting one tag.
    pub fn tag(tag: &str) -> Self {
        Filter {
            tag: Some(tag.to_string()),
            scenario: None,
        }
    }

    /// Whether `rec` passes this filter.
    pub fn matches(&self, rec: &ConnectionRecord) -> bool {
        self.tag
            .as_deref()
            .is_none_or(|t| rec.tag.as_deref() == Some(t))
            && self
                .scenario
                .as_deref()
                .is_none_or(|s| rec.scenario.as_deref() == Some(s))
    }
}

/// The result of a long-poll wait on the ledger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaitOutcome {
    /// The matching records at the moment the wait ended.
    pub connections: Vec<ConnectionRecord>,
    /// True when the deadline passed before at least one matching connection existed with every
    /// matching connection closed.
    pub timed_out: bool,
}

/// A record plus bookkeeping that is not published.
struct Entry {
    rec: ConnectionRecord,
    /// Open connections are listed only once their request head is known, so in-flight
    /// `/_ledger` requests never show up.
    request_seen: bool,
}

impl Entry {
    /// Whether snapshots include this entry.
    fn visible(&self) -> bool {
        self.request_seen || self.rec.is_closed()
    }
}

/// The records, oldest first (ids increase, so they stay sorted).
#[derive(Default)]
struct State {
    next_id: u64,
    entries: VecDeque<Entry>,
}

impl State {
    /// The entry of connection `id`, if still present.
    fn find(&mut self, id: u64) -> Option<&mut Entry> {
        let i = self.entries.binary_search_by_key(&id, |e| e.rec.id).ok()?;
        self.entries.get_mut(i)
    }

    /// Visible records passing `filter`.
    fn select(&self, filter: &Filter) -> Vec<ConnectionRecord> {
        self.entries
            .iter()
            .filter(|e| e.visible() && filter.matches(&e.rec))
            .map(|e| e.rec.clone())
            .collect()
    }
}

/// The shared part of a [`Ledger`].
struct Inner {
    state: Mutex<State>,
    /// Bumped on every change that a waiter may care about.
    version: watch::Sender<u64>,
    /// Scenario tasks (stream producers and header-less waits) still running.
    active: AtomicUsize,
}

/// Counts one running scenario task for [`Ledger::active_scenarios`] until dropped.
pub(crate) struct ActiveGuard {
    ledger: Ledger,
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.ledger.inner.active.fetch_sub(1, Ordering::SeqCst);
        self.ledger.changed();
    }
}

/// A shared, cloneable log of every connection the server accepted.
#[derive(Clone)]
pub struct Ledger {
    inner: Arc<Inner>,
}

impl Default for Ledger {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("records", &self.lock().entries.len())
            .finish()
    }
}

impl Ledger {
    /// An empty ledger.
    pub fn new() -> Self {
        Ledger {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                version: watch::Sender::new(0),
                active: AtomicUsize::new(0),
            }),
        }
    }

    /// Locks the state (a poisoned lock is still usable: records stay consistent).
    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Wakes every waiter.
    fn changed(&self) {
        self.inner.version.send_modify(|v| *v += 1);
    }

    /// Applies `f` to entry `id`; wakes waiters when `f` returns true.
    fn with_entry(&self, id: u64, f: impl FnOnce(&mut Entry) -> bool) {
        let notify = {
            let mut st = self.lock();
            st.find(id).map(f).unwrap_or(false)
        };
        if notify {
            self.changed();
        }
    }

    /// Records a newly accepted connection and returns its id.
    pub(crate) fn open(&self, peer: String) -> u64 {
        let id = {
            let mut st = self.lock();
            st.next_id += 1;
            let id = st.next_id;
            st.entries.push_back(Entry {
                rec: ConnectionRecord {
                    id,
                    peer,
                    opened_at_ms: now_ms(),
                    method: String::new(),
                    path: String::new(),
                    query: String::new(),
                    scenario: None,
                    tag: None,
                    body: String::new(),
                    headers: BTreeMap::new(),
                    authorization_seen: false,
                    status: None,
                    response_started_at_ms: None,
                    closed_at_ms: None,
                    closed_by: None,
                    client_reset: false,
                    mode: None,
                },
                request_seen: false,
            });
            while st.entries.len() > MAX_RECORDS {
                st.entries.pop_front();
            }
            id
        };
        self.changed();
        id
    }

    /// Fills in the request details of connection `id` (method, path, query, scenario, tag,
    /// body, headers) with `fill`, and marks its request as seen.
    pub(crate) fn request(&self, id: u64, fill: impl FnOnce(&mut ConnectionRecord)) {
        self.with_entry(id, |e| {
            fill(&mut e.rec);
            e.request_seen = true;
            true
        });
    }

    /// Records what the scenario answering connection `id` made of its request.
    pub(crate) fn mode(&self, id: u64, mode: String) {
        self.with_entry(id, |e| {
            e.rec.mode = Some(mode);
            true
        });
    }

    /// Removes connection `id` (used for the ledger's own requests).
    pub(crate) fn forget(&self, id: u64) {
        let mut st = self.lock();
        if let Ok(i) = st.entries.binary_search_by_key(&id, |e| e.rec.id) {
            st.entries.remove(i);
        }
    }

    /// Records the response status of connection `id`.
    pub(crate) fn status(&self, id: u64, status: u16) {
        self.with_entry(id, |e| {
            e.rec.status = Some(status);
            false
        });
    }

    /// Records that the response head of connection `id` went out now (first time only).
    pub(crate) fn response_started(&self, id: u64) {
        let t = now_ms();
        self.with_entry(id, |e| {
            if e.rec.response_started_at_ms.is_none() {
                e.rec.response_started_at_ms = Some(t);
                true
            } else {
                false
            }
        });
    }

    /// Records that connection `id` ended now (first time only).
    pub(crate) fn closed(&self, id: u64, by: ClosedBy, client_reset: bool) {
        let t = now_ms();
        self.with_entry(id, |e| {
            if e.rec.closed_at_ms.is_some() {
                return false;
            }
            e.rec.closed_at_ms = Some(t);
            e.rec.closed_by = Some(by);
            e.rec.client_reset = client_reset;
            true
        });
    }

    /// Counts a scenario task as running until the guard is dropped.
    pub(crate) fn scenario_task(&self) -> ActiveGuard {
        self.inner.active.fetch_add(1, Ordering::SeqCst);
        self.changed();
        ActiveGuard {
            ledger: self.clone(),
        }
    }

    /// How many scenario tasks (stream producers, handlers holding back their headers, and
    /// WebSocket sessions) are still running. It drops back once their clients leave: nothing lingers on the server.
    pub fn active_scenarios(&self) -> usize {
        self.inner.active.load(Ordering::SeqCst)
    }

    /// Waits until `pred` holds for this ledger (checked now and after every ledger change), or
    /// `timeout` passes; returns whether it held.
    pub async fn wait_for(&self, timeout: Duration, mut pred: impl FnMut(&Ledger) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut rx = self.inner.version.subscribe();
        loop {
            if pred(self) {
                return true;
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => continue,
                Ok(Err(_)) | Err(_) => return pred(self),
            }
        }
    }

    /// Every visible record, oldest first.
    pub fn snapshot(&self) -> Vec<ConnectionRecord> {
        self.query(&Filter::default())
    }

    /// The visible records that pass `filter`, oldest first.
    pub fn query(&self, filter: &Filter) -> Vec<ConnectionRecord> {
        self.lock().select(filter)
    }

    /// Forgets every record (connection ids keep increasing).
    pub fn clear(&self) {
        self.lock().entries.clear();
        self.changed();
    }

    /// Waits until at least one connection tagged `tag` exists and all of them are closed, or
    /// `timeout` passes; returns the tagged records at that moment.
    pub async fn wait_closed(&self, tag: &str, timeout: Duration) -> Vec<ConnectionRecord> {
        self.wait_closed_matching(&Filter::tag(tag), timeout)
            .await
            .connections
    }

    /// Waits until at least one record passes `filter` and all of those are closed, or `timeout`
    /// passes. Wakes on ledger changes (no polling).
    pub async fn wait_closed_matching(&self, filter: &Filter, timeout: Duration) -> WaitOutcome {
        let deadline = tokio::time::Instant::now() + timeout;
        // Subscribe before the first check so no change between check and wait is missed.
        let mut rx = self.inner.version.subscribe();
        loop {
            let connections = self.query(filter);
            if !connections.is_empty() && connections.iter().all(ConnectionRecord::is_closed) {
                return WaitOutcome {
                    connections,
                    timed_out: false,
                };
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => continue,
                // The sender lives as long as `self`, so only the deadline ends the wait.
                Ok(Err(_)) | Err(_) => {
                    return WaitOutcome {
                        connections: self.query(filter),
                        timed_out: true,
                    }
                }
            }
        }
    }
}
